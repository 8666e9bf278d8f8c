//! `MaxPooling1D/2D` and `AveragePooling1D/2D`: a reduction over each
//! window position's patch.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor, Window};

use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims, Padding};
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// How a pooling layer reduces a patch: [`Max`] or [`Average`].
pub trait PoolReduce: Send + Sync + 'static {
    /// Whether this is the maximum (else the mean).
    const MAX: bool;
}

/// The maximum of each patch (padding never wins).
#[derive(Clone, Copy, Debug, Default)]
pub struct Max;

/// The mean of each patch, over the cells inside the input only (padding
/// is not counted, as in Keras).
#[derive(Clone, Copy, Debug, Default)]
pub struct Average;

impl PoolReduce for Max {
    const MAX: bool = true;
}

impl PoolReduce for Average {
    const MAX: bool = false;
}

/// A pooling layer over `N` spatial axes; use it as [`MaxPooling1D`],
/// [`MaxPooling2D`], [`AveragePooling1D`] or [`AveragePooling2D`].
///
/// Arguments (Keras' names and defaults): `pool_size`, `strides` (default:
/// the pool size), `padding` (`"valid"` or `"same"`), `data_format`
/// (`"channels_last"`). Max pooling is one op, [`Tensor::max_pool`]: the
/// gradient of each window goes to the first cell holding its maximum, as in
/// Keras. For average pooling, windows that do not overlap and need no
/// padding (the usual `pool_size = strides`) average a reshaped view of the
/// input without copying it; others go through [`Tensor::unfold`].
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (or channels first), `f32`
/// - output: `(batch, o_1, .., o_N, channels)` with
///   `o_i = floor((s_i − pool_i) / stride_i) + 1` (`"valid"`) or
///   `ceil(s_i / stride_i)` (`"same"`)
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, MaxPooling2D, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut pool = MaxPooling2D::new(2);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(4), Some(4), Some(1)], strata_core::DType::F32);
/// assert_eq!(pool.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 2, 2, 1)");
/// let x = Tensor::new((0..16).map(|v| v as f32).collect::<Vec<_>>(), [1, 4, 4, 1], &dev)?;
/// let y = pool.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 7.0, 13.0, 15.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, bound = "")]
pub struct Pooling<const N: usize, R: PoolReduce> {
    pool_size: Dims<N>,
    #[serde(default)]
    strides: Option<Dims<N>>,
    #[serde(default)]
    padding: Padding,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    meta: Meta,
    #[serde(skip)]
    reduce: PhantomData<R>,
}

/// Keras' `MaxPooling1D`: the maximum over windows of steps.
pub type MaxPooling1D = Pooling<1, Max>;
/// Keras' `MaxPooling2D`: the maximum over windows of pixels. See [`Pooling`].
pub type MaxPooling2D = Pooling<2, Max>;
/// Keras' `AveragePooling1D`: the mean over windows of steps.
pub type AveragePooling1D = Pooling<1, Average>;
/// Keras' `AveragePooling2D`: the mean over windows of pixels.
pub type AveragePooling2D = Pooling<2, Average>;

impl<const N: usize, R: PoolReduce> Pooling<N, R> {
    /// Pooling over windows of `pool_size` (one number for every axis, or
    /// one per axis), moved by the pool size.
    pub fn new(pool_size: impl Into<Dims<N>>) -> Self {
        Pooling {
            pool_size: pool_size.into(),
            strides: None,
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            meta: Meta::default(),
            reduce: PhantomData,
        }
    }

    /// Names the layer (default: `max_pooling2d`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }

    /// The step between windows (default: the pool size).
    pub fn strides(mut self, strides: impl Into<Dims<N>>) -> Self {
        self.strides = Some(strides.into());
        self
    }

