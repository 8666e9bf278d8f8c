//! `RMSprop`: gradients scaled by a moving root mean square, as Keras 3.

use serde_json::{json, Map, Value};
use strata_core::{Result, Tensor};

use super::config::ConfigReader;
use super::{check_finite, optimizer_impl, Base, LearningRate, Rule, Step};

/// RMSprop (Keras' `RMSprop`), optionally centered and with momentum.
///
/// Per weight it keeps a moving average of squared gradients (slot
/// `velocity`), plus `momentum` when momentum > 0 and `average_gradient`
/// when centered:
///
/// ```text
/// v ← ρ·v + (1 − ρ)·g²
/// ḡ ← ρ·ḡ + (1 − ρ)·g                 (centered)
/// Δ = lr·g / √(v − ḡ² + ε)            (centered; else √(v + ε))
/// m ← μ·m + Δ,  w ← w − m             (momentum μ > 0; else w ← w − Δ)
/// ```
///
/// Keras defaults: learning rate 0.001, ρ 0.9, momentum 0, ε 1e-7, not
/// centered. ρ must be in `[0, 1)`, momentum in `[0, 1]`, ε `>= 0` (checked
/// by [`RMSprop::validate`]).
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let opt = RMSprop::new(0.01).rho(0.95).momentum(0.9).centered(true);
/// assert_eq!(opt.get_config()["config"]["centered"], true);
/// assert!(RMSprop::new(0.01).rho(1.5).validate().is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct RMSprop {
    base: Base,
    rule: RmsRule,
}

#[derive(Clone, Copy, Debug)]
struct RmsRule {
    rho: f64,
    momentum: f64,
    epsilon: f64,
    centered: bool,
}

impl RMSprop {
    /// RMSprop with learning rate `lr` (a number or a schedule) and Keras' defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        RMSprop { base: Base::new(lr), rule: RmsRule { rho: 0.9, momentum: 0.0, epsilon: 1e-7, centered: false } }
    }

    /// Decay rate of the squared-gradient average, in `[0, 1)` (default 0.9).
    pub fn rho(mut self, rho: f64) -> Self {
        self.rule.rho = rho;
        self
    }

    /// Momentum, in `[0, 1]` (default 0: none).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.rule.momentum = momentum;
        self
    }

    /// Added under the square root for numerical stability, `>= 0` (default 1e-7).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.epsilon = epsilon;
        self
    }

    /// Whether to divide by the estimated variance rather than the raw
    /// second moment (default false).
    pub fn centered(mut self, centered: bool) -> Self {
        self.rule.centered = centered;
        self
    }

    /// Reads the `config` part of [`Optimizer::get_config`](super::Optimizer::get_config)
    /// (Keras' keys; defaults for missing ones). Not validated: see
    /// [`optimizer_from_config`](super::optimizer_from_config).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut r = ConfigReader::new("RMSprop", config)?;
        let base = Base::from_config(&mut r, 0.001)?;
        let rule = RmsRule {
            rho: r.f64_or("rho", 0.9)?,
            momentum: r.f64_or("momentum", 0.0)?,
            epsilon: r.f64_or("epsilon", 1e-7)?,
            centered: r.bool_or("centered", false)?,
        };
        r.finish()?;
        Ok(RMSprop { base, rule })
    }
}

impl Rule for RmsRule {
    fn slot_names(&self) -> &'static [&'static str] {
        match (self.momentum > 0.0, self.centered) {
            (false, false) => &["velocity"],
            (true, false) => &["velocity", "momentum"],
            (false, true) => &["velocity", "average_gradient"],
            (true, true) => &["velocity", "momentum", "average_gradient"],
        }
    }

    fn update(&self, step: Step, value: &Tensor, grad: &Tensor, slots: &mut [Tensor]) -> Result<Tensor> {
        let (rho, keep) = (self.rho, 1.0 - self.rho);
        let velocity = slots[0].mul_scalar(rho)?.add(&grad.square()?.mul_scalar(keep)?)?;
        let denominator = if self.centered {
            let last = slots.len() - 1;
            let average = slots[last].mul_scalar(rho)?.add(&grad.mul_scalar(keep)?)?;
            let d = velocity.sub(&average.square()?)?.add_scalar(self.epsilon)?;
            slots[last] = average;
            d
        } else {
            velocity.add_scalar(self.epsilon)?
        };
        let increment = grad.mul_scalar(step.lr)?.div(&denominator.sqrt()?)?;
        slots[0] = velocity;
        if self.momentum > 0.0 {
            let momentum = slots[1].mul_scalar(self.momentum)?.add(&increment)?;
            let new = value.sub(&momentum)?;
            slots[1] = momentum;
            return Ok(new);
        }
        value.sub(&increment)
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("rho".into(), json!(self.rho));
        m.insert("momentum".into(), json!(self.momentum));
        m.insert("epsilon".into(), json!(self.epsilon));
        m.insert("centered".into(), json!(self.centered));
        m
    }

    fn validate(&self, class: &'static str) -> Result<()> {
        check_finite(class, "rho", self.rho, (0.0..1.0).contains(&self.rho), "a number in [0, 1)")?;
        check_finite(class, "momentum", self.momentum, (0.0..=1.0).contains(&self.momentum), "a number in [0, 1]")?;
        check_finite(class, "epsilon", self.epsilon, self.epsilon >= 0.0, "a number >= 0")
    }
}

optimizer_impl!(RMSprop, "RMSprop", 0.001);
