//! [`Model::compile`](crate::Model::compile) and what it accepts: losses per
//! output with weights, and metrics per output.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use super::{Compiled, Objective};
use crate::losses::{IntoLoss, Loss};
use crate::metrics::{resolve_metric, MetricSpec};
use crate::optimizers::{optimizer_from_config, IntoOptimizer, Optimizer};
use crate::Model;

/// What [`Model::compile`](crate::Model::compile) was given, as a whole
/// saved model keeps it (the `compile_config` metadata,
/// [`Model::compile_config`](crate::Model::compile_config)): one type to
/// write it and to read it back.
///
/// ```
/// use strata::prelude::*;
/// use strata::trainers::CompileConfig;
/// # fn main() -> strata::Result<()> {
/// let mut model = Sequential::new().add(Input::new([3])).add(Dense::new(2).name("head")).build_on(&backend::native())?;
/// model.compile("adam", "mse", &["mae"])?;
/// let config = CompileConfig::from_value(&model.compile_config().unwrap())?;
/// assert_eq!(config.metrics["head"], ["mae"]);
/// assert_eq!(config.optimizer["class_name"], "Adam");
/// let e = CompileConfig::from_value(&serde_json::json!({"loss": {}, "metrics": {}, "optimizer": {}, "loss_weights": "x"}));
/// assert!(e.unwrap_err().to_string().contains("loss_weights"));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CompileConfig {
    /// Each output's loss config ([`Loss::get_config`], or a loss name), by
    /// output name.
    pub loss: BTreeMap<String, Value>,
    /// The weight of each output's loss, in output order (`None` or JSON
    /// `null`: all 1).
    #[serde(default)]
    pub loss_weights: Option<Vec<f64>>,
    /// Each output's metric names, by output name.
    pub metrics: BTreeMap<String, Vec<String>>,
    /// The optimizer's config ([`Optimizer::get_config`](crate::optimizers::Optimizer::get_config)).
    pub optimizer: Value,
    /// Whether metrics see sample weights (Keras' `weighted_metrics`; read:
    /// false when absent or `null`).
    #[serde(default, deserialize_with = "bool_or_null")]
    pub weighted_metrics: bool,
}

fn bool_or_null<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<bool, D::Error> {
    Ok(Option::<bool>::deserialize(d)?.unwrap_or(false))
}

impl CompileConfig {
    /// Reads a config from JSON, naming where a malformed one is wrong
    /// (`loss_weights: invalid type: string "x", expected a sequence`).
    pub fn from_value(config: &Value) -> Result<CompileConfig> {
        crate::utils::from_json_value(config).map_err(|m| Error::invalid("compile_config", m))
    }

    /// The config as JSON.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Losses for [`Model::compile`](crate::Model::compile): one for every
/// output, one per output in order, or one per output by name, with
/// optional `loss_weights` (the total loss is the weighted sum).
///
/// A single loss (`"mse"`, `Loss::MeanSquaredError`) converts into this
/// directly; use the constructors for several outputs:
///
/// ```
/// use strata::Losses;
/// # fn main() -> strata::Result<()> {
/// let by_order = Losses::list(["mse", "binary_crossentropy"])?.weights([1.0, 0.2]);
/// let by_name = Losses::named([("price", "mse"), ("churn", "binary_crossentropy")])?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Losses {
    pub(crate) assign: LossAssign,
    pub(crate) weights: Option<Vec<f64>>,
}

#[derive(Clone)]
pub(crate) enum LossAssign {
    All(Loss),
    List(Vec<Loss>),
    Named(Vec<(String, Loss)>),
}

impl Losses {
    /// One loss per output, in the model's output order.
    pub fn list<L: IntoLoss>(losses: impl IntoIterator<Item = L>) -> Result<Losses> {
        let losses = losses.into_iter().map(IntoLoss::into_loss).collect::<Result<Vec<_>>>()?;
        Ok(Losses { assign: LossAssign::List(losses), weights: None })
    }

