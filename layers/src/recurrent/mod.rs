//! The recurrent layers: [`SimpleRNN`], [`LSTM`] and [`GRU`] (Keras'
//! `layers/rnn/`), with Keras' gate orders and weight layouts, masks,
//! `return_sequences`, `return_state`, `go_backwards`, initial states and
//! (recurrent) dropout.

mod bidirectional;
mod gru;
mod lstm;
mod rnn;
mod simple_rnn;
mod time_distributed;
mod wrapped;

pub use bidirectional::{Bidirectional, MergeMode};
pub use gru::GRU;
pub use lstm::LSTM;
pub use simple_rnn::SimpleRNN;
use strata_core::{Error, Result};
pub use time_distributed::TimeDistributed;

use crate::{Activation, Initializer};

fn tanh() -> Activation {
    Activation::Tanh
}
fn sigmoid() -> Activation {
    Activation::Sigmoid
}
fn yes() -> bool {
    true
}
fn glorot() -> Initializer {
    Initializer::GlorotUniform
}
fn orthogonal() -> Initializer {
    Initializer::Orthogonal { gain: 1.0 }
}
fn zeros() -> Initializer {
    Initializer::Zeros
}

/// The first of a recurrent layer's outputs (what `build` and `call`
/// return; the states come from `build_multi` and `call_multi`).
pub(crate) fn first_output<T>(outputs: Vec<T>) -> Result<T> {
    outputs.into_iter().next().ok_or_else(|| Error::msg("the layer returned no output"))
}

/// The builder methods every recurrent layer has: its cell's activation,
/// bias, initializers and regularizers, (with `gated`) the gates'
/// activation, and Keras' `RNN` arguments.
macro_rules! recurrent_builders {
    ($t:ident, gated) => {
        impl $t {
            /// The activation of the gates (default `sigmoid`).
            pub fn recurrent_activation(mut self, activation: impl $crate::Resolve<$crate::Activation>) -> Self {
                if let Some(a) = self.meta.keep($crate::Resolve::resolve(activation)) {
                    self.cell.recurrent_activation = a;
                }
                self
            }
        }
        super::recurrent_builders!($t);
    };
    ($t:ident) => {
        impl $t {
            /// The activation of the candidate state and output (default `tanh`).
            pub fn activation(mut self, activation: impl $crate::Resolve<$crate::Activation>) -> Self {
                if let Some(a) = self.meta.keep($crate::Resolve::resolve(activation)) {
                    self.cell.activation = a;
                }
                self
            }

            /// Whether to add a bias (default true).
            pub fn use_bias(mut self, use_bias: bool) -> Self {
                self.cell.use_bias = use_bias;
                self
            }

            /// The kernel's initializer (default `glorot_uniform`).
            pub fn kernel_initializer(mut self, init: impl $crate::Resolve<$crate::Initializer>) -> Self {
                if let Some(i) = self.meta.keep($crate::Resolve::resolve(init)) {
                    self.cell.kernel_initializer = i;
                }
                self
            }

            /// The recurrent kernel's initializer (default `orthogonal`).
            pub fn recurrent_initializer(mut self, init: impl $crate::Resolve<$crate::Initializer>) -> Self {
                if let Some(i) = self.meta.keep($crate::Resolve::resolve(init)) {
                    self.cell.recurrent_initializer = i;
                }
                self
            }

            /// The bias' initializer (default `zeros`).
            pub fn bias_initializer(mut self, init: impl $crate::Resolve<$crate::Initializer>) -> Self {
                if let Some(i) = self.meta.keep($crate::Resolve::resolve(init)) {
                    self.cell.bias_initializer = i;
                }
                self
            }

            /// Penalties on the kernel, the recurrent kernel and the bias,
            /// added to the training loss.
            pub fn regularizers(
                mut self,
                kernel: Option<$crate::Regularizer>,
                recurrent: Option<$crate::Regularizer>,
                bias: Option<$crate::Regularizer>,
            ) -> Self {
                for r in [&kernel, &recurrent, &bias].into_iter().flatten() {
                    self.meta.keep(r.validate());
                }
                self.cell.kernel_regularizer = kernel;
                self.cell.recurrent_regularizer = recurrent;
                self.cell.bias_regularizer = bias;
                self
            }

            /// Returns the output of every timestep, `(batch, timesteps,
            /// units)`, instead of the last one (default false).
            pub fn return_sequences(mut self, on: bool) -> Self {
                self.seq.return_sequences = on;
                self
            }

            /// Also returns the final states, as further outputs (default
            /// false); call the layer with `call_multi`.
            pub fn return_state(mut self, on: bool) -> Self {
                self.seq.return_state = on;
                self
            }

            /// Walks the sequence from its last timestep to its first and
            /// returns the outputs in that order (default false).
            pub fn go_backwards(mut self, on: bool) -> Self {
                self.seq.go_backwards = on;
                self
            }

            /// Outputs zeros at masked timesteps instead of repeating the
            /// previous output (default false; `Bidirectional` sets it for
            /// sequences).
            pub fn zero_output_for_mask(mut self, on: bool) -> Self {
                self.seq.zero_output_for_mask = on;
                self
            }

            /// During training, drops inputs with probability `rate`, in
            /// `[0, 1)` (one mask per call, used at every timestep).
            pub fn dropout(mut self, rate: f32) -> Self {
                self.seq.dropout = rate;
                self.check_sequence();
                self
            }

            /// During training, drops the previous output with probability
            /// `rate`, in `[0, 1)`, for the recurrent product.
            pub fn recurrent_dropout(mut self, rate: f32) -> Self {
                self.seq.recurrent_dropout = rate;
                self.check_sequence();
                self
            }

            /// Draws the dropout masks from the layer's own generator seeded
            /// with `seed` instead of the model's.
            pub fn seed(mut self, seed: u64) -> Self {
                self.seq.seed = Some(seed);
                self.rng = $crate::meta::LayerRng::new(Some(seed));
                self
            }

            fn check_sequence(&mut self) {
                if let Some(problem) = self.seq.problem() {
                    self.meta.require(false, || problem);
                }
            }

            fn with_sequence(mut self, seq: rnn::Sequence) -> Self {
                let seed = seq.seed;
                self.seq = seq;
                self.check_sequence();
                match seed {
                    Some(s) => self.seed(s),
                    None => self,
                }
            }
        }
    };
}
use recurrent_builders;

