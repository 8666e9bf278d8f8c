//! `UpSampling1D/2D`: repeats (or interpolates) steps, rows and columns.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{resize_linear, Interpolation};
use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims};
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Enlarges each of `N` spatial axes by an integer factor; use it as
/// [`UpSampling1D`] or [`UpSampling2D`].
///
/// Arguments (Keras' names and defaults): `size` (2 for every axis), and for
/// `UpSampling2D` `data_format` (`"channels_last"`) and `interpolation`:
/// `"nearest"` (the default) repeats every cell `size` times; `"bilinear"`
/// is `jax.image.resize` to `(h·size_h, w·size_w)` — output `i` samples input
/// position `(i + 0.5) / size − 0.5` linearly, clamped at the edges.
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (2D also channels first), `f32`
/// - output: `(batch, s_1·size_1, .., s_N·size_N, channels)`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, TensorSpec, UpSampling2D};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut up = UpSampling2D::new((1, 2)).interpolation("bilinear");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(2), Some(1)], strata_core::DType::F32);
/// assert_eq!(up.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 1, 4, 1)");
/// let x = Tensor::new(vec![0.0f32, 4.0], [1, 1, 2, 1], &dev)?;
/// let y = up.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 1.0, 3.0, 4.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpSampling<const N: usize> {
    #[serde(default = "two")]
    size: Dims<N>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default = "nearest")]
    interpolation: Interpolation,
    #[serde(skip)]
    meta: Meta,
}

fn two<const N: usize>() -> Dims<N> {
    Dims::from(2)
}

fn nearest() -> Interpolation {
    Interpolation::Nearest
}

/// Keras' `UpSampling1D`: repeats every step `size` times. See [`UpSampling`].
pub type UpSampling1D = UpSampling<1>;
/// Keras' `UpSampling2D`: repeats (or bilinearly interpolates) rows and
/// columns. See [`UpSampling`].
pub type UpSampling2D = UpSampling<2>;

impl<const N: usize> UpSampling<N> {
    /// Enlarges by `size` (one number for every axis, or one per axis).
    pub fn new(size: impl Into<Dims<N>>) -> Self {
        UpSampling {
            size: size.into(),
            data_format: DataFormat::ChannelsLast,
            interpolation: Interpolation::Nearest,
            meta: Meta::default(),
        }
    }

    /// Names the layer (default: `up_sampling2d`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }
}

impl UpSampling<2> {
    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    /// `"nearest"` (default) or `"bilinear"`.
    pub fn interpolation(mut self, interpolation: impl Resolve<Interpolation>) -> Self {
        if let Some(i) = self.meta.keep(interpolation.resolve()) {
            self.interpolation = i;
        }
        self
    }
}

impl<const N: usize> Default for UpSampling<N> {
    /// Doubles every spatial axis.
    fn default() -> Self {
        Self::new(2)
    }
}

/// `x` with every cell along `axis` repeated `s` times.
pub(crate) fn repeat_axis(x: &Tensor, axis: usize, s: usize) -> Result<Tensor> {
    if s == 1 {
        return Ok(x.clone());
    }
    let n = x.dims()[axis];
    let out = n.checked_mul(s).ok_or_else(|| Error::msg(format!("size {s} overflows an axis of {n}")))?;
    let mut idx = crate::image_ops::host_vec("UpSampling", out)?;
    idx.extend((0..out).map(|i| (i / s) as i64));
    x.gather(axis as isize, &Tensor::new(idx, [out], x.device())?)
}

macro_rules! up_sampling_class {
    ($n:literal, $name:literal) => {
        impl LayerClass for UpSampling<$n> {
            const CLASS_NAME: &'static str = $name;

            fn from_config(config: &Value) -> Result<Self> {
                if $n == 1 {
                    if let Some(k) = ["data_format", "interpolation"].iter().find(|k| config.get(**k).is_some()) {
                        return Err(Error::Config(format!("{}: unknown field `{k}` (in {config})", $name)));
                    }
                }
                from_json(Self::CLASS_NAME, config)
            }
        }
    };
}

up_sampling_class!(1, "UpSampling1D");
up_sampling_class!(2, "UpSampling2D");

