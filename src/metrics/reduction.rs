//! The machinery of the averaging metrics: the weighted running mean
//! ([`MeanState`], Keras' `MeanMetricWrapper`), the weights a mask and a
//! sample weight make, and the small helpers every family shares.

use strata_core::{DType, Error, Result, Tensor};

use crate::losses::{mul_weights, pad_trailing, squeeze_or_expand};

/// Downloads a few small tensors in one transfer, as `f64`.
pub(crate) fn download(tensors: &[Tensor]) -> Result<Vec<f64>> {
    let flat: Vec<Tensor> = tensors.iter().map(|t| t.reshape([t.numel()])).collect::<Result<_>>()?;
    let refs: Vec<&Tensor> = flat.iter().collect();
    Ok(Tensor::concat(&refs, 0)?.to_vec::<f32>()?.into_iter().map(f64::from).collect())
}

pub(crate) fn expect_f32(op: &'static str, y_pred: &Tensor) -> Result<()> {
    if y_pred.dtype() != DType::F32 {
        return Err(Error::DTypeMismatch { op, expected: DType::F32, received: y_pred.dtype() });
    }
    Ok(())
}

/// Keras' `apply_mask(sample_weight, mask, reduction="sum")`: the mask
/// multiplied into the sample weight (or standing in for it).
pub(crate) fn metric_weights(
    op: &'static str,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<Option<Tensor>> {
    let weight = sample_weight.map(|w| w.cast(DType::F32)).transpose()?;
    let Some(mask) = mask else { return Ok(weight) };
    let mask = mask.cast(DType::F32)?;
    Ok(Some(match weight {
        Some(w) => mul_weights(op, &mask, &w)?,
        None => mask,
    }))
}

pub(crate) fn axes(from: usize, to: usize) -> Vec<isize> {
    (from..to).map(|a| a as isize).collect()
}

/// Keras' `reduce_to_samplewise_values` followed by `Mean.update_state`:
/// the increments of (total, count) for one batch of values.
pub(crate) fn mean_increments(op: &'static str, values: &Tensor, weight: Option<&Tensor>) -> Result<(f64, f64)> {
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
pub(crate) struct MeanState {
    pub(crate) total: f64,
    pub(crate) count: f64,
}

impl MeanState {
    /// Adds `value` with `weight` (the loss trackers weigh a batch's mean
    /// by its sample count, Keras' `Mean` metric).
    pub(crate) fn add(&mut self, value: f64, weight: f64) {
        self.total += value * weight;
        self.count += weight;
    }

    pub(crate) fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

pub(crate) fn divide_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

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

pub(crate) use mean_metric;
