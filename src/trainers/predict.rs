//! [`Model::predict`] and its variants: outputs in batches, without
//! recording gradients.

use strata_core::{no_grad, Error, Result, Tensor};

use super::data::Data;
use super::feed::{Feed, Stream};
use super::progress::Progress;
use super::{check_batch_size, check_verbose, PredictOptions};
use crate::callbacks::Logs;
use crate::data::Dataset;
use crate::{Model, ModelInputs};

impl Model {
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
        self.only_output("predict", self.predict_outputs_with(x, options)?)
    }

    /// The one output of a one-output model's predictions; `op` (`predict`,
    /// `predict_dataset`) names the call and its `_outputs` variant.
    fn only_output(&self, op: &'static str, mut outs: Vec<Tensor>) -> Result<Tensor> {
        if outs.len() != 1 {
            return Err(Error::invalid(
                op,
                format!(
                    "the model has {} outputs [{}]; use `{op}_outputs` to get all of them",
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
        self.run_prediction(Feed::tensors(data, options.batch_size), options.verbose)
    }

    /// The outputs of a one-output model on a [`Dataset`]'s inputs (its
    /// targets, if any, are ignored), batch by batch in its order; at most
    /// [`steps`](PredictOptions::steps) batches.
    ///
    /// ```
    /// use strata::prelude::*;
    /// use strata::data::{self, Source};
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).build_on(&dev)?;
    /// let x = Tensor::ones([10, 3], DType::F32, &dev)?;
    /// let y = model.predict_dataset(data::from_inputs(&x)?.batch(4), PredictOptions::default())?;
    /// assert_eq!(y.dims(), &[10, 2]);
    /// # Ok(()) }
    /// ```
    pub fn predict_dataset(&self, data: impl Dataset, options: PredictOptions) -> Result<Tensor> {
        self.only_output("predict_dataset", self.predict_dataset_outputs(data, options)?)
    }

    /// Every output of the model on a [`Dataset`]'s inputs, in output order.
    pub fn predict_dataset_outputs(&self, data: impl Dataset, options: PredictOptions) -> Result<Vec<Tensor>> {
        check_verbose(options.verbose)?;
        let stream = Stream::new(&data, options.steps, false, None, options.stream, "the dataset")?;
        self.run_prediction(Feed::Stream(stream), options.verbose)
    }

    fn run_prediction(&self, mut feed: Feed<'_>, verbose: u8) -> Result<Vec<Tensor>> {
        let mut progress = Progress::new(verbose, feed.epoch_steps());
        let mut chunks: Vec<Vec<Tensor>> =
            vec![Vec::with_capacity(feed.epoch_steps().unwrap_or(0)); self.outputs.len()];
        let steps = no_grad(|| {
            feed.epoch(self, None, 0, &mut |step, batch| {
                let outputs = self.device().run(|| Ok::<_, Error>(self.forward_checked_inputs(&batch.xs, false)?.0))?;
                for (o, t) in outputs.into_iter().enumerate() {
                    // Without the logits a softmax output keeps, so the
                    // batches held until the concatenation cost no more.
                    chunks[o].push(t.detach());
                }
                progress.update(step + 1, &Logs::new());
                Ok(true)
            })
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

    /// The outputs of a one-output model on exactly this batch.
    pub fn predict_on_batch(&self, x: impl ModelInputs) -> Result<Tensor> {
        let x = x.into_tensors();
        let n = x.first().and_then(|t| t.dims().first().copied()).unwrap_or(1).max(1);
        self.predict_with(&x, PredictOptions::default().batch_size(n))
    }
}
