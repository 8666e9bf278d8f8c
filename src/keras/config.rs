//! Keras 3's `config.json` read into strata's [`ModelConfig`], and strata's
//! architecture written as Keras 3 writes it.
//!
//! strata's layer configs use Keras' argument names and defaults, so most
//! of the work is the envelope: Keras wraps every object as `{"module",
//! "class_name", "config", "registered_name"}`, records each call as
//! `{"args", "kwargs"}` of `__keras_tensor__` references, and writes
//! arguments strata has no use for at their default values (constraints,
//! `quantization_config`, `data_format="channels_last"`, ...). Those are
//! dropped when they hold Keras' default; any other value, and any argument
//! strata does not know, is an error naming the layer and the argument.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value};
use strata_core::{DType, Error, Result};

use crate::models::{InputConfig, InputLayerConfig, LayerConfig, ModelConfig, NodeRef};

/// Classes a Keras file may hold that are models rather than layers.
pub(crate) fn is_model_class(class: &str) -> bool {
    matches!(class, "Sequential" | "Functional" | "Model")
}

/// Where each layer's variables live in the weights file: the layer's path
/// of names (`"inner/dense"` for a layer of a nested model) to its group
/// (`"layers/functional/layers/dense"`).
pub(crate) type WeightGroups = HashMap<String, String>;

/// Keras' `naming.to_snake_case`: `Conv2DTranspose` → `conv2d_transpose`,
/// `LSTM` → `lstm`, `MultiHeadAttention` → `multi_head_attention`.
pub(crate) fn to_snake_case(name: &str) -> String {
    // re.sub(r"\W+", "", name)
    let s: Vec<char> = name.chars().filter(|c| c.is_alphanumeric() || *c == '_').collect();
    // re.sub("(.)([A-Z][a-z]+)", r"\1_\2", s)
    let mut a: Vec<char> = Vec::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < s.len() {
        a.push(s[i]);
        let next = i + 1;
        if next < s.len() && s[next].is_ascii_uppercase() && s.get(next + 1).is_some_and(|c| c.is_ascii_lowercase()) {
            a.push('_');
            // copy the capital and its lowercase run
            a.push(s[next]);
            let mut j = next + 1;
            while j < s.len() && s[j].is_ascii_lowercase() {
                a.push(s[j]);
                j += 1;
            }
            i = j;
            continue;
        }
        i += 1;
    }
    // re.sub("([a-z])([A-Z])", r"\1_\2", a).lower()
    let mut out = String::with_capacity(a.len() + 8);
    for (k, &c) in a.iter().enumerate() {
        if k > 0 && c.is_ascii_uppercase() && a[k - 1].is_ascii_lowercase() {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

/// Keras' `_get_unique_name`: `dense`, `dense_1`, `dense_2`, ...
fn unique(base: String, used: &mut HashMap<String, usize>) -> String {
    let n = used.entry(base.clone()).or_insert(0);
    let name = if *n == 0 { base } else { format!("{base}_{n}") };
    *n += 1;
    name
}

fn obj<'v>(v: &'v Value, at: &str) -> Result<&'v Map<String, Value>> {
    v.as_object().ok_or_else(|| Error::Config(format!("{at}: expected a JSON object, received {}", short(v))))
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 120 {
        format!(
            "{}...",
            &s[..s.char_indices().take_while(|(i, _)| *i < 117).last().map_or(0, |(i, c)| i + c.len_utf8())]
        )
    } else {
        s
    }
}

fn str_at<'v>(m: &'v Map<String, Value>, key: &str, at: &str) -> Result<&'v str> {
    m.get(key).and_then(Value::as_str).ok_or_else(|| {
        Error::Config(format!(
            "{at}: expected a string `{key}`, received {}",
            m.get(key).map_or("nothing".into(), short)
        ))
    })
}

// ---------------------------------------------------------------------------
// Keras → strata
// ---------------------------------------------------------------------------

/// Reads Keras' `config.json` (a model's `serialize_keras_object`).
pub(crate) fn import_model(v: &Value) -> Result<(ModelConfig, WeightGroups)> {
    let mut groups = WeightGroups::new();
    let config = import_model_at(v, "config.json", "", "", &mut groups, 0)?;
    Ok((config, groups))
}

