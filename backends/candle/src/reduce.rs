//! Reductions: sum, max, min over several axes; argmax, argmin over one.

use candle_core::Tensor;
use strata_core::{Backend, DType, Error, ReduceOp, Result, Shape, Storage};

use crate::CandleBackend;

impl CandleBackend {
    pub(crate) fn reduce_impl(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        if axes.is_empty() || axes.iter().any(|&a| a >= shape.rank()) || axes.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                op.name(),
                format!("axes {axes:?} must be sorted, unique, non-empty and below rank {}", shape.rank()),
            ));
        }
        let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
        if arg && axes.len() != 1 {
            return Err(Error::invalid(op.name(), format!("needs exactly one axis, received {axes:?}")));
        }
        let out_dtype = if arg { DType::I64 } else { x.dtype() };
        let out_len: usize =
            shape.dims().iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).product();
        if shape.numel() == 0 {
            // Candle's max/min/arg kernels reject empty inputs. A sum over an
            // empty axis is 0; the others are only asked for when a kept axis
            // is empty, so their result is empty too.
            return match op {
                ReduceOp::Sum => self.full(0.0, out_len, out_dtype),
                _ if out_len == 0 => self.empty(out_dtype),
                _ => Err(Error::InvalidShape {
                    op: op.name(),
                    shape: shape.clone(),
                    reason: "cannot reduce over an empty axis".into(),
                }),
            };
        }
        let (dims, merged_axes) = merge_axes(shape.dims(), axes);
        let t = self.c(self.tensor(x)?.reshape(dims))?;
        let r = match op {
            ReduceOp::Sum => t.sum_keepdim(merged_axes),
            ReduceOp::Max => fold(&t, &merged_axes, |t, a| t.max_keepdim(a)),
            ReduceOp::Min => fold(&t, &merged_axes, |t, a| t.min_keepdim(a)),
            ReduceOp::ArgMax => t.argmax_keepdim(merged_axes[0]).and_then(|t| t.to_dtype(candle_core::DType::I64)),
            ReduceOp::ArgMin => t.argmin_keepdim(merged_axes[0]).and_then(|t| t.to_dtype(candle_core::DType::I64)),
        };
        self.wrap(self.c(r)?)
    }
}

/// Applies a one-axis reduction over each axis in turn.
fn fold(
    t: &Tensor,
    axes: &[usize],
    f: impl Fn(&Tensor, usize) -> candle_core::Result<Tensor>,
) -> candle_core::Result<Tensor> {
    axes.iter().try_fold(t.clone(), |acc, &a| f(&acc, a))
}

/// Merges runs of adjacent reduced axes (and runs of adjacent kept axes) into
/// single axes, so `[a, b, c]` reduced over `[1, 2]` becomes `[a, b·c]` reduced
/// over `[1]`: the same result, with one candle reduction instead of two.
/// Returns the merged dims and the merged reduced axes.
fn merge_axes(dims: &[usize], axes: &[usize]) -> (Vec<usize>, Vec<usize>) {
    let mut out: Vec<usize> = Vec::with_capacity(dims.len());
    let mut reduced: Vec<usize> = Vec::with_capacity(axes.len());
    let mut prev: Option<bool> = None;
    for (i, &d) in dims.iter().enumerate() {
        let r = axes.contains(&i);
        if prev == Some(r) {
            *out.last_mut().expect("a previous axis") *= d;
        } else {
            if r {
                reduced.push(out.len());
            }
            out.push(d);
        }
        prev = Some(r);
    }
    (out, reduced)
}

#[cfg(test)]
mod tests {
    use super::merge_axes;

    #[test]
    fn merges_adjacent_axes() {
        assert_eq!(merge_axes(&[2, 3, 4], &[1, 2]), (vec![2, 12], vec![1]));
        assert_eq!(merge_axes(&[2, 3, 4], &[0, 2]), (vec![2, 3, 4], vec![0, 2]));
        assert_eq!(merge_axes(&[2, 3, 4, 5], &[0, 1, 3]), (vec![6, 4, 5], vec![0, 2]));
        assert_eq!(merge_axes(&[2, 3, 4], &[0, 1, 2]), (vec![24], vec![0]));
        assert_eq!(merge_axes(&[7], &[0]), (vec![7], vec![0]));
    }
}
