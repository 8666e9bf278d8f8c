//! Global pooling over the steps of a sequence: `GlobalAveragePooling1D`
//! and `GlobalMaxPooling1D`, both mask-aware.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Shape, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// The output spec of a global 1-D pooling: `(batch, steps, features)` → `(batch, features)`.
fn pooled_spec(x: &TensorSpec) -> Result<TensorSpec> {
    crate::layer::expect_float(x)?;
    crate::layer::expect_rank(x, 3, "(batch, steps, features)")?;
    Ok(TensorSpec::new(vec![x.dims[0], x.dims[2]], x.dtype))
}

/// A mask `(batch, steps)` as `(batch, steps, 1)`, checked against the input.
fn mask_for(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    if x.rank() != 3 || mask.dims() != &x.dims()[..2] {
        return Err(Error::msg(format!(
            "expects a mask of shape (batch, steps) = {:?} for input {}, received mask {}",
            x.dims().get(..2).unwrap_or(x.dims()),
            x.shape(),
            mask.shape()
        )));
    }
    mask.unsqueeze(-1)
}

/// The mean over the steps — Keras' `GlobalAveragePooling1D`.
///
/// With a mask, only the unmasked steps count: `Σ x·m / Σ m` per sample
/// (a sample whose steps are all masked gives zeros).
///
/// # Shapes
/// - input: `(batch, steps, features)`, `f32`
/// - output: `(batch, features)`
///
/// # Masks
/// Uses an incoming mask and outputs none.
///
/// ```
/// use strata_layers::{GlobalAveragePooling1D, Layer};
/// let layer = GlobalAveragePooling1D::new();
/// assert_eq!(layer.class_name(), "GlobalAveragePooling1D");
/// assert!(layer.supports_masking());
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalAveragePooling1D {
    #[serde(skip)]
    meta: Meta,
}

named!(GlobalAveragePooling1D);

impl GlobalAveragePooling1D {
    /// An average over the steps.
    pub fn new() -> Self {
        GlobalAveragePooling1D::default()
    }
}

impl LayerClass for GlobalAveragePooling1D {
    const CLASS_NAME: &'static str = "GlobalAveragePooling1D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for GlobalAveragePooling1D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        pooled_spec(&inputs[0])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        match ctx.mask() {
            None => x.mean(&[1], false),
            Some(mask) => {
                let m = mask_for(x, mask)?;
                // Σ m is 0 or >= 1 for 0/1 masks; the floor only avoids 0/0.
                let count = m.sum(&[1], false)?.maximum_scalar(f32::EPSILON as f64)?;
                x.mul(&m)?.sum(&[1], false)?.div(&count)
            }
        }
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(None)
    }

    config_from_serde!();
}

/// The maximum over the steps — Keras' `GlobalMaxPooling1D`.
///
/// With a mask, masked steps never win: they count as `-f32::MAX`. A sample
/// whose steps are all masked gives zeros.
///
/// # Shapes
/// - input: `(batch, steps, features)`, `f32`
/// - output: `(batch, features)`
///
/// # Masks
/// Uses an incoming mask and outputs none.
///
/// ```
/// use strata_layers::{GlobalMaxPooling1D, Layer};
/// let layer = GlobalMaxPooling1D::new();
/// assert_eq!(layer.class_name(), "GlobalMaxPooling1D");
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GlobalMaxPooling1D {
    #[serde(skip)]
    meta: Meta,
}

named!(GlobalMaxPooling1D);

impl GlobalMaxPooling1D {
    /// A maximum over the steps.
    pub fn new() -> Self {
        GlobalMaxPooling1D::default()
    }
}

