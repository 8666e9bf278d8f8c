//! [`History`]: what [`Model::fit`](crate::Model::fit) returns, and [`Logs`],
//! the metric values handed to callbacks.

use std::collections::BTreeMap;

/// Metric values by name (`"loss"`, `"accuracy"`, `"val_loss"`, ...).
///
/// Sorted by name, which is also the order Keras' progress bar prints them in.
pub type Logs = BTreeMap<String, f64>;

/// Per-epoch values of every logged metric, like Keras' `History.history`.
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
