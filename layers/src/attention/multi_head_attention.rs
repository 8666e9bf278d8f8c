//! `MultiHeadAttention`, with Keras' einsum weight layouts.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{DType, Error, LinearActivation, Result, Tensor};

use super::{causal_mask, input_mask, masked_softmax};
use crate::merging::mask_product;
use crate::meta::{from_json, named, LayerRng, Meta};
use crate::regularization::drop_with_noise_shape;
use crate::{Arity, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// Multi-head scaled dot-product attention — Keras' `MultiHeadAttention`:
/// the query, key and value are projected to `num_heads` heads
/// (`query.kernel` `(dim, heads, key_dim)`, `key.kernel`, `value.kernel`
/// `(dim, heads, value_dim)`, biases `(heads, size)`), each head attends
/// with `softmax(q·kᵀ / √key_dim)`, and `attention_output.kernel`
/// `(heads, value_dim, dim)` projects the heads back to the query's size
/// (or `output_shape`).
///
/// # Shapes
/// - inputs: `[query (batch, T, dim), value (batch, S, dim_v)]`, optionally
///   `key (batch, S, dim_k)` (the value otherwise), then with
///   [`attention_mask_input`](Self::attention_mask_input) the attention mask
///   `(batch, T, S)`: 1 where query step `t` may attend to key step `s`
/// - outputs: `(batch, T, dim)`, then with
///   [`return_attention_scores`](Self::return_attention_scores) the weights
///   `(batch, heads, T, S)`
///
/// # Masks
/// As Keras: the query's mask `(batch, T, 1)`, the value's and key's
/// `(batch, 1, S)`, the causal mask and the attention mask are combined
/// (AND); masked scores get `-1e9` before the softmax and zero weight after
/// it. The query's mask is the output's mask.
///
/// A query step with every key masked (a padded step) gets zero weights,
/// its output the projection's bias: Keras' result on its explicit path
/// (with dropout or returned scores). Keras' fused path (JAX, neither)
/// gives such a step uniform weights instead; downstream layers see the
/// step masked either way.
///
/// ```
/// use strata_core::{DType, Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, MultiHeadAttention, TensorSpec};
/// let dev = strata_native::device();
/// let mut mha = MultiHeadAttention::new(2, 4);
/// let x = TensorSpec::new([None, Some(5), Some(8)], DType::F32);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = mha.build(&[x.clone(), x], &mut BuildContext::new(&mut weights, &mut rng, &dev)).unwrap();
/// assert_eq!(spec.dims, [None, Some(5), Some(8)]);
/// assert_eq!(weights[0].name, "query.kernel");
/// assert_eq!(weights[0].value.dims(), [8, 2, 4]);
/// let t = Tensor::ones([3, 5, 8], DType::F32, &dev).unwrap();
/// let y = mha.call(&[t.clone(), t], &mut CallContext::new(false, &[None, None], &weights, &mut rng)).unwrap();
/// assert_eq!(y.dims(), [3, 5, 8]);
/// ```
#[derive(Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiHeadAttention {
    num_heads: usize,
    key_dim: usize,
    #[serde(default)]
    value_dim: Option<usize>,
    #[serde(default)]
    dropout: f32,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default)]
    output_shape: Option<OutputShape>,
    #[serde(default)]
    attention_axes: Option<Value>,
    #[serde(default)]
    use_gate: bool,
    #[serde(default)]
    sliding_window: Option<Value>,
    #[serde(default = "glorot")]
    kernel_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default)]
    kernel_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
    #[serde(default)]
    activity_regularizer: Option<Value>,
    #[serde(default)]
    kernel_constraint: Option<Value>,
    #[serde(default)]
    bias_constraint: Option<Value>,
    #[serde(default)]
    seed: Option<u64>,
    #[serde(default)]
    use_causal_mask: bool,
    #[serde(default)]
    return_attention_scores: bool,
    #[serde(default)]
    attention_mask_input: bool,
    #[serde(skip)]
    rng: LayerRng,
    #[serde(skip)]
    meta: Meta,
}

/// Keras writes `output_shape` as an int or a one-element list.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum OutputShape {
    Size(usize),
    Shape(Vec<usize>),
}

