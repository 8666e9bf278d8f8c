//! The "which metric, which direction" logic shared by EarlyStopping,
//! ModelCheckpoint and ReduceLROnPlateau.

use strata_core::{Error, Result};

use super::Logs;

/// Whether a monitored value should go down or up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    /// From the name: up for accuracies, AUC, precision and recall; down
    /// for everything else (losses, errors).
    #[default]
    Auto,
    /// Lower is better.
    Min,
    /// Higher is better.
    Max,
}

/// A metric name, a direction and a minimum change.
#[derive(Clone, Debug)]
pub(crate) struct Monitor {
    pub(crate) key: String,
    pub(crate) mode: Mode,
    pub(crate) min_delta: f64,
}

impl Monitor {
    pub(crate) fn new(key: &str) -> Monitor {
        Monitor { key: key.to_string(), mode: Mode::Auto, min_delta: 0.0 }
    }

    /// Whether higher values are better.
    pub(crate) fn maximize(&self) -> bool {
        match self.mode {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => {
                let k = self.key.strip_prefix("val_").unwrap_or(&self.key);
                ["acc", "auc", "precision", "recall"].iter().any(|p| k.contains(p))
            }
        }
    }

    /// The worst possible value, to start from.
    pub(crate) fn worst(&self) -> f64 {
        if self.maximize() {
            f64::NEG_INFINITY
        } else {
            f64::INFINITY
        }
    }

    /// Whether `current` beats `reference` by more than `min_delta`.
    pub(crate) fn improved(&self, current: f64, reference: f64) -> bool {
        let d = self.min_delta.abs();
        if self.maximize() {
            current - d > reference
        } else {
            current + d < reference
        }
    }

    /// The monitored value, or an error listing what is logged.
    pub(crate) fn value(&self, who: &'static str, logs: &Logs) -> Result<f64> {
        logs.get(&self.key).ok_or_else(|| {
            let have: Vec<&str> = logs.keys().collect();
            Error::invalid(
                who,
                format!(
                    "monitors `{}`, which is not logged; available: [{}]{}",
                    self.key,
                    have.join(", "),
                    if self.key.starts_with("val_") { " (val_* needs validation data)" } else { "" }
                ),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_mode_follows_the_name() {
        assert!(!Monitor::new("val_loss").maximize());
        assert!(!Monitor::new("mae").maximize());
        assert!(Monitor::new("val_accuracy").maximize());
        assert!(Monitor::new("auc").maximize());
        let m = Monitor { mode: Mode::Max, ..Monitor::new("loss") };
        assert!(m.maximize());
    }

    #[test]
    fn min_delta_must_be_exceeded() {
        let m = Monitor { min_delta: 0.1, ..Monitor::new("loss") };
        assert!(m.improved(0.85, 1.0));
        assert!(!m.improved(0.95, 1.0));
        let m = Monitor { min_delta: 0.1, ..Monitor::new("accuracy") };
        assert!(m.improved(0.75, 0.6));
        assert!(!m.improved(0.65, 0.6));
    }
}
