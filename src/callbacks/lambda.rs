//! [`LambdaCallback`].

use strata_core::Result;

use super::Logs;
use super::{Callback, CallbackContext};

type EpochFn<'a> = Box<dyn FnMut(usize, &Logs, &mut CallbackContext<'_>) + 'a>;
type BatchFn<'a> = Box<dyn FnMut(usize, &Logs, &mut CallbackContext<'_>) + 'a>;
type BeginFn<'a> = Box<dyn FnMut(usize, &mut CallbackContext<'_>) + 'a>;
type TrainFn<'a> = Box<dyn FnMut(&mut CallbackContext<'_>) + 'a>;
type TrainEndFn<'a> = Box<dyn FnMut(&Logs, &mut CallbackContext<'_>) + 'a>;

/// A callback made of closures (Keras' `LambdaCallback`). Each closure also
/// gets the [`CallbackContext`], so it can stop training or change the
/// learning rate.
///
/// ```
/// use strata::callbacks::LambdaCallback;
/// let mut losses = Vec::new();
/// let cb = LambdaCallback::new().on_epoch_end(|epoch, logs, ctx| {
///     losses.push(logs["loss"]);
///     if epoch == 9 {
///         ctx.stop_training();
///     }
/// });
/// ```
#[derive(Default)]
pub struct LambdaCallback<'a> {
    train_begin: Option<TrainFn<'a>>,
    train_end: Option<TrainEndFn<'a>>,
    epoch_begin: Option<BeginFn<'a>>,
    epoch_end: Option<EpochFn<'a>>,
    batch_begin: Option<BeginFn<'a>>,
    batch_end: Option<BatchFn<'a>>,
}

impl<'a> LambdaCallback<'a> {
    /// A callback that does nothing until closures are added.
    pub fn new() -> Self {
        Self::default()
    }

    /// Runs before the first epoch.
    pub fn on_train_begin(mut self, f: impl FnMut(&mut CallbackContext<'_>) + 'a) -> Self {
        self.train_begin = Some(Box::new(f));
        self
    }

    /// Runs after training, with the last epoch's logs.
    pub fn on_train_end(mut self, f: impl FnMut(&Logs, &mut CallbackContext<'_>) + 'a) -> Self {
        self.train_end = Some(Box::new(f));
        self
    }

    /// Runs before each epoch, with the epoch (0-based).
    pub fn on_epoch_begin(mut self, f: impl FnMut(usize, &mut CallbackContext<'_>) + 'a) -> Self {
        self.epoch_begin = Some(Box::new(f));
        self
    }

    /// Runs after each epoch, with the epoch and its logs.
    pub fn on_epoch_end(mut self, f: impl FnMut(usize, &Logs, &mut CallbackContext<'_>) + 'a) -> Self {
        self.epoch_end = Some(Box::new(f));
        self
    }

    /// Runs before each batch, with the batch index within the epoch.
    pub fn on_train_batch_begin(mut self, f: impl FnMut(usize, &mut CallbackContext<'_>) + 'a) -> Self {
        self.batch_begin = Some(Box::new(f));
        self
    }

    /// Runs after each batch, with the batch index and the running logs.
    pub fn on_train_batch_end(mut self, f: impl FnMut(usize, &Logs, &mut CallbackContext<'_>) + 'a) -> Self {
        self.batch_end = Some(Box::new(f));
        self
    }
}

impl Callback for LambdaCallback<'_> {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_begin {
            f(ctx);
        }
        Ok(())
    }
    fn on_train_end(&mut self, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.train_end {
            f(logs, ctx);
        }
        Ok(())
    }
    fn on_epoch_begin(&mut self, epoch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.epoch_begin {
            f(epoch, ctx);
        }
        Ok(())
    }
    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.epoch_end {
            f(epoch, logs, ctx);
        }
        Ok(())
    }
    fn on_train_batch_begin(&mut self, batch: usize, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.batch_begin {
            f(batch, ctx);
        }
        Ok(())
    }
    fn on_train_batch_end(&mut self, batch: usize, logs: &Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if let Some(f) = &mut self.batch_end {
            f(batch, logs, ctx);
        }
        Ok(())
    }
}
