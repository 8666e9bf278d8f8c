//! `RandomRotation`: rotates images at random during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{image_input, transform_builders, transform_images, Factor, FillMode, Interpolation, LayerRng};
use crate::meta::{from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// During training, rotates each image about its centre by a random angle —
/// Keras' `RandomRotation`. Outside training it is the identity.
///
/// `factor` is a fraction of a full turn: a number `f` (an angle drawn
/// uniformly from `[-f·2π, f·2π]`) or a pair `(lower, upper)`; a positive
/// angle turns counter-clockwise. As in Keras, output pixel `(x, y)` reads the
/// input at `(cos θ·x − sin θ·y + x₀, sin θ·x + cos θ·y + y₀)` with the
/// offsets that keep the centre `((w − 1)/2, (h − 1)/2)` in place,
/// interpolated bilinearly (or from the nearest pixel) and filled outside the
/// input by `fill_mode` (`"reflect"` by default; see [`FillMode`]). The
/// draws come from the model's seeded generator, or from the layer's own
/// when `seed` is given.
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
/// use strata_layers::{BuildContext, CallContext, Layer, RandomRotation, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// // Always a half turn.
/// let mut layer = RandomRotation::new((0.5, 0.5));
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(3), Some(1)], strata_core::DType::F32);
/// layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0], [1, 1, 3, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?.to_vec::<f32>()?;
/// assert!((y[0] - 3.0).abs() < 1e-5 && (y[2] - 1.0).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomRotation {
    factor: Factor,
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

named!(RandomRotation);
transform_builders!(RandomRotation);

impl RandomRotation {
    /// Rotates by up to `factor` of a full turn (a number or a pair
    /// `(lower, upper)`).
    pub fn new(factor: impl Into<Factor>) -> Self {
        RandomRotation {
            factor: factor.into(),
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
        self.factor.check("factor", -1e6, 1e6).map_err(Error::msg)?;
        if !self.fill_value.is_finite() {
            return Err(Error::msg(format!("fill_value must be finite, received {}", self.fill_value)));
        }
        Ok(())
    }
}

/// Keras' rotation transform by `angle` for an `h × w` image.
pub(crate) fn rotation(angle: f32, h: usize, w: usize) -> [f32; 6] {
    let (s, c) = angle.sin_cos();
    let (h1, w1) = ((h - 1) as f32, (w - 1) as f32);
    let x0 = (w1 - (c * w1 - s * h1)) / 2.0;
    let y0 = (h1 - (s * w1 + c * h1)) / 2.0;
    [c, -s, x0, s, c, y0]
}

impl LayerClass for RandomRotation {
    const CLASS_NAME: &'static str = "RandomRotation";

    fn from_config(config: &Value) -> Result<Self> {
        let l: RandomRotation = from_json(Self::CLASS_NAME, config)?;
        let rng = LayerRng::new(l.seed);
        Ok(RandomRotation { rng, ..l })
    }
}

impl Layer for RandomRotation {
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
        let (lo, hi) = self.factor.bounds();
        let turn = 2.0 * std::f32::consts::PI;
        let transforms = |b: usize, h: usize, w: usize| {
            let angles = self.rng.uniform(ctx, b, lo * turn, hi * turn);
            angles.into_iter().map(|a| rotation(a, h.max(1), w.max(1))).collect()
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

    #[test]
    fn zero_factor_and_inference_are_the_identity() {
        let data: Vec<f32> = (0..3 * 4 * 5 * 2).map(|i| (i as f32 * 0.3).sin()).collect();
        let x = t(&data, &[3, 4, 5, 2]);
        assert_eq!(vals(&call(&RandomRotation::new(0.0), std::slice::from_ref(&x), &[], &[], true).unwrap()), data);
        assert_eq!(vals(&call(&RandomRotation::new(0.3), std::slice::from_ref(&x), &[], &[], false).unwrap()), data);
    }

    #[test]
    fn quarter_turns_permute_a_square_and_draws_are_seeded() {
        let data: Vec<f32> = (0..9).map(|i| i as f32).collect();
        let x = t(&data, &[1, 3, 3, 1]);
        let y = vals(&call(&RandomRotation::new((0.25, 0.25)), std::slice::from_ref(&x), &[], &[], true).unwrap());
        // Counter-clockwise: the top row becomes the left column, read bottom-up.
        close(&y, &[2.0, 5.0, 8.0, 1.0, 4.0, 7.0, 0.0, 3.0, 6.0], 1e-5);
        let data: Vec<f32> = (0..4 * 6 * 6).map(|i| ((i * 29) % 97) as f32).collect();
        let x = t(&data, &[4, 6, 6, 1]);
        let a = RandomRotation::new(0.2).fill_mode("nearest").seed(8);
        let ya = vals(&call(&a, std::slice::from_ref(&x), &[], &[], true).unwrap());
        let yb = vals(&call(&RandomRotation::new(0.2).fill_mode("nearest").seed(8), &[x], &[], &[], true).unwrap());
        assert_eq!(ya, yb);
        assert!(ya.iter().all(|&v| (0.0..=96.0 + 1e-3).contains(&v)));
    }

    #[test]
    fn gradients_match_finite_differences() {
        // Unseeded: each call draws the same angles from the test's fresh context generator.
        let layer = RandomRotation::new(0.2).fill_mode("constant");
        let data: Vec<f32> = (0..2 * 4 * 4 * 2).map(|i| (i as f32 * 0.43).sin()).collect();
        strata_conformance::check_grad(
            "rotation",
            &dev(),
            &[(data, strata_core::Shape::from([2, 4, 4, 2]))],
            1e-2,
            |xs| call(&layer, xs, &[], &[], true),
        )
        .unwrap();
    }

    #[test]
    fn configs_round_trip() {
        let l = RandomRotation::new(0.1).fill_mode("constant").fill_value(1.0).interpolation("nearest").seed(3);
        assert_eq!(RandomRotation::from_config(&l.config()).unwrap().config(), l.config());
        assert_eq!(l.config()["factor"], 0.1f32);
        let e = err(build(&mut RandomRotation::new((0.2, -0.2)), &[spec(&[None, Some(2), Some(2), Some(1)])]));
        assert!(e.contains("(0.2, -0.2)"), "{e}");
    }
}