fn import_model_at(
    v: &Value,
    at: &str,
    name_prefix: &str,
    group_prefix: &str,
    groups: &mut WeightGroups,
    depth: usize,
) -> Result<ModelConfig> {
    if depth > 32 {
        return Err(Error::Config(format!("{at}: models nested more than 32 deep")));
    }
    let m = obj(v, at)?;
    let class = str_at(m, "class_name", at)?;
    let config = m.get("config").ok_or_else(|| Error::Config(format!("{at}: no `config`")))?;
    let c = obj(config, at)?;
    let name = c.get("name").and_then(Value::as_str).map(str::to_string);
    let at = format!("{at}: {} `{}`", class, name.as_deref().unwrap_or("?"));
    check_dtype(c.get("dtype"), &at)?;
    let layers = c
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| Error::Config(format!("{at}: expected a list `layers`")))?;
    let mut used = HashMap::new();
    let mut out = ModelConfig { name, class_name: String::new(), inputs: vec![], layers: vec![], outputs: vec![] };
    match class {
        "Sequential" => {
            out.class_name = "Sequential".into();
            let mut prev: Option<NodeRef> = None;
            for (i, l) in layers.iter().enumerate() {
                let lat = format!("{at}, layer {i}");
                let lm = obj(l, &lat)?;
                let lclass = str_at(lm, "class_name", &lat)?;
                if lclass == "InputLayer" {
                    if i != 0 {
                        return Err(Error::Config(format!("{lat}: an InputLayer after the first layer")));
                    }
                    let input = import_input(lm, &lat)?;
                    prev = Some(NodeRef { layer: input.name.clone(), call: 0, tensor: 0 });
                    out.inputs.push(input);
                    continue;
                }
                if prev.is_none() {
                    // No InputLayer: Keras keeps the shape in build_input_shape.
                    let shape = c
                        .get("build_input_shape")
                        .or_else(|| m.get("build_config").and_then(|b| b.get("input_shape")))
                        .filter(|s| !s.is_null())
                        .ok_or_else(|| {
                            Error::Config(format!(
                                "{at}: no InputLayer and no build_input_shape: the input shape is unknown"
                            ))
                        })?;
                    let input = InputConfig {
                        name: "input_layer".into(),
                        class_name: Some("InputLayer".into()),
                        config: InputLayerConfig { shape: batch_shape(shape, &at)?, dtype: Some(DType::F32) },
                    };
                    prev = Some(NodeRef { layer: input.name.clone(), call: 0, tensor: 0 });
                    out.inputs.push(input);
                }
                let mut layer = import_layer(lm, &lat, name_prefix, group_prefix, &mut used, groups, depth)?;
                layer.inbound_nodes =
                    vec![vec![prev.take().unwrap_or_else(|| NodeRef { layer: String::new(), call: 0, tensor: 0 })]];
                prev = Some(NodeRef { layer: layer.name.clone(), call: 0, tensor: 0 });
                out.layers.push(layer);
            }
            let last = prev.ok_or_else(|| Error::Config(format!("{at}: a Sequential model without layers")))?;
            if out.layers.is_empty() {
                return Err(Error::Config(format!("{at}: a Sequential model without layers")));
            }
            out.outputs = vec![last];
        }
        "Functional" | "Model" => {
            out.class_name = "Functional".into();
            // Keras 3 records the mask computations it inserts (an
            // Embedding's `not_equal(tokens, 0)`) as operations of
            // `keras.src.ops` and passes their results as `mask=`; strata
            // computes the same masks itself, so these are left out.
            let ops: HashSet<String> = layers
                .iter()
                .filter(|l| l.get("module").and_then(Value::as_str).is_some_and(|m| m.starts_with("keras.src.ops")))
                .filter_map(|l| l.get("name").and_then(Value::as_str).map(str::to_string))
                .collect();
            for (i, l) in layers.iter().enumerate() {
                let lat = format!("{at}, layer {i}");
                let lm = obj(l, &lat)?;
                let lclass = str_at(lm, "class_name", &lat)?;
                if lm.get("name").and_then(Value::as_str).is_some_and(|n| ops.contains(n)) {
                    continue;
                }
                if lclass == "InputLayer" {
                    let mut input = import_input(lm, &lat)?;
                    if let Some(n) = lm.get("name").and_then(Value::as_str) {
                        input.name = n.to_string();
                    }
                    out.inputs.push(input);
                    continue;
                }
                let mut layer = import_layer(lm, &lat, name_prefix, group_prefix, &mut used, groups, depth)?;
                if let Some(n) = lm.get("name").and_then(Value::as_str) {
                    if n != layer.name {
                        let key = format!("{name_prefix}{}", layer.name);
                        if let Some(g) = groups.remove(&key) {
                            groups.insert(format!("{name_prefix}{n}"), g);
                        }
                        layer.name = n.to_string();
                    }
                }
                let nodes = lm
                    .get("inbound_nodes")
                    .and_then(Value::as_array)
                    .ok_or_else(|| Error::Config(format!("{lat}: expected a list `inbound_nodes`")))?;
                let mut seen_options: Option<Map<String, Value>> = None;
                for (k, n) in nodes.iter().enumerate() {
                    let cat = format!("{lat}, call {k}");
                    let (refs, options) = import_node(n, &layer.class_name, &ops, &cat)?;
                    match &seen_options {
                        Some(o) if *o != options => {
                            return Err(Error::Config(format!(
                                "{cat}: the calls of a shared layer set different options ({} and {}), which strata \
                                 keeps per layer",
                                Value::Object(o.clone()),
                                Value::Object(options)
                            )))
                        }
                        _ => seen_options = Some(options),
                    }
                    layer.inbound_nodes.push(refs);
                }
                if let (Some(options), Some(config)) = (seen_options, layer.config.as_object_mut()) {
                    config.extend(options);
                }
                out.layers.push(layer);
            }
            // Inputs are listed in `input_layers`' order.
            let order = tensor_list(c.get("input_layers"), &format!("{at}: input_layers"))?;
            let mut inputs = Vec::with_capacity(order.len());
            for r in &order {
                let pos = out.inputs.iter().position(|i| i.name == r.layer).ok_or_else(|| {
                    Error::Config(format!("{at}: input_layers names `{}`, which is not an InputLayer", r.layer))
                })?;
                inputs.push(out.inputs[pos].clone());
            }
            out.inputs = inputs;
            out.outputs = tensor_list(c.get("output_layers"), &format!("{at}: output_layers"))?;
        }
        other => {
            return Err(Error::Config(format!("{at}: `{other}` is not a Keras model class (Sequential, Functional)")))
        }
    }
    Ok(out)
}

