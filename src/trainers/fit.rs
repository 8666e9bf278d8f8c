//! [`Model::fit`] and [`Model::train_on_batch`].

use strata_core::{Error, Result, Rng, Tensor};

use super::data::Data;
use super::feed::{Feed, Stream};
use super::progress::Progress;
use super::step::StepAt;
use super::trackers::Trackers;
use super::{check_batch_size, check_verbose, Compiled, FitOptions};
use crate::callbacks::{Callback, CallbackContext, History, Logs};
use crate::data::Dataset;
use crate::{Model, ModelInputs};

/// What `fit` trains on.
enum Train<'d> {
    Tensors(Vec<Tensor>, Vec<Tensor>),
    Dataset(&'d dyn Dataset),
}

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
        this.with_compiled("fit", |c| this.fit_compiled(c, Train::Tensors(x, y), options))
    }

    /// Trains the model on a [`Dataset`] of batches, read ahead on
    /// [`workers`](FitOptions::workers) threads while the model trains:
    /// Keras' `fit(dataset)` for data bigger than memory (see
    /// [`strata::data`](crate::data)).
    ///
    /// Each batch is checked as `fit` checks tensors (shapes, labels,
    /// NaN/inf), and an error names the batch. Every epoch is one pass over
    /// the dataset, in a batch order reshuffled each epoch unless
    /// [`shuffle(false)`](FitOptions::shuffle); with
    /// [`steps_per_epoch`](FitOptions::steps_per_epoch) epochs take that
    /// many batches and read on across epochs. `batch_size`,
    /// `sample_weight` and `validation_split` are the dataset's business
    /// and are errors here, as in Keras; validate with
    /// [`validation_dataset`](FitOptions::validation_dataset) or
    /// [`validation_data`](FitOptions::validation_data).
    ///
    /// ```
    /// use strata::prelude::*;
    /// use strata::data::{self, Source};
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let x = Tensor::new(vec![0.9f32, 0.1, 0.2, 0.8, 0.7, 0.3, 0.1, 0.6], [4, 2], &dev)?;
    /// let y = Tensor::new(vec![1i64, 0, 1, 0], [4], &dev)?;
    /// let batches = data::from_tensors(&x, &y)?.shuffle(4).seed(0).batch(2);
    /// let mut model = Sequential::new()
    ///     .add(Input::new([2]))
    ///     .add(Dense::new(2).activation("softmax"))
    ///     .seed(0)
    ///     .build_on(&dev)?;
    /// model.compile(SGD::new(0.5), "sparse_categorical_crossentropy", &["accuracy"])?;
    /// let history = model.fit_dataset(&batches, FitOptions::default().epochs(30).workers(2).verbose(0))?;
    /// assert_eq!(history.last("accuracy"), Some(1.0));
    /// # Ok(()) }
    /// ```
    pub fn fit_dataset(&mut self, data: impl Dataset, options: FitOptions<'_>) -> Result<History> {
        let this: &Model = self;
        this.with_compiled("fit_dataset", |c| this.fit_compiled(c, Train::Dataset(&data), options))
    }

    fn fit_compiled(&self, c: &mut Compiled, train: Train<'_>, mut o: FitOptions<'_>) -> Result<History> {
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
        if o.validation_freq == 0 {
            return Err(Error::invalid("validation_freq", "must be at least 1, received 0"));
        }
        if o.validation_batch_size == Some(0) {
            return Err(Error::invalid("validation_batch_size", "must be at least 1, received 0"));
        }
        if o.class_weight.is_some() && self.outputs.len() > 1 {
            return Err(Error::invalid("class_weight", "is only supported for models with one output"));
        }
        let mut shuffle_rng = match o.seed {
            Some(s) => Rng::seed(s),
            None => self.rng.lock().map(|mut r| r.fork()).map_err(|_| Error::msg("model rng lock poisoned"))?,
        };
        let bs = o.batch_size;
        let losses = Some(&c.objective.losses[..]);
        let mut feed = match train {
            Train::Tensors(x, y) => {
                if o.steps_per_epoch.is_some() {
                    return Err(Error::invalid(
                        "steps_per_epoch",
                        "applies to datasets (fit_dataset); with tensors every epoch is one pass over them",
                    ));
                }
                let mut data = Data::new(self, losses, x, y, o.sample_weight.take(), "")?;
                if let Some(cw) = &o.class_weight {
                    data.apply_class_weight(cw)?;
                }
                let order = (0..data.len).collect();
                Feed::Tensors { data, batch_size: bs, order, shuffle: o.shuffle.then(|| Box::new(shuffle_rng)) }
            }
            Train::Dataset(ds) => {
                for (set, what) in [
                    (o.batch_size_set, "batch_size: a dataset is batched already (Source::batch); do not give one"),
                    (o.sample_weight.is_some(), "sample_weight: give the weights in the dataset's batches"),
                    (o.validation_split > 0.0, "validation_split: not supported for datasets; split the source with Source::split and pass the part as validation_dataset"),
                ] {
                    if set {
                        return Err(Error::invalid("fit_dataset", what.to_string()));
                    }
                }
                let seed = o.shuffle.then(|| shuffle_rng.next_u64());
                let stream = Stream::new(ds, o.steps_per_epoch, true, seed, o.stream, "the dataset")?;
                Feed::Stream(stream.class_weight(o.class_weight.take()))
            }
        };
        let val_ds = o.validation_dataset.take();
        let mut validation = if let Some(v) = &val_ds {
            Some(Feed::Stream(Stream::new(&**v, o.validation_steps, true, None, o.stream, "the validation dataset")?))
        } else if let Some(v) = o.validation_data.take() {
            let data = Data::new(self, losses, v.x, v.y, v.sample_weight, "validation ")?;
            Some(Feed::tensors(data, o.validation_batch_size.unwrap_or(bs)))
        } else if o.validation_split > 0.0 {
            // Keras: the last fraction, taken before shuffling.
            let Some(train) = feed.tensor_data() else { unreachable!("checked above") };
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
            *train = train.range(0, split_at)?;
            if let Feed::Tensors { order, .. } = &mut feed {
                *order = (0..split_at).collect();
            }
            Some(Feed::tensors(val, o.validation_batch_size.unwrap_or(bs)))
        } else {
            None
        };

        let mut trackers: Option<Trackers> = None;
        let plan = self.training_plan(c, "fit")?;
        let mut history = History::default();
        let mut callbacks = std::mem::take(&mut o.callbacks);
        let compile_config = c.config(&self.output_names()).to_value();
        let mut ctx = CallbackContext {
            model: self,
            optimizer: &mut *c.optimizer,
            stop: false,
            epochs: o.epochs,
            steps: feed.epoch_steps(),
            compile_config: &compile_config,
        };
        for cb in &mut callbacks {
            cb.on_train_begin(&mut ctx)?;
        }
        history.on_train_begin(&mut ctx)?;
        let mut last_logs = Logs::new();
        for epoch in o.initial_epoch..o.epochs {
            if let Some(t) = &mut trackers {
                t.reset();
            }
            for cb in &mut callbacks {
                cb.on_epoch_begin(epoch, &mut ctx)?;
            }
            Progress::epoch_header(o.verbose, epoch, o.epochs);
            let mut progress = Progress::new(o.verbose, feed.epoch_steps());
            let done = feed.epoch(self, losses, epoch, &mut |step, batch| {
                for cb in &mut callbacks {
                    cb.on_train_batch_begin(step, &mut ctx)?;
                }
                let tracked = match &mut trackers {
                    Some(t) => t,
                    None => trackers.insert(Trackers::new(self, &c.objective, &batch.ys)?),
                };
                // The whole step on the device's own thread (a pool thread on native).
                let optimizer = &mut *ctx.optimizer;
                let check = o.check_numerics.then_some(StepAt { epoch: epoch + 1, step: step + 1 });
                self.device().run(|| -> Result<()> {
                    let out = self.train_batch(&c.objective, &plan, optimizer, &batch, check)?;
                    tracked.update(&batch, &out)
                })?;
                let logs = tracked.logs("");
                for cb in &mut callbacks {
                    cb.on_train_batch_end(step, &logs, &mut ctx)?;
                }
                progress.update(step + 1, &logs);
                Ok(!ctx.stop)
            })?;
            let mut logs = trackers.as_ref().map(|t| t.logs("")).unwrap_or_default();
            if let Some(val) = &mut validation {
                if (epoch + 1) % o.validation_freq == 0 {
                    let val_logs = self.run_evaluation(&c.objective, &plan, val, 0)?;
                    logs.extend(val_logs.into_iter().map(|(k, v)| (format!("val_{k}"), v)));
                }
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
            let out = this.train_batch(&c.objective, &plan, &mut *c.optimizer, &batch, None)?;
            trackers.update(&batch, &out)?;
            Ok(trackers.logs(""))
        })
    }
}
