//! Learning-rate callbacks, and [`TerminateOnNaN`].

use strata_core::{Error, Result};

use super::monitor::{Mode, Monitor};
use super::Logs;
use super::{Callback, CallbackContext};

/// Multiplies the learning rate by `factor` when a metric stops improving
/// (Keras' `ReduceLROnPlateau`, same defaults: `val_loss`, factor 0.1,
/// patience 10, min_delta 1e-4, cooldown 0, min_lr 0). Adds
/// `learning_rate` to the epoch logs.
///
/// ```
/// use strata::callbacks::ReduceLROnPlateau;
/// let reduce = ReduceLROnPlateau::new("val_loss").factor(0.5).patience(2).min_lr(1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLROnPlateau {
    monitor: Monitor,
    factor: f64,
    patience: usize,
    cooldown: usize,
    min_lr: f64,
    verbose: bool,
    wait: usize,
    cooldown_counter: usize,
    best: f64,
}

impl ReduceLROnPlateau {
    /// Watches `monitor` (a log key such as `"val_loss"`).
    pub fn new(monitor: &str) -> Self {
        ReduceLROnPlateau {
            monitor: Monitor { min_delta: 1e-4, ..Monitor::new(monitor) },
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            verbose: false,
            wait: 0,
            cooldown_counter: 0,
            best: f64::INFINITY,
        }
    }

    /// The multiplier, in (0, 1) (checked when training starts).
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before reducing (default 10).
    pub fn patience(mut self, epochs: usize) -> Self {
        self.patience = epochs;
        self
    }

    /// The smallest change that counts as an improvement (default 1e-4).
    pub fn min_delta(mut self, delta: f64) -> Self {
        self.monitor.min_delta = delta;
        self
    }

    /// Whether lower or higher is better (default from the name).
    pub fn mode(mut self, mode: Mode) -> Self {
        self.monitor.mode = mode;
        self
    }

    /// Epochs to wait after a reduction before counting again (default 0).
    pub fn cooldown(mut self, epochs: usize) -> Self {
        self.cooldown = epochs;
        self
    }

    /// The rate is never reduced below this (default 0).
    pub fn min_lr(mut self, lr: f64) -> Self {
        self.min_lr = lr;
        self
    }

    /// Prints a line at each reduction.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid(
                "ReduceLROnPlateau",
                format!("factor must be in (0, 1), received {}", self.factor),
            ));
        }
        self.wait = 0;
        self.cooldown_counter = 0;
        self.best = self.monitor.worst();
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        logs.insert("learning_rate", ctx.learning_rate());
        let current = self.monitor.value("ReduceLROnPlateau", logs)?;
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.wait = 0;
        }
        if self.monitor.improved(current, self.best) {
            self.best = current;
            self.wait = 0;
        } else if self.cooldown_counter == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                let old = ctx.learning_rate();
                // Compared in f32, as Keras stores the rate.
                if (old as f32) > (self.min_lr as f32) {
                    let new = (old * self.factor).max(self.min_lr);
                    ctx.set_learning_rate(new)?;
                    if self.verbose {
                        println!("\nEpoch {}: ReduceLROnPlateau reducing learning rate to {new}.", epoch + 1);
                    }
                    self.cooldown_counter = self.cooldown;
                    self.wait = 0;
                }
            }
        }
        Ok(())
    }
}

/// Sets the learning rate at the start of every epoch from a function of
/// the epoch (0-based) and the current rate (Keras'
/// `LearningRateScheduler`). Adds `learning_rate` to the epoch logs.
///
/// ```
/// use strata::callbacks::LearningRateScheduler;
/// // Halve the rate every 10 epochs.
/// let schedule = LearningRateScheduler::new(|epoch, lr| if epoch > 0 && epoch % 10 == 0 { lr * 0.5 } else { lr });
/// ```
pub struct LearningRateScheduler<F> {
    schedule: F,
    verbose: bool,
}

impl<F: FnMut(usize, f64) -> f64> LearningRateScheduler<F> {
    /// `schedule(epoch, current_rate)` returns the rate for `epoch`.
    pub fn new(schedule: F) -> Self {
        LearningRateScheduler { schedule, verbose: false }
    }

    /// Prints the rate set at each epoch.
    pub fn verbose(mut self, verbose: bool) -> Self {
        self.verbose = verbose;
        self
    }
}

impl<F: FnMut(usize, f64) -> f64> Callback for LearningRateScheduler<F> {
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let lr = (self.schedule)(epoch, ctx.learning_rate());
        if !lr.is_finite() || lr < 0.0 {
            return Err(Error::invalid(
                "LearningRateScheduler",
                format!("the schedule returned {lr} for epoch {epoch}; expected a finite rate >= 0"),
            ));
        }
        ctx.set_learning_rate(lr)?;
        if self.verbose {
            println!("\nEpoch {}: LearningRateScheduler setting learning rate to {lr}.", epoch + 1);
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        logs.insert("learning_rate", ctx.learning_rate());
        Ok(())
    }
}

/// Stops training as soon as the loss becomes NaN or infinite (Keras'
/// `TerminateOnNaN`).
#[derive(Clone, Copy, Debug, Default)]
pub struct TerminateOnNaN {
    terminated_at: Option<usize>,
}

impl TerminateOnNaN {
    /// A new callback.
    pub fn new() -> Self {
        TerminateOnNaN::default()
    }

    /// The batch (0-based, within its epoch) after which training stopped.
    pub fn terminated_at(&self) -> Option<usize> {
        self.terminated_at
    }
}

impl Callback for TerminateOnNaN {
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if logs.get("loss").is_some_and(|l| !l.is_finite()) {
            println!("Batch {batch}: Invalid loss, terminating training");
            self.terminated_at = Some(batch);
            ctx.stop_training();
        }
        Ok(())
    }
}
