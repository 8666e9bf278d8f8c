//! Optimizers with Keras 3's names, defaults and update rules: [`SGD`]
//! (momentum, Nesterov), [`Adam`] (AMSGrad), [`AdamW`], [`RMSprop`]
//! (momentum, centered) and [`Adagrad`], plus learning-rate
//! [`schedules`].
//!
//! Every optimizer shares Keras' base machinery: a constant or scheduled
//! learning rate, gradient clipping (`clipnorm` per variable, `clipvalue`,
//! or `global_clipnorm`, at most one), decoupled weight decay
//! (`w ← w − w·weight_decay·lr` before the update, as Keras 3 does for every
//! optimizer), an iteration counter, and per-weight state ("slots") keyed by
//! the weight's full name. One step runs a handful of tensor ops per
//! variable under [`no_grad`]; the state lives on the
//! variable's device.
//!
//! # Validation
//! Builders return `Self`, so an invalid argument (negative learning rate,
//! momentum outside `[0, 1]`, `clipnorm <= 0`, two clipping modes, ...) is
//! reported by [`Optimizer::validate`], which
//! [`IntoOptimizer::into_optimizer`] (what `Model::compile` calls) and every
//! [`Optimizer::apply_gradients`] call run first. An invalid optimizer never
//! changes a weight.
//!
//! ```
//! use strata::prelude::*;
//!
//! # fn main() -> strata::Result<()> {
//! let dev = backend::native();
//! let w = Tensor::new(vec![1.0f32, -2.0], [2], &dev)?.to_variable()?;
//! let grad = Tensor::new(vec![0.5f32, 0.5], [2], &dev)?;
//! let mut opt = SGD::new(0.1).momentum(0.9).into_optimizer()?;
//! opt.apply_gradients(&[("dense.bias", &w, &grad)])?;
//! assert_eq!(w.to_vec::<f32>()?, vec![0.95, -2.05]);
//! assert_eq!(opt.iterations(), 1);
//! assert_eq!(opt.variables()[0].0, "dense.bias.momentum");
//! assert!(SGD::new(0.1).momentum(1.5).validate().is_err());
//! # Ok(()) }
//! ```

use std::collections::HashMap;

use serde_json::{json, Map, Value};
use strata_core::{no_grad, DType, Error, FusedUpdate, Result, Tensor};

mod adagrad;
mod adam;
mod adamw;
mod config;
mod rmsprop;
pub mod schedules;
mod sgd;
#[cfg(test)]
mod tests;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use rmsprop::RMSprop;
pub use schedules::{CosineDecay, ExponentialDecay, LearningRate, LearningRateSchedule, PiecewiseConstantDecay};
pub use sgd::SGD;

use config::ConfigReader;

