//! Reading optimizer and schedule configs key by key, with errors that name
//! the class, the key and the value received.

use serde_json::{Map, Value};
use strata_core::{Error, Result};

/// The keys of one `config` object, taken one at a time; [`finish`](Self::finish)
/// rejects whatever is left (Keras: "Argument(s) not recognized").
pub(crate) struct ConfigReader<'a> {
    class: &'a str,
    rest: Map<String, Value>,
}

impl<'a> ConfigReader<'a> {
    pub(crate) fn new(class: &'a str, config: &Value) -> Result<Self> {
        match config {
            Value::Object(map) => Ok(ConfigReader { class, rest: map.clone() }),
            Value::Null => Ok(ConfigReader { class, rest: Map::new() }),
            other => Err(Error::Config(format!("{class}: `config` must be an object, received {other}"))),
        }
    }

    fn err(&self, key: &str, want: &str, got: &Value) -> Error {
        Error::Config(format!("{}: `{key}` must be {want}, received {got}", self.class))
    }

    /// The value under `key`, absent and `null` both as `None`.
    fn take(&mut self, key: &str) -> Option<Value> {
        self.rest.remove(key).filter(|v| !v.is_null())
    }

    /// The raw value under `key` (absent or null → `None`).
    pub(crate) fn value(&mut self, key: &str) -> Option<Value> {
        self.take(key)
    }

    pub(crate) fn opt_f64(&mut self, key: &str) -> Result<Option<f64>> {
        match self.take(key) {
            None => Ok(None),
            Some(v) => v.as_f64().map(Some).ok_or_else(|| self.err(key, "a number", &v)),
        }
    }

    pub(crate) fn f64(&mut self, key: &str) -> Result<f64> {
        self.opt_f64(key)?.ok_or_else(|| Error::Config(format!("{}: missing `{key}`", self.class)))
    }

    pub(crate) fn f64_or(&mut self, key: &str, default: f64) -> Result<f64> {
        Ok(self.opt_f64(key)?.unwrap_or(default))
    }

    pub(crate) fn bool_or(&mut self, key: &str, default: bool) -> Result<bool> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => v.as_bool().ok_or_else(|| self.err(key, "true or false", &v)),
        }
    }

    fn as_u64(v: &Value) -> Option<u64> {
        // Integers, or integral floats (Keras configs written from Python
        // sometimes carry `1000.0`).
        v.as_u64()
            .or_else(|| v.as_f64().filter(|f| *f >= 0.0 && f.fract() == 0.0 && *f < 2f64.powi(63)).map(|f| f as u64))
    }

    pub(crate) fn u64_or(&mut self, key: &str, default: u64) -> Result<u64> {
        match self.take(key) {
            None => Ok(default),
            Some(v) => Self::as_u64(&v).ok_or_else(|| self.err(key, "an integer >= 0", &v)),
        }
    }

    pub(crate) fn u64(&mut self, key: &str) -> Result<u64> {
        if self.rest.get(key).is_none_or(Value::is_null) {
            return Err(Error::Config(format!("{}: missing `{key}`", self.class)));
        }
        self.u64_or(key, 0)
    }

    fn list(&mut self, key: &str) -> Result<Vec<Value>> {
        match self.take(key) {
            Some(Value::Array(items)) => Ok(items),
            Some(v) => Err(self.err(key, "a list", &v)),
            None => Err(Error::Config(format!("{}: missing `{key}`", self.class))),
        }
    }

    pub(crate) fn u64_list(&mut self, key: &str) -> Result<Vec<u64>> {
        let items = self.list(key)?;
        items.iter().map(|v| Self::as_u64(v).ok_or_else(|| self.err(key, "a list of integers >= 0", v))).collect()
    }

    pub(crate) fn f64_list(&mut self, key: &str) -> Result<Vec<f64>> {
        let items = self.list(key)?;
        items.iter().map(|v| v.as_f64().ok_or_else(|| self.err(key, "a list of numbers", v))).collect()
    }

    /// Drops `key` whatever its value (Keras' `name`).
    pub(crate) fn ignore(&mut self, key: &str) {
        self.rest.remove(key);
    }

    /// Accepts `key` only absent, `null` or equal to `off` — a Keras feature
    /// strata does not have, in its "off" setting.
    pub(crate) fn unsupported(&mut self, key: &str, off: &Value) -> Result<()> {
        match self.take(key) {
            Some(v) if &v != off => Err(Error::Config(format!(
                "{}: `{key}` is not supported by strata (only {off} or null), received {v}",
                self.class
            ))),
            _ => Ok(()),
        }
    }

    /// Errors if any key was not read.
    pub(crate) fn finish(self) -> Result<()> {
        if self.rest.is_empty() {
            return Ok(());
        }
        let keys: Vec<&str> = self.rest.keys().map(String::as_str).collect();
        Err(Error::Config(format!("{}: unknown config key(s) {}", self.class, keys.join(", "))))
    }
}
