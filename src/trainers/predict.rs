//! [`Model::predict`] and its variants: outputs in batches, without
//! recording gradients.

use strata_core::{no_grad, Error, Result, Tensor};

use super::data::Data;
use super::progress::Progress;
use super::{check_batch_size, check_verbose, PredictOptions};
use crate::callbacks::Logs;
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
                    Ok(self.forward_checked_inputs(&batch.xs, false)?.0)
                })?;
                for (o, t) in outputs.into_iter().enumerate() {
                    // Without the logits a softmax output keeps, so the
                    // batches held until the concatenation cost no more.
                    chunks[o].push(t.detach());
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

    /// The outputs of a one-output model on exactly this batch.
    pub fn predict_on_batch(&self, x: impl ModelInputs) -> Result<Tensor> {
        let x = x.into_tensors();
        let n = x.first().and_then(|t| t.dims().first().copied()).unwrap_or(1).max(1);
        self.predict_with(&x, PredictOptions::default().batch_size(n))
    }
}