/// `LayerClass` and `Layer` for a recurrent layer `$t` with the
/// fields `cell` (its [`rnn::Cell`], of type `$cell`), `seq`, `rng` and
/// `meta`; its forward pass is its own `call_cell`.
macro_rules! recurrent_layer {
    ($t:ident, $cell:ty) => {
        impl $crate::LayerClass for $t {
            const CLASS_NAME: &'static str = stringify!($t);

            fn from_config(config: &serde_json::Value) -> strata_core::Result<Self> {
                let (cell, seq): ($cell, rnn::Sequence) = rnn::split_config(Self::CLASS_NAME, config)?;
                let base = $t::new(cell.units);
                Ok($t { cell, ..base }.with_sequence(seq))
            }
        }

        impl $crate::Layer for $t {
            fn class_name(&self) -> &str {
                <Self as $crate::LayerClass>::CLASS_NAME
            }

            fn arity(&self) -> $crate::Arity {
                $crate::Arity::AtLeast(1)
            }

            fn num_outputs(&self) -> usize {
                rnn::num_outputs(&self.seq, rnn::Cell::num_states(&self.cell))
            }

            fn build(
                &mut self,
                inputs: &[$crate::TensorSpec],
                ctx: &mut $crate::BuildContext<'_>,
            ) -> strata_core::Result<$crate::TensorSpec> {
                super::first_output(self.build_multi(inputs, ctx)?)
            }

            fn build_multi(
                &mut self,
                inputs: &[$crate::TensorSpec],
                ctx: &mut $crate::BuildContext<'_>,
            ) -> strata_core::Result<Vec<$crate::TensorSpec>> {
                self.meta.check()?;
                rnn::build(&self.cell, &self.seq, inputs, ctx)
            }

            fn call(
                &self,
                inputs: &[strata_core::Tensor],
                ctx: &mut $crate::CallContext<'_>,
            ) -> strata_core::Result<strata_core::Tensor> {
                super::first_output(self.call_multi(inputs, ctx)?)
            }

            fn call_multi(
                &self,
                inputs: &[strata_core::Tensor],
                ctx: &mut $crate::CallContext<'_>,
            ) -> strata_core::Result<Vec<strata_core::Tensor>> {
                self.call_cell(inputs, ctx)
            }

            fn supports_masking(&self) -> bool {
                true
            }

            fn compute_masks(
                &self,
                _inputs: &[strata_core::Tensor],
                masks: &[Option<strata_core::Tensor>],
            ) -> strata_core::Result<Vec<Option<strata_core::Tensor>>> {
                Ok(rnn::output_masks(&self.seq, rnn::Cell::num_states(&self.cell), masks))
            }

            fn config(&self) -> serde_json::Value {
                rnn::join_config(&self.cell, &self.seq)
            }

            fn name_hint(&self) -> Option<&str> {
                self.meta.name.as_deref()
            }
        }
    };
}
use recurrent_layer;

#[cfg(test)]
mod tests;
