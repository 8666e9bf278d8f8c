//! The executor: runs a built model's nodes in order on concrete tensors,
//! carrying each value's mask, after checking the inputs against the
//! model's specs.

use strata_core::{Error, Result, Rng, Tensor};
use strata_layers::{CallContext, Weight};

use super::model::{Model, ModelInputs};
use crate::utils::catch_panic;

/// One layer call as the executor ran it, shown to an observer (model
/// inspection, `check_numerics`) right after the call.
pub(crate) struct NodeRun<'a> {
    /// The layer's name and class.
    pub(crate) layer: &'a str,
    pub(crate) class: String,
    /// Which call of the layer this is (0 for the first; shared layers
    /// are called more than once).
    pub(crate) call: usize,
    pub(crate) inputs: &'a [Tensor],
    pub(crate) outputs: &'a [Tensor],
    /// The layer's weights (detached when frozen).
    pub(crate) weights: &'a [Weight],
}

/// Sees every layer call of a forward pass; an error stops the pass.
pub(crate) type Observer<'o> = &'o mut dyn FnMut(&NodeRun<'_>) -> Result<()>;

impl Model {
    /// Runs the model on concrete inputs (one per model input, batch axis
    /// first) and returns its outputs. `training` switches dropout on.
    ///
    /// Inputs are checked against the model's input specs first: a wrong
    /// count, rank, size or dtype is an error naming the input.
    pub fn forward(&self, inputs: impl ModelInputs, training: bool) -> Result<Vec<Tensor>> {
        Ok(self.forward_masked(inputs, training)?.0)
    }

    /// [`forward`](Self::forward), also returning each output's mask (for
    /// mask-aware losses and metrics).
    pub fn forward_masked(
        &self,
        inputs: impl ModelInputs,
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let inputs = inputs.into_tensors();
        self.check_inputs(&inputs)?;
        self.forward_checked_inputs(&inputs, training)
    }

    /// [`forward_masked`](Self::forward_masked) on inputs already checked
    /// with [`check_inputs`](Self::check_inputs) (training checks its data
    /// once, before the first step, not on every batch).
    pub(crate) fn forward_checked_inputs(
        &self,
        inputs: &[Tensor],
        training: bool,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        // Only training steps draw from the model's generator, so evaluating
        // between training steps does not change the dropout sequence.
        let mut rng = if training {
            self.rng.lock().map(|mut r| r.fork()).map_err(|_| Error::msg("model rng lock poisoned"))?
        } else {
            Rng::seed(0)
        };
        let masks = vec![None; inputs.len()];
        self.run_nodes(inputs, &masks, training, &mut rng, None)
    }

    /// [`forward_checked_inputs`](Self::forward_checked_inputs) with every
    /// layer call shown to `observer`. A training step (`advance`) draws
    /// dropout from the model's generator as usual; otherwise (inspection)
    /// from a copy of it, so looking does not change later steps.
    pub(crate) fn forward_observed(
        &self,
        inputs: &[Tensor],
        training: bool,
        advance: bool,
        observer: Observer<'_>,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let mut rng = match (training, advance) {
            (false, _) => Ok(Rng::seed(0)),
            (true, true) => self.rng.lock().map(|mut r| r.fork()),
            (true, false) => self.rng.lock().map(|r| r.clone().fork()),
        }
        .map_err(|_| Error::msg("model rng lock poisoned"))?;
        let masks = vec![None; inputs.len()];
        self.run_nodes(inputs, &masks, training, &mut rng, Some(observer))
    }

    /// Checks concrete inputs against the model's input specs.
    pub fn check_inputs(&self, inputs: &[Tensor]) -> Result<()> {
        if inputs.len() != self.inputs.len() {
            return Err(Error::invalid(
                "model",
                format!(
                    "`{}` expects {} input(s) [{}], received {}",
                    self.name,
                    self.inputs.len(),
                    self.input_names().join(", "),
                    inputs.len()
                ),
            ));
        }
        for (entry, x) in self.inputs.iter().zip(inputs) {
            // An integer input where floats are expected is cast (as Keras
            // does); floats where integer ids are expected are an error.
            let dtype_ok = x.dtype() == entry.spec.dtype || entry.spec.dtype.is_float();
            if !entry.spec.with_dtype(x.dtype()).matches(x) || !dtype_ok {
                return Err(Error::invalid(
                    "model",
                    format!(
                        "input `{}` expects {} {}, received {} {}",
                        entry.name,
                        entry.spec,
                        entry.spec.dtype,
                        crate::utils::shape_tuple(x.dims()),
                        x.dtype()
                    ),
                ));
            }
            if !x.device().same(&self.device) {
                return Err(Error::DeviceMismatch {
                    op: "model",
                    lhs: self.device.name().to_string(),
                    rhs: x.device().name().to_string(),
                });
            }
        }
        Ok(())
    }

    /// Checks `inputs` and runs the graph on them with the given input
    /// masks (a model called as a layer inside another).
    pub(crate) fn run(
        &self,
        inputs: &[Tensor],
        input_masks: &[Option<Tensor>],
        training: bool,
        rng: &mut Rng,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        self.check_inputs(inputs)?;
        self.run_nodes(inputs, input_masks, training, rng, None)
    }

    /// Runs every node in order on checked inputs. Each layer's output is
    /// checked against the spec its `build` declared, so a layer that
    /// returns another shape or dtype is named as the culprit, not the
    /// layer after it. `observer`, if any, sees each call's inputs and
    /// outputs.
    fn run_nodes(
        &self,
        inputs: &[Tensor],
        input_masks: &[Option<Tensor>],
        training: bool,
        rng: &mut Rng,
        mut observer: Option<Observer<'_>>,
    ) -> Result<(Vec<Tensor>, Vec<Option<Tensor>>)> {
        let n = self.value_specs.len();
        let mut values: Vec<Option<Tensor>> = vec![None; n];
        let mut masks: Vec<Option<Tensor>> = vec![None; n];
        let mut calls = vec![0usize; if observer.is_some() { self.layers.len() } else { 0 }];
        for (i, x) in inputs.iter().enumerate() {
            let spec = &self.inputs[i].spec;
            values[i] = Some(if x.dtype() != spec.dtype { x.cast(spec.dtype)? } else { x.clone() });
            masks[i] = input_masks.get(i).cloned().flatten();
        }
        for node in &self.nodes {
            let entry = &self.layers[node.layer];
            let layer = entry.cell.layer.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            let weights = entry.cell.weights.read().map_err(|_| Error::msg("layer lock poisoned"))?;
            let label = || format!("{} ({})", entry.name, layer.class_name());
            let xs: Vec<Tensor> = node.inputs.iter().filter_map(|&v| values[v].clone()).collect();
            let ms: Vec<Option<Tensor>> = node.inputs.iter().map(|&v| masks[v].clone()).collect();
            if ms.iter().any(Option::is_some) && !layer.supports_masking() {
                return Err(Error::msg(
                    "received a mask (from Embedding(mask_zero) or Masking) but does not support masking; \
                     remove the mask or pool it away first (e.g. GlobalAveragePooling1D)",
                )
                .in_layer(label()));
            }
            // A frozen layer's weights reach it detached: no gradient is
            // computed for them, though it still flows through to the inputs.
            let trainable = entry.cell.is_trainable();
            let detached: Vec<Weight>;
            let weights: &[Weight] = if trainable {
                &weights
            } else {
                detached = weights.iter().map(|w| Weight { value: w.value.detach(), ..w.clone() }).collect();
                &detached
            };
            let mut ctx = CallContext::new(training, &ms, weights, rng).with_trainable(trainable);
            let ys = catch_panic(|| layer.call_multi(&xs, &mut ctx)).map_err(|e| e.in_layer(label()))?;
            if ys.len() != node.outputs.len() {
                return Err(Error::msg(format!(
                    "call returned {} tensor(s) but build declared {}",
                    ys.len(),
                    node.outputs.len()
                ))
                .in_layer(label()));
            }
            for (k, (y, &v)) in ys.iter().zip(&node.outputs).enumerate() {
                let declared = &self.value_specs[v];
                if !declared.matches(y) {
                    let which = if ys.len() > 1 { format!("output {k}: ") } else { String::new() };
                    return Err(Error::msg(format!(
                        "{which}call returned {} {} but build declared {} {}; a layer's call must return the spec \
                         its build returns",
                        crate::utils::shape_tuple(y.dims()),
                        y.dtype(),
                        declared,
                        declared.dtype
                    ))
                    .in_layer(label()));
                }
            }
            if let Some(observe) = observer.as_mut() {
                let call = calls[node.layer];
                calls[node.layer] += 1;
                observe(&NodeRun {
                    layer: &entry.name,
                    class: layer.class_name().to_string(),
                    call,
                    inputs: &xs,
                    outputs: &ys,
                    weights,
                })?;
            }
            let ms_out = catch_panic(|| layer.compute_masks(&xs, &ms)).map_err(|e| e.in_layer(label()))?;
            if ms_out.len() != ys.len() {
                return Err(Error::msg(format!(
                    "compute_masks returned {} mask(s) for {} output(s)",
                    ms_out.len(),
                    ys.len()
                ))
                .in_layer(label()));
            }
            for ((y, m), &v) in ys.into_iter().zip(ms_out).zip(&node.outputs) {
                values[v] = Some(y);
                masks[v] = m;
            }
        }
        let mut outs = Vec::with_capacity(self.outputs.len());
        let mut out_masks = Vec::with_capacity(self.outputs.len());
        for &o in &self.outputs {
            outs.push(values[o].clone().ok_or_else(|| Error::Graph("an output was not computed".into()))?);
            out_masks.push(masks[o].clone());
        }
        Ok((outs, out_masks))
    }
}
