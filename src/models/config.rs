//! Rebuilding a [`Model`] from its architecture: [`Model::from_config`]
//! reads what [`Model::get_config`] writes (Keras' functional layout:
//! `inputs`, `layers` with their `inbound_nodes`, `outputs`) and
//! [`Model::from_json`] the same as text.
//!
//! Layers come from [`layer_from_config`], so built-in layers, custom layers
//! registered with [`register_layer`](strata_layers::register_layer) and
//! [registered](strata_layers::register_lambda) `Lambda` functions all
//! work; a model nested as a layer (`"class_name": "Functional"` or
//! `"Sequential"`) is rebuilt recursively. Every layer keeps its saved name,
//! so weight names (`"{layer}.{weight}"`) match the ones saved with it.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use strata_core::{DType, Error, Result};
use strata_layers::{layer_from_config, TensorSpec};

use super::functional::{LayerCell, SharedLayer, SymKind, SymbolicTensor};
use super::limits::{ConfigLimits, Seen};
use super::model::{BuildOptions, Model};

/// The architecture of a model: what [`Model::get_config`] writes (as JSON)
/// and [`Model::from_config`] reads, one type for both. Keras' functional
/// layout: the inputs, every layer with its config and the tensors each of
/// its calls reads, and the outputs.
///
/// ```
/// use strata::prelude::*;
/// use strata::models::ModelConfig;
/// # fn main() -> strata::Result<()> {
/// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).build_on(&backend::native())?;
/// let config: ModelConfig = serde_json::from_value(model.get_config()).unwrap();
/// assert_eq!(config.class_name, "Sequential");
/// assert_eq!(config.layers[0].class_name, "Dense");
/// assert_eq!(config.layers[0].inbound_nodes[0][0].layer, "input_layer");
/// assert_eq!(serde_json::to_value(&config).unwrap(), model.get_config());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelConfig {
    /// The model's name (read: optional).
    #[serde(default)]
    pub name: Option<String>,
    /// `"Functional"` or `"Sequential"` (`"Model"` is read as Functional).
    pub class_name: String,
    /// The model's inputs, in order.
    pub inputs: Vec<InputConfig>,
    /// The layers, in graph order.
    pub layers: Vec<LayerConfig>,
    /// The tensors the model returns, in order.
    pub outputs: Vec<NodeRef>,
}

/// One model input (Keras' `InputLayer`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputConfig {
    /// The input's name.
    pub name: String,
    /// `"InputLayer"` (read: optional, and no other value).
    #[serde(default)]
    pub class_name: Option<String>,
    /// Its shape and dtype.
    pub config: InputLayerConfig,
}

/// The shape (without the batch axis) and dtype of an input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputLayerConfig {
    /// Every axis after the batch axis; `None` (JSON `null`) for an unknown size.
    #[serde(serialize_with = "write_axes", deserialize_with = "read_axes")]
    pub shape: Vec<Option<usize>>,
    /// `"float32"` or `"int64"` (read: `float32` when absent or `null`).
    #[serde(default)]
    pub dtype: Option<DType>,
}

/// One layer of the graph.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LayerConfig {
    /// The layer's name (weights are saved as `"{name}.{weight}"`).
    pub name: String,
    /// Its class, as the layer registry knows it (`"Dense"`), or
    /// `"Functional"` / `"Sequential"` for a nested model.
    pub class_name: String,
    /// Its constructor arguments ([`Layer::config`](strata_layers::Layer::config)),
    /// or a nested model's [`ModelConfig`] (read: `{}` when absent).
    #[serde(default = "empty_object")]
    pub config: Value,
    /// One entry per call of the layer: the tensors that call reads.
    pub inbound_nodes: Vec<Vec<NodeRef>>,
    /// Keras' `trainable` (default true, written only when false).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub trainable: bool,
}

fn yes() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