/// An optimizer: updates weights in place from their gradients.
///
/// The built-in ones are [`SGD`], [`Adam`], [`AdamW`], [`RMSprop`] and
/// [`Adagrad`]; a custom optimizer implements this trait too and can be
/// passed to `Model::compile` like them.
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev)?;
/// let w = Tensor::new(vec![0.1f32, -0.2], [2, 1], &dev)?.to_variable()?;
/// let loss_of = |w: &Tensor| x.matmul(w)?.sub_scalar(1.0)?.square()?.mean_all();
/// let first = loss_of(&w)?.to_scalar::<f32>()?;
/// let mut opt = Adam::new(0.05).into_optimizer()?;
/// for _ in 0..20 {
///     let grads = loss_of(&w)?.backward()?;
///     let g = grads.get(&w).expect("the loss depends on w");
///     opt.apply_gradients(&[("w", &w, g)])?;
/// }
/// assert!(loss_of(&w)?.to_scalar::<f32>()? < first);
/// assert_eq!(opt.iterations(), 20);
/// # Ok(()) }
/// ```
pub trait Optimizer: Send {
    /// Keras class name: "SGD", "Adam", "AdamW", "RMSprop", "Adagrad".
    fn class_name(&self) -> &'static str;
    /// One step: (full weight name like "dense.kernel", variable, gradient).
    /// Does gradient clipping (clipnorm per variable, clipvalue, global_clipnorm),
    /// decoupled weight decay like Keras 3, the update rule, then iterations += 1.
    /// Runs under no_grad. The learning rate used is the schedule evaluated at
    /// `iterations()` before the increment (as Keras).
    ///
    /// Runs [`validate`](Self::validate) first. An empty list is a no-op (the
    /// counter does not move, as in Keras). Every pair is checked before
    /// any weight changes: names must be unique, gradients must have their
    /// variable's shape, dtype (`f32`) and device, and saved state restored
    /// with [`set_state`](Self::set_state) must fit the weight.
    fn apply_gradients(&mut self, params: &[(&str, &Tensor, &Tensor)]) -> Result<()>;
    /// The current learning rate (schedule evaluated at iterations()).
    fn learning_rate(&self) -> f64;
    /// Sets a constant learning rate; Err if a schedule drives it.
    fn set_learning_rate(&mut self, lr: f64) -> Result<()>;
    /// Steps applied so far.
    fn iterations(&self) -> u64;
    /// Keras-like `{"class_name": "Adam", "config": {"learning_rate": .., "beta_1": .., ...}}`.
    fn get_config(&self) -> serde_json::Value;
    /// Slot variables, named "{weight name}.{slot}" (e.g. "dense.kernel.m"), for saving.
    ///
    /// The built-in optimizers use Keras' slot names: `momentum` (SGD with
    /// momentum), `momentum`, `velocity`, `velocity_hat` (Adam, AdamW),
    /// `velocity`, `momentum`, `average_gradient` (RMSprop), `accumulator`
    /// (Adagrad) — so `"dense.kernel.momentum"`. Slots exist once a weight
    /// has been updated; the tensors returned are copies, which later steps
    /// (updating the slots in place where the backend can) leave unchanged.
    fn variables(&self) -> Vec<(String, Tensor)>;
    /// Restores iterations and slots saved by `variables()` (loading a saved model restores its optimizer through it).
    ///
    /// Replaces all state. Every weight named must come with all of the
    /// optimizer's slots; an unknown slot name, a missing slot or a
    /// non-`f32` tensor is an error (and changes nothing). The tensors are
    /// copied; a slot whose shape does not fit its weight is an error at the
    /// next [`apply_gradients`](Self::apply_gradients), and one on another
    /// device is moved to the weight's device there.
    fn set_state(&mut self, iterations: u64, variables: &[(String, Tensor)]) -> Result<()>;
    /// Checks the arguments given to the builders (the learning rate or its
    /// schedule, the clipping options, weight decay, the optimizer's own
    /// hyperparameters). [`IntoOptimizer::into_optimizer`] and
    /// [`apply_gradients`](Self::apply_gradients) call it. Default: valid.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// Accepted by `Model::compile`: `&str` / `String` names ("sgd", "adam", "adamw",
/// "rmsprop", "adagrad", case-insensitive, Keras defaults), every optimizer type,
/// and `Box<dyn Optimizer>`. Unknown name → Err listing the valid names.
///
/// An optimizer object is [validated](Optimizer::validate) here, so invalid
/// builder arguments are reported at compile time.
///
/// ```
/// use strata::optimizers::{Adam, IntoOptimizer};
/// assert_eq!("RMSprop".into_optimizer().unwrap().class_name(), "RMSprop");
/// assert!(Adam::new(-1.0).into_optimizer().is_err());
/// let err = "adamm".into_optimizer().err().unwrap().to_string();
/// assert!(err.contains("adamm") && err.contains("adamw"));
/// ```
pub trait IntoOptimizer {
    /// The boxed, validated optimizer.
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>>;
}

impl IntoOptimizer for &str {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizer_from_name(self)
    }
}

impl IntoOptimizer for String {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizer_from_name(&self)
    }
}

impl IntoOptimizer for &String {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        optimizer_from_name(self)
    }
}

impl IntoOptimizer for Box<dyn Optimizer> {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        Ok(self)
    }
}

impl<T: Optimizer + 'static> IntoOptimizer for T {
    fn into_optimizer(self) -> Result<Box<dyn Optimizer>> {
        self.validate()?;
        Ok(Box::new(self))
    }
}

