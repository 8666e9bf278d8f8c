//! `RandomFlip`: mirrors images at random during training.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::image_ops::{from_nhwc, image_input, to_nhwc, LayerRng};
use crate::meta::{from_json, named, Meta};
use crate::window_args::DataFormat;
use crate::{BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Which axes [`RandomFlip`] mirrors: Keras' `mode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlipMode {
    /// Left to right (the width axis).
    Horizontal,
    /// Top to bottom (the height axis).
    Vertical,
    /// Both at once (the default): as in Keras 3, one draw per image flips
    /// both axes or neither (a half turn).
    #[default]
    HorizontalAndVertical,
}

impl FlipMode {
    /// Keras' name.
    pub fn name(self) -> &'static str {
        match self {
            FlipMode::Horizontal => "horizontal",
            FlipMode::Vertical => "vertical",
            FlipMode::HorizontalAndVertical => "horizontal_and_vertical",
        }
    }
}

impl FromStr for FlipMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "horizontal" => Ok(FlipMode::Horizontal),
            "vertical" => Ok(FlipMode::Vertical),
            "horizontal_and_vertical" => Ok(FlipMode::HorizontalAndVertical),
            _ => Err(Error::invalid(
                "mode",
                format!("unknown flip mode `{s}`; expected horizontal, vertical or horizontal_and_vertical"),
            )),
        }
    }
}

impl fmt::Display for FlipMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Resolve<FlipMode> for FlipMode {
    fn resolve(self) -> Result<FlipMode> {
        Ok(self)
    }
}

impl Resolve<FlipMode> for &str {
    fn resolve(self) -> Result<FlipMode> {
        self.parse()
    }
}

/// During training, mirrors each image left to right and/or top to bottom
/// with probability 1/2 — Keras' `RandomFlip`. As in Keras 3, each image
/// draws once: with `"horizontal_and_vertical"` it is flipped along both axes
/// or left as it is. Outside training it is the identity. A flip only reorders
/// pixels, so the values are exact.
///
/// The draws come from the model's seeded generator, or, when
/// [`seed`](RandomFlip::seed) is given, from the layer's own generator
/// seeded with it, as for [`Dropout`](crate::Dropout).
///
/// Arguments (Keras' names and defaults): `mode`
/// (`"horizontal_and_vertical"`), `seed`, `data_format` (`"channels_last"`).
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
/// use strata_layers::{BuildContext, CallContext, Layer, RandomFlip, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut flip = RandomFlip::new("horizontal").seed(3);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1), Some(3), Some(1)], strata_core::DType::F32);
/// flip.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0], [1, 1, 3, 1], &dev)?;
/// let y = flip.call(&[x.clone()], &mut CallContext::new(true, &[None], &weights, &mut rng))?.to_vec::<f32>()?;
/// assert!(y == [1.0, 2.0, 3.0] || y == [3.0, 2.0, 1.0]);
/// // Inference: the identity.
/// let y = flip.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![1.0, 2.0, 3.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RandomFlip {
    #[serde(default)]
    mode: FlipMode,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(RandomFlip);

impl Default for RandomFlip {
    fn default() -> Self {
        RandomFlip::new(FlipMode::HorizontalAndVertical)
    }
}

impl RandomFlip {
    /// Flips along `mode`'s axes (`"horizontal"`, `"vertical"` or
    /// `"horizontal_and_vertical"`).
    pub fn new(mode: impl Resolve<FlipMode>) -> Self {
        let mut meta = Meta::default();
        let mode = meta.keep(mode.resolve()).unwrap_or_default();
        RandomFlip { mode, seed: None, data_format: DataFormat::ChannelsLast, rng: LayerRng::default(), meta }
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
}

/// Each image of a channels-last batch mirrored along `axis` where `flip`
/// is set.
fn flip_where(x: &Tensor, axis: usize, flip: &[bool]) -> Result<Tensor> {
    if !flip.iter().any(|&f| f) {
        return Ok(x.clone());
    }
    let n = x.dims()[axis];
    let rev: Vec<i64> = (0..n as i64).rev().collect();
    let flipped = x.gather(axis as isize, &Tensor::new(rev, [n], x.device())?)?;
    if flip.iter().all(|&f| f) {
        return Ok(flipped);
    }
    let cond: Vec<f32> = flip.iter().map(|&f| if f { 1.0 } else { 0.0 }).collect();
    let cond = Tensor::new(cond, [flip.len(), 1, 1, 1], x.device())?;
    Tensor::where_cond(&cond, &flipped, x)
}

impl LayerClass for RandomFlip {
    const CLASS_NAME: &'static str = "RandomFlip";

