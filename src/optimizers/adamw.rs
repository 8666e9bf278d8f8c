//! `AdamW`: Adam with decoupled weight decay, as Keras 3.

use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use super::adam::{adam_builders, AdamRule};
use super::config::ConfigReader;
use super::{optimizer_impl, Base, LearningRate};

/// Adam with decoupled weight decay (Loshchilov & Hutter; Keras' `AdamW`).
///
/// Before each Adam update (see [`Adam`](super::Adam)) every weight decays:
/// `w ← w − w·weight_decay·lr`. Keras defaults: learning rate 0.001, weight
/// decay 0.004, β₁ 0.9, β₂ 0.999, ε 1e-7, no AMSGrad.
///
/// ```
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let w = Tensor::new(vec![2.0f32], [1], &dev)?.to_variable()?;
/// let g = Tensor::new(vec![0.0f32], [1], &dev)?;
/// let mut opt = AdamW::new(0.1).weight_decay(0.5);
/// opt.apply_gradients(&[("w", &w, &g)])?;             // zero gradient: only the decay acts
/// assert!((w.to_vec::<f32>()?[0] - 1.9).abs() < 1e-6);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AdamW {
    base: Base,
    rule: AdamRule,
}

impl AdamW {
    /// AdamW with learning rate `lr` (a number or a schedule), weight decay
    /// 0.004 and Keras' Adam defaults.
    pub fn new(lr: impl Into<LearningRate>) -> Self {
        let mut base = Base::new(lr);
        base.weight_decay = Some(0.004);
        AdamW { base, rule: AdamRule::default() }
    }

    /// Reads the `config` part of [`Optimizer::get_config`](super::Optimizer::get_config)
    /// (Keras' keys; defaults for missing ones, but `weight_decay` may not be
    /// `null`, as in Keras). Not validated: see
    /// [`optimizer_from_config`](super::optimizer_from_config).
    pub fn from_config(config: &Value) -> Result<Self> {
        let mut r = ConfigReader::new("AdamW", config)?;
        let explicit_null = config.get("weight_decay").is_some_and(Value::is_null);
        let mut base = Base::from_config(&mut r, 0.001)?;
        if explicit_null {
            return Err(Error::Config("AdamW: `weight_decay` must be a number, received null".into()));
        }
        base.weight_decay = base.weight_decay.or(Some(0.004));
        let rule = AdamRule::from_config(&mut r)?;
        r.finish()?;
        Ok(AdamW { base, rule })
    }
}

adam_builders!(AdamW);
optimizer_impl!(AdamW, "AdamW", 0.001);
