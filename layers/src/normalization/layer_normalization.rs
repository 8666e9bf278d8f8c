//! `LayerNormalization`: normalizes each sample over its last axis.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Initializer, Layer, LayerClass, Resolve, TensorSpec};

/// Normalizes over the last axis, then scales and shifts —
/// Keras' `LayerNormalization` with `axis=-1`:
/// `(x - mean) / sqrt(var + epsilon) * gamma + beta`, where `var` is the
/// biased variance. `gamma` and `beta` are `[features]` weights, left out
/// with `scale(false)` / `center(false)`.
///
/// # Shapes
/// - input: `(batch, ..., features)`, `f32`, `features` known
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_layers::{Layer, LayerNormalization};
/// let layer = LayerNormalization::new().epsilon(1e-5).center(false);
/// assert_eq!(layer.config()["center"], false);
/// assert_eq!(layer.config()["gamma_initializer"]["class_name"], "Ones");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LayerNormalization {
    #[serde(default = "default_epsilon")]
    epsilon: f32,
    #[serde(default = "yes")]
    center: bool,
    #[serde(default = "yes")]
    scale: bool,
    #[serde(default = "zeros")]
    beta_initializer: Initializer,
    #[serde(default = "ones")]
    gamma_initializer: Initializer,
    #[serde(skip)]
    meta: Meta,
}

fn default_epsilon() -> f32 {
    1e-3
}
fn yes() -> bool {
    true
}
fn zeros() -> Initializer {
    Initializer::Zeros
}
fn ones() -> Initializer {
    Initializer::Ones
}

named!(LayerNormalization);

impl Default for LayerNormalization {
    fn default() -> Self {
        LayerNormalization {
            epsilon: default_epsilon(),
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            meta: Meta::default(),
        }
    }
}

impl LayerNormalization {
    /// Normalization with `epsilon = 1e-3`, a learned scale and a learned shift.
    pub fn new() -> Self {
        LayerNormalization::default()
    }

    /// Added to the variance to avoid dividing by zero (default `1e-3`); must be > 0.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.meta.require(epsilon > 0.0 && epsilon.is_finite(), || {
            format!("epsilon must be finite and > 0, received {epsilon}")
        });
        self.epsilon = epsilon;
        self
    }

    /// Whether to add the learned offset `beta` (default true).
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to multiply by the learned scale `gamma` (default true).
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    /// `beta`'s initializer (default `zeros`).
    pub fn beta_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.beta_initializer = i;
        }
        self
    }

    /// `gamma`'s initializer (default `ones`).
    pub fn gamma_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.gamma_initializer = i;
        }
        self
    }
}

impl LayerClass for LayerNormalization {
    const CLASS_NAME: &'static str = "LayerNormalization";

    fn from_config(config: &Value) -> Result<Self> {
        let l: LayerNormalization = from_json(Self::CLASS_NAME, config)?;
        let meta = LayerNormalization::new().epsilon(l.epsilon).meta;
        Ok(LayerNormalization { meta, ..l })
    }
}