/// The names [`optimizer_from_name`] accepts (case-insensitive).
pub const OPTIMIZER_NAMES: &[&str] = &["sgd", "adam", "adamw", "rmsprop", "adagrad"];

/// An optimizer by Keras name with Keras' defaults: `"sgd"` (lr 0.01),
/// `"adam"`, `"adamw"` (weight decay 0.004), `"rmsprop"`, `"adagrad"` (lr
/// 0.001). Case-insensitive; an unknown name is an error listing the valid
/// ones.
pub fn optimizer_from_name(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.trim().to_ascii_lowercase().as_str() {
        "sgd" => Box::new(SGD::default()),
        "adam" => Box::new(Adam::default()),
        "adamw" => Box::new(AdamW::default()),
        "rmsprop" => Box::new(RMSprop::default()),
        "adagrad" => Box::new(Adagrad::default()),
        _ => {
            return Err(Error::invalid(
                "optimizer",
                format!("unknown optimizer `{name}`; valid names: {}", OPTIMIZER_NAMES.join(", ")),
            ))
        }
    })
}

/// Rebuilds an optimizer from [`Optimizer::get_config`]'s
/// `{"class_name", "config"}` — or from Keras' own serialized form, whose
/// extra keys (`name`, `module`, `registered_name`, and the EMA,
/// loss-scaling and gradient-accumulation options while switched off) are
/// accepted. The result is [validated](Optimizer::validate); unknown classes
/// or keys are errors. Its state (iterations, slots) starts empty.
///
/// ```
/// use strata::optimizers::{optimizer_from_config, Optimizer, SGD};
/// let sgd = SGD::new(0.1).momentum(0.9).nesterov(true).clipnorm(1.0);
/// let back = optimizer_from_config(&sgd.get_config()).unwrap();
/// assert_eq!(back.get_config(), sgd.get_config());
/// ```
pub fn optimizer_from_config(config: &Value) -> Result<Box<dyn Optimizer>> {
    let class = config["class_name"]
        .as_str()
        .ok_or_else(|| Error::Config(format!("an optimizer config needs a string `class_name`, received {config}")))?;
    let inner = &config["config"];
    let opt: Box<dyn Optimizer> = match class.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(SGD::from_config(inner)?),
        "adam" => Box::new(Adam::from_config(inner)?),
        "adamw" => Box::new(AdamW::from_config(inner)?),
        "rmsprop" => Box::new(RMSprop::from_config(inner)?),
        "adagrad" => Box::new(Adagrad::from_config(inner)?),
        _ => {
            return Err(Error::Config(format!(
                "unknown optimizer class `{class}`; known: SGD, Adam, AdamW, RMSprop, Adagrad"
            )))
        }
    };
    opt.validate()?;
    Ok(opt)
}

// ------------------------------------------------------------ shared machinery

/// What an update rule sees of one step.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Step {
    /// The learning rate for this step.
    pub(crate) lr: f64,
    /// Steps applied before this one (Keras' `iterations`).
    pub(crate) iteration: u64,
}

/// One optimizer's own hyperparameters and update rule.
pub(crate) trait Rule {
    /// The slots kept per weight, in order (they may depend on the hyperparameters).
    fn slot_names(&self) -> &'static [&'static str];
    /// The starting value of slot `index` for `var`.
    fn init_slot(&self, _index: usize, var: &Tensor) -> Result<Tensor> {
        var.zeros_like()
    }
    /// The new value of a weight whose (clipped) gradient is `grad` and whose
    /// current (already weight-decayed) value is `value`; replaces `slots`.
    fn update(&self, step: Step, value: &Tensor, grad: &Tensor, slots: &mut [Tensor]) -> Result<Tensor>;
    /// The same update as one in-place backend kernel, when the rule has
    /// one for these hyperparameters (it must give the same bits as
    /// [`update`](Self::update)); backends without the kernel fall back to
    /// `update`.
    fn fused(&self, _step: Step) -> Option<FusedUpdate> {
        None
    }
    /// The rule's config keys.
    fn config(&self) -> Map<String, Value>;
    /// Checks the hyperparameters.
    fn validate(&self, class: &'static str) -> Result<()>;
}

