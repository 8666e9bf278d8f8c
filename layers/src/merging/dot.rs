//! `Dot`: the dot product of two batched tensors along one axis each.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// The axes `Dot` contracts: one for both inputs or one each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DotAxes {
    /// The same axis of both inputs.
    Both(isize),
    /// Axis of the first input, axis of the second.
    Each(isize, isize),
}

impl From<isize> for DotAxes {
    fn from(a: isize) -> Self {
        DotAxes::Both(a)
    }
}

impl From<(isize, isize)> for DotAxes {
    fn from((a, b): (isize, isize)) -> Self {
        DotAxes::Each(a, b)
    }
}

/// The dot product of two samples along one axis of each — Keras' `Dot`
/// (its `batch_dot`): with `normalize`, the cosine similarity.
///
/// # Shapes
/// - inputs: two `f32` tensors of rank ≥ 2 with one batch size, and the
///   same size on the contracted axes (never the batch axis)
/// - output: the first input's shape without its axis, then the second's
///   without its batch axis and its axis; `(batch, 1)` if that leaves only
///   the batch axis
///
/// # Masks
/// Accepts masked inputs; the output has no mask (as in Keras).
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{CallContext, Dot, Layer};
/// let dev = strata_native::device();
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev).unwrap();
/// let y = Tensor::new(vec![5.0f32, 6.0, 7.0, 8.0], [2, 2], &dev).unwrap();
/// let mut rng = Rng::seed(0);
/// let mut ctx = CallContext::new(false, &[None, None], &[], &mut rng);
/// let out = Dot::new(1).call(&[x, y], &mut ctx).unwrap();
/// assert_eq!(out.dims(), [2, 1]);
/// assert_eq!(out.to_vec::<f32>().unwrap(), [17.0, 53.0]);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dot {
    axes: DotAxes,
    #[serde(default)]
    normalize: bool,
    #[serde(skip)]
    meta: Meta,
}

named!(Dot);

impl Dot {
    /// Contracts `axes`: an axis of both inputs (`1`, `-1`) or one axis
    /// each (`(1, 2)`).
    pub fn new(axes: impl Into<DotAxes>) -> Self {
        Dot { axes: axes.into(), normalize: false, meta: Meta::default() }
    }

    /// L2-normalizes both inputs along their axes first (default false),
    /// making the output their cosine similarity.
    pub fn normalize(mut self, on: bool) -> Self {
        self.normalize = on;
        self
    }

    /// The two axes, non-negative, for inputs of these ranks.
    fn resolve(&self, r1: usize, r2: usize) -> Result<(usize, usize)> {
        let (a, b) = match self.axes {
            DotAxes::Both(a) => (a, a),
            DotAxes::Each(a, b) => (a, b),
        };
        let fix = |axis: isize, rank: usize, which: &str| -> Result<usize> {
            let r = rank as isize;
            let k = if axis < 0 { axis + r } else { axis };
            if k <= 0 || k >= r {
                return Err(Error::msg(format!(
                    "axis {axis} of the {which} input (rank {rank}) must be one of its non-batch axes, 1..{rank} \
                     or -{}..-1",
                    rank - 1
                )));
            }
            Ok(k as usize)
        };
        Ok((fix(a, r1, "first")?, fix(b, r2, "second")?))
    }
}

impl LayerClass for Dot {
    const CLASS_NAME: &'static str = "Dot";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

/// `x / max(‖x‖₂, 1e-7)` along `axis`, as Keras' `ops.normalize`.
fn l2_normalize(x: &Tensor, axis: usize) -> Result<Tensor> {
    let norm = x.mul(x)?.sum(&[axis as isize], true)?.sqrt()?.maximum_scalar(1e-7)?;
    x.div(&norm)
}

/// Keras' `batch_dot(x, y, (a0, a1))`.
fn batch_dot(x: &Tensor, y: &Tensor, a0: usize, a1: usize) -> Result<Tensor> {
    let (xr, yr) = (x.rank(), y.rank());
    let (x, a0) = if xr == 2 { (x.unsqueeze(1)?, a0 + 1) } else { (x.clone(), a0) };
    let y = if yr == 2 { y.unsqueeze(2)? } else { y.clone() };
    // x: its axis last; y: its axis second.
    let px: Vec<usize> = (0..x.rank()).filter(|&k| k != a0).chain([a0]).collect();
    let py: Vec<usize> = [0, a1].into_iter().chain((1..y.rank()).filter(|&k| k != a1)).collect();
    let (x, y) = (x.permute(&px)?, y.permute(&py)?);
    let batch = x.dims()[0];
    let k = x.dims()[x.rank() - 1];
    let mid = x.dims()[1..x.rank() - 1].to_vec();
    let trail = y.dims()[2..].to_vec();
    let m: usize = mid.iter().product();
    let n: usize = trail.iter().product();
    let r = x.reshape([batch, m, k])?.matmul(&y.reshape([batch, k, n])?)?;
    let mut dims = vec![batch];
    dims.extend(mid);
    dims.extend(trail);
    let r = r.reshape(dims)?;
    if xr == 2 {
        r.squeeze(1)
    } else if yr == 2 {
        r.squeeze(-1)
    } else {
        Ok(r)
    }
}

impl Layer for Dot {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn arity(&self) -> Arity {
        Arity::Exactly(2)
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let (x, y) = (&inputs[0], &inputs[1]);
        for s in [x, y] {
            crate::layer::expect_float(s)?;
            if s.rank() < 2 {
                return Err(Error::msg(format!("needs inputs of rank >= 2 (batch first), received {s}")));
            }
        }
        if let (Some(a), Some(b)) = (x.dims[0], y.dims[0]) {
            if a != b {
                return Err(Error::msg(format!("needs inputs with one batch size, received {x} and {y}")));
            }
        }
        let (a0, a1) = self.resolve(x.rank(), y.rank())?;
        if let (Some(p), Some(q)) = (x.dims[a0], y.dims[a1]) {
            if p != q {
                return Err(Error::msg(format!(
                    "contracts axis {a0} of {x} with axis {a1} of {y}, whose sizes differ ({p} != {q})"
                )));
            }
        }
        let mut dims: Vec<Option<usize>> =
            x.dims.iter().enumerate().filter(|&(k, _)| k != a0).map(|(_, &d)| d).collect();
        dims.extend(y.dims.iter().enumerate().filter(|&(k, _)| k != 0 && k != a1).map(|(_, &d)| d));
        if dims.len() == 1 {
            dims.push(Some(1));
        }
        Ok(TensorSpec::new(dims, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let (x, y) = (&inputs[0], &inputs[1]);
        let (a0, a1) = self.resolve(x.rank(), y.rank())?;
        if x.dims()[0] != y.dims()[0] || x.dims()[a0] != y.dims()[a1] {
            return Err(Error::msg(format!(
                "contracts axis {a0} of {:?} with axis {a1} of {:?}: the batch sizes and those axes must match",
                x.dims(),
                y.dims()
            )));
        }
        if self.normalize {
            batch_dot(&l2_normalize(x, a0)?, &l2_normalize(y, a1)?, a0, a1)
        } else {
            batch_dot(x, y, a0, a1)
        }
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(None)
    }

    config_from_serde!();
}