fn check_dtype(dtype: Option<&Value>, at: &str) -> Result<()> {
    let name = match dtype {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::String(s)) => s.as_str(),
        Some(v) => v.get("config").and_then(|c| c.get("name")).and_then(Value::as_str).unwrap_or("?"),
    };
    if name == "float32" {
        Ok(())
    } else {
        Err(Error::Config(format!(
            "{at}: dtype policy `{name}`: strata computes in float32 (save the Keras model with the float32 policy)"
        )))
    }
}

fn batch_shape(v: &Value, at: &str) -> Result<Vec<Option<usize>>> {
    let dims =
        v.as_array().ok_or_else(|| Error::Config(format!("{at}: expected a shape list, received {}", short(v))))?;
    if dims.is_empty() {
        return Err(Error::Config(format!("{at}: an input shape needs a batch axis, received []")));
    }
    dims[1..]
        .iter()
        .map(|d| match d {
            Value::Null => Ok(None),
            _ => d
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .map(Some)
                .ok_or_else(|| Error::Config(format!("{at}: an axis must be null or a count, received {d}"))),
        })
        .collect()
}

fn import_input(m: &Map<String, Value>, at: &str) -> Result<InputConfig> {
    let c = obj(m.get("config").unwrap_or(&Value::Null), at)?;
    let name = c.get("name").or_else(|| m.get("name")).and_then(Value::as_str).unwrap_or("input_layer").to_string();
    let at = format!("{at}: InputLayer `{name}`");
    let shape = c
        .get("batch_shape")
        .or_else(|| c.get("batch_input_shape"))
        .ok_or_else(|| Error::Config(format!("{at}: no batch_shape")))?;
    for flag in ["sparse", "ragged"] {
        if c.get(flag).and_then(Value::as_bool) == Some(true) {
            return Err(Error::Config(format!("{at}: {flag} inputs are not supported")));
        }
    }
    let dtype = match c.get("dtype") {
        None | Some(Value::Null) => DType::F32,
        Some(d) => {
            let s = d.as_str().or_else(|| d.get("config").and_then(|c| c.get("name")).and_then(Value::as_str));
            match s {
                Some("float32") => DType::F32,
                Some("int32" | "int64" | "int16" | "int8" | "uint8" | "uint16" | "uint32") => DType::I64,
                _ => {
                    return Err(Error::Config(format!(
                        "{at}: input dtype {}: strata reads float32 and integer inputs",
                        short(d)
                    )))
                }
            }
        }
    };
    Ok(InputConfig {
        name,
        class_name: Some("InputLayer".into()),
        config: InputLayerConfig { shape: batch_shape(shape, &at)?, dtype: Some(dtype) },
    })
}

/// `[name, node, tensor]` lists: Keras writes one list per tensor, or a
/// single one for a lone tensor.
fn tensor_list(v: Option<&Value>, at: &str) -> Result<Vec<NodeRef>> {
    let v = v.ok_or_else(|| Error::Config(format!("{at}: missing")))?;
    let list = v.as_array().ok_or_else(|| Error::Config(format!("{at}: expected a list, received {}", short(v))))?;
    if list.first().is_some_and(Value::is_string) {
        return Ok(vec![history(v, at)?]);
    }
    let mut out = Vec::new();
    for item in list {
        match item {
            Value::Object(o) => {
                // a dict of named inputs or outputs: Keras keeps the order
                for value in o.values() {
                    out.push(history(value, at)?);
                }
            }
            _ => out.push(history(item, at)?),
        }
    }
    Ok(out)
}

