//! The [`Layer`] trait — the one way to write a layer, built-in or custom —
//! and what the model hands a layer while building and calling it.

use std::fmt;

use serde_json::Value;
use strata_core::{DType, Device, Error, Result, Rng, Shape, Tensor};

use crate::{Initializer, Regularizer, Resolve};

/// A symbolic tensor's type: its shape with `None` for unknown axes (the
/// batch axis) and its dtype. Displays like Keras: `(None, 64)`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct TensorSpec {
    /// Axis sizes; `None` where the size is only known at run time.
    pub dims: Vec<Option<usize>>,
    /// Element type.
    pub dtype: DType,
}

impl TensorSpec {
    /// A spec with the given axis sizes and dtype.
    pub fn new(dims: impl Into<Vec<Option<usize>>>, dtype: DType) -> Self {
        TensorSpec { dims: dims.into(), dtype }
    }

    /// `(None, features...)`: a batch axis of unknown size before `features`.
    pub fn batched(features: &[usize], dtype: DType) -> Self {
        let mut dims = vec![None];
        dims.extend(features.iter().map(|&d| Some(d)));
        TensorSpec { dims, dtype }
    }

    /// Number of axes.
    pub fn rank(&self) -> usize {
        self.dims.len()
    }

    /// The size of the last axis, if there is one and it is known.
    pub fn last(&self) -> Option<usize> {
        self.dims.last().copied().flatten()
    }

    /// The same spec with another dtype.
    pub fn with_dtype(&self, dtype: DType) -> Self {
        TensorSpec { dims: self.dims.clone(), dtype }
    }

    /// The same spec with the last axis replaced by `size`.
    pub fn with_last(&self, size: usize) -> Self {
        let mut dims = self.dims.clone();
        if let Some(d) = dims.last_mut() {
            *d = Some(size);
        }
        TensorSpec { dims, dtype: self.dtype }
    }

    /// Whether a concrete tensor fits this spec (rank, known sizes, dtype).
    pub fn matches(&self, tensor: &Tensor) -> bool {
        tensor.dtype() == self.dtype
            && tensor.rank() == self.rank()
            && self.dims.iter().zip(tensor.dims()).all(|(s, &d)| s.is_none_or(|s| s == d))
    }

    /// A concrete shape, with every unknown axis set to `fill`.
    pub fn concrete(&self, fill: usize) -> Shape {
        Shape::new(self.dims.iter().map(|d| d.unwrap_or(fill)).collect::<Vec<_>>())
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(")?;
        for (i, d) in self.dims.iter().enumerate() {
            if i > 0 {
                write!(f, ", ")?;
            }
            match d {
                Some(d) => write!(f, "{d}")?,
                None => write!(f, "None")?,
            }
        }
        if self.dims.len() == 1 {
            write!(f, ",")?;
        }
        write!(f, ")")
    }
}

/// One named weight of a layer.
#[derive(Clone, Debug)]
pub struct Weight {
    /// The name within its layer (`kernel`, `bias`, `embeddings`, `gamma`, ...).
    pub name: String,
    /// The variable itself; optimizers update it in place.
    pub value: Tensor,
    /// Whether optimizers update it.
    pub trainable: bool,
    /// A penalty added to the training loss, if any.
    pub regularizer: Option<Regularizer>,
}

/// How many inputs a layer takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arity {
    /// Exactly this many.
    Exactly(usize),
    /// At least this many (merge layers).
    AtLeast(usize),
}

impl Arity {
    /// Whether `n` inputs are acceptable.
    pub fn accepts(self, n: usize) -> bool {
        match self {
            Arity::Exactly(k) => n == k,
            Arity::AtLeast(k) => n >= k,
        }
    }
}

impl fmt::Display for Arity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arity::Exactly(1) => write!(f, "exactly 1 input"),
            Arity::Exactly(k) => write!(f, "exactly {k} inputs"),
            Arity::AtLeast(k) => write!(f, "at least {k} inputs"),
        }
    }
}

