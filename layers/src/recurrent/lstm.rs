//! `LSTM`: Keras' long short-term memory layer.

use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Result, Rng, Tensor};

use super::rnn::{self, gate, recurrent_product, Cell, CellWeights, DropMasks, Prepared, Sequence, WeightArgs};
use super::{glorot, orthogonal, sigmoid, tanh, yes, zeros};
use crate::meta::{named, Meta};
use crate::{Activation, Arity, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, TensorSpec};

/// Long short-term memory (Hochreiter & Schmidhuber), as Keras 3 computes
/// it: with `z = x·kernel + h·recurrent_kernel + bias` split into the gate
/// blocks i, f, c, o,
///
/// ```text
/// i = σ(z_i)   f = σ(z_f)   o = σ(z_o)     (σ: recurrent_activation)
/// c' = f·c + i·tanh(z_c)   h' = o·tanh(c')  (tanh: activation)
/// ```
///
/// Weights as Keras: `kernel` `[features, 4·units]`, `recurrent_kernel`
/// `[units, 4·units]` (orthogonal), `bias` `[4·units]` with the forget block
/// at one (`unit_forget_bias`), so Keras' weights load as they are.
///
/// # Shapes
/// - inputs: `(batch, timesteps, features)` `f32`; optionally the initial
///   states `h` and `c`, `(batch, units)` each, as further inputs (Keras'
///   `initial_state`)
/// - output: `(batch, units)`, or `(batch, timesteps, units)` with
///   [`return_sequences`](LSTM::return_sequences); with
///   [`return_state`](LSTM::return_state) also the final `h` and `c`, three
///   outputs in all (use `call_multi`)
///
/// # Masks
/// A masked timestep keeps the states and repeats the previous output, for
/// right- and left-padded sequences alike. With `return_sequences` the mask
/// passes on; otherwise the output has none.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, LSTM, TensorSpec};
/// # let dev = strata_native::device();
/// let mut lstm = LSTM::new(3).return_sequences(true);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = lstm.build(&[TensorSpec::new([None, Some(5), Some(2)], strata_core::DType::F32)],
///                       &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// assert_eq!(spec.to_string(), "(None, 5, 3)");
/// assert_eq!(weights.iter().map(|w| w.name.as_str()).collect::<Vec<_>>(), ["kernel", "recurrent_kernel", "bias"]);
/// // The forget gate's bias starts at one.
/// assert_eq!(weights[2].value.to_vec::<f32>().unwrap(), [0., 0., 0., 1., 1., 1., 0., 0., 0., 0., 0., 0.]);
/// let x = Tensor::ones([4, 5, 2], strata_core::DType::F32, &dev).unwrap();
/// let y = lstm.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.dims(), [4, 5, 3]);
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug)]
pub struct LSTM {
    cell: LstmCell,
    seq: Sequence,
    rng: Option<Mutex<Rng>>,
    meta: Meta,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LstmCell {
    units: usize,
    #[serde(default = "tanh")]
    activation: Activation,
    #[serde(default = "sigmoid")]
    recurrent_activation: Activation,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default = "glorot")]
    kernel_initializer: Initializer,
    #[serde(default = "orthogonal")]
    recurrent_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default = "yes")]
    unit_forget_bias: bool,
    #[serde(default)]
    kernel_regularizer: Option<Regularizer>,
    #[serde(default)]
    recurrent_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
}

named!(LSTM);
super::recurrent_builders!(LSTM, gated);

impl Clone for LSTM {
    /// A copy whose own generator (if seeded) continues from the same state.
    fn clone(&self) -> Self {
        LSTM {
            cell: self.cell.clone(),
            seq: self.seq.clone(),
            rng: super::clone_rng(&self.rng),
            meta: self.meta.clone(),
        }
    }
}

impl LSTM {
    /// An LSTM with `units` outputs and Keras' defaults: tanh, sigmoid
    /// gates, a bias with the forget gate at one, the last output only.
    pub fn new(units: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(units > 0, || format!("units must be > 0, received {units}"));
        LSTM {
            cell: LstmCell {
                units,
                activation: tanh(),
                recurrent_activation: sigmoid(),
                use_bias: true,
                kernel_initializer: glorot(),
                recurrent_initializer: orthogonal(),
                bias_initializer: zeros(),
                unit_forget_bias: true,
                kernel_regularizer: None,
                recurrent_regularizer: None,
                bias_regularizer: None,
            },
            seq: Sequence::default(),
            rng: None,
            meta,
        }
    }

    /// Whether the forget gate's bias starts at one (default true).
    pub fn unit_forget_bias(mut self, on: bool) -> Self {
        self.cell.unit_forget_bias = on;
        self
    }
}

impl LayerClass for LSTM {
    const CLASS_NAME: &'static str = "LSTM";

    fn from_config(config: &Value) -> Result<Self> {
        let (cell, seq): (LstmCell, Sequence) = rnn::split_config(Self::CLASS_NAME, config)?;
        let base = LSTM::new(cell.units);
        Ok(LSTM { cell, ..base }.with_sequence(seq))
    }
}

