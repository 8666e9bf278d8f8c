//! [`Model::evaluate`] and [`Model::test_on_batch`].

use strata_core::{no_grad, Error, Result};

use super::data::Data;
use super::feed::{Feed, Stream};
use super::progress::Progress;
use super::step::StepPlan;
use super::trackers::Trackers;
use super::{check_batch_size, check_verbose, EvaluateOptions, Objective};
use crate::callbacks::Logs;
use crate::data::Dataset;
use crate::{Model, ModelInputs};

impl Model {
    /// Evaluates a feed batch by batch into fresh trackers.
    pub(crate) fn run_evaluation(
        &self,
        c: &Objective,
        plan: &StepPlan,
        feed: &mut Feed<'_>,
        verbose: u8,
    ) -> Result<Logs> {
        let mut trackers: Option<Trackers> = None;
        let mut progress = Progress::new(verbose, feed.epoch_steps());
        let steps = no_grad(|| {
            feed.epoch(self, Some(&c.losses), 0, &mut |step, batch| {
                let tracked = match &mut trackers {
                    Some(t) => t,
                    None => trackers.insert(Trackers::new(self, c, &batch.ys)?),
                };
                self.device().run(|| -> Result<()> {
                    let (_, out) = self.batch_loss(c, plan, &batch, false, None)?;
                    tracked.update(&batch, &out)
                })?;
                progress.update(step + 1, &tracked.logs(""));
                Ok(true)
            })
        })?;
        let logs = trackers.map(|t| t.logs("")).unwrap_or_default();
        progress.finish(steps, &logs);
        Ok(logs)
    }

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
    /// model.set_weights_by_name([("dense.kernel", &Tensor::new(vec![2.0f32], [1, 1], &dev)?)])?;
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
            let mut feed = Feed::tensors(data, options.batch_size);
            self.run_evaluation(&c.objective, &self.step_plan(), &mut feed, options.verbose)
        })
    }

    /// The loss and metrics on a [`Dataset`] (read ahead on
    /// [`workers`](EvaluateOptions::workers) threads), in its order; at
    /// most [`steps`](EvaluateOptions::steps) batches.
    pub fn evaluate_dataset(&self, data: impl Dataset, options: EvaluateOptions) -> Result<Logs> {
        check_verbose(options.verbose)?;
        if options.sample_weight.is_some() {
            return Err(Error::invalid("evaluate_dataset", "sample_weight: give the weights in the dataset's batches"));
        }
        self.with_compiled("evaluate_dataset", |c| {
            let stream = Stream::new(&data, options.steps, false, None, options.stream, "the dataset")?;
            self.run_evaluation(&c.objective, &self.step_plan(), &mut Feed::Stream(stream), options.verbose)
        })
    }

    /// The loss and metrics of exactly this batch, without training.
    pub fn test_on_batch(&self, x: impl ModelInputs, y: impl ModelInputs) -> Result<Logs> {
        let (x, y) = (x.into_tensors(), y.into_tensors());
        self.with_compiled("test_on_batch", |c| {
            let batch = Data::new(self, Some(&c.objective.losses), x, y, None, "")?;
            let mut trackers = Trackers::new(self, &c.objective, &batch.ys)?;
            let (_, out) = no_grad(|| self.batch_loss(&c.objective, &self.step_plan(), &batch, false, None))?;
            trackers.update(&batch, &out)?;
            Ok(trackers.logs(""))
        })
    }
}