fn yes() -> bool {
    true
}
fn glorot() -> Initializer {
    Initializer::GlorotUniform
}
fn zeros() -> Initializer {
    Initializer::Zeros
}

named!(MultiHeadAttention);
super::attention_builders!(MultiHeadAttention, "(batch, heads, T, S)");

impl MultiHeadAttention {
    /// `num_heads` heads of `key_dim` each (the value heads too, unless
    /// [`value_dim`](Self::value_dim)).
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(num_heads > 0, || format!("num_heads must be > 0, received {num_heads}"));
        meta.require(key_dim > 0, || format!("key_dim must be > 0, received {key_dim}"));
        MultiHeadAttention {
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            output_shape: None,
            attention_axes: None,
            use_gate: false,
            sliding_window: None,
            kernel_initializer: glorot(),
            bias_initializer: zeros(),
            kernel_regularizer: None,
            bias_regularizer: None,
            activity_regularizer: None,
            kernel_constraint: None,
            bias_constraint: None,
            seed: None,
            use_causal_mask: false,
            return_attention_scores: false,
            attention_mask_input: false,
            rng: LayerRng::default(),
            meta,
        }
    }

    /// The size of each value head (default `key_dim`).
    pub fn value_dim(mut self, size: usize) -> Self {
        self.meta.require(size > 0, || format!("value_dim must be > 0, received {size}"));
        self.value_dim = Some(size);
        self
    }

    /// Whether the four projections have biases (default true).
    pub fn use_bias(mut self, on: bool) -> Self {
        self.use_bias = on;
        self
    }

    /// The size of the output's last axis (default the query's).
    pub fn output_shape(mut self, size: usize) -> Self {
        self.meta.require(size > 0, || format!("output_shape must be > 0, received {size}"));
        self.output_shape = Some(OutputShape::Size(size));
        self
    }

    /// The kernels' initializer (default `glorot_uniform`).
    pub fn kernel_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.kernel_initializer = i;
        }
        self
    }

    /// The biases' initializer (default `zeros`).
    pub fn bias_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.bias_initializer = i;
        }
        self
    }

    /// Penalties on the kernels and the biases, added to the training loss.
    pub fn regularizers(mut self, kernel: Option<Regularizer>, bias: Option<Regularizer>) -> Self {
        for r in [&kernel, &bias].into_iter().flatten() {
            self.meta.keep(r.validate());
        }
        self.kernel_regularizer = kernel;
        self.bias_regularizer = bias;
        self
    }

    /// Takes an attention mask `(batch, T, S)` as the last input (Keras'
    /// call argument `attention_mask`; default false).
    pub fn attention_mask_input(mut self, on: bool) -> Self {
        self.attention_mask_input = on;
        self
    }

    fn value_size(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    /// The arguments strata does not implement, as errors.
    fn unsupported(&self) -> Result<()> {
        let bad = |what: &str| Err(Error::msg(format!("{what} is not supported")));
        if self.use_gate {
            return bad("use_gate=True");
        }
        if self.attention_axes.as_ref().is_some_and(|a| !a.is_null() && a != &serde_json::json!([1])) {
            return bad("attention_axes other than the time axis");
        }
        if self.sliding_window.as_ref().is_some_and(|w| !w.is_null()) {
            return bad("sliding_window");
        }
        for (name, v) in [
            ("activity_regularizer", &self.activity_regularizer),
            ("kernel_constraint", &self.kernel_constraint),
            ("bias_constraint", &self.bias_constraint),
        ] {
            if v.as_ref().is_some_and(|v| !v.is_null()) {
                return bad(name);
            }
        }
        if let Some(OutputShape::Shape(s)) = &self.output_shape {
            if s.len() != 1 {
                return bad("an output_shape of more than one axis");
            }
        }
        Ok(())
    }

    fn output_size(&self, query: usize) -> usize {
        match &self.output_shape {
            Some(OutputShape::Size(n)) => *n,
            Some(OutputShape::Shape(s)) => s.first().copied().unwrap_or(query),
            None => query,
        }
    }

    /// How many of the inputs are query, value and key (the rest is the
    /// attention mask).
    fn sequence_inputs(&self, n: usize) -> usize {
        n - usize::from(self.attention_mask_input)
    }

    /// `x (batch, steps, dim)` projected by `{name}.kernel (dim, heads,
    /// size)` (and its bias) into `(batch, heads, steps, size)`.
    fn project(&self, x: &Tensor, name: &str, size: usize, ctx: &CallContext<'_>) -> Result<Tensor> {
        let (b, steps, dim) = (x.dims()[0], x.dims()[1], x.dims()[2]);
        let h = self.num_heads;
        let w = ctx.weight(&format!("{name}.kernel"))?.reshape([dim, h * size])?;
        let bias = if self.use_bias { Some(ctx.weight(&format!("{name}.bias"))?.reshape([h * size])?) } else { None };
        x.linear(&w, bias.as_ref(), LinearActivation::Identity)?.reshape([b, steps, h, size])?.transpose(1, 2)
    }
}

