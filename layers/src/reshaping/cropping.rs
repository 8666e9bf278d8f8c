//! `Cropping1D/2D`: removes steps, rows and columns at the borders.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Margins};
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Removes cells before and after each of `N` spatial axes; use it as
/// [`Cropping1D`] or [`Cropping2D`].
///
/// Arguments (Keras' names and defaults): `cropping` (default 1 on each side
/// for `Cropping1D`, 0 for `Cropping2D`, as in Keras; see [`Margins`] for its
/// forms) and, for `Cropping2D`, `data_format` (`"channels_last"`; Keras'
/// `Cropping1D` has none, so it is always channels last). Cropping a whole
/// axis away is an error.
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (2D also channels first), `f32`
/// - output: `(batch, s_1 − b_1 − a_1, .., channels)` for `(b_i, a_i)` cells
///   removed before and after axis `i`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Cropping2D, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut crop = Cropping2D::new(((1, 0), (0, 1)));
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(2), Some(3), Some(1)], strata_core::DType::F32);
/// assert_eq!(crop.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 1, 2, 1)");
/// let x = Tensor::new((0..6).map(|v| v as f32).collect::<Vec<_>>(), [1, 2, 3, 1], &dev)?;
/// let y = crop.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![3.0, 4.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cropping<const N: usize> {
    #[serde(default = "default_cropping")]
    cropping: Margins<N>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    meta: Meta,
}

fn default_cropping<const N: usize>() -> Margins<N> {
    Margins::from(if N == 1 { 1 } else { 0 })
}

/// Keras' `Cropping1D`: removes steps at the start and end. See [`Cropping`].
pub type Cropping1D = Cropping<1>;
/// Keras' `Cropping2D`: removes rows at the top and bottom and columns at
/// the left and right. See [`Cropping`].
pub type Cropping2D = Cropping<2>;

impl<const N: usize> Cropping<N> {
    /// Crops by `cropping` (one number for every side, or see [`Margins`]).
    pub fn new(cropping: impl Into<Margins<N>>) -> Self {
        Cropping { cropping: cropping.into(), data_format: DataFormat::ChannelsLast, meta: Meta::default() }
    }

    /// Names the layer (default: `cropping2d`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }
}

impl Cropping<2> {
    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }
}

impl<const N: usize> Default for Cropping<N> {
    /// Keras' default: 1 on each side for 1D, nothing for 2D.
    fn default() -> Self {
        Self::new(default_cropping())
    }
}

macro_rules! cropping_class {
    ($n:literal, $name:literal) => {
        impl LayerClass for Cropping<$n> {
            const CLASS_NAME: &'static str = $name;

            fn from_config(config: &Value) -> Result<Self> {
                if $n == 1 && config.get("data_format").is_some() {
                    return Err(Error::Config(format!("{}: unknown field `data_format` (in {config})", $name)));
                }
                from_json(Self::CLASS_NAME, config)
            }
        }
    };
}

cropping_class!(1, "Cropping1D");
cropping_class!(2, "Cropping2D");

impl<const N: usize> Layer for Cropping<N>
where
    Cropping<N>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        let mut out = Vec::with_capacity(N);
        for (d, &(b, a)) in spatial.iter().zip(&self.cropping.0) {
            out.push(match d {
                None => None,
                Some(d) => match d.checked_sub(b.saturating_add(a)) {
                    Some(o) if o > 0 => Some(o),
                    _ => {
                        return Err(Error::msg(format!(
                            "cropping {:?} removes every cell of an axis of input {x}",
                            self.cropping.0
                        )))
                    }
                },
            });
        }
        Ok(window_output(x.dims[0], out, channels, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let mut y = inputs[0].clone();
        let axes = self.data_format.spatial_axes(y.rank());
        for (axis, &(b, a)) in axes.zip(&self.cropping.0) {
            let n = y.dims()[axis];
            let keep = n.checked_sub(b.saturating_add(a)).filter(|&k| k > 0).ok_or_else(|| {
                Error::msg(format!("cropping {:?} removes every cell of an axis of size {n}", self.cropping.0))
            })?;
            if keep != n {
                y = y.narrow(axis as isize, b, keep)?;
            }
        }
        Ok(y)
    }

    fn config(&self) -> Value {
        let mut v = serde_json::to_value(self).unwrap_or(Value::Null);
        if N == 1 {
            if let Some(m) = v.as_object_mut() {
                m.remove("data_format");
            }
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

    #[test]
    fn crops_and_passes_gradients_to_the_kept_cells() {
        let mut layer = Cropping1D::new((1, 2));
        let (out, _) = build(&mut layer, &[spec(&[None, Some(5), Some(1)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 1)");
        let x = t(&[1.0, 2.0, 3.0, 4.0, 5.0], &[1, 5, 1]).to_variable().unwrap();
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), [2.0, 3.0]);
        let g = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(g.get(&x).unwrap()), [0.0, 1.0, 1.0, 0.0, 0.0]);
        let mut layer = Cropping2D::new(1).data_format("channels_first");
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(4), None])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 2, None)");
    }

    #[test]
    fn over_cropping_is_an_error_and_configs_round_trip() {
        let e = err(build(&mut Cropping1D::new((2, 3)), &[spec(&[None, Some(5), Some(1)])]));
        assert!(e.contains("[(2, 3)]") && e.contains("(None, 5, 1)"), "{e}");
        // An unknown length is checked at call time.
        let layer = Cropping1D::new(3);
        assert!(err(call(&layer, &[t(&[0.0; 4], &[1, 4, 1])], &[], &[], false)).contains("size 4"));
        assert_eq!(Cropping1D::default().config(), serde_json::json!({"cropping": [1, 1]}));
        assert_eq!(
            Cropping2D::default().config(),
            serde_json::json!({"cropping": [[0, 0], [0, 0]], "data_format": "channels_last"})
        );
        let l = Cropping2D::from_config(&serde_json::json!({"cropping": [[1, 0], [2, 1]]})).unwrap();
        assert_eq!(Cropping2D::from_config(&l.config()).unwrap().config(), l.config());
        assert!(Cropping1D::from_config(&serde_json::json!({"data_format": "channels_last"})).is_err());
    }
}
