//! Bookkeeping that every built-in layer carries besides its arguments.

use std::sync::Mutex;

use strata_core::{Error, Result, Rng};

/// A built-in layer's name (if given) and the first invalid argument passed
/// to its builder methods, reported when the layer is built.
#[derive(Clone, Debug, Default)]
pub(crate) struct Meta {
    pub(crate) name: Option<String>,
    pub(crate) error: Option<String>,
}

impl Meta {
    /// Records `result`'s error (the first one wins) and returns its value.
    pub(crate) fn keep<T>(&mut self, result: Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.error.get_or_insert_with(|| e.to_string());
                None
            }
        }
    }

    /// Records an invalid argument unless `ok`.
    pub(crate) fn require(&mut self, ok: bool, message: impl FnOnce() -> String) {
        if !ok {
            self.error.get_or_insert_with(message);
        }
    }

    /// The recorded argument error, if any.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.error {
            Some(m) => Err(Error::msg(m.clone())),
            None => Ok(()),
        }
    }
}

/// A layer's random generator: its own, seeded with the layer's `seed`, or
/// else the call context's (seeded from the model's seed). A clone
/// continues from the same state, so layers holding one can derive `Clone`.
#[derive(Debug, Default)]
pub(crate) struct LayerRng(Option<Mutex<Rng>>);

impl LayerRng {
    /// The layer's own generator for `Some(seed)`, the context's for `None`.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        LayerRng(seed.map(|s| Mutex::new(Rng::seed(s))))
    }

    /// Runs `f` with the own generator if there is one, else with `fallback`
    /// (the model's, from the call context).
    pub(crate) fn with<R>(&self, fallback: &mut Rng, f: impl FnOnce(&mut Rng) -> R) -> R {
        match &self.0 {
            Some(own) => f(&mut own.lock().unwrap_or_else(|e| e.into_inner())),
            None => f(fallback),
        }
    }
}

impl Clone for LayerRng {
    /// A copy that continues from the same state.
    fn clone(&self) -> Self {
        LayerRng(self.0.as_ref().map(|m| Mutex::new(m.lock().unwrap_or_else(|e| e.into_inner()).clone())))
    }
}

/// Adds `pub fn name(self, &str) -> Self` to a built-in layer with a `meta: Meta` field.
macro_rules! named {
    ($t:ty) => {
        impl $t {
            /// Names the layer (default: its snake_case type plus a counter, `dense_1`).
            pub fn name(mut self, name: &str) -> Self {
                self.meta.name = Some(name.to_string());
                self
            }
        }
    };
}
pub(crate) use named;

/// The `config` and `name_hint` methods of a built-in layer whose config is
/// its serde form and whose name lives in `meta`.
macro_rules! config_from_serde {
    () => {
        fn config(&self) -> serde_json::Value {
            serde_json::to_value(self).unwrap_or(serde_json::Value::Null)
        }

        fn name_hint(&self) -> Option<&str> {
            self.meta.name.as_deref()
        }
    };
}
pub(crate) use config_from_serde;

/// Reads a layer's config with serde, naming the layer in the error.
pub(crate) fn from_json<T: serde::de::DeserializeOwned>(class: &str, config: &serde_json::Value) -> Result<T> {
    serde_json::from_value(config.clone()).map_err(|e| Error::Config(format!("{class}: {e} (in {config})")))
}