fn history(v: &Value, at: &str) -> Result<NodeRef> {
    let a = v.as_array().filter(|a| a.len() == 3).ok_or_else(|| {
        Error::Config(format!("{at}: expected a tensor reference [layer, node, tensor], received {}", short(v)))
    })?;
    let layer = a[0].as_str();
    let call = a[1].as_u64().and_then(|n| usize::try_from(n).ok());
    let tensor = a[2].as_u64().and_then(|n| usize::try_from(n).ok());
    match (layer, call, tensor) {
        (Some(l), Some(c), Some(t)) => Ok(NodeRef { layer: l.to_string(), call: c, tensor: t }),
        _ => Err(Error::Config(format!(
            "{at}: expected a tensor reference [layer, node, tensor], received {}",
            short(v)
        ))),
    }
}

/// The attention layers' call options, which strata keeps in the layer's
/// config and Keras passes at each call.
fn call_options(class: &str) -> &'static [&'static str] {
    match class {
        "Attention" | "AdditiveAttention" | "MultiHeadAttention" => &["use_causal_mask", "return_attention_scores"],
        _ => &[],
    }
}

/// Tensor arguments a Keras call passes by keyword, in the order strata
/// reads them after the positional ones.
fn tensor_kwargs(class: &str) -> &'static [&'static str] {
    match class {
        "MultiHeadAttention" => &["value", "key", "attention_mask"],
        "Attention" | "AdditiveAttention" => &["value"],
        "LSTM" | "GRU" | "SimpleRNN" | "Bidirectional" => &["initial_state"],
        _ => &[],
    }
}

/// One `inbound_nodes` entry (`{"args": [...], "kwargs": {...}}`) as the
/// tensors the call reads, in strata's order, and the call options it sets
/// (`use_causal_mask`, ...), which strata keeps in the layer's config.
fn import_node(v: &Value, class: &str, ops: &HashSet<String>, at: &str) -> Result<(Vec<NodeRef>, Map<String, Value>)> {
    let m = obj(v, at)?;
    let mut refs = Vec::new();
    let mut options = Map::new();
    let args = m.get("args").and_then(Value::as_array).ok_or_else(|| Error::Config(format!("{at}: no `args` list")))?;
    for a in args {
        collect_tensors(a, at, &mut refs)?;
    }
    let empty = Map::new();
    let kwargs = m.get("kwargs").and_then(Value::as_object).unwrap_or(&empty);
    for k in tensor_kwargs(class) {
        if let Some(v) = kwargs.get(*k).filter(|v| !v.is_null()) {
            collect_tensors(v, at, &mut refs)?;
            if *k == "attention_mask" {
                options.insert("attention_mask_input".into(), Value::Bool(true));
            }
        }
    }
    for (k, v) in kwargs {
        if tensor_kwargs(class).contains(&k.as_str()) {
            continue;
        }
        if call_options(class).contains(&k.as_str()) {
            let on =
                v.as_bool().ok_or_else(|| Error::Config(format!("{at}: `{k}` must be true or false, received {v}")))?;
            options.insert(k.clone(), Value::Bool(on));
        } else if k == "mask" {
            let mut masks = Vec::new();
            collect_tensors(v, at, &mut masks)?;
            if let Some(m) = masks.iter().find(|m| !ops.contains(&m.layer)) {
                return Err(Error::Config(format!(
                    "{at}: a mask passed explicitly, from `{}`, cannot be read (strata propagates masks from the \
                     layers that make them, such as Embedding(mask_zero) and Masking)",
                    m.layer
                )));
            }
        } else if !(v.is_null() || k == "training" && *v == Value::Bool(false)) {
            return Err(Error::Config(format!(
                "{at}: the call argument `{k}` = {} cannot be read (strata reads the tensors a layer is called on; \
                 masks flow on their own)",
                short(v)
            )));
        }
    }
    if refs.is_empty() {
        return Err(Error::Config(format!("{at}: the call reads no tensor")));
    }
    if let Some(r) = refs.iter().find(|r| ops.contains(&r.layer)) {
        return Err(Error::Config(format!(
            "{at}: reads the output of the Keras operation `{}`, which is not a layer (strata reads layers only)",
            r.layer
        )));
    }
    Ok((refs, options))
}

fn collect_tensors(v: &Value, at: &str, out: &mut Vec<NodeRef>) -> Result<()> {
    match v {
        Value::Array(items) => items.iter().try_for_each(|i| collect_tensors(i, at, out)),
        Value::Object(o) if o.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            let h = o
                .get("config")
                .and_then(|c| c.get("keras_history"))
                .ok_or_else(|| Error::Config(format!("{at}: a __keras_tensor__ without keras_history")))?;
            out.push(history(h, at)?);
            Ok(())
        }
        Value::Null => Ok(()),
        other => {
            Err(Error::Config(format!("{at}: a call argument that is not a tensor ({}) cannot be read", short(other))))
        }
    }
}

