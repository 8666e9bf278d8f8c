//! Layers inside layers (`Bidirectional`, `TimeDistributed`): how a wrapped
//! layer is written into its wrapper's config and read back.

use serde_json::{json, Value};
use strata_core::{Error, Result};

use crate::Layer;

/// A wrapped layer as its wrapper's config stores it, as Keras does:
/// `{"class_name": ..., "config": ...}`.
pub(crate) fn layer_config(layer: &dyn Layer) -> Value {
    json!({"class_name": layer.class_name(), "config": layer.config()})
}

/// Rebuilds the layer [`layer_config`] wrote (Keras' extra keys `module`,
/// `registered_name` and `build_config` are ignored); `wrapper` names the
/// wrapper in errors.
pub(crate) fn layer_from_value(wrapper: &str, value: Option<&Value>) -> Result<Box<dyn Layer>> {
    let Some(value) = value else {
        return Err(Error::Config(format!("{wrapper}: the config has no `layer`")));
    };
    let class = value.get("class_name").and_then(Value::as_str);
    let config = value.get("config");
    match (class, config) {
        (Some(class), Some(config)) => crate::layer_from_config(class, config)
            .map_err(|e| Error::Config(format!("{wrapper}: the wrapped {class}: {e}"))),
        _ => Err(Error::Config(format!(
            "{wrapper}: a wrapped layer must be {{\"class_name\": ..., \"config\": ...}}, received {value}"
        ))),
    }
}