/// What [`Layer::build`] receives besides the input specs: a place to create
/// named weights, the seeded random generator and the device.
pub struct BuildContext<'a> {
    weights: &'a mut Vec<Weight>,
    rng: &'a mut Rng,
    device: &'a Device,
    limit: Option<usize>,
    /// Put before every weight name (see [`BuildContext::scoped`]).
    prefix: String,
}

impl<'a> BuildContext<'a> {
    /// A context that adds weights to `weights` (used by models and tests).
    pub fn new(weights: &'a mut Vec<Weight>, rng: &'a mut Rng, device: &'a Device) -> Self {
        BuildContext { weights, rng, device, limit: None, prefix: String::new() }
    }

    /// Runs `f` with a context that names the weights it creates
    /// `"{prefix}{name}"`: how a layer that wraps other layers
    /// (`Bidirectional`) keeps their weights apart. Read them back inside
    /// [`CallContext::scoped`] with the same prefix.
    pub fn scoped<R>(&mut self, prefix: &str, f: impl FnOnce(&mut BuildContext<'_>) -> R) -> R {
        let mut inner = BuildContext {
            weights: &mut *self.weights,
            rng: &mut *self.rng,
            device: self.device,
            limit: self.limit,
            prefix: format!("{}{prefix}", self.prefix),
        };
        let out = f(&mut inner);
        self.limit = inner.limit;
        out
    }

    /// Caps the number of scalars the new weights created through this
    /// context may hold in all; a weight past the cap is an error instead of
    /// an allocation. Models rebuilt from a file use it so that a config
    /// asking for absurd sizes cannot exhaust memory.
    pub fn with_limit(mut self, max_elements: usize) -> Self {
        self.limit = Some(max_elements);
        self
    }

    /// The device the weights live on.
    pub fn device(&self) -> &Device {
        self.device
    }

    /// The seeded random generator (for layers that draw values at build time).
    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }

    /// Creates a trainable `f32` weight named `name`, or returns the existing
    /// one when the layer is built again (a shared layer called on a second
    /// input) — in which case the shape must be the same.
    ///
    /// `init` is an [`Initializer`] or its Keras name (`"glorot_uniform"`).
    pub fn add_weight(
        &mut self,
        name: &str,
        shape: impl Into<Shape>,
        init: impl Resolve<Initializer>,
    ) -> Result<Tensor> {
        self.add_weight_with(name, shape, init, true, None)
    }

    /// [`add_weight`](Self::add_weight) with every option: `trainable`, and a
    /// regularizer whose penalty is added to the training loss.
    pub fn add_weight_with(
        &mut self,
        name: &str,
        shape: impl Into<Shape>,
        init: impl Resolve<Initializer>,
        trainable: bool,
        regularizer: Option<Regularizer>,
    ) -> Result<Tensor> {
        let init = init.resolve();
        self.add_weight_fn(
            name,
            shape,
            move |shape, rng, device| init?.init(shape, rng, device),
            trainable,
            regularizer,
        )
    }

