//! [`Model`]: a built graph of layers — what both the Functional API and
//! [`Sequential`](crate::Sequential) produce, with one execution path.

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use strata_core::{Device, Error, Result, Rng, Tensor};
use strata_layers::{BuildContext, CallContext, Layer, Regularizer, TensorSpec, Weight};

use super::functional::{CallInputs, LayerCell, SymbolicTensor};
use super::limits::ConfigLimits;

/// Concrete inputs for a model: one tensor (`&x`) or one per model input
/// (`&[a, b]`, `&[&a, &b]`, `&vec`).
pub trait ModelInputs {
    /// The tensors, in input order.
    fn into_tensors(self) -> Vec<Tensor>;
}

impl ModelInputs for &Tensor {
    fn into_tensors(self) -> Vec<Tensor> {
        vec![self.clone()]
    }
}
impl ModelInputs for &[Tensor] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.to_vec()
    }
}
impl<const N: usize> ModelInputs for &[Tensor; N] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.to_vec()
    }
}
impl ModelInputs for &Vec<Tensor> {
    fn into_tensors(self) -> Vec<Tensor> {
        self.clone()
    }
}
impl ModelInputs for &[&Tensor] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}
impl<const N: usize> ModelInputs for &[&Tensor; N] {
    fn into_tensors(self) -> Vec<Tensor> {
        self.iter().map(|t| (*t).clone()).collect()
    }
}

/// The scalars a model rebuilt from a file may still give its weights,
/// shared with the models nested in it.
pub(crate) type WeightBudget = Arc<AtomicUsize>;

/// Where and how a model's weights are created.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub(crate) device: Option<Device>,
    pub(crate) seed: Option<u64>,
    pub(crate) name: Option<String>,
    /// Set when rebuilding from a file: the scalars the weights may still
    /// take (shared with nested models), and a cap on every tensor spec.
    pub(crate) limit: Option<WeightBudget>,
    /// Bounds on a config being rebuilt ([`Model::from_config_with`]).
    pub(crate) config_limits: ConfigLimits,
}

/// The most scalars one sample of any tensor may have (unknown axes
/// counted as 2) in a model rebuilt with a size limit, i.e. loaded from a
/// file: 2^26, 256 MiB of `f32`.
pub(crate) const MAX_SPEC_ELEMENTS: usize = 1 << 26;

/// Checks a spec against [`MAX_SPEC_ELEMENTS`].
pub(crate) fn check_spec_size(spec: &TensorSpec) -> Result<()> {
    let n = spec.dims.iter().try_fold(1usize, |n, d| n.checked_mul(d.unwrap_or(2)));
    match n {
        Some(n) if n <= MAX_SPEC_ELEMENTS => Ok(()),
        _ => Err(Error::msg(format!(
            "the spec {spec} is larger than a loaded model may use ({MAX_SPEC_ELEMENTS} scalars, unknown axes \
             counted as 2)"
        ))),
    }
}

impl BuildOptions {
    /// Defaults: the device `STRATA_BACKEND` names
    /// ([`backend::from_env`](crate::backend::from_env): `native` when it is
    /// unset; a name that is not available makes the build an error) and the
    /// global seed ([`set_random_seed`](crate::set_random_seed)).
    pub fn new() -> Self {
        Self::default()
    }

    /// Creates the weights on `device`.
    pub fn device(mut self, device: &Device) -> Self {
        self.device = Some(device.clone());
        self
    }

    /// Seeds weight initialisation and dropout: the same seed gives the same
    /// initial weights on every backend.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The model's name (default `functional` or `sequential`).
    pub fn name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Bounds on the config [`Model::from_config_with`] rebuilds from
    /// (default [`ConfigLimits::default`], far above any real model).
    pub fn config_limits(mut self, limits: ConfigLimits) -> Self {
        self.config_limits = limits;
        self
    }
}

/// One layer of a built model.
pub(crate) struct LayerEntry {
    pub(crate) name: String,
    pub(crate) cell: Arc<LayerCell>,
    /// Output specs of each call of this layer (one per output), in graph order.
    pub(crate) output_specs: Vec<Vec<TensorSpec>>,
}

/// One call of a layer: which values it reads and which it writes.
pub(crate) struct Node {
    pub(crate) layer: usize,
    pub(crate) inputs: Vec<usize>,
    /// One value per output of the layer.
    pub(crate) outputs: Vec<usize>,
}

