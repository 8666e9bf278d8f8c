//! Training: [`Model::compile`], [`Model::fit`], [`Model::evaluate`],
//! [`Model::predict`] and the `*_on_batch` variants.
//!
//! One step of `fit`: slice a batch (shuffled each epoch by a seeded RNG),
//! run the model in training mode, add up the per-output losses (weighted
//! by `loss_weights`, honouring sample weights and output masks) and the
//! weights' regularization penalties, backpropagate, let the optimizer
//! update the trainable weights, then update the metrics on the detached
//! outputs. Every input is checked before the first step.

mod compile;
mod data;
mod history;
mod options;
#[cfg(feature = "plot")]
mod plot;
mod progress;

use serde_json::{json, Value};
use strata_core::{no_grad, Error, Result, Rng, Tensor};

pub use compile::{IntoLosses, IntoMetrics, Losses, Metrics};
pub use history::{History, Logs};
pub use options::{EvaluateOptions, FitOptions, PredictOptions};

use crate::callbacks::CallbackContext;
use crate::losses::Loss;
use crate::metrics::{resolve_metric, Metric, MetricSpec};
use crate::optimizers::{IntoOptimizer, Optimizer};
use crate::{Model, ModelInputs};
use data::Data;
use progress::Progress;

/// The state `compile` sets up: the optimizer, and what it minimises and
/// reports (kept apart so callbacks can borrow the optimizer mid-epoch).
pub(crate) struct Compiled {
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) objective: Objective,
}

/// Losses, their weights and metrics, per output.
pub(crate) struct Objective {
    pub(crate) losses: Vec<Loss>,
    pub(crate) loss_weights: Vec<f64>,
    pub(crate) metric_specs: Vec<MetricSpec>,
    /// For each output, indices into `metric_specs`.
    pub(crate) output_metrics: Vec<Vec<usize>>,
    /// Whether metrics see sample weights (Keras' `weighted_metrics`).
    pub(crate) weighted_metrics: bool,
}

impl Compiled {
    /// The compile arguments as JSON (saved with whole models).
    pub(crate) fn config(&self, outputs: &[&str]) -> Value {
        let mut config = self.objective.config(outputs);
        config["optimizer"] = self.optimizer.get_config();
        config
    }
}

impl Objective {
    fn config(&self, outputs: &[&str]) -> Value {
        let losses: serde_json::Map<String, Value> =
            outputs.iter().zip(&self.losses).map(|(o, l)| (o.to_string(), l.get_config())).collect();
        let metrics: serde_json::Map<String, Value> = outputs
            .iter()
            .zip(&self.output_metrics)
            .map(|(o, idx)| {
                let names: Vec<Value> = idx
                    .iter()
                    .map(|&i| match &self.metric_specs[i] {
                        MetricSpec::Name(n) => json!(n),
                        MetricSpec::Metric(m) => json!(m.name()),
                    })
                    .collect();
                (o.to_string(), Value::Array(names))
            })
            .collect();
        json!({
            "loss": losses,
            "loss_weights": self.loss_weights,
            "metrics": metrics,
            "weighted_metrics": self.weighted_metrics,
        })
    }
}

/// A running mean weighted by sample counts (Keras' `Mean` metric).
#[derive(Clone, Copy, Default)]
struct Mean {
    total: f64,
    count: f64,
}

impl Mean {
    fn add(&mut self, value: f64, weight: f64) {
        self.total += value * weight;
        self.count += weight;
    }
    fn result(&self) -> f64 {
        if self.count == 0.0 {
            0.0
        } else {
            self.total / self.count
        }
    }
}

/// The loss and metric accumulators of one epoch (or one evaluation).
struct Trackers {
    loss: Mean,
    output_losses: Vec<Mean>,
    output_names: Vec<String>,
    metrics: Vec<Vec<(String, Box<dyn Metric>)>>,
    weighted: bool,
}

