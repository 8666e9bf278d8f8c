//! `GRU`: Keras' gated recurrent unit layer.

use serde::{Deserialize, Serialize};
use strata_core::{Result, Tensor};

use super::rnn::{self, gate, recurrent_product, Cell, CellWeights, DropMasks, Sequence, WeightArgs};
use super::{glorot, orthogonal, sigmoid, tanh, yes, zeros};
use crate::meta::{named, LayerRng, Meta};
use crate::{Activation, CallContext, Initializer, Regularizer};

/// Gated recurrent unit (Cho et al.), as Keras 3 computes it: with the
/// gate blocks z (update), r (reset) and h,
///
/// ```text
/// z = σ(x·W_z + b_z + h·U_z + b'_z)     r = σ(x·W_r + b_r + h·U_r + b'_r)
/// ĥ = tanh(x·W_h + b_h + r·(h·U_h + b'_h))     (reset_after, the default)
/// ĥ = tanh(x·W_h + b_h + (r·h)·U_h)            (reset_after = false)
/// h' = z·h + (1 − z)·ĥ
/// ```
///
/// Weights as Keras: `kernel` `[features, 3·units]`, `recurrent_kernel`
/// `[units, 3·units]` (orthogonal) and `bias` `[2, 3·units]` (the input and
/// the recurrent bias) with `reset_after`, `[3·units]` without.
///
/// # Shapes
/// - inputs: `(batch, timesteps, features)` `f32`; optionally the initial
///   state `(batch, units)` as a second input (Keras' `initial_state`)
/// - output: `(batch, units)`, or `(batch, timesteps, units)` with
///   [`return_sequences`](GRU::return_sequences); with
///   [`return_state`](GRU::return_state) also the final state (use
///   `call_multi`)
///
/// # Masks
/// A masked timestep keeps the state and repeats the previous output. With
/// `return_sequences` the mask passes on; otherwise the output has none.
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, GRU, TensorSpec};
/// # let dev = strata_native::device();
/// let mut gru = GRU::new(3);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = gru.build(&[TensorSpec::new([None, None, Some(2)], DType::F32)],
///                      &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// assert_eq!(spec.to_string(), "(None, 3)");
/// assert_eq!(weights[2].value.dims(), [2, 9]);   // reset_after: input and recurrent bias
/// let x = Tensor::ones([4, 6, 2], DType::F32, &dev).unwrap();
/// let y = gru.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.dims(), [4, 3]);
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct GRU {
    cell: GruCell,
    seq: Sequence,
    rng: LayerRng,
    meta: Meta,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct GruCell {
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
    reset_after: bool,
    #[serde(default)]
    kernel_regularizer: Option<Regularizer>,
    #[serde(default)]
    recurrent_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
}

named!(GRU);
super::recurrent_builders!(GRU, gated);

impl GRU {
    /// A GRU with `units` outputs and Keras' defaults: tanh, sigmoid gates,
    /// `reset_after`, the last output only.
    pub fn new(units: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(units > 0, || format!("units must be > 0, received {units}"));
        GRU {
            cell: GruCell {
                units,
                activation: tanh(),
                recurrent_activation: sigmoid(),
                use_bias: true,
                kernel_initializer: glorot(),
                recurrent_initializer: orthogonal(),
                bias_initializer: zeros(),
                reset_after: true,
                kernel_regularizer: None,
                recurrent_regularizer: None,
                bias_regularizer: None,
            },
            seq: Sequence::default(),
            rng: LayerRng::default(),
            meta,
        }
    }

    /// Whether the reset gate applies after the recurrent product (default
    /// true, Keras 3 and cuDNN's form) or before it (the original paper's).
    pub fn reset_after(mut self, on: bool) -> Self {
        self.cell.reset_after = on;
        self
    }
}

impl Cell for GruCell {
    fn units(&self) -> usize {
        self.units
    }
    fn num_states(&self) -> usize {
        1
    }
    fn gates(&self) -> usize {
        3
    }
    fn use_bias(&self) -> bool {
        self.use_bias
    }
    fn weight_args(&self) -> WeightArgs {
        let shape = if self.reset_after { vec![2, 3 * self.units] } else { vec![3 * self.units] };
        WeightArgs {
            kernel: (self.kernel_initializer, self.kernel_regularizer),
            recurrent: (self.recurrent_initializer, self.recurrent_regularizer),
            bias: self.use_bias.then(|| rnn::plain_bias(self.bias_initializer, shape)),
            bias_regularizer: self.bias_regularizer,
        }
    }
    fn input_bias(&self, w: &CellWeights) -> Result<Option<Tensor>> {
        match (&w.bias, self.reset_after) {
            (Some(b), true) => Ok(Some(b.narrow(0, 0, 1)?.reshape([3 * self.units])?)),
            (b, _) => Ok(b.clone()),
        }
    }
    fn step(&self, xw: &Tensor, states: &[Tensor], w: &CellWeights, masks: &DropMasks) -> Result<Vec<Tensor>> {
        let (h, u) = (&states[0], self.units);
        let (ra, a) = (self.recurrent_activation, self.activation);
        let rec = &masks.recurrent;
        let (z, hh) = if self.reset_after {
            let mut inner = recurrent_product(h, &w.recurrent, u, 0, 3, rec)?;
            if let Some(b) = &w.bias {
                inner = inner.add(&b.narrow(0, 1, 1)?.reshape([3 * u])?)?;
            }
            let z = ra.apply(&gate(xw, u, 0)?.add(&gate(&inner, u, 0)?)?)?;
            let r = ra.apply(&gate(xw, u, 1)?.add(&gate(&inner, u, 1)?)?)?;
            (z, a.apply(&gate(xw, u, 2)?.add(&r.mul(&gate(&inner, u, 2)?)?)?)?)
        } else {
            let inner = recurrent_product(h, &w.recurrent, u, 0, 2, rec)?;
            let z = ra.apply(&gate(xw, u, 0)?.add(&gate(&inner, u, 0)?)?)?;
            let r = ra.apply(&gate(xw, u, 1)?.add(&gate(&inner, u, 1)?)?)?;
            let rh = recurrent_product(&r.mul(h)?, &w.recurrent, u, 2, 1, rec)?;
            (z, a.apply(&gate(xw, u, 2)?.add(&rh)?)?)
        };
        // z·h + (1 − z)·ĥ
        let h = z.mul(h)?.add(&z.affine(-1.0, 1.0)?.mul(&hh)?)?;
        Ok(vec![h])
    }
}

impl GRU {
    /// The forward pass (`Layer::call_multi`).
    fn call_cell(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::of(&self.cell, ctx)?;
        let p = rnn::prepare(&self.cell, &self.seq, &self.rng, inputs, &w, ctx)?;
        // Keras' defaults (reset_after, tanh, sigmoid) without recurrent
        // dropout run as one fused op; anything else one step at a time.
        let c = &self.cell;
        let fusable =
            c.reset_after && c.activation == Activation::Tanh && c.recurrent_activation == Activation::Sigmoid;
        if fusable && p.drop.recurrent.is_empty() {
            let bias = w.bias.as_ref().map(|b| b.narrow(0, 1, 1)?.reshape([3 * c.units])).transpose()?;
            return rnn::fused(&self.seq, p, |xw, states, mask| {
                Tensor::gru(xw, &w.recurrent, bias.as_ref(), &states[0], mask)
            });
        }
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }

    /// [`call_multi`](crate::Layer::call_multi) one step at a time, always: the reference the
    /// fused path is tested against.
    #[cfg(test)]
    pub(crate) fn call_unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::of(&self.cell, ctx)?;
        let p = rnn::prepare(&self.cell, &self.seq, &self.rng, inputs, &w, ctx)?;
        rnn::unrolled(&self.cell, &self.seq, p, &w)
    }
}

super::recurrent_layer!(GRU, GruCell);
