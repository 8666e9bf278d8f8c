//! [`History`]: what [`Model::fit`](crate::Model::fit) returns, and [`Logs`],
//! the metric values handed to callbacks.

use std::collections::BTreeMap;
use std::fmt;

use strata_core::{Error, Result};

use super::{Callback, CallbackContext};

/// Metric values by name (`"loss"`, `"accuracy"`, `"val_loss"`, ...), as
/// `evaluate` returns them and callbacks receive them.
///
/// Sorted by name, which is also the order Keras' progress bar prints them
/// in. A lookup of a key that is not there says which keys are:
/// [`value`](Logs::value) returns that as an `Err`, [`get`](Logs::get) as
/// `None`, and `logs["key"]` panics with it.
///
/// ```
/// use strata::Logs;
/// let logs: Logs = [("accuracy".to_string(), 0.75), ("loss".to_string(), 0.5)].into();
/// assert_eq!(logs["loss"], 0.5);
/// assert_eq!(logs.get("acc"), None);
/// let e = logs.value("acc").unwrap_err().to_string();
/// assert!(e.contains("`acc`") && e.contains("accuracy, loss"), "{e}");
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Logs(BTreeMap<String, f64>);

impl Logs {
    /// No values.
    pub fn new() -> Self {
        Logs::default()
    }

    /// The value logged under `key`, if any.
    pub fn get(&self, key: &str) -> Option<f64> {
        self.0.get(key).copied()
    }

    /// The value logged under `key`; a missing key is an error listing the
    /// keys there are (`no value `acc` in the logs; they hold: accuracy, loss`).
    pub fn value(&self, key: &str) -> Result<f64> {
        self.get(key).ok_or_else(|| Error::invalid("logs", self.missing(key)))
    }

    fn missing(&self, key: &str) -> String {
        if self.0.is_empty() {
            format!("no value `{key}` in the logs; they are empty")
        } else {
            format!("no value `{key}` in the logs; they hold: {}", self.keys().collect::<Vec<_>>().join(", "))
        }
    }

    /// Whether a value is logged under `key`.
    pub fn contains_key(&self, key: &str) -> bool {
        self.0.contains_key(key)
    }

    /// Sets `key` to `value`, returning the value it replaces.
    pub fn insert(&mut self, key: impl Into<String>, value: f64) -> Option<f64> {
        self.0.insert(key.into(), value)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &str) -> Option<f64> {
        self.0.remove(key)
    }

    /// The keys, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }

    /// `(key, value)` pairs, sorted by key.
    pub fn iter(&self) -> impl Iterator<Item = (&str, f64)> {
        self.0.iter().map(|(k, v)| (k.as_str(), *v))
    }

    /// How many values there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The values as a map.
    pub fn as_map(&self) -> &BTreeMap<String, f64> {
        &self.0
    }
}

impl std::ops::Index<&str> for Logs {
    type Output = f64;

    /// The value under `key`.
    ///
    /// # Panics
    /// When there is none, with a message listing the keys there are; use
    /// [`Logs::value`] for an `Err` instead.
    fn index(&self, key: &str) -> &f64 {
        match self.0.get(key) {
            Some(v) => v,
            None => panic!("{}", self.missing(key)),
        }
    }
}

impl<const N: usize> From<[(String, f64); N]> for Logs {
    fn from(pairs: [(String, f64); N]) -> Self {
        Logs(pairs.into())
    }
}

impl From<BTreeMap<String, f64>> for Logs {
    fn from(map: BTreeMap<String, f64>) -> Self {
        Logs(map)
    }
}

impl FromIterator<(String, f64)> for Logs {
    fn from_iter<I: IntoIterator<Item = (String, f64)>>(iter: I) -> Self {
        Logs(iter.into_iter().collect())
    }
}

impl Extend<(String, f64)> for Logs {
    fn extend<I: IntoIterator<Item = (String, f64)>>(&mut self, iter: I) {
        self.0.extend(iter)
    }
}

impl IntoIterator for Logs {
    type Item = (String, f64);
    type IntoIter = std::collections::btree_map::IntoIter<String, f64>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

impl<'a> IntoIterator for &'a Logs {
    type Item = (&'a String, &'a f64);
    type IntoIter = std::collections::btree_map::Iter<'a, String, f64>;

    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

impl fmt::Display for Logs {
    /// `loss: 0.5 - accuracy: 0.75`, as the progress bar writes them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (k, v)) in self.iter().enumerate() {
            if i > 0 {
                write!(f, " - ")?;
            }
            write!(f, "{k}: {v:.4}")?;
        }
        Ok(())
    }
}

/// Per-epoch values of every logged metric, like Keras' `History.history`.
///
/// As in Keras, `History` is a [`Callback`]: [`Model::fit`](crate::Model::fit)
/// runs one after the callbacks it is given (so it records what they
/// added to the logs) and returns it.
///
/// ```
/// # use strata::History;
/// let mut h = History::default();
/// h.record(0, &[("loss".to_string(), 0.5)].into_iter().collect());
/// h.record(1, &[("loss".to_string(), 0.25)].into_iter().collect());
/// assert_eq!(h.get("loss"), Some(&[0.5, 0.25][..]));
/// assert_eq!(h.last("loss"), Some(0.25));
/// assert_eq!(h.epochs(), &[0, 1]);
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct History {
    epochs: Vec<usize>,
    values: BTreeMap<String, Vec<f64>>,
}

impl History {
    /// Appends one epoch's logs.
    pub fn record(&mut self, epoch: usize, logs: &Logs) {
        self.epochs.push(epoch);
        for (k, v) in logs {
            self.values.entry(k.clone()).or_default().push(*v);
        }
    }

    /// The epochs run (0-based, starting at `initial_epoch`).
    pub fn epochs(&self) -> &[usize] {
        &self.epochs
    }

    /// One metric's value per epoch.
    pub fn get(&self, key: &str) -> Option<&[f64]> {
        self.values.get(key).map(Vec::as_slice)
    }

    /// One metric's value at the last epoch.
    pub fn last(&self, key: &str) -> Option<f64> {
        self.values.get(key).and_then(|v| v.last().copied())
    }

    /// The logged metric names, sorted.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// Every metric's values, like Keras' `history.history` dict.
    pub fn as_map(&self) -> &BTreeMap<String, Vec<f64>> {
        &self.values
    }

    /// How many epochs were recorded.
    pub fn len(&self) -> usize {
        self.epochs.len()
    }

    /// Whether no epoch was recorded.
    pub fn is_empty(&self) -> bool {
        self.epochs.is_empty()
    }
}

impl Callback for History {
    /// Starts a fresh record (Keras' `History.on_train_begin`).
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        *self = History::default();
        Ok(())
    }

    /// Records the epoch's logs.
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.record(epoch, logs);
        Ok(())
    }
}