/// A tensor of the graph: output `tensor` of the `call`-th call of the input
/// or layer named `layer`, written `["layer", call]`, or
/// `["layer", call, tensor]` for a layer's second or later output (Keras'
/// `keras_history`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NodeRef {
    /// The producing input or layer.
    pub layer: String,
    /// Which call of it (0 for an input, and for a layer called once).
    pub call: usize,
    /// Which of that call's outputs (0 but for layers with several outputs).
    pub tensor: usize,
}

impl Serialize for NodeRef {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if self.tensor == 0 {
            (&self.layer, self.call).serialize(s)
        } else {
            (&self.layer, self.call, self.tensor).serialize(s)
        }
    }
}

impl<'de> Deserialize<'de> for NodeRef {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        let parsed = v.as_array().and_then(|a| {
            let name = a.first()?.as_str()?;
            let call = usize::try_from(a.get(1)?.as_u64()?).ok()?;
            let tensor = match a.get(2) {
                None if a.len() == 2 => Some(0),
                Some(t) if a.len() == 3 => usize::try_from(t.as_u64()?).ok(),
                _ => None,
            }?;
            Some(NodeRef { layer: name.to_string(), call, tensor })
        });
        parsed.ok_or_else(|| {
            serde::de::Error::custom(format!(
                "expected a tensor reference [\"layer_name\", call_index] or [\"layer_name\", call_index, \
                 tensor_index], received {}",
                short(&v)
            ))
        })
    }
}

fn write_axes<S: Serializer>(axes: &[Option<usize>], s: S) -> std::result::Result<S::Ok, S::Error> {
    axes.serialize(s)
}

fn read_axes<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<Option<usize>>, D::Error> {
    Vec::<Value>::deserialize(d)?
        .iter()
        .map(|a| match a {
            Value::Null => Ok(None),
            _ => {
                a.as_u64().and_then(|n| usize::try_from(n).ok()).map(Some).ok_or_else(|| {
                    serde::de::Error::custom(format!("an axis size must be null or a count, received {a}"))
                })
            }
        })
        .collect()
}

impl ModelConfig {
    /// Reads a config from JSON, naming where a malformed one is wrong
    /// (`inputs[0].config.shape[0]: an axis size must be null or a count`).
    pub fn from_value(config: &Value) -> Result<ModelConfig> {
        expect_object(config)?;
        crate::utils::from_json_value(config).map_err(bad)
    }

    /// [`from_value`](Self::from_value), moving out of `config` instead of
    /// copying it.
    pub fn from_owned_value(config: Value) -> Result<ModelConfig> {
        expect_object(&config)?;
        crate::utils::from_json_value_owned(config).map_err(bad)
    }

    /// The config as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// Reads a config straight from JSON text (no intermediate JSON tree),
    /// after checking the text against `limits`.
    pub(crate) fn from_json_text(text: &str, limits: &ConfigLimits) -> std::result::Result<ModelConfig, TextError> {
        if let Some(e) = limits.scan_json(text).map_err(TextError::Invalid)? {
            return Err(TextError::NotJson(e));
        }
        let mut de = serde_json::Deserializer::from_str(text);
        let config = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| TextError::Invalid(bad(crate::utils::path_message(e))))?;
        de.end().map_err(TextError::NotJson)?;
        Ok(config)
    }
}

/// Why [`ModelConfig::from_json_text`] failed.
pub(crate) enum TextError {
    /// The text is not JSON.
    NotJson(serde_json::Error),
    /// It is, but not a valid model config (or beyond the limits).
    Invalid(Error),
}

/// A model config is a JSON object (serde's message for anything else would
/// name the Rust type instead).
fn expect_object(config: &Value) -> Result<()> {
    if config.is_object() {
        Ok(())
    } else {
        Err(bad(format!("expected a JSON object, received {}", short(config))))
    }
}

/// The error for a config that does not have the expected form.
fn bad(message: impl Into<String>) -> Error {
    Error::Config(format!("model: {}", message.into()))
}

