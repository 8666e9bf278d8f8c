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

use strata_core::{no_grad, DType, Error, Result, Shape, Tensor};

use crate::losses::{class_mask, mul_weights, pad_trailing, squeeze_or_expand, Loss, EPSILON};

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

// ------------------------------------------------------------------ helpers

/// Downloads a few small tensors in one transfer, as `f64`.
fn download(tensors: &[Tensor]) -> Result<Vec<f64>> {
    let flat: Vec<Tensor> = tensors.iter().map(|t| t.reshape([t.numel()])).collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = flat.iter().collect();
    Ok(Tensor::concat(&refs, 0)?.to_vec::<f32>()?.into_iter().map(f64::from).collect())
}

fn expect_f32(op: &'static str, y_pred: &Tensor) -> Result<()> {
    if y_pred.dtype() != DType::F32 {
        return Err(Error::DTypeMismatch { op, expected: DType::F32, received: y_pred.dtype() });
    }
    Ok(())
}

/// Keras' `apply_mask(sample_weight, mask, reduction="sum")`: the mask
/// multiplied into the sample weight (or standing in for it).
fn metric_weights(op: &'static str, sample_weight: Option<&Tensor>, mask: Option<&Tensor>) -> Result<Option<Tensor>> {
    let weight = sample_weight.map(|w| w.cast(DType::F32)).transpose()?;
    let Some(mask) = mask else { return Ok(weight) };
    let mask = mask.cast(DType::F32)?;
    Ok(Some(match weight {
        Some(w) => mul_weights(op, &mask, &w)?,
        None => mask,
    }))
}

fn axes(from: usize, to: usize) -> Vec<isize> {
    (from..to).map(|a| a as isize).collect()
}

/// Keras' `reduce_to_samplewise_values` followed by `Mean.update_state`:
/// the increments of (total, count) for one batch of values.
fn mean_increments(op: &'static str, values: &Tensor, weight: Option<&Tensor>) -> Result<(f64, f64)> {
    let Some(weight) = weight else {
        let count = values.dims().first().copied().unwrap_or(1) as f64;
        let values = if values.rank() > 1 { values.mean(&axes(1, values.rank()), false)? } else { values.clone() };
        return Ok((download(&[values.sum_all()?])?[0], count));
    };
    let (v, w) = squeeze_or_expand(values, weight, true)?;
    let w = pad_trailing(&w, v.rank())?;
    let (v_rank, w_rank) = (v.rank(), w.rank());
    let v = if v_rank > w_rank { v.mean(&axes(w_rank, v_rank), false)? } else { v };
    let w = w.broadcast_to(v.shape().clone()).map_err(|_| Error::ShapeMismatch {
        op,
        lhs: v.shape().clone(),
        rhs: w.shape().clone(),
        reason: "the sample weight (times the mask) does not fit the metric's per-sample values".into(),
    })?;
    let v = v.mul(&w)?;
    let w = if w_rank > 1 { w.mean(&axes(1, w_rank), false)? } else { w };
    let v = if v.rank() > 1 { v.mean(&axes(1, v.rank()), false)? } else { v };
    let sums = download(&[v.sum_all()?, w.sum_all()?])?;
    Ok((sums[0], sums[1]))
}

/// Running weighted mean, on the host.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct MeanState {
    total: f64,
    count: f64,
}

