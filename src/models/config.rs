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

use serde_json::{json, Value};
use strata_core::{DType, Error, Result};
use strata_layers::{layer_from_config, TensorSpec};

use super::functional::{LayerCell, SharedLayer, SymKind, SymbolicTensor};
use super::model::{BuildOptions, Model};

/// The error for a config that does not have the expected form.
fn bad(message: impl Into<String>) -> Error {
    Error::Config(format!("model: {}", message.into()))
}

/// `config[key]`, which must be present.
fn field<'v>(config: &'v Value, key: &str, what: &str) -> Result<&'v Value> {
    config.get(key).ok_or_else(|| bad(format!("{what} has no `{key}`")))
}

fn string<'v>(config: &'v Value, key: &str, what: &str) -> Result<&'v str> {
    let v = field(config, key, what)?;
    v.as_str().ok_or_else(|| bad(format!("{what}: `{key}` must be a string, received {}", short(v))))
}

fn array<'v>(config: &'v Value, key: &str, what: &str) -> Result<&'v [Value]> {
    let v = field(config, key, what)?;
    v.as_array().map(Vec::as_slice).ok_or_else(|| bad(format!("{what}: `{key}` must be a list, received {}", short(v))))
}

/// One tensor reference, `[layer_name, call_index]` (Keras' `keras_history`
/// without, or with a zero, tensor index).
fn node_ref(v: &Value, what: &str) -> Result<(String, usize)> {
    let parsed = v.as_array().and_then(|a| {
        let name = a.first()?.as_str()?;
        let call = usize::try_from(a.get(1)?.as_u64()?).ok()?;
        let tensor_ok = match a.get(2) {
            None => a.len() == 2,
            Some(t) => a.len() == 3 && t.as_u64() == Some(0),
        };
        tensor_ok.then(|| (name.to_string(), call))
    });
    parsed.ok_or_else(|| {
        bad(format!("{what}: expected a tensor reference [\"layer_name\", call_index], received {}", short(v)))
    })
}

/// Which kind of model a config describes.
fn model_class(config: &Value) -> Result<bool> {
    match string(config, "class_name", "the model config")? {
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
        let mut options = options;
        if options.device.is_none() {
            options.device = Some(crate::backend::from_env()?);
        }
        rebuild(config, options)
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
        let config: Value =
            serde_json::from_str(json).map_err(|e| Error::Config(format!("model: the JSON cannot be read: {e}")))?;
        Model::from_config(&config)
    }
}

