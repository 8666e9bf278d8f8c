//! `CenterCrop`: the central window of each image.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{crop_to_aspect, from_nhwc, image_input, image_output, resize, to_nhwc, Interpolation};
use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Crops the central `(height, width)` window of each image — Keras'
/// `CenterCrop`: rows from `(h − height) / 2`, columns from `(w − width) / 2`
/// (rounded down).
///
/// When the target is larger than the input along either axis, Keras does not
/// pad: it crops the input to the target's aspect ratio (the largest central
/// window) and resizes it bilinearly to `(height, width)`, as
/// [`Resizing`](crate::Resizing) with `crop_to_aspect_ratio` does; so does
/// strata.
///
/// Arguments (Keras' names): `height`, `width`, `data_format`
/// (`"channels_last"`).
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
/// use strata_layers::{BuildContext, CallContext, CenterCrop, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut layer = CenterCrop::new(1, 2);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(3), Some(4), Some(1)], strata_core::DType::F32);
/// assert_eq!(layer.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 1, 2, 1)");
/// let x = Tensor::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [1, 3, 4, 1], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 6.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CenterCrop {
    height: usize,
    width: usize,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    meta: Meta,
}

named!(CenterCrop);

impl CenterCrop {
    /// Crops to `height` × `width`.
    pub fn new(height: usize, width: usize) -> Self {
        CenterCrop { height, width, data_format: DataFormat::ChannelsLast, meta: Meta::default() }
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
        Ok(())
    }
}

impl LayerClass for CenterCrop {
    const CLASS_NAME: &'static str = "CenterCrop";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for CenterCrop {
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
        let (x, single) = to_nhwc(&inputs[0], self.data_format)?;
        let (h, w) = (x.dims()[1], x.dims()[2]);
        let (th, tw) = (self.height, self.width);
        let y = if th <= h && tw <= w {
            x.narrow(1, (h - th) / 2, th)?.narrow(2, (w - tw) / 2, tw)?
        } else {
            if h == 0 || w == 0 {
                return Err(Error::msg(format!("cannot resize an empty image of shape {:?}", inputs[0].dims())));
            }
            resize(&crop_to_aspect(&x, th, tw)?, th, tw, Interpolation::Bilinear)?
        };
        from_nhwc(&y, self.data_format, single)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn crops_or_resizes() {
        let x = t(&(0..12).map(|v| v as f32).collect::<Vec<_>>(), &[3, 4, 1]);
        let y = call(&CenterCrop::new(3, 2), std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[3, 2, 1]);
        assert_eq!(vals(&y), [1.0, 2.0, 5.0, 6.0, 9.0, 10.0]);
        // Larger than the input: crop 3x4 to 3x3 (cols 0..3), resize to 6x6.
        let y = call(&CenterCrop::new(6, 6), std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[6, 6, 1]);
        assert_eq!(vals(&y)[0], 0.0);
        assert_eq!(vals(&y)[35], 10.0);
        let mut cf = CenterCrop::new(1, 1).data_format("channels_first");
        let (out, _) = build(&mut cf, &[spec(&[None, Some(2), Some(3), Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 1, 1)");
    }

    #[test]
    fn bad_arguments_are_errors_and_configs_round_trip() {
        let e = err(build(&mut CenterCrop::new(2, 0), &[spec(&[None, Some(4), Some(4), Some(1)])]));
        assert!(e.contains("width=0"), "{e}");
        let l = CenterCrop::new(3, 4);
        assert_eq!(l.config(), serde_json::json!({"height": 3, "width": 4, "data_format": "channels_last"}));
        assert_eq!(CenterCrop::from_config(&l.config()).unwrap().config(), l.config());
    }
}