impl LayerClass for GlobalMaxPooling1D {
    const CLASS_NAME: &'static str = "GlobalMaxPooling1D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for GlobalMaxPooling1D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        pooled_spec(&inputs[0])
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        match ctx.mask() {
            None => x.max(1, false),
            Some(mask) => {
                let m = mask_for(x, mask)?;
                let lowest = Tensor::full(-f32::MAX as f64, Shape::scalar(), x.dtype(), x.device())?;
                let pooled = Tensor::where_cond(&m, x, &lowest)?.max(1, false)?;
                // (batch, 1): whether any step of the sample is unmasked.
                let any = m.max(1, false)?;
                let zero = Tensor::zeros(Shape::scalar(), x.dtype(), x.device())?;
                Tensor::where_cond(&any, &pooled, &zero)
            }
        }
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_mask(&self, _inputs: &[Tensor], _masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        Ok(None)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_conformance::check_grad;
    use strata_core::DType;

    // (batch 2, steps 3, features 2)
    const X: [f32; 12] = [1.0, -2.0, 3.0, 4.0, 5.0, -6.0, 0.5, 8.0, -1.5, 2.0, 9.0, 1.0];
    const MASK: [f32; 6] = [1.0, 1.0, 0.0, 0.0, 1.0, 1.0];

    #[test]
    fn average_pools_over_all_or_unmasked_steps() {
        let mut layer = GlobalAveragePooling1D::new();
        let (out, _) = build(&mut layer, &[spec(&[None, Some(3), Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2)");
        let x = t(&X, &[2, 3, 2]);
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap();
        close(&vals(&y), &[3.0, -4.0 / 3.0, 8.0 / 3.0, 11.0 / 3.0], 1e-6);
        let y = call(&layer, std::slice::from_ref(&x), &[Some(t(&MASK, &[2, 3]))], &[], false).unwrap();
        close(&vals(&y), &[2.0, 1.0, 3.75, 1.5], 1e-6);
        // A fully masked sample gives zeros, not NaN.
        let y = call(&layer, &[x], &[Some(t(&[0.0, 0.0, 0.0, 1.0, 0.0, 0.0], &[2, 3]))], &[], false).unwrap();
        assert_eq!(vals(&y), vec![0.0, 0.0, 0.5, 8.0]);
    }

    #[test]
    fn max_pools_over_all_or_unmasked_steps() {
        let mut layer = GlobalMaxPooling1D::new();
        let (out, _) = build(&mut layer, &[spec(&[Some(2), None, Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(2, 2)");
        let x = t(&X, &[2, 3, 2]);
        let y = call(&layer, std::slice::from_ref(&x), &[], &[], false).unwrap();
        assert_eq!(vals(&y), vec![5.0, 4.0, 9.0, 8.0]);
        let y = call(&layer, std::slice::from_ref(&x), &[Some(t(&MASK, &[2, 3]))], &[], false).unwrap();
        assert_eq!(vals(&y), vec![3.0, 4.0, 9.0, 2.0]);
        // Masked steps never win, even against very negative values.
        let neg = t(&[-1e30, -3e30, 5.0, 6.0], &[1, 2, 2]);
        let y = call(&layer, &[neg], &[Some(t(&[1.0, 0.0], &[1, 2]))], &[], false).unwrap();
        assert_eq!(vals(&y), vec![-1e30, -3e30]);
        let y = call(&layer, &[x], &[Some(t(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0], &[2, 3]))], &[], false).unwrap();
        assert_eq!(vals(&y), vec![0.0, 0.0, -1.5, 2.0]);
    }

    #[test]
    fn masks_are_consumed() {
        let x = t(&X, &[2, 3, 2]);
        let m = Some(t(&MASK, &[2, 3]));
        assert!(GlobalAveragePooling1D::new()
            .compute_mask(std::slice::from_ref(&x), std::slice::from_ref(&m))
            .unwrap()
            .is_none());
        assert!(GlobalMaxPooling1D::new().compute_mask(&[x], &[m]).unwrap().is_none());
    }

    #[test]
    fn gradients_with_masks_match_finite_differences() {
        let mask = t(&MASK, &[2, 3]);
        let input = [(X.to_vec(), Shape::from([2, 3, 2]))];
        let avg = GlobalAveragePooling1D::new();
        check_grad("avg pool", &dev(), &input, 1e-2, |xs| call(&avg, xs, &[Some(mask.clone())], &[], true)).unwrap();
        check_grad("avg pool, no mask", &dev(), &input, 1e-2, |xs| call(&avg, xs, &[], &[], true)).unwrap();
        let max = GlobalMaxPooling1D::new();
        check_grad("max pool", &dev(), &input, 1e-2, |xs| call(&max, xs, &[Some(mask.clone())], &[], true)).unwrap();
        check_grad("max pool, no mask", &dev(), &input, 1e-2, |xs| call(&max, xs, &[], &[], true)).unwrap();

        // Masked steps get no gradient.
        let x = t(&X, &[2, 3, 2]).to_variable().unwrap();
        let y = call(&avg, std::slice::from_ref(&x), &[Some(mask.clone())], &[], true).unwrap();
        let g = vals(y.sum_all().unwrap().backward().unwrap().get(&x).unwrap());
        assert_eq!(g, vec![0.5, 0.5, 0.5, 0.5, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5]);
        let y = call(&max, std::slice::from_ref(&x), &[Some(mask)], &[], true).unwrap();
        let g = vals(y.sum_all().unwrap().backward().unwrap().get(&x).unwrap());
        assert_eq!(g, vec![0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 1.0, 0.0]);
    }

    #[test]
    fn shape_errors_name_the_received_spec() {
        for layer in [&mut GlobalAveragePooling1D::new() as &mut dyn Layer, &mut GlobalMaxPooling1D::new()] {
            let msg = err(build(layer, &[spec(&[None, Some(8)])]));
            assert!(msg.contains("rank 3") && msg.contains("(None, 8)"), "{msg}");
            let msg = err(build(layer, &[TensorSpec::batched(&[3, 8], DType::I64)]));
            assert!(msg.contains("i64"), "{msg}");
            let msg = err(call(layer, &[t(&X, &[2, 3, 2])], &[Some(t(&[1.0, 1.0], &[2, 1]))], &[], false));
            assert!(msg.contains("[2, 1]") && msg.contains("[2, 3, 2]"), "{msg}");
        }
    }

    #[test]
    fn configs_round_trip() {
        let a = GlobalAveragePooling1D::new();
        assert_eq!(GlobalAveragePooling1D::from_config(&a.config()).unwrap().config(), serde_json::json!({}));
        let m = GlobalMaxPooling1D::new();
        assert_eq!(GlobalMaxPooling1D::from_config(&m.config()).unwrap().config(), serde_json::json!({}));
        let msg = err(GlobalMaxPooling1D::from_config(&serde_json::json!({"keepdims": true})));
        assert!(msg.contains("keepdims"), "{msg}");
    }
}
