//! Keras' shape rules (`squeeze_or_expand_to_same_rank`) and its
//! `"sum_over_batch_size"` reduction with sample weights and masks.

use strata_core::{DType, Error, Result, Shape, Tensor};

/// Keras' `squeeze_or_expand_to_same_rank`: when the ranks differ by one and
/// the longer shape ends in 1, squeeze that axis — or, with `expand_rank_1`
/// and a rank-1 shorter operand, expand the shorter one instead.
pub(crate) fn squeeze_or_expand(x1: &Tensor, x2: &Tensor, expand_rank_1: bool) -> Result<(Tensor, Tensor)> {
    let (r1, r2) = (x1.rank(), x2.rank());
    let (mut a, mut b) = (x1.clone(), x2.clone());
    if r1 == r2 + 1 && x1.dims().last() == Some(&1) {
        if r2 == 1 && expand_rank_1 {
            b = b.unsqueeze(-1)?;
        } else {
            a = a.squeeze(-1)?;
        }
    }
    if r2 == r1 + 1 && x2.dims().last() == Some(&1) {
        if r1 == 1 && expand_rank_1 {
            a = a.unsqueeze(-1)?;
        } else {
            b = b.squeeze(-1)?;
        }
    }
    Ok((a, b))
}

/// [`squeeze_or_expand`] on shapes with unknown (`None`) axes.
pub(super) fn squeeze_or_expand_dims(
    x1: &[Option<usize>],
    x2: &[Option<usize>],
    expand_rank_1: bool,
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let (mut a, mut b) = (x1.to_vec(), x2.to_vec());
    if x1.len() == x2.len() + 1 && x1.last() == Some(&Some(1)) {
        if x2.len() == 1 && expand_rank_1 {
            b.push(Some(1));
        } else {
            a.pop();
        }
    }
    if x2.len() == x1.len() + 1 && x2.last() == Some(&Some(1)) {
        if x1.len() == 1 && expand_rank_1 {
            a.push(Some(1));
        } else {
            b.pop();
        }
    }
    (a, b)
}

/// Equal ranks and equal sizes wherever both are known.
pub(super) fn dims_fit(a: &[Option<usize>], b: &[Option<usize>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.is_none() || y.is_none() || x == y)
}

pub(super) fn same_shape(op: &'static str, t: &Tensor, p: &Tensor, hint: &str) -> Result<()> {
    if t.dims() == p.dims() {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: t.shape().clone(),
        rhs: p.shape().clone(),
        reason: format!("targets must have the predictions' shape{hint}"),
    })
}

pub(super) fn broadcastable(op: &'static str, t: &Tensor, p: &Tensor) -> Result<()> {
    Shape::broadcast(op, t.shape(), p.shape()).map(|_| ())
}

/// Pads `w` with trailing size-1 axes up to `rank`: sample weights line up
/// with the leading (batch) axes of what they weight.
pub(crate) fn pad_trailing(w: &Tensor, rank: usize) -> Result<Tensor> {
    if w.rank() >= rank {
        return Ok(w.clone());
    }
    let mut dims = w.dims().to_vec();
    dims.resize(rank, 1);
    w.reshape(dims)
}

/// Two weights multiplied after Keras' rank alignment and batch-aligned padding.
pub(crate) fn mul_weights(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (a, b) = squeeze_or_expand(a, b, true)?;
    let rank = a.rank().max(b.rank());
    let (a, b) = (pad_trailing(&a, rank)?, pad_trailing(&b, rank)?);
    Shape::broadcast(op, a.shape(), b.shape())?;
    a.mul(&b)
}

/// Keras' `reduce_weighted_values` with `apply_mask`, reduction
/// `"sum_over_batch_size"`.
pub(super) fn reduce_weighted(
    op: &'static str,
    values: &Tensor,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let mut weight = sample_weight.map(|w| w.cast(DType::F32)).transpose()?;
    if let Some(mask) = mask {
        // Valid entries weigh total/valid, masked ones 0 (divide_no_nan: all 0 when nothing is valid).
        let m = mask.cast(DType::F32)?.ne_scalar(0.0)?;
        let total = m.numel() as f64;
        let scale = m.sum_all()?.maximum_scalar(1.0)?.recip()?.mul_scalar(total)?;
        let float_mask = m.mul(&scale)?;
        weight = Some(match weight {
            Some(w) => mul_weights(op, &float_mask, &w)?,
            None => float_mask,
        });
    }
    let values = match weight {
        Some(w) => {
            let (v, w) = squeeze_or_expand(values, &w, true)?;
            let w = pad_trailing(&w, v.rank())?;
            Shape::broadcast(op, v.shape(), w.shape()).map_err(|_| Error::ShapeMismatch {
                op,
                lhs: v.shape().clone(),
                rhs: w.shape().clone(),
                reason: "the sample weight (times the mask) does not fit the per-sample losses".into(),
            })?;
            v.mul(&w)?
        }
        None => values.clone(),
    };
    if values.numel() == 0 {
        return Tensor::zeros([], DType::F32, values.device());
    }
    values.sum_all()?.div_scalar(values.numel() as f64)
}
