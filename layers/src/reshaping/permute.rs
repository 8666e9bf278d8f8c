//! `Permute`: reorders the non-batch axes.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Reorders the axes after the batch axis — Keras' `Permute`. `dims` is a
/// permutation of `1..=rank - 1` (1-indexed, as Keras writes it): output
/// axis `i` is input axis `dims[i - 1]`.
///
/// # Shapes
/// - input: `(batch, d1, .., dk)`, any dtype, `k = dims.len()`
/// - output: `(batch, d_dims[0], .., d_dims[k-1])`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_layers::{Layer, Permute};
/// let layer = Permute::new([2, 1]);
/// assert_eq!(layer.config()["dims"], serde_json::json!([2, 1]));
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Permute {
    dims: Vec<usize>,
    #[serde(skip)]
    meta: Meta,
}

named!(Permute);

impl Permute {
    /// Output axis `i` (1-indexed) is input axis `dims[i - 1]`.
    pub fn new(dims: impl Into<Vec<usize>>) -> Self {
        let dims = dims.into();
        let mut meta = Meta::default();
        let mut sorted = dims.clone();
        sorted.sort_unstable();
        meta.require(sorted.iter().copied().eq(1..=dims.len()), || {
            format!("dims must be a permutation of 1..={}, received {dims:?}", dims.len())
        });
        Permute { dims, meta }
    }
}

impl LayerClass for Permute {
    const CLASS_NAME: &'static str = "Permute";

    fn from_config(config: &Value) -> Result<Self> {
        let p: Permute = from_json(Self::CLASS_NAME, config)?;
        Ok(Permute::new(p.dims))
    }
}

impl Layer for Permute {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        if x.rank() != self.dims.len() + 1 {
            return Err(Error::msg(format!(
                "dims {:?} permute {} axes, but the input {x} has {} after the batch axis",
                self.dims,
                self.dims.len(),
                x.rank().saturating_sub(1)
            )));
        }
        let mut dims = vec![x.dims[0]];
        dims.extend(self.dims.iter().map(|&d| x.dims[d]));
        Ok(TensorSpec::new(dims, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let mut perm = vec![0];
        perm.extend(&self.dims);
        inputs[0].permute(&perm)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn permutes_and_checks_its_dims() {
        let mut layer = Permute::new([2, 1]);
        let (out, _) = build(&mut layer, &[spec(&[None, Some(2), Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 2)");
        let y = call(&layer, &[t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[1, 2, 3])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert!(err(build(&mut layer, &[spec(&[None, Some(3)])])).contains("permute 2 axes"));
        assert!(err(build(&mut Permute::new([1, 1]), &[spec(&[None, Some(2), Some(3)])])).contains("permutation"));
        assert!(err(build(&mut Permute::new([0, 1]), &[spec(&[None, Some(2), Some(3)])])).contains("permutation"));
        assert_eq!(Permute::from_config(&layer.config()).unwrap().config(), layer.config());
    }
}
