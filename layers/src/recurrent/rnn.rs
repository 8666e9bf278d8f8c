//! What `SimpleRNN`, `LSTM` and `GRU` share (Keras' `RNN` base and
//! `DropoutRNNCell`): the sequence arguments, the loop over timesteps with
//! masks and `go_backwards`, initial states, dropout masks, and splitting a
//! Keras config into the base's keys and the cell's.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use strata_core::{DType, Error, LinearActivation, Result, Rng, Tensor};

use crate::meta::{from_json, LayerRng};
use crate::{BuildContext, CallContext, Initializer, Regularizer, TensorSpec};

/// The arguments every recurrent layer takes besides its cell's (Keras'
/// `RNN` arguments plus the cells' dropout).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Sequence {
    #[serde(default)]
    pub(crate) return_sequences: bool,
    #[serde(default)]
    pub(crate) return_state: bool,
    #[serde(default)]
    pub(crate) go_backwards: bool,
    #[serde(default)]
    pub(crate) stateful: bool,
    #[serde(default)]
    pub(crate) unroll: bool,
    #[serde(default)]
    pub(crate) zero_output_for_mask: bool,
    #[serde(default)]
    pub(crate) dropout: f32,
    #[serde(default)]
    pub(crate) recurrent_dropout: f32,
    #[serde(default)]
    pub(crate) seed: Option<u64>,
}

/// The config keys [`Sequence`] reads.
const SEQUENCE_KEYS: &[&str] = &[
    "return_sequences",
    "return_state",
    "go_backwards",
    "stateful",
    "unroll",
    "zero_output_for_mask",
    "dropout",
    "recurrent_dropout",
    "seed",
];

impl Sequence {
    /// Problems with these arguments, for the layer's `Meta`.
    pub(crate) fn problem(&self) -> Option<String> {
        if self.stateful {
            return Some("stateful=True is not supported; pass the state with initial_state instead".into());
        }
        for (name, rate) in [("dropout", self.dropout), ("recurrent_dropout", self.recurrent_dropout)] {
            if !(0.0..1.0).contains(&rate) {
                return Some(format!("{name} must be in [0, 1), received {rate}"));
            }
        }
        None
    }
}

/// Splits a recurrent layer's config into its [`Sequence`] part and its
/// cell's part, each read with serde (unknown keys are errors).
pub(crate) fn split_config<C: serde::de::DeserializeOwned>(class: &str, config: &Value) -> Result<(C, Sequence)> {
    let Some(object) = config.as_object() else {
        return Err(Error::Config(format!("{class}: expected a JSON object, received {config}")));
    };
    let (mut seq, mut cell) = (Map::new(), Map::new());
    for (k, v) in object {
        if SEQUENCE_KEYS.contains(&k.as_str()) {
            seq.insert(k.clone(), v.clone());
        } else {
            cell.insert(k.clone(), v.clone());
        }
    }
    Ok((from_json(class, &Value::Object(cell))?, from_json(class, &Value::Object(seq))?))
}

/// The config a recurrent layer writes: its cell's keys, then the base's.
pub(crate) fn join_config(cell: &impl Serialize, seq: &Sequence) -> Value {
    let mut out = match serde_json::to_value(cell) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    };
    if let Ok(Value::Object(m)) = serde_json::to_value(seq) {
        out.extend(m);
    }
    Value::Object(out)
}

/// A cell's three weights, as Keras names them.
pub(crate) struct CellWeights {
    pub(crate) kernel: Tensor,
    pub(crate) recurrent: Tensor,
    pub(crate) bias: Option<Tensor>,
}

impl CellWeights {
    /// `cell`'s weights, as `build` created them.
    pub(crate) fn of(cell: &dyn Cell, ctx: &CallContext<'_>) -> Result<CellWeights> {
        Ok(CellWeights {
            kernel: ctx.weight("kernel")?,
            recurrent: ctx.weight("recurrent_kernel")?,
            bias: if cell.use_bias() { Some(ctx.weight("bias")?) } else { None },
        })
    }
}

/// Makes a bias' initial value (LSTM's has its forget block at one).
pub(crate) type BiasInit = Box<dyn FnOnce(&mut Rng, &strata_core::Device) -> Result<Tensor>>;

