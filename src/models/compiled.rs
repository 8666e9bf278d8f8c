//! The state [`Model::compile`](crate::Model::compile) gives a model: its
//! optimizer, and the losses and metrics it trains and reports. It is the
//! model's own (as Keras keeps `model.optimizer` and the compiled loss on
//! the model); `trainers` fills it in and uses it.

use crate::losses::Loss;
use crate::metrics::MetricSpec;
use crate::optimizers::Optimizer;

/// The state `compile` sets up: the optimizer, and what it minimises and
/// reports (kept apart so callbacks can borrow the optimizer mid-epoch).
pub(crate) struct Compiled {
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) objective: Objective,
    /// The trainable weights' names when compiled: as in Keras, changing a
    /// `trainable` flag takes effect at the next `compile`.
    pub(crate) trainable: Vec<String>,
}

/// Losses, their weights and metrics, per output.
pub(crate) struct Objective {
    pub(crate) losses: Vec<Loss>,
    pub(crate) loss_weights: Vec<f64>,
    pub(crate) metric_specs: Vec<MetricSpec>,
    /// For each output, indices into `metric_specs`.
    pub(crate) output_metrics: Vec<Vec<usize>>,
    /// Whether metrics see sample weights (Keras' `weighted_metrics`).
    pub(crate) weighted_metrics: bool,
}