/// Builds the symbolic graph described by `config` and assembles it.
fn rebuild(config: &Value, options: BuildOptions) -> Result<Model> {
    if !config.is_object() {
        return Err(bad(format!("expected a JSON object, received {}", short(config))));
    }
    let sequential = model_class(config)?;
    let mut options = options;
    if options.name.is_none() {
        if let Some(name) = config.get("name") {
            let name = name.as_str().ok_or_else(|| bad(format!("`name` must be a string, received {name}")))?;
            options.name = Some(name.to_string());
        }
    }

    // Every tensor by (producer name, call index).
    let mut values: HashMap<String, Vec<SymbolicTensor>> = HashMap::new();
    let mut names: HashSet<String> = HashSet::new();
    let mut inputs = Vec::new();
    for (i, entry) in array(config, "inputs", "the model config")?.iter().enumerate() {
        let what = format!("input {i}");
        let name = string(entry, "name", &what)?;
        if let Some(class) = entry.get("class_name") {
            if class != "InputLayer" {
                return Err(bad(format!("{what} (`{name}`): expected class_name InputLayer, received {class}")));
            }
        }
        let c = field(entry, "config", &what)?;
        let shape = array(c, "shape", &what)?
            .iter()
            .map(|d| match d {
                Value::Null => Ok(None),
                _ => d.as_u64().and_then(|d| usize::try_from(d).ok()).map(Some).ok_or_else(|| {
                    bad(format!("{what} (`{name}`): an axis size must be null or a count, received {d}"))
                }),
            })
            .collect::<Result<Vec<_>>>()?;
        let dtype = match c.get("dtype") {
            None | Some(Value::Null) => DType::F32,
            Some(d) => serde_json::from_value::<DType>(d.clone())
                .map_err(|_| bad(format!("{what} (`{name}`): unknown dtype {d}; expected \"float32\" or \"int64\"")))?,
        };
        if !names.insert(name.to_string()) {
            return Err(bad(format!("the name `{name}` is used twice")));
        }
        let mut dims = vec![None];
        dims.extend(shape);
        let sym = SymbolicTensor::input(Some(name.to_string()), TensorSpec::new(dims, dtype));
        values.insert(name.to_string(), vec![sym.clone()]);
        inputs.push(sym);
    }

    // The layers, created from their configs.
    struct Pending {
        name: String,
        layer: SharedLayer,
        nodes: Vec<Vec<(String, usize)>>,
    }
    let layer_entries = array(config, "layers", "the model config")?;
    let mut layers: Vec<Pending> = Vec::with_capacity(layer_entries.len());
    for (i, entry) in layer_entries.iter().enumerate() {
        let what = format!("layer {i}");
        let name = string(entry, "name", &what)?;
        let class = string(entry, "class_name", &what)?;
        let what = format!("layer `{name}` ({class})");
        if name.is_empty() {
            return Err(bad(format!("layer {i} ({class}) has an empty name")));
        }
        if !names.insert(name.to_string()) {
            return Err(bad(format!("the name `{name}` is used twice")));
        }
        let empty = Value::Object(Default::default());
        let layer_config = entry.get("config").unwrap_or(&empty);
        let layer = if is_model_class(class) {
            let nested = BuildOptions { name: None, ..options.clone() };
            let model = rebuild(layer_config, nested).map_err(|e| e.in_layer(format!("{name} ({class})")))?;
            Box::new(model) as Box<dyn strata_layers::Layer>
        } else {
            layer_from_config(class, layer_config).map_err(|e| e.in_layer(format!("{name} ({class})")))?
        };
        let nodes = array(entry, "inbound_nodes", &what)?
            .iter()
            .map(|node| {
                let args = node.as_array().ok_or_else(|| {
                    bad(format!("{what}: an inbound node must be a list of tensors, received {}", short(node)))
                })?;
                args.iter().map(|a| node_ref(a, &what)).collect::<Result<Vec<_>>>()
            })
            .collect::<Result<Vec<_>>>()?;
        if nodes.is_empty() {
            return Err(bad(format!("{what} is never called (no inbound_nodes)")));
        }
        let cell = LayerCell::named(layer, Some(name.to_string()));
        layers.push(Pending { name: name.to_string(), layer: SharedLayer(cell), nodes });
    }

    // Every reference must name a known producer and one of its calls.
    let calls: HashMap<&str, usize> = layers
        .iter()
        .map(|l| (l.name.as_str(), l.nodes.len()))
        .chain(inputs.iter().filter_map(|s| match &s.0.kind {
            SymKind::Input { name: Some(n), .. } => Some((n.as_str(), 1)),
            _ => None,
        }))
        .collect();
    let check_ref = |(name, call): &(String, usize), what: &str| -> Result<()> {
        match calls.get(name.as_str()) {
            None => Err(bad(format!("{what} refers to `{name}`, which is neither an input nor a layer"))),
            Some(&n) if *call >= n => {
                Err(bad(format!("{what} refers to call {call} of `{name}`, which is called {n} time(s)")))
            }
            Some(_) => Ok(()),
        }
    };
    for l in &layers {
        for node in &l.nodes {
            for r in node {
                check_ref(r, &format!("layer `{}`", l.name))?;
            }
        }
    }
    let output_refs = array(config, "outputs", "the model config")?
        .iter()
        .map(|o| {
            let r = node_ref(o, "an output")?;
            check_ref(&r, "an output")?;
            Ok(r)
        })
        .collect::<Result<Vec<_>>>()?;

    // Call the layers in dependency order (each layer's calls in order).
    let total: usize = layers.iter().map(|l| l.nodes.len()).sum();
    let mut done = 0;
    while done < total {
        let mut progressed = false;
        for l in &layers {
            loop {
                let made = values.get(&l.name).map_or(0, Vec::len);
                let Some(node) = l.nodes.get(made) else { break };
                let args: Option<Vec<SymbolicTensor>> =
                    node.iter().map(|(n, k)| values.get(n).and_then(|v| v.get(*k)).cloned()).collect();
                let Some(args) = args else { break };
                let y = l.layer.call(&args)?;
                values.entry(l.name.clone()).or_default().push(y);
                done += 1;
                progressed = true;
            }
        }
        if !progressed {
            let stuck: Vec<&str> = layers
                .iter()
                .filter(|l| values.get(&l.name).map_or(0, Vec::len) < l.nodes.len())
                .map(|l| l.name.as_str())
                .collect();
            return Err(bad(format!("the graph has a cycle through [{}]", stuck.join(", "))));
        }
    }

    let outputs: Vec<SymbolicTensor> = output_refs.iter().map(|(n, k)| values[n][*k].clone()).collect();
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
        assert_eq!(node_ref(&json!(["dense", 1]), "x").unwrap(), ("dense".to_string(), 1));
        assert_eq!(node_ref(&json!(["dense", 0, 0]), "x").unwrap(), ("dense".to_string(), 0));
        for bad in [json!(["dense"]), json!(["dense", -1]), json!([1, 0]), json!(["d", 0, 1]), json!("dense")] {
            let e = node_ref(&bad, "layer `x`").unwrap_err().to_string();
            assert!(e.contains("layer `x`") && e.contains("call_index"), "{e}");
        }
    }

    #[test]
    fn short_cuts_long_values() {
        assert_eq!(short(&json!(1)), "1");
        assert!(short(&json!("x".repeat(200))).ends_with("..."));
    }
}
