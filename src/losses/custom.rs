//! [`CustomLoss`]: a loss written as a Rust function, and the registry that
//! lets configs name it.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use strata_core::{Error, Result, Tensor};

use super::{builtin_from_name, LOSS_NAMES};

type LossFn = Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// A loss written as a Rust function `(y_true, y_pred) -> per-sample losses`.
///
/// The function receives `y_true` as `f32` (integer targets are cast, as
/// Keras does) after Keras' `squeeze_or_expand_to_same_rank`, and returns
/// one loss per sample: the shape of `y_pred` without its last axis. It
/// should use only the [`Tensor`] API, so that it runs on every backend and
/// gradients flow back to `y_pred`. Sample weights, masks and the reduction
/// are applied by [`Loss::compute`](super::Loss::compute).
///
/// The name is what configs store; to rebuild a loss from a config (or to
/// look it up by name), [`register_loss`] it first.
///
/// ```
/// use strata::losses::CustomLoss;
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let l4 = CustomLoss::new("mean_fourth_power", |t, p| p.sub(t)?.square()?.square()?.mean(&[-1], false));
/// let loss = Loss::Custom(l4);
/// let dev = strata::backend::native();
/// let y = Tensor::new(vec![0.0f32, 2.0], [1, 2], &dev)?;
/// let t = Tensor::zeros([1, 2], DType::F32, &dev)?;
/// assert_eq!(loss.compute(&t, &y, None, None)?.to_scalar::<f32>()?, 8.0);
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct CustomLoss {
    pub(super) name: String,
    pub(super) f: LossFn,
}

impl CustomLoss {
    /// A loss computing `f(y_true, y_pred)` per sample, under `name`.
    pub fn new(name: &str, f: impl Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync + 'static) -> Self {
        CustomLoss { name: name.to_string(), f: Arc::new(f) }
    }

    /// The name given to [`CustomLoss::new`].
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl fmt::Debug for CustomLoss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CustomLoss({:?})", self.name)
    }
}

impl PartialEq for CustomLoss {
    /// Same name and the same function object (clones share it).
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && Arc::ptr_eq(&self.f, &other.f)
    }
}

fn custom_losses() -> &'static RwLock<BTreeMap<String, CustomLoss>> {
    static CUSTOM: OnceLock<RwLock<BTreeMap<String, CustomLoss>>> = OnceLock::new();
    CUSTOM.get_or_init(Default::default)
}

/// Registers a custom loss under its name, so that [`Loss::from_name`](super::Loss::from_name) and
/// [`Loss::from_config`](super::Loss::from_config) find it. Registering a name again replaces the
/// loss; an empty name or the name of a built-in loss is an error.
pub fn register_loss(loss: &CustomLoss) -> Result<()> {
    if loss.name.trim().is_empty() {
        return Err(Error::invalid("register_loss", "a custom loss needs a non-empty name"));
    }
    if builtin_from_name(&loss.name).is_some() {
        return Err(Error::invalid("register_loss", format!("`{}` is the name of a built-in loss", loss.name)));
    }
    custom_losses().write().unwrap_or_else(|e| e.into_inner()).insert(loss.name.clone(), loss.clone());
    Ok(())
}

pub(super) fn registered_loss(name: &str) -> Option<CustomLoss> {
    custom_losses().read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
}

pub(super) fn unknown_loss(name: &str) -> Error {
    let custom: Vec<String> = custom_losses().read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    let mut names = LOSS_NAMES.join(", ");
    if !custom.is_empty() {
        names.push_str(&format!("; registered: {}", custom.join(", ")));
    }
    Error::invalid("loss", format!("unknown loss `{name}`; valid names: {names}"))
}