/// The state and options every optimizer shares (Keras' `BaseOptimizer`).
#[derive(Clone, Debug)]
pub(crate) struct Base {
    pub(crate) lr: LearningRate,
    pub(crate) weight_decay: Option<f64>,
    pub(crate) clipnorm: Option<f64>,
    pub(crate) clipvalue: Option<f64>,
    pub(crate) global_clipnorm: Option<f64>,
    iterations: u64,
    /// Per weight (in first-seen order), its slots in `Rule::slot_names` order.
    slots: Vec<(String, Vec<Tensor>)>,
    index: HashMap<String, usize>,
}

pub(crate) fn check_finite(class: &'static str, key: &str, v: f64, ok: bool, want: &str) -> Result<()> {
    if v.is_finite() && ok {
        Ok(())
    } else {
        Err(Error::invalid(class, format!("`{key}` must be {want}, received {v}")))
    }
}

impl Base {
    pub(crate) fn new(lr: impl Into<LearningRate>) -> Self {
        Base {
            lr: lr.into(),
            weight_decay: None,
            clipnorm: None,
            clipvalue: None,
            global_clipnorm: None,
            iterations: 0,
            slots: Vec::new(),
            index: HashMap::new(),
        }
    }

    pub(crate) fn validate(&self, class: &'static str) -> Result<()> {
        self.lr.validate().map_err(|e| match e {
            Error::InvalidArgument { message, .. } => Error::invalid(class, message),
            other => other,
        })?;
        if let Some(wd) = self.weight_decay {
            check_finite(class, "weight_decay", wd, wd >= 0.0, "a number >= 0")?;
        }
        let clips =
            [("clipnorm", self.clipnorm), ("clipvalue", self.clipvalue), ("global_clipnorm", self.global_clipnorm)];
        for (key, value) in clips {
            if let Some(v) = value {
                check_finite(class, key, v, v > 0.0, "a number > 0")?;
            }
        }
        if clips.iter().filter(|(_, v)| v.is_some()).count() > 1 {
            let fmt = |v: Option<f64>| v.map_or("None".to_string(), |v| v.to_string());
            return Err(Error::invalid(
                class,
                format!(
                    "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set, received clipnorm={}, \
                     clipvalue={}, global_clipnorm={}",
                    fmt(self.clipnorm),
                    fmt(self.clipvalue),
                    fmt(self.global_clipnorm)
                ),
            ));
        }
        Ok(())
    }

    pub(crate) fn iterations(&self) -> u64 {
        self.iterations
    }

    pub(crate) fn learning_rate(&self) -> f64 {
        self.lr.at(self.iterations)
    }

    pub(crate) fn set_learning_rate(&mut self, class: &'static str, lr: f64) -> Result<()> {
        if let LearningRate::Schedule(s) = &self.lr {
            return Err(Error::invalid(
                class,
                format!(
                    "the learning rate is driven by a schedule ({}), so it cannot be set; create the optimizer \
                     with a constant learning rate to change it during training",
                    s.get_config()["class_name"].as_str().unwrap_or("custom")
                ),
            ));
        }
        check_finite(class, "learning_rate", lr, lr >= 0.0, "a number >= 0")?;
        self.lr = LearningRate::Constant(lr);
        Ok(())
    }

    /// Keras' base config keys, then the rule's.
    pub(crate) fn config(&self, class: &str, rule: Map<String, Value>) -> Value {
        let mut config = Map::new();
        config.insert("learning_rate".into(), self.lr.to_config());
        config.insert("weight_decay".into(), json!(self.weight_decay));
        config.insert("clipnorm".into(), json!(self.clipnorm));
        config.insert("global_clipnorm".into(), json!(self.global_clipnorm));
        config.insert("clipvalue".into(), json!(self.clipvalue));
        config.extend(rule);
        json!({"class_name": class, "config": config})
    }

