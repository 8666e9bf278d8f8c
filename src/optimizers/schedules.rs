//! Learning-rate schedules: a learning rate that depends on the optimizer's
//! step count, with Keras' names, formulas and configs.
//!
//! An optimizer evaluates its schedule at [`Optimizer::iterations`] before
//! each step (step 0 for the first update), as Keras does.
//!
//! ```
//! use strata::optimizers::schedules::{ExponentialDecay, LearningRateSchedule, PiecewiseConstantDecay};
//!
//! let decay = ExponentialDecay::new(0.1, 10, 0.5).staircase(true);
//! assert_eq!(decay.rate(9), 0.1);
//! assert!((decay.rate(10) - 0.05).abs() < 1e-12);
//!
//! let steps = PiecewiseConstantDecay::new(vec![100, 200], vec![1.0, 0.5, 0.1]).unwrap();
//! assert_eq!((steps.rate(100), steps.rate(101), steps.rate(201)), (1.0, 0.5, 0.1));
//! ```
//!
//! [`Optimizer::iterations`]: crate::optimizers::Optimizer::iterations

use std::fmt;
use std::sync::Arc;

use serde_json::{json, Value};
use strata_core::{Error, Result};

use super::config::ConfigReader;

/// A learning rate as a function of the optimizer's step count.
///
/// Implement it for a custom schedule; the built-in ones are
/// [`ExponentialDecay`], [`CosineDecay`] and [`PiecewiseConstantDecay`].
/// Only the built-in ones can be rebuilt by
/// [`optimizer_from_config`](crate::optimizers::optimizer_from_config).
///
/// ```
/// use strata::optimizers::schedules::LearningRateSchedule;
/// use strata::optimizers::{Optimizer, SGD};
///
/// struct InverseTime(f64);
/// impl LearningRateSchedule for InverseTime {
///     fn rate(&self, step: u64) -> f64 {
///         self.0 / (1.0 + step as f64)
///     }
///     fn get_config(&self) -> serde_json::Value {
///         serde_json::json!({"class_name": "InverseTime", "config": {"initial": self.0}})
///     }
/// }
/// let sgd = SGD::new(InverseTime(0.1));
/// assert_eq!(sgd.learning_rate(), 0.1);
/// ```
pub trait LearningRateSchedule: Send + Sync {
    /// The learning rate for the update made at `step` (0 for the first update).
    fn rate(&self, step: u64) -> f64;
    /// Keras' serialized form: `{"class_name": "ExponentialDecay", "config": {...}}`.
    fn get_config(&self) -> Value;
    /// Checks the schedule's arguments; optimizers call it before their first
    /// update and refuse to run with an invalid schedule. Default: valid.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// An optimizer's learning rate: a constant, or a schedule evaluated at the
/// step count. Every optimizer's `new` takes `impl Into<LearningRate>`, so an
/// `f64` or any schedule can be passed directly.
///
/// ```
/// use strata::optimizers::schedules::{CosineDecay, LearningRate};
/// assert!(matches!(LearningRate::from(0.01), LearningRate::Constant(_)));
/// assert!(matches!(LearningRate::from(CosineDecay::new(0.1, 100)), LearningRate::Schedule(_)));
/// ```
#[derive(Clone)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f64),
    /// A rate that depends on the step count.
    Schedule(Arc<dyn LearningRateSchedule>),
}

impl LearningRate {
    /// The rate for the update made at `step`.
    pub fn at(&self, step: u64) -> f64 {
        match self {
            LearningRate::Constant(lr) => *lr,
            LearningRate::Schedule(s) => s.rate(step),
        }
    }

    /// A constant must be finite and `>= 0`; a schedule must pass its own
    /// [`LearningRateSchedule::validate`].
    pub fn validate(&self) -> Result<()> {
        match self {
            LearningRate::Constant(lr) => check_rate("learning_rate", *lr),
            LearningRate::Schedule(s) => s.validate(),
        }
    }

    /// The config value: a number, or the schedule's `{"class_name", "config"}`.
    pub fn to_config(&self) -> Value {
        match self {
            LearningRate::Constant(lr) => json!(lr),
            LearningRate::Schedule(s) => s.get_config(),
        }
    }

    /// Reads a number or a serialized built-in schedule (Keras' form, with or
    /// without `module` and `registered_name`).
    pub fn from_config(value: &Value) -> Result<LearningRate> {
        match value {
            Value::Number(n) => n
                .as_f64()
                .map(LearningRate::Constant)
                .ok_or_else(|| Error::Config(format!("learning_rate: {n} is not a number"))),
            Value::Object(_) => schedule_from_config(value).map(LearningRate::Schedule),
            other => Err(Error::Config(format!("learning_rate must be a number or a schedule, received {other}"))),
        }
    }
}

