//! [`Model::fit`] and [`Model::train_on_batch`].

use strata_core::{Error, Result, Rng, Tensor};

use super::data::Data;
use super::progress::Progress;
use super::trackers::Trackers;
use super::{check_batch_size, check_verbose, Compiled, FitOptions};
use crate::callbacks::{Callback, CallbackContext, History, Logs};
use crate::{Model, ModelInputs};

impl Model {
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
        let plan = self.training_plan(c, "fit")?;
        let mut history = History::default();
        let mut callbacks = std::mem::take(&mut o.callbacks);
        let compile_config = c.config(&self.output_names()).to_value();
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
        history.on_train_begin(&mut ctx)?;
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
                    let out = self.train_batch(&c.objective, &plan, optimizer, &batch)?;
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
                let val_logs = self.run_evaluation(&c.objective, &plan, val, bs, 0)?;
                logs.extend(val_logs.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
            }
            for cb in &mut callbacks {
                cb.on_epoch_end(epoch, &mut logs, &mut ctx)?;
            }
            history.on_epoch_end(epoch, &mut logs, &mut ctx)?;
            progress.finish(done, &logs);
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

    /// One optimizer step on exactly this batch; returns its loss and
    /// metrics (metrics are not accumulated across calls).
    pub fn train_on_batch(&mut self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        let this: &Model = self;
        this.with_compiled("train_on_batch", |c| {
            let batch = Data::new(this, Some(&c.objective.losses), x, y, None, "")?;
            let mut trackers = Trackers::new(this, &c.objective, &batch.ys)?;
            let plan = this.training_plan(c, "train_on_batch")?;
            let out = this.train_batch(&c.objective, &plan, &mut *c.optimizer, &batch)?;
            trackers.update(&batch, &out)?;
            Ok(trackers.logs(""))
        })
    }
}