    /// [`add_weight_with`](Self::add_weight_with) with the initial value made
    /// by `init(shape, rng, device)`, which runs only when the weight is
    /// created (not when a shared layer is built again). For initial values
    /// no [`Initializer`] describes, like `LSTM`'s bias with its forget gate
    /// at one.
    pub fn add_weight_fn(
        &mut self,
        name: &str,
        shape: impl Into<Shape>,
        init: impl FnOnce(&Shape, &mut Rng, &Device) -> Result<Tensor>,
        trainable: bool,
        regularizer: Option<Regularizer>,
    ) -> Result<Tensor> {
        let shape = shape.into();
        let name = &format!("{}{name}", self.prefix);
        if let Some(existing) = self.weights.iter().find(|w| &w.name == name) {
            if existing.value.shape() != &shape {
                return Err(Error::msg(format!(
                    "weight `{name}` was built with shape {}, but these inputs need {shape}",
                    existing.value.shape()
                )));
            }
            return Ok(existing.value.clone());
        }
        if let Some(limit) = self.limit {
            let n = shape.dims().iter().try_fold(1usize, |n, &d| n.checked_mul(d));
            match n {
                Some(n) if n <= limit => self.limit = Some(limit - n),
                _ => {
                    return Err(Error::msg(format!(
                        "weight `{name}` of shape {shape} exceeds the {limit} scalars left to this build"
                    )))
                }
            }
        }
        let value = init(&shape, self.rng, self.device)?;
        if value.shape() != &shape || value.dtype() != DType::F32 {
            return Err(Error::msg(format!(
                "the initial value of weight `{name}` is {} {}, expected f32 {shape}",
                value.dtype(),
                value.shape()
            )));
        }
        let value = value.to_variable()?;
        self.weights.push(Weight { name: name.to_string(), value: value.clone(), trainable, regularizer });
        Ok(value)
    }
}

/// What [`Layer::call`] receives besides the inputs: the training flag, the
/// incoming masks, the layer's weights and a random generator.
pub struct CallContext<'a> {
    training: bool,
    masks: &'a [Option<Tensor>],
    weights: &'a [Weight],
    rng: &'a mut Rng,
    /// Put before every weight name (see [`CallContext::scoped`]).
    prefix: String,
    /// Whether the layer being called is trainable (Keras' `layer.trainable`).
    trainable: bool,
}

impl<'a> CallContext<'a> {
    /// A context (used by models and tests). `masks` has one entry per input.
    pub fn new(training: bool, masks: &'a [Option<Tensor>], weights: &'a [Weight], rng: &'a mut Rng) -> Self {
        CallContext { training, masks, weights, rng, prefix: String::new(), trainable: true }
    }

    /// The same context for a layer whose `trainable` flag is `on` (what
    /// models pass for a frozen layer; default true). See
    /// [`trainable`](Self::trainable).
    pub fn with_trainable(mut self, on: bool) -> Self {
        self.trainable = on;
        self
    }

    /// Whether the layer being called is trainable: false for a layer
    /// frozen with `set_trainable(false)`. Its weights reach `call`
    /// detached (no gradient flows into them); a layer whose training-time
    /// behaviour updates state should act as in inference when frozen, as
    /// `BatchNormalization` does (Keras' rule).
    pub fn trainable(&self) -> bool {
        self.trainable
    }

