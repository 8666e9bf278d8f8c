//! Training: [`Model::compile`](crate::Model::compile), [`Model::fit`](crate::Model::fit), [`Model::evaluate`](crate::Model::evaluate),
//! [`Model::predict`](crate::Model::predict) and the `*_on_batch` variants.
//!
//! One step of `fit`: slice a batch (shuffled each epoch by a seeded RNG),
//! run the model in training mode, add up the per-output losses (weighted
//! by `loss_weights`, honouring sample weights and output masks) and the
//! weights' regularization penalties, backpropagate, let the optimizer
//! update the trainable weights, then update the metrics on the detached
//! outputs. Every input is checked before the first step.

mod compile;
mod data;
mod evaluate;
mod feed;
mod fit;
mod inspect;
mod options;
mod predict;
mod progress;
mod step;
mod trackers;

use strata_core::{Error, Result};

pub use compile::{CompileConfig, IntoLosses, IntoMetrics, Losses, Metrics};
pub use inspect::{Inspection, LayerStats, WeightStats};
pub use options::{EvaluateOptions, FitOptions, PredictOptions};

use crate::metrics::MetricSpec;
pub(crate) use crate::models::{Compiled, Objective};

impl Compiled {
    /// The compile arguments (saved with whole models).
    pub(crate) fn config(&self, outputs: &[&str]) -> CompileConfig {
        let o = &self.objective;
        let metrics = outputs
            .iter()
            .zip(&o.output_metrics)
            .map(|(name, idx)| {
                let names = idx
                    .iter()
                    .map(|&i| match &o.metric_specs[i] {
                        MetricSpec::Name(n) => n.clone(),
                        MetricSpec::Metric(m) => m.name().to_string(),
                    })
                    .collect();
                (name.to_string(), names)
            })
            .collect();
        CompileConfig {
            optimizer: self.optimizer.get_config(),
            loss: outputs.iter().zip(&o.losses).map(|(name, l)| (name.to_string(), l.get_config())).collect(),
            loss_weights: Some(o.loss_weights.clone()),
            metrics,
            weighted_metrics: o.weighted_metrics,
        }
    }
}

pub(crate) fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", "must be at least 1, received 0"));
    }
    Ok(())
}

pub(crate) fn check_verbose(verbose: u8) -> Result<()> {
    if verbose > 2 {
        return Err(Error::invalid("verbose", format!("must be 0, 1 or 2, received {verbose}")));
    }
    Ok(())
}
