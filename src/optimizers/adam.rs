//! `Adam`: adaptive moment estimation (optionally AMSGrad), as Keras 3.

use serde_json::{json, Map, Value};
use strata_core::{FusedUpdate, Result, Tensor};

use super::config::ConfigReader;
use super::{check_finite, optimizer_impl, Base, LearningRate, Rule, Step};

/// Adam (Kingma & Ba), optionally AMSGrad (Keras' `Adam`).
///
/// Per weight it keeps the first and second moment estimates (slots
/// `momentum`, `velocity`, and `velocity_hat` with AMSGrad). At step
/// `t = iterations + 1`:
///
/// ```text
/// α = lr·√(1 − β₂ᵗ) / (1 − β₁ᵗ)
/// m ← m + (g − m)·(1 − β₁)
/// v ← v + (g² − v)·(1 − β₂)
/// v̂ ← max(v̂, v)                      (AMSGrad; then v̂ replaces v below)
/// w ← w − m·α / (√v + ε)
/// ```
///
/// `ε` is Keras' "epsilon hat", added to `√v`. Keras defaults: learning rate
/// 0.001, β₁ 0.9, β₂ 0.999, ε 1e-7, no AMSGrad. β₁ and β₂ must be in
/// `[0, 1)` and ε `>= 0` (checked by [`Adam::validate`]). With
/// [`weight_decay`](Adam::weight_decay) it is the same as [`AdamW`](super::AdamW).
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let w = Tensor::new(vec![1.0f32, 1.0], [2], &dev)?.to_variable()?;
/// let g = Tensor::new(vec![0.5f32, -3.0], [2], &dev)?;
/// let mut adam = Adam::new(0.01).amsgrad(true);
/// adam.apply_gradients(&[("w", &w, &g)])?;
/// // The first Adam step moves every weight by about lr, against its gradient.
/// let w = w.to_vec::<f32>()?;
/// assert!((w[0] - 0.99).abs() < 1e-5 && (w[1] - 1.01).abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Adam {
    base: Base,
    rule: AdamRule,
}

/// Adam's hyperparameters and update (shared with AdamW).
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamRule {
    pub(crate) beta_1: f64,
    pub(crate) beta_2: f64,
    pub(crate) epsilon: f64,
    pub(crate) amsgrad: bool,
}

impl Default for AdamRule {
    fn default() -> Self {
        AdamRule { beta_1: 0.9, beta_2: 0.999, epsilon: 1e-7, amsgrad: false }
    }
}

impl AdamRule {
    pub(crate) fn from_config(r: &mut ConfigReader<'_>) -> Result<Self> {
        Ok(AdamRule {
            beta_1: r.f64_or("beta_1", 0.9)?,
            beta_2: r.f64_or("beta_2", 0.999)?,
            epsilon: r.f64_or("epsilon", 1e-7)?,
            amsgrad: r.bool_or("amsgrad", false)?,
        })
    }
}

/// The Adam hyperparameter builders, for a type with `rule: AdamRule`.
macro_rules! adam_builders {
    ($t:ident) => {
        impl $t {
            /// Decay rate of the first moment, in `[0, 1)` (default 0.9).
            pub fn beta_1(mut self, beta_1: f64) -> Self {
                self.rule.beta_1 = beta_1;
                self
            }

            /// Decay rate of the second moment, in `[0, 1)` (default 0.999).
            pub fn beta_2(mut self, beta_2: f64) -> Self {
                self.rule.beta_2 = beta_2;
                self
            }

            /// Added to `√v` for numerical stability, `>= 0` (default 1e-7).
            pub fn epsilon(mut self, epsilon: f64) -> Self {
                self.rule.epsilon = epsilon;
                self
            }

            /// Whether to use the AMSGrad variant (default false).
            pub fn amsgrad(mut self, amsgrad: bool) -> Self {
                self.rule.amsgrad = amsgrad;
                self
            }
        }
    };
}
pub(crate) use adam_builders;

impl Adam {
    /// Adam with learning rate `lr` (a number or a schedule) and Keras' defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        Adam { base: Base::new(lr), rule: AdamRule::default() }
    }

    /// Reads the `config` part of [`Optimizer::get_config`](super::Optimizer::get_config)
    /// (Keras' keys; defaults for missing ones). Not validated: see
    /// [`optimizer_from_config`](super::optimizer_from_config).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut r = ConfigReader::new("Adam", config)?;
        let base = Base::from_config(&mut r, 0.001)?;
        let rule = AdamRule::from_config(&mut r)?;
        r.finish()?;
        Ok(Adam { base, rule })
    }
}

adam_builders!(Adam);

impl AdamRule {
    /// The bias-corrected step size, in f32 as Keras computes it on float32 tensors.
    fn alpha(&self, step: Step) -> f32 {
        let t = (step.iteration + 1) as f32;
        let beta_1_power = (self.beta_1 as f32).powf(t);
        let beta_2_power = (self.beta_2 as f32).powf(t);
        step.lr as f32 * (1.0 - beta_2_power).sqrt() / (1.0 - beta_1_power)
    }
}

impl Rule for AdamRule {
    fn fused(&self, step: Step) -> Option<FusedUpdate> {
        // The scalars rounded to f32 exactly as `update`'s scalar ops round them.
        (!self.amsgrad).then(|| FusedUpdate::Adam {
            alpha: self.alpha(step),
            one_minus_beta_1: (1.0 - self.beta_1) as f32,
            one_minus_beta_2: (1.0 - self.beta_2) as f32,
            epsilon: self.epsilon as f32,
        })
    }

    fn slot_names(&self) -> &'static [&'static str] {
        if self.amsgrad {
            &["momentum", "velocity", "velocity_hat"]
        } else {
            &["momentum", "velocity"]
        }
    }

    fn update(&self, step: Step, value: &Tensor, grad: &Tensor, slots: &mut [Tensor]) -> Result<Tensor> {
        let alpha = self.alpha(step);

        let m = slots[0].add(&grad.sub(&slots[0])?.mul_scalar(1.0 - self.beta_1)?)?;
        let v = slots[1].add(&grad.square()?.sub(&slots[1])?.mul_scalar(1.0 - self.beta_2)?)?;
        let denom_v = if self.amsgrad {
            let v_hat = slots[2].maximum(&v)?;
            slots[2] = v_hat.clone();
            v_hat
        } else {
            v.clone()
        };
        let new = value.sub(&m.mul_scalar(alpha as f64)?.div(&denom_v.sqrt()?.add_scalar(self.epsilon)?)?)?;
        slots[0] = m;
        slots[1] = v;
        Ok(new)
    }

    fn config(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("beta_1".into(), json!(self.beta_1));
        m.insert("beta_2".into(), json!(self.beta_2));
        m.insert("epsilon".into(), json!(self.epsilon));
        m.insert("amsgrad".into(), json!(self.amsgrad));
        m
    }

    fn validate(&self, class: &'static str) -> Result<()> {
        let unit = "a number in [0, 1)";
        check_finite(class, "beta_1", self.beta_1, (0.0..1.0).contains(&self.beta_1), unit)?;
        check_finite(class, "beta_2", self.beta_2, (0.0..1.0).contains(&self.beta_2), unit)?;
        check_finite(class, "epsilon", self.epsilon, self.epsilon >= 0.0, "a number >= 0")
    }
}

optimizer_impl!(Adam, "Adam", 0.001);