/// One model input (its value index is its position).
pub(crate) struct InputEntry {
    pub(crate) name: String,
    pub(crate) spec: TensorSpec,
}

/// What produced a value (for the summary's "Connected to" column).
#[derive(Clone)]
pub(crate) enum Producer {
    Input(usize),
    /// Output `.1` of node `.0`.
    Node(usize, usize),
}

/// A model: layers connected into a graph, built (weights created, shapes
/// inferred and checked) on one device.
///
/// Made by the Functional API ([`Model::new`]) or by
/// [`Sequential`](crate::Sequential); a model can itself be called as a
/// layer inside another model.
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let a = Input::new([32]).name("a");
/// let b = Input::new([8]).name("b");
/// let x = Concatenate::new().call(&[&a, &b])?;
/// let x = Dense::new(64).activation("relu").call(&x)?;
/// let out = Dense::new(1).activation("sigmoid").call(&x)?;
/// let model = Model::new(&[a, b], &[out])?;
/// assert_eq!(model.output_specs()[0].to_string(), "(None, 1)");
/// assert_eq!(model.count_params(), 40 * 64 + 64 + 64 + 1);
/// # Ok(()) }
/// ```
pub struct Model {
    pub(crate) name: String,
    pub(crate) named: bool,
    pub(crate) sequential: bool,
    pub(crate) layers: Vec<LayerEntry>,
    pub(crate) nodes: Vec<Node>,
    pub(crate) inputs: Vec<InputEntry>,
    pub(crate) outputs: Vec<usize>,
    pub(crate) producers: Vec<Producer>,
    pub(crate) value_specs: Vec<TensorSpec>,
    /// The symbolic tensor of every value (inputs first), so that a built
    /// model's inputs and layer outputs can start another model.
    pub(crate) symbols: Vec<SymbolicTensor>,
    pub(crate) device: Device,
    pub(crate) rng: Mutex<Rng>,
    /// What `compile` set up (optimizer, losses, metrics).
    pub(crate) compiled: Mutex<Option<super::compiled::Compiled>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.name)
            .field("class", &if self.sequential { "Sequential" } else { "Functional" })
            .field("inputs", &self.input_names())
            .field("layers", &self.layer_names())
            .field("outputs", &self.output_names())
            .field("device", &self.device.name())
            .finish()
    }
}

/// Copies of a model's weights ([`Model::snapshot_weights`]), to put back
/// later with [`Model::restore_weights`] — Keras' `get_weights` /
/// `set_weights` pair.
#[derive(Clone, Debug)]
pub struct WeightSnapshot {
    values: Vec<(String, Tensor)>,
}

impl WeightSnapshot {
    /// The copied weights by full name.
    pub fn values(&self) -> &[(String, Tensor)] {
        &self.values
    }
}

/// A built model's handle on one of its layers ([`Model::get_layer`],
/// [`Model::layers`]): its weights (shared with the model: setting them
/// changes the model), its `trainable` flag and its symbolic outputs.
pub struct LayerRef {
    name: String,
    cell: Arc<LayerCell>,
    /// The output specs and symbolic outputs of each call, in graph order.
    calls: Vec<(Vec<TensorSpec>, Vec<SymbolicTensor>)>,
}

impl std::fmt::Debug for LayerRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LayerRef").field("name", &self.name).field("class", &self.class_name()).finish()
    }
}

impl LayerRef {
    /// The layer's name in this model.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The layer's type (`"Dense"`).
    pub fn class_name(&self) -> String {
        self.cell.layer.read().map(|l| l.class_name().to_string()).unwrap_or_default()
    }

    /// The layer's constructor arguments as JSON.
    pub fn config(&self) -> Value {
        self.cell.layer.read().map(|l| l.config()).unwrap_or(Value::Null)
    }

    /// The output spec of the layer's first call.
    pub fn output_spec(&self) -> Option<&TensorSpec> {
        self.calls.first().and_then(|(specs, _)| specs.first())
    }

