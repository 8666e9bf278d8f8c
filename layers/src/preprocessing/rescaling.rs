//! `Rescaling`: `x · scale + offset`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Multiplies the input by `scale` and adds `offset` — Keras' `Rescaling`,
/// e.g. `Rescaling::new(1.0 / 255.0)` for pixels in `[0, 1]` or
/// `Rescaling::new(1.0 / 127.5).offset(-1.0)` for `[-1, 1]`. Integer inputs
/// are converted to `f32` first. The arithmetic is in `f32` (the scale and
/// offset rounded to `f32`, as Keras casts them).
///
/// # Shapes
/// - input: any shape, `f32` or `i64`
/// - output: the input's shape, `f32`
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, Rescaling, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut layer = Rescaling::new(0.5).offset(-1.0);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// layer.build(&[TensorSpec::batched(&[2], strata_core::DType::F32)], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let x = Tensor::new(vec![0.0f32, 4.0], [1, 2], &dev)?;
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, 1.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rescaling {
    scale: f64,
    #[serde(default)]
    offset: f64,
    #[serde(skip)]
    meta: Meta,
}

named!(Rescaling);

impl Rescaling {
    /// Multiplies by `scale` (and adds no offset).
    pub fn new(scale: f64) -> Self {
        Rescaling { scale, offset: 0.0, meta: Meta::default() }
    }

    /// Adds `offset` after scaling (default 0).
    pub fn offset(mut self, offset: f64) -> Self {
        self.offset = offset;
        self
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        if !self.scale.is_finite() || !self.offset.is_finite() {
            return Err(Error::msg(format!(
                "scale and offset must be finite, received scale={}, offset={}",
                self.scale, self.offset
            )));
        }
        Ok(())
    }
}

impl LayerClass for Rescaling {
    const CLASS_NAME: &'static str = "Rescaling";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Rescaling {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        Ok(inputs[0].with_dtype(DType::F32))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        self.check_args()?;
        let x = &inputs[0];
        let x = if x.dtype() == DType::F32 { x.clone() } else { x.cast(DType::F32)? };
        let y = x.mul_scalar(self.scale as f32 as f64)?;
        if self.offset == 0.0 {
            Ok(y)
        } else {
            y.add_scalar(self.offset as f32 as f64)
        }
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

    #[test]
    fn scales_offsets_and_casts() {
        let mut layer = Rescaling::new(1.0 / 255.0);
        let (out, _) = build(&mut layer, &[TensorSpec::batched(&[3], DType::I64)]).unwrap();
        assert_eq!(out.dtype, DType::F32);
        let y = call(&layer, &[ti(&[0, 51, 255], &[1, 3])], &[], &[], false).unwrap();
        close(&vals(&y), &[0.0, 0.2, 1.0], 1e-7);
        let layer = Rescaling::new(2.0).offset(1.0);
        assert_eq!(vals(&call(&layer, &[t(&[1.0, -1.0], &[2])], &[], &[], false).unwrap()), [3.0, -1.0]);
    }

    #[test]
    fn configs_round_trip_and_bad_values_are_errors() {
        let layer = Rescaling::new(0.5).offset(-1.0);
        assert_eq!(layer.config(), serde_json::json!({"scale": 0.5, "offset": -1.0}));
        assert_eq!(Rescaling::from_config(&layer.config()).unwrap().config(), layer.config());
        let e = err(build(&mut Rescaling::new(f64::NAN), &[spec(&[None, Some(2)])]));
        assert!(e.contains("scale=NaN"), "{e}");
        assert!(Rescaling::from_config(&serde_json::json!({"offset": 1.0})).is_err());
    }
}