/// Which kind of model a config describes: `true` for Sequential.
fn model_class(class: &str) -> Result<bool> {
    match class {
        "Functional" | "Model" => Ok(false),
        "Sequential" => Ok(true),
        other => Err(bad(format!("unknown model class `{other}`; expected Functional or Sequential"))),
    }
}

/// Whether a layer entry's class is a model nested as a layer.
fn is_model_class(class: &str) -> bool {
    matches!(class, "Functional" | "Sequential" | "Model")
}

impl Model {
    /// The graph as JSON: every layer with its type, config and inbound
    /// connections, plus the model's inputs and outputs (Keras' layout).
    pub fn get_config(&self) -> Value {
        self.model_config().to_value()
    }

    /// The architecture as a [`ModelConfig`] ([`get_config`](Self::get_config)
    /// is its JSON).
    pub fn model_config(&self) -> ModelConfig {
        let node_ref = |v: usize| {
            let (name, call, tensor) = self.value_source(v);
            NodeRef { layer: name.to_string(), call, tensor }
        };
        let inputs = self
            .inputs
            .iter()
            .map(|i| InputConfig {
                name: i.name.clone(),
                class_name: Some("InputLayer".into()),
                config: InputLayerConfig { shape: i.spec.dims[1..].to_vec(), dtype: Some(i.spec.dtype) },
            })
            .collect();
        let layers = self
            .layers
            .iter()
            .enumerate()
            .map(|(li, l)| {
                let (class_name, config) =
                    l.cell.layer.read().map(|g| (g.class_name().to_string(), g.config())).unwrap_or_default();
                let inbound_nodes = self
                    .nodes
                    .iter()
                    .filter(|n| n.layer == li)
                    .map(|n| n.inputs.iter().map(|&v| node_ref(v)).collect())
                    .collect();
                LayerConfig {
                    name: l.name.clone(),
                    class_name,
                    config,
                    inbound_nodes,
                    trainable: l.cell.is_trainable(),
                }
            })
            .collect();
        ModelConfig {
            name: Some(self.name.clone()),
            class_name: if self.sequential { "Sequential" } else { "Functional" }.to_string(),
            inputs,
            layers,
            outputs: self.outputs.iter().map(|&o| node_ref(o)).collect(),
        }
    }

    /// Rebuilds a model from [`get_config`](Self::get_config)'s output, on
    /// the default device, with fresh weights (load saved ones with
    /// [`load_weights`](Self::load_weights), or use
    /// [`load_model`](crate::load_model) for a whole saved model).
    ///
    /// Layer names, the graph (several inputs and outputs, shared layers,
    /// nested models) and the input specs come back exactly, so
    /// `Model::from_config(&m.get_config())?.get_config() == m.get_config()`.
    /// A layer type or `Lambda` function that is not registered is an error
    /// naming it and listing the registered ones; so is a malformed config.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let a = Input::new([4]).name("a");
    /// let b = Input::new([2]).name("b");
    /// let x = Concatenate::new().call(&[&a, &b])?;
    /// let out = Dense::new(1).name("head").call(&x)?;
    /// let model = Model::new(&[a, b], &[out])?;
    ///
    /// let again = Model::from_config(&model.get_config())?;
    /// assert_eq!(again.get_config(), model.get_config());
    /// assert_eq!(again.layer_names(), ["concatenate", "head"]);
    ///
    /// let mut config = model.get_config();
    /// config["layers"][1]["class_name"] = "Dens".into();
    /// let e = Model::from_config(&config).unwrap_err().to_string();
    /// assert!(e.contains("`Dens`") && e.contains("Dense"), "{e}");
    /// # Ok(()) }
    /// ```
    pub fn from_config(config: &Value) -> Result<Model> {
        Model::from_config_with(config, BuildOptions::default())
    }

    /// [`from_config`](Self::from_config) with an explicit device, seed or
    /// name (the name defaults to the one in the config).
    pub fn from_config_with(config: &Value, options: BuildOptions) -> Result<Model> {
        let config = ModelConfig::from_value(config)?;
        Model::from_model_config(config, options)
    }