    /// The output of the layer's first call as a symbolic tensor, Keras'
    /// `layer.output`: a new model from the same inputs to it shares this
    /// model's weights (a feature extractor). A layer with several outputs
    /// is an error naming [`outputs`](Self::outputs).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new()
    ///     .add(Input::new([4]))
    ///     .add(Dense::new(8).activation("relu").name("features"))
    ///     .add(Dense::new(2).name("head"))
    ///     .build()?;
    /// let extractor = Model::new(&model.inputs(), &model.get_layer("features")?.output()?)?;
    /// let x = Tensor::ones([3, 4], DType::F32, model.device())?;
    /// assert_eq!(extractor.predict(&x)?.dims(), [3, 8]);
    /// // Same weights, not copies.
    /// assert_eq!(extractor.weight("features.kernel")?.id(), model.weight("features.kernel")?.id());
    /// # Ok(()) }
    /// ```
    pub fn output(&self) -> Result<SymbolicTensor> {
        let mut outs = self.outputs()?;
        match outs.len() {
            1 => Ok(outs.remove(0)),
            n => Err(Error::msg(format!("has {n} outputs; use outputs()")).in_layer(self.label())),
        }
    }

    /// Every output of the layer's first call as symbolic tensors.
    pub fn outputs(&self) -> Result<Vec<SymbolicTensor>> {
        match self.calls.first() {
            Some((_, syms)) => Ok(syms.clone()),
            None => Err(Error::msg("is not called in the model").in_layer(self.label())),
        }
    }

    /// The outputs of every call of a shared layer, one list per call in
    /// graph order.
    pub fn call_outputs(&self) -> Vec<Vec<SymbolicTensor>> {
        self.calls.iter().map(|(_, syms)| syms.clone()).collect()
    }

    /// Whether the layer is trainable (Keras' `layer.trainable`, default
    /// true).
    pub fn trainable(&self) -> bool {
        self.cell.is_trainable()
    }

    /// Freezes (`false`) or unfreezes the layer, and every layer inside it
    /// when it is a nested model, as Keras' `layer.trainable = ...`: a
    /// frozen layer's weights get no gradient and no optimizer update, count
    /// as non-trainable in `summary()`, and a frozen `BatchNormalization`
    /// runs in inference mode even in `fit`. As in Keras, a compiled model
    /// takes the change at its next `compile` (`fit` before that is an
    /// error that says so).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new()
    ///     .add(Input::new([4]))
    ///     .add(Dense::new(8).name("base"))
    ///     .add(Dense::new(2).name("head"))
    ///     .build()?;
    /// model.get_layer("base")?.set_trainable(false);
    /// assert_eq!(model.trainable_weights().len(), 2);   // head.kernel, head.bias
    /// assert_eq!(model.non_trainable_weights()[0].name, "base.kernel");
    /// # Ok(()) }
    /// ```
    pub fn set_trainable(&self, on: bool) {
        self.cell.set_trainable(on);
    }

    /// The layers of a nested model, in order; empty for any other layer.
    pub fn layers(&self) -> Vec<LayerRef> {
        self.with_model(|m| m.layers()).unwrap_or_default()
    }

    /// A layer of a nested model by name (Keras'
    /// `model.get_layer("base").get_layer("dense")`); an error if this
    /// layer is not a model or has no such layer.
    pub fn get_layer(&self, name: &str) -> Result<LayerRef> {
        self.with_model(|m| m.get_layer(name))
            .unwrap_or_else(|| Err(Error::msg(format!("is not a model, so it has no layer `{name}`"))))
            .map_err(|e| e.in_layer(self.label()))
    }

    /// `f` on the nested model this layer is, if it is one.
    fn with_model<R>(&self, f: impl FnOnce(&Model) -> R) -> Option<R> {
        let layer = self.cell.layer.read().ok()?;
        let any: &dyn std::any::Any = &**layer;
        any.downcast_ref::<Model>().map(f)
    }

    /// The layer's weights, with their short names (`kernel`, `bias`).
    pub fn weights(&self) -> Vec<Weight> {
        layer_weights(&self.cell)
    }

    /// Copies of the layer's weight values in the order of
    /// [`weights`](Self::weights) (Keras' `layer.get_weights()`).
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.weights().iter().map(|w| w.value.copy()).collect()
    }

    /// Looks up one weight by its short name.
    pub fn weight(&self, name: &str) -> Result<Tensor> {
        find_weight(&self.weights(), name)
            .map(|w| w.value.clone())
            .map_err(|have| Error::msg(format!("no weight `{name}`; it has {have}")).in_layer(self.label()))
    }

    /// Number of scalars in the layer's weights.
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(|w| w.value.numel()).sum()
    }

    /// Replaces the layer's weights, in the order of [`weights`](Self::weights)
    /// (Keras' `layer.set_weights`); each must have the same shape. Nothing
    /// changes unless every value fits.
    pub fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let ws = self.weights();
        let names: Vec<String> = ws.iter().map(|w| format!("{}.{}", self.name, w.name)).collect();
        assign_all(&ws, &names, values).map_err(|e| e.in_layer(self.label()))
    }

    fn label(&self) -> String {
        format!("{} ({})", self.name, self.class_name())
    }
}