/// Arguments Keras writes that strata leaves out, with the value that means
/// "not used": dropped when they hold it.
fn neutral(class: &str, key: &str, value: &Value) -> bool {
    let last_axis = value == -1 || value == &json!([-1]);
    match (class, key) {
        ("LayerNormalization" | "BatchNormalization" | "GroupNormalization" | "Normalization", "axis") if last_axis => {
            return true
        }
        ("LayerNormalization", "rms_scaling") if value == &Value::Bool(false) => return true,
        _ => {}
    }
    if value.is_null() {
        return key.ends_with("_constraint")
            || key.ends_with("_regularizer")
            || matches!(
                key,
                "activity_regularizer"
                    | "quantization_config"
                    | "lora_rank"
                    | "lora_alpha"
                    | "renorm_clipping"
                    | "seed"
                    | "input_length"
                    | "flash_attention"
                    | "attention_axes"
                    | "output_shape"
                    | "value_range"
                    | "noise_shape"
            );
    }
    match key {
        "keepdims" | "synchronized" | "renorm" | "stateful" | "unroll" | "sparse" | "ragged" | "optional"
        | "invert" | "lora_enabled" | "use_legacy_config" => value == &Value::Bool(false),
        "data_format" => value == "channels_last",
        "use_cudnn" => value == "auto",
        "groups" => value == 1,
        "renorm_momentum" => true,
        "autocast" => value == &Value::Bool(true),
        _ => false,
    }
}

/// Removes Keras' envelope keys from nested objects (`module`,
/// `registered_name`), recursively: initializers and regularizers come as
/// `{"module", "class_name", "config", "registered_name"}`.
fn strip_envelope(v: &mut Value) {
    match v {
        Value::Object(o) => {
            if o.contains_key("class_name") {
                o.remove("module");
                o.remove("registered_name");
                o.remove("shared_object_id");
            }
            o.values_mut().for_each(strip_envelope);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_envelope),
        _ => {}
    }
}

/// A Keras layer (`{"module", "class_name", "config", ...}`) as a strata
/// layer entry (without its calls).
fn import_layer(
    m: &Map<String, Value>,
    at: &str,
    name_prefix: &str,
    group_prefix: &str,
    used: &mut HashMap<String, usize>,
    groups: &mut WeightGroups,
    depth: usize,
) -> Result<LayerConfig> {
    let class = str_at(m, "class_name", at)?;
    let config = m.get("config").unwrap_or(&Value::Null);
    let c = obj(config, at)?;
    let name = c
        .get("name")
        .or_else(|| m.get("name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("{at}: a {class} without a name")))?;
    let at = format!("{at}: {class} `{name}`");
    let trainable = c.get("trainable").and_then(Value::as_bool).unwrap_or(true);
    let group = format!("{group_prefix}layers/{}", unique(to_snake_case(class), used));
    groups.insert(format!("{name_prefix}{name}"), group.clone());
    if is_model_class(class) {
        let nested = import_model_at(
            &Value::Object(m.clone()),
            &at,
            &format!("{name_prefix}{name}/"),
            &format!("{group}/"),
            groups,
            depth + 1,
        )?;
        let class_name = nested.class_name.clone();
        return Ok(LayerConfig { name, class_name, config: nested.to_value(), inbound_nodes: vec![], trainable });
    }
    let config = import_layer_config(class, c, &at)?;
    Ok(LayerConfig { name, class_name: class.to_string(), config, inbound_nodes: vec![], trainable })
}

/// A layer's Keras arguments as strata's.
fn import_layer_config(class: &str, c: &Map<String, Value>, at: &str) -> Result<Value> {
    if class == "Lambda" {
        return Err(Error::Config(format!(
            "{at}: a Keras Lambda layer holds Python bytecode, and strata never runs code from a file. Rebuild the \
             model in Rust with the function as a strata Lambda (or a custom layer) and load the weights with \
             strata::keras::load_weights"
        )));
    }
    check_dtype(c.get("dtype"), at)?;
    let known = strata_layers::registered_layers();
    if !known.iter().any(|k| k == class) {
        return Err(Error::Config(format!(
            "{at}: strata has no layer class `{class}`; it reads: {}",
            known.iter().filter(|k| k.as_str() != "Lambda").cloned().collect::<Vec<_>>().join(", ")
        )));
    }
    let mut out = Map::new();
    for (k, v) in c {
        if matches!(k.as_str(), "name" | "trainable" | "dtype") || neutral(class, k, v) {
            continue;
        }
        let mut v = v.clone();
        if matches!(k.as_str(), "layer" | "backward_layer") && v.is_object() {
            v = import_wrapped(&v, &format!("{at}.{k}"))?;
        }
        strip_envelope(&mut v);
        out.insert(k.clone(), v);
    }
    Ok(Value::Object(out))
}

fn import_wrapped(v: &Value, at: &str) -> Result<Value> {
    let m = obj(v, at)?;
    let class = str_at(m, "class_name", at)?;
    let c = obj(m.get("config").unwrap_or(&Value::Null), at)?;
    let config = import_layer_config(class, c, &format!("{at} ({class})"))?;
    Ok(json!({"class_name": class, "config": config}))
}

// ---------------------------------------------------------------------------
// strata → Keras
// ---------------------------------------------------------------------------

/// Classes that Keras calls with one list argument (`Add()([a, b])`);
/// others take their tensors positionally (`MultiHeadAttention(q, v)`).
fn takes_list(class: &str) -> bool {
    matches!(
        class,
        "Add"
            | "Subtract"
            | "Multiply"
            | "Average"
            | "Maximum"
            | "Minimum"
            | "Concatenate"
            | "Dot"
            | "Attention"
            | "AdditiveAttention"
    )
}

/// What an export needs to know about each tensor: its shape (with the
/// batch axis) and dtype, by `(layer, call, tensor)`.
pub(crate) type TensorShapes = HashMap<(String, usize, usize), (Vec<Option<usize>>, DType)>;

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::I64 => "int64",
        _ => "float32",
    }
}