    /// `"valid"` (default) or `"same"`.
    pub fn padding(mut self, padding: impl Resolve<Padding>) -> Self {
        if let Some(p) = self.meta.keep(padding.resolve()) {
            self.padding = p;
        }
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    fn stride(&self) -> Dims<N> {
        self.strides.unwrap_or(self.pool_size)
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        self.pool_size.positive("pool_size").map_err(Error::msg)?;
        self.stride().positive("strides").map_err(Error::msg)?;
        if self.padding == Padding::Causal {
            return Err(Error::msg("padding must be \"valid\" or \"same\", received \"causal\""));
        }
        Ok(())
    }

    /// Channels-last `x` pooled.
    fn pool(&self, x: &Tensor) -> Result<Tensor> {
        let dims = x.dims().to_vec();
        let (batch, channels, spatial) = (dims[0], dims[N + 1], &dims[1..N + 1]);
        let (k, s) = (self.pool_size.0, self.stride().0);
        let pads: Vec<(usize, usize)> = (0..N).map(|a| self.padding.amounts(spatial[a], k[a], s[a], 1)).collect();
        let window = Window::new(&k).strides(&s).padding(&pads);
        let out = window.output_sizes(spatial)?;
        if R::MAX {
            // One op, forward and backward: no patches, no masks of the maximum.
            return x.max_pool(&window);
        }
        let padded = pads.iter().any(|&(b, a)| b + a > 0);
        // One axis at a time, last first: each is then a plain (outer, size,
        // inner) reduction for the backend, where several non-adjacent axes at
        // once make it (and the gradient's sums) transpose the tensor first —
        // measured at 28 % of a convnet's inference time.
        let mean = |t: &Tensor, axes: &[isize]| -> Result<Tensor> {
            let mut t = t.clone();
            for &a in axes.iter().rev() {
                t = t.mean(&[a], false)?;
            }
            Ok(t)
        };
        if k == s && !padded {
            // Non-overlapping windows: [batch, o_1, k_1, .., o_N, k_N, channels], no copy
            // unless the input has cells past the last window.
            let mut v = x.clone();
            for a in 0..N {
                if out[a] * k[a] != spatial[a] {
                    v = v.narrow(a as isize + 1, 0, out[a] * k[a])?;
                }
            }
            let mut shape = vec![batch];
            for a in 0..N {
                shape.extend([out[a], k[a]]);
            }
            shape.push(channels);
            let axes: Vec<isize> = (0..N).map(|a| 2 * a as isize + 2).collect();
            return mean(&v.reshape(shape)?, &axes);
        }
        let taps: Vec<isize> = (N + 1..2 * N + 1).map(|a| a as isize).collect();
        let sums = x.unfold(&window, 0.0)?.sum(&taps, false)?;
        if !padded {
            return sums.mul_scalar(1.0 / k.iter().product::<usize>() as f64);
        }
        // Divide by the number of cells inside the input in each window.
        let counts = strata_core::no_grad(|| {
            let mut one = vec![1];
            one.extend(spatial);
            one.push(1);
            Tensor::ones(one, DType::F32, x.device())?.unfold(&window, 0.0)?.sum(&taps, false)
        })?;
        sums.div(&counts)
    }
}

macro_rules! pooling_class {
    ($n:literal, $r:ty, $name:literal) => {
        impl LayerClass for Pooling<$n, $r> {
            const CLASS_NAME: &'static str = $name;

            fn from_config(config: &Value) -> Result<Self> {
                from_json(Self::CLASS_NAME, config)
            }
        }
    };
}

pooling_class!(1, Max, "MaxPooling1D");
pooling_class!(2, Max, "MaxPooling2D");
pooling_class!(1, Average, "AveragePooling1D");
pooling_class!(2, Average, "AveragePooling2D");

impl<const N: usize, R: PoolReduce> Layer for Pooling<N, R>
where
    Pooling<N, R>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        let (k, s) = (self.pool_size.0, self.stride().0);
        let mut out = Vec::with_capacity(N);
        for (a, d) in spatial.iter().enumerate() {
            out.push(match *d {
                None => None,
                Some(d) => Some(self.padding.output_size(d, k[a], s[a], 1).ok_or_else(|| {
                    Error::msg(format!("pool_size {k:?} does not fit input {x} with padding \"{}\"", self.padding))
                })?),
            });
        }
        Ok(window_output(x.dims[0], out, channels, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = self.data_format.to_channels_last(&inputs[0])?;
        self.data_format.from_channels_last(&self.pool(&x)?)
    }

    fn config(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        // Keras writes the resolved strides.
        v["strides"] = serde_json::to_value(self.stride()).unwrap_or(Value::Null);
        v
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use strata_core::ReduceOp;

    use super::*;
    use crate::testutil::*;

    /// The reshape path (non-overlapping windows) and the unfold path give
    /// the same values, including an input with cells past the last window.
    #[test]
    fn reshape_and_unfold_paths_agree() {
        let n = 2 * 5 * 7 * 3;
        let x = t(&(0..n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), &[2, 5, 7, 3]);
        for max in [true, false] {
            let fast =
                if max { MaxPooling2D::new(2).pool(&x).unwrap() } else { AveragePooling2D::new(2).pool(&x).unwrap() };
            let window = Window::new(&[2, 2]).strides(&[2, 2]);
            let cols = x.unfold(&window, 0.0).unwrap();
            let slow =
                if max { cols.reduce(ReduceOp::Max, &[3, 4], false) } else { cols.mean(&[3, 4], false) }.unwrap();
            assert_eq!(fast.dims(), &[2, 2, 3, 3]);
            // The maximum is exact; the mean (one axis at a time on the fast
            // path) rounds differently.
            for (a, b) in vals(&fast).iter().zip(vals(&slow)) {
                assert!((a - b).abs() <= if max { 0.0 } else { 1e-6 }, "max = {max}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors() {
        let s = [spec(&[None, Some(4), Some(4), Some(1)])];
        assert!(err(build(&mut MaxPooling2D::new(5), &s)).contains("does not fit"));
        assert!(err(build(&mut MaxPooling2D::new(0), &s)).contains("pool_size must be positive"));
        assert!(err(build(&mut AveragePooling2D::new(2).padding("causal"), &s)).contains("\"valid\" or \"same\""));
        assert!(err(build(&mut MaxPooling1D::new(2), &s)).contains("rank 3"));
    }
}