/// The initializers and regularizers of a cell's three weights, and the
/// bias' shape and initial value (none without a bias).
pub(crate) struct WeightArgs {
    pub(crate) kernel: (Initializer, Option<Regularizer>),
    pub(crate) recurrent: (Initializer, Option<Regularizer>),
    pub(crate) bias: Option<(Vec<usize>, BiasInit)>,
    pub(crate) bias_regularizer: Option<Regularizer>,
}

/// Creates `kernel` `[features, gates·units]`, `recurrent_kernel`
/// `[units, gates·units]` and (if any) `bias`, in Keras' order.
pub(crate) fn add_cell_weights(
    ctx: &mut BuildContext<'_>,
    features: usize,
    width: usize,
    units: usize,
    args: WeightArgs,
) -> Result<()> {
    ctx.add_weight_with("kernel", [features, width], args.kernel.0, true, args.kernel.1)?;
    ctx.add_weight_with("recurrent_kernel", [units, width], args.recurrent.0, true, args.recurrent.1)?;
    if let Some((shape, init)) = args.bias {
        ctx.add_weight_fn("bias", shape, |_, rng, dev| init(rng, dev), true, args.bias_regularizer)?;
    }
    Ok(())
}

/// The dropout masks of one call (Keras draws them once per call and uses
/// them at every timestep): none, one shared, or one per gate.
#[derive(Default)]
pub(crate) struct DropMasks {
    /// `[batch, features]` each.
    pub(crate) input: Vec<Tensor>,
    /// `[batch, units]` each.
    pub(crate) recurrent: Vec<Tensor>,
}

/// One recurrent cell: its step from the projected input and the states.
pub(crate) trait Cell {
    /// Output size (the size of every state).
    fn units(&self) -> usize;
    /// How many states it carries (`h`, and `c` for an LSTM); the first is
    /// the output.
    fn num_states(&self) -> usize;
    /// How many `units`-wide blocks the kernels hold (1, 4 or 3).
    fn gates(&self) -> usize;
    /// Whether it has a bias.
    fn use_bias(&self) -> bool;
    /// Its weights' initializers and regularizers, and the bias' shape and
    /// initial value (see [`add_cell_weights`]).
    fn weight_args(&self) -> WeightArgs;
    /// The part of the bias added to the input projection.
    fn input_bias(&self, w: &CellWeights) -> Result<Option<Tensor>>;
    /// New states from the projected input `xw` `[batch, gates·units]` at
    /// one step and the previous states.
    fn step(&self, xw: &Tensor, states: &[Tensor], w: &CellWeights, masks: &DropMasks) -> Result<Vec<Tensor>>;
}

/// `h · U[:, gates]` for the gate blocks `first..first + count`; with
/// recurrent dropout, each gate block sees `h` times its own mask.
pub(crate) fn recurrent_product(
    h: &Tensor,
    u: &Tensor,
    units: usize,
    first: usize,
    count: usize,
    masks: &[Tensor],
) -> Result<Tensor> {
    let block = |g: usize, n: usize| -> Result<Tensor> {
        if g == 0 && n * units == u.dims()[1] {
            Ok(u.clone())
        } else {
            u.narrow(1, g * units, n * units)
        }
    };
    match masks {
        [] => h.matmul(&block(first, count)?),
        [one] => h.mul(one)?.matmul(&block(first, count)?),
        per_gate => {
            let parts: Vec<Tensor> =
                (first..first + count).map(|g| h.mul(&per_gate[g])?.matmul(&block(g, 1)?)).collect::<Result<_>>()?;
            Tensor::concat(&parts.iter().collect::<Vec<_>>(), 1)
        }
    }
}

/// Gate block `g` of a `[batch, gates·units]` tensor.
pub(crate) fn gate(z: &Tensor, units: usize, g: usize) -> Result<Tensor> {
    z.narrow(1, g * units, units)
}