fn policy() -> Value {
    json!({"module": "keras", "class_name": "DTypePolicy", "config": {"name": "float32"}, "registered_name": null})
}

/// The layers of a functional graph in the order Keras 3 lists them
/// (`keras.src.ops.function.map_graph`): by decreasing depth from the
/// outputs, ties broken by first visit in a depth-first walk from the
/// outputs. Keras numbers the weight groups (`dense`, `dense_1`, ...) in
/// this order, so an export writes its layers in it.
pub(crate) fn keras_order(c: &ModelConfig) -> Vec<usize> {
    let index: HashMap<&str, usize> = c.layers.iter().enumerate().map(|(i, l)| (l.name.as_str(), i)).collect();
    // nodes: (layer index, call); inputs are not layers and end the walk.
    let mut finished: HashSet<(usize, usize)> = HashSet::new();
    let mut order_nodes: Vec<(usize, usize)> = Vec::new();
    let mut first_seen: HashMap<usize, usize> = HashMap::new();
    fn walk(
        c: &ModelConfig,
        index: &HashMap<&str, usize>,
        r: &NodeRef,
        finished: &mut HashSet<(usize, usize)>,
        order_nodes: &mut Vec<(usize, usize)>,
        first_seen: &mut HashMap<usize, usize>,
    ) {
        let Some(&li) = index.get(r.layer.as_str()) else { return };
        let node = (li, r.call);
        if !finished.insert(node) {
            return;
        }
        let n = first_seen.len();
        first_seen.entry(li).or_insert(n);
        if let Some(inputs) = c.layers[li].inbound_nodes.get(r.call) {
            for i in inputs {
                walk(c, index, i, finished, order_nodes, first_seen);
            }
        }
        order_nodes.push(node);
    }
    for o in &c.outputs {
        walk(c, &index, o, &mut finished, &mut order_nodes, &mut first_seen);
    }
    let mut node_depth: HashMap<(usize, usize), usize> = HashMap::new();
    let mut layer_depth: HashMap<usize, usize> = HashMap::new();
    for &node in order_nodes.iter().rev() {
        let d = *node_depth.entry(node).or_insert(0);
        let d = d.max(layer_depth.get(&node.0).copied().unwrap_or(0));
        layer_depth.insert(node.0, d);
        node_depth.insert(node, d);
        if let Some(inputs) = c.layers[node.0].inbound_nodes.get(node.1) {
            for i in inputs {
                if let Some(&pi) = index.get(i.layer.as_str()) {
                    let p = (pi, i.call);
                    let e = node_depth.entry(p).or_insert(0);
                    *e = (*e).max(d + 1);
                }
            }
        }
    }
    let mut layers: Vec<usize> = layer_depth.keys().copied().collect();
    layers.sort_by_key(|l| (std::cmp::Reverse(layer_depth[l]), first_seen.get(l).copied().unwrap_or(usize::MAX)));
    // Layers the outputs do not reach (none in a built model) keep their place at the end.
    for i in 0..c.layers.len() {
        if !layer_depth.contains_key(&i) {
            layers.push(i);
        }
    }
    layers
}

/// strata's architecture as Keras' `config.json`; `groups` receives each
/// layer's weight group, as [`import_model`] reads it.
pub(crate) fn export_model(c: &ModelConfig, groups: &mut WeightGroups) -> Result<Value> {
    export_model_at(c, &TensorShapes::new(), "", "", groups)
}