impl Cell for LstmCell {
    fn units(&self) -> usize {
        self.units
    }
    fn num_states(&self) -> usize {
        2
    }
    fn gates(&self) -> usize {
        4
    }
    fn input_bias(&self, w: &CellWeights) -> Result<Option<Tensor>> {
        Ok(w.bias.clone())
    }
    fn step(&self, xw: &Tensor, states: &[Tensor], w: &CellWeights, masks: &DropMasks) -> Result<Vec<Tensor>> {
        let (h, c, u) = (&states[0], &states[1], self.units);
        let z = xw.add(&recurrent_product(h, &w.recurrent, u, 0, 4, &masks.recurrent)?)?;
        let (ra, a) = (self.recurrent_activation, self.activation);
        let i = ra.apply(&gate(&z, u, 0)?)?;
        let f = ra.apply(&gate(&z, u, 1)?)?;
        let g = a.apply(&gate(&z, u, 2)?)?;
        let o = ra.apply(&gate(&z, u, 3)?)?;
        let c = f.mul(c)?.add(&i.mul(&g)?)?;
        let h = o.mul(&a.apply(&c)?)?;
        Ok(vec![h, c])
    }
}

impl LSTM {
    /// [`Layer::call_multi`] one step at a time, always: the reference the
    /// fused path is tested against.
    #[cfg(test)]
    pub(crate) fn call_unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::from_ctx(ctx, self.cell.use_bias)?;
        let p = rnn::prepare(&self.cell, &self.seq, self.rng.as_ref(), inputs, &w, ctx)?;
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }
}

/// The recurrence as one [`Tensor::lstm`] op: the same outputs as
/// [`rnn::unrolled`] on the default activations, in a few ops instead of
/// dozens per timestep.
fn fused(seq: &Sequence, p: Prepared, w: &CellWeights) -> Result<Vec<Tensor>> {
    let Prepared { mut xw, states, mut mask, .. } = p;
    let (steps, batch, units) = (xw.dims()[0], xw.dims()[1], states[0].dims()[1]);
    if seq.go_backwards {
        let reversed = Tensor::new((0..steps as i64).rev().collect::<Vec<_>>(), [steps], xw.device())?;
        xw = xw.gather(0, &reversed)?;
        mask = mask.map(|m| m.gather(0, &reversed)).transpose()?;
    }
    let all = Tensor::lstm(&xw, &w.recurrent, &states[0], &states[1], mask.as_ref())?;
    // Only the steps the outputs need: every one for the sequence, else the last.
    let (from, len) = if seq.return_sequences { (0, steps) } else { (steps - 1, 1) };
    let mut outputs = all.narrow(0, from, len)?.narrow(2, 0, units)?;
    if let (true, Some(m)) = (seq.zero_output_for_mask, &mask) {
        let m = m.narrow(0, from, len)?.unsqueeze(2)?;
        outputs = Tensor::where_cond(&m, &outputs, &outputs.zeros_like()?)?;
    }
    let last = all.narrow(0, steps - 1, 1)?.reshape([batch, 2 * units])?;
    rnn::finish(seq, outputs, vec![last.narrow(1, 0, units)?, last.narrow(1, units, units)?])
}

impl Layer for LSTM {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn arity(&self) -> Arity {
        Arity::AtLeast(1)
    }

    fn num_outputs(&self) -> usize {
        rnn::num_outputs(&self.seq, 2)
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        super::first_output(self.build_multi(inputs, ctx)?)
    }

    fn build_multi(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<Vec<TensorSpec>> {
        self.meta.check()?;
        let c = &self.cell;
        let (features, specs) = rnn::output_specs(inputs, c.units, 2, &self.seq)?;
        let u = c.units;
        let (bias_init, forget) = (c.bias_initializer, c.unit_forget_bias);
        let bias_shape = [4 * u];
        let bias = c.use_bias.then(|| {
            let init = move |rng: &mut Rng, dev: &strata_core::Device| -> Result<Tensor> {
                if !forget {
                    return bias_init.init(&[4 * u].into(), rng, dev);
                }
                let i = bias_init.init(&[u].into(), rng, dev)?;
                let f = Tensor::ones([u], DType::F32, dev)?;
                let rest = bias_init.init(&[2 * u].into(), rng, dev)?;
                Tensor::concat(&[&i, &f, &rest], 0)
            };
            (bias_shape.to_vec(), Box::new(init) as rnn::BiasInit)
        });
        let args = WeightArgs {
            kernel: (c.kernel_initializer, c.kernel_regularizer),
            recurrent: (c.recurrent_initializer, c.recurrent_regularizer),
            bias,
            bias_regularizer: c.bias_regularizer,
        };
        rnn::add_cell_weights(ctx, features, 4 * u, u, args)?;
        Ok(specs)
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        super::first_output(self.call_multi(inputs, ctx)?)
    }

    fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::from_ctx(ctx, self.cell.use_bias)?;
        let p = rnn::prepare(&self.cell, &self.seq, self.rng.as_ref(), inputs, &w, ctx)?;
        // Keras' default activations without recurrent dropout (the common
        // case) run as one fused op; anything else one step at a time.
        let fusable = self.cell.activation == Activation::Tanh && self.cell.recurrent_activation == Activation::Sigmoid;
        if fusable && p.drop.recurrent.is_empty() {
            return fused(&self.seq, p, &w);
        }
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }

    fn supports_masking(&self) -> bool {
        true
    }

    fn compute_masks(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
        Ok(rnn::output_masks(&self.seq, 2, masks))
    }

    fn config(&self) -> Value {
        rnn::join_config(&self.cell, &self.seq)
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}
