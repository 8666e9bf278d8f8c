//! `RandomContrast`: scales each image's contrast at random during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{from_nhwc, image_input, to_nhwc, Factor, LayerRng};
use crate::meta::{from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

fn default_range() -> (f32, f32) {
    (0.0, 255.0)
}

/// During training, scales each image's deviation from its mean by a random
/// factor — Keras' `RandomContrast`: `y = (x − mean) · c + mean`, with `mean`
/// the image's mean per channel over its pixels and `c` drawn per image
/// uniformly from `[1 − lower, 1 + upper]`, then clipped to `value_range`.
/// Outside training it is the identity.
///
/// Arguments (Keras' names and defaults): `factor` (a number `f` for
/// `lower = upper = f`, or a pair `(lower, upper)`, with `lower` in `[0, 1]`
/// and `upper >= 0`), `value_range` (`(0, 255)`), `seed`, `data_format`
/// (`"channels_last"`). The draws come from the model's seeded generator, or
/// from the layer's own when `seed` is given.
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
/// use strata_layers::{BuildContext, CallContext, Layer, RandomContrast, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut layer = RandomContrast::new(0.5).seed(1);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(2), Some(1)], strata_core::DType::F32);
/// layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![1.0f32, 3.0], [1, 1, 2, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?.to_vec::<f32>()?;
/// // The mean (2) is kept; the spread (2) is scaled by a factor in [0.5, 1.5].
/// assert!((y[0] + y[1] - 4.0).abs() < 1e-5 && (1.0..=3.0).contains(&(y[1] - y[0])));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomContrast {
    factor: Factor,
    #[serde(default = "default_range")]
    value_range: (f32, f32),
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(RandomContrast);

impl RandomContrast {
    /// Contrast factors in `[1 − lower, 1 + upper]` (`factor` a number for
    /// both, or a pair `(lower, upper)`).
    pub fn new(factor: impl Into<Factor>) -> Self {
        RandomContrast {
            factor: factor.into(),
            value_range: default_range(),
            seed: None,
            data_format: DataFormat::ChannelsLast,
            rng: LayerRng::default(),
            meta: Meta::default(),
        }
    }

    /// The range the output is clipped to (default `(0, 255)`).
    pub fn value_range(mut self, low: f32, high: f32) -> Self {
        self.value_range = (low, high);
        self
    }

    /// Draws from the layer's own generator seeded with `seed`.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.rng = LayerRng::new(Some(seed));
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    /// `(lower, upper)`: a single number is both.
    fn bounds(&self) -> (f32, f32) {
        match self.factor {
            Factor::One(f) => (f, f),
            Factor::Range(a, b) => (a, b),
        }
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        let (lo, hi) = self.bounds();
        if !(lo.is_finite() && hi.is_finite() && (0.0..=1.0).contains(&lo) && hi >= 0.0) {
            let shown = match self.factor {
                Factor::One(f) => format!("{f}"),
                Factor::Range(a, b) => format!("({a}, {b})"),
            };
            return Err(Error::msg(format!(
                "factor must be a number in [0, 1] or a pair (lower, upper) with lower in [0, 1] and upper >= 0, \
                 received {shown}"
            )));
        }
        let (a, b) = self.value_range;
        if !(a.is_finite() && b.is_finite() && a <= b) {
            return Err(Error::msg(format!("value_range must be finite with low <= high, received ({a}, {b})")));
        }
        Ok(())
    }
}

impl LayerClass for RandomContrast {
    const CLASS_NAME: &'static str = "RandomContrast";

    fn from_config(config: &Value) -> Result<Self> {
        let l: RandomContrast = from_json(Self::CLASS_NAME, config)?;
        let rng = LayerRng::new(l.seed);
        Ok(RandomContrast { rng, ..l })
    }
}

impl Layer for RandomContrast {
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
        let (x, single) = to_nhwc(&inputs[0], self.data_format)?;
        let b = x.dims()[0];
        let (lo, hi) = self.bounds();
        let factors = self.rng.uniform(ctx, b, 1.0 - lo, 1.0 + hi);
        let factors = Tensor::new(factors, [b, 1, 1, 1], x.device())?;
        let mean = x.mean(&[1, 2], true)?;
        let y = x.sub(&mean)?.mul(&factors)?.add(&mean)?;
        let (a, c) = self.value_range;
        let y = y.maximum_scalar(a as f64)?.minimum_scalar(c as f64)?;
        from_nhwc(&y, self.data_format, single)
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
    fn keeps_each_images_channel_means() {
        let (b, h, w, c) = (6, 4, 5, 3);
        let data: Vec<f32> = (0..b * h * w * c).map(|i| 100.0 + ((i * 17) % 41) as f32).collect();
        let x = t(&data, &[b, h, w, c]);
        let layer = RandomContrast::new(0.5).seed(4);
        let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_ne!(y, data);
        let mean = |v: &[f32], i: usize, ch: usize| {
            (0..h * w).map(|p| v[(i * h * w + p) * c + ch] as f64).sum::<f64>() / (h * w) as f64
        };
        for i in 0..b {
            for ch in 0..c {
                assert!((mean(&y, i, ch) - mean(&data, i, ch)).abs() < 1e-3, "image {i} channel {ch}");
            }
        }
        // Same seed, same result; inference and a zero factor are the identity.
        assert_eq!(
            y,
            vals(&call(&RandomContrast::new(0.5).seed(4), std::slice::from_ref(&x), &[], &[], true).unwrap())
        );
        assert_eq!(vals(&call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap()), data);
        close(&vals(&call(&RandomContrast::new(0.0), std::slice::from_ref(&x), &[], &[], true).unwrap()), &data, 1e-4);
    }

    #[test]
    fn clips_to_the_value_range() {
        let x = t(&[0.0, 10.0], &[1, 1, 2, 1]);
        let layer = RandomContrast::new((0.0, 1.0)).value_range(1.0, 9.0).seed(1);
        let y = vals(&call(&layer, &[x], &[], &[], true).unwrap());
        assert!(y.iter().all(|v| (1.0..=9.0).contains(v)), "{y:?}");
    }

    #[test]
    fn bad_factors_are_errors_and_configs_round_trip() {
        let s = [spec(&[None, Some(4), Some(4), Some(1)])];
        assert!(err(build(&mut RandomContrast::new(1.5), &s)).contains("received 1.5"));
        assert!(err(build(&mut RandomContrast::new((0.2, -0.1)), &s)).contains("received (0.2, -0.1)"));
        assert!(err(build(&mut RandomContrast::new(0.2).value_range(5.0, 1.0), &s)).contains("(5, 1)"));
        let l = RandomContrast::new((0.1, 0.4)).seed(2);
        assert_eq!(l.config()["value_range"], serde_json::json!([0.0, 255.0]));
        assert_eq!(RandomContrast::from_config(&l.config()).unwrap().config(), l.config());
    }
}