fn export_model_at(
    c: &ModelConfig,
    shapes: &TensorShapes,
    name_prefix: &str,
    group_prefix: &str,
    groups: &mut WeightGroups,
) -> Result<Value> {
    let name = c.name.clone().unwrap_or_else(|| "model".into());
    let mut used = HashMap::new();
    let input_entry = |i: &InputConfig| {
        let mut batch = vec![Value::Null];
        batch.extend(i.config.shape.iter().map(|d| d.map_or(Value::Null, |n| json!(n))));
        json!({
            "module": "keras.layers",
            "class_name": "InputLayer",
            "config": {
                "batch_shape": batch,
                "dtype": dtype_name(i.config.dtype.unwrap_or(DType::F32)),
                "sparse": false,
                "ragged": false,
                "name": i.name,
                "optional": false,
            },
            "registered_name": null,
        })
    };
    let sequential = c.class_name == "Sequential" && is_chain(c);
    if sequential {
        let mut layers = vec![input_entry(&c.inputs[0])];
        for l in &c.layers {
            let (entry, _) = export_layer(l, shapes, name_prefix, group_prefix, &mut used, groups)?;
            layers.push(entry);
        }
        return Ok(json!({
            "module": "keras",
            "class_name": "Sequential",
            "config": {"name": name, "trainable": true, "dtype": policy(), "layers": layers},
            "registered_name": null,
        }));
    }
    let mut layers: Vec<Value> = Vec::new();
    for i in &c.inputs {
        let mut e = input_entry(i);
        e["name"] = json!(i.name);
        e["inbound_nodes"] = json!([]);
        layers.push(e);
    }
    for li in keras_order(c) {
        let l = &c.layers[li];
        let (mut entry, _) = export_layer(l, shapes, name_prefix, group_prefix, &mut used, groups)?;
        entry["name"] = json!(l.name);
        let nodes: Vec<Value> = l
            .inbound_nodes
            .iter()
            .map(|refs| {
                let mut tensors: Vec<Value> = refs.iter().map(|r| keras_tensor(r, shapes)).collect();
                let mut kwargs = Map::new();
                for k in call_options(&l.class_name) {
                    if l.config.get(*k) == Some(&Value::Bool(true)) {
                        kwargs.insert(k.to_string(), Value::Bool(true));
                    }
                }
                if l.class_name == "MultiHeadAttention"
                    && l.config.get("attention_mask_input") == Some(&Value::Bool(true))
                {
                    if let Some(mask) = tensors.pop() {
                        kwargs.insert("attention_mask".into(), mask);
                    }
                }
                if l.class_name == "MultiHeadAttention" && tensors.len() > 2 {
                    let key = tensors.remove(2);
                    kwargs.insert("key".into(), key);
                }
                let args = if takes_list(&l.class_name) && tensors.len() > 1 {
                    vec![Value::Array(tensors)]
                } else if matches!(l.class_name.as_str(), "LSTM" | "GRU" | "SimpleRNN" | "Bidirectional")
                    && tensors.len() > 1
                {
                    let mut t = tensors;
                    let states = t.split_off(1);
                    kwargs.insert("initial_state".into(), Value::Array(states));
                    t
                } else {
                    tensors
                };
                json!({"args": args, "kwargs": kwargs})
            })
            .collect();
        entry["inbound_nodes"] = Value::Array(nodes);
        layers.push(entry);
    }
    let refs =
        |rs: &[NodeRef]| -> Value { Value::Array(rs.iter().map(|r| json!([r.layer, r.call, r.tensor])).collect()) };
    Ok(json!({
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": name,
            "trainable": true,
            "layers": layers,
            "input_layers": refs(&c.inputs.iter().map(|i| NodeRef { layer: i.name.clone(), call: 0, tensor: 0 }).collect::<Vec<_>>()),
            "output_layers": refs(&c.outputs),
        },
        "registered_name": "Functional",
    }))
}

/// Whether a Sequential config is a plain chain (one input, each layer
/// called once on the previous one).
fn is_chain(c: &ModelConfig) -> bool {
    if c.inputs.len() != 1 || c.outputs.len() != 1 {
        return false;
    }
    let mut prev = c.inputs[0].name.as_str();
    for l in &c.layers {
        match l.inbound_nodes.as_slice() {
            [call] if call.len() == 1 && call[0].layer == prev && call[0].tensor == 0 => prev = &l.name,
            _ => return false,
        }
    }
    c.outputs[0].layer == prev
}