impl LayerClass for MultiHeadAttention {
    const CLASS_NAME: &'static str = "MultiHeadAttention";

    fn from_config(config: &Value) -> Result<Self> {
        let layer: MultiHeadAttention = from_json(Self::CLASS_NAME, config)?;
        // The builders' checks of the sizes and the rate, on the values read.
        let mut checked = MultiHeadAttention::new(layer.num_heads, layer.key_dim).dropout(layer.dropout);
        if let Some(v) = layer.value_dim {
            checked = checked.value_dim(v);
        }
        checked.meta.check()?;
        layer.unsupported().map_err(|e| Error::Config(format!("{}: {e}", Self::CLASS_NAME)))?;
        Ok(match layer.seed {
            Some(s) => layer.seed(s),
            None => layer,
        })
    }
}

impl Layer for MultiHeadAttention {
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
        self.unsupported()?;
        let n = self.sequence_inputs(inputs.len());
        if !(2..=3).contains(&n) {
            return Err(Error::msg(format!(
                "takes [query, value], [query, value, key]{}, received {} inputs",
                if self.attention_mask_input { " and the attention mask last" } else { "" },
                inputs.len()
            )));
        }
        let mut dims = [0usize; 3];
        for (k, (s, what)) in inputs[..n].iter().zip(["query", "value", "key"]).enumerate() {
            crate::layer::expect_float(s)?;
            match (s.rank(), s.dims.get(2).copied().flatten()) {
                (3, Some(d)) => dims[k] = d,
                _ => {
                    return Err(Error::msg(format!(
                        "needs the {what} as (batch, steps, dim) with a known dim, received {s}"
                    )))
                }
            }
        }
        let (q, v) = (&inputs[0], &inputs[1]);
        let k = if n == 3 { &inputs[2] } else { v };
        if n == 2 {
            dims[2] = dims[1];
        }
        if let (Some(a), Some(b)) = (v.dims[1], k.dims[1]) {
            if a != b {
                return Err(Error::msg(format!(
                    "needs the value and the key with one number of steps, received {v} and {k}"
                )));
            }
        }
        if self.attention_mask_input {
            let m = &inputs[n];
            let fits = |a: Option<usize>, b: Option<usize>| a.is_none() || b.is_none() || a == b;
            if m.rank() != 3 || !fits(m.dims[1], q.dims[1]) || !fits(m.dims[2], v.dims[1]) {
                return Err(Error::msg(format!(
                    "needs the attention mask as (batch, T, S) = (batch, {:?}, {:?}), received {m}",
                    q.dims[1], v.dims[1]
                )));
            }
        }
        let (h, kd, vd) = (self.num_heads, self.key_dim, self.value_size());
        let overflow = || Error::SizeOverflow {
            op: "MultiHeadAttention".into(),
            message: format!("{h} heads of {kd}/{vd} do not fit in usize"),
        };
        h.checked_mul(kd.max(vd))
            .and_then(|n| n.checked_mul(dims.iter().copied().max().unwrap_or(1)))
            .ok_or_else(overflow)?;
        let out = self.output_size(dims[0]);
        let (ki, bi) = (self.kernel_initializer, self.bias_initializer);
        let (kr, br) = (self.kernel_regularizer, self.bias_regularizer);
        for (name, dim, size) in [("query", dims[0], kd), ("key", dims[2], kd), ("value", dims[1], vd)] {
            ctx.add_weight_with(&format!("{name}.kernel"), [dim, h, size], ki, true, kr)?;
            if self.use_bias {
                ctx.add_weight_with(&format!("{name}.bias"), [h, size], bi, true, br)?;
            }
        }
        ctx.add_weight_with("attention_output.kernel", [h, vd, out], ki, true, kr)?;
        if self.use_bias {
            ctx.add_weight_with("attention_output.bias", [out], bi, true, br)?;
        }
        let mut specs = vec![TensorSpec::new(vec![q.dims[0], q.dims[1], Some(out)], DType::F32)];
        if self.return_attention_scores {
            specs.push(TensorSpec::new(vec![q.dims[0], Some(h), q.dims[1], v.dims[1]], DType::F32));
        }
        Ok(specs)
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        crate::recurrent::first_output(self.call_multi(inputs, ctx)?)
    }

    fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let n = self.sequence_inputs(inputs.len());
        if !(2..=3).contains(&n) {
            return Err(Error::msg(format!("takes [query, value] or [query, value, key], received {n} of them")));
        }
        super::expect_sequences(inputs, n)?;
        let (q, v) = (&inputs[0], &inputs[1]);
        let k = if n == 3 { &inputs[2] } else { v };
        let (b, t, s) = (q.dims()[0], q.dims()[1], v.dims()[1]);
        if v.dims()[0] != b || k.dims()[..2] != v.dims()[..2] {
            return Err(Error::msg(format!(
                "needs query (batch, T, dim), value (batch, S, dim) and key (batch, S, dim), received {:?}, {:?} and {:?}",
                q.dims(),
                v.dims(),
                k.dims()
            )));
        }
        let masks = ctx.masks().to_vec();
        let mask_of = |i: usize, steps: usize, what: &str, axis: isize| -> Result<Option<Tensor>> {
            input_mask(&masks, i, (b, steps), what)?.map(|m| m.unsqueeze(axis)).transpose()
        };
        let q_mask = mask_of(0, t, "query", 2)?;
        let v_mask = mask_of(1, s, "value", 1)?;
        let k_mask = if n == 3 { mask_of(2, s, "key", 1)? } else { None };
        let causal = if self.use_causal_mask { Some(causal_mask(t, s, q.device())?) } else { None };
        let given = if self.attention_mask_input {
            let m = &inputs[n];
            if m.dims() != [b, t, s] {
                return Err(Error::msg(format!(
                    "needs the attention mask as ({b}, {t}, {s}), received {:?}",
                    m.dims()
                )));
            }
            Some(m.cast(DType::F32)?.gt_scalar(0.5)?)
        } else {
            None
        };
        let mask = mask_product(&[q_mask, v_mask, k_mask, causal, given])?.map(|m| m.unsqueeze(1)).transpose()?;

        let query = self.project(q, "query", self.key_dim, ctx)?.mul_scalar(1.0 / (self.key_dim as f64).sqrt())?;
        let key = self.project(k, "key", self.key_dim, ctx)?;
        let value = self.project(v, "value", self.value_size(), ctx)?;
        let scores = query.matmul_t(&key, false, true)?;
        let weights = masked_softmax(&scores, mask.as_ref())?;
        let dropped = drop_with_noise_shape(&weights, weights.dims().to_vec(), self.dropout, &self.rng, ctx)?;
        let heads = dropped.matmul(&value)?.transpose(1, 2)?.reshape([b, t, self.num_heads * self.value_size()])?;
        let wo = ctx.weight("attention_output.kernel")?;
        let out = wo.dims()[2];
        let wo = wo.reshape([self.num_heads * self.value_size(), out])?;
        let bo = if self.use_bias { Some(ctx.weight("attention_output.bias")?) } else { None };
        let y = heads.linear(&wo, bo.as_ref(), LinearActivation::Identity)?;
        let mut result = vec![y];
        if self.return_attention_scores {
            result.push(weights);
        }
        Ok(result)
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