    /// Runs `f` with a context for a wrapped layer: its weights are the
    /// ones [`BuildContext::scoped`] created under `prefix`, and its inputs'
    /// masks are `masks`.
    pub fn scoped<R>(
        &mut self,
        prefix: &str,
        masks: &[Option<Tensor>],
        f: impl FnOnce(&mut CallContext<'_>) -> R,
    ) -> R {
        let mut inner = CallContext {
            training: self.training,
            masks,
            weights: self.weights,
            rng: &mut *self.rng,
            prefix: format!("{}{prefix}", self.prefix),
            trainable: self.trainable,
        };
        f(&mut inner)
    }

    /// Whether this is a training step (dropout active, ...).
    pub fn training(&self) -> bool {
        self.training
    }

    /// The first input's mask: `1.0` for steps to use, `0.0` for padding,
    /// shaped like the input without its last axis.
    pub fn mask(&self) -> Option<&Tensor> {
        self.masks.first().and_then(Option::as_ref)
    }

    /// Every input's mask, in input order.
    pub fn masks(&self) -> &[Option<Tensor>] {
        self.masks
    }

    /// The weight created in `build` under `name`.
    pub fn weight(&self, name: &str) -> Result<Tensor> {
        let full = format!("{}{name}", self.prefix);
        self.weights.iter().find(|w| w.name == full).map(|w| w.value.clone()).ok_or_else(|| {
            let have: Vec<&str> = self.weights.iter().map(|w| w.name.as_str()).collect();
            Error::msg(format!("no weight named `{full}`; this layer has [{}]", have.join(", ")))
        })
    }

    /// A random generator, seeded from the model's seed (dropout noise).
    pub fn rng(&mut self) -> &mut Rng {
        self.rng
    }
}

/// A layer, following Keras' lifecycle.
///
/// 1. **Construction** — a plain Rust value with its arguments; invalid
///    arguments are reported by `build` at the latest.
/// 2. **[`build`](Layer::build)** — called with the input specs when the
///    model is built (and again for each further call of a shared layer):
///    creates named weights with [`BuildContext::add_weight`] and returns the
///    output spec. Shape errors belong here.
/// 3. **[`call`](Layer::call)** — the forward pass on concrete tensors, with
///    the weights from [`CallContext::weight`]. Use only the [`Tensor`] API and
///    the layer runs on every backend, with gradients for free.
///
/// A custom layer is as short as in Keras:
///
/// ```
/// use strata_core::{Result, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, TensorSpec};
///
/// /// `y = x · w + b` with its own weights.
/// struct Linear { units: usize }
///
/// impl Layer for Linear {
///     fn class_name(&self) -> &str { "Linear" }
///     fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext) -> Result<TensorSpec> {
///         let features = inputs[0].last().unwrap_or(0);
///         ctx.add_weight("w", [features, self.units], "random_normal")?;
///         ctx.add_weight("b", [self.units], "zeros")?;
///         Ok(inputs[0].with_last(self.units))
///     }
///     fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Tensor> {
///         inputs[0].matmul(&ctx.weight("w")?)?.add(&ctx.weight("b")?)
///     }
/// }
/// # let _ = Linear { units: 3 }.class_name();
/// ```
///
/// The model checks the number of inputs against [`arity`](Layer::arity)
/// before calling `build` or `call`, so `inputs[0]` is always there for a
/// one-input layer, and it prefixes any error with the layer's name.
pub trait Layer: std::any::Any + Send + Sync {
    /// The type's name, as Keras writes it (`"Dense"`). Default layer names
    /// are its snake_case form plus a counter (`dense`, `dense_1`, ...).
    fn class_name(&self) -> &str;

    /// Creates the weights for these input specs and returns the output spec.
    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec>;

    /// The forward pass.
    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor>;

    /// How many inputs the layer takes (default: one).
    fn arity(&self) -> Arity {
        Arity::Exactly(1)
    }

    /// Whether the layer accepts an incoming mask. A layer that does not gets
    /// an error rather than a silently dropped mask.
    fn supports_masking(&self) -> bool {
        false
    }