    /// [`from_config_with`](Self::from_config_with) on a parsed
    /// [`ModelConfig`]. Its shape is checked against
    /// [`BuildOptions::config_limits`] before anything is built.
    pub fn from_model_config(config: ModelConfig, options: BuildOptions) -> Result<Model> {
        let mut options = options;
        if options.device.is_none() {
            options.device = Some(crate::backend::from_env()?);
        }
        rebuild(config, options, 0, &mut Seen::default())
    }

    /// Keras' `keras.models.clone_model(model)`: a new model with the same
    /// architecture (layer names, the graph, input specs, trainable flags)
    /// on the same device, and fresh weights, initialised as a new build
    /// would be. Nothing is shared with `self`: training one leaves the
    /// other as it was. Copy the weights over with
    /// [`set_weights`](Self::set_weights) when a trained copy is wanted.
    ///
    /// The clone is rebuilt from [`get_config`](Self::get_config), so a
    /// custom layer or `Lambda` must be registered, as for
    /// [`from_config`](Self::from_config); an unregistered one is an error
    /// naming it.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2).name("d")).seed(1).build()?;
    /// let twin = model.clone_model_with(BuildOptions::new().seed(2))?;
    /// assert_eq!(twin.get_config(), model.get_config());
    /// assert_ne!(twin.weight("d.kernel")?.to_vec::<f32>()?, model.weight("d.kernel")?.to_vec::<f32>()?);
    /// # Ok(()) }
    /// ```
    pub fn clone_model(&self) -> Result<Model> {
        self.clone_model_with(BuildOptions::new())
    }

    /// [`clone_model`](Self::clone_model) with an explicit seed, name or
    /// device (the device defaults to this model's, not the environment's).
    pub fn clone_model_with(&self, options: BuildOptions) -> Result<Model> {
        let mut options = options;
        if options.device.is_none() {
            options.device = Some(self.device().clone());
        }
        Model::from_model_config(self.model_config(), options)
    }

    /// The architecture as a JSON string ([`get_config`](Self::get_config)
    /// serialised); [`from_json`](Self::from_json) reads it back.
    pub fn to_json(&self) -> String {
        self.get_config().to_string()
    }

    /// Rebuilds a model from [`to_json`](Self::to_json)'s output (see
    /// [`from_config`](Self::from_config)). Text that is not JSON is an error.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).build()?;
    /// let again = Model::from_json(&model.to_json())?;
    /// assert_eq!(again.to_json(), model.to_json());
    /// assert!(Model::from_json("{not json").is_err());
    /// # Ok(()) }
    /// ```
    pub fn from_json(json: &str) -> Result<Model> {
        let config = ModelConfig::from_json_text(json, &ConfigLimits::default()).map_err(|e| match e {
            TextError::NotJson(e) => Error::Config(format!("model: the JSON cannot be read: {e}")),
            TextError::Invalid(e) => e,
        })?;
        Model::from_model_config(config, BuildOptions::default())
    }
}

