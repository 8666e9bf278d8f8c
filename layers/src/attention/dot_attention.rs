//! `Attention` (Luong-style dot-product or concat scores) and
//! `AdditiveAttention` (Bahdanau-style), Keras' `Attention` base.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor};

use super::{causal_mask, input_mask};
use crate::merging::mask_product;
use crate::meta::{from_json, named, LayerRng, Meta};
use crate::regularization::drop_with_noise_shape;
use crate::{Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec};

/// Checks `[query, value]` or `[query, value, key]` and returns the output
/// specs: `(batch, Tq, value_dim)`, then (with `scores`) `(batch, Tq, Tv)`.
fn specs(inputs: &[TensorSpec], scores: bool) -> Result<(usize, Vec<TensorSpec>)> {
    if inputs.len() > 3 {
        return Err(Error::msg(format!(
            "takes [query, value] or [query, value, key], received {} inputs",
            inputs.len()
        )));
    }
    for (s, what) in inputs.iter().zip(["query", "value", "key"]) {
        crate::layer::expect_float(s)?;
        if s.rank() != 3 {
            return Err(Error::msg(format!("needs the {what} as (batch, timesteps, dim), received {s}")));
        }
    }
    let (q, v) = (&inputs[0], &inputs[1]);
    let k = inputs.get(2).unwrap_or(v);
    let (Some(dq), Some(dk)) = (q.dims[2], k.dims[2]) else {
        return Err(Error::msg(format!("needs known last axes, received query {q} and key {k}")));
    };
    if dq != dk {
        return Err(Error::msg(format!("needs the query and the key with one last axis, received {q} and {k}")));
    }
    if let (Some(a), Some(b)) = (v.dims[1], k.dims[1]) {
        if a != b {
            return Err(Error::msg(format!(
                "needs the value and the key with one number of steps, received {v} and {k}"
            )));
        }
    }
    let mut out = vec![TensorSpec::new(vec![q.dims[0], q.dims[1], v.dims[2]], DType::F32)];
    if scores {
        out.push(TensorSpec::new(vec![q.dims[0], q.dims[1], k.dims[1]], DType::F32));
    }
    Ok((dq, out))
}

/// The rest of Keras' `Attention.call` once the scores `(batch, Tq, Tv)`
/// are known: value mask and causal mask, softmax, dropout, the weighted
/// sum of the values, the query mask; returns the output and the weights.
fn apply_scores(
    scores: Tensor,
    inputs: &[Tensor],
    causal: bool,
    dropout: f32,
    own: &LayerRng,
    ctx: &mut CallContext<'_>,
) -> Result<Vec<Tensor>> {
    let (q, v) = (&inputs[0], &inputs[1]);
    let (batch, tq, tv) = (scores.dims()[0], scores.dims()[1], scores.dims()[2]);
    let masks = ctx.masks().to_vec();
    let q_mask = input_mask(&masks, 0, (batch, tq), "query")?;
    let v_mask = input_mask(&masks, 1, (batch, tv), "value")?.map(|m| m.unsqueeze(1)).transpose()?;
    let causal = if causal { Some(causal_mask(tq, tv, q.device())?) } else { None };
    let scores_mask = mask_product(&[v_mask, causal])?;
    // Keras subtracts 1e9 from masked scores (and does not zero them after).
    let scores = match &scores_mask {
        Some(m) => scores.add(&m.affine(-1.0, 1.0)?.mul_scalar(super::LARGE_NEGATIVE)?)?,
        None => scores,
    };
    let weights = scores.softmax(-1)?;
    let dropped = drop_with_noise_shape(&weights, weights.dims().to_vec(), dropout, own, ctx)?;
    let mut out = dropped.matmul(v)?;
    if let Some(m) = q_mask {
        out = out.mul(&m.unsqueeze(2)?)?;
    }
    Ok(vec![out, weights])
}