    /// The output mask. By default the first input's mask passes through
    /// unchanged when [`supports_masking`](Layer::supports_masking) is true.
    fn compute_mask(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Option<Tensor>> {
        let _ = inputs;
        Ok(if self.supports_masking() { masks.first().cloned().flatten() } else { None })
    }

    /// How many tensors a call returns (default one). A layer with several
    /// outputs (`LSTM` with `return_state`, `MultiHeadAttention` returning its
    /// scores) says how many here, from its arguments alone, and implements
    /// [`build_multi`](Layer::build_multi) and [`call_multi`](Layer::call_multi);
    /// the Functional API then hands out one symbolic tensor per output
    /// (`let [out, h, c] = lstm.call_multi(&x)?`).
    fn num_outputs(&self) -> usize {
        1
    }

    /// The spec of every output, in order; by default `[build(..)]`. A layer
    /// with several outputs overrides it (and makes `build` return the first
    /// of them, so that it can be used where one output is expected).
    fn build_multi(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<Vec<TensorSpec>> {
        Ok(vec![self.build(inputs, ctx)?])
    }

    /// Every output of the forward pass, in order; by default `[call(..)]`.
    fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        Ok(vec![self.call(inputs, ctx)?])
    }

    /// The mask of every output, in order; by default
    /// `[compute_mask(..)]` followed by `None` for any further output.
    fn compute_masks(&self, inputs: &[Tensor], masks: &[Option<Tensor>]) -> Result<Vec<Option<Tensor>>> {
        let mut out = vec![self.compute_mask(inputs, masks)?];
        out.resize(self.num_outputs().max(1), None);
        Ok(out)
    }

    /// The constructor arguments as JSON, for saving and `from_config`.
    fn config(&self) -> Value {
        Value::Object(Default::default())
    }

    /// The name given at construction, if any (`Dense::new(8).name("head")`).
    fn name_hint(&self) -> Option<&str> {
        None
    }

    /// Weights owned by layers nested inside this one (a model used as a
    /// layer), named `"{inner_layer}.{weight}"`.
    fn nested_weights(&self) -> Vec<Weight> {
        Vec::new()
    }
}

/// A layer type that can be rebuilt from its config: its Keras class name,
/// written once, and the inverse of [`Layer::config`].
///
/// Every built-in layer implements it; a custom layer that does is
/// registered for loading with one call,
/// [`register_layer_class::<MyLayer>()`](crate::register_layer_class), and
/// its `class_name` can return [`Self::CLASS_NAME`](LayerClass::CLASS_NAME).
///
/// ```
/// use strata_layers::{Dense, Layer, LayerClass};
/// let dense = Dense::new(4).activation("relu");
/// assert_eq!(dense.class_name(), Dense::CLASS_NAME);
/// let back = Dense::from_config(&dense.config()).unwrap();
/// assert_eq!(back.config(), dense.config());
/// ```
pub trait LayerClass: Layer + Sized {
    /// The class name as Keras writes it (`"Dense"`): what configs and saved
    /// files store, and what [`Layer::class_name`] returns.
    const CLASS_NAME: &'static str;

    /// Rebuilds the layer from [`Layer::config`]; a config that does not fit
    /// is an error naming the class.
    fn from_config(config: &Value) -> Result<Self>;
}

/// `"Dense"` → `"dense"`, `"GlobalAveragePooling1D"` → `"global_average_pooling1d"`,
/// `"LayerNormalization"` → `"layer_normalization"` (Keras' rule).
pub fn snake_case(class_name: &str) -> String {
    // Keras: `(.)([A-Z][a-z]+)` → `\1_\2`, then `([a-z])([A-Z])` → `\1_\2`, lower-cased.
    let chars: Vec<char> = class_name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if i > 0 && c.is_ascii_uppercase() {
            let starts_word = chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
            if starts_word || chars[i - 1].is_ascii_lowercase() {
                out.push('_');
            }
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

/// Checks that a layer received `expected` rank (for messages like
/// `expects rank 3 input (batch, steps, features), received (None, 8)`).
pub fn expect_rank(spec: &TensorSpec, expected: usize, what: &str) -> Result<()> {
    if spec.rank() != expected {
        return Err(Error::msg(format!("expects rank {expected} input {what}, received {spec}")));
    }
    Ok(())
}

/// Checks that a layer received a float input.
pub fn expect_float(spec: &TensorSpec) -> Result<()> {
    if spec.dtype != DType::F32 {
        return Err(Error::msg(format!("expects f32 input, received {} {spec}", spec.dtype)));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_displays_like_keras() {
        assert_eq!(TensorSpec::batched(&[64], DType::F32).to_string(), "(None, 64)");
        assert_eq!(TensorSpec::batched(&[], DType::F32).to_string(), "(None,)");
        assert_eq!(TensorSpec::batched(&[10, 8], DType::F32).to_string(), "(None, 10, 8)");
    }

    #[test]
    fn snake_case_follows_keras() {
        assert_eq!(snake_case("Dense"), "dense");
        assert_eq!(snake_case("GlobalAveragePooling1D"), "global_average_pooling1d");
        assert_eq!(snake_case("LayerNormalization"), "layer_normalization");
        assert_eq!(snake_case("InputLayer"), "input_layer");
        assert_eq!(snake_case("MyLinear"), "my_linear");
    }
}
