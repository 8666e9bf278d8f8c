//! [`Model`]: a built graph of layers — what both the Functional API and
//! [`Sequential`](crate::Sequential) produce, with one execution path.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};
use strata_core::{Device, Error, Result, Rng, Tensor};
use strata_layers::{snake_case, BuildContext, CallContext, Layer, TensorSpec, Weight};

use crate::symbolic::{CallInputs, LayerCell, SymKind, SymbolicTensor};

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

/// Where and how a model's weights are created.
#[derive(Clone, Debug, Default)]
pub struct BuildOptions {
    pub(crate) device: Option<Device>,
    pub(crate) seed: Option<u64>,
    pub(crate) name: Option<String>,
    /// Set when rebuilding from a file: the scalars the weights may still
    /// take (shared with nested models), and a cap on every tensor spec.
    pub(crate) limit: Option<Arc<AtomicUsize>>,
}

/// The most scalars one sample of any tensor may have (unknown axes
/// counted as 2) in a model rebuilt with a size limit, i.e. loaded from a
/// file: 2^26, 256 MiB of `f32`.
pub(crate) const MAX_SPEC_ELEMENTS: usize = 1 << 26;

/// Checks a spec against [`MAX_SPEC_ELEMENTS`].
fn check_spec_size(spec: &TensorSpec) -> Result<()> {
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
    /// Defaults: [`backend::default_device`](crate::backend::default_device)
    /// and the global seed ([`set_random_seed`](crate::set_random_seed)).
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
}

/// One layer of a built model.
pub(crate) struct LayerEntry {
    pub(crate) name: String,
    pub(crate) cell: Arc<LayerCell>,
    /// Output spec of each call of this layer, in graph order.
    pub(crate) output_specs: Vec<TensorSpec>,
}

/// One call of a layer: which values it reads and which it writes.
pub(crate) struct Node {
    pub(crate) layer: usize,
    pub(crate) inputs: Vec<usize>,
    pub(crate) output: usize,
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
    Node(usize),
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
    pub(crate) device: Device,
    pub(crate) rng: Mutex<Rng>,
    /// What `compile` set up (optimizer, losses, metrics).
    pub(crate) compiled: Mutex<Option<crate::training::Compiled>>,
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

/// A built model's view of one of its layers ([`Model::get_layer`]).
pub struct LayerRef<'m> {
    model: &'m Model,
    index: usize,
}

impl LayerRef<'_> {
    fn entry(&self) -> &LayerEntry {
        &self.model.layers[self.index]
    }

    /// The layer's name in this model.
    pub fn name(&self) -> &str {
        &self.entry().name
    }

    /// The layer's type (`"Dense"`).
    pub fn class_name(&self) -> String {
        self.entry().cell.layer.read().map(|l| l.class_name().to_string()).unwrap_or_default()
    }

    /// The layer's constructor arguments as JSON.
    pub fn config(&self) -> Value {
        self.entry().cell.layer.read().map(|l| l.config()).unwrap_or(Value::Null)
    }

    /// The output spec of the layer's first call.
    pub fn output_spec(&self) -> Option<&TensorSpec> {
        self.entry().output_specs.first()
    }

    /// The layer's weights, with their short names (`kernel`, `bias`).
    pub fn weights(&self) -> Vec<Weight> {
        layer_weights(&self.entry().cell)
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

    /// Replaces the layer's weights, in the order of [`weights`](Self::weights);
    /// each must have the same shape.
    pub fn set_weights(&self, values: &[Tensor]) -> Result<()> {
        let ws = self.weights();
        if ws.len() != values.len() {
            return Err(Error::msg(format!("expects {} weight tensors, received {}", ws.len(), values.len()))
                .in_layer(self.label()));
        }
        for (w, v) in ws.iter().zip(values) {
            assign_checked(&format!("{}.{}", self.name(), w.name), &w.value, v)?;
        }
        Ok(())
    }

    fn label(&self) -> String {
        format!("{} ({})", self.name(), self.class_name())
    }
}

