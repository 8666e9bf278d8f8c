//! `SpatialDropout2D`: drops whole channels (feature maps) of an image
//! during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use super::drop_with_noise_shape;
use super::spatial_dropout1d::check_rate;
use crate::meta::{config_from_serde, from_json, named, LayerRng, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// During training, zeroes each whole feature map (every pixel of one
/// channel) of each sample with probability `rate` and scales the kept maps
/// by `1 / (1 − rate)` — Keras' `SpatialDropout2D`, for convolutional
/// features whose neighbouring pixels are strongly correlated. Outside
/// training it is the identity.
///
/// The noise comes from the model's seeded generator, or, when
/// [`seed`](SpatialDropout2D::seed) is given, from the layer's own
/// generator seeded with it, as for [`Dropout`](crate::Dropout).
/// `data_format` (`"channels_last"`, the default, or `"channels_first"`)
/// says which axis holds the channels.
///
/// # Shapes
/// - input: `(batch, height, width, channels)` (channels first with
///   `data_format("channels_first")`), `f32`
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, SpatialDropout2D, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut drop = SpatialDropout2D::new(0.25).data_format("channels_first");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(4), Some(3), Some(3)], strata_core::DType::F32);
/// drop.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::ones([2, 4, 3, 3], strata_core::DType::F32, &dev)?;
/// let y = drop.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?.to_vec::<f32>()?;
/// // Each 3×3 map is all zeros or all 1 / 0.75.
/// for map in y.chunks(9) {
///     assert!(map.iter().all(|&v| v == map[0]) && (map[0] == 0.0 || (map[0] - 1.0 / 0.75).abs() < 1e-6));
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialDropout2D {
    rate: f32,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    /// Cloned, it continues from the same state.
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(SpatialDropout2D);

impl SpatialDropout2D {
    /// Drops each feature map of each sample with probability `rate`, in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        let mut meta = Meta::default();
        check_rate(&mut meta, rate);
        SpatialDropout2D { rate, seed: None, data_format: DataFormat::ChannelsLast, rng: LayerRng::default(), meta }
    }

    /// Draws the noise from the layer's own generator seeded with `seed`
    /// instead of the model's.
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
}

impl LayerClass for SpatialDropout2D {
    const CLASS_NAME: &'static str = "SpatialDropout2D";

    fn from_config(config: &Value) -> Result<Self> {
        let d: SpatialDropout2D = from_json(Self::CLASS_NAME, config)?;
        let layer = SpatialDropout2D::new(d.rate).data_format(d.data_format);
        Ok(match d.seed {
            Some(s) => layer.seed(s),
            None => layer,
        })
    }
}

impl Layer for SpatialDropout2D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let what = match self.data_format {
            DataFormat::ChannelsLast => "(batch, height, width, channels)",
            DataFormat::ChannelsFirst => "(batch, channels, height, width)",
        };
        crate::layer::expect_float(&inputs[0])?;
        crate::layer::expect_rank(&inputs[0], 4, what)?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        if x.rank() != 4 {
            return Err(strata_core::Error::msg(format!("expects rank 4 input, received shape {}", x.shape())));
        }
        let d = x.dims();
        let noise = match self.data_format {
            DataFormat::ChannelsLast => vec![d[0], 1, 1, d[3]],
            DataFormat::ChannelsFirst => vec![d[0], d[1], 1, 1],
        };
        drop_with_noise_shape(x, noise, self.rate, &self.rng, ctx)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// Every feature map is all zeros or the input scaled by `1 / (1 − rate)`,
    /// in both data formats; about `rate` of the maps are dropped.
    #[test]
    fn drops_whole_feature_maps() {
        let (b, h, w, c) = (10, 3, 4, 40);
        let data: Vec<f32> = (0..b * h * w * c).map(|i| 1.0 + (i % 11) as f32).collect();
        let rate = 0.3f32;
        for format in ["channels_last", "channels_first"] {
            let x = t(&data, &[b, h, w, c]);
            let x = if format == "channels_first" { x.permute(&[0, 3, 1, 2]).unwrap() } else { x };
            let layer = SpatialDropout2D::new(rate).data_format(format);
            let y = call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap();
            // Back to channels last to compare maps.
            let (x, y) = if format == "channels_first" {
                (x.permute(&[0, 2, 3, 1]).unwrap(), y.permute(&[0, 2, 3, 1]).unwrap())
            } else {
                (x, y)
            };
            let (xs, ys) = (vals(&x), vals(&y));
            let mut dropped = 0;
            for s in 0..b {
                for ch in 0..c {
                    let at = |p: usize| s * h * w * c + p * c + ch;
                    let zero = ys[at(0)] == 0.0;
                    dropped += zero as usize;
                    for p in 0..h * w {
                        let want = if zero { 0.0 } else { xs[at(p)] / (1.0 - rate) };
                        assert!((ys[at(p)] - want).abs() <= 1e-5 * want.abs(), "{format}: sample {s} map {ch}");
                    }
                }
            }
            let n = (b * c) as f64;
            let sd = (n * rate as f64 * (1.0 - rate as f64)).sqrt();
            assert!((dropped as f64 - n * rate as f64).abs() < 5.0 * sd, "{format}: {dropped} of {n}");
        }
    }

    #[test]
    fn is_the_identity_outside_training_and_round_trips() {
        let x = t(&(0..48).map(|i| i as f32).collect::<Vec<_>>(), &[2, 2, 3, 4]);
        let y = call(&SpatialDropout2D::new(0.5), std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), vals(&x));
        let layer = SpatialDropout2D::new(0.5).seed(2).data_format("channels_first");
        let back = SpatialDropout2D::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), serde_json::json!({"rate": 0.5, "seed": 2, "data_format": "channels_first"}));
        let a = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(a, vals(&call(&back, std::slice::from_ref(&x), &[], &[], true).unwrap()));
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(3), Some(3), Some(2)])];
        let msg = err(build(&mut SpatialDropout2D::new(-0.5), &s));
        assert!(msg.contains("received -0.5"), "{msg}");
        let msg = err(build(&mut SpatialDropout2D::new(0.5).data_format("nchw"), &s));
        assert!(msg.contains("nchw"), "{msg}");
        let msg = err(build(&mut SpatialDropout2D::new(0.5), &[spec(&[None, Some(3), Some(2)])]));
        assert!(msg.contains("rank 4") && msg.contains("(None, 3, 2)"), "{msg}");
    }
}