/// Assigns `values` to `ws` (named `names` in errors) in order, after
/// checking the count and every shape, so that a mismatch changes nothing.
fn assign_all(ws: &[Weight], names: &[String], values: &[Tensor]) -> Result<()> {
    if ws.len() != values.len() {
        return Err(Error::invalid(
            "set_weights",
            format!("expects {} weight tensors, received {}", ws.len(), values.len()),
        ));
    }
    for ((w, v), name) in ws.iter().zip(values).zip(names) {
        check_assignable(name, &w.value, v)?;
    }
    for ((w, v), name) in ws.iter().zip(values).zip(names) {
        assign_checked(name, &w.value, v)?;
    }
    Ok(())
}

/// A layer's own weights followed by those of layers nested inside it.
/// A frozen layer's weights are all non-trainable.
pub(crate) fn layer_weights(cell: &LayerCell) -> Vec<Weight> {
    let mut ws = cell.weights.read().map(|w| w.clone()).unwrap_or_default();
    if let Ok(layer) = cell.layer.read() {
        ws.extend(layer.nested_weights());
    }
    if !cell.is_trainable() {
        ws.iter_mut().for_each(|w| w.trainable = false);
    }
    ws
}

/// The weight named `name`, or the list of names there are (for the error).
fn find_weight<'w>(ws: &'w [Weight], name: &str) -> std::result::Result<&'w Weight, String> {
    ws.iter().find(|w| w.name == name).ok_or_else(|| {
        let have: Vec<&str> = ws.iter().map(|w| w.name.as_str()).collect();
        format!("[{}]", have.join(", "))
    })
}

fn check_assignable(name: &str, target: &Tensor, value: &Tensor) -> Result<()> {
    if target.shape() != value.shape() || target.dtype() != value.dtype() {
        return Err(Error::invalid(
            "set_weights",
            format!(
                "`{name}` has shape {} {}, received {} {}",
                target.shape(),
                target.dtype(),
                value.shape(),
                value.dtype()
            ),
        ));
    }
    Ok(())
}

fn assign_checked(name: &str, target: &Tensor, value: &Tensor) -> Result<()> {
    check_assignable(name, target, value)?;
    let value = if value.device().same(target.device()) {
        value.clone()
    } else {
        Tensor::new(value.to_vec::<f32>()?, value.shape().clone(), target.device())?
    };
    target.assign(&value)
}

impl Model {
    /// Builds a Functional model from its inputs to its outputs on the
    /// default device: names the layers, creates their weights and infers
    /// every shape. A shape mismatch, a disconnected graph or a duplicate
    /// layer name is an error naming the layer.
    ///
    /// `inputs` and `outputs` are one symbolic tensor (`&x`) or several
    /// (`&[a, b]`).
    pub fn new(inputs: impl CallInputs, outputs: impl CallInputs) -> Result<Model> {
        Model::new_with(inputs, outputs, BuildOptions::default())
    }

    /// [`Model::new`] with an explicit device, seed or name.
    pub fn new_with(inputs: impl CallInputs, outputs: impl CallInputs, options: BuildOptions) -> Result<Model> {
        super::compiler::assemble(&inputs.into_symbols(), &outputs.into_symbols(), options, false)
    }

    /// The model's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The device its weights live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Specs of the inputs, in order.
    pub fn input_specs(&self) -> Vec<TensorSpec> {
        self.inputs.iter().map(|i| i.spec.clone()).collect()
    }

    /// Names of the inputs, in order.
    pub fn input_names(&self) -> Vec<&str> {
        self.inputs.iter().map(|i| i.name.as_str()).collect()
    }

    /// Specs of the outputs, in order.
    pub fn output_specs(&self) -> Vec<TensorSpec> {
        self.outputs.iter().map(|&o| self.value_specs[o].clone()).collect()
    }

    /// Names of the layers producing the outputs, in order (for per-output losses).
    pub fn output_names(&self) -> Vec<&str> {
        self.outputs.iter().map(|&o| self.value_source(o).0).collect()
    }

