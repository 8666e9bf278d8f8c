//! Callbacks: code that runs at fixed points of [`Model::fit`] and can read
//! the logs, change the learning rate, save or restore weights, or stop
//! training.
//!
//! Built in: [`EarlyStopping`], [`ModelCheckpoint`], [`ReduceLROnPlateau`],
//! [`LearningRateScheduler`], [`CsvLogger`], [`TerminateOnNaN`],
//! `TensorBoard` (feature `tensorboard`, default), and
//! [`LambdaCallback`] for closures. A custom callback implements the hooks it
//! needs; all have empty defaults.
//!
//! ```
//! use strata::callbacks::{Callback, CallbackContext};
//! use strata::{Logs, Result};
//!
//! /// Stops once training accuracy passes a target.
//! struct StopAt(f64);
//!
//! impl Callback for StopAt {
//!     fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
//!         if logs.get("accuracy").is_some_and(|a| a >= self.0) {
//!             ctx.stop_training();
//!         }
//!         Ok(())
//!     }
//! }
//! ```
//!
//! [`Model::fit`]: crate::Model::fit

use strata_core::Result;

use crate::optimizers::Optimizer;
use crate::Model;

mod checkpoint;
mod csv_logger;
mod early_stopping;
mod history;
mod lambda;
mod lr;
mod monitor;
#[cfg(feature = "tensorboard")]
mod tensorboard;

pub use checkpoint::ModelCheckpoint;
pub use csv_logger::CsvLogger;
pub use early_stopping::EarlyStopping;
pub use history::{History, Logs};
pub use lambda::LambdaCallback;
pub use lr::{LearningRateScheduler, ReduceLROnPlateau, TerminateOnNaN};
pub use monitor::Mode;
#[cfg(feature = "tensorboard")]
pub use tensorboard::{SummaryWriter, TensorBoard, UpdateFreq};

/// What a callback can see and change while `fit` runs.
pub struct CallbackContext<'a> {
    pub(crate) model: &'a Model,
    pub(crate) optimizer: &'a mut dyn Optimizer,
    pub(crate) stop: bool,
    pub(crate) epochs: usize,
    pub(crate) steps: Option<usize>,
    pub(crate) compile_config: &'a serde_json::Value,
}

impl CallbackContext<'_> {
    /// The model being trained (its weights can be read and set).
    pub fn model(&self) -> &Model {
        self.model
    }

    /// The optimizer's current learning rate.
    pub fn learning_rate(&self) -> f64 {
        self.optimizer.learning_rate()
    }

    /// Sets a constant learning rate (an error when a schedule drives it).
    pub fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
        self.optimizer.set_learning_rate(lr)
    }

    /// The optimizer (its iterations, config and slot variables).
    pub fn optimizer(&self) -> &dyn Optimizer {
        &*self.optimizer
    }

    /// Asks `fit` to stop after the current batch (Keras'
    /// `model.stop_training = True`).
    pub fn stop_training(&mut self) {
        self.stop = true;
    }

    /// Whether a callback has asked to stop.
    pub fn stop_requested(&self) -> bool {
        self.stop
    }

    /// The `epochs` argument of this `fit` call.
    pub fn epochs(&self) -> usize {
        self.epochs
    }

    /// Training batches per epoch; `None` for a dataset of unknown length.
    pub fn steps_per_epoch(&self) -> Option<usize> {
        self.steps
    }

    /// The compile configuration (optimizer, losses, metrics) as saved with
    /// a whole model.
    pub fn compile_config(&self) -> &serde_json::Value {
        self.compile_config
    }
}

/// Hooks called by [`Model::fit`](crate::Model::fit). Every method has an
/// empty default; an `Err` stops training and is returned by `fit`.
///
/// Epochs and batches are numbered from 0. `on_epoch_end` receives the
/// epoch's logs (training metrics and `val_*`) and may add entries, as
/// Keras' `ReduceLROnPlateau` adds `learning_rate`.
pub trait Callback {
    /// Before the first epoch.
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// After the last epoch (also after an early stop), with the last
    /// epoch's logs.
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = (logs, ctx);
        Ok(())
    }

    /// Before each epoch.
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = (epoch, ctx);
        Ok(())
    }

    /// After each epoch, once validation has run.
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = (epoch, logs, ctx);
        Ok(())
    }

    /// Before each training batch.
    fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = (batch, ctx);
        Ok(())
    }

    /// After each training batch, with the epoch's running metrics.
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let _ = (batch, logs, ctx);
        Ok(())
    }
}

impl<C: Callback + ?Sized> Callback for &mut C {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_train_begin(ctx)
    }
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_train_end(logs, ctx)
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_epoch_begin(epoch, ctx)
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_epoch_end(epoch, logs, ctx)
    }
    fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_train_batch_begin(batch, ctx)
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        (**self).on_train_batch_end(batch, logs, ctx)
    }
}
