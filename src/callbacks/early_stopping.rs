//! [`EarlyStopping`].

use strata_core::Result;

use super::monitor::{Mode, Monitor};
use super::Logs;
use super::{Callback, CallbackContext};

/// Stops training when a monitored metric has stopped improving (Keras'
/// `EarlyStopping`, same defaults: `val_loss`, `patience` 0, `min_delta`
/// 0, mode auto).
///
/// With `restore_best_weights(true)` the weights of the best epoch are put
/// back when training ends.
///
/// ```
/// use strata::callbacks::EarlyStopping;
/// let stop = EarlyStopping::new("val_loss").patience(3).min_delta(1e-3).restore_best_weights(true);
/// ```
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    monitor: Monitor,
    patience: usize,
    baseline: Option<f64>,
    restore_best_weights: bool,
    start_from_epoch: usize,
    verbose: bool,
    wait: usize,
    best: f64,
    best_epoch: Option<usize>,
    stopped_epoch: Option<usize>,
    best_weights: Option<crate::WeightSnapshot>,
}

impl EarlyStopping {
    /// Watches `monitor` (a log key such as `"val_loss"` or `"accuracy"`).
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            monitor: Monitor::new(monitor),
            patience: 0,
            baseline: None,
            restore_best_weights: false,
            start_from_epoch: 0,
            verbose: false,
            wait: 0,
            best: f64::INFINITY,
            best_epoch: None,
            stopped_epoch: None,
            best_weights: None,
        }
    }

    /// Epochs without improvement to wait before stopping (default 0).
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The smallest change that counts as an improvement (default 0).
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.monitor.min_delta = delta;
        self
    }

    /// Whether lower or higher is better (default from the name).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// A value the metric must beat; until it does, epochs count towards
    /// `patience` even if they improve.
    pub fn baseline(mut self, value: f64) -> Self {
        self.baseline = Some(value);
        self
    }

    /// Put back the best epoch's weights when training ends (default false).
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// Epochs to train before watching (warm-up; default 0).
    pub fn start_from_epoch(mut self, epoch: usize) -> Self {
        self.start_from_epoch = epoch;
        self
    }

    /// Prints a line when it stops and when it restores weights.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }

    /// The epoch (0-based) at which training was stopped, if it was.
    pub fn stopped_epoch(&self) -> Option<usize> {
        self.stopped_epoch
    }

    /// The epoch (0-based) with the best monitored value so far.
    pub fn best_epoch(&self) -> Option<usize> {
        self.best_epoch
    }

    /// The best monitored value so far.
    pub fn best(&self) -> f64 {
        self.best
    }
}

impl Callback for EarlyStopping {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.wait = 0;
        self.best = self.monitor.worst();
        self.best_epoch = None;
        self.stopped_epoch = None;
        self.best_weights = None;
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let current = self.monitor.value("EarlyStopping", logs)?;
        if epoch < self.start_from_epoch {
            return Ok(());
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            // Restore something even if no epoch ever improves.
            self.best_weights = Some(ctx.model().snapshot_weights()?);
            self.best_epoch = Some(epoch);
        }
        self.wait += 1;
        if self.monitor.improved(current, self.best) {
            self.best = current;
            self.best_epoch = Some(epoch);
            if self.restore_best_weights {
                self.best_weights = Some(ctx.model().snapshot_weights()?);
            }
            if self.baseline.is_none_or(|b| self.monitor.improved(current, b)) {
                self.wait = 0;
            }
            return Ok(());
        }
        if self.wait >= self.patience && epoch > 0 {
            self.stopped_epoch = Some(epoch);
            ctx.stop_training();
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let (Some(epoch), true) = (self.stopped_epoch, self.verbose) {
            println!("Epoch {}: early stopping", epoch + 1);
        }
        if let Some(w) = &self.best_weights {
            if self.verbose {
                println!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    self.best_epoch.map_or(0, |e| e + 1)
                );
            }
            ctx.model().restore_weights(w)?;
        }
        Ok(())
    }
}
