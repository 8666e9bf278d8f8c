//! The attention layers: [`MultiHeadAttention`], [`Attention`] (dot-product
//! or concat scores) and [`AdditiveAttention`] (Keras' `layers/attention/`),
//! with Keras' masks, causal masks, dropout on the attention weights and the
//! scores as a second output.

mod dot_attention;
mod multi_head_attention;

pub use dot_attention::{AdditiveAttention, Attention};
pub use multi_head_attention::MultiHeadAttention;
use strata_core::{Device, Error, Result, Tensor};

/// What Keras puts in place of a masked score before the softmax.
const LARGE_NEGATIVE: f64 = -1e9;

/// `(1, tq, tv)`: one where query step `i` may see key step `j`, `j <= i`.
pub(crate) fn causal_mask(tq: usize, tv: usize, dev: &Device) -> Result<Tensor> {
    let n = tq.checked_mul(tv).ok_or_else(|| Error::SizeOverflow {
        op: "causal mask".into(),
        message: format!("{tq} × {tv} steps do not fit in usize"),
    })?;
    let mut m = Vec::new();
    m.try_reserve_exact(n).map_err(|_| Error::SizeOverflow {
        op: "causal mask".into(),
        message: format!("{tq} × {tv} steps do not fit in memory"),
    })?;
    m.extend((0..n).map(|k| if k % tv <= k / tv { 1.0f32 } else { 0.0 }));
    Tensor::new(m, [1, tq, tv], dev)
}

/// Keras' masked `Softmax` over the last axis: masked scores become
/// `-1e9` before it and the weights there zero after it (a row with
/// every step masked is all zeros). `mask` broadcasts against `scores`.
pub(crate) fn masked_softmax(scores: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
    match mask {
        None => scores.softmax(-1),
        Some(m) => {
            let filled = scores.mul(m)?.add(&m.affine(-1.0, 1.0)?.mul_scalar(LARGE_NEGATIVE)?)?;
            filled.softmax(-1)?.mul(m)
        }
    }
}

/// Checks that the first `n` inputs (query, value, key) are `(batch, steps,
/// dim)` tensors, for a layer called outside a model (a model checks its
/// inputs against their specs first).
pub(crate) fn expect_sequences(inputs: &[Tensor], n: usize) -> Result<()> {
    if inputs.len() < n.max(2) {
        return Err(Error::msg(format!("takes at least query and value, received {} inputs", inputs.len())));
    }
    for (x, what) in inputs[..n].iter().zip(["query", "value", "key"]) {
        if x.rank() != 3 {
            return Err(Error::msg(format!("needs the {what} as (batch, steps, dim), received shape {:?}", x.dims())));
        }
    }
    Ok(())
}

/// The mask of input `i`, checked to be `(batch, steps)`; `what` names the
/// input in the error.
pub(crate) fn input_mask(
    masks: &[Option<Tensor>],
    i: usize,
    (batch, steps): (usize, usize),
    what: &str,
) -> Result<Option<Tensor>> {
    match masks.get(i).cloned().flatten() {
        Some(m) if m.dims() != [batch, steps] => {
            Err(Error::msg(format!("expects a ({batch}, {steps}) mask on the {what}, received {:?}", m.dims())))
        }
        m => Ok(m),
    }
}

/// The builder methods every attention layer has (fields `dropout`,
/// `seed`, `rng`, `use_causal_mask`, `return_attention_scores`, `meta`):
/// `dropout`, `seed`, and Keras' call arguments `use_causal_mask` and
/// `return_attention_scores` as layer arguments; `$scores` describes the
/// scores' shape.
macro_rules! attention_builders {
    ($t:ident, $scores:literal) => {
        impl $t {
            /// During training, drops attention weights with probability
            /// `rate`, in `[0, 1)` (default 0).
            pub fn dropout(mut self, rate: f32) -> Self {
                self.dropout = rate;
                if let Some(p) = super::rate_problem(rate) {
                    self.meta.require(false, || p);
                }
                self
            }

            /// Draws the dropout noise from the layer's own generator seeded
            /// with `seed` instead of the model's.
            pub fn seed(mut self, seed: u64) -> Self {
                self.seed = Some(seed);
                self.rng = $crate::meta::LayerRng::new(Some(seed));
                self
            }

            /// Lets query step `t` attend only to key steps `s <= t` (Keras'
            /// call argument `use_causal_mask`; default false).
            pub fn use_causal_mask(mut self, on: bool) -> Self {
                self.use_causal_mask = on;
                self
            }

            #[doc = concat!("Also returns the attention weights `", $scores, "` as a second")]
            /// output (Keras' call argument; default false); call the layer
            /// with `call_multi`.
            pub fn return_attention_scores(mut self, on: bool) -> Self {
                self.return_attention_scores = on;
                self
            }
        }
    };
}
pub(crate) use attention_builders;

/// Checks a dropout rate for a layer's `Meta`.
pub(crate) fn rate_problem(rate: f32) -> Option<String> {
    (!(0.0..1.0).contains(&rate)).then(|| format!("dropout must be in [0, 1), received {rate}"))
}

#[cfg(test)]
mod tests;