    /// One loss per output, by output name (every output must be named).
    pub fn named<S: Into<String>, L: IntoLoss>(losses: impl IntoIterator<Item = (S, L)>) -> Result<Losses> {
        let losses = losses.into_iter().map(|(n, l)| Ok((n.into(), l.into_loss()?))).collect::<Result<Vec<_>>>()?;
        Ok(Losses { assign: LossAssign::Named(losses), weights: None })
    }

    /// Keras' `loss_weights`: one weight per output, in output order.
    pub fn weights(mut self, weights: impl IntoIterator<Item = f64>) -> Losses {
        self.weights = Some(weights.into_iter().collect());
        self
    }

    /// One loss and one weight per output of a model with these outputs.
    pub(crate) fn resolve(&self, outputs: &[&str]) -> Result<(Vec<Loss>, Vec<f64>)> {
        let n = outputs.len();
        let losses = match &self.assign {
            LossAssign::All(l) => vec![l.clone(); n],
            LossAssign::List(ls) if ls.len() == n => ls.clone(),
            LossAssign::List(ls) => {
                return Err(Error::invalid(
                    "compile",
                    format!("{} loss(es) given for {n} output(s) [{}]", ls.len(), outputs.join(", ")),
                ))
            }
            LossAssign::Named(named) => {
                for (name, _) in named {
                    if !outputs.contains(&name.as_str()) {
                        return Err(Error::invalid(
                            "compile",
                            format!(
                                "a loss is given for `{name}`, which is not an output; outputs: [{}]",
                                outputs.join(", ")
                            ),
                        ));
                    }
                }
                outputs
                    .iter()
                    .map(|o| {
                        named
                            .iter()
                            .find(|(n, _)| n == o)
                            .map(|(_, l)| l.clone())
                            .ok_or_else(|| Error::invalid("compile", format!("no loss given for output `{o}`")))
                    })
                    .collect::<Result<Vec<_>>>()?
            }
        };
        let weights = match &self.weights {
            None => vec![1.0; n],
            Some(w) if w.len() == n && w.iter().all(|v| v.is_finite()) => w.clone(),
            Some(w) => {
                return Err(Error::invalid(
                    "compile",
                    format!("loss_weights needs {n} finite value(s) (one per output), received {w:?}"),
                ))
            }
        };
        Ok((losses, weights))
    }
}

/// Anything [`Model::compile`](crate::Model::compile) takes as its loss.
pub trait IntoLosses {
    /// The losses, or an error for an unknown name.
    fn into_losses(self) -> Result<Losses>;
}

impl IntoLosses for Losses {
    fn into_losses(self) -> Result<Losses> {
        Ok(self)
    }
}

impl<L: IntoLoss> IntoLosses for L {
    fn into_losses(self) -> Result<Losses> {
        Ok(Losses { assign: LossAssign::All(self.into_loss()?), weights: None })
    }
}

/// Metrics for [`Model::compile`](crate::Model::compile): a list applied to
/// every output, or lists per output (in order or by name).
///
/// A list of names converts directly (`&["accuracy"]`, `&["mae", "mse"]`);
/// `()` means none.
///
/// As in Keras, these metrics ignore sample and class weights (masks still
/// apply); [`weighted`](Self::weighted) makes them Keras'
/// `weighted_metrics`.
///
/// ```
/// use strata::{Metrics, metrics::Precision};
/// let per_output = Metrics::named([("churn", vec!["accuracy".into(), Precision::new().into()])]);
/// ```
pub struct Metrics {
    pub(crate) assign: MetricAssign,
    pub(crate) weighted: bool,
}

pub(crate) enum MetricAssign {
    All(Vec<MetricSpec>),
    List(Vec<Vec<MetricSpec>>),
    Named(Vec<(String, Vec<MetricSpec>)>),
}

impl Metrics {
    /// No metrics (only the loss is reported).
    pub fn none() -> Metrics {
        Metrics { assign: MetricAssign::All(Vec::new()), weighted: false }
    }

    /// The same metrics weighted by the sample and class weights (Keras'
    /// `weighted_metrics`).
    pub fn weighted(mut self) -> Metrics {
        self.weighted = true;
        self
    }

    fn of(assign: MetricAssign) -> Metrics {
        Metrics { assign, weighted: false }
    }