impl Layer for LayerNormalization {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        if x.rank() < 2 {
            return Err(Error::msg(format!("expects input of rank >= 2 (batch, ..., features), received {x}")));
        }
        let Some(features) = x.last() else {
            return Err(Error::msg(format!("needs a known last axis, received {x}")));
        };
        if self.scale {
            ctx.add_weight("gamma", [features], self.gamma_initializer)?;
        }
        if self.center {
            ctx.add_weight("beta", [features], self.beta_initializer)?;
        }
        Ok(x.clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let centered = x.sub(&x.mean(&[-1], true)?)?;
        let var = centered.square()?.mean(&[-1], true)?;
        let mut y = centered.div(&var.add_scalar(self.epsilon as f64)?.sqrt()?)?;
        if self.scale {
            y = y.mul(&ctx.weight("gamma")?)?;
        }
        if self.center {
            y = y.add(&ctx.weight("beta")?)?;
        }
        Ok(y)
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
    use crate::Weight;
    use strata_conformance::check_grad;
    use strata_core::{DType, Shape};

    fn weight(name: &str, value: Tensor) -> Weight {
        Weight { name: name.into(), value, trainable: true, regularizer: None }
    }

    #[test]
    fn normalizes_scales_and_shifts() {
        let mut layer = LayerNormalization::new();
        let (out, weights) = build(&mut layer, &[spec(&[None, Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 4)");
        let names: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["gamma", "beta"]);
        assert_eq!(vals(&weights[0].value), vec![1.0; 4]);
        assert_eq!(vals(&weights[1].value), vec![0.0; 4]);

        // Row [1, 2, 3, 4]: mean 2.5, biased variance 1.25; row of zeros: all zero.
        let x = t(&[1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0], &[2, 4]);
        let s = 1.0 / (1.25f32 + 1e-3).sqrt();
        let y = call(&layer, std::slice::from_ref(&x), &[], &weights, false).unwrap();
        close(&vals(&y), &[-1.5 * s, -0.5 * s, 0.5 * s, 1.5 * s, 0.0, 0.0, 0.0, 0.0], 1e-6);

        weights[0].value.assign(&t(&[1.0, 2.0, 0.5, -1.0], &[4])).unwrap();
        weights[1].value.assign(&t(&[0.0, 1.0, -1.0, 0.5], &[4])).unwrap();
        let y = call(&layer, &[x], &[], &weights, false).unwrap();
        let want = [-1.5 * s, 1.0 - s, 0.25 * s - 1.0, -1.5 * s + 0.5, 0.0, 1.0, -1.0, 0.5];
        close(&vals(&y), &want, 1e-6);
    }

    #[test]
    fn center_and_scale_can_be_left_out() {
        let mut layer = LayerNormalization::new().center(false).scale(false).epsilon(1e-5);
        let (_, weights) = build(&mut layer, &[spec(&[None, Some(3), Some(2)])]).unwrap();
        assert!(weights.is_empty());
        // Each pair [a, b] becomes [-1, 1]·|b - a|/2 / sqrt((b - a)²/4 + eps).
        let y = call(&layer, &[t(&[1.0, 3.0, 5.0, -5.0, 2.0, 2.0], &[1, 3, 2])], &[], &weights, false).unwrap();
        let (a, b) = (1.0 / (1.0f32 + 1e-5).sqrt(), 5.0 / (25.0f32 + 1e-5).sqrt());
        close(&vals(&y), &[-a, a, b, -b, 0.0, 0.0], 1e-6);

        let mut layer = LayerNormalization::new().scale(false);
        let (_, weights) = build(&mut layer, &[spec(&[None, Some(2)])]).unwrap();
        assert_eq!(weights.len(), 1);
        assert_eq!(weights[0].name, "beta");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let layer = LayerNormalization::new();
        let inputs = [
            (vec![0.5, -1.0, 2.0, 0.3, 1.5, -0.7, 0.9, 2.5], Shape::from([2, 4])),
            (vec![1.0, 0.5, -1.5, 2.0], Shape::from([4])),
            (vec![0.1, -0.2, 0.3, 0.0], Shape::from([4])),
        ];
        check_grad("layer norm", &dev(), &inputs, 1e-2, |xs| {
            let weights = vec![weight("gamma", xs[1].clone()), weight("beta", xs[2].clone())];
            call(&layer, &xs[..1], &[], &weights, true)
        })
        .unwrap();
    }

    #[test]
    fn passes_masks_through() {
        let layer = LayerNormalization::new();
        let m = layer.compute_mask(&[t(&[0.0; 4], &[1, 2, 2])], &[Some(t(&[1.0, 0.0], &[1, 2]))]).unwrap();
        assert_eq!(vals(&m.unwrap()), vec![1.0, 0.0]);
    }

    #[test]
    fn errors_name_the_received_value() {
        for eps in [0.0f32, -1e-3, f32::INFINITY] {
            let mut layer = LayerNormalization::new().epsilon(eps);
            let msg = err(build(&mut layer, &[spec(&[None, Some(4)])]));
            assert!(msg.contains("epsilon") && msg.contains(&format!("received {eps}")), "{msg}");
        }
        let mut layer = LayerNormalization::new().gamma_initializer("onez");
        let msg = err(build(&mut layer, &[spec(&[None, Some(4)])]));
        assert!(msg.contains("onez"), "{msg}");
        let mut layer = LayerNormalization::new();
        let msg = err(build(&mut layer, &[spec(&[None, None])]));
        assert!(msg.contains("(None, None)"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[None])]));
        assert!(msg.contains("rank >= 2") && msg.contains("(None,)"), "{msg}");
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[4], DType::I64)]));
        assert!(msg.contains("i64"), "{msg}");
        // Built again on another feature count: the weights do not fit.
        let mut weights = Vec::new();
        let dev = dev();
        let mut rng = strata_core::Rng::seed(0);
        let mut ctx = BuildContext::new(&mut weights, &mut rng, &dev);
        layer.build(&[spec(&[None, Some(4)])], &mut ctx).unwrap();
        let msg = err(layer.build(&[spec(&[None, Some(5)])], &mut ctx));
        assert!(msg.contains("[4]") && msg.contains("[5]"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = LayerNormalization::new().epsilon(1e-5).center(false).gamma_initializer("he_normal");
        let config = layer.config();
        assert_eq!(config["scale"], true);
        let back = LayerNormalization::from_config(&config).unwrap();
        assert_eq!(back.config(), config);
        let defaults = LayerNormalization::from_config(&serde_json::json!({})).unwrap();
        assert_eq!(defaults.config(), LayerNormalization::new().config());
        let mut bad = LayerNormalization::from_config(&serde_json::json!({"epsilon": -1.0})).unwrap();
        let msg = err(build(&mut bad, &[spec(&[None, Some(4)])]));
        assert!(msg.contains("received -1"), "{msg}");
    }
}