    fn from_config(config: &Value) -> Result<Self> {
        let l: RandomFlip = from_json(Self::CLASS_NAME, config)?;
        let rng = LayerRng::new(l.seed);
        Ok(RandomFlip { rng, ..l })
    }
}

impl Layer for RandomFlip {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        image_input(&inputs[0], self.data_format)?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        if !ctx.training() {
            return Ok(inputs[0].clone());
        }
        let (mut x, single) = to_nhwc(&inputs[0], self.data_format)?;
        let b = x.dims()[0];
        let flips: Vec<bool> = self.rng.uniform(ctx, b, 0.0, 1.0).into_iter().map(|u| u <= 0.5).collect();
        if matches!(self.mode, FlipMode::Horizontal | FlipMode::HorizontalAndVertical) {
            x = flip_where(&x, 2, &flips)?;
        }
        if matches!(self.mode, FlipMode::Vertical | FlipMode::HorizontalAndVertical) {
            x = flip_where(&x, 1, &flips)?;
        }
        from_nhwc(&x, self.data_format, single)
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

    fn images(b: usize, h: usize, w: usize) -> (Tensor, Vec<f32>) {
        let data: Vec<f32> = (0..b * h * w * 2).map(|i| i as f32).collect();
        (t(&data, &[b, h, w, 2]), data)
    }

    #[test]
    fn each_image_is_itself_or_exactly_mirrored() {
        let (b, h, w) = (16, 3, 4);
        let (x, data) = images(b, h, w);
        let at = |v: &[f32], i: usize, r: usize, c: usize, ch: usize| v[((i * h + r) * w + c) * 2 + ch];
        for mode in ["horizontal", "vertical", "horizontal_and_vertical"] {
            let layer = RandomFlip::new(mode).seed(5);
            let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
            let mut seen = std::collections::BTreeSet::new();
            for i in 0..b {
                let kinds: Vec<(bool, bool)> = [(false, false), (true, false), (false, true), (true, true)]
                    .into_iter()
                    .filter(|&(fh, fv)| {
                        (0..h).all(|r| {
                            (0..w).all(|c| {
                                (0..2).all(|ch| {
                                    let (sr, sc) = (if fv { h - 1 - r } else { r }, if fh { w - 1 - c } else { c });
                                    at(&y, i, r, c, ch) == at(&data, i, sr, sc, ch)
                                })
                            })
                        })
                    })
                    .collect();
                assert_eq!(kinds.len(), 1, "{mode}: image {i} is no exact flip");
                seen.insert(kinds[0]);
            }
            let allowed = match mode {
                "horizontal" => vec![(false, false), (true, false)],
                "vertical" => vec![(false, false), (false, true)],
                _ => vec![(false, false), (true, true)],
            };
            assert!(seen.iter().all(|k| allowed.contains(k)), "{mode}: {seen:?}");
            assert!(seen.len() > 1, "{mode}: 16 images all drew {seen:?}");
        }
    }

    #[test]
    fn identity_in_inference_and_seeded() {
        let (x, data) = images(8, 2, 3);
        let layer = RandomFlip::default();
        assert_eq!(vals(&call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap()), data);
        let a = vals(&call(&RandomFlip::default().seed(9), std::slice::from_ref(&x), &[], &[], true).unwrap());
        let b = vals(&call(&RandomFlip::default().seed(9), std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(a, b);
        // Unseeded: the context's generator (seeded the same in each test call).
        let c = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        let d = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(c, d);
    }

    #[test]
    fn configs_round_trip_and_bad_modes_are_errors() {
        let l = RandomFlip::new("vertical").seed(4);
        assert_eq!(l.config(), serde_json::json!({"mode": "vertical", "seed": 4, "data_format": "channels_last"}));
        assert_eq!(RandomFlip::from_config(&l.config()).unwrap().config(), l.config());
        let e = err(build(&mut RandomFlip::new("diagonal"), &[spec(&[None, Some(2), Some(2), Some(1)])]));
        assert!(e.contains("diagonal"), "{e}");
    }
}