/// The arguments `Attention` and `AdditiveAttention` share.
macro_rules! attention_common {
    ($t:ident) => {
        named!($t);
        super::attention_builders!($t, "(batch, Tq, Tv)");

        impl $t {
            fn checked(self) -> Result<Self> {
                self.meta.check()?;
                Ok(match self.seed {
                    Some(s) => self.seed(s),
                    None => self,
                })
            }
        }

        impl LayerClass for $t {
            const CLASS_NAME: &'static str = stringify!($t);

            fn from_config(config: &Value) -> Result<Self> {
                let layer: $t = from_json(Self::CLASS_NAME, config)?;
                let rate = layer.dropout;
                layer.dropout(rate).validated()?.checked()
            }
        }

        impl Layer for $t {
            fn class_name(&self) -> &str {
                Self::CLASS_NAME
            }

            fn arity(&self) -> Arity {
                Arity::AtLeast(2)
            }

            fn num_outputs(&self) -> usize {
                if self.return_attention_scores {
                    2
                } else {
                    1
                }
            }

            fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
                crate::recurrent::first_output(self.build_multi(inputs, ctx)?)
            }

            fn build_multi(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<Vec<TensorSpec>> {
                self.meta.check()?;
                let (dim, out) = specs(inputs, self.return_attention_scores)?;
                self.add_weights(dim, ctx)?;
                Ok(out)
            }

            fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
                crate::recurrent::first_output(self.call_multi(inputs, ctx)?)
            }

            fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
                if inputs.len() > 3 {
                    return Err(Error::msg(format!(
                        "takes [query, value] or [query, value, key], received {} inputs",
                        inputs.len()
                    )));
                }
                super::expect_sequences(inputs, inputs.len())?;
                let (q, v) = (&inputs[0], &inputs[1]);
                let k = inputs.get(2).unwrap_or(v);
                if q.dims()[0] != v.dims()[0] || k.dims()[..2] != v.dims()[..2] || k.dims()[2] != q.dims()[2] {
                    return Err(Error::msg(format!(
                        "needs query (batch, Tq, dim), value (batch, Tv, value_dim) and key (batch, Tv, dim), \
                         received {:?}, {:?} and {:?}",
                        q.dims(),
                        v.dims(),
                        k.dims()
                    )));
                }
                let scores = self.scores(q, k, ctx)?;
                let mut out = apply_scores(scores, inputs, self.use_causal_mask, self.dropout, &self.rng, ctx)?;
                out.truncate(self.num_outputs());
                Ok(out)
            }

            fn supports_masking(&self) -> bool {
                true
            }

            fn compute_masks(&self, _inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
                let mut out = vec![masks.first().cloned().flatten()];
                out.resize(self.num_outputs(), None);
                Ok(out)
            }

            fn config(&self) -> Value {
                serde_json::to_value(self).unwrap_or(Value::Null)
            }

            fn name_hint(&self) -> Option<&str> {
                self.meta.name.as_deref()
            }
        }
    };
}

/// Dot-product attention — Keras' `Attention` (Luong-style): scores
/// `query · keyᵀ` (times a learned scalar `scale` with `use_scale`), or
/// with `score_mode("concat")` `w · Σ tanh(scale·(query + key))`; softmax
/// over the key steps; the output is the weighted sum of the values.
///
/// # Shapes
/// - inputs: `[query (batch, Tq, dim), value (batch, Tv, value_dim)]`,
///   optionally a `key (batch, Tv, dim)` third (the value otherwise)
/// - outputs: `(batch, Tq, value_dim)`, then with
///   [`return_attention_scores`](Self::return_attention_scores) the weights
///   `(batch, Tq, Tv)`
///
/// # Masks
/// As Keras: the value's mask keeps the query from attending to padded
/// steps (their scores lose 1e9), the query's mask zeroes the output at
/// padded query steps and is the output's mask.
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{Attention, CallContext, Layer};
/// let dev = strata_native::device();
/// let q = Tensor::new(vec![1.0f32, 0.0], [1, 1, 2], &dev).unwrap();
/// let v = Tensor::new(vec![1.0f32, 0.0, 0.0, 1.0], [1, 2, 2], &dev).unwrap();
/// let mut rng = Rng::seed(0);
/// let mut ctx = CallContext::new(false, &[None, None], &[], &mut rng);
/// let out = Attention::new().call(&[q, v], &mut ctx).unwrap();
/// // Scores [1, 0]: weights [e/(e+1), 1/(e+1)].
/// let e = std::f32::consts::E;
/// let got = out.to_vec::<f32>().unwrap();
/// assert!((got[0] - e / (e + 1.0)).abs() < 1e-6 && (got[1] - 1.0 / (e + 1.0)).abs() < 1e-6);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attention {
    #[serde(default)]
    use_scale: bool,
    #[serde(default = "dot")]
    score_mode: String,
    #[serde(default)]
    dropout: f32,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    use_causal_mask: bool,
    #[serde(default)]
    return_attention_scores: bool,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

fn dot() -> String {
    "dot".into()
}

impl Default for Attention {
    fn default() -> Self {
        Attention {
            use_scale: false,
            score_mode: dot(),
            dropout: 0.0,
            seed: None,
            use_causal_mask: false,
            return_attention_scores: false,
            rng: LayerRng::default(),
            meta: Meta::default(),
        }
    }
}

