//! The Functional API's symbolic side: [`Input`], [`SymbolicTensor`],
//! calling a layer on symbolic tensors ([`LayerExt::call`]) and sharing a
//! layer between calls ([`SharedLayer`]).

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use strata_core::{DType, Error, Result};
use strata_layers::{Layer, TensorSpec, Weight};

static NEXT_ID: AtomicU64 = AtomicU64::new(0);

fn next_id() -> u64 {
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

/// A layer and the weights it created, shared by every node that calls it.
pub(crate) struct LayerCell {
    pub(crate) id: u64,
    pub(crate) layer: RwLock<Box<dyn Layer>>,
    pub(crate) weights: RwLock<Vec<Weight>>,
    /// A name that wins over the layer's own hint (a model rebuilt from its
    /// config keeps every layer's saved name, so weight names match).
    pub(crate) name: Option<String>,
    /// Keras' `layer.trainable`: when false its weights get no gradient
    /// and no update, and a `BatchNormalization` runs in inference mode.
    pub(crate) trainable: AtomicBool,
}

impl LayerCell {
    pub(crate) fn new(layer: Box<dyn Layer>) -> Arc<LayerCell> {
        LayerCell::named(layer, None)
    }

    pub(crate) fn named(layer: Box<dyn Layer>, name: Option<String>) -> Arc<LayerCell> {
        Arc::new(LayerCell {
            id: next_id(),
            layer: RwLock::new(layer),
            weights: RwLock::new(Vec::new()),
            name,
            trainable: AtomicBool::new(true),
        })
    }

    /// Whether the layer is trainable (Keras' `layer.trainable`).
    pub(crate) fn is_trainable(&self) -> bool {
        self.trainable.load(Ordering::Relaxed)
    }

    /// Sets the flag, and that of every layer inside a nested model, as
    /// Keras' setter does.
    pub(crate) fn set_trainable(&self, on: bool) {
        self.trainable.store(on, Ordering::Relaxed);
        if let Ok(layer) = self.layer.read() {
            let any: &dyn std::any::Any = &**layer;
            if let Some(model) = any.downcast_ref::<crate::Model>() {
                model.set_trainable(on);
            }
        }
    }
}

/// One call of a layer on symbolic inputs; each of its outputs is a
/// [`SymbolicTensor`] pointing here with its index.
pub(crate) struct CallSite {
    pub(crate) id: u64,
    pub(crate) layer: Arc<LayerCell>,
    pub(crate) inputs: Vec<SymbolicTensor>,
}

pub(crate) enum SymKind {
    Input { name: Option<String>, spec: TensorSpec },
    Call { site: Arc<CallSite>, index: usize },
}

pub(crate) struct SymNode {
    pub(crate) id: u64,
    pub(crate) kind: SymKind,
    /// An error from building this tensor (reported by `Model::new`).
    pub(crate) pending: Option<String>,
}

/// A placeholder for a tensor in a Functional model: the output of
/// [`Input::new`] or of a layer called on other symbolic tensors. Shapes are
/// inferred, and checked, when [`Model::new`](crate::Model::new) builds the
/// graph.
#[derive(Clone)]
pub struct SymbolicTensor(pub(crate) Arc<SymNode>);

impl SymbolicTensor {
    pub(crate) fn input(name: Option<String>, spec: TensorSpec) -> Self {
        SymbolicTensor(Arc::new(SymNode { id: next_id(), kind: SymKind::Input { name, spec }, pending: None }))
    }

    /// Output `index` of `site` (the same value as every other symbolic
    /// tensor for it).
    pub(crate) fn of_call(site: &Arc<CallSite>, index: usize) -> Self {
        SymbolicTensor(Arc::new(SymNode {
            id: next_id(),
            kind: SymKind::Call { site: site.clone(), index },
            pending: None,
        }))
    }

    fn with_pending(&self, message: String) -> Self {
        let kind = match &self.0.kind {
            SymKind::Input { name, spec } => SymKind::Input { name: name.clone(), spec: spec.clone() },
            SymKind::Call { site, index } => SymKind::Call { site: site.clone(), index: *index },
        };
        let pending = self.0.pending.clone().or(Some(message));
        SymbolicTensor(Arc::new(SymNode { id: self.0.id, kind, pending }))
    }

    /// Names an input (`Input::new([32]).name("a")`). Only inputs can be
    /// named this way; on a layer's output the call is reported as an error
    /// by `Model::new` (name the layer instead).
    pub fn name(self, name: &str) -> Self {
        match &self.0.kind {
            SymKind::Input { spec, .. } => SymbolicTensor::input(Some(name.to_string()), spec.clone()),
            SymKind::Call { .. } => self.with_pending(format!(
                "`.name(\"{name}\")` was called on a layer's output; name the layer instead (e.g. Dense::new(8).name(\"{name}\"))"
            )),
        }
    }

    /// Sets an input's dtype (default `f32`; token ids for an `Embedding` are
    /// usually `i64`). Only inputs have a settable dtype.
    pub fn dtype(self, dtype: DType) -> Self {
        match &self.0.kind {
            SymKind::Input { name, spec } => SymbolicTensor::input(name.clone(), spec.with_dtype(dtype)),
            SymKind::Call { .. } => self.with_pending(format!(
                "`.dtype({dtype})` was called on a layer's output; only Input::new(..) has a settable dtype"
            )),
        }
    }

    /// The spec of an input (`None` for a layer's output, whose spec is
    /// inferred when the model is built).
    pub fn input_spec(&self) -> Option<&TensorSpec> {
        match &self.0.kind {
            SymKind::Input { spec, .. } => Some(spec),
            SymKind::Call { .. } => None,
        }
    }
}

impl fmt::Debug for SymbolicTensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.kind {
            SymKind::Input { name, spec } => {
                write!(f, "SymbolicTensor(Input {} {spec} {})", name.as_deref().unwrap_or("input_layer"), spec.dtype)
            }
            SymKind::Call { site, index } => {
                let class = site.layer.layer.read().map(|l| l.class_name().to_string()).unwrap_or_default();
                write!(f, "SymbolicTensor(output {index} of {class} on {} input(s))", site.inputs.len())
            }
        }
    }
}