/// Checks a recurrent layer's inputs and returns the output specs: the
/// sequence or the last output, then (with `return_state`) each state.
pub(crate) fn output_specs(
    inputs: &[TensorSpec],
    units: usize,
    num_states: usize,
    seq: &Sequence,
) -> Result<(usize, Vec<TensorSpec>)> {
    let x = &inputs[0];
    crate::layer::expect_float(x)?;
    crate::layer::expect_rank(x, 3, "(batch, timesteps, features)")?;
    let Some(features) = x.last() else {
        return Err(Error::msg(format!("needs a known features axis, received {x}")));
    };
    if inputs.len() != 1 && inputs.len() != 1 + num_states {
        return Err(Error::msg(format!(
            "takes the sequence and optionally its {num_states} initial state(s), received {} inputs",
            inputs.len()
        )));
    }
    for (k, s) in inputs[1..].iter().enumerate() {
        if s.dtype != DType::F32 || s.rank() != 2 || s.dims[1].is_some_and(|d| d != units) {
            return Err(Error::msg(format!(
                "initial state {k} must be f32 (batch, {units}), received {} {s}",
                s.dtype
            )));
        }
    }
    let out = if seq.return_sequences {
        TensorSpec::new(vec![x.dims[0], x.dims[1], Some(units)], DType::F32)
    } else {
        TensorSpec::new(vec![x.dims[0], Some(units)], DType::F32)
    };
    let mut specs = vec![out];
    if seq.return_state {
        specs.extend((0..num_states).map(|_| TensorSpec::new(vec![x.dims[0], Some(units)], DType::F32)));
    }
    Ok((features, specs))
}

/// A recurrent layer's `build_multi`: checks its inputs, creates its
/// cell's weights and returns its output specs.
pub(crate) fn build(
    cell: &dyn Cell,
    seq: &Sequence,
    inputs: &[TensorSpec],
    ctx: &mut BuildContext<'_>,
) -> Result<Vec<TensorSpec>> {
    let (features, specs) = output_specs(inputs, cell.units(), cell.num_states(), seq)?;
    let width = cell.units().checked_mul(cell.gates()).ok_or_else(|| Error::SizeOverflow {
        op: "recurrent layer".into(),
        message: format!("{} gates of {} units do not fit in usize", cell.gates(), cell.units()),
    })?;
    add_cell_weights(ctx, features, width, cell.units(), cell.weight_args())?;
    Ok(specs)
}

/// A bias' shape and its initial value drawn from `init`.
pub(crate) fn plain_bias(init: Initializer, shape: Vec<usize>) -> (Vec<usize>, BiasInit) {
    let s = shape.clone();
    (shape, Box::new(move |rng: &mut Rng, dev: &strata_core::Device| init.init(&s.into(), rng, dev)))
}

/// How many tensors a recurrent layer returns.
pub(crate) fn num_outputs(seq: &Sequence, num_states: usize) -> usize {
    if seq.return_state {
        1 + num_states
    } else {
        1
    }
}

/// The output masks: the input mask on the sequence output when
/// `return_sequences`, none on the last output and on the states.
pub(crate) fn output_masks(seq: &Sequence, num_states: usize, masks: &[Option<Tensor>]) -> Vec<Option<Tensor>> {
    let first = if seq.return_sequences { masks.first().cloned().flatten() } else { None };
    let mut out = vec![first];
    out.resize(num_outputs(seq, num_states), None);
    out
}

/// Draws a dropout mask of `shape`: `0` with probability `rate`, else
/// `1 / (1 - rate)`.
fn dropout_mask(shape: [usize; 2], rate: f32, rng: &mut Rng, dev: &strata_core::Device) -> Result<Tensor> {
    Tensor::rand_uniform(shape, 0.0, 1.0, rng, dev)?.ge_scalar(rate as f64)?.div_scalar(1.0 - rate as f64)
}

/// A recurrent call's inputs made ready for the loop over timesteps.
pub(crate) struct Prepared {
    /// The input projection `x·W + b` of every timestep, time-major:
    /// `[time, batch, gates·units]`, in the sequence's order.
    pub(crate) xw: Tensor,
    /// The initial states, `[batch, units]` each.
    pub(crate) states: Vec<Tensor>,
    /// The mask, time-major: `[time, batch]`.
    pub(crate) mask: Option<Tensor>,
    /// The dropout masks of this call.
    pub(crate) drop: DropMasks,
}