impl Trackers {
    /// Resolves the compiled metric specs against real targets (so that
    /// `"accuracy"` picks its variant from the shapes, as Keras does).
    fn new(model: &Model, c: &Objective, ys: &[Tensor]) -> Result<Trackers> {
        let outputs = model.output_names();
        let specs = model.output_specs();
        let several = outputs.len() > 1;
        let mut metrics = Vec::with_capacity(outputs.len());
        for (o, idx) in c.output_metrics.iter().enumerate() {
            let y_pred: Vec<usize> = specs[o].dims.iter().map(|d| d.unwrap_or(ys[o].dims()[0])).collect();
            let mut list: Vec<(String, Box<dyn Metric>)> = Vec::new();
            for &i in idx {
                let m = resolve_metric(&c.metric_specs[i], &c.losses[o], ys[o].dims(), &y_pred)?;
                let key = if several { format!("{}_{}", outputs[o], m.name()) } else { m.name().to_string() };
                if key == "loss" || key.ends_with("_loss") || list.iter().any(|(k, _)| *k == key) {
                    return Err(Error::invalid(
                        "compile",
                        format!("two values would be logged as `{key}`; give the metric another name"),
                    ));
                }
                list.push((key, m));
            }
            metrics.push(list);
        }
        Ok(Trackers {
            loss: Mean::default(),
            output_losses: vec![Mean::default(); if several { outputs.len() } else { 0 }],
            output_names: outputs.iter().map(|s| s.to_string()).collect(),
            metrics,
            weighted: c.weighted_metrics,
        })
    }

    fn reset(&mut self) {
        self.loss = Mean::default();
        self.output_losses.iter_mut().for_each(|m| *m = Mean::default());
        self.metrics.iter_mut().flatten().for_each(|(_, m)| m.reset_state());
    }

    /// Adds one batch: its total and per-output losses and its outputs.
    fn update(&mut self, batch: &Data, out: &BatchOutput) -> Result<()> {
        let n = batch.len as f64;
        self.loss.add(out.total, n);
        for (m, v) in self.output_losses.iter_mut().zip(&out.per_output) {
            m.add(*v, n);
        }
        // Keras: compiled metrics ignore sample weights unless weighted.
        let sw = if self.weighted { batch.sw.as_ref() } else { None };
        no_grad(|| {
            for (o, list) in self.metrics.iter_mut().enumerate() {
                let y_pred = out.outputs[o].detach();
                for (_, m) in list {
                    m.update_state(&batch.ys[o], &y_pred, sw, out.masks[o].as_ref())?;
                }
            }
            Ok(())
        })
    }

    fn logs(&self, prefix: &str) -> Logs {
        let mut logs = Logs::new();
        logs.insert(format!("{prefix}loss"), self.loss.result());
        for (name, m) in self.output_names.iter().zip(&self.output_losses) {
            logs.insert(format!("{prefix}{name}_loss"), m.result());
        }
        for (key, m) in self.metrics.iter().flatten() {
            logs.insert(format!("{prefix}{key}"), m.result());
        }
        logs
    }
}

/// What one batch produced.
struct BatchOutput {
    total: f64,
    per_output: Vec<f64>,
    outputs: Vec<Tensor>,
    masks: Vec<Option<Tensor>>,
}

fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", "must be at least 1, received 0"));
    }
    Ok(())
}

fn check_verbose(verbose: u8) -> Result<()> {
    if verbose > 2 {
        return Err(Error::invalid("verbose", format!("must be 0, 1 or 2, received {verbose}")));
    }
    Ok(())
}

impl Model {
    /// Configures training: the optimizer, the loss (one for every output,
    /// or [`Losses`] per output with weights) and the metrics.
    ///
    /// Strings and typed values are both accepted; an unknown name is an
    /// error listing the valid ones. `"accuracy"` becomes binary,
    /// categorical or sparse categorical accuracy from the loss and the
    /// shapes, as in Keras. Compiling again replaces the optimizer (and its
    /// state).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let mut model = Sequential::new()
    ///     .add(Input::new([4]))
    ///     .add(Dense::new(3).activation("softmax"))
    ///     .build_on(&backend::native())?;
    /// model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    /// let err = model.compile("adamm", "mse", ()).unwrap_err().to_string();
    /// assert!(err.contains("adamm") && err.contains("adam"));
    /// # Ok(()) }
    /// ```
    pub fn compile(
        &mut self,
        optimizer: impl IntoOptimizer,
        loss: impl IntoLosses,
        metrics: impl IntoMetrics,
    ) -> Result<()> {
        let optimizer = optimizer.into_optimizer()?;
        let outputs = self.output_names();
        let (losses, loss_weights) = loss.into_losses()?.resolve(&outputs)?;
        let metrics = metrics.into_metrics();
        let weighted_metrics = metrics.weighted;
        let (metric_specs, output_metrics) = metrics.resolve(&outputs)?;
        // Unknown metric names fail here, not at the first fit (the variant
        // of "accuracy" is picked later, from the targets' shapes).
        for (o, idx) in output_metrics.iter().enumerate() {
            for &i in idx {
                resolve_metric(&metric_specs[i], &losses[o], &[], &[])?;
            }
        }
        let objective = Objective { losses, loss_weights, metric_specs, output_metrics, weighted_metrics };
        let compiled = Compiled { optimizer, objective };
        *self.compiled.get_mut().map_err(|_| Error::msg("model lock poisoned"))? = Some(compiled);
        Ok(())
    }

