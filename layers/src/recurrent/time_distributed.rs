//! `TimeDistributed`: applies a layer to every timestep of a sequence.

use serde_json::{json, Value};
use strata_core::{Error, Result, Tensor};

use super::wrapped::{layer_config, layer_from_value};
use crate::meta::{named, Meta};
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Applies one layer, with one set of weights, to every timestep of its
/// input — Keras' `TimeDistributed` (the `TimeDistributed(Dense(..))` head
/// of a sequence-to-sequence model).
///
/// The batch and time axes are folded into one for the wrapped layer, so
/// it runs once on `batch·timesteps` rows; its weights keep their own names
/// (`kernel`, `bias`).
///
/// # Shapes
/// - input: `(batch, timesteps, ...)`, what the wrapped layer takes per
///   step after the two leading axes
/// - output: `(batch, timesteps, ...)` with the wrapped layer's output
///   shape after them
///
/// # Masks
/// The input's mask passes through to the output; the wrapped layer gets
/// it per step when it accepts masks.
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Dense, Layer, TensorSpec, TimeDistributed};
/// let dev = strata_native::device();
/// let mut layer = TimeDistributed::new(Dense::new(3));
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = layer.build(&[TensorSpec::new([None, Some(5), Some(2)], DType::F32)],
///     &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// assert_eq!(spec.dims, [None, Some(5), Some(3)]);
/// assert_eq!(weights[0].value.dims(), [2, 3]);
/// let x = Tensor::ones([4, 5, 2], DType::F32, &dev).unwrap();
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.dims(), [4, 5, 3]);
/// ```
pub struct TimeDistributed {
    layer: Box<dyn Layer>,
    meta: Meta,
}

named!(TimeDistributed);

impl TimeDistributed {
    /// Applies `layer` at every timestep.
    pub fn new(layer: impl Layer) -> Self {
        TimeDistributed { layer: Box::new(layer), meta: Meta::default() }
    }
}

impl LayerClass for TimeDistributed {
    const CLASS_NAME: &'static str = "TimeDistributed";

    fn from_config(config: &Value) -> Result<Self> {
        let class = Self::CLASS_NAME;
        let Some(object) = config.as_object() else {
            return Err(Error::Config(format!("{class}: expected a JSON object, received {config}")));
        };
        if let Some(k) = object.keys().find(|k| k.as_str() != "layer") {
            return Err(Error::Config(format!("{class}: unknown field `{k}`, expected `layer`")));
        }
        Ok(TimeDistributed { layer: layer_from_value(class, object.get("layer"))?, meta: Meta::default() })
    }
}

/// `(batch, time, rest...)` with the two leading axes folded into one.
fn folded(dims: &[usize]) -> Vec<usize> {
    let mut out = vec![dims[0] * dims[1]];
    out.extend_from_slice(&dims[2..]);
    out
}

impl Layer for TimeDistributed {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        if x.rank() < 3 {
            return Err(Error::msg(format!("needs (batch, timesteps, ...) with at least 3 axes, received {x}")));
        }
        if self.layer.num_outputs() != 1 {
            return Err(Error::msg(format!(
                "wraps a layer with one output, received {} with {}",
                self.layer.class_name(),
                self.layer.num_outputs()
            )));
        }
        let rows = match (x.dims[0], x.dims[1]) {
            (Some(b), Some(t)) => Some(b.checked_mul(t).ok_or_else(|| Error::SizeOverflow {
                op: "TimeDistributed".into(),
                message: format!("{b} × {t} rows do not fit in usize"),
            })?),
            _ => None,
        };
        let mut step = vec![rows];
        step.extend_from_slice(&x.dims[2..]);
        let inner = self
            .layer
            .build(&[TensorSpec::new(step, x.dtype)], ctx)
            .map_err(|e| Error::msg(format!("the wrapped {}: {e}", self.layer.class_name())))?;
        if inner.rank() == 0 {
            return Err(Error::msg(format!("the wrapped {} returns a scalar", self.layer.class_name())));
        }
        let mut dims = vec![x.dims[0], x.dims[1]];
        dims.extend_from_slice(&inner.dims[1..]);
        Ok(TensorSpec::new(dims, inner.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        if x.rank() < 3 {
            return Err(Error::msg(format!(
                "needs (batch, timesteps, ...) with at least 3 axes, received {:?}",
                x.dims()
            )));
        }
        let (batch, steps) = (x.dims()[0], x.dims()[1]);
        let mask = match ctx.mask() {
            Some(m) if m.rank() < 2 || m.dims()[..2] != x.dims()[..2] => {
                return Err(Error::msg(format!(
                    "expects a mask starting with (batch, timesteps) = ({batch}, {steps}), received {:?}",
                    m.dims()
                )))
            }
            Some(m) if self.layer.supports_masking() => Some(m.reshape(folded(m.dims()))?),
            _ => None,
        };
        let rows = x.reshape(folded(x.dims()))?;
        let y = ctx.scoped("", &[mask], |c| self.layer.call(&[rows], c))?;
        if y.rank() == 0 || y.dims()[0] != batch * steps {
            return Err(Error::msg(format!(
                "the wrapped {} returned shape {:?} for {} rows",
                self.layer.class_name(),
                y.dims(),
                batch * steps
            )));
        }
        let mut dims = vec![batch, steps];
        dims.extend_from_slice(&y.dims()[1..]);
        y.reshape(dims)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn config(&self) -> Value {
        json!({"layer": layer_config(self.layer.as_ref())})
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }

    fn nested_weights(&self) -> Vec<crate::Weight> {
        self.layer.nested_weights()
    }
}
