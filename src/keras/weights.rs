//! Where each strata weight lives in Keras' weights file.
//!
//! Keras 3 stores a layer's variables under `<group>/vars/<i>`, trainable
//! then non-trainable in creation order (strata creates them in that
//! order too), and the variables of the objects a layer holds under that
//! object's attribute name: an RNN layer's under `cell/vars`, a
//! `Bidirectional`'s under `forward_layer/...` and `backward_layer/...`, a
//! `TimeDistributed`'s under `layer/...`, a `MultiHeadAttention`'s under
//! `query_dense/vars`, `key_dense/vars`, `value_dense/vars` and
//! `output_dense/vars`.

use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use super::config::{is_model_class, WeightGroups};
use crate::models::LayerRef;

/// The path inside a layer's group of each of its weights (named as the
/// layer names them), in order.
pub(crate) fn var_paths(class: &str, config: &Value, names: &[String]) -> Result<Vec<String>> {
    match class {
        "LSTM" | "GRU" | "SimpleRNN" => Ok((0..names.len()).map(|i| format!("cell/vars/{i}")).collect()),
        "TimeDistributed" => {
            let inner = inner_class(config, "layer")?;
            Ok(var_paths(&inner, config.get("layer").and_then(|l| l.get("config")).unwrap_or(&Value::Null), names)?
                .into_iter()
                .map(|p| format!("layer/{p}"))
                .collect())
        }
        "Bidirectional" => {
            let fwd = inner_class(config, "layer")?;
            let bwd = inner_class(config, "backward_layer").unwrap_or_else(|_| fwd.clone());
            let (f, b): (Numbered, Numbered) = names.iter().enumerate().partition(|(_, n)| n.starts_with("forward_"));
            let mut out = vec![String::new(); names.len()];
            for (side, class, list) in [("forward_layer", &fwd, f), ("backward_layer", &bwd, b)] {
                let short: Vec<String> =
                    list.iter().map(|(_, n)| n.split_once('.').map_or(n.to_string(), |(_, w)| w.to_string())).collect();
                let paths = var_paths(class, &Value::Null, &short)?;
                for ((i, _), p) in list.iter().zip(paths) {
                    out[*i] = format!("{side}/{p}");
                }
            }
            Ok(out)
        }
        "MultiHeadAttention" => names
            .iter()
            .map(|n| {
                let (part, w) = n.split_once('.').unwrap_or((n, ""));
                let dense = match part {
                    "query" => "query_dense",
                    "key" => "key_dense",
                    "value" => "value_dense",
                    "attention_output" => "output_dense",
                    _ => return Err(Error::msg(format!("MultiHeadAttention: unexpected weight `{n}`"))),
                };
                let i = if w == "bias" { 1 } else { 0 };
                Ok(format!("{dense}/vars/{i}"))
            })
            .collect(),
        _ => Ok((0..names.len()).map(|i| format!("vars/{i}")).collect()),
    }
}

/// Weight names with their positions.
type Numbered<'a> = Vec<(usize, &'a String)>;

fn inner_class(config: &Value, key: &str) -> Result<String> {
    config
        .get(key)
        .and_then(|l| l.get("class_name"))
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| Error::Config(format!("the wrapper's config has no `{key}.class_name`")))
}

/// One weight of the model and its dataset path in the weights file.
pub(crate) struct Slot {
    /// `layers/dense/vars/0`.
    pub path: String,
    /// The weight's variable (shared with the model).
    pub value: Tensor,
    /// `dense.kernel`, for errors.
    pub label: String,
    /// The `vars` group's layer name (Keras writes it as an attribute).
    pub layer: String,
}

/// Every weight of `layers` with its path; `prefix` is the layer-name path
/// of the model they belong to (`""` at the top, `"inner/"` inside a
/// nested model named `inner`).
pub(crate) fn slots(layers: &[LayerRef], groups: &WeightGroups, prefix: &str, out: &mut Vec<Slot>) -> Result<()> {
    for l in layers {
        let key = format!("{prefix}{}", l.name());
        let class = l.class_name();
        if is_model_class(&class) {
            slots(&l.layers(), groups, &format!("{key}/"), out)?;
            continue;
        }
        let weights = l.weights();
        if weights.is_empty() {
            continue;
        }
        let group = groups.get(&key).ok_or_else(|| Error::msg(format!("no weight group for layer `{key}`")))?;
        let names: Vec<String> = weights.iter().map(|w| w.name.clone()).collect();
        let paths =
            var_paths(&class, &l.config(), &names).map_err(|e| e.in_layer(format!("{} ({class})", l.name())))?;
        for (w, p) in weights.into_iter().zip(paths) {
            out.push(Slot {
                path: format!("{group}/{p}"),
                label: format!("{key}.{}", w.name),
                value: w.value,
                layer: l.name().to_string(),
            });
        }
    }
    Ok(())
}
