//! `Bidirectional`: runs a recurrent layer forwards and a copy of it
//! backwards over the same sequence and merges the two.

use serde_json::{json, Value};
use strata_core::{DType, Error, Result, Tensor};

use super::wrapped::{layer_config, layer_from_value};
use crate::meta::{named, Meta};
use crate::{snake_case, Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// How [`Bidirectional`] combines the forward and the backward outputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MergeMode {
    /// Joins them along the last axis (the default): twice the units.
    Concat,
    /// Adds them.
    Sum,
    /// Multiplies them.
    Mul,
    /// Their mean.
    Ave,
}

impl MergeMode {
    fn keras_name(self) -> &'static str {
        match self {
            MergeMode::Concat => "concat",
            MergeMode::Sum => "sum",
            MergeMode::Mul => "mul",
            MergeMode::Ave => "ave",
        }
    }

    fn parse(name: &str) -> Result<MergeMode> {
        Ok(match name {
            "concat" => MergeMode::Concat,
            "sum" => MergeMode::Sum,
            "mul" => MergeMode::Mul,
            "ave" => MergeMode::Ave,
            other => {
                return Err(Error::Config(format!(
                    "Bidirectional: unknown merge_mode `{other}`; expected one of concat, sum, mul, ave or null"
                )))
            }
        })
    }
}

/// The forward and the backward layer.
type Directions = (Box<dyn Layer>, Box<dyn Layer>);

