//! `Dropout`: zeroes random inputs during training.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, LayerRng, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// During training, sets each input element to zero with probability `rate`
/// and scales the kept ones by `1 / (1 - rate)` so that the expected sum is
/// unchanged — Keras' `Dropout`. Outside training it is the identity.
///
/// The noise comes from the model's seeded generator, or, when
/// [`seed`](Dropout::seed) is given, from the layer's own generator seeded
/// with it (which advances with every training call).
///
/// # Shapes
/// - input: any shape, `f32`
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_layers::{Dropout, Layer};
/// let layer = Dropout::new(0.25).seed(7);
/// assert_eq!(layer.config()["rate"], 0.25);
/// assert_eq!(layer.config()["seed"], 7);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dropout {
    rate: f32,
    #[serde(default)]
    seed: Option<u64>,
    /// Cloned, it continues from the same state.
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

named!(Dropout);

impl Dropout {
    /// Drops each element with probability `rate`, in `[0, 1)`.
    pub fn new(rate: f32) -> Self {
        let mut meta = Meta::default();
        meta.require((0.0..1.0).contains(&rate), || format!("rate must be in [0, 1), received {rate}"));
        Dropout { rate, seed: None, rng: LayerRng::default(), meta }
    }

    /// Draws the noise from the layer's own generator seeded with `seed`
    /// instead of the model's.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self.rng = LayerRng::new(Some(seed));
        self
    }
}

impl LayerClass for Dropout {
    const CLASS_NAME: &'static str = "Dropout";

    fn from_config(config: &Value) -> Result<Self> {
        let d: Dropout = from_json(Self::CLASS_NAME, config)?;
        let layer = Dropout::new(d.rate);
        Ok(match d.seed {
            Some(s) => layer.seed(s),
            None => layer,
        })
    }
}

impl Layer for Dropout {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        crate::layer::expect_float(&inputs[0])?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        super::drop_with_noise_shape(x, x.dims().to_vec(), self.rate, &self.rng, ctx)
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
    use strata_core::DType;

    fn input(n: usize) -> Tensor {
        let data: Vec<f32> = (0..n).map(|i| 1.0 + (i % 17) as f32).collect();
        t(&data, &[n / 100, 100])
    }

    #[test]
    fn drops_about_rate_and_scales_the_rest() {
        let n = 10_000;
        let x = input(n);
        for rate in [0.1f32, 0.3, 0.5] {
            let mut layer = Dropout::new(rate);
            let (out, _) = build(&mut layer, &[spec(&[None, Some(100)])]).unwrap();
            assert_eq!(out.to_string(), "(None, 100)");
            let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap());
            let xs = vals(&x);
            let zeros = y.iter().filter(|&&v| v == 0.0).count() as f64;
            // Binomial(n, rate): 5 standard deviations.
            let sd = (n as f64 * rate as f64 * (1.0 - rate as f64)).sqrt();
            assert!((zeros - n as f64 * rate as f64).abs() < 5.0 * sd, "rate {rate}: {zeros} zeros of {n}");
            for (a, b) in xs.iter().zip(&y) {
                if *b != 0.0 {
                    assert!((b - a / (1.0 - rate)).abs() <= 1e-5 * b.abs(), "{b} vs {a} / (1 - {rate})");
                }
            }
        }
    }

    #[test]
    fn is_the_identity_outside_training_and_for_rate_zero() {
        let x = input(1000);
        let y = call(&Dropout::new(0.5), std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), vals(&x));
        let y = call(&Dropout::new(0.0), std::slice::from_ref(&x), &[], &[], true).unwrap();
        assert_eq!(vals(&y), vals(&x));
    }

    #[test]
    fn same_seed_same_mask() {
        let x = input(1000);
        let a = Dropout::new(0.5).seed(3);
        let b = Dropout::new(0.5).seed(3);
        let ya = vals(&call(&a, std::slice::from_ref(&x), &[], &[], true).unwrap());
        let yb = vals(&call(&b, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(ya, yb);
        // The layer's own generator advances: the next call draws a new mask.
        let ya2 = vals(&call(&a, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_ne!(ya, ya2);
        // A different seed gives a different mask.
        let c = Dropout::new(0.5).seed(4);
        assert_ne!(ya, vals(&call(&c, std::slice::from_ref(&x), &[], &[], true).unwrap()));
        // Unseeded layers use the context's generator: same context seed, same mask.
        let d = Dropout::new(0.5);
        let y1 = vals(&call(&d, std::slice::from_ref(&x), &[], &[], true).unwrap());
        let y2 = vals(&call(&d, std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(y1, y2);
    }

    #[test]
    fn gradient_is_the_scaled_mask() {
        let layer = Dropout::new(0.5).seed(1);
        let x = input(1000).to_variable().unwrap();
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        let g = vals(grads.get(&x).unwrap());
        for (gi, yi) in g.iter().zip(vals(&y)) {
            assert_eq!(*gi, if yi == 0.0 { 0.0 } else { 2.0 });
        }
    }

    #[test]
    fn rate_errors_name_the_received_value() {
        for rate in [1.0f32, -0.1, 1.5, f32::NAN] {
            let mut layer = Dropout::new(rate);
            let msg = err(build(&mut layer, &[spec(&[None, Some(3)])]));
            assert!(msg.contains("[0, 1)") && msg.contains(&format!("received {rate}")), "{msg}");
        }
        let mut layer = Dropout::new(0.5);
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("i64"), "{msg}");
        assert!(layer.supports_masking());
    }

    #[test]
    fn config_round_trips() {
        let layer = Dropout::new(0.5).seed(11);
        let back = Dropout::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), layer.config());
        assert_eq!(back.config(), serde_json::json!({"rate": 0.5, "seed": 11}));
        // The rebuilt layer draws the same masks as a fresh one with that seed.
        let x = input(1000);
        let a = vals(&call(&back, std::slice::from_ref(&x), &[], &[], true).unwrap());
        let b = vals(&call(&Dropout::new(0.5).seed(11), std::slice::from_ref(&x), &[], &[], true).unwrap());
        assert_eq!(a, b);
        let unseeded = Dropout::from_config(&serde_json::json!({"rate": 0.2})).unwrap();
        assert_eq!(unseeded.config(), serde_json::json!({"rate": 0.2f32, "seed": null}));
    }
}
