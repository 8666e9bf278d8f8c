//! `Activation`: applies an activation function as a layer of its own.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{Activation, BuildContext, CallContext, Layer, LayerClass, Resolve, TensorSpec};

/// Applies an [`Activation`] elementwise (softmax: over the last axis) —
/// Keras' `Activation` layer.
///
/// # Shapes
/// - input: any shape, `f32`
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_layers::{ActivationLayer, Layer};
/// let layer = ActivationLayer::new("relu");
/// assert_eq!(layer.class_name(), "Activation");
/// assert_eq!(layer.config()["activation"], "relu");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivationLayer {
    activation: Activation,
    #[serde(skip)]
    meta: Meta,
}

named!(ActivationLayer);

impl ActivationLayer {
    /// A layer applying `activation`, typed or by name (`"relu"`).
    pub fn new(activation: impl Resolve<Activation>) -> Self {
        let mut meta = Meta::default();
        let activation = meta.keep(activation.resolve()).unwrap_or(Activation::Linear);
        ActivationLayer { activation, meta }
    }
}

impl LayerClass for ActivationLayer {
    const CLASS_NAME: &'static str = "Activation";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for ActivationLayer {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        crate::layer::expect_float(&inputs[0])?;
        Ok(inputs[0].clone())
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        self.activation.apply(&inputs[0])
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

    #[test]
    fn applies_the_activation() {
        let mut layer = ActivationLayer::new("relu");
        let (out, weights) = build(&mut layer, &[spec(&[None, Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3)");
        assert!(weights.is_empty());
        let y = call(&layer, &[t(&[-1.0, 0.5, 2.0, -3.0, 0.0, 4.0], &[2, 3])], &[], &weights, false).unwrap();
        assert_eq!(vals(&y), vec![0.0, 0.5, 2.0, 0.0, 0.0, 4.0]);

        let layer = ActivationLayer::new(Activation::Softmax);
        let y = call(&layer, &[t(&[0.0, 0.0, (2.0f32).ln(), 0.0], &[2, 2])], &[], &[], false).unwrap();
        close(&vals(&y), &[0.5, 0.5, 2.0 / 3.0, 1.0 / 3.0], 1e-6);
    }

    #[test]
    fn passes_masks_through() {
        let layer = ActivationLayer::new("tanh");
        let m = t(&[1.0, 0.0], &[1, 2]);
        let x = t(&[0.0; 6], &[1, 2, 3]);
        let out = layer.compute_mask(&[x], &[Some(m)]).unwrap().unwrap();
        assert_eq!(vals(&out), vec![1.0, 0.0]);
        assert!(layer.supports_masking());
    }

    #[test]
    fn argument_and_input_errors_name_the_received_value() {
        let mut layer = ActivationLayer::new("rleu");
        let msg = err(build(&mut layer, &[spec(&[None, Some(3)])]));
        assert!(msg.contains("rleu") && msg.contains("relu"), "{msg}");

        let mut layer = ActivationLayer::new("relu");
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]));
        assert!(msg.contains("i64") && msg.contains("(None, 3)"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = ActivationLayer::new("gelu");
        let back = ActivationLayer::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), layer.config());
        assert_eq!(back.config(), serde_json::json!({"activation": "gelu"}));
        let msg = err(ActivationLayer::from_config(&serde_json::json!({"activation": "relu", "units": 3})));
        assert!(msg.contains("units"), "{msg}");
    }
}