/// A layer's own weights followed by those of layers nested inside it.
pub(crate) fn layer_weights(cell: &LayerCell) -> Vec<Weight> {
    let mut ws = cell.weights.read().map(|w| w.clone()).unwrap_or_default();
    if let Ok(layer) = cell.layer.read() {
        ws.extend(layer.nested_weights());
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

fn assign_checked(name: &str, target: &Tensor, value: &Tensor) -> Result<()> {
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
    let value = if value.device().same(target.device()) {
        value.clone()
    } else {
        Tensor::new(value.to_vec::<f32>()?, value.shape().clone(), target.device())?
    };
    target.assign(&value)
}

/// The seed used when none is given: the one set with
/// [`set_random_seed`](crate::set_random_seed), else a fresh one per model.
fn default_seed() -> u64 {
    crate::global_seed().unwrap_or_else(|| {
        use std::hash::{BuildHasher, Hasher};
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_u64(
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64),
        );
        h.finish()
    })
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
        Model::assemble(&inputs.into_symbols(), &outputs.into_symbols(), options, false)
    }

    pub(crate) fn assemble(
        inputs: &[SymbolicTensor],
        outputs: &[SymbolicTensor],
        options: BuildOptions,
        sequential: bool,
    ) -> Result<Model> {
        let device = match options.device {
            Some(d) => d,
            None => crate::backend::from_env()?,
        };
        let mut rng = Rng::seed(options.seed.unwrap_or_else(default_seed));
        let limit = options.limit.clone();
        if inputs.is_empty() {
            return Err(Error::Graph("a model needs at least one input (Input::new(shape))".into()));
        }
        if outputs.is_empty() {
            return Err(Error::Graph("a model needs at least one output".into()));
        }

        // Inputs: declared, unique, and made by Input::new.
        let mut value_of: HashMap<u64, usize> = HashMap::new();
        let mut producers = Vec::new();
        let mut value_specs: Vec<TensorSpec> = Vec::new();
        let mut input_names: Vec<Option<String>> = Vec::new();
        let mut input_specs = Vec::new();
        for (i, sym) in inputs.iter().enumerate() {
            if let Some(p) = &sym.0.pending {
                return Err(Error::Graph(p.clone()));
            }
            let SymKind::Input { name, spec } = &sym.0.kind else {
                return Err(Error::Graph(format!(
                    "model input {i} is a layer's output; model inputs must be made with Input::new(shape)"
                )));
            };
            if value_of.insert(sym.0.id, i).is_some() {
                return Err(Error::Graph(format!("model input {i} is listed twice")));
            }
            if limit.is_some() {
                check_spec_size(spec).map_err(|e| Error::Graph(format!("model input {i}: {e}")))?;
            }
            producers.push(Producer::Input(i));
            value_specs.push(spec.clone());
            input_names.push(name.clone());
            input_specs.push(spec.clone());
        }

        // Walk back from the outputs (iteratively) to order the calls.
        let mut order: Vec<SymbolicTensor> = Vec::new();
        let mut state: HashMap<u64, bool> = HashMap::new(); // false: on the stack, true: done
        let mut used_inputs: HashSet<u64> = HashSet::new();
        for (oi, out) in outputs.iter().enumerate() {
            let mut stack: Vec<(SymbolicTensor, bool)> = vec![(out.clone(), false)];
            while let Some((sym, expanded)) = stack.pop() {
                if let Some(p) = &sym.0.pending {
                    return Err(Error::Graph(p.clone()));
                }
                let id = sym.0.id;
                match &sym.0.kind {
                    SymKind::Input { name, .. } => {
                        if !value_of.contains_key(&id) {
                            let name = name.as_deref().unwrap_or("input_layer");
                            return Err(Error::Graph(format!(
                                "disconnected: output {oi} depends on the input `{name}`, which is not among the \
                                 model's {} input(s); pass it to Model::new",
                                inputs.len()
                            )));
                        }
                        used_inputs.insert(id);
                    }
                    SymKind::Call { inputs: args, .. } => {
                        if expanded {
                            state.insert(id, true);
                            order.push(sym.clone());
                            continue;
                        }
                        match state.get(&id) {
                            Some(true) => continue,
                            Some(false) => {
                                return Err(Error::Graph("the graph has a cycle".into()));
                            }
                            None => {}
                        }
                        state.insert(id, false);
                        stack.push((sym.clone(), true));
                        for a in args.iter().rev() {
                            stack.push((a.clone(), false));
                        }
                    }
                }
            }
        }
        for (i, sym) in inputs.iter().enumerate() {
            if !used_inputs.contains(&sym.0.id) {
                let name = input_names[i].as_deref().unwrap_or("input_layer");
                return Err(Error::Graph(format!("input {i} (`{name}`) is not connected to any output")));
            }
        }

        // Unique layers in order of first use, then names.
        let mut layer_index: HashMap<u64, usize> = HashMap::new();
        let mut cells: Vec<Arc<LayerCell>> = Vec::new();
        for sym in &order {
            if let SymKind::Call { layer, .. } = &sym.0.kind {
                layer_index.entry(layer.id).or_insert_with(|| {
                    cells.push(layer.clone());
                    cells.len() - 1
                });
            }
        }
        let (layer_names, input_names) = assign_names(&cells, &input_names)?;

        // Build each call in order, inferring specs.
        let mut layers: Vec<LayerEntry> = cells
            .into_iter()
            .zip(layer_names)
            .map(|(cell, name)| LayerEntry { name, cell, output_specs: Vec::new() })
            .collect();
        let mut nodes = Vec::new();
        for sym in &order {
            let SymKind::Call { layer, inputs: args } = &sym.0.kind else { continue };
            let li = layer_index[&layer.id];
            let arg_values: Vec<usize> = args.iter().map(|a| value_of[&a.0.id]).collect();
            let specs: Vec<TensorSpec> = arg_values.iter().map(|&v| value_specs[v].clone()).collect();
            let entry = &mut layers[li];
            let mut guard = entry.cell.layer.write().map_err(|_| Error::msg("layer lock poisoned"))?;
            let label = format!("{} ({})", entry.name, guard.class_name());
            let arity = guard.arity();
            if !arity.accepts(specs.len()) {
                return Err(Error::msg(format!("takes {arity}, received {}", specs.len())).in_layer(label));
            }
            let mut weights = entry.cell.weights.write().map_err(|_| Error::msg("layer lock poisoned"))?;
            let before = weights.len();
            let spec = {
                let mut ctx = BuildContext::new(&mut weights, &mut rng, &device);
                if let Some(budget) = &limit {
                    ctx = ctx.with_limit(budget.load(Ordering::Relaxed));
                }
                guard.build(&specs, &mut ctx).map_err(|e| e.in_layer(label.clone()))?
            };
            if let Some(budget) = &limit {
                let added: usize = weights[before..].iter().map(|w| w.value.numel()).sum();
                let left = budget.load(Ordering::Relaxed).saturating_sub(added);
                budget.store(left, Ordering::Relaxed);
                check_spec_size(&spec).map_err(|e| e.in_layer(label.clone()))?;
            }
            drop((weights, guard));
            entry.output_specs.push(spec.clone());
            let out = value_specs.len();
            value_specs.push(spec);
            value_of.insert(sym.0.id, out);
            producers.push(Producer::Node(nodes.len()));
            nodes.push(Node { layer: li, inputs: arg_values, output: out });
        }

        let outputs: Vec<usize> = outputs.iter().map(|o| value_of[&o.0.id]).collect();
        let inputs = input_names.into_iter().zip(input_specs).map(|(name, spec)| InputEntry { name, spec }).collect();
        let named = options.name.is_some();
        Ok(Model {
            name: options.name.unwrap_or_else(|| if sequential { "sequential" } else { "functional" }.to_string()),
            named,
            sequential,
            layers,
            nodes,
            inputs,
            outputs,
            producers,
            value_specs,
            device,
            rng: Mutex::new(rng),
            compiled: Mutex::new(None),
        })
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

    /// Which input or layer produced value `v`, and which call of that layer
    /// it was (Keras' `name[call][0]` in "Connected to" and configs).
    pub(crate) fn value_source(&self, v: usize) -> (&str, usize) {
        match &self.producers[v] {
            Producer::Input(i) => (self.inputs[*i].name.as_str(), 0),
            Producer::Node(n) => {
                let layer = self.nodes[*n].layer;
                let call = self.nodes[..*n].iter().filter(|m| m.layer == layer).count();
                (self.layers[layer].name.as_str(), call)
            }
        }
    }

    /// Layer names in graph order (inputs excluded).
    pub fn layer_names(&self) -> Vec<&str> {
        self.layers.iter().map(|l| l.name.as_str()).collect()
    }

    /// A layer by name; an unknown name is an error listing the layers.
    pub fn get_layer(&self, name: &str) -> Result<LayerRef<'_>> {
        match self.layers.iter().position(|l| l.name == name) {
            Some(index) => Ok(LayerRef { model: self, index }),
            None => Err(Error::invalid(
                "get_layer",
                format!("no layer named `{name}`; the model has [{}]", self.layer_names().join(", ")),
            )),
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

    /// Replaces weights by full name (`"dense.kernel"`); each must exist and
    /// have the same shape. Weights not named keep their values.
    pub fn set_weights<'a>(&self, values: impl IntoIterator<Item = (&'a str, &'a Tensor)>) -> Result<()> {
        let ws = self.weights();
        for (name, value) in values {
            let w = find_weight(&ws, name).map_err(|have| {
                Error::invalid("set_weights", format!("no weight named `{name}`; the model has {have}"))
            })?;
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
        self.set_weights(snapshot.values.iter().map(|(n, t)| (n.as_str(), t)))
    }

    /// Total number of scalars in the weights.
    pub fn count_params(&self) -> usize {
        self.weights().iter().map(|w| w.value.numel()).sum()
    }

    /// The sum of the weights' regularization penalties, if any weight has one.
    pub fn regularization_loss(&self) -> Result<Option<Tensor>> {
        let mut total: Option<Tensor> = None;
        for w in self.weights() {
            if let Some(reg) = w.regularizer {
                let p = reg.penalty(&w.value)?;
                total = Some(match total {
                    Some(t) => t.add(&p)?,
                    None => p,
                });
            }
        }
        Ok(total)
    }

    /// Runs the model on concrete inputs (one per model input, batch axis
    /// first) and returns its outputs. `training` switches dropout on.
    ///
    /// Inputs are checked against the model's input specs first: a wrong
    /// count, rank, size or dtype is an error naming the input.
    pub fn forward(&self, inputs: impl ModelInputs, training: bool) -> Result<Vec<Tensor>> {
        Ok(self.forward_masked(inputs, training)?.0)
    }

    /// [`forward`](Self::forward), also returning each output's mask (for
    /// mask-aware losses and metrics).
    pub fn forward_masked(
        &self,
        inputs: impl ModelInputs,
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let inputs = inputs.into_tensors();
        // Only training steps draw from the model's generator, so evaluating
        // between training steps does not change the dropout sequence.
        let mut rng = if training {
            self.rng.lock().map(|mut r| r.fork()).map_err(|_| Error::msg("model rng lock poisoned"))?
        } else {
            Rng::seed(0)
        };
        let masks = vec![None; inputs.len()];
        self.run(&inputs, &masks, training, &mut rng)
    }

    /// Checks concrete inputs against the model's input specs.
    pub fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid(
                "model",
                format!(
                    "`{}` expects {} input(s) [{}], received {}",
                    self.name,
                    self.inputs.len(),
                    self.input_names().join(", "),
                    inputs.len()
                ),
            ));
        }
        for (entry, x) in self.inputs.iter().zip(inputs) {
            // An integer input where floats are expected is cast (as Keras
            // does); floats where integer ids are expected are an error.
            let dtype_ok = x.dtype() == entry.spec.dtype || entry.spec.dtype.is_float();
            if !entry.spec.with_dtype(x.dtype()).matches(x) || !dtype_ok {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "input `{}` expects {} {}, received {} {}",
                        entry.name,
                        entry.spec,
                        entry.spec.dtype,
                        crate::shape_tuple(x.dims()),
                        x.dtype()
                    ),
                ));
            }
            if !x.device().same(&self.device) {
                return Err(Error::DeviceMismatch {
                    op: "model",
                    lhs: self.device.name().to_string(),
                    rhs: x.device().name().to_string(),
                });
            }
        }
        Ok(())
    }

    pub(crate) fn run(
        &self,
        inputs: &[Tensor],
        input_masks: &[Option<Tensor>],
        training: bool,
        rng: &mut Rng,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        self.check_inputs(inputs)?;
        let n = self.value_specs.len();
        let mut values: Vec<Option<Tensor>> = vec![None; n];
        let mut masks: Vec<Option<Tensor>> = vec![None; n];
        for (i, x) in inputs.iter().enumerate() {
            let spec = &self.inputs[i].spec;
            values[i] = Some(if x.dtype() != spec.dtype { x.cast(spec.dtype)? } else { x.clone() });
            masks[i] = input_masks.get(i).cloned().flatten();
        }
        for node in &self.nodes {
            let entry = &self.layers[node.layer];
            let layer = entry.cell.layer.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            let weights = entry.cell.weights.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            let label = || format!("{} ({})", entry.name, layer.class_name());
            let xs: Vec<Tensor> = node.inputs.iter().filter_map(|&v| values[v].clone()).collect();
            let ms: Vec<Option<Tensor>> = node.inputs.iter().map(|&v| masks[v].clone()).collect();
            if ms.iter().any(Option::is_some) && !layer.supports_masking() {
                return Err(Error::msg(
                    "received a mask (from Embedding(mask_zero) or Masking) but does not support masking; \
                     remove the mask or pool it away first (e.g. GlobalAveragePooling1D)",
                )
                .in_layer(label()));
            }
            let mut ctx = CallContext::new(training, &ms, &weights, rng);
            let y = layer.call(&xs, &mut ctx).map_err(|e| e.in_layer(label()))?;
            let m = layer.compute_mask(&xs, &ms).map_err(|e| e.in_layer(label()))?;
            values[node.output] = Some(y);
            masks[node.output] = m;
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        let mut out_masks = Vec::with_capacity(self.outputs.len());
        for &o in &self.outputs {
            outs.push(values[o].clone().ok_or_else(|| Error::Graph("an output was not computed".into()))?);
            out_masks.push(masks[o].clone());
        }
        Ok((outs, out_masks))
    }

    /// The graph as JSON: every layer with its type, config and inbound
    /// connections, plus the model's inputs and outputs (Keras' layout).
    pub fn get_config(&self) -> Value {
        let value_name = |v: usize| -> Value {
            let (name, call) = self.value_source(v);
            json!([name, call])
        };
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|i| json!({"name": i.name, "class_name": "InputLayer", "config": {"shape": i.spec.dims[1..], "dtype": i.spec.dtype}}))
            .collect();
        let layers: Vec<Value> = self
            .layers
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let (class, config) =
                    l.cell.layer.read().map(|g| (g.class_name().to_string(), g.config())).unwrap_or_default();
                let calls: Vec<Value> = self
                    .nodes
                    .iter()
                    .filter(|n| n.layer == li)
                    .map(|n| Value::Array(n.inputs.iter().map(|&v| value_name(v)).collect()))
                    .collect();
                json!({"name": l.name, "class_name": class, "config": config, "inbound_nodes": calls})
            })
            .collect();
        json!({
            "name": self.name,
            "class_name": if self.sequential { "Sequential" } else { "Functional" },
            "inputs": inputs,
            "layers": layers,
            "outputs": self.outputs.iter().map(|&o| value_name(o)).collect::<Vec<_>>(),
        })
    }
}