    /// Reads Keras' base keys (learning rate default `default_lr`).
    pub(crate) fn from_config(r: &mut ConfigReader<'_>, default_lr: f64) -> Result<Base> {
        let lr = match r.value("learning_rate") {
            Some(v) => LearningRate::from_config(&v)?,
            None => LearningRate::Constant(default_lr),
        };
        let mut base = Base::new(lr);
        base.weight_decay = r.opt_f64("weight_decay")?;
        base.clipnorm = r.opt_f64("clipnorm")?;
        base.clipvalue = r.opt_f64("clipvalue")?;
        base.global_clipnorm = r.opt_f64("global_clipnorm")?;
        r.ignore("name");
        r.ignore("ema_momentum");
        r.unsupported("use_ema", &json!(false))?;
        r.unsupported("ema_overwrite_frequency", &Value::Null)?;
        r.unsupported("loss_scale_factor", &Value::Null)?;
        r.unsupported("gradient_accumulation_steps", &Value::Null)?;
        Ok(base)
    }

    pub(crate) fn variables(&self, names: &[&str]) -> Vec<(String, Tensor)> {
        let mut out = Vec::new();
        for (weight, slots) in &self.slots {
            for (slot, t) in names.iter().zip(slots) {
                // A copy: the slots are updated in place by later steps.
                let copy = t.copy().unwrap_or_else(|_| t.clone());
                out.push((format!("{weight}.{slot}"), copy));
            }
        }
        out
    }

    pub(crate) fn set_state(
        &mut self,
        class: &'static str,
        iterations: u64,
        variables: &[(String, Tensor)],
        names: &[&str],
    ) -> Result<()> {
        let mut grouped: Vec<(String, Vec<Option<Tensor>>)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        for (full, t) in variables {
            let slot_list = || if names.is_empty() { "none".to_string() } else { names.join(", ") };
            let (weight, slot) = full
                .rsplit_once('.')
                .and_then(|(w, s)| names.iter().position(|n| *n == s).map(|k| (w, k)))
                .ok_or_else(|| {
                    Error::invalid(
                        class,
                        format!(
                            "set_state: unknown optimizer variable `{full}`; expected `{{weight}}.{{slot}}` with \
                             slot one of: {}",
                            slot_list()
                        ),
                    )
                })?;
            if t.dtype() != DType::F32 {
                return Err(Error::invalid(class, format!("set_state: `{full}` must be f32, received {}", t.dtype())));
            }
            let i = *index.entry(weight.to_string()).or_insert_with(|| {
                grouped.push((weight.to_string(), vec![None; names.len()]));
                grouped.len() - 1
            });
            let cell = &mut grouped[i].1[slot];
            if cell.is_some() {
                return Err(Error::invalid(class, format!("set_state: `{full}` given twice")));
            }
            *cell = Some(t.copy()?);
        }
        let mut slots = Vec::with_capacity(grouped.len());
        for (weight, cells) in grouped {
            let mut tensors = Vec::with_capacity(cells.len());
            for (cell, name) in cells.into_iter().zip(names) {
                tensors.push(cell.ok_or_else(|| {
                    Error::invalid(
                        class,
                        format!("set_state: `{weight}.{name}` is missing ({class} keeps {})", names.join(", ")),
                    )
                })?);
            }
            slots.push((weight, tensors));
        }
        self.slots = slots;
        self.index = index;
        self.iterations = iterations;
        Ok(())
    }

    /// Checks every (name, variable, gradient) triple before anything changes.
    fn check_params(class: &'static str, params: &[(&str, &Tensor, &Tensor)]) -> Result<()> {
        let mut seen = std::collections::HashSet::new();
        for &(name, var, grad) in params {
            let bad = |msg: String| Err(Error::invalid(class, format!("apply_gradients: weight `{name}`: {msg}")));
            if !seen.insert(name) {
                return bad("appears twice in one step".into());
            }
            if var.dtype() != DType::F32 || grad.dtype() != DType::F32 {
                return bad(format!("needs f32 values and gradient, received {} and {}", var.dtype(), grad.dtype()));
            }
            if var.shape() != grad.shape() {
                return bad(format!("gradient shape {} differs from the weight's {}", grad.shape(), var.shape()));
            }
            if !var.device().same(grad.device()) {
                return bad(format!("gradient on {} but the weight on {}", grad.device(), var.device()));
            }
        }
        Ok(())
    }