    /// Which input or layer produced value `v`, which call of that layer it
    /// was, and which of the call's outputs (Keras' `name[call][tensor]` in
    /// "Connected to" and configs).
    pub(crate) fn value_source(&self, v: usize) -> (&str, usize, usize) {
        match &self.producers[v] {
            Producer::Input(i) => (self.inputs[*i].name.as_str(), 0, 0),
            Producer::Node(n, k) => {
                let layer = self.nodes[*n].layer;
                let call = self.nodes[..*n].iter().filter(|m| m.layer == layer).count();
                (self.layers[layer].name.as_str(), call, *k)
            }
        }
    }

    /// Layer names in graph order (inputs excluded).
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// A layer by name; an unknown name is an error listing the layers.
    pub fn get_layer(&self, name: &str) -> Result<LayerRef> {
        match self.layers.iter().position(|l| l.name == name) {
            Some(index) => Ok(self.layer_ref(index)),
            None => Err(Error::invalid(
                "get_layer",
                format!("no layer named `{name}`; the model has [{}]", self.layer_names().join(", ")),
            )),
        }
    }

    /// The layers in graph order (inputs excluded), Keras' `model.layers`.
    pub fn layers(&self) -> Vec<LayerRef> {
        (0..self.layers.len()).map(|i| self.layer_ref(i)).collect()
    }

    fn layer_ref(&self, index: usize) -> LayerRef {
        let entry = &self.layers[index];
        let calls = self
            .nodes
            .iter()
            .filter(|n| n.layer == index)
            .zip(&entry.output_specs)
            .map(|(n, specs)| (specs.clone(), n.outputs.iter().map(|&v| self.symbols[v].clone()).collect()))
            .collect();
        LayerRef { name: entry.name.clone(), cell: entry.cell.clone(), calls }
    }

    /// The model's inputs as symbolic tensors (Keras' `model.inputs`), to
    /// build another model on the same graph — see [`LayerRef::output`].
    pub fn inputs(&self) -> Vec<SymbolicTensor> {
        self.symbols[..self.inputs.len()].to_vec()
    }

    /// The model's outputs as symbolic tensors (Keras' `model.outputs`):
    /// a new model from them and more layers reuses this one's layers and
    /// weights.
    pub fn outputs(&self) -> Vec<SymbolicTensor> {
        self.outputs.iter().map(|&v| self.symbols[v].clone()).collect()
    }

    /// Whether any layer is trainable (Keras' `model.trainable` after
    /// [`set_trainable`](Self::set_trainable)).
    pub fn trainable(&self) -> bool {
        self.layers.iter().any(|l| l.cell.is_trainable())
    }

    /// Freezes or unfreezes every layer, recursively into nested models
    /// (Keras' `model.trainable = ...`); see [`LayerRef::set_trainable`].
    pub fn set_trainable(&self, on: bool) {
        for l in &self.layers {
            l.cell.set_trainable(on);
        }
    }

    /// Every weight, named `"{layer}.{weight}"`, in layer order.
    pub fn weights(&self) -> Vec<Weight> {
        self.layers
            .iter()
            .flat_map(|l| {
                layer_weights(&l.cell).into_iter().map(|w| Weight { name: format!("{}.{}", l.name, w.name), ..w })
            })
            .collect()
    }

    /// The weights optimizers update.
    pub fn trainable_weights(&self) -> Vec<Weight> {
        self.weights().into_iter().filter(|w| w.trainable).collect()
    }

    /// The weights optimizers leave alone.
    pub fn non_trainable_weights(&self) -> Vec<Weight> {
        self.weights().into_iter().filter(|w| !w.trainable).collect()
    }

    /// One weight by its full name (`"dense_1.kernel"`).
    pub fn weight(&self, name: &str) -> Result<Tensor> {
        find_weight(&self.weights(), name)
            .map(|w| w.value.clone())
            .map_err(|have| Error::invalid("weight", format!("no weight named `{name}`; the model has {have}")))
    }

    /// Copies of every weight value in the order of
    /// [`weights`](Self::weights) (Keras' `model.get_weights()`).
    pub fn get_weights(&self) -> Result<Vec<Tensor>> {
        self.weights().iter().map(|w| w.value.copy()).collect()
    }

