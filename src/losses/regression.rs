//! The regression losses: mean squared error, mean absolute error, Huber.

use strata_core::{Error, Result, Tensor};

use super::reduction::broadcastable;

/// `mean((t − p)², axis=-1)`.
pub(super) fn mean_squared_error(op: &'static str, t: &Tensor, p: &Tensor) -> Result<Tensor> {
    broadcastable(op, t, p)?;
    t.sub(p)?.square()?.mean(&[-1], false)
}

/// `mean(|t − p|, axis=-1)`.
pub(super) fn mean_absolute_error(op: &'static str, t: &Tensor, p: &Tensor) -> Result<Tensor> {
    broadcastable(op, t, p)?;
    t.sub(p)?.abs()?.mean(&[-1], false)
}

/// `mean(½e² if |e| ≤ δ else δ|e| − ½δ², axis=-1)` with `e = p − t`.
pub(super) fn huber(op: &'static str, t: &Tensor, p: &Tensor, delta: f64) -> Result<Tensor> {
    if !(delta.is_finite() && delta > 0.0) {
        return Err(Error::invalid(op, format!("delta must be positive and finite, received {delta}")));
    }
    broadcastable(op, t, p)?;
    let err = p.sub(t)?;
    let abs = err.abs()?;
    let quadratic = err.square()?.mul_scalar(0.5)?;
    let linear = abs.mul_scalar(delta)?.sub_scalar(0.5 * delta * delta)?;
    Tensor::where_cond(&abs.le_scalar(delta)?, &quadratic, &linear)?.mean(&[-1], false)
}