    /// One list per output, in the model's output order.
    pub fn per_output(lists: impl IntoIterator<Item = Vec<MetricSpec>>) -> Metrics {
        Metrics::of(MetricAssign::List(lists.into_iter().collect()))
    }

    /// Lists by output name; outputs not named get none.
    pub fn named<S: Into<String>>(lists: impl IntoIterator<Item = (S, Vec<MetricSpec>)>) -> Metrics {
        Metrics::of(MetricAssign::Named(lists.into_iter().map(|(n, l)| (n.into(), l)).collect()))
    }

    /// Every spec once, and for each output the indices of its specs.
    pub(crate) fn resolve(self, outputs: &[&str]) -> Result<(Vec<MetricSpec>, Vec<Vec<usize>>)> {
        let n = outputs.len();
        match self.assign {
            MetricAssign::All(specs) => {
                let idx = (0..specs.len()).collect::<Vec<_>>();
                Ok((specs, vec![idx; n]))
            }
            MetricAssign::List(lists) if lists.len() == n => Ok(flatten_lists(lists)),
            MetricAssign::List(lists) => Err(Error::invalid(
                "compile",
                format!("{} metric list(s) given for {n} output(s) [{}]", lists.len(), outputs.join(", ")),
            )),
            MetricAssign::Named(mut named) => {
                for (name, _) in &named {
                    if !outputs.contains(&name.as_str()) {
                        return Err(Error::invalid(
                            "compile",
                            format!(
                                "metrics are given for `{name}`, which is not an output; outputs: [{}]",
                                outputs.join(", ")
                            ),
                        ));
                    }
                }
                let lists = outputs
                    .iter()
                    .map(|o| named.iter().position(|(n, _)| n == o).map(|p| named.remove(p).1).unwrap_or_default())
                    .collect();
                Ok(flatten_lists(lists))
            }
        }
    }
}

fn flatten_lists(lists: Vec<Vec<MetricSpec>>) -> (Vec<MetricSpec>, Vec<Vec<usize>>) {
    let mut specs = Vec::new();
    let mut idx = Vec::new();
    for list in lists {
        let start = specs.len();
        idx.push((start..start + list.len()).collect());
        specs.extend(list);
    }
    (specs, idx)
}

/// Anything [`Model::compile`](crate::Model::compile) takes as its metrics.
pub trait IntoMetrics {
    /// The metrics.
    fn into_metrics(self) -> Metrics;
}