impl Attention {
    /// Dot-product scores, no scale, no dropout.
    pub fn new() -> Self {
        Attention::default()
    }

    /// Multiplies the scores by a learned scalar `scale`, initially one
    /// (default false).
    pub fn use_scale(mut self, on: bool) -> Self {
        self.use_scale = on;
        self
    }

    /// `"dot"` (default) or `"concat"`.
    pub fn score_mode(mut self, mode: &str) -> Self {
        self.score_mode = mode.to_string();
        self.meta.require(matches!(mode, "dot" | "concat"), || {
            format!("score_mode must be `dot` or `concat`, received `{mode}`")
        });
        self
    }

    fn validated(self) -> Result<Self> {
        let mode = self.score_mode.clone();
        let out = self.score_mode(&mode);
        out.meta.check()?;
        Ok(out)
    }

    fn add_weights(&self, _dim: usize, ctx: &mut BuildContext<'_>) -> Result<()> {
        if self.use_scale {
            ctx.add_weight("scale", Vec::<usize>::new(), "ones")?;
        }
        if self.score_mode == "concat" {
            ctx.add_weight("concat_score_weight", Vec::<usize>::new(), "ones")?;
        }
        Ok(())
    }

    fn scores(&self, q: &Tensor, k: &Tensor, ctx: &CallContext<'_>) -> Result<Tensor> {
        let scale = if self.use_scale { Some(ctx.weight("scale")?) } else { None };
        if self.score_mode == "concat" {
            let sum = q.unsqueeze(2)?.add(&k.unsqueeze(1)?)?;
            let sum = match &scale {
                Some(s) => sum.mul(s)?,
                None => sum,
            };
            sum.tanh()?.sum(&[-1], false)?.mul(&ctx.weight("concat_score_weight")?)
        } else {
            let s = q.matmul_t(k, false, true)?;
            match &scale {
                Some(w) => s.mul(w),
                None => Ok(s),
            }
        }
    }
}

attention_common!(Attention);

/// Additive attention — Keras' `AdditiveAttention` (Bahdanau-style):
/// scores `Σ scale · tanh(query + key)` over the last axis, with a learned
/// `scale` vector `(dim,)` (glorot-uniform; with `use_scale(false)`, ones);
/// softmax over the key steps; the output is the weighted sum of the values.
///
/// # Shapes
/// As [`Attention`].
///
/// # Masks
/// As [`Attention`].
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{AdditiveAttention, CallContext, Layer};
/// let dev = strata_native::device();
/// let q = Tensor::zeros([2, 3, 4], DType::F32, &dev).unwrap();
/// let v = Tensor::ones([2, 5, 4], DType::F32, &dev).unwrap();
/// let layer = AdditiveAttention::new().use_scale(false);
/// let mut rng = Rng::seed(0);
/// let mut ctx = CallContext::new(false, &[None, None], &[], &mut rng);
/// let out = layer.call(&[q, v], &mut ctx).unwrap();
/// assert_eq!(out.dims(), [2, 3, 4]);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdditiveAttention {
    #[serde(default = "yes")]
    use_scale: bool,
    #[serde(default)]
    dropout: f32,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    use_causal_mask: bool,
    #[serde(default)]
    return_attention_scores: bool,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

fn yes() -> bool {
    true
}

impl Default for AdditiveAttention {
    fn default() -> Self {
        AdditiveAttention {
            use_scale: true,
            dropout: 0.0,
            seed: None,
            use_causal_mask: false,
            return_attention_scores: false,
            rng: LayerRng::default(),
            meta: Meta::default(),
        }
    }
}

impl AdditiveAttention {
    /// A learned scale vector, no dropout.
    pub fn new() -> Self {
        AdditiveAttention::default()
    }

    /// Whether to learn the `scale` vector (default true).
    pub fn use_scale(mut self, on: bool) -> Self {
        self.use_scale = on;
        self
    }

    fn validated(self) -> Result<Self> {
        Ok(self)
    }

    fn add_weights(&self, dim: usize, ctx: &mut BuildContext<'_>) -> Result<()> {
        if self.use_scale {
            ctx.add_weight("scale", [dim], "glorot_uniform")?;
        }
        Ok(())
    }

    fn scores(&self, q: &Tensor, k: &Tensor, ctx: &CallContext<'_>) -> Result<Tensor> {
        let t = q.unsqueeze(2)?.add(&k.unsqueeze(1)?)?.tanh()?;
        let t = if self.use_scale { t.mul(&ctx.weight("scale")?)? } else { t };
        t.sum(&[-1], false)
    }
}

attention_common!(AdditiveAttention);
