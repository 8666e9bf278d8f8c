//! `RandomZoom`: zooms images in or out at random during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{image_input, transform_builders, transform_images, Factor, FillMode, Interpolation, LayerRng};
use crate::meta::{from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// During training, zooms each image about its centre by a random factor —
/// Keras' `RandomZoom`. Outside training it is the identity.
///
/// `height_factor` (and `width_factor`) are a number `f` (a zoom drawn
/// uniformly from `1 + [-f, f]`) or a pair `(lower, upper)`, within `[-1,
/// 1]`; a positive value zooms out (the image shrinks), a negative one zooms
/// in. Without `width_factor` the width uses the height's zoom, keeping the
/// aspect ratio. As in Keras, output pixel `(x, y)` reads the input at
/// `(z_w·x + (w − 1)/2·(1 − z_w), z_h·y + (h − 1)/2·(1 − z_h))`, interpolated
/// bilinearly (or from the nearest pixel) and filled outside the input by
/// `fill_mode` (`"reflect"` by default; see [`FillMode`]). The draws come
/// from the model's seeded generator, or from the layer's own when `seed` is
/// given.
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
/// use strata_layers::{BuildContext, CallContext, Layer, RandomZoom, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// // Always zoom out by 2 (the image shrinks to half size), zeros around it.
/// let mut layer = RandomZoom::new((1.0, 1.0)).fill_mode("constant");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(5), Some(1)], strata_core::DType::F32);
/// layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0], [1, 1, 5, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.0, 1.0, 3.0, 5.0, 0.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomZoom {
    height_factor: Factor,
    #[serde(default)]
    width_factor: Option<Factor>,
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

named!(RandomZoom);
transform_builders!(RandomZoom);

impl RandomZoom {
    /// Zooms by `1 + height_factor` (a number or a pair `(lower, upper)`),
    /// the same for the width unless [`width_factor`](Self::width_factor) is given.
    pub fn new(height_factor: impl Into<Factor>) -> Self {
        RandomZoom {
            height_factor: height_factor.into(),
            width_factor: None,
            fill_mode: FillMode::Reflect,
            interpolation: Interpolation::Bilinear,
            seed: None,
            fill_value: 0.0,
            data_format: DataFormat::ChannelsLast,
            rng: LayerRng::default(),
            meta: Meta::default(),
        }
    }

    /// Zooms the width independently by `1 + width_factor`.
    pub fn width_factor(mut self, factor: impl Into<Factor>) -> Self {
        self.width_factor = Some(factor.into());
        self
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        self.height_factor.check("height_factor", -1.0, 1.0).map_err(Error::msg)?;
        if let Some(w) = self.width_factor {
            w.check("width_factor", -1.0, 1.0).map_err(Error::msg)?;
        }
        if !self.fill_value.is_finite() {
            return Err(Error::msg(format!("fill_value must be finite, received {}", self.fill_value)));
        }
        Ok(())
    }
}

impl LayerClass for RandomZoom {
    const CLASS_NAME: &'static str = "RandomZoom";

    fn from_config(config: &Value) -> Result<Self> {
        let l: RandomZoom = from_json(Self::CLASS_NAME, config)?;
        let rng = LayerRng::new(l.seed);
        Ok(RandomZoom { rng, ..l })
    }
}

impl Layer for RandomZoom {
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
        let transforms = |b: usize, h: usize, w: usize| {
            let zh = self.rng.uniform(ctx, b, 1.0 + hl, 1.0 + hu);
            let zw = match self.width_factor {
                Some(f) => {
                    let (wl, wu) = f.bounds();
                    self.rng.uniform(ctx, b, 1.0 + wl, 1.0 + wu)
                }
                None => zh.clone(),
            };
            let (h1, w1) = (h.saturating_sub(1) as f32, w.saturating_sub(1) as f32);
            zh.iter()
                .zip(&zw)
                .map(|(&zh, &zw)| [zw, 0.0, w1 / 2.0 * (1.0 - zw), 0.0, zh, h1 / 2.0 * (1.0 - zh)])
                .collect()
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
        let data: Vec<f32> = (0..2 * 5 * 4 * 3).map(|i| (i as f32 * 0.9).cos()).collect();
        let x = t(&data, &[2, 5, 4, 3]);
        let layer = RandomZoom::new(0.0).width_factor(0.0);
        assert_eq!(vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap()), data);
        assert_eq!(vals(&call(&RandomZoom::new(0.5), std::slice::from_ref(&x), &[], &[], false).unwrap()), data);
    }

    #[test]
    fn nearest_fill_stays_in_range_and_draws_are_seeded() {
        let data: Vec<f32> = (0..4 * 6 * 6 * 2).map(|i| ((i * 13) % 50) as f32 - 10.0).collect();
        let x = t(&data, &[4, 6, 6, 2]);
        let layer = RandomZoom::new((-0.5, 0.8)).width_factor(0.3).fill_mode("nearest").seed(6);
        let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert!(y.iter().all(|&v| (-10.0 - 1e-4..=39.0 + 1e-4).contains(&v)));
        assert_ne!(y, data);
        let again = RandomZoom::new((-0.5, 0.8)).width_factor(0.3).fill_mode("nearest").seed(6);
        assert_eq!(y, vals(&call(&again, &[x], &[], &[], true).unwrap()));
    }

    #[test]
    fn bad_factors_are_errors_and_configs_round_trip() {
        let s = [spec(&[None, Some(4), Some(4), Some(1)])];
        assert!(err(build(&mut RandomZoom::new(-1.2), &s)).contains("received -1.2"));
        let e = err(build(&mut RandomZoom::new(0.1).width_factor(2.0), &s));
        assert!(e.contains("width_factor") && e.contains("received 2"), "{e}");
        let l = RandomZoom::new(0.2).seed(1);
        assert_eq!(l.config()["width_factor"], Value::Null);
        assert_eq!(RandomZoom::from_config(&l.config()).unwrap().config(), l.config());
    }
}