    /// Whether [`compile`](Self::compile) has been called.
    pub fn is_compiled(&self) -> bool {
        self.compiled.lock().map(|c| c.is_some()).unwrap_or(false)
    }

    /// The compile configuration as JSON (optimizer, losses, loss weights and
    /// metrics by output), or `None` before `compile`.
    pub fn compile_config(&self) -> Option<Value> {
        let guard = self.compiled.lock().ok()?;
        guard.as_ref().map(|c| c.config(&self.output_names()))
    }

    /// The optimizer's current learning rate, or `None` before `compile`.
    pub fn learning_rate(&self) -> Option<f64> {
        let guard = self.compiled.lock().ok()?;
        guard.as_ref().map(|c| c.optimizer.learning_rate())
    }

    /// Runs `f` with the compiled state taken out of the model, so the model
    /// itself can be borrowed freely; the state goes back even on error.
    fn with_compiled<T>(&self, what: &'static str, f: impl FnOnce(&mut Compiled) -> Result<T>) -> Result<T> {
        let mut guard = self.compiled.lock().map_err(|_| Error::msg("model lock poisoned"))?;
        let mut c = guard.take().ok_or_else(|| {
            Error::invalid(what, "the model is not compiled; call `model.compile(optimizer, loss, metrics)` first")
        })?;
        drop(guard);
        let result = f(&mut c);
        if let Ok(mut guard) = self.compiled.lock() {
            *guard = Some(c);
        }
        result
    }

    /// Forward pass and the batch loss: the weighted per-output losses plus
    /// the regularization penalties (in training and in evaluation, as
    /// Keras reports it).
    fn batch_loss(&self, c: &Objective, batch: &Data, training: bool) -> Result<(Tensor, BatchOutput)> {
        let (outputs, masks) = self.forward_masked(&batch.xs, training)?;
        let names = self.output_names();
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::with_capacity(outputs.len());
        for (o, loss) in c.losses.iter().enumerate() {
            let l = loss
                .compute(&batch.ys[o], &outputs[o], batch.sw.as_ref(), masks[o].as_ref())
                .map_err(|e| e.in_layer(format!("loss `{}` on output `{}`", loss.name(), names[o])))?;
            if outputs.len() > 1 {
                per_output.push(f64::from(l.to_scalar::<f32>()?));
            }
            let w = c.loss_weights[o];
            let l = if w == 1.0 { l } else { l.mul_scalar(w)? };
            total = Some(match total {
                Some(t) => t.add(&l)?,
                None => l,
            });
        }
        let mut total = total.ok_or_else(|| Error::Graph("the model has no outputs".into()))?;
        if let Some(reg) = self.regularization_loss()? {
            total = total.add(&reg)?;
        }
        let value = f64::from(total.to_scalar::<f32>()?);
        Ok((total, BatchOutput { total: value, per_output, outputs, masks }))
    }

    /// One optimizer step on one batch.
    fn train_batch(&self, c: &Objective, optimizer: &mut dyn Optimizer, batch: &Data) -> Result<BatchOutput> {
        let (loss, out) = self.batch_loss(c, batch, true)?;
        let grads = loss.backward()?;
        let weights = self.trainable_weights();
        let params: Vec<(&str, &Tensor, &Tensor)> =
            weights.iter().filter_map(|w| grads.get(&w.value).map(|g| (w.name.as_str(), &w.value, g))).collect();
        optimizer.apply_gradients(&params)?;
        Ok(out)
    }