/// Builds the symbolic graph described by `config` and assembles it.
fn rebuild(mut config: ModelConfig, options: BuildOptions, depth: usize, seen: &mut Seen) -> Result<Model> {
    options.config_limits.check_config(&config, depth, seen)?;
    // A nested model's config moves out of its entry, so each level of
    // nesting is parsed once, not copied again by every level above it.
    let mut nested_configs: Vec<Option<Value>> = config
        .layers
        .iter_mut()
        .map(|l| is_model_class(&l.class_name).then(|| std::mem::take(&mut l.config)))
        .collect();
    let sequential = model_class(&config.class_name)?;
    let mut options = options;
    if options.name.is_none() {
        options.name = config.name.clone();
    }

    // Every tensor by producer name, call index and output index.
    let mut values: HashMap<String, Vec<Vec<SymbolicTensor>>> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut inputs = Vec::new();
    for (i, entry) in config.inputs.iter().enumerate() {
        let name = &entry.name;
        if let Some(class) = &entry.class_name {
            if class != "InputLayer" {
                return Err(bad(format!("input {i} (`{name}`): expected class_name InputLayer, received {class}")));
            }
        }
        if !names.insert(name.clone()) {
            return Err(bad(format!("the name `{name}` is used twice")));
        }
        let mut dims = vec![None];
        dims.extend(entry.config.shape.iter().copied());
        let spec = TensorSpec::new(dims, entry.config.dtype.unwrap_or(DType::F32));
        let sym = SymbolicTensor::input(Some(name.clone()), spec);
        values.insert(name.clone(), vec![vec![sym.clone()]]);
        inputs.push(sym);
    }

    // The layers, created from their configs.
    let mut layers: Vec<(&LayerConfig, SharedLayer)> = Vec::with_capacity(config.layers.len());
    for (i, entry) in config.layers.iter().enumerate() {
        let (name, class) = (&entry.name, &entry.class_name);
        if name.is_empty() {
            return Err(bad(format!("layer {i} ({class}) has an empty name")));
        }
        if !names.insert(name.clone()) {
            return Err(bad(format!("the name `{name}` is used twice")));
        }
        let layer = if is_model_class(class) {
            let nested = BuildOptions { name: None, ..options.clone() };
            let nested_config = nested_configs[i].take().unwrap_or(Value::Null);
            let model = ModelConfig::from_owned_value(nested_config)
                .and_then(|c| rebuild(c, nested, depth + 1, seen))
                .map_err(|e| e.in_layer(format!("{name} ({class})")))?;
            Box::new(model) as Box<dyn strata_layers::Layer>
        } else {
            layer_from_config(class, &entry.config).map_err(|e| e.in_layer(format!("{name} ({class})")))?
        };
        if entry.inbound_nodes.is_empty() {
            return Err(bad(format!("layer `{name}` ({class}) is never called (no inbound_nodes)")));
        }
        let cell = LayerCell::named(layer, Some(name.clone()));
        // A nested model's config holds its own layers' flags: no recursion.
        cell.trainable.store(entry.trainable, std::sync::atomic::Ordering::Relaxed);
        layers.push((entry, SharedLayer(cell)));
    }

    // Every reference must name a known producer and one of its calls.
    // (calls, outputs per call) of every producer.
    let calls: HashMap<&str, (usize, usize)> = layers
        .iter()
        .map(|(l, shared)| {
            let outputs = shared.0.layer.read().map(|g| g.num_outputs()).unwrap_or(1);
            (l.name.as_str(), (l.inbound_nodes.len(), outputs))
        })
        .chain(inputs.iter().filter_map(|s| match &s.0.kind {
            SymKind::Input { name: Some(n), .. } => Some((n.as_str(), (1, 1))),
            _ => None,
        }))
        .collect();
    let check_ref = |r: &NodeRef, what: &str| -> Result<()> {
        let (name, call, tensor) = (&r.layer, r.call, r.tensor);
        match calls.get(name.as_str()) {
            None => Err(bad(format!("{what} refers to `{name}`, which is neither an input nor a layer"))),
            Some(&(n, _)) if call >= n => {
                Err(bad(format!("{what} refers to call {call} of `{name}`, which is called {n} time(s)")))
            }
            Some(&(_, k)) if tensor >= k => {
                Err(bad(format!("{what} refers to output {tensor} of `{name}`, which has {k} output(s)")))
            }
            Some(_) => Ok(()),
        }
    };
    for (l, _) in &layers {
        for r in l.inbound_nodes.iter().flatten() {
            check_ref(r, &format!("layer `{}`", l.name))?;
        }
    }
    for r in &config.outputs {
        check_ref(r, "an output")?;
    }

    // Make every call after the calls it reads, each layer's calls in order:
    // a depth-first walk over (layer, call) with an explicit stack, each
    // frame resuming its scan of the inputs where it stopped, so the work is
    // linear in the number of references.
    let index: HashMap<&str, usize> = layers.iter().enumerate().map(|(i, (l, _))| (l.name.as_str(), i)).collect();
    let mut made = vec![0usize; layers.len()];
    let mut pending: HashSet<(usize, usize)> = HashSet::new();
    let cycle = |stack: &[(usize, usize, usize)]| {
        let names: Vec<&str> = stack.iter().map(|&(l, _, _)| layers[l].0.name.as_str()).collect();
        bad(format!("the graph has a cycle through [{}]", names.join(", ")))
    };
    for (first, (l0, _)) in layers.iter().enumerate() {
        for call in 0..l0.inbound_nodes.len() {
            if made[first] > call {
                continue;
            }
            let mut stack: Vec<(usize, usize, usize)> = vec![(first, call, 0)];
            pending.insert((first, call));
            while let Some(&(l, c, from)) = stack.last() {
                if made[l] < c {
                    // The layer's earlier calls come first.
                    let earlier = (l, made[l]);
                    if !pending.insert(earlier) {
                        return Err(cycle(&stack));
                    }
                    stack.push((earlier.0, earlier.1, 0));
                    continue;
                }
                let node = &layers[l].0.inbound_nodes[c];
                let missing =
                    node[from..].iter().position(|r| index.get(r.layer.as_str()).is_some_and(|&m| made[m] <= r.call));
                if let Some(offset) = missing {
                    let r = &node[from + offset];
                    let dep = (index[r.layer.as_str()], r.call);
                    if let Some(top) = stack.last_mut() {
                        top.2 = from + offset;
                    }
                    if !pending.insert(dep) {
                        return Err(cycle(&stack));
                    }
                    stack.push((dep.0, dep.1, 0));
                    continue;
                }
                let args: Vec<SymbolicTensor> =
                    node.iter().map(|r| values[&r.layer][r.call][r.tensor].clone()).collect();
                let y = layers[l].1.call_outputs(&args)?;
                values.entry(layers[l].0.name.clone()).or_default().push(y);
                made[l] += 1;
                pending.remove(&(l, c));
                stack.pop();
            }
        }
    }

    let outputs: Vec<SymbolicTensor> =
        config.outputs.iter().map(|r| values[&r.layer][r.call][r.tensor].clone()).collect();
    super::compiler::assemble(&inputs, &outputs, options, sequential)
}