impl MeanState {
    fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

fn divide_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// Whether `(p > at_label)` leaves the label within the top `k` (ties count
/// in its favour, as Keras' `in_top_k`); `labels` are `i64` class ids shaped
/// like `p` without its last axis. The result is `f32` 0/1.
fn in_top_k(labels: &Tensor, p: &Tensor, k: usize) -> Result<Tensor> {
    let neg_inf = Tensor::full(f64::NEG_INFINITY, [], DType::F32, p.device())?;
    // The score at the label; −∞ for an id outside [0, classes) (Keras reads NaN there).
    let at_label = Tensor::where_cond(&class_mask(labels, p.dims()[p.rank() - 1])?, p, &neg_inf)?.max(-1, true)?;
    // A NaN score at the label ranks last, as in Keras.
    let at_label = Tensor::where_cond(&at_label.ne(&at_label)?, &neg_inf, &at_label)?;
    p.gt(&at_label)?.sum(&[-1], false)?.lt_scalar(k as f64)
}

// --------------------------------------------------------- mean metrics

/// Implements [`Metric`] for a weighted-mean metric with `name`, `state`
/// fields and a `values(&self, y_true, y_pred)` method, plus its `name`
/// builder.
macro_rules! mean_metric {
    ($t:ident, $op:literal) => {
        impl $t {
            /// Sets the log key (the default is the Keras name).
            ///
            /// On a concrete metric this builder shadows [`Metric::name`];
            /// read the key with `Metric::name(&metric)`.
            pub fn name(mut self, name: &str) -> Self {
                self.name = name.to_string();
                self
            }
        }

        impl Metric for $t {
            fn name(&self) -> &str {
                &self.name
            }

            fn update_state(
                &mut self,
                y_true: &Tensor,
                y_pred: &Tensor,
                sample_weight: Option<&Tensor>,
                mask: Option<&Tensor>,
            ) -> Result<()> {
                let (total, count) = no_grad(|| {
                    expect_f32($op, y_pred)?;
                    let values = self.values(y_true, y_pred)?;
                    let weight = metric_weights($op, sample_weight, mask)?;
                    mean_increments($op, &values, weight.as_ref())
                })?;
                self.state.total += total;
                self.state.count += count;
                Ok(())
            }

            fn result(&self) -> f64 {
                self.finish(self.state.result())
            }

            fn reset_state(&mut self) {
                self.state = MeanState::default();
            }

            fn box_clone_fresh(&self) -> Box<dyn Metric> {
                let mut fresh = self.clone();
                fresh.reset_state();
                Box::new(fresh)
            }
        }
    };
}

/// Keras' `BinaryAccuracy`: the fraction of entries where `y_pred > threshold`
/// equals `y_true` (default threshold 0.5).
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let mut m = BinaryAccuracy::new().threshold(0.7);
/// let y_true = Tensor::new(vec![1.0f32, 0.0, 1.0], [3, 1], &dev)?;
/// m.update_state(&y_true, &Tensor::new(vec![0.8f32, 0.6, 0.65], [3, 1], &dev)?, None, None)?;
/// assert!((m.result() - 2.0 / 3.0).abs() < 1e-12);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct BinaryAccuracy {
    name: String,
    threshold: f64,
    state: MeanState,
}

impl BinaryAccuracy {
    /// Threshold 0.5, named `binary_accuracy`.
    pub fn new() -> Self {
        BinaryAccuracy { name: "binary_accuracy".into(), threshold: 0.5, state: MeanState::default() }
    }

