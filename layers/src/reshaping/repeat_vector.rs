//! `RepeatVector`: repeats a vector `n` times along a new time axis.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Repeats each sample's vector `n` times — Keras' `RepeatVector`, the
/// bridge from an encoder's last output to a decoder's timesteps.
///
/// # Shapes
/// - input: `(batch, features)`, any dtype
/// - output: `(batch, n, features)`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{CallContext, Layer, RepeatVector};
/// # let dev = strata_native::device();
/// let layer = RepeatVector::new(3);
/// assert_eq!(layer.config()["n"], 3);
/// let x = Tensor::new(vec![1.0f32, 2.0], [1, 2], &dev).unwrap();
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &[], &mut Rng::seed(0))).unwrap();
/// assert_eq!(y.dims(), [1, 3, 2]);
/// assert_eq!(y.to_vec::<f32>().unwrap(), [1.0, 2.0, 1.0, 2.0, 1.0, 2.0]);
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RepeatVector {
    n: usize,
    #[serde(skip)]
    meta: Meta,
}

named!(RepeatVector);

impl RepeatVector {
    /// Repeats the input `n` (> 0) times.
    pub fn new(n: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(n > 0, || format!("n must be > 0, received {n}"));
        RepeatVector { n, meta }
    }
}

impl LayerClass for RepeatVector {
    const CLASS_NAME: &'static str = "RepeatVector";

    fn from_config(config: &Value) -> Result<Self> {
        let r: RepeatVector = from_json(Self::CLASS_NAME, config)?;
        Ok(RepeatVector::new(r.n))
    }
}

impl Layer for RepeatVector {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        crate::layer::expect_rank(x, 2, "(batch, features)")?;
        if let Some(f) = x.dims[1] {
            f.checked_mul(self.n).ok_or_else(|| Error::SizeOverflow {
                op: "RepeatVector".into(),
                message: format!("{} repeats of {x} have more elements per sample than usize holds", self.n),
            })?;
        }
        Ok(TensorSpec::new(vec![x.dims[0], Some(self.n), x.dims[1]], x.dtype))
    }

    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let (batch, features) = (x.dims()[0], x.dims()[1]);
        x.unsqueeze(1)?.broadcast_to([batch, self.n, features])
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn repeats_and_checks_its_input() {
        let mut layer = RepeatVector::new(2);
        let (out, _) = build(&mut layer, &[spec(&[None, Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 3)");
        let y = call(&layer, &[t(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], &[2, 3])], &[], &[], false).unwrap();
        assert_eq!(vals(&y), [1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.0, 5.0, 6.0]);
        assert!(err(build(&mut layer, &[spec(&[None, Some(3), Some(1)])])).contains("rank 2"));
        assert!(err(build(&mut RepeatVector::new(0), &[spec(&[None, Some(3)])])).contains("n must be > 0"));
        assert!(err(build(&mut RepeatVector::new(usize::MAX), &[spec(&[None, Some(3)])])).contains("usize"));
        assert_eq!(RepeatVector::from_config(&layer.config()).unwrap().config(), layer.config());
    }
}
