//! The loss and metric accumulators of one epoch or one evaluation.

use strata_core::{no_grad, Error, Result, Tensor};

use super::data::Data;
use super::Objective;
use crate::callbacks::Logs;
use crate::metrics::reduction::MeanState;
use crate::metrics::{resolve_metric, Metric};
use crate::Model;

/// The loss and metric accumulators of one epoch (or one evaluation).
pub(crate) struct Trackers {
    loss: MeanState,
    output_losses: Vec<MeanState>,
    output_names: Vec<String>,
    metrics: Vec<Vec<(String, Box<dyn Metric>)>>,
    weighted: bool,
}

impl Trackers {
    /// Resolves the compiled metric specs against real targets (so that
    /// `"accuracy"` picks its variant from the shapes, as Keras does).
    pub(crate) fn new(model: &Model, c: &Objective, ys: &[Tensor]) -> Result<Trackers> {
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
            loss: MeanState::default(),
            output_losses: vec![MeanState::default(); if several { outputs.len() } else { 0 }],
            output_names: outputs.iter().map(|s| s.to_string()).collect(),
            metrics,
            weighted: c.weighted_metrics,
        })
    }

    pub(crate) fn reset(&mut self) {
        self.loss = MeanState::default();
        self.output_losses.iter_mut().for_each(|m| *m = MeanState::default());
        self.metrics.iter_mut().flatten().for_each(|(_, m)| m.reset_state());
    }

    /// Adds one batch: its total and per-output losses and its outputs.
    pub(crate) fn update(&mut self, batch: &Data, out: &BatchOutput) -> Result<()> {
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

    pub(crate) fn logs(&self, prefix: &str) -> Logs {
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
pub(crate) struct BatchOutput {
    pub(crate) total: f64,
    pub(crate) per_output: Vec<f64>,
    pub(crate) outputs: Vec<Tensor>,
    pub(crate) masks: Vec<Option<Tensor>>,
}
