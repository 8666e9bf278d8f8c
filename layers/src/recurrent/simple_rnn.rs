//! `SimpleRNN`: Keras' fully-connected recurrent layer.

use serde::{Deserialize, Serialize};
use strata_core::{Result, Tensor};

use super::rnn::{self, recurrent_product, Cell, CellWeights, DropMasks, Sequence, WeightArgs};
use super::{glorot, orthogonal, tanh, yes, zeros};
use crate::meta::{named, LayerRng, Meta};
use crate::{Activation, CallContext, Initializer, Regularizer};

/// A fully-connected recurrent layer, as Keras 3 computes it:
/// `h' = tanh(x·kernel + bias + h·recurrent_kernel)`.
///
/// Weights as Keras: `kernel` `[features, units]`, `recurrent_kernel`
/// `[units, units]` (orthogonal), `bias` `[units]`.
///
/// # Shapes
/// - inputs: `(batch, timesteps, features)` `f32`; optionally the initial
///   state `(batch, units)` as a second input (Keras' `initial_state`)
/// - output: `(batch, units)`, or `(batch, timesteps, units)` with
///   [`return_sequences`](SimpleRNN::return_sequences); with
///   [`return_state`](SimpleRNN::return_state) also the final state (use
///   `call_multi`)
///
/// # Masks
/// A masked timestep keeps the state and repeats the previous output. With
/// `return_sequences` the mask passes on; otherwise the output has none.
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, SimpleRNN, TensorSpec};
/// # let dev = strata_native::device();
/// let mut rnn = SimpleRNN::new(2).use_bias(false).kernel_initializer("ones").recurrent_initializer("zeros");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// rnn.build(&[TensorSpec::new([None, Some(1), Some(1)], DType::F32)],
///           &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// let x = Tensor::new(vec![0.5f32], [1, 1, 1], &dev).unwrap();
/// let y = rnn.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.to_vec::<f32>().unwrap(), [0.5f32.tanh(); 2]);
/// ```
#[allow(clippy::upper_case_acronyms)]
#[derive(Clone, Debug)]
pub struct SimpleRNN {
    cell: RnnCell,
    seq: Sequence,
    rng: LayerRng,
    meta: Meta,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RnnCell {
    units: usize,
    #[serde(default = "tanh")]
    activation: Activation,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default = "glorot")]
    kernel_initializer: Initializer,
    #[serde(default = "orthogonal")]
    recurrent_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default)]
    kernel_regularizer: Option<Regularizer>,
    #[serde(default)]
    recurrent_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
}

named!(SimpleRNN);
super::recurrent_builders!(SimpleRNN);

impl SimpleRNN {
    /// A recurrent layer with `units` outputs and Keras' defaults: tanh, a
    /// bias, the last output only.
    pub fn new(units: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(units > 0, || format!("units must be > 0, received {units}"));
        SimpleRNN {
            cell: RnnCell {
                units,
                activation: tanh(),
                use_bias: true,
                kernel_initializer: glorot(),
                recurrent_initializer: orthogonal(),
                bias_initializer: zeros(),
                kernel_regularizer: None,
                recurrent_regularizer: None,
                bias_regularizer: None,
            },
            seq: Sequence::default(),
            rng: LayerRng::default(),
            meta,
        }
    }
}

impl Cell for RnnCell {
    fn units(&self) -> usize {
        self.units
    }
    fn num_states(&self) -> usize {
        1
    }
    fn gates(&self) -> usize {
        1
    }
    fn use_bias(&self) -> bool {
        self.use_bias
    }
    fn weight_args(&self) -> WeightArgs {
        WeightArgs {
            kernel: (self.kernel_initializer, self.kernel_regularizer),
            recurrent: (self.recurrent_initializer, self.recurrent_regularizer),
            bias: self.use_bias.then(|| rnn::plain_bias(self.bias_initializer, vec![self.units])),
            bias_regularizer: self.bias_regularizer,
        }
    }
    fn input_bias(&self, w: &CellWeights) -> Result<Option<Tensor>> {
        Ok(w.bias.clone())
    }
    fn step(&self, xw: &Tensor, states: &[Tensor], w: &CellWeights, masks: &DropMasks) -> Result<Vec<Tensor>> {
        let rec = recurrent_product(&states[0], &w.recurrent, self.units, 0, 1, &masks.recurrent)?;
        Ok(vec![self.activation.apply(&xw.add(&rec)?)?])
    }
}

impl SimpleRNN {
    /// The forward pass (`Layer::call_multi`).
    fn call_cell(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let w = CellWeights::of(&self.cell, ctx)?;
        rnn::run(&self.cell, &self.seq, &self.rng, inputs, &w, ctx)
    }
}

super::recurrent_layer!(SimpleRNN, RnnCell);