/// A model input's shape without the batch axis: `[784]`, `vec![10, 8]`, or
/// with unknown sizes `[None, Some(8)]` (variable-length sequences).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InputShape(pub Vec<Option<usize>>);

impl<const N: usize> From<[usize; N]> for InputShape {
    fn from(d: [usize; N]) -> Self {
        InputShape(d.iter().map(|&d| Some(d)).collect())
    }
}
impl<const N: usize> From<[Option<usize>; N]> for InputShape {
    fn from(d: [Option<usize>; N]) -> Self {
        InputShape(d.to_vec())
    }
}
impl From<Vec<usize>> for InputShape {
    fn from(d: Vec<usize>) -> Self {
        InputShape(d.into_iter().map(Some).collect())
    }
}
impl From<&[usize]> for InputShape {
    fn from(d: &[usize]) -> Self {
        InputShape(d.iter().map(|&d| Some(d)).collect())
    }
}
impl From<Vec<Option<usize>>> for InputShape {
    fn from(d: Vec<Option<usize>>) -> Self {
        InputShape(d)
    }
}

/// A model input, Keras' `keras.Input`: a shape without the batch axis.
///
/// ```
/// use strata::prelude::*;
/// let tokens = Input::new([None]).dtype(DType::I64).name("tokens");
/// assert_eq!(tokens.input_spec().unwrap().to_string(), "(None, None)");
/// ```
pub struct Input;

impl Input {
    /// A `f32` input of this shape (batch axis excluded); set a name with
    /// [`SymbolicTensor::name`] and a dtype with [`SymbolicTensor::dtype`].
    #[allow(clippy::new_ret_no_self)]
    pub fn new(shape: impl Into<InputShape>) -> SymbolicTensor {
        let mut dims = vec![None];
        dims.extend(shape.into().0);
        SymbolicTensor::input(None, TensorSpec::new(dims, DType::F32))
    }
}

/// What a layer can be called on: one symbolic tensor or several.
pub trait CallInputs {
    /// The symbolic tensors, in order.
    fn into_symbols(self) -> Vec<SymbolicTensor>;
}

impl CallInputs for &SymbolicTensor {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        vec![self.clone()]
    }
}
impl CallInputs for &[&SymbolicTensor] {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        self.iter().map(|s| (*s).clone()).collect()
    }
}
impl<const N: usize> CallInputs for &[&SymbolicTensor; N] {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        self.iter().map(|s| (*s).clone()).collect()
    }
}
impl CallInputs for &[SymbolicTensor] {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        self.to_vec()
    }
}
impl<const N: usize> CallInputs for &[SymbolicTensor; N] {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        self.to_vec()
    }
}
impl CallInputs for &Vec<SymbolicTensor> {
    fn into_symbols(self) -> Vec<SymbolicTensor> {
        self.clone()
    }
}

