//! `Resizing`: images resized to a fixed height and width.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{crop_to_aspect, from_nhwc, image_input, image_output, resize, to_nhwc, Interpolation};
use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

fn constant() -> String {
    "constant".to_string()
}

/// Resizes images to `(height, width)` — Keras' `Resizing`, computed as
/// `jax.image.resize` without antialiasing: output pixel `i` samples input
/// position `(i + 0.5) · in / out − 0.5` (half-pixel centres), bilinearly
/// (the default, edges clamped) or from the nearest pixel
/// (`floor((i + 0.5) · in / out)`).
///
/// Arguments (Keras' names and defaults): `height`, `width`,
/// `interpolation` (`"bilinear"` or `"nearest"`; Keras' bicubic, lanczos
/// and area kernels are not supported and are errors), `crop_to_aspect_ratio`
/// (`false`: first take the largest central window with the target's aspect
/// ratio), `pad_to_aspect_ratio` (`false`: first pad the image evenly with
/// `fill_value` to the target's aspect ratio; `fill_mode` must be
/// `"constant"`), `fill_value` (0), `antialias` (`false`; `true` is not
/// supported and is an error) and `data_format` (`"channels_last"`).
///
/// # Shapes
/// - input: `(batch, h, w, channels)` or one image `(h, w, channels)` (or
///   channels first), `f32`
/// - output: `(batch, height, width, channels)` (or the single image)
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, Resizing, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut layer = Resizing::new(1, 2);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, None, None, Some(1)], strata_core::DType::F32);
/// assert_eq!(layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 1, 2, 1)");
/// let x = Tensor::new(vec![0.0f32, 1.0, 2.0, 3.0], [1, 1, 4, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![0.5, 2.5]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Resizing {
    height: usize,
    width: usize,
    #[serde(default)]
    interpolation: Interpolation,
    #[serde(default)]
    crop_to_aspect_ratio: bool,
    #[serde(default)]
    pad_to_aspect_ratio: bool,
    #[serde(default = "constant")]
    fill_mode: String,
    #[serde(default)]
    fill_value: f32,
    #[serde(default)]
    antialias: bool,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    meta: Meta,
}

named!(Resizing);

impl Resizing {
    /// Resizes to `height` × `width` bilinearly.
    pub fn new(height: usize, width: usize) -> Self {
        Resizing {
            height,
            width,
            interpolation: Interpolation::Bilinear,
            crop_to_aspect_ratio: false,
            pad_to_aspect_ratio: false,
            fill_mode: constant(),
            fill_value: 0.0,
            antialias: false,
            data_format: DataFormat::ChannelsLast,
            meta: Meta::default(),
        }
    }

    /// `"bilinear"` (default) or `"nearest"`.
    pub fn interpolation(mut self, interpolation: impl Resolve<Interpolation>) -> Self {
        if let Some(i) = self.meta.keep(interpolation.resolve()) {
            self.interpolation = i;
        }
        self
    }

    /// Centre-crops to the target's aspect ratio before resizing.
    pub fn crop_to_aspect_ratio(mut self, crop: bool) -> Self {
        self.crop_to_aspect_ratio = crop;
        self
    }

    /// Pads evenly with the fill value to the target's aspect ratio before
    /// resizing.
    pub fn pad_to_aspect_ratio(mut self, pad: bool) -> Self {
        self.pad_to_aspect_ratio = pad;
        self
    }

    /// The value [`pad_to_aspect_ratio`](Self::pad_to_aspect_ratio) pads with (default 0).
    pub fn fill_value(mut self, value: f32) -> Self {
        self.fill_value = value;
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        if self.height == 0 || self.width == 0 {
            return Err(Error::msg(format!(
                "height and width must be positive, received height={}, width={}",
                self.height, self.width
            )));
        }
        if self.antialias {
            return Err(Error::msg("antialias=true is not supported (strata resizes without antialiasing)"));
        }
        if self.crop_to_aspect_ratio && self.pad_to_aspect_ratio {
            return Err(Error::msg("crop_to_aspect_ratio and pad_to_aspect_ratio cannot both be true"));
        }
        if self.fill_mode != "constant" {
            return Err(Error::msg(format!("fill_mode must be \"constant\", received \"{}\"", self.fill_mode)));
        }
        if !self.fill_value.is_finite() {
            return Err(Error::msg(format!("fill_value must be finite, received {}", self.fill_value)));
        }
        Ok(())
    }