impl fmt::Debug for LearningRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearningRate::Constant(lr) => write!(f, "Constant({lr})"),
            LearningRate::Schedule(s) => write!(f, "Schedule({})", s.get_config()),
        }
    }
}

impl From<f64> for LearningRate {
    fn from(lr: f64) -> Self {
        LearningRate::Constant(lr)
    }
}

impl From<f32> for LearningRate {
    fn from(lr: f32) -> Self {
        LearningRate::Constant(lr as f64)
    }
}

impl From<Arc<dyn LearningRateSchedule>> for LearningRate {
    fn from(s: Arc<dyn LearningRateSchedule>) -> Self {
        LearningRate::Schedule(s)
    }
}

impl<S: LearningRateSchedule + 'static> From<S> for LearningRate {
    fn from(s: S) -> Self {
        LearningRate::Schedule(Arc::new(s))
    }
}

/// The schedule class names [`schedule_from_config`] knows.
pub const SCHEDULE_NAMES: &[&str] = &["ExponentialDecay", "CosineDecay", "PiecewiseConstantDecay"];

/// Rebuilds a built-in schedule from its serialized form
/// (`{"class_name": "CosineDecay", "config": {...}}`, as
/// [`LearningRateSchedule::get_config`] and Keras write it). An unknown class
/// is an error listing the known ones.
pub fn schedule_from_config(value: &Value) -> Result<Arc<dyn LearningRateSchedule>> {
    let class = value["class_name"].as_str().ok_or_else(|| {
        Error::Config(format!("a learning-rate schedule needs a string `class_name`, received {value}"))
    })?;
    let mut r = ConfigReader::new(class, &value["config"])?;
    let schedule: Arc<dyn LearningRateSchedule> = match class {
        "ExponentialDecay" => Arc::new(ExponentialDecay {
            initial_learning_rate: r.f64("initial_learning_rate")?,
            decay_steps: r.u64("decay_steps")?,
            decay_rate: r.f64("decay_rate")?,
            staircase: r.bool_or("staircase", false)?,
        }),
        "CosineDecay" => Arc::new(CosineDecay {
            initial_learning_rate: r.f64("initial_learning_rate")?,
            decay_steps: r.u64("decay_steps")?,
            alpha: r.f64_or("alpha", 0.0)?,
            warmup_target: r.opt_f64("warmup_target")?,
            warmup_steps: r.u64_or("warmup_steps", 0)?,
        }),
        "PiecewiseConstantDecay" => {
            Arc::new(PiecewiseConstantDecay::new(r.u64_list("boundaries")?, r.f64_list("values")?)?)
        }
        other => {
            return Err(Error::Config(format!(
                "unknown learning-rate schedule `{other}`; known: {}",
                SCHEDULE_NAMES.join(", ")
            )))
        }
    };
    r.ignore("name");
    r.finish()?;
    schedule.validate()?;
    Ok(schedule)
}

fn check_rate(what: &str, value: f64) -> Result<()> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Error::invalid("learning rate", format!("`{what}` must be a finite number >= 0, received {value}")))
    }
}

fn check_steps(class: &str, decay_steps: u64) -> Result<()> {
    if decay_steps == 0 {
        return Err(Error::invalid("learning rate", format!("{class}: `decay_steps` must be > 0, received 0")));
    }
    Ok(())
}

/// `initial_learning_rate · decay_rate ^ (step / decay_steps)`; with
/// `staircase`, the exponent is rounded down (the rate drops every
/// `decay_steps` steps). Keras' `ExponentialDecay`.
///
/// Invalid arguments (`decay_steps == 0`, a negative or non-finite rate) are
/// reported by [`LearningRateSchedule::validate`], which optimizers call
/// before their first update.
///
/// ```
/// use strata::optimizers::schedules::{ExponentialDecay, LearningRateSchedule};
/// let s = ExponentialDecay::new(0.1, 100, 0.96);
/// assert!((s.rate(50) - 0.1 * 0.96f64.powf(0.5)).abs() < 1e-12);
/// assert!(ExponentialDecay::new(0.1, 0, 0.96).validate().is_err());
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    decay_rate: f64,
    staircase: bool,
}

impl ExponentialDecay {
    /// Decays from `initial_learning_rate` by a factor `decay_rate` every
    /// `decay_steps` steps (smoothly unless [`staircase`](Self::staircase)).
    pub fn new(initial_learning_rate: f64, decay_steps: u64, decay_rate: f64) -> Self {
        ExponentialDecay { initial_learning_rate, decay_steps, decay_rate, staircase: false }
    }