/// Checks a call's inputs and mask, draws its dropout masks and projects
/// the whole sequence at once: as Keras, `x·W + b` for every timestep is
/// one product (one per gate with per-gate input dropout).
pub(crate) fn prepare(
    cell: &dyn Cell,
    seq: &Sequence,
    own_rng: &LayerRng,
    inputs: &[Tensor],
    w: &CellWeights,
    ctx: &mut CallContext<'_>,
) -> Result<Prepared> {
    let x = &inputs[0];
    let (batch, steps, features) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    if steps == 0 {
        return Err(Error::msg(format!(
            "needs at least one timestep, received (batch, timesteps, features) {:?}",
            x.dims()
        )));
    }
    let (units, gates) = (cell.units(), cell.gates());
    let dev = x.device().clone();
    let drop = if ctx.training() && (seq.dropout > 0.0 || seq.recurrent_dropout > 0.0) {
        // Keras uses one input mask for every gate, or one per gate (and
        // per-gate recurrent masks) when recurrent dropout is on.
        let per_gate = seq.recurrent_dropout > 0.0;
        let n = if per_gate { gates } else { 1 };
        let draw = |rng: &mut Rng| -> Result<DropMasks> {
            let mut m = DropMasks::default();
            if seq.dropout > 0.0 {
                m.input =
                    (0..n).map(|_| dropout_mask([batch, features], seq.dropout, rng, &dev)).collect::<Result<_>>()?;
            }
            if per_gate {
                m.recurrent = (0..n)
                    .map(|_| dropout_mask([batch, units], seq.recurrent_dropout, rng, &dev))
                    .collect::<Result<_>>()?;
            }
            Ok(m)
        };
        own_rng.with(ctx.rng(), draw)?
    } else {
        DropMasks::default()
    };

    let bias = cell.input_bias(w)?;
    let xt = x.transpose(0, 1)?;
    let xw = match drop.input.as_slice() {
        [] => xt.linear(&w.kernel, bias.as_ref(), LinearActivation::Identity)?,
        [one] => xt.mul(one)?.linear(&w.kernel, bias.as_ref(), LinearActivation::Identity)?,
        per_gate => {
            let parts: Vec<Tensor> = per_gate
                .iter()
                .enumerate()
                .map(|(g, m)| {
                    let b = bias.as_ref().map(|b| b.narrow(0, g * units, units)).transpose()?;
                    xt.mul(m)?.linear(&w.kernel.narrow(1, g * units, units)?, b.as_ref(), LinearActivation::Identity)
                })
                .collect::<Result<_>>()?;
            Tensor::concat(&parts.iter().collect::<Vec<_>>(), 2)?
        }
    };

    let states: Vec<Tensor> = if inputs.len() > 1 {
        for (k, s) in inputs[1..].iter().enumerate() {
            if s.dims() != [batch, units] {
                return Err(Error::msg(format!(
                    "initial state {k} must be (batch, units) = ({batch}, {units}), received {:?}",
                    s.dims()
                )));
            }
        }
        inputs[1..].to_vec()
    } else {
        let zeros = Tensor::zeros([batch, units], DType::F32, &dev)?;
        vec![zeros; cell.num_states()]
    };
    let mask = match ctx.mask() {
        Some(m) if m.dims() != [batch, steps] => {
            return Err(Error::msg(format!(
                "expects a (batch, timesteps) = ({batch}, {steps}) mask, received {:?}",
                m.dims()
            )))
        }
        Some(m) => Some(m.transpose(0, 1)?),
        None => None,
    };
    Ok(Prepared { xw, states, mask, drop })
}

/// The layer's outputs (see [`output_specs`]) from the outputs of every
/// step `[time, batch, units]` (time-major, in the order the steps ran; only
/// the last step is read without `return_sequences`) and
/// the final states.
pub(crate) fn finish(seq: &Sequence, outputs: Tensor, states: Vec<Tensor>) -> Result<Vec<Tensor>> {
    let (steps, batch, units) = (outputs.dims()[0], outputs.dims()[1], outputs.dims()[2]);
    let first = if seq.return_sequences {
        outputs.transpose(0, 1)?
    } else {
        outputs.narrow(0, steps - 1, 1)?.reshape([batch, units])?
    };
    let mut result = vec![first];
    if seq.return_state {
        result.extend(states);
    }
    Ok(result)
}

