//! `SGD`: gradient descent with optional (Nesterov) momentum, as Keras 3.

use serde_json::{json, Map, Value};
use strata_core::{FusedUpdate, Result, Tensor};

use super::config::ConfigReader;
use super::{check_finite, optimizer_impl, Base, LearningRate, Rule, Step};

/// Gradient descent with optional momentum (Keras' `SGD`).
///
/// Without momentum: `w ← w − lr·g`. With momentum `μ`, a velocity `v`
/// (slot `momentum`, zeros at first) is kept per weight:
/// `v ← μ·v − lr·g`, then `w ← w + v`, or with Nesterov
/// `w ← w + μ·v − lr·g`.
///
/// Keras defaults: learning rate 0.01, momentum 0, no Nesterov.
/// `momentum` must be in `[0, 1]` (checked by [`SGD::validate`]).
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let w = Tensor::new(vec![1.0f32], [1], &dev)?.to_variable()?;
/// let g = Tensor::new(vec![2.0f32], [1], &dev)?;
/// let mut sgd = SGD::new(0.1);
/// sgd.apply_gradients(&[("w", &w, &g)])?;
/// assert!((w.to_vec::<f32>()?[0] - 0.8).abs() < 1e-7);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct SGD {
    base: Base,
    rule: SgdRule,
}

#[derive(Clone, Copy, Debug)]
struct SgdRule {
    momentum: f64,
    nesterov: bool,
}

impl SGD {
    /// Plain gradient descent with learning rate `lr` (a number or a schedule).
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        SGD { base: Base::new(lr), rule: SgdRule { momentum: 0.0, nesterov: false } }
    }

    /// The momentum `μ`, in `[0, 1]` (default 0: none).
    pub fn momentum(mut self, momentum: f64) -> Self {
        self.rule.momentum = momentum;
        self
    }

    /// Whether to use Nesterov momentum (default false).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.rule.nesterov = nesterov;
        self
    }

    /// Reads the `config` part of [`Optimizer::get_config`](super::Optimizer::get_config)
    /// (Keras' keys; defaults for missing ones). Not validated: see
    /// [`optimizer_from_config`](super::optimizer_from_config).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut r = ConfigReader::new("SGD", config)?;
        let base = Base::from_config(&mut r, 0.01)?;
        let rule = SgdRule { momentum: r.f64_or("momentum", 0.0)?, nesterov: r.bool_or("nesterov", false)? };
        r.finish()?;
        Ok(SGD { base, rule })
    }
}

impl Rule for SgdRule {
    fn slot_names(&self) -> &'static [&'static str] {
        // Keras keeps no velocity when momentum is 0.
        if self.momentum != 0.0 {
            &["momentum"]
        } else {
            &[]
        }
    }

    fn fused(&self, step: Step) -> Option<FusedUpdate> {
        // The scalars rounded to f32 exactly as `update`'s scalar ops round them.
        let lr = step.lr as f32;
        Some(if self.momentum == 0.0 {
            FusedUpdate::Sgd { lr }
        } else {
            FusedUpdate::Momentum { lr, momentum: self.momentum as f32, nesterov: self.nesterov }
        })
    }

    fn update(&self, step: Step, value: &Tensor, grad: &Tensor, slots: &mut [Tensor]) -> Result<Tensor> {
        let g_lr = grad.mul_scalar(step.lr)?;
        let [m] = slots else { return value.sub(&g_lr) };
        let m_new = m.mul_scalar(self.momentum)?.sub(&g_lr)?;
        let new = if self.nesterov {
            value.add(&m_new.mul_scalar(self.momentum)?.sub(&g_lr)?)?
        } else {
            value.add(&m_new)?
        };
        *m = m_new;
        Ok(new)
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("momentum".into(), json!(self.momentum));
        m.insert("nesterov".into(), json!(self.nesterov));
        m
    }

    fn validate(&self, class: &'static str) -> Result<()> {
        check_finite(class, "momentum", self.momentum, (0.0..=1.0).contains(&self.momentum), "a number in [0, 1]")
    }
}

optimizer_impl!(SGD, "SGD", 0.01);