    /// Predictions strictly above `threshold` count as 1.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let t = y_true.cast(DType::F32)?;
        let (t, p) = squeeze_or_expand(&t, y_pred, true)?;
        Shape::broadcast("binary_accuracy", t.shape(), p.shape())?;
        t.eq(&p.gt_scalar(self.threshold)?)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for BinaryAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(BinaryAccuracy, "binary_accuracy");

/// Keras' `CategoricalAccuracy`: how often `argmax(y_pred)` equals
/// `argmax(y_true)` for one-hot targets shaped like the predictions.
#[derive(Clone, Debug)]
pub struct CategoricalAccuracy {
    name: String,
    state: MeanState,
}

impl CategoricalAccuracy {
    /// Named `categorical_accuracy`.
    pub fn new() -> Self {
        CategoricalAccuracy { name: "categorical_accuracy".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let t = y_true.cast(DType::F32)?;
        one_hot_targets("categorical_accuracy", &t, y_pred, "sparse_categorical_accuracy")?;
        t.argmax(-1, false)?.eq(&y_pred.argmax(-1, false)?)?.cast(DType::F32)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for CategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(CategoricalAccuracy, "categorical_accuracy");

fn one_hot_targets(op: &'static str, t: &Tensor, p: &Tensor, sparse: &str) -> Result<()> {
    if t.dims() == p.dims() && p.rank() > 0 {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: t.shape().clone(),
        rhs: p.shape().clone(),
        reason: format!("one-hot targets must have the predictions' shape (integer class ids need {sparse})"),
    })
}

/// Keras' `SparseCategoricalAccuracy`: how often `argmax(y_pred)` equals the
/// integer class id in `y_true` (`[batch]` or `[batch, 1]`; `[batch, T]` for
/// `[batch, T, C]` predictions).
#[derive(Clone, Debug)]
pub struct SparseCategoricalAccuracy {
    name: String,
    state: MeanState,
}

impl SparseCategoricalAccuracy {
    /// Named `sparse_categorical_accuracy`.
    pub fn new() -> Self {
        SparseCategoricalAccuracy { name: "sparse_categorical_accuracy".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        const OP: &str = "sparse_categorical_accuracy";
        let t = y_true.cast(DType::F32)?;
        let original = t.shape().clone();
        let t = if t.rank() == y_pred.rank() && t.dims().last() == Some(&1) { t.squeeze(-1)? } else { t };
        class_id_targets(OP, &t, y_pred)?;
        let matches = t.eq(&y_pred.argmax(-1, false)?.cast(DType::F32)?)?.reshape(original)?;
        if matches.rank() > 1 && matches.dims().last() == Some(&1) {
            matches.squeeze(-1)
        } else {
            Ok(matches)
        }
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for SparseCategoricalAccuracy {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(SparseCategoricalAccuracy, "sparse_categorical_accuracy");

fn class_id_targets(op: &'static str, t: &Tensor, p: &Tensor) -> Result<()> {
    if p.rank() > 0 && t.dims() == &p.dims()[..p.rank() - 1] {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: t.shape().clone(),
        rhs: p.shape().clone(),
        reason: "class ids must have the predictions' shape without its last axis".into(),
    })
}

/// Keras' `TopKCategoricalAccuracy`: how often the class of the one-hot
/// target is among the `k` highest predictions (ties count as hits).
#[derive(Clone, Debug)]
pub struct TopKCategoricalAccuracy {
    name: String,
    k: usize,
    state: MeanState,
}

impl TopKCategoricalAccuracy {
    /// Top-`k` accuracy (Keras' default `k` is 5), named `top_k_categorical_accuracy`.
    pub fn new(k: usize) -> Self {
        TopKCategoricalAccuracy { name: "top_k_categorical_accuracy".into(), k, state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        const OP: &str = "top_k_categorical_accuracy";
        check_k(OP, self.k)?;
        let t = y_true.cast(DType::F32)?;
        one_hot_targets(OP, &t, y_pred, "sparse_top_k_categorical_accuracy")?;
        in_top_k(&t.argmax(-1, false)?, y_pred, self.k)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

mean_metric!(TopKCategoricalAccuracy, "top_k_categorical_accuracy");

fn check_k(op: &'static str, k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid(op, "k must be at least 1, received 0"));
    }
    Ok(())
}

/// Keras' `SparseTopKCategoricalAccuracy`: how often the integer class id
/// is among the `k` highest predictions (ties count as hits).
#[derive(Clone, Debug)]
pub struct SparseTopKCategoricalAccuracy {
    name: String,
    k: usize,
    state: MeanState,
}

impl SparseTopKCategoricalAccuracy {
    /// Top-`k` accuracy (Keras' default `k` is 5), named `sparse_top_k_categorical_accuracy`.
    pub fn new(k: usize) -> Self {
        SparseTopKCategoricalAccuracy {
            name: "sparse_top_k_categorical_accuracy".into(),
            k,
            state: MeanState::default(),
        }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        const OP: &str = "sparse_top_k_categorical_accuracy";
        check_k(OP, self.k)?;
        if y_pred.rank() == 0 {
            return Err(Error::InvalidShape {
                op: OP,
                shape: y_pred.shape().clone(),
                reason: "needs a class axis".into(),
            });
        }
        // Keras flattens the ids and the rows of predictions and matches them up.
        let rows = &y_pred.dims()[..y_pred.rank() - 1];
        if y_true.numel() != rows.iter().product::<usize>() {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: y_true.shape().clone(),
                rhs: y_pred.shape().clone(),
                reason: "needs one class id per row of predictions".into(),
            });
        }
        let labels = y_true.cast(DType::I64)?.reshape(rows.to_vec())?;
        in_top_k(&labels, y_pred, self.k)?.reshape(y_true.shape().clone())
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

mean_metric!(SparseTopKCategoricalAccuracy, "sparse_top_k_categorical_accuracy");

/// Keras' `MeanAbsoluteError` metric: the weighted mean of `mean(|y_true − y_pred|, axis=-1)`.
#[derive(Clone, Debug)]
pub struct MeanAbsoluteError {
    name: String,
    state: MeanState,
}

impl MeanAbsoluteError {
    /// Named `mean_absolute_error`.
    pub fn new() -> Self {
        MeanAbsoluteError { name: "mean_absolute_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Loss::MeanAbsoluteError.per_sample(y_true, y_pred)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for MeanAbsoluteError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(MeanAbsoluteError, "mean_absolute_error");

/// Keras' `MeanSquaredError` metric: the weighted mean of `mean((y_true − y_pred)², axis=-1)`.
#[derive(Clone, Debug)]
pub struct MeanSquaredError {
    name: String,
    state: MeanState,
}

impl MeanSquaredError {
    /// Named `mean_squared_error`.
    pub fn new() -> Self {
        MeanSquaredError { name: "mean_squared_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        Loss::MeanSquaredError.per_sample(y_true, y_pred)
    }

    fn finish(&self, mean: f64) -> f64 {
        mean
    }
}

impl Default for MeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(MeanSquaredError, "mean_squared_error");

/// Keras' `RootMeanSquaredError`: the square root of the weighted mean squared error.
#[derive(Clone, Debug)]
pub struct RootMeanSquaredError {
    name: String,
    state: MeanState,
}

impl RootMeanSquaredError {
    /// Named `root_mean_squared_error`.
    pub fn new() -> Self {
        RootMeanSquaredError { name: "root_mean_squared_error".into(), state: MeanState::default() }
    }

    fn values(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let t = y_true.cast(DType::F32)?;
        let (t, p) = squeeze_or_expand(&t, y_pred, true)?;
        Shape::broadcast("root_mean_squared_error", t.shape(), p.shape())?;
        p.sub(&t)?.square()
    }

    fn finish(&self, mean: f64) -> f64 {
        mean.sqrt()
    }
}

impl Default for RootMeanSquaredError {
    fn default() -> Self {
        Self::new()
    }
}

mean_metric!(RootMeanSquaredError, "root_mean_squared_error");

// ---------------------------------------------------- confusion metrics

/// Labels (0/1: non-zero targets are positive), predictions aligned with
/// them, and the weights broadcast to the predictions' shape, as Keras'
/// `update_confusion_matrix_variables` prepares them.
fn confusion_inputs(
    op: &'static str,
    y_true: &Tensor,
    y_pred: &Tensor,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<(Tensor, Tensor, Option<Tensor>)> {
    expect_f32(op, y_pred)?;
    let t = y_true.cast(DType::F32)?;
    let (p, t) = squeeze_or_expand(y_pred, &t, true)?;
    if p.dims() != t.dims() {
        return Err(Error::ShapeMismatch {
            op,
            lhs: t.shape().clone(),
            rhs: p.shape().clone(),
            reason: "targets must have the predictions' shape".into(),
        });
    }
    let weight = match metric_weights(op, sample_weight, mask)? {
        None => None,
        Some(w) => {
            let (_, w) = squeeze_or_expand(&t, &w.unsqueeze(-1)?, false)?;
            let w = pad_trailing(&w, p.rank())?;
            Some(w.broadcast_to(p.shape().clone()).map_err(|_| Error::ShapeMismatch {
                op,
                lhs: p.shape().clone(),
                rhs: w.shape().clone(),
                reason: "the sample weight (times the mask) does not fit the predictions".into(),
            })?)
        }
    };
    Ok((t.ne_scalar(0.0)?, p, weight))
}

fn check_threshold(op: &'static str, threshold: f64) -> Result<()> {
    if !(0.0..=1.0).contains(&threshold) {
        return Err(Error::invalid(op, format!("threshold must be in [0, 1], received {threshold}")));
    }
    Ok(())
}

/// The count that [`Precision`] or [`Recall`] sets against the true
/// positives.
#[derive(Clone, Copy)]
enum Missed {
    FalsePositives,
    FalseNegatives,
}

/// Weighted `[true positives, false positives or negatives]` of one batch at
/// one threshold (predictions strictly above it are positive).
fn threshold_counts(
    op: &'static str,
    threshold: f64,
    missed: Missed,
    y_true: &Tensor,
    y_pred: &Tensor,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<Vec<f64>> {
    check_threshold(op, threshold)?;
    no_grad(|| {
        let (label, p, weight) = confusion_inputs(op, y_true, y_pred, sample_weight, mask)?;
        let mut positive = p.gt_scalar(threshold)?;
        if let Some(w) = &weight {
            positive = positive.mul(w)?;
        }
        let tp = label.mul(&positive)?.sum_all()?;
        let other = match missed {
            Missed::FalsePositives => label.affine(-1.0, 1.0)?.mul(&positive)?.sum_all()?,
            // Positive targets predicted negative: weight · label − TP.
            Missed::FalseNegatives => {
                let weighted = match &weight {
                    Some(w) => label.mul(w)?,
                    None => label.clone(),
                };
                weighted.sum_all()?.sub(&tp)?
            }
        };
        download(&[tp, other])
    })
}

/// Keras' `Precision` at one threshold: `TP / (TP + FP)`, where a prediction
/// is positive when strictly above the threshold (default 0.5) and a target
/// is positive when non-zero. 0 when nothing was predicted positive.
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let mut p = Precision::new();
/// let y_true = Tensor::new(vec![1.0f32, 0.0, 1.0, 0.0], [4, 1], &dev)?;
/// p.update_state(&y_true, &Tensor::new(vec![0.9f32, 0.8, 0.2, 0.1], [4, 1], &dev)?, None, None)?;
/// assert_eq!(p.result(), 0.5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Precision {
    name: String,
    threshold: f64,
    true_positives: f64,
    false_positives: f64,
}

impl Precision {
    /// Threshold 0.5, named `precision`.
    pub fn new() -> Self {
        Precision { name: "precision".into(), threshold: 0.5, true_positives: 0.0, false_positives: 0.0 }
    }

    /// Predictions strictly above `threshold` (in `[0, 1]`) count as positive.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the log key (default `precision`). Shadows [`Metric::name`] on
    /// the concrete type; read the key with `Metric::name(&metric)`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl Default for Precision {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for Precision {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<()> {
        let counts =
            threshold_counts("precision", self.threshold, Missed::FalsePositives, y_true, y_pred, sample_weight, mask)?;
        self.true_positives += counts[0];
        self.false_positives += counts[1];
        Ok(())
    }

    fn result(&self) -> f64 {
        divide_no_nan(self.true_positives, self.true_positives + self.false_positives)
    }

    fn reset_state(&mut self) {
        self.true_positives = 0.0;
        self.false_positives = 0.0;
    }

    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset_state();
        Box::new(fresh)
    }
}

/// Keras' `Recall` at one threshold: `TP / (TP + FN)`, where a prediction
/// is positive when strictly above the threshold (default 0.5) and a target
/// is positive when non-zero. 0 when there were no positive targets.
#[derive(Clone, Debug)]
pub struct Recall {
    name: String,
    threshold: f64,
    true_positives: f64,
    false_negatives: f64,
}

impl Recall {
    /// Threshold 0.5, named `recall`.
    pub fn new() -> Self {
        Recall { name: "recall".into(), threshold: 0.5, true_positives: 0.0, false_negatives: 0.0 }
    }

    /// Predictions strictly above `threshold` (in `[0, 1]`) count as positive.
    pub fn threshold(mut self, threshold: f64) -> Self {
        self.threshold = threshold;
        self
    }

    /// Sets the log key (default `recall`). Shadows [`Metric::name`] on the
    /// concrete type; read the key with `Metric::name(&metric)`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl Default for Recall {
    fn default() -> Self {
        Self::new()
    }
}

impl Metric for Recall {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<()> {
        let counts =
            threshold_counts("recall", self.threshold, Missed::FalseNegatives, y_true, y_pred, sample_weight, mask)?;
        self.true_positives += counts[0];
        self.false_negatives += counts[1];
        Ok(())
    }

    fn result(&self) -> f64 {
        divide_no_nan(self.true_positives, self.true_positives + self.false_negatives)
    }

    fn reset_state(&mut self) {
        self.true_positives = 0.0;
        self.false_negatives = 0.0;
    }

    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset_state();
        Box::new(fresh)
    }
}

/// Which curve [`Auc`] integrates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AucCurve {
    /// Receiver operating characteristic: recall against false-positive rate (Keras' default).
    #[default]
    Roc,
    /// Precision against recall.
    Pr,
}

/// How [`Auc`] sums the area between thresholds (Keras' `summation_method`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AucSummation {
    /// Trapezoids for ROC; for PR, Davis & Goadrich's interpolation (Keras' default).
    #[default]
    Interpolation,
    /// The lower of the two heights of each interval.
    Minoring,
    /// The higher of the two heights of each interval.
    Majoring,
}

/// Keras' `AUC`: the area under the ROC (or PR) curve, approximated with a
/// confusion matrix at `num_thresholds` evenly spaced thresholds (default
/// 200), plus the end points `−ε` and `1 + ε`.
///
/// Each batch sorts predictions into buckets on the device (one `index_add`
/// per class of target) and downloads the two histograms; the cumulative
/// counts live on the host in `f64`. Targets are positive when non-zero;
/// predictions are clipped to `[0, 1]` (or passed through a sigmoid first
/// with [`from_logits`](Auc::from_logits)).
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = strata::backend::native();
/// let mut auc = Auc::new();
/// let y_true = Tensor::new(vec![0.0f32, 0.0, 1.0, 1.0], [4], &dev)?;
/// auc.update_state(&y_true, &Tensor::new(vec![0.1f32, 0.4, 0.35, 0.8], [4], &dev)?, None, None)?;
/// assert!((auc.result() - 0.75).abs() < 1e-6);     // sklearn's exact ROC AUC is 0.75 too
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Auc {
    name: String,
    num_thresholds: usize,
    thresholds: Option<Vec<f64>>,
    curve: AucCurve,
    summation: AucSummation,
    from_logits: bool,
    true_positives: Vec<f64>,
    false_positives: Vec<f64>,
    true_negatives: Vec<f64>,
    false_negatives: Vec<f64>,
}

impl Auc {
    /// ROC AUC with 200 thresholds and interpolation, named `auc`.
    pub fn new() -> Self {
        Auc {
            name: "auc".into(),
            num_thresholds: 200,
            thresholds: None,
            curve: AucCurve::Roc,
            summation: AucSummation::Interpolation,
            from_logits: false,
            true_positives: Vec::new(),
            false_positives: Vec::new(),
            true_negatives: Vec::new(),
            false_negatives: Vec::new(),
        }
    }

    /// The number of evenly spaced thresholds, including the end points
    /// (more than 1; Keras' default is 200).
    pub fn num_thresholds(mut self, n: usize) -> Self {
        self.num_thresholds = n;
        self.thresholds = None;
        self
    }

    /// Explicit thresholds in `[0, 1]` instead of evenly spaced ones (the end
    /// points `−ε` and `1 + ε` are added, as in Keras).
    pub fn thresholds(mut self, thresholds: Vec<f64>) -> Self {
        self.thresholds = Some(thresholds);
        self
    }

    /// The curve to integrate (ROC by default).
    pub fn curve(mut self, curve: AucCurve) -> Self {
        self.curve = curve;
        self
    }

    /// How to sum the area (interpolation by default).
    pub fn summation_method(mut self, summation: AucSummation) -> Self {
        self.summation = summation;
        self
    }

    /// Whether the predictions are logits (a sigmoid is applied first).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Sets the log key (default `auc`). Shadows [`Metric::name`] on the
    /// concrete type; read the key with `Metric::name(&metric)`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Keras' thresholds (with the `−ε`, `1 + ε` end points) and whether
    /// they are evenly spaced, which selects Keras' bucketing formula.
    fn threshold_list(&self) -> Result<(Vec<f64>, bool)> {
        const OP: &str = "auc";
        let inner: Vec<f64> = match &self.thresholds {
            Some(given) => {
                if let Some(bad) = given.iter().find(|t| !(0.0..=1.0).contains(*t)) {
                    return Err(Error::invalid(OP, format!("thresholds must be in [0, 1], received {bad}")));
                }
                let mut sorted = given.clone();
                sorted.sort_by(f64::total_cmp);
                sorted
            }
            None => {
                let n = self.num_thresholds;
                if n <= 1 {
                    return Err(Error::invalid(OP, format!("num_thresholds must be greater than 1, received {n}")));
                }
                (0..n - 2).map(|i| (i + 1) as f64 / (n - 1) as f64).collect()
            }
        };
        let evenly = match &self.thresholds {
            None => true,
            Some(_) => {
                let mut with_ends = vec![0.0];
                with_ends.extend(&inner);
                with_ends.push(1.0);
                evenly_distributed(&with_ends)
            }
        };
        let mut all = vec![-EPSILON];
        all.extend(inner);
        all.push(1.0 + EPSILON);
        Ok((all, evenly))
    }

    fn summed_area(&self) -> f64 {
        let (tp, fp, tn, fn_) =
            (&self.true_positives, &self.false_positives, &self.true_negatives, &self.false_negatives);
        let n = tp.len();
        if n < 2 {
            return 0.0;
        }
        if self.curve == AucCurve::Pr && self.summation == AucSummation::Interpolation {
            return (0..n - 1)
                .map(|i| {
                    let (p_i, p_next) = (tp[i] + fp[i], tp[i + 1] + fp[i + 1]);
                    let dtp = tp[i] - tp[i + 1];
                    let slope = divide_no_nan(dtp, (p_i - p_next).max(0.0));
                    let intercept = tp[i + 1] - slope * p_next;
                    let ratio = if p_i > 0.0 && p_next > 0.0 { divide_no_nan(p_i, p_next.max(0.0)) } else { 1.0 };
                    divide_no_nan(slope * (dtp + intercept * ratio.ln()), (tp[i + 1] + fn_[i + 1]).max(0.0))
                })
                .sum();
        }
        let recall: Vec<f64> = (0..n).map(|i| divide_no_nan(tp[i], tp[i] + fn_[i])).collect();
        let (x, y): (Vec<f64>, Vec<f64>) = match self.curve {
            AucCurve::Roc => ((0..n).map(|i| divide_no_nan(fp[i], fp[i] + tn[i])).collect(), recall),
            AucCurve::Pr => (recall, (0..n).map(|i| divide_no_nan(tp[i], tp[i] + fp[i])).collect()),
        };
        (0..n - 1)
            .map(|i| {
                let height = match self.summation {
                    AucSummation::Interpolation => (y[i] + y[i + 1]) / 2.0,
                    AucSummation::Minoring => y[i].min(y[i + 1]),
                    AucSummation::Majoring => y[i].max(y[i + 1]),
                };
                (x[i] - x[i + 1]) * height
            })
            .sum()
    }
}

impl Default for Auc {
    fn default() -> Self {
        Self::new()
    }
}

/// Keras' `is_evenly_distributed_thresholds`: at least 3 values, each
/// within `np.allclose` of `i / (n − 1)`.
fn evenly_distributed(thresholds: &[f64]) -> bool {
    let n = thresholds.len();
    n >= 3
        && thresholds.iter().enumerate().all(|(i, &t)| {
            let even = (i as f32 / (n - 1) as f32) as f64;
            (t - even).abs() <= EPSILON + 1e-5 * even.abs()
        })
}

impl Metric for Auc {
    fn name(&self) -> &str {
        &self.name
    }

    fn update_state(
        &mut self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<()> {
        const OP: &str = "auc";
        let (thresholds, evenly) = self.threshold_list()?;
        let n = thresholds.len();
        let buckets = no_grad(|| {
            expect_f32(OP, y_pred)?;
            let p = if self.from_logits { y_pred.sigmoid()? } else { y_pred.clone() };
            let (label, p, weight) = confusion_inputs(OP, y_true, &p, sample_weight, mask)?;
            let count = p.numel();
            let (mut positives, mut negatives) = (label.clone(), label.affine(-1.0, 1.0)?);
            if let Some(w) = &weight {
                positives = positives.mul(w)?;
                negatives = negatives.mul(w)?;
            }
            // Bucket b holds the predictions above thresholds 0..b (evenly spaced: Keras'
            // `relu(ceil(p·(n−1)) − 1)`), else bucket k = the number of thresholds below p.
            let (index, size) = if evenly {
                let p = p.maximum_scalar(0.0)?.minimum_scalar(1.0)?;
                (p.mul_scalar((n - 1) as f64)?.ceil()?.sub_scalar(1.0)?.relu()?, n)
            } else {
                let t: Vec<f32> = thresholds.iter().map(|&t| t as f32).collect();
                let t = Tensor::new(t, [n], p.device())?;
                (p.reshape([count, 1])?.gt(&t)?.sum(&[-1], false)?, n + 1)
            };
            let index = index.reshape([count])?.cast(DType::I64)?;
            let zeros = Tensor::zeros([size], DType::F32, p.device())?;
            let tp = zeros.index_add(0, &index, &positives.reshape([count])?)?;
            let fp = zeros.index_add(0, &index, &negatives.reshape([count])?)?;
            Ok::<_, Error>((download(&[tp, fp])?, size))
        })?;
        let (values, size) = buckets;
        let (tp_buckets, fp_buckets) = values.split_at(size);
        // Reverse cumulative sums: the weight predicted positive at each threshold.
        let skip = if evenly { 0 } else { 1 };
        let suffix = |b: &[f64]| -> Vec<f64> {
            let mut out = vec![0.0; n];
            let mut acc = 0.0;
            for i in (0..n).rev() {
                acc += b[i + skip];
                out[i] = acc;
            }
            out
        };
        let (tp, fp) = (suffix(tp_buckets), suffix(fp_buckets));
        let (all_true, all_false): (f64, f64) = (tp_buckets.iter().sum(), fp_buckets.iter().sum());
        if self.true_positives.len() != n {
            self.reset_state();
            for v in [
                &mut self.true_positives,
                &mut self.false_positives,
                &mut self.true_negatives,
                &mut self.false_negatives,
            ] {
                *v = vec![0.0; n];
            }
        }
        for i in 0..n {
            self.true_positives[i] += tp[i];
            self.false_positives[i] += fp[i];
            self.false_negatives[i] += all_true - tp[i];
            self.true_negatives[i] += all_false - fp[i];
        }
        Ok(())
    }

    fn result(&self) -> f64 {
        self.summed_area()
    }

    fn reset_state(&mut self) {
        for v in
            [&mut self.true_positives, &mut self.false_positives, &mut self.true_negatives, &mut self.false_negatives]
        {
            v.iter_mut().for_each(|x| *x = 0.0);
        }
    }

    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset_state();
        Box::new(fresh)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::new(data.to_vec(), shape.to_vec(), &backend::native()).unwrap()
    }

    #[test]
    fn names_resolve_keeping_the_users_key() {
        let mse = Loss::MeanSquaredError;
        let cases: &[(&str, &[usize], &[usize])] =
            &[("mae", &[4, 1], &[4, 1]), ("RMSE", &[4, 1], &[4, 1]), ("auc", &[4], &[4, 1])];
        for (name, t_dims, p_dims) in cases {
            let m = resolve_metric(&(*name).into(), &mse, t_dims, p_dims).unwrap();
            assert_eq!(m.name(), *name);
        }
        let e = resolve_metric(&"f1".into(), &mse, &[4], &[4]).err().unwrap().to_string();
        assert!(e.contains("`f1`"), "{e}");
        for name in METRIC_NAMES {
            assert!(e.contains(name), "{e} lacks {name}");
            assert!(resolve_metric(&(*name).into(), &mse, &[4], &[4, 3]).is_ok(), "{name}");
        }
    }

    /// Which accuracy "accuracy" becomes: checked by behaviour on a batch
    /// that the three kinds score differently.
    #[test]
    fn accuracy_follows_the_loss_then_keras_shape_rule() {
        fn score(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Result<f64> {
            let mut m = resolve_metric(&"accuracy".into(), &loss, y_true.dims(), y_pred.dims())?;
            m.update_state(y_true, y_pred, None, None)?;
            Ok(m.result())
        }
        let p = t(&[0.2, 0.7, 0.1, 0.6, 0.3, 0.1], &[2, 3]);
        let ids = t(&[1.0, 1.0], &[2]);
        let one_hot = t(&[0.0, 1.0, 0.0, 0.0, 1.0, 0.0], &[2, 3]);
        // Sparse targets: SCCE and Keras' rank rule both pick sparse accuracy.
        assert_eq!(score(Loss::SparseCategoricalCrossentropy { from_logits: false }, &ids, &p).unwrap(), 0.5);
        assert_eq!(score(Loss::MeanSquaredError, &ids, &p).unwrap(), 0.5);
        assert_eq!(score(Loss::MeanSquaredError, &t(&[1.0, 1.0], &[2, 1]), &p).unwrap(), 0.5);
        // One-hot targets: categorical.
        assert_eq!(score(Loss::CategoricalCrossentropy { from_logits: false }, &one_hot, &p).unwrap(), 0.5);
        assert_eq!(score(Loss::MeanSquaredError, &one_hot, &p).unwrap(), 0.5);
        // Multi-label outputs with binary cross-entropy: binary (Keras' shape rule would say categorical).
        let multi = t(&[0.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[2, 3]);
        assert!((score(Loss::BinaryCrossentropy { from_logits: false }, &multi, &p).unwrap() - 5.0 / 6.0).abs() < 1e-6);
        // One output unit: binary.
        let p1 = t(&[0.8, 0.3], &[2, 1]);
        assert_eq!(score(Loss::MeanSquaredError, &t(&[1.0, 1.0], &[2, 1]), &p1).unwrap(), 0.5);
    }

    #[test]
    fn metric_objects_resolve_to_fresh_copies() {
        let spec: MetricSpec = Precision::new().threshold(0.3).name("p30").into();
        let mut first = resolve_metric(&spec, &Loss::MeanSquaredError, &[2, 1], &[2, 1]).unwrap();
        first.update_state(&t(&[1.0, 0.0], &[2, 1]), &t(&[0.4, 0.4], &[2, 1]), None, None).unwrap();
        assert_eq!((first.name(), first.result()), ("p30", 0.5));
        let second = resolve_metric(&spec, &Loss::MeanSquaredError, &[2, 1], &[2, 1]).unwrap();
        assert_eq!((second.name(), second.result()), ("p30", 0.0));
        assert!(format!("{spec:?}").contains("p30"));
    }

    #[test]
    fn bad_arguments_and_shapes_are_errors() {
        let y = t(&[1.0, 0.0], &[2, 1]);
        let p = t(&[0.4, 0.6], &[2, 1]);
        let e = Precision::new().threshold(1.5).update_state(&y, &p, None, None).unwrap_err().to_string();
        assert!(e.contains("1.5"), "{e}");
        let e = Auc::new().num_thresholds(1).update_state(&y, &p, None, None).unwrap_err().to_string();
        assert!(e.contains("num_thresholds"), "{e}");
        let e = TopKCategoricalAccuracy::new(0).update_state(&y, &p, None, None).unwrap_err().to_string();
        assert!(e.contains("k must be"), "{e}");
        let e = CategoricalAccuracy::new().update_state(&t(&[1.0, 2.0], &[2]), &t(&[0.0; 6], &[2, 3]), None, None);
        assert!(e.unwrap_err().to_string().contains("sparse_categorical_accuracy"));
        let e = Recall::new().update_state(&y, &p, Some(&t(&[1.0; 3], &[3])), None).unwrap_err().to_string();
        assert!(e.contains("recall") && e.contains("sample weight"), "{e}");
        let e =
            SparseCategoricalAccuracy::new().update_state(&t(&[5.0, 0.0], &[2]), &t(&[0.0; 6], &[2, 3]), None, None);
        assert!(e.is_ok(), "an out-of-range id is simply a miss, as in Keras");
        let mut top2 = SparseTopKCategoricalAccuracy::new(2);
        top2.update_state(&t(&[5.0, 0.0], &[2]), &t(&[0.1, 0.2, 0.3, 0.3, 0.2, 0.1], &[2, 3]), None, None).unwrap();
        assert_eq!(top2.result(), 0.5, "an out-of-range id is a miss, as in Keras");
    }

    #[test]
    fn empty_metrics_report_zero() {
        assert_eq!(Auc::new().result(), 0.0);
        assert_eq!(Precision::new().result(), 0.0);
        assert_eq!(RootMeanSquaredError::new().result(), 0.0);
    }
}
