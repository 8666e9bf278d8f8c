//! One training or evaluation step: the forward pass, the weighted loss
//! with the regularization penalties, and for training the backward pass
//! and the optimizer's update.

use strata_core::{Error, Gradients, Result, Tensor};
use strata_layers::{Regularizer, Weight};

use super::data::Data;
use super::inspect::num;
use super::trackers::BatchOutput;
use super::Objective;
use crate::models::{sum_penalties, NodeRun, Observer};
use crate::optimizers::Optimizer;
use crate::Model;

/// What every step of one `fit` (or one evaluation) reads from the model,
/// gathered once instead of on every batch: the trainable weights with
/// their full names, the weights with a regularization penalty, and the
/// output names used in error messages.
pub(crate) struct StepPlan {
    pub(super) trainable: Vec<Weight>,
    regularized: Vec<(Regularizer, Tensor)>,
    output_names: Vec<String>,
}

impl StepPlan {
    /// Each trainable weight that has a gradient, as `(name, weight,
    /// gradient)`: what an optimizer's `apply_gradients` takes.
    pub(super) fn with_gradients<'a>(&'a self, grads: &'a Gradients) -> Vec<(&'a str, &'a Tensor, &'a Tensor)> {
        self.trainable.iter().filter_map(|w| grads.get(&w.value).map(|g| (w.name.as_str(), &w.value, g))).collect()
    }

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
    ///
    /// `observer`, if any, sees every layer call (`advance`: whether a
    /// training pass draws dropout from the model's generator or a copy).
    pub(crate) fn batch_loss(
        &self,
        c: &Objective,
        plan: &StepPlan,
        batch: &Data,
        training: bool,
        observer: Option<(Observer<'_>, bool)>,
    ) -> Result<(Tensor, BatchOutput)> {
        let (outputs, masks) = match observer {
            None => self.forward_checked_inputs(&batch.xs, training)?,
            Some((observe, advance)) => self.forward_observed(&batch.xs, training, advance, observe)?,
        };
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

    /// One optimizer step on one batch. With `check` (`check_numerics`),
    /// every layer output, the loss and every gradient are scanned for NaN
    /// and infinities before the update, and the first one found is an
    /// [`Error::NonFinite`] saying where it appeared; the weights are left
    /// as they were before the step.
    pub(crate) fn train_batch(
        &self,
        c: &Objective,
        plan: &StepPlan,
        optimizer: &mut dyn Optimizer,
        batch: &Data,
        check: Option<StepAt>,
    ) -> Result<BatchOutput> {
        let Some(at) = check else {
            let (loss, out) = self.batch_loss(c, plan, batch, true, None)?;
            let grads = loss.backward()?;
            optimizer.apply_gradients(&plan.with_gradients(&grads))?;
            return Ok(out);
        };
        let mut origin: Option<String> = None;
        let mut observe = |run: &NodeRun<'_>| -> Result<()> {
            if origin.is_none() {
                origin = first_non_finite_output(run, at)?;
            }
            Ok(())
        };
        let (loss, out) = self.batch_loss(c, plan, batch, true, Some((&mut observe, true)))?;
        if let Some(origin) = origin {
            return Err(Error::NonFinite(origin));
        }
        if !out.total.is_finite() {
            let per_output = if out.per_output.is_empty() {
                String::new()
            } else {
                let parts: Vec<String> =
                    plan.output_names.iter().zip(&out.per_output).map(|(n, l)| format!("{n}: {}", num(*l))).collect();
                format!(" (per output: {})", parts.join(", "))
            };
            let ranges: Vec<String> = plan
                .output_names
                .iter()
                .zip(&out.outputs)
                .map(|(n, y)| Ok(format!("{n} in [{}]", range(y)?)))
                .collect::<Result<_>>()?;
            return Err(Error::NonFinite(format!(
                "the loss is {} at {at}{per_output}, while every layer output was finite ({}); the loss function \
                 overflowed on these predictions and targets",
                out.total,
                ranges.join(", ")
            )));
        }
        let grads = loss.backward()?;
        let params = plan.with_gradients(&grads);
        for &(name, w, g) in &params {
            if let Some(i) = g.find_non_finite()? {
                return Err(Error::NonFinite(format!(
                    "the gradient of {name} is {} at {at}, after the loss became {} with every layer output \
                     finite; max |{name}| = {}",
                    flat_value(g, i)?,
                    num(out.total),
                    num(f64::from(max_abs(w)?))
                )));
            }
        }
        optimizer.apply_gradients(&params)?;
        Ok(out)
    }
}

