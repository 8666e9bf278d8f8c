//! `Reshape`: gives each sample a new shape with the same number of elements.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Reshapes each sample to `target_shape` — Keras' `Reshape`. The target
/// excludes the batch axis; at most one entry may be `-1`, which is then
/// inferred from the element count.
///
/// # Shapes
/// - input: `(batch, d1, ...)`, any dtype; `d1, ...` must be known
/// - output: `(batch, *target_shape)` with `-1` resolved
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_layers::{Layer, Reshape};
/// let layer = Reshape::new([4, -1]);
/// assert_eq!(layer.config()["target_shape"], serde_json::json!([4, -1]));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reshape {
    target_shape: Vec<isize>,
    #[serde(skip)]
    meta: Meta,
}

named!(Reshape);

impl Reshape {
    /// Reshapes each sample to `target` (without the batch axis).
    pub fn new(target: impl Into<Vec<isize>>) -> Self {
        let target_shape = target.into();
        let mut meta = Meta::default();
        let unknown = target_shape.iter().filter(|&&d| d == -1).count();
        meta.require(target_shape.iter().all(|&d| d > 0 || d == -1) && unknown <= 1, || {
            format!("target_shape entries must be positive, with at most one -1 to infer, received {target_shape:?}")
        });
        Reshape { target_shape, meta }
    }

    /// The target with `-1` resolved for a sample of `elements` elements.
    fn resolve(&self, elements: usize) -> std::result::Result<Vec<usize>, String> {
        let known = self.target_shape.iter().filter(|&&d| d > 0).fold(1usize, |n, &d| n.saturating_mul(d as usize));
        let has_unknown = self.target_shape.contains(&-1);
        let fits = if has_unknown { known > 0 && elements % known == 0 } else { known == elements };
        if !fits {
            return Err(format!(
                "cannot reshape a sample of {elements} elements to target_shape {:?} ({})",
                self.target_shape,
                if has_unknown {
                    format!("{elements} is not a multiple of {known}")
                } else {
                    format!("{known} elements")
                }
            ));
        }
        Ok(self.target_shape.iter().map(|&d| if d == -1 { elements / known } else { d as usize }).collect())
    }
}

impl LayerClass for Reshape {
    const CLASS_NAME: &'static str = "Reshape";

    fn from_config(config: &Value) -> Result<Self> {
        let r: Reshape = from_json(Self::CLASS_NAME, config)?;
        Ok(Reshape::new(r.target_shape))
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        if x.rank() < 1 {
            return Err(Error::msg(format!("expects input of rank >= 1 (batch, ...), received {x}")));
        }
        let Some(elements) = x.dims[1..].iter().try_fold(1usize, |n, d| d.map(|d| n.saturating_mul(d))) else {
            return Err(Error::msg(format!("needs every axis but the batch axis known, received {x}")));
        };
        let target = self.resolve(elements).map_err(|m| Error::msg(format!("{m}; input {x}")))?;
        let mut dims = vec![x.dims[0]];
        dims.extend(target.into_iter().map(Some));
        Ok(TensorSpec::new(dims, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let (&batch, rest) = x
            .dims()
            .split_first()
            .ok_or_else(|| Error::msg(format!("expects input of rank >= 1, received shape {}", x.shape())))?;
        let target =
            self.resolve(rest.iter().product()).map_err(|m| Error::msg(format!("{m}; input shape {}", x.shape())))?;
        let mut dims = vec![batch];
        dims.extend(target);
        x.reshape(dims)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn reshapes_each_sample() {
        let mut layer = Reshape::new([3, 2]);
        let (out, _) = build(&mut layer, &[spec(&[None, Some(6)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 2)");
        let data: Vec<f32> = (0..12).map(|i| i as f32).collect();
        let y = call(&layer, &[t(&data, &[2, 6])], &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[2, 3, 2]);
        assert_eq!(vals(&y), data);
    }

    #[test]
    fn infers_one_unknown_entry() {
        let mut layer = Reshape::new([-1, 4]);
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(3), Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 4)");
        let y = call(&layer, &[t(&[0.0; 24], &[2, 2, 3, 2])], &[], &[], false).unwrap();
        assert_eq!(y.dims(), &[2, 3, 4]);
    }

    #[test]
    fn invalid_targets_are_errors_naming_them() {
        for target in [vec![2, -1, -1], vec![0, 3], vec![-2, 3]] {
            let mut layer = Reshape::new(target.clone());
            let msg = err(build(&mut layer, &[spec(&[None, Some(6)])]));
            assert!(msg.contains(&format!("{target:?}")), "{msg}");
        }
    }

    #[test]
    fn element_count_mismatches_name_both() {
        let mut layer = Reshape::new([4, 2]);
        let msg = err(build(&mut layer, &[spec(&[None, Some(6)])]));
        assert!(msg.contains("[4, 2]") && msg.contains("6 elements") && msg.contains("(None, 6)"), "{msg}");
        let mut layer = Reshape::new([-1, 4]);
        let msg = err(build(&mut layer, &[spec(&[None, Some(2), Some(3)])]));
        assert!(msg.contains("[-1, 4]") && msg.contains("(None, 2, 3)") && msg.contains("multiple of 4"), "{msg}");
        let msg = err(build(&mut layer, &[spec(&[None, None, Some(4)])]));
        assert!(msg.contains("(None, None, 4)"), "{msg}");
        // A concrete tensor that does not fit is an error too, not a panic.
        let msg = err(call(&layer, &[t(&[0.0; 6], &[1, 6])], &[], &[], false));
        assert!(msg.contains("[1, 6]"), "{msg}");
    }

    #[test]
    fn config_round_trips() {
        let layer = Reshape::new(vec![2, -1, 3]);
        let back = Reshape::from_config(&layer.config()).unwrap();
        assert_eq!(back.config(), layer.config());
        assert_eq!(back.config(), serde_json::json!({"target_shape": [2, -1, 3]}));
        let msg = err(Reshape::from_config(&serde_json::json!({})));
        assert!(msg.contains("target_shape"), "{msg}");
    }
}