/// Names layers: explicit names must be unique; the others get Keras'
/// `snake_case(type)` plus a counter, skipping names already taken.
fn assign_names(cells: &[Arc<LayerCell>], inputs: &[Option<String>]) -> Result<(Vec<String>, Vec<String>)> {
    let mut taken: HashMap<String, String> = HashMap::new();
    let hints: Vec<(Option<String>, String)> = cells
        .iter()
        .map(|c| {
            let l = c.layer.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            Ok((c.name.clone().or_else(|| l.name_hint().map(str::to_string)), l.class_name().to_string()))
        })
        .collect::<Result<_>>()?;
    let explicit = inputs
        .iter()
        .map(|n| n.as_ref().map(|n| (n.clone(), "InputLayer".to_string())))
        .chain(hints.iter().map(|(h, c)| h.as_ref().map(|h| (h.clone(), c.clone()))));
    for (name, class) in explicit.flatten() {
        if let Some(other) = taken.insert(name.clone(), class.clone()) {
            return Err(Error::Graph(format!(
                "duplicate layer name `{name}` (used by a {other} and a {class}); layer names must be unique"
            )));
        }
    }
    let mut counters: HashMap<String, usize> = HashMap::new();
    let mut fresh = |base: String, taken: &mut HashMap<String, String>| -> String {
        loop {
            let k = counters.entry(base.clone()).or_insert(0);
            let candidate = if *k == 0 { base.clone() } else { format!("{base}_{k}") };
            *k += 1;
            if !taken.contains_key(&candidate) {
                taken.insert(candidate.clone(), String::new());
                return candidate;
            }
        }
    };
    let input_names =
        inputs.iter().map(|n| n.clone().unwrap_or_else(|| fresh("input_layer".to_string(), &mut taken))).collect();
    let layer_names =
        hints.into_iter().map(|(hint, class)| hint.unwrap_or_else(|| fresh(snake_case(&class), &mut taken))).collect();
    Ok((layer_names, input_names))
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

    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        if self.outputs.len() != 1 {
            return Err(Error::msg(format!(
                "a model used as a layer must have one output; `{}` has {}",
                self.name,
                self.outputs.len()
            )));
        }
        for (entry, spec) in self.inputs.iter().zip(inputs) {
            let fits = spec.rank() == entry.spec.rank()
                && spec.dims.iter().zip(&entry.spec.dims).all(|(a, b)| a.is_none() || b.is_none() || a == b);
            if !fits {
                return Err(Error::msg(format!("input `{}` expects {}, received {spec}", entry.name, entry.spec)));
            }
        }
        Ok(self.value_specs[self.outputs[0]].clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let masks = ctx.masks().to_vec();
        let training = ctx.training();
        let (mut outs, _) = self.run(inputs, &masks, training, ctx.rng())?;
        outs.pop().ok_or_else(|| Error::msg("the nested model produced no output"))
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
