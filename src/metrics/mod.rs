//! Metrics with Keras 3's names and semantics, accumulated over batches.
//!
//! A [`Metric`] takes one batch at a time ([`Metric::update_state`]) and
//! reports the value so far ([`Metric::result`]). Each batch costs a few
//! tensor ops on the device and one small download (two numbers for the
//! averaging metrics and Precision/Recall, two histograms of
//! `num_thresholds` buckets for [`Auc`]); the running totals live on the
//! host in `f64`.
//!
//! Sample weights and masks follow Keras 3: the mask (shaped like `y_pred`
//! without its last axis) is multiplied into the sample weights, and the
//! averaging metrics are weighted means (`Σ value·w / Σ w`, Keras'
//! `MeanMetricWrapper`). Two deliberate differences, where Keras 3 raises or
//! ignores the mask: a `[batch]` sample weight lines up with the batch axis
//! of sequence outputs (Keras 3 aligns from the right and fails), and the
//! mask is also folded into Precision, Recall, AUC and RMSE (Keras 3 drops
//! it there, counting padded time steps).
//!
//! ```
//! use strata::prelude::*;
//!
//! # fn main() -> strata::Result<()> {
//! let dev = strata::backend::native();
//! let mut acc = SparseCategoricalAccuracy::new();
//! let y_true = Tensor::new(vec![0i64, 1], [2], &dev)?;
//! acc.update_state(&y_true, &Tensor::new(vec![0.9f32, 0.1, 0.8, 0.2], [2, 2], &dev)?, None, None)?;
//! acc.update_state(&y_true, &Tensor::new(vec![0.9f32, 0.1, 0.3, 0.7], [2, 2], &dev)?, None, None)?;
//! assert_eq!(acc.result(), 0.75);                  // 3 of 4 samples so far
//! acc.reset_state();
//! assert_eq!(acc.result(), 0.0);
//! # Ok(()) }
//! ```

use std::fmt;

use strata_core::{Error, Result, Tensor};

use crate::losses::Loss;

mod accuracy;
mod auc;
mod confusion;
pub(crate) mod reduction;
mod regression;
#[cfg(test)]
mod tests;

pub use accuracy::{
    BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
};
pub use auc::{Auc, AucCurve, AucSummation};
pub use confusion::{Precision, PrecisionRate, Rate, Recall, RecallRate, ThresholdMetric, ThresholdRate};
pub use regression::{MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError};

/// The names [`resolve_metric`] accepts (case and underscores are ignored).
pub const METRIC_NAMES: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "precision",
    "recall",
    "auc",
    "mae",
    "mean_absolute_error",
    "mse",
    "mean_squared_error",
    "rmse",
    "root_mean_squared_error",
];

/// A metric: accumulates batches, reports a running value.
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let mut mae: Box<dyn Metric> = Box::new(MeanAbsoluteError::new().name("mae"));
/// let y_true = Tensor::new(vec![0.0f32, 1.0, 2.0, 3.0], [4, 1], &dev)?;
/// let y_pred = Tensor::new(vec![0.5f32, 1.0, 2.0, 1.0], [4, 1], &dev)?;
/// let weight = Tensor::new(vec![1.0f32, 1.0, 1.0, 0.0], [4], &dev)?;
/// mae.update_state(&y_true, &y_pred, Some(&weight), None)?;   // the last sample weighs 0
/// assert_eq!((mae.name(), mae.result()), ("mae", 0.5 / 3.0));
/// # Ok(()) }
/// ```
pub trait Metric: Send + Sync {
    /// The log key ("accuracy", "precision", "auc", "mae", ...).
    fn name(&self) -> &str;
    /// Accumulates one batch. `sample_weight` `[batch]` (or per-sample shape);
    /// mask f32 0/1 shaped like y_pred without its last axis; both fold into
    /// per-sample weights like Keras. Accumulate on the host in f64 (download a
    /// few scalars per batch); keep device work small.
    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<()>;
    /// The value so far (running average within an epoch).
    fn result(&self) -> f64;
    /// Forgets every batch seen so far.
    fn reset_state(&mut self);
    /// A fresh copy (same configuration, state reset), so a user's metric
    /// object can be resolved again for evaluate after fit.
    fn box_clone_fresh(&self) -> Box<dyn Metric>;
}

/// What compile's metrics list holds: a name, or a metric object.
///
/// ```
/// use strata::prelude::*;
/// let specs: Vec<MetricSpec> = vec!["accuracy".into(), Auc::new().num_thresholds(100).into()];
/// assert!(matches!(&specs[0], MetricSpec::Name(n) if n == "accuracy"));
/// ```
pub enum MetricSpec {
    /// A name, resolved by [`resolve_metric`] once targets are known.
    Name(String),
    /// A metric object; each resolution gets a fresh copy of it.
    Metric(Box<dyn Metric>),
}

impl fmt::Debug for MetricSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MetricSpec::Name(n) => write!(f, "MetricSpec::Name({n:?})"),
            MetricSpec::Metric(m) => write!(f, "MetricSpec::Metric({:?})", m.name()),
        }
    }
}