/// Where a training step is, for `check_numerics` messages (counted from 1,
/// as the progress bar shows them).
#[derive(Clone, Copy, Debug)]
pub(crate) struct StepAt {
    pub(crate) epoch: usize,
    pub(crate) step: usize,
}

impl std::fmt::Display for StepAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "epoch {}, step {}", self.epoch, self.step)
    }
}

/// The value at flat index `i` of `t`.
fn flat_value(t: &Tensor, i: usize) -> Result<f32> {
    Ok(t.flatten_from(0)?.narrow(0, i, 1)?.to_vec::<f32>()?[0])
}

/// The largest `|x|` over the finite values of a float tensor.
fn max_abs(t: &Tensor) -> Result<f32> {
    Ok(t.to_vec::<f32>()?.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs())))
}

/// `min, max` of a float tensor's finite values, as text.
fn range(t: &Tensor) -> Result<String> {
    if t.dtype() != strata_core::DType::F32 {
        return Ok("integers".into());
    }
    let v = t.to_vec::<f32>()?;
    let (lo, hi) =
        v.iter().filter(|v| v.is_finite()).fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
    Ok(format!("{}, {}", num(f64::from(lo)), num(f64::from(hi))))
}

/// The `check_numerics` message for the first non-finite output of one
/// layer call, if it has one.
fn first_non_finite_output(run: &NodeRun<'_>, at: StepAt) -> Result<Option<String>> {
    for (k, y) in run.outputs.iter().enumerate() {
        if y.dtype() != strata_core::DType::F32 {
            continue;
        }
        let Some(i) = y.find_non_finite()? else { continue };
        let value = flat_value(y, i)?;
        let call = if run.call > 0 { format!(" (call {} of the shared layer)", run.call + 1) } else { String::new() };
        let which = if run.outputs.len() > 1 { format!("output {k}") } else { "output".into() };
        let mut bad_inputs = Vec::new();
        for (j, x) in run.inputs.iter().enumerate() {
            if x.dtype() == strata_core::DType::F32 && x.find_non_finite()?.is_some() {
                bad_inputs.push(j);
            }
        }
        let input = match (bad_inputs.as_slice(), run.inputs.len()) {
            ([], 1) => "its input was finite".to_string(),
            ([], _) => "its inputs were finite".to_string(),
            (bad, _) => format!("its input(s) {bad:?} already held NaN or inf"),
        };
        let mut weights = Vec::new();
        for w in run.weights.iter().filter(|w| w.value.dtype() == strata_core::DType::F32) {
            let short = w.name.rsplit('.').next().unwrap_or(&w.name);
            let bad = if w.value.find_non_finite()?.is_some() { " (holds NaN or inf)" } else { "" };
            weights.push(format!("{short} max |w| = {}{bad}", num(f64::from(max_abs(&w.value)?))));
        }
        let weights = if weights.is_empty() { String::new() } else { format!("; {}", weights.join(", ")) };
        let (lo, hi) = range_of(run.inputs)?;
        let input_range = if bad_inputs.is_empty() && lo.is_finite() {
            format!(" (in [{}, {}])", num(f64::from(lo)), num(f64::from(hi)))
        } else {
            String::new()
        };
        return Ok(Some(format!(
            "{value} first appears in the {which} of {} ({}){call} at {at}; {input}{input_range}{weights}",
            run.layer, run.class
        )));
    }
    Ok(None)
}

/// The smallest and largest finite values over float tensors.
fn range_of(ts: &[Tensor]) -> Result<(f32, f32)> {
    let mut lo = f32::INFINITY;
    let mut hi = f32::NEG_INFINITY;
    for t in ts.iter().filter(|t| t.dtype() == strata_core::DType::F32) {
        for v in t.to_vec::<f32>()?.into_iter().filter(|v| v.is_finite()) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    Ok((lo, hi))
}