    /// Replaces every weight, in the order of [`weights`](Self::weights)
    /// (Keras' positional `model.set_weights`); the count and each shape
    /// must match, and nothing changes unless all do.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let build = |seed| Sequential::new().add(Input::new([3])).add(Dense::new(2)).seed(seed).build();
    /// let (a, b) = (build(1)?, build(2)?);
    /// b.set_weights(&a.get_weights()?)?;
    /// assert_eq!(b.weight("dense.kernel")?.to_vec::<f32>()?, a.weight("dense.kernel")?.to_vec::<f32>()?);
    /// assert!(b.set_weights(&a.get_weights()?[..1]).is_err());   // one of two
    /// # Ok(()) }
    /// ```
    pub fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let ws = self.weights();
        let names: Vec<String> = ws.iter().map(|w| w.name.clone()).collect();
        assign_all(&ws, &names, values)
    }

    /// Replaces weights by full name (`"dense.kernel"`); each must exist and
    /// have the same shape, and nothing changes unless all do. Weights not
    /// named keep their values.
    pub fn set_weights_by_name<'a>(&self, values: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<()> {
        let ws = self.weights();
        let mut picked = Vec::new();
        for (name, value) in values {
            let w = find_weight(&ws, name).map_err(|have| {
                Error::invalid("set_weights", format!("no weight named `{name}`; the model has {have}"))
            })?;
            check_assignable(name, &w.value, value)?;
            picked.push((name, w, value));
        }
        for (name, w, value) in picked {
            assign_checked(name, &w.value, value)?;
        }
        Ok(())
    }

    /// Copies every weight's current value (later training does not change
    /// the copies).
    pub fn snapshot_weights(&self) -> Result<WeightSnapshot> {
        let values = self.weights().into_iter().map(|w| Ok((w.name, w.value.copy()?))).collect::<Result<Vec<_>>>()?;
        Ok(WeightSnapshot { values })
    }

    /// Puts back weights copied by [`snapshot_weights`](Self::snapshot_weights).
    pub fn restore_weights(&self, snapshot: &WeightSnapshot) -> Result<()> {
        self.set_weights_by_name(snapshot.values.iter().map(|(n, t)| (n.as_str(), t)))
    }

    /// Total number of scalars in the weights.
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(|w| w.value.numel()).sum()
    }

    /// The sum of the weights' regularization penalties, if any weight has one.
    pub fn regularization_loss(&self) -> Result<Option<Tensor>> {
        sum_penalties(self.weights().iter().filter_map(|w| w.regularizer.map(|r| (r, &w.value))))
    }
}

/// The sum of the penalties of these regularized weights, `None` for none
/// (shared by [`Model::regularization_loss`] and the training step).
pub(crate) fn sum_penalties<'a>(
    weights: impl IntoIterator<Item = (Regularizer, &'a Tensor)>,
) -> Result<Option<Tensor>> {
    let mut total: Option<Tensor> = None;
    for (reg, value) in weights {
        let p = reg.penalty(value)?;
        total = Some(match total {
            Some(t) => t.add(&p)?,
            None => p,
        });
    }
    Ok(total)
}

impl Layer for Model {
    fn class_name(&self) -> &str {
        if self.sequential {
            "Sequential"
        } else {
            "Functional"
        }
    }

    fn arity(&self) -> strata_layers::Arity {
        strata_layers::Arity::Exactly(self.inputs.len())
    }

    fn num_outputs(&self) -> usize {
        self.outputs.len()
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        let mut specs = self.build_multi(inputs, ctx)?;
        if specs.len() != 1 {
            return Err(Error::msg(format!(
                "`{}` has {} outputs; call it with call_multi to use it as a layer",
                self.name,
                specs.len()
            )));
        }
        Ok(specs.remove(0))
    }

    fn build_multi(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<Vec<TensorSpec>> {
        for (entry, spec) in self.inputs.iter().zip(inputs) {
            let fits = spec.rank() == entry.spec.rank()
                && spec.dims.iter().zip(&entry.spec.dims).all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !fits {
                return Err(Error::msg(format!("input `{}` expects {}, received {spec}", entry.name, entry.spec)));
            }
        }
        Ok(self.outputs.iter().map(|&o| self.value_specs[o].clone()).collect())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let mut outs = self.call_multi(inputs, ctx)?;
        match outs.len() {
            1 => Ok(outs.remove(0)),
            n => Err(Error::msg(format!("`{}` has {n} outputs; call it with call_multi", self.name))),
        }
    }

    fn call_multi(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Vec<Tensor>> {
        let masks = ctx.masks().to_vec();
        let training = ctx.training();
        Ok(self.run(inputs, &masks, training, ctx.rng())?.0)
    }

    fn config(&self) -> Value {
        self.get_config()
    }

    fn name_hint(&self) -> Option<&str> {
        self.named.then_some(self.name.as_str())
    }

    fn nested_weights(&self) -> Vec<Weight> {
        self.weights()
    }
}