impl From<&str> for MetricSpec {
    fn from(name: &str) -> Self {
        MetricSpec::Name(name.to_string())
    }
}

impl From<String> for MetricSpec {
    fn from(name: String) -> Self {
        MetricSpec::Name(name)
    }
}

impl From<Box<dyn Metric>> for MetricSpec {
    fn from(metric: Box<dyn Metric>) -> Self {
        MetricSpec::Metric(metric)
    }
}

impl<M: Metric + 'static> From<M> for MetricSpec {
    fn from(metric: M) -> Self {
        MetricSpec::Metric(Box::new(metric))
    }
}

/// Turns a spec into a metric once targets are known (first fit/evaluate):
/// "accuracy"/"acc" → Binary / Categorical / SparseCategorical accuracy from the
/// loss and the shapes (Keras' rule), keeping the name the user gave. Other names:
/// "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy",
/// "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy", "precision",
/// "recall", "auc", "mae"/"mean_absolute_error", "mse"/"mean_squared_error",
/// "rmse"/"root_mean_squared_error". Unknown → Err listing names.
///
/// For "accuracy" the loss decides first (sparse categorical cross-entropy →
/// sparse categorical, binary → binary, categorical → categorical); any
/// other loss uses Keras' shape rule (`compile_utils.get_metric`): binary
/// when the output's last axis is 1, sparse when the targets have fewer axes
/// than the output or end in 1 while the output does not, else categorical.
/// A metric object resolves to a fresh copy of itself, so this can be
/// called again (fit, then evaluate).
///
/// ```
/// use strata::prelude::*;
/// use strata::metrics::resolve_metric;
///
/// # fn main() -> strata::Result<()> {
/// let loss = Loss::from_name("sparse_categorical_crossentropy")?;
/// let acc = resolve_metric(&"acc".into(), &loss, &[32], &[32, 10])?;
/// assert_eq!(acc.name(), "acc");                     // a SparseCategoricalAccuracy, keyed "acc"
/// let e = resolve_metric(&"acuracy".into(), &loss, &[32], &[32, 10]).err().unwrap();
/// assert!(e.to_string().contains("sparse_top_k_categorical_accuracy"));
/// # Ok(()) }
/// ```
pub fn resolve_metric(
    spec: &MetricSpec,
    loss: &Loss,
    y_true_dims: &[usize],
    y_pred_dims: &[usize],
) -> Result<Box<dyn Metric>> {
    let name = match spec {
        MetricSpec::Metric(m) => return Ok(m.box_clone_fresh()),
        MetricSpec::Name(name) => name.as_str(),
    };
    let key: String = name.trim().chars().filter(|&c| c != '_').flat_map(char::to_lowercase).collect();
    Ok(match key.as_str() {
        "accuracy" | "acc" => match loss {
            Loss::SparseCategoricalCrossentropy { .. } => Box::new(SparseCategoricalAccuracy::new().name(name)),
            Loss::BinaryCrossentropy { .. } => Box::new(BinaryAccuracy::new().name(name)),
            Loss::CategoricalCrossentropy { .. } => Box::new(CategoricalAccuracy::new().name(name)),
            _ => {
                let (t_last, p_last) = (y_true_dims.last().copied(), y_pred_dims.last().copied());
                let is_binary = p_last == Some(1);
                let is_sparse =
                    y_true_dims.len() < y_pred_dims.len() || (t_last == Some(1) && p_last.is_some_and(|p| p > 1));
                if is_binary {
                    Box::new(BinaryAccuracy::new().name(name))
                } else if is_sparse {
                    Box::new(SparseCategoricalAccuracy::new().name(name))
                } else {
                    Box::new(CategoricalAccuracy::new().name(name))
                }
            }
        },
        "binaryaccuracy" => Box::new(BinaryAccuracy::new().name(name)),
        "categoricalaccuracy" => Box::new(CategoricalAccuracy::new().name(name)),
        "sparsecategoricalaccuracy" => Box::new(SparseCategoricalAccuracy::new().name(name)),
        "topkcategoricalaccuracy" => Box::new(TopKCategoricalAccuracy::new(5).name(name)),
        "sparsetopkcategoricalaccuracy" => Box::new(SparseTopKCategoricalAccuracy::new(5).name(name)),
        "precision" => Box::new(Precision::new().name(name)),
        "recall" => Box::new(Recall::new().name(name)),
        "auc" => Box::new(Auc::new().name(name)),
        "mae" | "meanabsoluteerror" => Box::new(MeanAbsoluteError::new().name(name)),
        "mse" | "meansquarederror" => Box::new(MeanSquaredError::new().name(name)),
        "rmse" | "rootmeansquarederror" => Box::new(RootMeanSquaredError::new().name(name)),
        _ => {
            return Err(Error::invalid(
                "metric",
                format!("unknown metric `{name}`; valid names: {}", METRIC_NAMES.join(", ")),
            ))
        }
    })
}
