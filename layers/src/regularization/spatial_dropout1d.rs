//! `SpatialDropout1D`: drops whole channels of a sequence during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use super::drop_with_noise_shape;
use crate::meta::{config_from_serde, from_json, named, LayerRng, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// During training, zeroes each whole channel (every step of it) of each
/// sample with probability `rate` and scales the kept channels by
/// `1 / (1 − rate)` — Keras' `SpatialDropout1D`, for sequences whose
/// neighbouring steps are strongly correlated, where element-wise
/// [`Dropout`](crate::Dropout) would barely regularize. Outside training it
/// is the identity.
///
/// The noise comes from the model's seeded generator, or, when
/// [`seed`](SpatialDropout1D::seed) is given, from the layer's own
/// generator seeded with it (which advances with every training call), as
/// for `Dropout`.
///
/// # Shapes
/// - input: `(batch, steps, channels)`, `f32`
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, SpatialDropout1D, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut drop = SpatialDropout1D::new(0.5).seed(3);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(5), Some(8)], strata_core::DType::F32);
/// drop.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::ones([2, 5, 8], strata_core::DType::F32, &dev)?;
/// let y = drop.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?.to_vec::<f32>()?;
/// // Every channel of a sample is all zeros or all 2 (= 1 / (1 − 0.5)) over the 5 steps.
/// for b in 0..2 {
///     for c in 0..8 {
///         let v = y[b * 40 + c];
///         assert!(v == 0.0 || v == 2.0);
///         assert!((0..5).all(|s| y[b * 40 + s * 8 + c] == v));
///     }
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SpatialDropout1D {
    rate: f32,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(skip)]
    /// Cloned, it continues from the same state.
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(SpatialDropout1D);

/// Checks a dropout rate, recording the error in `meta`.
pub(crate) fn check_rate(meta: &mut Meta, rate: f32) {
    meta.require((0.0..1.0).contains(&rate), || format!("rate must be in [0, 1), received {rate}"));
}

impl SpatialDropout1D {
    /// Drops each channel of each sample with probability `rate`, in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        let mut meta = Meta::default();
        check_rate(&mut meta, rate);
        SpatialDropout1D { rate, seed: None, rng: LayerRng::default(), meta }
    }

    /// Draws the noise from the layer's own generator seeded with `seed`
    /// instead of the model's.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.rng = LayerRng::new(Some(seed));
        self
    }
}

impl LayerClass for SpatialDropout1D {
    const CLASS_NAME: &'static str = "SpatialDropout1D";

    fn from_config(config: &Value) -> Result<Self> {
        let d: SpatialDropout1D = from_json(Self::CLASS_NAME, config)?;
        let layer = SpatialDropout1D::new(d.rate);
        Ok(match d.seed {
            Some(s) => layer.seed(s),
            None => layer,
        })
    }
}

impl Layer for SpatialDropout1D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        crate::layer::expect_float(&inputs[0])?;
        crate::layer::expect_rank(&inputs[0], 3, "(batch, steps, channels)")?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        if x.rank() != 3 {
            return Err(strata_core::Error::msg(format!(
                "expects rank 3 input (batch, steps, channels), received shape {}",
                x.shape()
            )));
        }
        let d = x.dims();
        drop_with_noise_shape(x, vec![d[0], 1, d[2]], self.rate, &self.rng, ctx)
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

    fn input() -> Tensor {
        let (b, s, c) = (20, 6, 50);
        t(&(0..b * s * c).map(|i| 1.0 + (i % 13) as f32).collect::<Vec<_>>(), &[b, s, c])
    }

    /// Each channel of each sample is zero at every step or scaled by
    /// `1 / (1 − rate)` at every step; about `rate` of them are dropped.
    #[test]
    fn drops_whole_channels() {
        let x = input();
        let xs = vals(&x);
        for rate in [0.2f32, 0.5] {
            let layer = SpatialDropout1D::new(rate);
            let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
            let mut dropped = 0;
            for b in 0..20 {
                for c in 0..50 {
                    let at = |s: usize| b * 300 + s * 50 + c;
                    let zero = y[at(0)] == 0.0;
                    dropped += zero as usize;
                    for s in 0..6 {
                        let want = if zero { 0.0 } else { xs[at(s)] / (1.0 - rate) };
                        assert!((y[at(s)] - want).abs() <= 1e-5 * want.abs(), "sample {b} channel {c} step {s}");
                    }
                }
            }
            let n = 1000.0;
            let sd = (n * rate as f64 * (1.0 - rate as f64)).sqrt();
            assert!((dropped as f64 - n * rate as f64).abs() < 5.0 * sd, "rate {rate}: {dropped} of 1000");
        }
    }

    #[test]
    fn is_the_identity_outside_training_and_seeds_like_dropout() {
        let x = input();
        let y = call(&SpatialDropout1D::new(0.5), std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), vals(&x));
        let (a, b) = (SpatialDropout1D::new(0.5).seed(9), SpatialDropout1D::new(0.5).seed(9));
        let ya = vals(&call(&a, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(ya, vals(&call(&b, std::slice::from_ref(&x), &[], &[], true).unwrap()));
        assert_ne!(ya, vals(&call(&a, std::slice::from_ref(&x), &[], &[], true).unwrap()));
        let back = SpatialDropout1D::from_config(&SpatialDropout1D::new(0.5).seed(9).config()).unwrap();
        assert_eq!(ya, vals(&call(&back, std::slice::from_ref(&x), &[], &[], true).unwrap()));
        assert_eq!(back.config(), serde_json::json!({"rate": 0.5, "seed": 9}));
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let msg = err(build(&mut SpatialDropout1D::new(1.0), &[spec(&[None, Some(3), Some(2)])]));
        assert!(msg.contains("[0, 1)") && msg.contains("received 1"), "{msg}");
        let msg = err(build(&mut SpatialDropout1D::new(0.5), &[spec(&[None, Some(3)])]));
        assert!(msg.contains("rank 3") && msg.contains("(None, 3)"), "{msg}");
        let msg = err(call(&SpatialDropout1D::new(0.5), &[t(&[1.0; 4], &[2, 2])], &[], &[], true));
        assert!(msg.contains("rank 3"), "{msg}");
    }
}
