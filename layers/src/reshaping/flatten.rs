//! `Flatten`: folds every non-batch axis into one.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Folds every axis after the batch axis into one — Keras' `Flatten`.
///
/// # Shapes
/// - input: `(batch, d1, d2, ...)`, any dtype; `d1, d2, ...` must be known
/// - output: `(batch, d1·d2·...)` (`(batch, 1)` for a rank-1 input)
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_layers::{Flatten, Layer};
/// let layer = Flatten::new();
/// assert_eq!(layer.class_name(), "Flatten");
/// assert_eq!(layer.config(), serde_json::json!({}));
/// ```
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flatten {
    #[serde(skip)]
    meta: Meta,
}

named!(Flatten);

impl Flatten {
    /// A flattening layer.
    pub fn new() -> Self {
        Flatten::default()
    }
}

impl LayerClass for Flatten {
    const CLASS_NAME: &'static str = "Flatten";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        if x.rank() < 1 {
            return Err(Error::msg(format!("expects input of rank >= 1 (batch, ...), received {x}")));
        }
        let mut size = 1usize;
        for d in &x.dims[1..] {
            match d {
                Some(d) => {
                    size = size.checked_mul(*d).ok_or_else(|| Error::SizeOverflow {
                        op: "Flatten".into(),
                        message: format!("input {x} has more elements per sample than usize holds"),
                    })?
                }
                None => return Err(Error::msg(format!("needs every axis but the batch axis known, received {x}"))),
            }
        }
        Ok(TensorSpec::new(vec![x.dims[0], Some(size)], x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        inputs[0].flatten_from(1)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use strata_core::DType;

    #[test]
    fn folds_the_non_batch_axes() {
        let mut layer = Flatten::new();
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 6)");
        let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let y = call(&layer, &[t(&data, &[2, 2, 3])], &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[2, 6]);
        assert_eq!(vals(&y), data);

        let (out, _) = build(&mut layer, &[TensorSpec::new(vec![Some(4)], DType::I64)]).unwrap();
        assert_eq!(out, TensorSpec::new(vec![Some(4), Some(1)], DType::I64));
        let y = call(&layer, &[ti(&[1, 2, 3, 4], &[4])], &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[4, 1]);
        assert!(!layer.supports_masking());
    }

    #[test]
    fn unknown_axes_are_errors_naming_the_spec() {
        let mut layer = Flatten::new();
        let msg = err(build(&mut layer, &[spec(&[None, None, Some(3)])]));
        assert!(msg.contains("(None, None, 3)"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[])]));
        assert!(msg.contains("rank >= 1") && msg.contains("()"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = Flatten::new();
        assert_eq!(Flatten::from_config(&layer.config()).unwrap().config(), layer.config());
        let msg = err(Flatten::from_config(&serde_json::json!({"data_format": "channels_first"})));
        assert!(msg.contains("data_format"), "{msg}");
    }
}
