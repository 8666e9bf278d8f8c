//! `Masking`: marks timesteps whose features all equal a value as padding.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Masks the timesteps whose features all equal `mask_value` — Keras'
/// `Masking`. Those steps are zeroed in the output, and the mask tells later
/// layers (pooling, merges) to skip them.
///
/// # Shapes
/// - input: `(batch, ..., features)`, `f32`, rank >= 2
/// - output: the input's shape
///
/// # Masks
/// Produces a mask shaped like the input without its last axis: `1.0` where
/// some feature differs from `mask_value`, `0.0` where all equal it. An
/// incoming mask is replaced.
///
/// ```
/// use strata_layers::{Layer, Masking};
/// let layer = Masking::new(-1.0);
/// assert_eq!(layer.config()["mask_value"], -1.0);
/// assert_eq!(Masking::default().config()["mask_value"], 0.0);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Masking {
    #[serde(default)]
    mask_value: f32,
    #[serde(skip)]
    meta: Meta,
}

named!(Masking);

impl Default for Masking {
    /// Masks all-zero timesteps (Keras' default `mask_value=0.0`).
    fn default() -> Self {
        Masking::new(0.0)
    }
}

impl Masking {
    /// Masks the timesteps whose features all equal `mask_value`.
    pub fn new(mask_value: f32) -> Self {
        let mut meta = Meta::default();
        meta.require(mask_value.is_finite(), || format!("mask_value must be finite, received {mask_value}"));
        Masking { mask_value, meta }
    }

    /// `1.0` where some feature differs from `mask_value`, over all but the last axis.
    fn mask_of(&self, x: &Tensor) -> Result<Tensor> {
        x.ne_scalar(self.mask_value as f64)?.max(-1, false)
    }
}

impl LayerClass for Masking {
    const CLASS_NAME: &'static str = "Masking";

    fn from_config(config: &Value) -> Result<Self> {
        let m: Masking = from_json(Self::CLASS_NAME, config)?;
        Ok(Masking::new(m.mask_value))
    }
}

impl Layer for Masking {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        if x.rank() < 2 {
            return Err(Error::msg(format!("expects input of rank >= 2 (batch, ..., features), received {x}")));
        }
        Ok(x.clone())
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        x.mul(&self.mask_of(x)?.unsqueeze(-1)?)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(Some(self.mask_of(&inputs[0])?))
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_conformance::check_grad;
    use strata_core::{DType, Shape};

    // (batch 2, steps 3, features 2); steps (0, 0) are padding for value 0.
    const X: [f32; 12] = [1.0, 2.0, 0.0, 0.0, 0.0, 3.0, 0.0, 0.0, 0.0, 0.0, -1.0, 0.0];

    #[test]
    fn zeroes_and_masks_steps_equal_to_the_value() {
        let mut layer = Masking::default();
        let (out, weights) = build(&mut layer, &[spec(&[None, Some(3), Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 2)");
        let x = t(&X, &[2, 3, 2]);
        let m = layer.compute_mask(std::slice::from_ref(&x), &[None]).unwrap().unwrap();
        assert_eq!(m.dims(), &[2, 3]);
        assert_eq!(vals(&m), vec![1.0, 0.0, 1.0, 0.0, 0.0, 1.0]);
        let y = call(&layer, &[x], &[], &weights, false).unwrap();
        assert_eq!(vals(&y), X.to_vec());

        // Another value: steps (2, 2) are masked and zeroed, other steps kept.
        let layer = Masking::new(2.0);
        let x = t(&[2.0, 2.0, 2.0, 1.0, 5.0, 2.0], &[1, 3, 2]);
        let m = layer.compute_mask(std::slice::from_ref(&x), &[None]).unwrap().unwrap();
        assert_eq!(vals(&m), vec![0.0, 1.0, 1.0]);
        let y = call(&layer, &[x], &[], &[], false).unwrap();
        assert_eq!(vals(&y), vec![0.0, 0.0, 2.0, 1.0, 5.0, 2.0]);
    }

    #[test]
    fn replaces_an_incoming_mask() {
        let layer = Masking::new(2.0);
        let x = t(&[2.0, 2.0, 1.0, 1.0], &[1, 2, 2]);
        let m = layer.compute_mask(&[x], &[Some(t(&[1.0, 0.0], &[1, 2]))]).unwrap().unwrap();
        assert_eq!(vals(&m), vec![0.0, 1.0]);
    }

    #[test]
    fn gradient_is_the_mask() {
        // No step near the mask value: identity.
        let layer = Masking::new(9.0);
        check_grad(
            "masking",
            &dev(),
            &[(vec![0.5, -1.0, 2.0, 0.25, 1.5, -0.75], Shape::from([1, 3, 2]))],
            1e-2,
            |xs| call(&layer, xs, &[], &[], true),
        )
        .unwrap();
        // A masked step gets no gradient, the others one.
        let x = t(&[9.0, 9.0, 9.0, 1.0, 0.0, 9.0], &[1, 3, 2]).to_variable().unwrap();
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], true).unwrap();
        let grads = y.sum_all().unwrap().backward().unwrap();
        assert_eq!(vals(grads.get(&x).unwrap()), vec![0.0, 0.0, 1.0, 1.0, 1.0, 1.0]);
    }

    #[test]
    fn errors_name_the_received_value() {
        let mut layer = Masking::new(f32::NAN);
        let msg = err(build(&mut layer, &[spec(&[None, Some(3), Some(2)])]));
        assert!(msg.contains("mask_value") && msg.contains("NaN"), "{msg}");
        let mut layer = Masking::default();
        let msg = err(build(&mut layer, &[spec(&[None])]));
        assert!(msg.contains("rank >= 2") && msg.contains("(None,)"), "{msg}");
        let msg = err(build(&mut layer, &[TensorSpec::batched(&[3, 2], DType::I64)]));
        assert!(msg.contains("i64") && msg.contains("(None, 3, 2)"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = Masking::new(-1.5);
        let back = Masking::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), layer.config());
        assert_eq!(back.config(), serde_json::json!({"mask_value": -1.5}));
        assert_eq!(Masking::from_config(&serde_json::json!({})).unwrap().mask_value, 0.0);
    }
}
