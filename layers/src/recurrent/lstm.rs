//! `LSTM`: Keras' long short-term memory layer.

use serde::{Deserialize, Serialize};
use strata_core::{DType, Result, Rng, Tensor};

use super::rnn::{self, gate, recurrent_product, Cell, CellWeights, DropMasks, Sequence, WeightArgs};
use super::{glorot, orthogonal, sigmoid, tanh, yes, zeros};
use crate::meta::{named, LayerRng, Meta};
use crate::{Activation, CallContext, Initializer, Regularizer};

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
#[derive(Clone, Debug)]
pub struct LSTM {
    cell: LstmCell,
    seq: Sequence,
    rng: LayerRng,
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
            rng: LayerRng::default(),
            meta,
        }
    }

    /// Whether the forget gate's bias starts at one (default true).
    pub fn unit_forget_bias(mut self, on: bool) -> Self {
        self.cell.unit_forget_bias = on;
        self
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
    fn use_bias(&self) -> bool {
        self.use_bias
    }
    fn weight_args(&self) -> WeightArgs {
        let (u, init) = (self.units, self.bias_initializer);
        // Keras' unit_forget_bias: the bias initializer's draws for the i
        // block and then the c, o blocks, with the forget block at one.
        let bias = match self.unit_forget_bias {
            false => rnn::plain_bias(init, vec![4 * u]),
            true => {
                let forget = move |rng: &mut Rng, dev: &strata_core::Device| -> Result<Tensor> {
                    let i = init.init(&[u].into(), rng, dev)?;
                    let f = Tensor::ones([u], DType::F32, dev)?;
                    let rest = init.init(&[2 * u].into(), rng, dev)?;
                    Tensor::concat(&[&i, &f, &rest], 0)
                };
                (vec![4 * u], Box::new(forget) as rnn::BiasInit)
            }
        };
        WeightArgs {
            kernel: (self.kernel_initializer, self.kernel_regularizer),
            recurrent: (self.recurrent_initializer, self.recurrent_regularizer),
            bias: self.use_bias.then_some(bias),
            bias_regularizer: self.bias_regularizer,
        }
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
    /// [`call_multi`](crate::Layer::call_multi) one step at a time, always: the reference the
    /// fused path is tested against.
    #[cfg(test)]
    pub(crate) fn call_unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::of(&self.cell, ctx)?;
        let p = rnn::prepare(&self.cell, &self.seq, &self.rng, inputs, &w, ctx)?;
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }
}

impl LSTM {
    /// The forward pass (`Layer::call_multi`).
    fn call_cell(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::of(&self.cell, ctx)?;
        let p = rnn::prepare(&self.cell, &self.seq, &self.rng, inputs, &w, ctx)?;
        // Keras' default activations without recurrent dropout (the common
        // case) run as one fused op; anything else one step at a time.
        let fusable = self.cell.activation == Activation::Tanh && self.cell.recurrent_activation == Activation::Sigmoid;
        if fusable && p.drop.recurrent.is_empty() {
            return rnn::fused(&self.seq, p, |xw, states, mask| {
                Tensor::lstm(xw, &w.recurrent, &states[0], &states[1], mask)
            });
        }
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }
}

super::recurrent_layer!(LSTM, LstmCell);