    /// Evaluates prepared data batch by batch into fresh trackers.
    fn run_evaluation(&self, c: &Objective, data: &Data, batch_size: usize, verbose: u8) -> Result<Logs> {
        let mut trackers = Trackers::new(self, c, &data.ys)?;
        let steps = data.len.div_ceil(batch_size);
        let mut progress = Progress::new(verbose, steps);
        no_grad(|| {
            for step in 0..steps {
                let start = step * batch_size;
                let tracked = &mut trackers;
                self.device().run(|| -> Result<()> {
                    let batch = data.range(start, batch_size.min(data.len - start))?;
                    let (_, out) = self.batch_loss(c, &batch, false)?;
                    tracked.update(&batch, &out)
                })?;
                progress.update(step + 1, &trackers.logs(""));
            }
            Ok(())
        })?;
        let logs = trackers.logs("");
        progress.finish(steps, &logs);
        Ok(logs)
    }

    /// Trains the model for `options.epochs` epochs and returns the
    /// per-epoch metrics.
    ///
    /// `x` is one tensor or one per model input (f32 features, or i64 ids
    /// for an `Embedding` input); `y` is one target tensor per output
    /// (integer labels or f32 values). Everything is checked before the
    /// first step — sample counts, shapes against the model's inputs,
    /// labels against the outputs, NaN/inf in the data, the options — and
    /// each problem is an error naming it.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// // y = 1 when x0 > x1.
    /// let x = Tensor::new(vec![0.9f32, 0.1, 0.2, 0.8, 0.7, 0.3, 0.1, 0.6], [4, 2], &dev)?;
    /// let y = Tensor::new(vec![1i64, 0, 1, 0], [4], &dev)?;
    /// let mut model = Sequential::new()
    ///     .add(Input::new([2]))
    ///     .add(Dense::new(2).activation("softmax"))
    ///     .seed(0)
    ///     .build_on(&dev)?;
    /// model.compile(SGD::new(0.5), "sparse_categorical_crossentropy", &["accuracy"])?;
    /// let history = model.fit(&x, &y, FitOptions::default().epochs(30).batch_size(4).verbose(0))?;
    /// let loss = history.get("loss").unwrap();
    /// assert!(loss[29] < loss[0]);
    /// assert_eq!(history.last("accuracy"), Some(1.0));
    /// # Ok(()) }
    /// ```
    pub fn fit(&mut self, x: impl ModelInputs, y: impl ModelInputs, options: FitOptions<'_>) -> Result<History> {
        let x = x.into_tensors();
        let y = y.into_tensors();
        let this: &Model = self;
        this.with_compiled("fit", |c| this.fit_compiled(c, x, y, options))
    }