fn keras_tensor(r: &NodeRef, shapes: &TensorShapes) -> Value {
    let (shape, dtype) = shapes.get(&(r.layer.clone(), r.call, r.tensor)).cloned().unwrap_or((vec![None], DType::F32));
    let shape: Vec<Value> = shape.iter().map(|d| d.map_or(Value::Null, |n| json!(n))).collect();
    json!({
        "class_name": "__keras_tensor__",
        "config": {"shape": shape, "dtype": dtype_name(dtype), "keras_history": [r.layer, r.call, r.tensor]},
    })
}

fn export_layer(
    l: &LayerConfig,
    shapes: &TensorShapes,
    name_prefix: &str,
    group_prefix: &str,
    used: &mut HashMap<String, usize>,
    groups: &mut WeightGroups,
) -> Result<(Value, String)> {
    let at = format!("{} ({})", l.name, l.class_name);
    let group = format!("{group_prefix}layers/{}", unique(to_snake_case(&l.class_name), used));
    groups.insert(format!("{name_prefix}{}", l.name), group.clone());
    if is_model_class(&l.class_name) {
        let nested = ModelConfig::from_value(&l.config).map_err(|e| e.in_layer(at.clone()))?;
        let mut v =
            export_model_at(&nested, shapes, &format!("{name_prefix}{}/", l.name), &format!("{group}/"), groups)?;
        v["config"]["name"] = json!(l.name);
        v["config"]["trainable"] = json!(l.trainable);
        return Ok((v, group));
    }
    if l.class_name == "Lambda" {
        return Err(Error::Config(format!(
            "{at}: a strata Lambda is Rust code, which a Keras file cannot hold; replace it before saving for Keras"
        )));
    }
    let config = export_layer_config(&l.class_name, &l.config, &l.name, l.trainable)?;
    Ok((
        json!({"module": "keras.layers", "class_name": l.class_name, "config": config, "registered_name": null}),
        group,
    ))
}

fn export_layer_config(class: &str, config: &Value, name: &str, trainable: bool) -> Result<Value> {
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    // Keras' spatial dropouts take no `trainable` argument (nothing to train).
    if !class.starts_with("SpatialDropout") {
        out.insert("trainable".into(), json!(trainable));
    }
    out.insert("dtype".into(), policy());
    if let Some(c) = config.as_object() {
        for (k, v) in c {
            // Call options travel with each call (see export_model_at).
            if call_options(class).contains(&k.as_str())
                || (class == "MultiHeadAttention" && k == "attention_mask_input")
            {
                continue;
            }
            let v = if matches!(k.as_str(), "layer" | "backward_layer") && v.is_object() {
                let inner_class = v.get("class_name").and_then(Value::as_str).unwrap_or_default().to_string();
                let inner_name = v
                    .get("config")
                    .and_then(|c| c.get("name"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}_{}", to_snake_case(&inner_class), k));
                let inner =
                    export_layer_config(&inner_class, v.get("config").unwrap_or(&Value::Null), &inner_name, trainable)?;
                json!({"module": "keras.layers", "class_name": inner_class, "config": inner, "registered_name": null})
            } else {
                v.clone()
            };
            out.insert(k.clone(), v);
        }
    }
    Ok(Value::Object(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_matches_keras() {
        for (class, snake) in [
            ("Dense", "dense"),
            ("Conv2DTranspose", "conv2d_transpose"),
            ("Conv1DTranspose", "conv1d_transpose"),
            ("LSTM", "lstm"),
            ("GRU", "gru"),
            ("SimpleRNN", "simple_rnn"),
            ("MultiHeadAttention", "multi_head_attention"),
            ("BatchNormalization", "batch_normalization"),
            ("GlobalAveragePooling2D", "global_average_pooling2d"),
            ("DepthwiseConv2D", "depthwise_conv2d"),
            ("UpSampling1D", "up_sampling1d"),
            ("ZeroPadding2D", "zero_padding2d"),
            ("RepeatVector", "repeat_vector"),
            ("Functional", "functional"),
        ] {
            assert_eq!(to_snake_case(class), snake, "{class}");
        }
        let mut used = HashMap::new();
        let names: Vec<String> = (0..3).map(|_| unique("dense".into(), &mut used)).collect();
        assert_eq!(names, ["dense", "dense_1", "dense_2"]);
    }

    #[test]
    fn neutral_values_are_keras_defaults_only() {
        assert!(neutral("Dense", "kernel_constraint", &Value::Null));
        assert!(!neutral("Dense", "kernel_constraint", &json!({"class_name": "MaxNorm"})));
        assert!(neutral("Conv2D", "data_format", &json!("channels_last")));
        assert!(!neutral("Conv2D", "data_format", &json!("channels_first")));
        assert!(!neutral("Dense", "units", &Value::Null));
        assert!(neutral("LayerNormalization", "axis", &json!([-1])));
        assert!(!neutral("LayerNormalization", "axis", &json!([1, 2])));
    }
}