    /// Whether the rate drops in steps rather than smoothly (default false).
    pub fn staircase(mut self, staircase: bool) -> Self {
        self.staircase = staircase;
        self
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn rate(&self, step: u64) -> f64 {
        let mut p = step as f64 / self.decay_steps as f64;
        if self.staircase {
            p = p.floor();
        }
        self.initial_learning_rate * self.decay_rate.powf(p)
    }

    fn get_config(&self) -> Value {
        json!({
            "class_name": "ExponentialDecay",
            "config": {
                "initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps,
                "decay_rate": self.decay_rate,
                "staircase": self.staircase,
            }
        })
    }

    fn validate(&self) -> Result<()> {
        check_rate("initial_learning_rate", self.initial_learning_rate)?;
        check_steps("ExponentialDecay", self.decay_steps)?;
        check_rate("decay_rate", self.decay_rate)
    }
}

/// Cosine decay from `initial_learning_rate` to `alpha · initial_learning_rate`
/// over `decay_steps` steps, then constant; optionally after a linear warmup
/// from `initial_learning_rate` to a `warmup_target` over `warmup_steps`
/// steps (the cosine then starts from the target). Keras' `CosineDecay`.
///
/// Invalid arguments (`decay_steps == 0`, `alpha` outside `[0, 1]`, negative
/// rates) are reported by [`LearningRateSchedule::validate`].
///
/// ```
/// use strata::optimizers::schedules::{CosineDecay, LearningRateSchedule};
/// let s = CosineDecay::new(0.1, 100).alpha(0.1);
/// assert!((s.rate(0) - 0.1).abs() < 1e-12);
/// assert!((s.rate(100) - 0.01).abs() < 1e-12);
/// let w = CosineDecay::new(0.0, 100).warmup(0.1, 10);
/// assert!((w.rate(5) - 0.05).abs() < 1e-12);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct CosineDecay {
    initial_learning_rate: f64,
    decay_steps: u64,
    alpha: f64,
    warmup_target: Option<f64>,
    warmup_steps: u64,
}

impl CosineDecay {
    /// Decays from `initial_learning_rate` to 0 over `decay_steps` steps.
    pub fn new(initial_learning_rate: f64, decay_steps: u64) -> Self {
        CosineDecay { initial_learning_rate, decay_steps, alpha: 0.0, warmup_target: None, warmup_steps: 0 }
    }

    /// The final rate as a fraction of the starting one (default 0).
    pub fn alpha(mut self, alpha: f64) -> Self {
        self.alpha = alpha;
        self
    }

    /// First rise linearly from `initial_learning_rate` to `target` over
    /// `steps` steps, then decay from `target` (Keras' `warmup_target`,
    /// `warmup_steps`).
    pub fn warmup(mut self, target: f64, steps: u64) -> Self {
        self.warmup_target = Some(target);
        self.warmup_steps = steps;
        self
    }

    fn decay(&self, step: f64, from: f64) -> f64 {
        let fraction = step / self.decay_steps as f64;
        let cosine = 0.5 * (1.0 + (std::f64::consts::PI * fraction).cos());
        from * ((1.0 - self.alpha) * cosine + self.alpha)
    }
}

impl LearningRateSchedule for CosineDecay {
    fn rate(&self, step: u64) -> f64 {
        let (decay_steps, step) = (self.decay_steps as f64, step as f64);
        match self.warmup_target {
            None => self.decay(step.min(decay_steps), self.initial_learning_rate),
            Some(target) => {
                let warmup = self.warmup_steps as f64;
                let step = step.min(decay_steps + warmup);
                if step < warmup {
                    (target - self.initial_learning_rate) * (step / warmup) + self.initial_learning_rate
                } else {
                    self.decay(step - warmup, target)
                }
            }
        }
    }

    fn get_config(&self) -> Value {
        json!({
            "class_name": "CosineDecay",
            "config": {
                "initial_learning_rate": self.initial_learning_rate,
                "decay_steps": self.decay_steps,
                "alpha": self.alpha,
                "warmup_target": self.warmup_target,
                "warmup_steps": self.warmup_steps,
            }
        })
    }

    fn validate(&self) -> Result<()> {
        check_rate("initial_learning_rate", self.initial_learning_rate)?;
        check_steps("CosineDecay", self.decay_steps)?;
        if !(0.0..=1.0).contains(&self.alpha) {
            return Err(Error::invalid(
                "learning rate",
                format!("CosineDecay: `alpha` must be in [0, 1], received {}", self.alpha),
            ));
        }
        if let Some(target) = self.warmup_target {
            check_rate("warmup_target", target)?;
        }
        Ok(())
    }
}