    fn fit_compiled(&self, c: &mut Compiled, x: Vec<Tensor>, y: Vec<Tensor>, mut o: FitOptions<'_>) -> Result<History> {
        check_batch_size(o.batch_size)?;
        check_verbose(o.verbose)?;
        if !(0.0..1.0).contains(&o.validation_split) {
            return Err(Error::invalid(
                "validation_split",
                format!("must be in [0, 1), received {}", o.validation_split),
            ));
        }
        if o.initial_epoch > o.epochs {
            return Err(Error::invalid("initial_epoch", format!("{} is past epochs = {}", o.initial_epoch, o.epochs)));
        }
        let mut train = Data::new(self, Some(&c.objective.losses), x, y, o.sample_weight.take(), "")?;
        if let Some(cw) = &o.class_weight {
            if self.outputs.len() > 1 {
                return Err(Error::invalid("class_weight", "is only supported for models with one output"));
            }
            train.apply_class_weight(cw)?;
        }
        let validation = if let Some(v) = o.validation_data.take() {
            Some(Data::new(self, Some(&c.objective.losses), v.x, v.y, v.sample_weight, "validation ")?)
        } else if o.validation_split > 0.0 {
            // Keras: the last fraction, taken before shuffling.
            let split_at = (train.len as f64 * (1.0 - o.validation_split)) as usize;
            if split_at == 0 || split_at == train.len {
                return Err(Error::invalid(
                    "validation_split",
                    format!(
                        "{} of {} samples leaves {} for training and {} for validation; both need at least one",
                        o.validation_split,
                        train.len,
                        split_at,
                        train.len - split_at
                    ),
                ));
            }
            let val = train.range(split_at, train.len - split_at)?;
            train = train.range(0, split_at)?;
            Some(val)
        } else {
            None
        };

        let mut shuffle_rng = match o.seed {
            Some(s) => Rng::seed(s),
            None => self.rng.lock().map(|mut r| r.fork()).map_err(|_| Error::msg("model rng lock poisoned"))?,
        };
        let bs = o.batch_size;
        let steps = train.len.div_ceil(bs);
        let mut trackers = Trackers::new(self, &c.objective, &train.ys)?;
        let mut history = History::default();
        let mut callbacks = std::mem::take(&mut o.callbacks);
        let compile_config = c.config(&self.output_names());
        let mut ctx = CallbackContext {
            model: self,
            optimizer: &mut *c.optimizer,
            stop: false,
            epochs: o.epochs,
            steps,
            compile_config: &compile_config,
        };
        for cb in &mut callbacks {
            cb.on_train_begin(&mut ctx)?;
        }
        let mut last_logs = Logs::new();
        let mut order: Vec<usize> = (0..train.len).collect();
        for epoch in o.initial_epoch..o.epochs {
            trackers.reset();
            for cb in &mut callbacks {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
            Progress::epoch_header(o.verbose, epoch, o.epochs);
            let mut progress = Progress::new(o.verbose, steps);
            if o.shuffle {
                shuffle_rng.shuffle(&mut order);
            }
            let mut done = 0;
            for (step, idx) in order.chunks(bs).enumerate() {
                for cb in &mut callbacks {
                    cb.on_train_batch_begin(step, &mut ctx)?;
                }
                // The whole step on the device's own thread (a pool thread on native).
                let optimizer = &mut *ctx.optimizer;
                let tracked = &mut trackers;
                self.device().run(|| -> Result<()> {
                    let batch = train.select(idx)?;
                    let out = self.train_batch(&c.objective, optimizer, &batch)?;
                    tracked.update(&batch, &out)
                })?;
                let logs = trackers.logs("");
                for cb in &mut callbacks {
                    cb.on_train_batch_end(step, &logs, &mut ctx)?;
                }
                done = step + 1;
                progress.update(done, &logs);
                if ctx.stop {
                    break;
                }
            }
            let mut logs = trackers.logs("");
            if let Some(val) = &validation {
                let val_logs = self.run_evaluation(&c.objective, val, bs, 0)?;
                logs.extend(val_logs.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            for cb in &mut callbacks {
                cb.on_epoch_end(epoch, &mut logs, &mut ctx)?;
            }
            progress.finish(done, &logs);
            history.record(epoch, &logs);
            last_logs = logs;
            if ctx.stop {
                break;
            }
        }
        for cb in &mut callbacks {
            cb.on_train_end(&last_logs, &mut ctx)?;
        }
        Ok(history)
    }
}

impl Model {
    /// The loss and metrics on `x`/`y`, by name (`"loss"`, `"accuracy"`),
    /// in batches of 32 with a progress bar. See
    /// [`evaluate_with`](Self::evaluate_with) for options.
    pub fn evaluate(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Logs> {
        self.evaluate_with(x, y, EvaluateOptions::default())
    }

    /// [`evaluate`](Self::evaluate) with a batch size, verbosity and sample
    /// weights.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let mut model = Sequential::new().add(Input::new([1])).add(Dense::new(1)).build_on(&dev)?;
    /// model.set_weights([("dense.kernel", &Tensor::new(vec![2.0f32], [1, 1], &dev)?)])?;
    /// model.compile("sgd", "mse", &["mae"])?;
    /// let x = Tensor::new(vec![1.0f32, 2.0], [2, 1], &dev)?;
    /// let y = Tensor::new(vec![2.0f32, 5.0], [2, 1], &dev)?; // errors 0 and 1
    /// let logs = model.evaluate_with(&x, &y, EvaluateOptions::default().verbose(0))?;
    /// assert_eq!((logs["loss"], logs["mae"]), (0.5, 0.5));
    /// # Ok(()) }
    /// ```
    pub fn evaluate_with(&self, x: impl ModelInputs, y: impl ModelInputs, options: EvaluateOptions) -> Result<Logs> {
        check_batch_size(options.batch_size)?;
        check_verbose(options.verbose)?;
        let (x, y) = (x.into_tensors(), y.into_tensors());
        self.with_compiled("evaluate", |c| {
            let data = Data::new(self, Some(&c.objective.losses), x, y, options.sample_weight.clone(), "")?;
            self.run_evaluation(&c.objective, &data, options.batch_size, options.verbose)
        })
    }

    /// The outputs of a one-output model on `x`, computed in batches of 32
    /// without recording gradients. Needs no `compile`.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
    /// let probs = model.predict(&Tensor::zeros([100, 3], DType::F32, &dev)?)?;
    /// assert_eq!(probs.dims(), &[100, 2]);
    /// # Ok(()) }
    /// ```
    pub fn predict(&self, x: impl ModelInputs) -> Result<Tensor> {
        self.predict_with(x, PredictOptions::default())
    }

    /// [`predict`](Self::predict) with a batch size and verbosity.
    pub fn predict_with(&self, x: impl ModelInputs, options: PredictOptions) -> Result<Tensor> {
        let mut outs = self.predict_outputs_with(x, options)?;
        if outs.len() != 1 {
            return Err(Error::invalid(
                "predict",
                format!(
                    "the model has {} outputs [{}]; use `predict_outputs` to get all of them",
                    outs.len(),
                    self.output_names().join(", ")
                ),
            ));
        }
        Ok(outs.remove(0))
    }

    /// Every output of the model on `x`, in output order.
    pub fn predict_outputs(&self, x: impl ModelInputs) -> Result<Vec<Tensor>> {
        self.predict_outputs_with(x, PredictOptions::default())
    }

    /// [`predict_outputs`](Self::predict_outputs) with options.
    pub fn predict_outputs_with(&self, x: impl ModelInputs, options: PredictOptions) -> Result<Vec<Tensor>> {
        check_batch_size(options.batch_size)?;
        check_verbose(options.verbose)?;
        let data = Data::new(self, None, x.into_tensors(), Vec::new(), None, "")?;
        let bs = options.batch_size;
        let steps = data.len.div_ceil(bs);
        let mut progress = Progress::new(options.verbose, steps);
        let mut chunks: Vec<Vec<Tensor>> = vec![Vec::with_capacity(steps); self.outputs.len()];
        no_grad(|| {
            for step in 0..steps {
                let start = step * bs;
                let outputs = self.device().run(|| {
                    let batch = data.range(start, bs.min(data.len - start))?;
                    self.forward(&batch.xs, false)
                })?;
                for (o, t) in outputs.into_iter().enumerate() {
                    chunks[o].push(t);
                }
                progress.update(step + 1, &Logs::new());
            }
            Ok(())
        })?;
        progress.finish(steps, &Logs::new());
        chunks
            .iter()
            .map(|parts| match parts.as_slice() {
                [one] => Ok(one.clone()),
                parts => Tensor::concat(&parts.iter().collect::<Vec<_>>(), 0),
            })
            .collect()
    }

    /// One optimizer step on exactly this batch; returns its loss and
    /// metrics (metrics are not accumulated across calls).
    pub fn train_on_batch(&mut self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        let this: &Model = self;
        this.with_compiled("train_on_batch", |c| {
            let batch = Data::new(this, Some(&c.objective.losses), x, y, None, "")?;
            let mut trackers = Trackers::new(this, &c.objective, &batch.ys)?;
            let out = this.train_batch(&c.objective, &mut *c.optimizer, &batch)?;
            trackers.update(&batch, &out)?;
            Ok(trackers.logs(""))
        })
    }

    /// The loss and metrics of exactly this batch, without training.
    pub fn test_on_batch(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        self.with_compiled("test_on_batch", |c| {
            let batch = Data::new(self, Some(&c.objective.losses), x, y, None, "")?;
            let mut trackers = Trackers::new(self, &c.objective, &batch.ys)?;
            let (_, out) = no_grad(|| self.batch_loss(&c.objective, &batch, false))?;
            trackers.update(&batch, &out)?;
            Ok(trackers.logs(""))
        })
    }

    /// The outputs of a one-output model on exactly this batch.
    pub fn predict_on_batch(&self, x: impl ModelInputs) -> Result<Tensor> {
        let x = x.into_tensors();
        let n = x.first().and_then(|t| t.dims().first().copied()).unwrap_or(1).max(1);
        self.predict_with(&x, PredictOptions::default().batch_size(n))
    }
}
