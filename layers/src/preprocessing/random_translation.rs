//! `RandomTranslation`: shifts images at random during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{image_input, transform_builders, transform_images, Factor, FillMode, Interpolation, LayerRng};
use crate::meta::{from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// During training, shifts each image by a random fraction of its height and
/// width — Keras' `RandomTranslation`. Outside training it is the identity.
///
/// `height_factor` and `width_factor` are a number `f` (a shift drawn
/// uniformly from `[-f, f]` of the size) or a pair `(lower, upper)`, within
/// `[-1, 1]`; a positive shift moves the image down (right). Output pixel
/// `(x, y)` reads the input at `(x − dx, y − dy)`, interpolated bilinearly
/// (or from the nearest pixel) and filled outside the input by `fill_mode`:
/// `"reflect"` (Keras' default), `"constant"` (`fill_value`), `"nearest"`,
/// `"wrap"` or `"mirror"` — see [`FillMode`]. The draws come from the model's
/// seeded generator, or from the layer's own when `seed` is given.
///
/// # Shapes
/// - input: `(batch, h, w, channels)` or one image `(h, w, channels)` (or
///   channels first), `f32`
/// - output: the input's shape
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, RandomTranslation, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// // Always one column to the right (a third of the width), zeros filling in.
/// let mut layer = RandomTranslation::new(0.0, (1.0 / 3.0, 1.0 / 3.0)).fill_mode("constant");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(3), Some(1)], strata_core::DType::F32);
/// layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0], [1, 1, 3, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?;
/// let y = y.to_vec::<f32>()?;
/// assert!(y[0].abs() < 1e-5 && (y[1] - 1.0).abs() < 1e-5 && (y[2] - 2.0).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomTranslation {
    height_factor: Factor,
    width_factor: Factor,
    #[serde(default)]
    fill_mode: FillMode,
    #[serde(default)]
    interpolation: Interpolation,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    fill_value: f32,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(RandomTranslation);
transform_builders!(RandomTranslation);

impl RandomTranslation {
    /// Shifts by up to `height_factor` of the height and `width_factor` of
    /// the width (each a number or a pair `(lower, upper)`).
    pub fn new(height_factor: impl Into<Factor>, width_factor: impl Into<Factor>) -> Self {
        RandomTranslation {
            height_factor: height_factor.into(),
            width_factor: width_factor.into(),
            fill_mode: FillMode::Reflect,
            interpolation: Interpolation::Bilinear,
            seed: None,
            fill_value: 0.0,
            data_format: DataFormat::ChannelsLast,
            rng: LayerRng::default(),
            meta: Meta::default(),
        }
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        self.height_factor.check("height_factor", -1.0, 1.0).map_err(Error::msg)?;
        self.width_factor.check("width_factor", -1.0, 1.0).map_err(Error::msg)?;
        if !self.fill_value.is_finite() {
            return Err(Error::msg(format!("fill_value must be finite, received {}", self.fill_value)));
        }
        Ok(())
    }
}

impl LayerClass for RandomTranslation {
    const CLASS_NAME: &'static str = "RandomTranslation";

    fn from_config(config: &Value) -> Result<Self> {
        let l: RandomTranslation = from_json(Self::CLASS_NAME, config)?;
        let rng = LayerRng::new(l.seed);
        Ok(RandomTranslation { rng, ..l })
    }
}

impl Layer for RandomTranslation {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        image_input(&inputs[0], self.data_format)?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        if !ctx.training() {
            return Ok(inputs[0].clone());
        }
        self.check_args()?;
        let (hl, hu) = self.height_factor.bounds();
        let (wl, wu) = self.width_factor.bounds();
        let transforms = |b: usize, h: usize, w: usize| {
            let dy = self.rng.uniform(ctx, b, hl, hu);
            let dx = self.rng.uniform(ctx, b, wl, wu);
            dy.iter().zip(&dx).map(|(dy, dx)| [1.0, 0.0, -dx * w as f32, 0.0, 1.0, -dy * h as f32]).collect()
        };
        transform_images(&inputs[0], self.data_format, transforms, self.interpolation, self.fill_mode, self.fill_value)
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

    fn images() -> (Tensor, Vec<f32>) {
        let data: Vec<f32> = (0..4 * 5 * 6 * 2).map(|i| ((i * 37) % 101) as f32).collect();
        (t(&data, &[4, 5, 6, 2]), data)
    }

    #[test]
    fn zero_factor_and_inference_are_the_identity() {
        let (x, data) = images();
        let layer = RandomTranslation::new(0.0, 0.0);
        assert_eq!(vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap()), data);
        let layer = RandomTranslation::new(0.5, 0.5);
        assert_eq!(vals(&call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap()), data);
    }

    #[test]
    fn shifts_stay_in_range_and_are_seeded() {
        let (x, data) = images();
        let (lo, hi) = data.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        for mode in ["reflect", "nearest", "wrap", "mirror"] {
            let layer = RandomTranslation::new(0.4, (-0.3, 0.2)).fill_mode(mode).seed(2);
            let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
            assert!(y.iter().all(|&v| v >= lo - 1e-3 && v <= hi + 1e-3), "{mode}");
            assert_ne!(y, data, "{mode}");
            let again = RandomTranslation::new(0.4, (-0.3, 0.2)).fill_mode(mode).seed(2);
            assert_eq!(y, vals(&call(&again, std::slice::from_ref(&x), &[], &[], true).unwrap()));
        }
        // Whole-pixel shifts with nearest interpolation only move values.
        let layer = RandomTranslation::new(0.4, 0.4).interpolation("nearest").fill_mode("constant").fill_value(-7.0);
        let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert!(y.iter().all(|v| *v == -7.0 || data.contains(v)));
    }

    #[test]
    fn bad_factors_are_errors_and_configs_round_trip() {
        let s = [spec(&[None, Some(4), Some(4), Some(1)])];
        let e = err(build(&mut RandomTranslation::new(1.5, 0.0), &s));
        assert!(e.contains("height_factor") && e.contains("1.5"), "{e}");
        let e = err(build(&mut RandomTranslation::new(0.1, (0.3, 0.1)), &s));
        assert!(e.contains("width_factor") && e.contains("(0.3, 0.1)"), "{e}");
        assert!(err(build(&mut RandomTranslation::new(0.1, 0.1).fill_mode("edge"), &s)).contains("edge"));
        let l = RandomTranslation::new(0.1, (-0.2, 0.3)).fill_mode("constant").seed(1);
        assert_eq!(l.config()["width_factor"], serde_json::json!([-0.2f32, 0.3f32]));
        assert_eq!(l.config()["fill_mode"], "constant");
        assert_eq!(RandomTranslation::from_config(&l.config()).unwrap().config(), l.config());
    }
}