/// A rate that is constant between step boundaries: `values[0]` for
/// `step <= boundaries[0]`, `values[i]` for
/// `boundaries[i-1] < step <= boundaries[i]`, and the last value after the
/// last boundary. Keras' `PiecewiseConstantDecay`.
///
/// ```
/// use strata::optimizers::schedules::PiecewiseConstantDecay;
/// assert!(PiecewiseConstantDecay::new(vec![10], vec![0.1]).is_err()); // needs one more value
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct PiecewiseConstantDecay {
    boundaries: Vec<u64>,
    values: Vec<f64>,
}

impl PiecewiseConstantDecay {
    /// `values` must have one more entry than `boundaries`, the boundaries
    /// must be strictly increasing and the values finite and `>= 0`.
    pub fn new(boundaries: Vec<u64>, values: Vec<f64>) -> Result<Self> {
        if values.len() != boundaries.len() + 1 {
            return Err(Error::invalid(
                "learning rate",
                format!(
                    "PiecewiseConstantDecay needs one more value than boundaries, received {} boundaries \
                     {boundaries:?} and {} values {values:?}",
                    boundaries.len(),
                    values.len()
                ),
            ));
        }
        if boundaries.windows(2).any(|w| w[0] >= w[1]) {
            return Err(Error::invalid(
                "learning rate",
                format!("PiecewiseConstantDecay: boundaries must be strictly increasing, received {boundaries:?}"),
            ));
        }
        for &v in &values {
            check_rate("values", v)?;
        }
        Ok(PiecewiseConstantDecay { boundaries, values })
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn rate(&self, step: u64) -> f64 {
        self.values[self.boundaries.iter().take_while(|&&b| step > b).count()]
    }

    fn get_config(&self) -> Value {
        json!({
            "class_name": "PiecewiseConstantDecay",
            "config": {"boundaries": self.boundaries, "values": self.values}
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedules_round_trip_through_their_configs() {
        let all: Vec<Arc<dyn LearningRateSchedule>> = vec![
            Arc::new(ExponentialDecay::new(0.1, 3, 0.5).staircase(true)),
            Arc::new(CosineDecay::new(0.1, 4).alpha(0.2)),
            Arc::new(CosineDecay::new(0.0, 4).warmup(0.2, 3)),
            Arc::new(PiecewiseConstantDecay::new(vec![1, 3], vec![0.1, 0.05, 0.01]).unwrap()),
        ];
        for s in all {
            let back = schedule_from_config(&s.get_config()).unwrap();
            assert_eq!(back.get_config(), s.get_config());
            for step in 0..10 {
                assert_eq!(back.rate(step), s.rate(step));
            }
        }
    }

    #[test]
    fn keras_serialized_schedules_are_read() {
        let keras = json!({"module": "keras.optimizers.schedules", "class_name": "CosineDecay",
            "config": {"initial_learning_rate": 0.1, "decay_steps": 10, "alpha": 0.0, "name": "CosineDecay",
                       "warmup_target": null, "warmup_steps": 0}, "registered_name": null});
        let s = schedule_from_config(&keras).unwrap();
        assert!((s.rate(5) - 0.05).abs() < 1e-12);
    }

    #[test]
    fn invalid_schedules_are_errors() {
        assert!(ExponentialDecay::new(0.1, 0, 0.5).validate().unwrap_err().to_string().contains("decay_steps"));
        assert!(ExponentialDecay::new(-0.1, 5, 0.5).validate().is_err());
        assert!(CosineDecay::new(0.1, 0).validate().is_err());
        assert!(CosineDecay::new(0.1, 5).alpha(1.5).validate().is_err());
        assert!(PiecewiseConstantDecay::new(vec![3, 3], vec![0.1, 0.2, 0.3]).is_err());
        assert!(PiecewiseConstantDecay::new(vec![], vec![0.1]).is_ok());
        let unknown = json!({"class_name": "PolynomialDecay", "config": {}});
        let err = schedule_from_config(&unknown).err().unwrap().to_string();
        assert!(err.contains("PolynomialDecay") && err.contains("CosineDecay"), "{err}");
        let bad = json!({"class_name": "ExponentialDecay", "config": {"initial_learning_rate": 0.1,
            "decay_steps": 0, "decay_rate": 0.5}});
        assert!(schedule_from_config(&bad).is_err());
    }

    #[test]
    fn piecewise_boundaries_are_inclusive_like_keras() {
        let s = PiecewiseConstantDecay::new(vec![1, 3], vec![0.1, 0.05, 0.01]).unwrap();
        let rates: Vec<f64> = (0..5).map(|t| s.rate(t)).collect();
        assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.01]);
    }
}
