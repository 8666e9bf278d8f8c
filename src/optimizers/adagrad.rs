//! `Adagrad`: per-element learning rates from accumulated squared gradients, as Keras 3.

use serde_json::{json, Map, Value};
use strata_core::{DType, Result, Tensor};

use super::config::ConfigReader;
use super::{check_finite, optimizer_impl, Base, LearningRate, Rule, Step};

/// Adagrad (Keras' `Adagrad`).
///
/// Per weight it accumulates squared gradients (slot `accumulator`, starting
/// at `initial_accumulator_value`):
///
/// ```text
/// a ← a + g²
/// w ← w − lr·g / √(a + ε)
/// ```
///
/// Keras defaults: learning rate 0.001, initial accumulator 0.1, ε 1e-7.
/// Both must be `>= 0` (checked by [`Adagrad::validate`]).
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let w = Tensor::new(vec![1.0f32], [1], &dev)?.to_variable()?;
/// let g = Tensor::new(vec![3.0f32], [1], &dev)?;
/// let mut opt = Adagrad::new(0.1).initial_accumulator_value(0.0).epsilon(0.0);
/// opt.apply_gradients(&[("w", &w, &g)])?;              // a = 9, step = 0.1·3/3
/// assert!((w.to_vec::<f32>()?[0] - 0.9).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Adagrad {
    base: Base,
    rule: AdagradRule,
}

#[derive(Clone, Copy, Debug)]
struct AdagradRule {
    initial_accumulator_value: f64,
    epsilon: f64,
}

impl Adagrad {
    /// Adagrad with learning rate `lr` (a number or a schedule) and Keras' defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        Adagrad { base: Base::new(lr), rule: AdagradRule { initial_accumulator_value: 0.1, epsilon: 1e-7 } }
    }

    /// The accumulator's starting value, `>= 0` (default 0.1).
    pub fn initial_accumulator_value(mut self, value: f64) -> Self {
        self.rule.initial_accumulator_value = value;
        self
    }

    /// Added under the square root for numerical stability, `>= 0` (default 1e-7).
    pub fn epsilon(mut self, epsilon: f64) -> Self {
        self.rule.epsilon = epsilon;
        self
    }

    /// Reads the `config` part of [`Optimizer::get_config`](super::Optimizer::get_config)
    /// (Keras' keys; defaults for missing ones). Not validated: see
    /// [`optimizer_from_config`](super::optimizer_from_config).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut r = ConfigReader::new("Adagrad", config)?;
        let base = Base::from_config(&mut r, 0.001)?;
        let rule = AdagradRule {
            initial_accumulator_value: r.f64_or("initial_accumulator_value", 0.1)?,
            epsilon: r.f64_or("epsilon", 1e-7)?,
        };
        r.finish()?;
        Ok(Adagrad { base, rule })
    }
}

impl Rule for AdagradRule {
    fn slot_names(&self) -> &'static [&'static str] {
        &["accumulator"]
    }

    fn init_slot(&self, _index: usize, var: &Tensor) -> Result<Tensor> {
        Tensor::full(self.initial_accumulator_value, var.shape().clone(), DType::F32, var.device())
    }

    fn update(&self, step: Step, value: &Tensor, grad: &Tensor, slots: &mut [Tensor]) -> Result<Tensor> {
        let accumulator = slots[0].add(&grad.square()?)?;
        let new = value.sub(&grad.mul_scalar(step.lr)?.div(&accumulator.add_scalar(self.epsilon)?.sqrt()?)?)?;
        slots[0] = accumulator;
        Ok(new)
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("initial_accumulator_value".into(), json!(self.initial_accumulator_value));
        m.insert("epsilon".into(), json!(self.epsilon));
        m
    }

    fn validate(&self, class: &'static str) -> Result<()> {
        let v = self.initial_accumulator_value;
        check_finite(class, "initial_accumulator_value", v, v >= 0.0, "a number >= 0")?;
        check_finite(class, "epsilon", self.epsilon, self.epsilon >= 0.0, "a number >= 0")
    }
}

optimizer_impl!(Adagrad, "Adagrad", 0.001);
