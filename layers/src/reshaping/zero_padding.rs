//! `ZeroPadding1D/2D`: rows and columns of zeros around sequences and images.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Margins};
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Adds zeros before and after each of `N` spatial axes; use it as
/// [`ZeroPadding1D`] or [`ZeroPadding2D`].
///
/// Arguments (Keras' names and defaults): `padding` (default 1 on every
/// side; see [`Margins`] for its forms) and `data_format`
/// (`"channels_last"`).
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (or channels first), `f32`
/// - output: `(batch, s_1 + b_1 + a_1, .., channels)` for `(b_i, a_i)` zeros
///   before and after axis `i`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, TensorSpec, ZeroPadding1D};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut pad = ZeroPadding1D::new((1, 2));
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(2), Some(1)], strata_core::DType::F32);
/// assert_eq!(pad.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 5, 1)");
/// let x = Tensor::new(vec![1.0f32, 2.0], [1, 2, 1], &dev)?;
/// let y = pad.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 1.0, 2.0, 0.0, 0.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ZeroPadding<const N: usize> {
    #[serde(default = "one")]
    padding: Margins<N>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    meta: Meta,
}

fn one<const N: usize>() -> Margins<N> {
    Margins::from(1)
}

/// Keras' `ZeroPadding1D`: zeros before and after the steps. See [`ZeroPadding`].
pub type ZeroPadding1D = ZeroPadding<1>;
/// Keras' `ZeroPadding2D`: rows of zeros above and below, columns left and
/// right. See [`ZeroPadding`].
pub type ZeroPadding2D = ZeroPadding<2>;

impl<const N: usize> ZeroPadding<N> {
    /// Pads by `padding` (one number for every side, or see [`Margins`]).
    pub fn new(padding: impl Into<Margins<N>>) -> Self {
        ZeroPadding { padding: padding.into(), data_format: DataFormat::ChannelsLast, meta: Meta::default() }
    }

    /// Names the layer (default: `zero_padding2d`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }
}

impl<const N: usize> Default for ZeroPadding<N> {
    /// One zero on every side.
    fn default() -> Self {
        Self::new(1)
    }
}

/// `x` with `before` and `after` zeros along `axis`.
pub(crate) fn pad_axis(x: &Tensor, axis: usize, before: usize, after: usize) -> Result<Tensor> {
    if before + after == 0 {
        return Ok(x.clone());
    }
    let zeros = |n: usize| {
        let mut d = x.dims().to_vec();
        d[axis] = n;
        Tensor::zeros(d, x.dtype(), x.device())
    };
    let (b, a) = (zeros(before)?, zeros(after)?);
    Tensor::concat(&[&b, x, &a], axis as isize)
}

macro_rules! zero_padding_class {
    ($n:literal, $name:literal) => {
        impl LayerClass for ZeroPadding<$n> {
            const CLASS_NAME: &'static str = $name;

            fn from_config(config: &Value) -> Result<Self> {
                from_json(Self::CLASS_NAME, config)
            }
        }
    };
}

zero_padding_class!(1, "ZeroPadding1D");
zero_padding_class!(2, "ZeroPadding2D");

impl<const N: usize> Layer for ZeroPadding<N>
where
    ZeroPadding<N>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        let out = spatial
            .iter()
            .zip(&self.padding.0)
            .map(|(d, &(b, a))| d.and_then(|d| d.checked_add(b)?.checked_add(a)))
            .collect();
        Ok(window_output(x.dims[0], out, channels, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let mut y = inputs[0].clone();
        let axes = self.data_format.spatial_axes(y.rank());
        for (axis, &(b, a)) in axes.zip(&self.padding.0) {
            y = pad_axis(&y, axis, b, a)?;
        }
        Ok(y)
    }

    fn config(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn pads_each_side_and_keeps_gradients() {
        let mut layer = ZeroPadding2D::new(((1, 0), (0, 2)));
        let (out, _) = build(&mut layer, &[spec(&[None, Some(1), Some(2), Some(1)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 4, 1)");
        let x = t(&[1.0, 2.0], &[1, 1, 2, 1]).to_variable().unwrap();
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), [0.0, 0.0, 0.0, 0.0, 1.0, 2.0, 0.0, 0.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(g.get(&x).unwrap()), [1.0, 1.0]);
        // Channels first pads the last two axes.
        let mut layer = ZeroPadding2D::new(1).data_format("channels_first");
        let (out, _) = build(&mut layer, &[spec(&[None, Some(3), Some(2), None])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 4, None)");
    }

    #[test]
    fn reads_keras_forms_and_round_trips() {
        let l = ZeroPadding2D::from_config(&serde_json::json!({"padding": [1, 2]})).unwrap();
        assert_eq!(l.config()["padding"], serde_json::json!([[1, 1], [2, 2]]));
        let l = ZeroPadding1D::from_config(&serde_json::json!({"padding": 3})).unwrap();
        assert_eq!(l.config(), serde_json::json!({"padding": [3, 3], "data_format": "channels_last"}));
        assert_eq!(ZeroPadding1D::from_config(&l.config()).unwrap().config(), l.config());
        let e = err(ZeroPadding1D::from_config(&serde_json::json!({"padding": [1, 2, 3]})));
        assert!(e.contains("[1, 2, 3]"), "{e}");
        let e = err(build(&mut ZeroPadding2D::new(1), &[spec(&[None, Some(3), Some(1)])]));
        assert!(e.contains("rank 4"), "{e}");
        let e = err(build(&mut ZeroPadding1D::new(1).data_format("nchw"), &[spec(&[None, Some(3), Some(1)])]));
        assert!(e.contains("nchw"), "{e}");
    }
}
