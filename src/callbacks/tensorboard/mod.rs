//! [`TensorBoard`]: training logs as TensorBoard event files.

mod events;

use std::path::{Path, PathBuf};

use strata_core::{Error, Result};

pub use events::SummaryWriter;

use super::{Callback, CallbackContext, Logs};

/// When [`TensorBoard`] writes batch-level scalars.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum UpdateFreq {
    /// Only at the end of each epoch (Keras' `update_freq="epoch"`).
    #[default]
    Epoch,
    /// Also `batch_*` scalars every this many training batches (Keras'
    /// `update_freq=N`; `"batch"` is `Batches(1)`).
    Batches(usize),
}

/// Writes training logs for TensorBoard, as Keras' `TensorBoard` callback:
///
/// - `log_dir/train`: `epoch_loss`, `epoch_accuracy`, ... and
///   `epoch_learning_rate` at step `epoch` (from 0); with
///   [`UpdateFreq::Batches`], `batch_loss`, ... (the epoch's running
///   values, as in the progress bar) at the global batch number (from 1);
///   with [`histogram_freq`](Self::histogram_freq), a histogram of every
///   weight, tagged `<weight>/histogram` (e.g. `dense.kernel/histogram`);
///   the model summary as text (tag `model_summary`, step 0);
/// - `log_dir/validation`: the `val_*` logs without the prefix
///   (`epoch_loss`, ...) at step `epoch`, and
///   `evaluation_loss_vs_iterations`, ... at the optimizer's iteration
///   count.
///
/// Each file is flushed at the end of every epoch, so `tensorboard --logdir
/// log_dir` follows training as it runs.
///
/// ```
/// use strata::prelude::*;
/// use strata::callbacks::{TensorBoard, UpdateFreq};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = std::env::temp_dir().join(format!("strata-doc-tb-{}", std::process::id()));
/// let dev = backend::native();
/// let x = Tensor::new(vec![0.0f32, 1.0, 2.0, 3.0], [4, 1], &dev)?;
/// let y = Tensor::new(vec![1.0f32, 3.0, 5.0, 7.0], [4, 1], &dev)?;
/// let mut model = Sequential::new().add(Input::new([1])).add(Dense::new(1)).build_on(&dev)?;
/// model.compile(SGD::new(0.05), "mse", &["mae"])?;
/// let mut tb = TensorBoard::new(&dir).histogram_freq(1).update_freq(UpdateFreq::Batches(1));
/// model.fit(&x, &y, FitOptions::default().epochs(2).batch_size(2).verbose(0).callback(&mut tb))?;
/// assert!(std::fs::read_dir(dir.join("train"))?.count() == 1);
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok(()) }
/// ```
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    update_freq: UpdateFreq,
    write_summary: bool,
    train: Option<SummaryWriter>,
    validation: Option<SummaryWriter>,
    global_batch: u64,
}

impl TensorBoard {
    /// Logs under `log_dir` (created if missing).
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            log_dir: log_dir.into(),
            histogram_freq: 0,
            update_freq: UpdateFreq::Epoch,
            write_summary: true,
            train: None,
            validation: None,
            global_batch: 0,
        }
    }

    /// Weight histograms every this many epochs (0, the default: none).
    pub fn histogram_freq(mut self, epochs: usize) -> Self {
        self.histogram_freq = epochs;
        self
    }

    /// Whether batch-level scalars are written too (default: per epoch only).
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// Whether the model summary is written as text (default `true`).
    pub fn write_summary(mut self, on: bool) -> Self {
        self.write_summary = on;
        self
    }

    /// The directory logs are written under.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    fn validation_writer(&mut self) -> Result<&mut SummaryWriter> {
        match &mut self.validation {
            Some(w) => Ok(w),
            slot => Ok(slot.insert(SummaryWriter::create(self.log_dir.join("validation"))?)),
        }
    }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, ctx: &mut CallbackContext<'_>) -> Result<()> {
        if self.update_freq == UpdateFreq::Batches(0) {
            return Err(Error::invalid("TensorBoard", "update_freq: Batches(n) needs n >= 1, received 0"));
        }
        self.global_batch = 0;
        self.validation = None;
        let mut train = SummaryWriter::create(self.log_dir.join("train"))?;
        if self.write_summary {
            // Four spaces make the table a Markdown code block in the Text tab.
            let table: String = ctx.model().summary_string().lines().map(|l| format!("    {l}\n")).collect();
            train.text("model_summary", &table, 0)?;
        }
        train.flush()?;
        self.train = Some(train);
        Ok(())
    }

    fn on_train_batch_end(&mut self, _batch: usize, logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.global_batch += 1;
        let UpdateFreq::Batches(n) = self.update_freq else { return Ok(()) };
        if self.global_batch % n as u64 != 0 {
            return Ok(());
        }
        let Some(w) = self.train.as_mut() else { return Ok(()) };
        for (name, value) in logs.iter().filter(|(k, _)| !k.starts_with("val_")) {
            w.scalar(&format!("batch_{name}"), value, self.global_batch as i64)?;
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, epoch: usize, logs: &mut Logs, ctx: &mut CallbackContext<'_>) -> Result<()> {
        let step = epoch as i64;
        let Some(train) = self.train.as_mut() else { return Ok(()) };
        let mut train_logs: Vec<(&str, f64)> = logs.iter().filter(|(k, _)| !k.starts_with("val_")).collect();
        if !logs.contains_key("learning_rate") {
            train_logs.push(("learning_rate", ctx.learning_rate()));
        }
        for (name, value) in train_logs {
            train.scalar(&format!("epoch_{name}"), value, step)?;
        }
        if self.histogram_freq > 0 && epoch % self.histogram_freq == 0 {
            for w in ctx.model().weights() {
                let values = w
                    .value
                    .to_vec::<f32>()
                    .or_else(|_| w.value.cast(strata_core::DType::F32).and_then(|t| t.to_vec::<f32>()))?;
                train.histogram(&format!("{}/histogram", w.name), &values, step)?;
            }
        }
        train.flush()?;
        let val: Vec<(String, f64)> =
            logs.iter().filter_map(|(k, v)| k.strip_prefix("val_").map(|k| (k.to_string(), v))).collect();
        if !val.is_empty() {
            let iterations = ctx.optimizer().iterations() as i64;
            let w = self.validation_writer()?;
            for (name, value) in &val {
                w.scalar(&format!("epoch_{name}"), *value, step)?;
            }
            for (name, value) in &val {
                w.scalar(&format!("evaluation_{name}_vs_iterations"), *value, iterations)?;
            }
            w.flush()?;
        }
        Ok(())
    }

    fn on_train_end(&mut self, _logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        for w in self.train.iter_mut().chain(self.validation.iter_mut()) {
            w.flush()?;
        }
        self.train = None;
        self.validation = None;
        Ok(())
    }
}
