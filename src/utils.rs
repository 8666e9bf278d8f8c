//! Small helpers shared by the facade's rooms: the global random seed
//! ([`set_random_seed`]) and Keras-style shape formatting.

use std::sync::Mutex;

static SEED: Mutex<Option<u64>> = Mutex::new(None);

/// Sets the seed used by models built without an explicit one (Keras'
/// `keras.utils.set_random_seed`): the same seed gives the same initial
/// weights, on every backend. `None` goes back to a fresh seed per model.
pub fn set_random_seed(seed: impl Into<Option<u64>>) {
    *SEED.lock().unwrap_or_else(|e| e.into_inner()) = seed.into();
}

/// The seed set by [`set_random_seed`], if any.
pub(crate) fn global_seed() -> Option<u64> {
    *SEED.lock().unwrap_or_else(|e| e.into_inner())
}

/// `(32, 784)`: a concrete shape written like Keras writes shapes.
pub(crate) fn shape_tuple(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// Runs user code (a layer's `call`, a custom loss), turning a panic in it
/// into an error: `panicked: {message}`. The caller names the culprit
/// (`Error::in_layer`), so a panic in a custom layer during `fit` comes back
/// as an `Err` naming the layer instead of unwinding through the training
/// loop.
pub(crate) fn catch_panic<T>(f: impl FnOnce() -> strata_core::Result<T>) -> strata_core::Result<T> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            Err(strata_core::Error::msg(format!("panicked: {message}")))
        }
    }
}

/// Reads a persisted config type from JSON; a malformed one is a message
/// naming where it is wrong (`inputs[0].config.shape[0]: ...`), via
/// `serde_path_to_error`.
pub(crate) fn from_json_value<T: serde::de::DeserializeOwned>(value: &serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(path_message)
}

/// [`from_json_value`], moving out of `value` instead of copying it.
pub(crate) fn from_json_value_owned<T: serde::de::DeserializeOwned>(value: serde_json::Value) -> Result<T, String> {
    serde_path_to_error::deserialize(value).map_err(path_message)
}

/// `path: message`, or the message alone at the top level.
pub(crate) fn path_message<E: std::fmt::Display>(e: serde_path_to_error::Error<E>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if path == "." {
        inner.to_string()
    } else {
        format!("{path}: {inner}")
    }
}