    /// The slot index of `name`, creating its slots or checking restored ones.
    fn prepare_slots(&mut self, class: &'static str, rule: &dyn Rule, name: &str, var: &Tensor) -> Result<usize> {
        let names = rule.slot_names();
        if let Some(&i) = self.index.get(name) {
            let slots = &mut self.slots[i].1;
            if slots.len() != names.len() {
                return Err(Error::invalid(
                    class,
                    format!(
                        "weight `{name}` has {} optimizer slot(s) but {class} now keeps {}",
                        slots.len(),
                        names.len()
                    ),
                ));
            }
            for (t, slot) in slots.iter_mut().zip(names) {
                if t.shape() != var.shape() {
                    return Err(Error::invalid(
                        class,
                        format!(
                            "optimizer slot `{name}.{slot}` has shape {} but the weight has {}",
                            t.shape(),
                            var.shape()
                        ),
                    ));
                }
                if !t.device().same(var.device()) {
                    *t = Tensor::new(t.to_vec::<f32>()?, t.shape().clone(), var.device())?;
                }
            }
            return Ok(i);
        }
        let slots = (0..names.len()).map(|k| rule.init_slot(k, var)).collect::<Result<Vec<_>>>()?;
        self.slots.push((name.to_string(), slots));
        self.index.insert(name.to_string(), self.slots.len() - 1);
        Ok(self.slots.len() - 1)
    }

    /// Keras' `_clip_gradients`: clipnorm per gradient, else the global norm,
    /// else clipvalue — computed on the device, no host round trip.
    fn clip(&self, params: &[(&str, &Tensor, &Tensor)]) -> Result<Vec<Tensor>> {
        if let Some(c) = self.clipnorm {
            // g·c / max(‖g‖, c)
            return params
                .iter()
                .map(|(_, _, g)| {
                    let norm = g.square()?.sum_all()?.sqrt()?.maximum_scalar(c)?;
                    g.mul_scalar(c)?.div(&norm)
                })
                .collect();
        }
        if let Some(c) = self.global_clipnorm {
            // scale = c·min(1/‖all‖, 1/c), NaN when the norm is not finite.
            let mut total: Option<Tensor> = None;
            for (_, _, g) in params {
                let sq = g.square()?.sum_all()?;
                total = Some(match total {
                    None => sq,
                    Some(t) => t.add(&sq)?,
                });
            }
            let Some(total) = total else { return Ok(Vec::new()) };
            let norm = total.sqrt()?;
            let scale = norm.recip()?.minimum_scalar(1.0 / c)?.mul_scalar(c)?.add(&norm.sub(&norm)?)?;
            return params.iter().map(|(_, _, g)| g.mul(&scale)).collect();
        }
        if let Some(v) = self.clipvalue {
            return params.iter().map(|(_, _, g)| g.maximum_scalar(-v)?.minimum_scalar(v)).collect();
        }
        Ok(params.iter().map(|(_, _, g)| (*g).clone()).collect())
    }