impl IntoMetrics for Metrics {
    fn into_metrics(self) -> Metrics {
        self
    }
}
impl IntoMetrics for () {
    fn into_metrics(self) -> Metrics {
        Metrics::none()
    }
}
impl IntoMetrics for &[&str] {
    fn into_metrics(self) -> Metrics {
        Metrics::of(MetricAssign::All(self.iter().map(|&s| s.into()).collect()))
    }
}
impl<const N: usize> IntoMetrics for &[&str; N] {
    fn into_metrics(self) -> Metrics {
        self.as_slice().into_metrics()
    }
}
impl IntoMetrics for Vec<&str> {
    fn into_metrics(self) -> Metrics {
        self.as_slice().into_metrics()
    }
}
impl IntoMetrics for Vec<MetricSpec> {
    fn into_metrics(self) -> Metrics {
        Metrics::of(MetricAssign::All(self))
    }
}
impl<const N: usize> IntoMetrics for [MetricSpec; N] {
    fn into_metrics(self) -> Metrics {
        Metrics::of(MetricAssign::All(self.into_iter().collect()))
    }
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
        let trainable = self.trainable_weights().into_iter().map(|w| w.name).collect();
        let compiled = Compiled { optimizer, objective, trainable };
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
        guard.as_ref().map(|c| c.config(&self.output_names()).to_value())
    }

    /// The optimizer's current learning rate, or `None` before `compile`.
    pub fn learning_rate(&self) -> Option<f64> {
        let guard = self.compiled.lock().ok()?;
        guard.as_ref().map(|c| c.optimizer.learning_rate())
    }

    /// Runs `f` with the compiled state taken out of the model, so the model
    /// itself can be borrowed freely; the state goes back even on error.
    pub(crate) fn with_compiled<T>(&self, what: &'static str, f: impl FnOnce(&mut Compiled) -> Result<T>) -> Result<T> {
        /// Puts the compile state back when `f` returns or unwinds (a
        /// panicking callback or dataset must not uncompile the model).
        struct Restore<'m> {
            slot: &'m std::sync::Mutex<Option<Compiled>>,
            taken: Option<Compiled>,
        }
        impl Drop for Restore<'_> {
            fn drop(&mut self) {
                if let Some(c) = self.taken.take() {
                    *self.slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(c);
                }
            }
        }
        let mut guard = self.compiled.lock().map_err(|_| Error::msg("model lock poisoned"))?;
        let c = guard.take().ok_or_else(|| {
            Error::invalid(what, "the model is not compiled; call `model.compile(optimizer, loss, metrics)` first")
        })?;
        drop(guard);
        let mut restore = Restore { slot: &self.compiled, taken: Some(c) };
        let Some(c) = restore.taken.as_mut() else { unreachable!("just set") };
        f(c)
    }

    /// Compiles the model as a saved `compile_config` says (what
    /// [`load_model`](crate::load_model) does), restoring the optimizer's
    /// `(iterations, slot variables)` when given. Every slot must belong to
    /// a trainable weight of its shape.
    pub(crate) fn compile_from_config(
        &mut self,
        config: &Value,
        optimizer_state: Option<(u64, Vec<(String, Tensor)>)>,
    ) -> Result<()> {
        let bad = |m: String| Error::invalid("compile_config", m);
        let config = CompileConfig::from_value(config)?;
        let mut optimizer: Box<dyn Optimizer> =
            optimizer_from_config(&config.optimizer).map_err(|e| bad(e.to_string()))?;
        let outputs: Vec<String> = self.output_names().iter().map(|s| s.to_string()).collect();
        for (key, names) in
            [("loss", config.loss.keys().collect::<Vec<_>>()), ("metrics", config.metrics.keys().collect())]
        {
            if let Some(k) = names.into_iter().find(|k| !outputs.contains(k)) {
                return Err(bad(format!(
                    "`{key}` names `{k}`, which is not an output; outputs: [{}]",
                    outputs.join(", ")
                )));
            }
        }
        let losses = outputs
            .iter()
            .map(|o| {
                let c = config.loss.get(o).ok_or_else(|| bad(format!("no loss for output `{o}`")))?;
                Loss::from_config(c).map_err(|e| bad(format!("output `{o}`: {e}")))
            })
            .collect::<Result<Vec<_>>>()?;
        let mut losses_arg = Losses::list(losses.iter())?;
        if let Some(ws) = &config.loss_weights {
            losses_arg = losses_arg.weights(ws.iter().copied());
        }
        let mut lists = Vec::with_capacity(outputs.len());
        for (o, loss) in outputs.iter().zip(&losses) {
            let mut specs = Vec::new();
            for n in config.metrics.get(o).into_iter().flatten() {
                let spec = MetricSpec::Name(n.clone());
                // Names resolve for any shapes; this catches unknown ones now.
                resolve_metric(&spec, loss, &[1, 1], &[1, 1]).map_err(|e| bad(format!("output `{o}`: {e}")))?;
                specs.push(spec);
            }
            lists.push(specs);
        }
        let mut metrics = Metrics::per_output(lists);
        if config.weighted_metrics {
            metrics = metrics.weighted();
        }

        if let Some((iterations, variables)) = optimizer_state {
            let weights: HashMap<String, Vec<usize>> =
                self.trainable_weights().into_iter().map(|w| (w.name, w.value.dims().to_vec())).collect();
            for (name, t) in &variables {
                let fits = name
                    .rsplit_once('.')
                    .and_then(|(w, _)| weights.get(w))
                    .is_some_and(|dims| dims.as_slice() == t.dims());
                if !fits {
                    return Err(Error::msg(format!(
                        "optimizer variable `{name}` {:?} belongs to no trainable weight of that shape",
                        t.dims()
                    )));
                }
            }
            optimizer.set_state(iterations, &variables)?;
        }
        self.compile(optimizer, losses_arg, metrics).map_err(|e| bad(e.to_string()))
    }
}