    /// A channels-last batch padded evenly with the fill value to the
    /// target's aspect ratio (Keras' `pad_to_aspect_ratio`).
    fn pad_to_aspect(&self, x: &Tensor) -> Result<Tensor> {
        let (h, w) = (x.dims()[1], x.dims()[2]);
        let (th, tw) = (self.height as f64, self.width as f64);
        let ph = ((w as f64 * th / tw) as usize).max(h);
        let pw = ((h as f64 * tw / th) as usize).max(w);
        let pad = |x: &Tensor, axis: usize, total: usize| -> Result<Tensor> {
            let n = x.dims()[axis];
            if total == n {
                return Ok(x.clone());
            }
            let before = (total - n) / 2;
            let block = |k: usize| {
                let mut d = x.dims().to_vec();
                d[axis] = k;
                Tensor::full(self.fill_value as f64, d, x.dtype(), x.device())
            };
            Tensor::concat(&[&block(before)?, x, &block(total - n - before)?], axis as isize)
        };
        pad(&pad(x, 1, ph)?, 2, pw)
    }
}

impl LayerClass for Resizing {
    const CLASS_NAME: &'static str = "Resizing";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Resizing {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        image_input(x, self.data_format)?;
        Ok(image_output(x, self.data_format, Some(self.height), Some(self.width)))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        self.check_args()?;
        let (mut x, single) = to_nhwc(&inputs[0], self.data_format)?;
        if x.dims()[1] == 0 || x.dims()[2] == 0 {
            return Err(Error::msg(format!("cannot resize an empty image of shape {:?}", inputs[0].dims())));
        }
        if self.crop_to_aspect_ratio {
            x = crop_to_aspect(&x, self.height, self.width)?;
        } else if self.pad_to_aspect_ratio {
            x = self.pad_to_aspect(&x)?;
        }
        from_nhwc(&resize(&x, self.height, self.width, self.interpolation)?, self.data_format, single)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_conformance::check_grad;
    use strata_core::Shape;

    #[test]
    fn resizes_single_images_and_channels_first() {
        let mut layer = Resizing::new(2, 2).interpolation("nearest");
        let (out, _) = build(&mut layer, &[spec(&[Some(4), Some(4), Some(1)])]).unwrap();
        assert_eq!(out.to_string(), "(2, 2, 1)");
        let x = t(&(0..16).map(|v| v as f32).collect::<Vec<_>>(), &[4, 4, 1]);
        assert_eq!(vals(&call(&layer, &[x], &[], &[], false).unwrap()), [5.0, 7.0, 13.0, 15.0]);
        let mut layer = Resizing::new(1, 3).data_format("channels_first");
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(1), Some(1)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 1, 3)");
        let y = call(&layer, &[t(&[1.0, 2.0], &[1, 2, 1, 1])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), [1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    }

    #[test]
    fn pads_to_the_aspect_ratio() {
        let layer = Resizing::new(2, 2).pad_to_aspect_ratio(true).fill_value(-1.0);
        let y = call(&layer, &[t(&[1.0, 2.0], &[1, 1, 2, 1])], &[], &[], false).unwrap();
        // 1x2 padded to 2x2: one row of fill below (0 rows above), then no resize.
        assert_eq!(vals(&y), [1.0, 2.0, -1.0, -1.0]);
    }

    #[test]
    fn bilinear_gradients_match_finite_differences() {
        let layer = Resizing::new(3, 5);
        let data: Vec<f32> = (0..2 * 4 * 3 * 2).map(|i| (i as f32 * 0.61).cos()).collect();
        check_grad("resizing", &dev(), &[(data, Shape::from([2, 4, 3, 2]))], 1e-2, |xs| {
            call(&layer, xs, &[], &[], false)
        })
        .unwrap();
    }

    #[test]
    fn bad_arguments_are_errors_and_configs_round_trip() {
        let s = [spec(&[None, Some(4), Some(4), Some(1)])];
        assert!(err(build(&mut Resizing::new(0, 3), &s)).contains("height=0"));
        assert!(err(build(&mut Resizing::new(2, 3).interpolation("lanczos3"), &s)).contains("lanczos3"));
        let e = err(Resizing::from_config(&serde_json::json!({"height": 2, "width": 2, "antialias": true}))
            .and_then(|mut l| build(&mut l, &s)));
        assert!(e.contains("antialias"), "{e}");
        assert!(err(build(&mut Resizing::new(2, 2), &[spec(&[None, Some(4)])])).contains("rank 4 or 3"));
        // An absurd size is an error, not an aborted allocation.
        let e = err(call(&Resizing::new(1 << 60, 1), &[t(&[1.0], &[1, 1, 1])], &[], &[], false));
        assert!(e.contains("do not fit in memory"), "{e}");
        let l = Resizing::new(3, 4).crop_to_aspect_ratio(true).interpolation("nearest");
        assert_eq!(Resizing::from_config(&l.config()).unwrap().config(), l.config());
        assert_eq!(l.config()["interpolation"], "nearest");
        assert_eq!(l.config()["fill_mode"], "constant");
    }
}