impl<const N: usize> Layer for UpSampling<N>
where
    UpSampling<N>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        self.size.positive("size").map_err(Error::msg)?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        let mut out = Vec::with_capacity(N);
        for (d, &s) in spatial.iter().zip(&self.size.0) {
            out.push(match d {
                None => None,
                Some(d) => Some(d.checked_mul(s).ok_or_else(|| {
                    Error::msg(format!("size {:?} makes input {x} larger than usize holds", self.size.0))
                })?),
            });
        }
        Ok(window_output(x.dims[0], out, channels, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        self.size.positive("size").map_err(Error::msg)?;
        let mut y = inputs[0].clone();
        let axes = self.data_format.spatial_axes(y.rank());
        for (axis, &s) in axes.zip(&self.size.0) {
            y = match self.interpolation {
                Interpolation::Nearest => repeat_axis(&y, axis, s)?,
                Interpolation::Bilinear => {
                    let n = y.dims()[axis];
                    let out = n.checked_mul(s).ok_or_else(|| Error::msg(format!("size {s} overflows axis {n}")))?;
                    resize_linear(&y, axis, out)?
                }
            };
        }
        Ok(y)
    }

    fn config(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if N == 1 {
            // Keras' UpSampling1D has only `size`, written as a number.
            v = serde_json::json!({"size": self.size.0[0]});
        }
        v
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_conformance::check_grad;
    use strata_core::Shape;

    #[test]
    fn nearest_repeats() {
        let mut layer = UpSampling1D::new(3);
        let (out, _) = build(&mut layer, &[spec(&[None, None, Some(1)])]).unwrap();
        assert_eq!(out.to_string(), "(None, None, 1)");
        let y = call(&layer, &[t(&[1.0, 2.0], &[1, 2, 1])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
        let mut layer = UpSampling2D::new(2).data_format("channels_first");
        let (out, _) = build(&mut layer, &[spec(&[None, Some(1), Some(1), Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 1, 2, 4)");
        let y = call(&layer, &[t(&[1.0, 2.0], &[1, 1, 1, 2])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), [1.0, 1.0, 2.0, 2.0, 1.0, 1.0, 2.0, 2.0]);
    }

    #[test]
    fn bilinear_gradients_match_finite_differences() {
        let layer = UpSampling2D::new((2, 3)).interpolation("bilinear");
        let data: Vec<f32> = (0..2 * 3 * 2 * 2).map(|i| (i as f32 * 0.37).sin()).collect();
        check_grad("bilinear upsampling", &dev(), &[(data, Shape::from([2, 3, 2, 2]))], 1e-2, |xs| {
            call(&layer, xs, &[], &[], false)
        })
        .unwrap();
        let nearest = UpSampling2D::new(2);
        let data: Vec<f32> = (0..8).map(|i| i as f32 * 0.1).collect();
        check_grad("nearest upsampling", &dev(), &[(data, Shape::from([1, 2, 2, 2]))], 1e-2, |xs| {
            call(&nearest, xs, &[], &[], false)
        })
        .unwrap();
    }

    #[test]
    fn bad_arguments_are_errors_and_configs_round_trip() {
        let e = err(build(&mut UpSampling2D::new((2, 0)), &[spec(&[None, Some(2), Some(2), Some(1)])]));
        assert!(e.contains("size must be positive, received [2, 0]"), "{e}");
        let e =
            err(build(&mut UpSampling2D::new(2).interpolation("bicubic"), &[spec(&[None, Some(2), Some(2), Some(1)])]));
        assert!(e.contains("bicubic"), "{e}");
        let e = err(call(&UpSampling1D::new(1 << 60), &[t(&[1.0, 2.0], &[1, 2, 1])], &[], &[], false));
        assert!(e.contains("do not fit in memory"), "{e}");
        assert_eq!(UpSampling1D::new(3).config(), serde_json::json!({"size": 3}));
        let l = UpSampling2D::from_config(&serde_json::json!({"size": [2, 2], "interpolation": "bilinear"})).unwrap();
        assert_eq!(UpSampling2D::from_config(&l.config()).unwrap().config(), l.config());
        assert_eq!(l.config()["interpolation"], "bilinear");
        assert!(UpSampling1D::from_config(&serde_json::json!({"size": 2, "interpolation": "bilinear"})).is_err());
    }
}