/// A value for an error message, cut to a readable length.
fn short(v: &Value) -> String {
    let s = v.to_string();
    match s.char_indices().nth(80) {
        Some((i, _)) => format!("{}...", &s[..i]),
        None => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_are_read_strictly() {
        let read = |v: Value| serde_json::from_value::<NodeRef>(v);
        assert_eq!(read(json!(["dense", 1])).unwrap(), NodeRef { layer: "dense".into(), call: 1, tensor: 0 });
        assert_eq!(read(json!(["dense", 0, 0])).unwrap(), NodeRef { layer: "dense".into(), call: 0, tensor: 0 });
        assert_eq!(read(json!(["lstm", 0, 2])).unwrap(), NodeRef { layer: "lstm".into(), call: 0, tensor: 2 });
        for bad in [json!(["dense"]), json!(["dense", -1]), json!([1, 0]), json!(["d", 0, -1]), json!(["d", 0, 0, 0])] {
            let e = read(bad).unwrap_err().to_string();
            assert!(e.contains("call_index"), "{e}");
        }
        let config = json!({"class_name": "Functional", "inputs": [], "layers": [{"name": "x", "class_name": "Dense",
                            "inbound_nodes": [[["a", 0, "x"]]]}], "outputs": []});
        let e = ModelConfig::from_value(&config).unwrap_err().to_string();
        assert!(e.contains("layers[0].inbound_nodes[0][0]") && e.contains("call_index"), "{e}");
    }

    #[test]
    fn short_cuts_long_values() {
        assert_eq!(short(&json!(1)), "1");
        assert!(short(&json!("x".repeat(200))).ends_with("..."));
    }
}