    /// One step of Keras' `apply`: clip, decay, update every weight, count.
    /// The caller has validated the options.
    pub(crate) fn apply(
        &mut self,
        class: &'static str,
        rule: &dyn Rule,
        params: &[(&str, &Tensor, &Tensor)],
    ) -> Result<()> {
        if params.is_empty() {
            return Ok(());
        }
        Self::check_params(class, params)?;
        let lr = self.learning_rate();
        if !lr.is_finite() {
            return Err(Error::invalid(class, format!("the learning rate at step {} is {lr}", self.iterations)));
        }
        let step = Step { lr, iteration: self.iterations };
        no_grad(|| -> Result<()> {
            let slot_ids = params
                .iter()
                .map(|(name, var, _)| self.prepare_slots(class, rule, name, var))
                .collect::<Result<Vec<_>>>()?;
            let grads = self.clip(params)?;
            let (lr32, wd) = (lr as f32 as f64, self.weight_decay);
            let fused = if wd.is_none() { rule.fused(step) } else { None };
            for ((&(_, var, _), grad), i) in params.iter().zip(&grads).zip(slot_ids) {
                if let Some(f) = &fused {
                    let slots: Vec<&Tensor> = self.slots[i].1.iter().collect();
                    if var.fused_update(f, grad, &slots)? {
                        continue;
                    }
                }
                // Keras: `variable - variable * wd * lr`.
                let value = match wd {
                    Some(wd) => var.sub(&var.mul_scalar(wd)?.mul_scalar(lr32)?)?,
                    None => var.clone(),
                };
                let new = rule.update(step, &value, grad, &mut self.slots[i].1)?;
                var.assign(&new)?;
            }
            Ok(())
        })?;
        self.iterations += 1;
        Ok(())
    }
}

/// The [`Optimizer`] impl of a built-in optimizer with fields `base: Base`
/// and `rule: impl Rule`, and its `Default` (Keras' default learning rate).
macro_rules! optimizer_impl {
    ($t:ident, $class:literal, $default_lr:expr) => {
        impl $crate::optimizers::Optimizer for $t {
            fn class_name(&self) -> &'static str {
                $class
            }
            fn apply_gradients(&mut self, params: &[(&str, &Tensor, &Tensor)]) -> Result<()> {
                $crate::optimizers::Optimizer::validate(self)?;
                self.base.apply($class, &self.rule, params)
            }
            fn learning_rate(&self) -> f64 {
                self.base.learning_rate()
            }
            fn set_learning_rate(&mut self, lr: f64) -> Result<()> {
                self.base.set_learning_rate($class, lr)
            }
            fn iterations(&self) -> u64 {
                self.base.iterations()
            }
            fn get_config(&self) -> serde_json::Value {
                self.base.config($class, $crate::optimizers::Rule::config(&self.rule))
            }
            fn variables(&self) -> Vec<(String, Tensor)> {
                self.base.variables($crate::optimizers::Rule::slot_names(&self.rule))
            }
            fn set_state(&mut self, iterations: u64, variables: &[(String, Tensor)]) -> Result<()> {
                let names = $crate::optimizers::Rule::slot_names(&self.rule);
                self.base.set_state($class, iterations, variables, names)
            }
            fn validate(&self) -> Result<()> {
                self.base.validate($class)?;
                $crate::optimizers::Rule::validate(&self.rule, $class)
            }
        }

        impl Default for $t {
            /// Keras' defaults.
            fn default() -> Self {
                $t::new($default_lr)
            }
        }

        impl $t {
            /// Clips each gradient to an L2 norm of at most `clipnorm`
            /// (`g·clipnorm / max(‖g‖, clipnorm)`); must be `> 0`.
            pub fn clipnorm(mut self, clipnorm: f64) -> Self {
                self.base.clipnorm = Some(clipnorm);
                self
            }

            /// Clips each gradient element to `[-clipvalue, clipvalue]`; must be `> 0`.
            pub fn clipvalue(mut self, clipvalue: f64) -> Self {
                self.base.clipvalue = Some(clipvalue);
                self
            }

            /// Scales all gradients together so their joint L2 norm is at most
            /// `global_clipnorm`; must be `> 0`. At most one of `clipnorm`,
            /// `clipvalue` and `global_clipnorm` may be set.
            pub fn global_clipnorm(mut self, global_clipnorm: f64) -> Self {
                self.base.global_clipnorm = Some(global_clipnorm);
                self
            }

            /// Decoupled weight decay, as Keras 3 applies it: before each
            /// update, `w ← w − w·weight_decay·lr`. Must be `>= 0`.
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.base.weight_decay = Some(weight_decay);
                self
            }

            /// Checks the arguments (see [`Optimizer::validate`](crate::optimizers::Optimizer::validate)).
            pub fn validate(&self) -> Result<()> {
                $crate::optimizers::Optimizer::validate(self)
            }
        }
    };
}
pub(crate) use optimizer_impl;
