//! Accuracy metrics: binary, categorical, sparse categorical and their
//! top-k forms, with Keras 3's semantics.

use strata_core::{no_grad, DType, Error, Result, Shape, Tensor};

use super::reduction::{expect_f32, mean_increments, mean_metric, metric_weights, MeanState};
use super::Metric;
use crate::losses::{class_mask, squeeze_or_expand};

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