/// A layer that can be called several times, sharing its weights between
/// the calls (Keras' shared layers). Cheap to clone.
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let (a, b) = (Input::new([8]), Input::new([8]));
/// let shared = Dense::new(4).shared();
/// let (ya, yb) = (shared.call(&a)?, shared.call(&b)?);
/// let model = Model::new(&[a, b], &[ya, yb])?;
/// assert_eq!(model.count_params(), 8 * 4 + 4);     // one set of weights
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct SharedLayer(pub(crate) Arc<LayerCell>);

impl SharedLayer {
    /// Wraps `layer` for sharing.
    pub fn new(layer: impl Layer) -> Self {
        SharedLayer(LayerCell::new(Box::new(layer)))
    }

    /// Wraps an already boxed layer for sharing.
    pub fn from_box(layer: Box<dyn Layer>) -> Self {
        SharedLayer(LayerCell::new(layer))
    }

    /// Applies the layer to symbolic inputs, recording the call in the graph.
    /// The number of inputs is checked here; shapes when the model is built.
    /// A layer with several outputs is called with
    /// [`call_multi`](Self::call_multi) instead.
    pub fn call(&self, inputs: impl CallInputs) -> Result<SymbolicTensor> {
        let [y] = self.call_multi(inputs)?;
        Ok(y)
    }

    /// Applies a layer with `N` outputs (`LSTM` with `return_state`) and
    /// returns one symbolic tensor per output:
    /// `let [out, h, c] = lstm.call_multi(&x)?`. A count that differs from
    /// the layer's [`num_outputs`](Layer::num_outputs) is an error.
    pub fn call_multi<const N: usize>(&self, inputs: impl CallInputs) -> Result<[SymbolicTensor; N]> {
        let outputs = self.call_outputs(inputs)?;
        let n = outputs.len();
        outputs.try_into().map_err(|_| {
            let hint =
                if N == 1 { "; use call_multi (`let [a, b, ..] = layer.call_multi(&x)?`) or call_outputs" } else { "" };
            self.error(format!("returns {n} tensor(s), but {N} were asked for{hint}"))
        })
    }

    /// Applies the layer and returns all of its outputs, however many.
    pub fn call_outputs(&self, inputs: impl CallInputs) -> Result<Vec<SymbolicTensor>> {
        let inputs = inputs.into_symbols();
        let layer = self.0.layer.read().map_err(|_| Error::msg("layer lock poisoned"))?;
        let arity = layer.arity();
        let n = layer.num_outputs();
        drop(layer);
        if !arity.accepts(inputs.len()) {
            return Err(self.error(format!("takes {arity}, received {}", inputs.len())));
        }
        if n == 0 {
            return Err(self.error("declares 0 outputs; a layer returns at least one tensor".into()));
        }
        let site = Arc::new(CallSite { id: next_id(), layer: self.0.clone(), inputs });
        Ok((0..n)
            .map(|index| {
                SymbolicTensor(Arc::new(SymNode {
                    id: next_id(),
                    kind: SymKind::Call { site: site.clone(), index },
                    pending: None,
                }))
            })
            .collect())
    }

    /// An error prefixed with the layer's name and class.
    fn error(&self, message: String) -> Error {
        let (class, hint) = match self.0.layer.read() {
            Ok(l) => (l.class_name().to_string(), l.name_hint().map(str::to_string)),
            Err(_) => (String::new(), None),
        };
        let name = self.0.name.clone().or(hint).unwrap_or_else(|| strata_layers::snake_case(&class));
        Error::msg(message).in_layer(format!("{name} ({class})"))
    }
}

/// Functional-API methods for every [`Layer`]: `Dense::new(64).call(&x)?`.
///
/// `call` takes the layer by value (each call makes a new layer); use
/// [`shared`](LayerExt::shared) to call one layer several times.
pub trait LayerExt: Layer + Sized {
    /// Applies a new layer to symbolic inputs.
    fn call(self, inputs: impl CallInputs) -> Result<SymbolicTensor> {
        SharedLayer::new(self).call(inputs)
    }

    /// Makes the layer shareable between several calls.
    fn shared(self) -> SharedLayer {
        SharedLayer::new(self)
    }

    /// Applies a new layer with `N` outputs: `let [out, h, c] = lstm.call_multi(&x)?`.
    fn call_multi<const N: usize>(self, inputs: impl CallInputs) -> Result<[SymbolicTensor; N]> {
        SharedLayer::new(self).call_multi(inputs)
    }

    /// Applies a new layer and returns all of its outputs.
    fn call_outputs(self, inputs: impl CallInputs) -> Result<Vec<SymbolicTensor>> {
        SharedLayer::new(self).call_outputs(inputs)
    }
}

impl<L: Layer> LayerExt for L {}
