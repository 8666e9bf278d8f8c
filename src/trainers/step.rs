//! One training or evaluation step: the forward pass, the weighted loss
//! with the regularization penalties, and for training the backward pass
//! and the optimizer's update.

use strata_core::{Error, Result, Tensor};
use strata_layers::{Regularizer, Weight};

use super::data::Data;
use super::trackers::BatchOutput;
use super::Objective;
use crate::models::sum_penalties;
use crate::optimizers::Optimizer;
use crate::Model;

/// What every step of one `fit` (or one evaluation) reads from the model,
/// gathered once instead of on every batch: the trainable weights with
/// their full names, the weights with a regularization penalty, and the
/// output names used in error messages.
pub(crate) struct StepPlan {
    trainable: Vec<Weight>,
    regularized: Vec<(Regularizer, Tensor)>,
    output_names: Vec<String>,
}

impl StepPlan {
    /// The sum of the regularization penalties, if any weight has one
    /// (what [`Model::regularization_loss`] computes).
    fn regularization_loss(&self) -> Result<Option<Tensor>> {
        sum_penalties(self.regularized.iter().map(|(reg, value)| (*reg, value)))
    }
}

impl Model {
    /// The [`StepPlan`] of the model as it is now.
    pub(crate) fn step_plan(&self) -> StepPlan {
        let weights = self.weights();
        let regularized = weights.iter().filter_map(|w| w.regularizer.map(|r| (r, w.value.clone()))).collect();
        StepPlan {
            trainable: weights.into_iter().filter(|w| w.trainable).collect(),
            regularized,
            output_names: self.output_names().into_iter().map(str::to_string).collect(),
        }
    }

    /// The [`StepPlan`] for training after `compile` made `c`: an error if a
    /// `trainable` flag changed since (Keras applies such a change at the
    /// next `compile`; strata says so instead of training the old set).
    pub(crate) fn training_plan(&self, c: &super::Compiled, op: &'static str) -> Result<StepPlan> {
        let plan = self.step_plan();
        let now: Vec<&str> = plan.trainable.iter().map(|w| w.name.as_str()).collect();
        if now != c.trainable {
            let frozen: Vec<&str> = c.trainable.iter().map(String::as_str).filter(|n| !now.contains(n)).collect();
            let thawed: Vec<&str> = now.iter().copied().filter(|n| !c.trainable.iter().any(|t| t == n)).collect();
            let mut what = Vec::new();
            if !frozen.is_empty() {
                what.push(format!("frozen since: [{}]", frozen.join(", ")));
            }
            if !thawed.is_empty() {
                what.push(format!("unfrozen since: [{}]", thawed.join(", ")));
            }
            return Err(Error::invalid(
                op,
                format!(
                    "the trainable weights changed after compile ({}); call compile again for the change to take \
                     effect, as in Keras",
                    what.join("; ")
                ),
            ));
        }
        Ok(plan)
    }

    /// Forward pass and the batch loss: the weighted per-output losses plus
    /// the regularization penalties (in training and in evaluation, as
    /// Keras reports it). The batch's inputs were checked when its data was
    /// prepared, so the forward pass does not check them again.
    pub(crate) fn batch_loss(
        &self,
        c: &Objective,
        plan: &StepPlan,
        batch: &Data,
        training: bool,
    ) -> Result<(Tensor, BatchOutput)> {
        let (outputs, masks) = self.forward_checked_inputs(&batch.xs, training)?;
        let mut total: Option<Tensor> = None;
        let mut per_output = Vec::with_capacity(outputs.len());
        for (o, loss) in c.losses.iter().enumerate() {
            let l = loss
                .compute(&batch.ys[o], &outputs[o], batch.sw.as_ref(), masks[o].as_ref())
                .map_err(|e| e.in_layer(format!("loss `{}` on output `{}`", loss.name(), plan.output_names[o])))?;
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
        if let Some(reg) = plan.regularization_loss()? {
            total = total.add(&reg)?;
        }
        let value = f64::from(total.to_scalar::<f32>()?);
        Ok((total, BatchOutput { total: value, per_output, outputs, masks }))
    }

    /// One optimizer step on one batch.
    pub(crate) fn train_batch(
        &self,
        c: &Objective,
        plan: &StepPlan,
        optimizer: &mut dyn Optimizer,
        batch: &Data,
    ) -> Result<BatchOutput> {
        let (loss, out) = self.batch_loss(c, plan, batch, true)?;
        let grads = loss.backward()?;
        let params: Vec<(&str, &Tensor, &Tensor)> =
            plan.trainable.iter().filter_map(|w| grads.get(&w.value).map(|g| (w.name.as_str(), &w.value, g))).collect();
        optimizer.apply_gradients(&params)?;
        Ok(out)
    }
}