/// Runs a recurrent layer over the sequence and a copy of it (with
/// `go_backwards`) over the reversed sequence, and merges the two — Keras'
/// `Bidirectional`.
///
/// The backward copy is rebuilt from the layer's config with
/// `go_backwards=true` (or given with [`backward_layer`](Self::backward_layer)).
/// As in Keras, with `return_sequences` both copies output zeros at masked
/// timesteps, and the backward outputs are flipped back into the input's
/// order before merging, so that step `t` of the output sees the whole
/// sequence. Weights are named `forward_{layer}.kernel`, `backward_{layer}.kernel`, ...
///
/// # Shapes
/// - inputs: the sequence `(batch, timesteps, features)`, then optionally
///   the forward layer's initial states followed by the backward layer's
/// - outputs: the merged output (`concat` doubles the last axis), or with
///   [`merge_mode(None)`](Self::merge_mode) the forward and the backward
///   output; then, with the layer's `return_state`, the forward states
///   followed by the backward states
///
/// # Masks
/// The sequence's mask goes to both directions (the backward one walks it
/// from the end). With `return_sequences` the outputs carry it on.
///
/// ```
/// use strata_core::{Device, DType, Rng, Tensor};
/// use strata_layers::{Bidirectional, BuildContext, CallContext, Layer, TensorSpec, LSTM};
/// let dev = strata_native::device();
/// let mut layer = Bidirectional::new(LSTM::new(3).return_sequences(true));
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = layer.build(&[TensorSpec::new([None, Some(5), Some(2)], DType::F32)],
///     &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// assert_eq!(spec.dims, [None, Some(5), Some(6)]);
/// assert_eq!(weights[0].name, "forward_lstm.kernel");
/// let x = Tensor::ones([4, 5, 2], DType::F32, &dev).unwrap();
/// let y = layer.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.dims(), [4, 5, 6]);
/// ```
pub struct Bidirectional {
    /// The two directions, or none when the layer could not be rebuilt
    /// (the error is in `meta`).
    layers: Option<Directions>,
    /// `None`: two outputs, not merged.
    merge_mode: Option<MergeMode>,
    forward_name: String,
    backward_name: String,
    return_sequences: bool,
    return_state: bool,
    meta: Meta,
}

named!(Bidirectional);

/// A boolean argument in a recurrent layer's config.
fn flag(config: &Value, key: &str) -> bool {
    config.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The layer's config with `key` set to `on`, if the layer has that key.
fn with_flag(config: &Value, key: &str, on: bool) -> Value {
    let mut config = config.clone();
    if let Some(m) = config.as_object_mut() {
        if m.contains_key(key) {
            m.insert(key.to_string(), Value::Bool(on));
        }
    }
    config
}

/// `layer` rebuilt from its config with `edit` applied (Keras rebuilds the
/// wrapped layer the same way, so the wrapper owns fresh copies).
fn rebuilt(layer: &dyn Layer, edit: impl FnOnce(&Value) -> Value) -> Result<Box<dyn Layer>> {
    crate::layer_from_config(layer.class_name(), &edit(&layer.config()))
}

impl Bidirectional {
    /// Wraps a recurrent layer (`LSTM`, `GRU`, `SimpleRNN`, or a registered
    /// layer with the same `go_backwards`, `return_sequences` and
    /// `return_state` arguments), merging by concatenation.
    pub fn new(layer: impl Layer) -> Self {
        Self::from_layers(&layer, None)
    }

    /// Uses `backward` for the backward direction instead of a copy of the
    /// layer. It must have `go_backwards=true` and the same
    /// `return_sequences` and `return_state` as the forward layer.
    pub fn backward_layer(self, backward: impl Layer) -> Self {
        let Some((forward, _)) = &self.layers else { return self };
        let mut out = Self::from_layers(forward.as_ref(), Some(&backward));
        out.merge_mode = self.merge_mode;
        if out.meta.error.is_none() {
            out.meta.error = self.meta.error;
        }
        out.meta.name = self.meta.name;
        out
    }

    /// How to combine the two directions' outputs: `Some(mode)` (default
    /// `Concat`), or `None` to return both.
    pub fn merge_mode(mut self, mode: Option<MergeMode>) -> Self {
        self.merge_mode = mode;
        self
    }

    fn from_layers(forward: &dyn Layer, backward: Option<&dyn Layer>) -> Self {
        let mut meta = Meta::default();
        let config = forward.config();
        let return_sequences = flag(&config, "return_sequences");
        let return_state = flag(&config, "return_state");
        for key in ["go_backwards", "return_sequences", "return_state"] {
            meta.require(config.get(key).is_some(), || {
                format!(
                    "wraps a recurrent layer (with go_backwards, return_sequences and return_state), received {} \
                     whose config has no `{key}`",
                    forward.class_name()
                )
            });
        }
        meta.require(!flag(&config, "go_backwards"), || {
            "the forward layer must have go_backwards=false (the backward one walks the sequence from its end)".into()
        });
        // As Keras: the outputs of masked steps are zeros when sequences
        // are returned, so that the two directions merge cleanly.
        let zero = |c: &Value| with_flag(c, "zero_output_for_mask", return_sequences);
        let fwd = meta.keep(rebuilt(forward, zero));
        let bwd = match backward {
            None => meta.keep(rebuilt(forward, |c| with_flag(&zero(c), "go_backwards", true))),
            Some(b) => {
                let bc = b.config();
                meta.require(flag(&bc, "go_backwards"), || "the backward layer must have go_backwards=true".into());
                for key in ["return_sequences", "return_state"] {
                    meta.require(flag(&bc, key) == flag(&config, key), || {
                        format!(
                            "the forward and backward layers must have the same {key}, received {} and {}",
                            flag(&config, key),
                            flag(&bc, key)
                        )
                    });
                }
                meta.keep(rebuilt(b, zero))
            }
        };
        let base = |l: &dyn Layer| l.name_hint().map(str::to_string).unwrap_or_else(|| snake_case(l.class_name()));
        let forward_name = format!("forward_{}", base(forward));
        let backward_name = match backward {
            Some(b) if b.name_hint().is_some() => base(b),
            _ => format!("backward_{}", base(forward)),
        };
        Bidirectional {
            layers: fwd.zip(bwd),
            merge_mode: Some(MergeMode::Concat),
            forward_name: format!("{forward_name}."),
            backward_name: format!("{backward_name}."),
            return_sequences,
            return_state,
            meta,
        }
    }

    /// How many states each direction returns.
    fn states_per_direction(&self) -> usize {
        match &self.layers {
            Some((forward, _)) if self.return_state => forward.num_outputs().saturating_sub(1),
            _ => 0,
        }
    }

    /// The two directions (after `meta.check`, always there).
    fn pair(&self) -> Result<&Directions> {
        self.meta.check()?;
        self.layers.as_ref().ok_or_else(|| Error::msg("the wrapped layer could not be rebuilt"))
    }

    /// The sequence plus each direction's initial states.
    fn split<T: Clone>(&self, inputs: &[T]) -> Result<(Vec<T>, Vec<T>)> {
        let states = inputs.len() - 1;
        if states % 2 != 0 {
            return Err(Error::msg(format!(
                "takes the sequence, then as many initial states for the backward layer as for the forward one; \
                 received {states} states"
            )));
        }
        let half = states / 2;
        let mut f = vec![inputs[0].clone()];
        f.extend_from_slice(&inputs[1..1 + half]);
        let mut b = vec![inputs[0].clone()];
        b.extend_from_slice(&inputs[1 + half..]);
        Ok((f, b))
    }

    fn merge(&self, y: Tensor, y_rev: Tensor) -> Result<Vec<Tensor>> {
        Ok(match self.merge_mode {
            None => vec![y, y_rev],
            Some(MergeMode::Concat) => vec![Tensor::concat(&[&y, &y_rev], -1)?],
            Some(MergeMode::Sum) => vec![y.add(&y_rev)?],
            Some(MergeMode::Mul) => vec![y.mul(&y_rev)?],
            Some(MergeMode::Ave) => vec![y.add(&y_rev)?.div_scalar(2.0)?],
        })
    }
}

impl Clone for Bidirectional {
    fn clone(&self) -> Self {
        // Both layers came out of `layer_from_config`, so their configs
        // rebuild them.
        let copy = |l: &dyn Layer| rebuilt(l, Value::clone);
        let mut meta = self.meta.clone();
        let layers = self.layers.as_ref().and_then(|(f, b)| {
            let f = meta.keep(copy(f.as_ref()));
            let b = meta.keep(copy(b.as_ref()));
            f.zip(b)
        });
        Bidirectional {
            layers,
            merge_mode: self.merge_mode,
            forward_name: self.forward_name.clone(),
            backward_name: self.backward_name.clone(),
            return_sequences: self.return_sequences,
            return_state: self.return_state,
            meta,
        }
    }
}

impl LayerClass for Bidirectional {
    const CLASS_NAME: &'static str = "Bidirectional";

    fn from_config(config: &Value) -> Result<Self> {
        let class = Self::CLASS_NAME;
        let Some(object) = config.as_object() else {
            return Err(Error::Config(format!("{class}: expected a JSON object, received {config}")));
        };
        if let Some(k) = object.keys().find(|k| !["layer", "backward_layer", "merge_mode"].contains(&k.as_str())) {
            return Err(Error::Config(format!(
                "{class}: unknown field `{k}`, expected one of `layer`, `backward_layer`, `merge_mode`"
            )));
        }
        let forward = layer_from_value(class, object.get("layer"))?;
        let merge_mode = match object.get("merge_mode") {
            None => Some(MergeMode::Concat),
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(MergeMode::parse(s)?),
            Some(other) => {
                return Err(Error::Config(format!("{class}: merge_mode must be a string or null, received {other}")))
            }
        };
        let out = match object.get("backward_layer") {
            None | Some(Value::Null) => Bidirectional::from_layers(forward.as_ref(), None),
            Some(b) => {
                let backward = layer_from_value(class, Some(b))?;
                Bidirectional::from_layers(forward.as_ref(), Some(backward.as_ref()))
            }
        };
        out.meta.check()?;
        Ok(out.merge_mode(merge_mode))
    }
}

impl Layer for Bidirectional {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(1)
    }

    fn num_outputs(&self) -> usize {
        let merged = if self.merge_mode.is_none() { 2 } else { 1 };
        merged + 2 * self.states_per_direction()
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        super::first_output(self.build_multi(inputs, ctx)?)
    }

    fn build_multi(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<Vec<TensorSpec>> {
        self.pair()?;
        let (f, b) = self.split(inputs)?;
        let n = self.states_per_direction();
        let (fname, bname) = (self.forward_name.clone(), self.backward_name.clone());
        let Some((forward, backward)) = self.layers.as_mut() else { return Err(Error::msg("no wrapped layer")) };
        let fs = ctx.scoped(&fname, |c| forward.build_multi(&f, c))?;
        let bs = ctx.scoped(&bname, |c| backward.build_multi(&b, c))?;
        if fs.len() != 1 + n || bs.len() != 1 + n {
            return Err(Error::msg(format!(
                "the forward layer returns {} outputs and the backward one {}, expected {}",
                fs.len(),
                bs.len(),
                1 + n
            )));
        }
        let y = &fs[0];
        let mut out = match self.merge_mode {
            None => vec![y.clone(), bs[0].clone()],
            Some(MergeMode::Concat) => {
                let last = y.last().map(|u| {
                    u.checked_mul(2).ok_or_else(|| Error::SizeOverflow {
                        op: "Bidirectional".into(),
                        message: format!("twice {u} units do not fit in usize"),
                    })
                });
                let mut dims = y.dims.clone();
                if let Some(d) = dims.last_mut() {
                    *d = last.transpose()?;
                }
                vec![TensorSpec::new(dims, DType::F32)]
            }
            Some(_) => vec![y.clone()],
        };
        out.extend(fs[1..].iter().cloned());
        out.extend(bs[1..].iter().cloned());
        Ok(out)
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        super::first_output(self.call_multi(inputs, ctx)?)
    }

    fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let (forward, backward) = self.pair()?;
        let (f, b) = self.split(inputs)?;
        // Each direction sees the sequence's mask and none on its states.
        let masks_for = |n: usize| {
            let mut m = vec![ctx.mask().cloned()];
            m.resize(n, None);
            m
        };
        let (fm, bm) = (masks_for(f.len()), masks_for(b.len()));
        let mut ys = ctx.scoped(&self.forward_name, &fm, |c| forward.call_multi(&f, c))?;
        let mut ys_rev = ctx.scoped(&self.backward_name, &bm, |c| backward.call_multi(&b, c))?;
        if ys.is_empty() || ys_rev.is_empty() {
            return Err(Error::msg("a direction returned no output"));
        }
        let states: Vec<Tensor> = ys.drain(1..).chain(ys_rev.drain(1..)).collect();
        let (y, mut y_rev) = (ys.remove(0), ys_rev.remove(0));
        if self.return_sequences {
            if y_rev.rank() < 2 {
                return Err(Error::msg(format!(
                    "the backward layer returned shape {:?}, not a sequence",
                    y_rev.dims()
                )));
            }
            let steps = y_rev.dims()[1];
            let order: Vec<i64> = (0..steps as i64).rev().collect();
            y_rev = y_rev.gather(1, &Tensor::new(order, [steps], y_rev.device())?)?;
        }
        let mut out = self.merge(y, y_rev)?;
        out.extend(states);
        Ok(out)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_masks(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
        let seq = if self.return_sequences { masks.first().cloned().flatten() } else { None };
        let merged = if self.merge_mode.is_none() { 2 } else { 1 };
        let mut out = vec![seq; merged];
        out.resize(self.num_outputs(), None);
        Ok(out)
    }

    fn config(&self) -> Value {
        let merge = match self.merge_mode {
            Some(m) => json!(m.keras_name()),
            None => Value::Null,
        };
        // `layer` is the forward layer as given (zero_output_for_mask is
        // set again on loading).
        match &self.layers {
            Some((forward, backward)) => json!({
                "merge_mode": merge,
                "layer": layer_config(forward.as_ref()),
                "backward_layer": layer_config(backward.as_ref()),
            }),
            None => json!({"merge_mode": merge}),
        }
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}