/// Runs `cell` over the sequence `inputs[0]` `[batch, time, features]`
/// (from `inputs[1..]` as initial states, else zeros) and returns the
/// layer's outputs (see [`output_specs`]), one step at a time with the
/// [`Tensor`] API: the reference every fused path is checked against.
///
/// As Keras: a masked timestep leaves the states unchanged and outputs the
/// previous output (zeros with `zero_output_for_mask`); `go_backwards`
/// walks the sequence from its end and returns the outputs in that order.
pub(crate) fn run(
    cell: &dyn Cell,
    seq: &Sequence,
    own_rng: &LayerRng,
    inputs: &[Tensor],
    w: &CellWeights,
    ctx: &mut CallContext<'_>,
) -> Result<Vec<Tensor>> {
    let p = prepare(cell, seq, own_rng, inputs, w, ctx)?;
    unrolled(cell, seq, p, w)
}

/// The loop of [`run`] over prepared inputs.
pub(crate) fn unrolled(cell: &dyn Cell, seq: &Sequence, p: Prepared, w: &CellWeights) -> Result<Vec<Tensor>> {
    let Prepared { xw, mut states, mask, drop } = p;
    let (steps, batch) = (xw.dims()[0], xw.dims()[1]);
    let width = cell.gates() * cell.units();
    let zeros = match &mask {
        Some(_) if seq.zero_output_for_mask => Some(Tensor::zeros([batch, cell.units()], DType::F32, xw.device())?),
        _ => None,
    };
    // Every step's output for the sequence, else only the last one's.
    let mut outputs: Vec<Tensor> = Vec::with_capacity(if seq.return_sequences { steps } else { 1 });
    for s in 0..steps {
        let t = if seq.go_backwards { steps - 1 - s } else { s };
        let xw_t = xw.narrow(0, t, 1)?.reshape([batch, width])?;
        let new = cell.step(&xw_t, &states, w, &drop)?;
        let out = match &mask {
            None => {
                states = new;
                states[0].clone()
            }
            Some(m) => {
                let keep = m.narrow(0, t, 1)?.reshape([batch, 1])?;
                let out = Tensor::where_cond(&keep, &new[0], zeros.as_ref().unwrap_or(&states[0]))?;
                states =
                    new.iter().zip(&states).map(|(n, old)| Tensor::where_cond(&keep, n, old)).collect::<Result<_>>()?;
                out
            }
        };
        if seq.return_sequences || s + 1 == steps {
            outputs.push(out.unsqueeze(0)?);
        }
    }
    let outputs = Tensor::concat(&outputs.iter().collect::<Vec<_>>(), 0)?;
    finish(seq, outputs, states)
}

/// The layer's outputs from a fused recurrence: `run(xw, initial states,
/// mask)` gets the prepared projection and mask in the order the steps run
/// (reversed for `go_backwards`) and returns every step's states side by
/// side, `[time, batch, states·units]` with the output `h` first (as
/// [`Tensor::lstm`] and [`Tensor::gru`] do). The same outputs as
/// [`unrolled`], in a few ops instead of dozens per timestep.
pub(crate) fn fused(
    seq: &Sequence,
    p: Prepared,
    run: impl FnOnce(&Tensor, &[Tensor], Option<&Tensor>) -> Result<Tensor>,
) -> Result<Vec<Tensor>> {
    let Prepared { mut xw, states, mut mask, .. } = p;
    let (steps, batch, units) = (xw.dims()[0], xw.dims()[1], states[0].dims()[1]);
    if seq.go_backwards {
        let reversed = Tensor::new((0..steps as i64).rev().collect::<Vec<_>>(), [steps], xw.device())?;
        xw = xw.gather(0, &reversed)?;
        mask = mask.map(|m| m.gather(0, &reversed)).transpose()?;
    }
    let all = run(&xw, &states, mask.as_ref())?;
    // Only the steps the outputs need: every one for the sequence, else the last.
    let (from, len) = if seq.return_sequences { (0, steps) } else { (steps - 1, 1) };
    let mut outputs = all.narrow(0, from, len)?.narrow(2, 0, units)?;
    if let (true, Some(m)) = (seq.zero_output_for_mask, &mask) {
        let m = m.narrow(0, from, len)?.unsqueeze(2)?;
        outputs = Tensor::where_cond(&m, &outputs, &outputs.zeros_like()?)?;
    }
    let last = all.narrow(0, steps - 1, 1)?.reshape([batch, states.len() * units])?;
    let finals = (0..states.len()).map(|k| last.narrow(1, k * units, units)).collect::<Result<_>>()?;
    finish(seq, outputs, finals)
}
