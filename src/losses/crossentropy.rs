//! The cross-entropies: binary, categorical and sparse categorical, from
//! probabilities (clipped to `[ε, 1 − ε]`) or from logits (one fused
//! `log_softmax` op, also under a softmax output).

use strata_core::{DType, Error, Result, Tensor};

use super::reduction::{same_shape, squeeze_or_expand};
use super::EPSILON;

/// `mean(−t·log p − (1−t)·log(1−p), axis=-1)`, or from logits
/// `t·softplus(−x) + (1−t)·softplus(x)`.
pub(super) fn binary(op: &'static str, t: &Tensor, p: &Tensor, from_logits: bool) -> Result<Tensor> {
    same_shape(op, t, p, "")?;
    let one_minus_t = t.affine(-1.0, 1.0)?;
    let elementwise = if from_logits {
        // −t·log σ(x) − (1−t)·log σ(−x) = t·softplus(−x) + (1−t)·softplus(x)
        t.mul(&p.neg()?.softplus()?)?.add(&one_minus_t.mul(&p.softplus()?)?)?
    } else {
        let p = clip_probabilities(p)?;
        let one_minus_p = p.affine(-1.0, 1.0)?;
        t.mul(&p.log()?)?.add(&one_minus_t.mul(&one_minus_p.log()?)?)?.neg()?
    };
    elementwise.mean(&[-1], false)
}

/// `−Σ t·log p` over the last axis, for one-hot (or soft) targets shaped
/// like the predictions.
pub(super) fn categorical(op: &'static str, t: &Tensor, p: &Tensor, from_logits: bool) -> Result<Tensor> {
    let hint = if t.rank() + 1 == p.rank() || t.dims().last() == Some(&1) {
        " (integer class ids need sparse_categorical_crossentropy)"
    } else {
        ""
    };
    same_shape(op, t, p, hint)?;
    categorical_from_targets(t, p, from_logits)
}

/// `clip(p, ε, 1 − ε)`, as Keras does before taking logarithms.
fn clip_probabilities(p: &Tensor) -> Result<Tensor> {
    p.maximum_scalar(EPSILON)?.minimum_scalar(1.0 - EPSILON)
}

/// The logits behind predictions `p`: `p` itself with `from_logits`, else
/// the input of the softmax that produced `p`, if one did.
fn logits(p: &Tensor, from_logits: bool) -> Option<&Tensor> {
    if from_logits {
        Some(p)
    } else {
        p.softmax_input()
    }
}

/// `−Σ t·log p` over the last axis: from logits (given, or under a
/// softmax) in one fused op, else from renormalised, clipped probabilities.
fn categorical_from_targets(t: &Tensor, p: &Tensor, from_logits: bool) -> Result<Tensor> {
    if let Some(z) = logits(p, from_logits) {
        return z.softmax_cross_entropy(t);
    }
    let p = p.div(&p.sum(&[-1], true)?)?;
    t.mul(&clip_probabilities(&p)?.log()?)?.sum(&[-1], false)?.neg()
}

/// The categorical cross-entropy of integer class ids.
pub(super) fn sparse_categorical(y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    const OP: &str = "sparse_categorical_crossentropy";
    // Keras' wrapper aligns ranks first; then a trailing 1 on the ids goes.
    let (t, p) = squeeze_or_expand(y_true, y_pred, true)?;
    let t = if t.rank() == p.rank() && t.dims().last() == Some(&1) { t.squeeze(-1)? } else { t };
    if t.dims() != &p.dims()[..p.rank() - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: t.shape().clone(),
            rhs: p.shape().clone(),
            reason: "class ids must have the predictions' shape without its last axis".into(),
        });
    }
    let ids = t.cast(DType::I64)?;
    if let Some(z) = logits(&p, from_logits) {
        return z.softmax_cross_entropy(&ids);
    }
    let one_hot = class_mask(&ids, p.dims()[p.rank() - 1])?.cast(DType::F32)?;
    categorical_from_targets(&one_hot, &p, false)
}

/// `ids[..., None] == arange(classes)` as `i64` 0/1: a one-hot encoding
/// without `Tensor::one_hot`'s range check, which would cost a device→host
/// sync on every batch. [`Loss::check_targets`] checks the ids once,
/// before training; an id outside `[0, classes)` here gives a row of zeros
/// (a loss of 0, as Keras on JAX gives).
pub(crate) fn class_mask(ids: &Tensor, classes: usize) -> Result<Tensor> {
    ids.unsqueeze(-1)?.eq(&Tensor::arange(classes, DType::I64, ids.device())?)
}

/// Reads every class id on the host: integral, and inside `[0, classes)` when known.
pub(super) fn check_labels(op: &'static str, y_true: &Tensor, classes: Option<usize>) -> Result<()> {
    let upper = classes.map(|c| c as f64).unwrap_or(f64::INFINITY);
    let range = classes.map(|c| format!("[0, {c})")).unwrap_or_else(|| "[0, classes)".into());
    let check = |i: usize, v: f64, shown: String| -> Result<()> {
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(Error::invalid(op, format!("label {shown} at index {i} is not an integer class id")));
        }
        if v < 0.0 || v >= upper {
            return Err(Error::invalid(op, format!("label {shown} at index {i} is outside {range}")));
        }
        Ok(())
    };
    match y_true.dtype() {
        DType::I64 => {
            y_true.to_vec::<i64>()?.into_iter().enumerate().try_for_each(|(i, v)| check(i, v as f64, v.to_string()))
        }
        DType::F32 => {
            y_true.to_vec::<f32>()?.into_iter().enumerate().try_for_each(|(i, v)| check(i, v as f64, v.to_string()))
        }
    }
}
