//! Losses with Keras 3's names, formulas and reduction.
//!
//! A [`Loss`] turns targets and predictions into per-sample losses
//! ([`Loss::per_sample`], reduced over the last axis only, like Keras' loss
//! functions) and into one differentiable scalar ([`Loss::compute`], Keras'
//! `"sum_over_batch_size"` reduction with sample weights and masks folded in
//! as `reduce_weighted_values` and `apply_mask` do).
//!
//! The cross-entropies follow Keras exactly: with `from_logits: true` they
//! use `log_softmax` / `softplus`, stable for any logit; with
//! `from_logits: false` probabilities are clipped to `[ε, 1 − ε]`
//! (`ε = 1e-7`, [`EPSILON`]) before the logarithm, so predictions of exactly
//! 0 or 1 give finite losses, and categorical predictions are first divided
//! by their sum over the last axis.
//!
//! When the predictions come straight out of a softmax recorded for autodiff
//! (a `Dense(…, "softmax")` or `Activation("softmax")` output, in training),
//! the categorical cross-entropies read the logits under it and compute
//! `-Σ t·log_softmax(z)` in one fused op ([`Tensor::softmax_cross_entropy`]),
//! as Keras' TensorFlow backend does: the same loss wherever every
//! probability lies in `[ε, 1 − ε]`; outside it the loss is the exact
//! `-log p` instead of the clipped one, and its gradient is not cut to zero.
//! `from_logits: true` uses the same op.
//!
//! ```
//! use strata::prelude::*;
//!
//! # fn main() -> strata::Result<()> {
//! let dev = strata::backend::native();
//! let y_true = Tensor::new(vec![1i64, 2], [2], &dev)?;
//! let y_pred = Tensor::new(vec![0.05f32, 0.95, 0.0, 0.1, 0.8, 0.1], [2, 3], &dev)?;
//! let loss = Loss::from_name("sparse_categorical_crossentropy")?;
//! let per_sample = loss.per_sample(&y_true, &y_pred)?.to_vec::<f32>()?;   // Keras: [0.0513, 2.303]
//! assert!((per_sample[0] - 0.0513).abs() < 1e-4 && (per_sample[1] - 2.3026).abs() < 1e-4);
//! let mean = loss.compute(&y_true, &y_pred, None, None)?.to_scalar::<f32>()?;
//! assert!((mean - 1.1769).abs() < 1e-4);
//! # Ok(()) }
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::{json, Value};
use strata_core::{DType, Error, Result, Shape, Tensor};
use strata_layers::TensorSpec;

/// Keras' `backend.epsilon()`: probabilities are clipped to
/// `[EPSILON, 1 − EPSILON]` in the cross-entropies with `from_logits: false`.
pub const EPSILON: f64 = 1e-7;

/// The names [`Loss::from_name`] accepts for the built-in losses.
pub const LOSS_NAMES: &[&str] = &[
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
    "huber",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
];

/// Keras' reduction: the only one strata implements.
const REDUCTION: &str = "sum_over_batch_size";

type LossFn = Arc<dyn Fn(&Tensor, &Tensor) -> Result<Tensor> + Send + Sync>;

/// A loss written as a Rust function `(y_true, y_pred) -> per-sample losses`.
///
/// The function receives `y_true` as `f32` (integer targets are cast, as
/// Keras does) after Keras' `squeeze_or_expand_to_same_rank`, and returns
/// one loss per sample: the shape of `y_pred` without its last axis. It
/// should use only the [`Tensor`] API, so that it runs on every backend and
/// gradients flow back to `y_pred`. Sample weights, masks and the reduction
/// are applied by [`Loss::compute`].
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
    name: String,
    f: LossFn,
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

/// Registers a custom loss under its name, so that [`Loss::from_name`] and
/// [`Loss::from_config`] find it. Registering a name again replaces the
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

fn registered_loss(name: &str) -> Option<CustomLoss> {
    custom_losses().read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
}

fn unknown_loss(name: &str) -> Error {
    let custom: Vec<String> = custom_losses().read().unwrap_or_else(|e| e.into_inner()).keys().cloned().collect();
    let mut names = LOSS_NAMES.join(", ");
    if !custom.is_empty() {
        names.push_str(&format!("; registered: {}", custom.join(", ")));
    }
    Error::invalid("loss", format!("unknown loss `{name}`; valid names: {names}"))
}

/// A loss function: Keras' built-in losses, or a [`CustomLoss`].
///
/// All of them reduce like Keras 3's default `"sum_over_batch_size"`.
#[derive(Clone, Debug, PartialEq)]
pub enum Loss {
    /// `mean((y_true − y_pred)², axis=-1)`.
    MeanSquaredError,
    /// `mean(|y_true − y_pred|, axis=-1)`.
    MeanAbsoluteError,
    /// `mean(½e²  if |e| ≤ δ  else  δ|e| − ½δ², axis=-1)` with `e = y_pred − y_true`
    /// (Keras' default `delta` is 1.0; it must be positive and finite).
    Huber {
        /// The point where the loss turns from quadratic to linear.
        delta: f64,
    },
    /// `mean(−t·log p − (1−t)·log(1−p), axis=-1)`; targets shaped like the outputs.
    BinaryCrossentropy {
        /// Whether the outputs are logits (no sigmoid applied) rather than probabilities.
        from_logits: bool,
    },
    /// `−Σ t·log p` over the last axis; one-hot (or soft) targets shaped like the outputs.
    CategoricalCrossentropy {
        /// Whether the outputs are logits (no softmax applied) rather than probabilities.
        from_logits: bool,
    },
    /// Categorical cross-entropy with integer class ids as targets: shape
    /// `[batch]` or `[batch, 1]` (`[batch, T]` for outputs `[batch, T, C]`),
    /// `i64` or integral `f32`. Their range is checked by
    /// [`Loss::check_targets`], once, not on every batch.
    SparseCategoricalCrossentropy {
        /// Whether the outputs are logits (no softmax applied) rather than probabilities.
        from_logits: bool,
    },
    /// A user function returning per-sample losses (shape = y_pred without its last axis).
    Custom(CustomLoss),
}

fn builtin_from_name(name: &str) -> Option<Loss> {
    let key: String = name.trim().chars().filter(|&c| c != '_').flat_map(char::to_lowercase).collect();
    Some(match key.as_str() {
        "mse" | "meansquarederror" => Loss::MeanSquaredError,
        "mae" | "meanabsoluteerror" => Loss::MeanAbsoluteError,
        "huber" | "huberloss" => Loss::Huber { delta: 1.0 },
        "bce" | "binarycrossentropy" => Loss::BinaryCrossentropy { from_logits: false },
        "categoricalcrossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
        "sparsecategoricalcrossentropy" => Loss::SparseCategoricalCrossentropy { from_logits: false },
        _ => return None,
    })
}

impl Loss {
    /// "mse"/"mean_squared_error", "mae"/"mean_absolute_error", "huber",
    /// "binary_crossentropy", "categorical_crossentropy",
    /// "sparse_categorical_crossentropy" (from_logits false). Unknown → Err listing names.
    ///
    /// Case and underscores are ignored, so Keras' class names
    /// (`"SparseCategoricalCrossentropy"`) work too, as do Keras' aliases
    /// `"bce"` and `"huber_loss"`. A [registered](register_loss) custom loss
    /// is found by its exact name.
    pub fn from_name(name: &str) -> Result<Loss> {
        if let Some(loss) = builtin_from_name(name) {
            return Ok(loss);
        }
        registered_loss(name).map(Loss::Custom).ok_or_else(|| unknown_loss(name))
    }

    /// The Keras snake-case name ("sparse_categorical_crossentropy").
    ///
    /// This is the default `name` of the Keras loss class: Huber's is
    /// `"huber_loss"`. A custom loss gives its own name.
    pub fn name(&self) -> String {
        match self {
            Loss::Custom(c) => c.name.clone(),
            other => other.static_name().to_string(),
        }
    }

    /// The name as a `&'static str`, for error messages (`"loss"` for a custom loss).
    fn static_name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::Huber { .. } => "huber_loss",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
            Loss::Custom(_) => "loss",
        }
    }

    /// Keras' class name (`"SparseCategoricalCrossentropy"`; `"CustomLoss"`).
    pub fn class_name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "MeanSquaredError",
            Loss::MeanAbsoluteError => "MeanAbsoluteError",
            Loss::Huber { .. } => "Huber",
            Loss::BinaryCrossentropy { .. } => "BinaryCrossentropy",
            Loss::CategoricalCrossentropy { .. } => "CategoricalCrossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "SparseCategoricalCrossentropy",
            Loss::Custom(_) => "CustomLoss",
        }
    }

    /// Per-sample losses, reduced over the last axis only (Keras' loss functions).
    ///
    /// `y_pred` is `f32` with at least one axis; `y_true` is `f32` or `i64`
    /// (cast to `f32`, except sparse class ids). As in Keras, a rank
    /// difference of one with a trailing axis of size 1 (`[batch]` targets for
    /// `[batch, 1]` outputs) is squeezed or expanded away first. The result is
    /// differentiable in `y_pred`.
    pub fn per_sample(&self, y_true: &Tensor, y_pred: &Tensor) -> Result<Tensor> {
        let op = self.static_name();
        if y_pred.dtype() != DType::F32 {
            return Err(Error::DTypeMismatch { op, expected: DType::F32, received: y_pred.dtype() });
        }
        if y_pred.rank() == 0 {
            return Err(Error::InvalidShape {
                op,
                shape: y_pred.shape().clone(),
                reason: "predictions need at least one axis".into(),
            });
        }
        if let Loss::SparseCategoricalCrossentropy { from_logits } = self {
            return sparse_categorical_crossentropy(y_true, y_pred, *from_logits);
        }
        let t = y_true.cast(DType::F32)?;
        let (t, p) = squeeze_or_expand(&t, y_pred, true)?;
        match self {
            Loss::MeanSquaredError => {
                broadcastable(op, &t, &p)?;
                t.sub(&p)?.square()?.mean(&[-1], false)
            }
            Loss::MeanAbsoluteError => {
                broadcastable(op, &t, &p)?;
                t.sub(&p)?.abs()?.mean(&[-1], false)
            }
            Loss::Huber { delta } => {
                let delta = *delta;
                if !(delta.is_finite() && delta > 0.0) {
                    return Err(Error::invalid(op, format!("delta must be positive and finite, received {delta}")));
                }
                broadcastable(op, &t, &p)?;
                let err = p.sub(&t)?;
                let abs = err.abs()?;
                let quadratic = err.square()?.mul_scalar(0.5)?;
                let linear = abs.mul_scalar(delta)?.sub_scalar(0.5 * delta * delta)?;
                Tensor::where_cond(&abs.le_scalar(delta)?, &quadratic, &linear)?.mean(&[-1], false)
            }
            Loss::BinaryCrossentropy { from_logits } => {
                same_shape(op, &t, &p, "")?;
                let one_minus_t = t.affine(-1.0, 1.0)?;
                let elementwise = if *from_logits {
                    // −t·log σ(x) − (1−t)·log σ(−x) = t·softplus(−x) + (1−t)·softplus(x)
                    t.mul(&p.neg()?.softplus()?)?.add(&one_minus_t.mul(&p.softplus()?)?)?
                } else {
                    let p = clip_probabilities(&p)?;
                    let one_minus_p = p.affine(-1.0, 1.0)?;
                    t.mul(&p.log()?)?.add(&one_minus_t.mul(&one_minus_p.log()?)?)?.neg()?
                };
                elementwise.mean(&[-1], false)
            }
            Loss::CategoricalCrossentropy { from_logits } => {
                let hint = if t.rank() + 1 == p.rank() || t.dims().last() == Some(&1) {
                    " (integer class ids need sparse_categorical_crossentropy)"
                } else {
                    ""
                };
                same_shape(op, &t, &p, hint)?;
                categorical_from_targets(&t, &p, *from_logits)
            }
            Loss::Custom(c) => {
                if c.name.trim().is_empty() {
                    return Err(Error::invalid("loss", "a custom loss needs a non-empty name"));
                }
                (c.f)(&t, &p).map_err(|e| Error::msg(format!("custom loss `{}`: {e}", c.name)))
            }
            Loss::SparseCategoricalCrossentropy { .. } => unreachable!("handled above"),
        }
    }

    /// Keras' "sum_over_batch_size" reduction to a scalar, differentiable in y_pred:
    /// `sample_weight` (shape `[batch]` or the per-sample shape) and `mask` (f32 0/1,
    /// shape = y_pred without its last axis) folded in exactly as Keras 3's
    /// reduce_weighted_values/apply_mask do.
    ///
    /// That is `Σ loss·w·m̂ / n`, where `n` is the number of per-sample losses
    /// and `m̂` is the mask scaled by `n_mask / Σ mask`, so that masked
    /// entries count neither in the sum nor in the divisor. Keras aligns a
    /// sample weight with the losses from the right; strata aligns it with
    /// the leading (batch) axes, so `[batch]` weights also work for sequence
    /// outputs, where Keras 3 raises.
    pub fn compute(
        &self,
        y_true: &Tensor,
        y_pred: &Tensor,
        sample_weight: Option<&Tensor>,
        mask: Option<&Tensor>,
    ) -> Result<Tensor> {
        let values = self.per_sample(y_true, y_pred)?;
        reduce_weighted(self.static_name(), &values, sample_weight, mask)
    }

    /// Checks targets against an output before training: shape compatible,
    /// sparse labels integral and in [0, classes), etc. Clear message naming
    /// expected and actual. Called once on the whole target tensor.
    ///
    /// Unknown axes of `output` (the batch) take the targets' sizes. Binary
    /// and categorical cross-entropy need targets shaped like the output
    /// (a `[batch]` target fits a `[batch, 1]` output, as in Keras); the
    /// regression losses need shapes that broadcast together; sparse
    /// categorical cross-entropy needs `output` without its last axis
    /// (optionally with a trailing 1) and reads every label, naming the first
    /// bad one and its flat index. A custom loss only needs a batch axis.
    pub fn check_targets(&self, y_true: &Tensor, output: &TensorSpec) -> Result<()> {
        let op = self.static_name();
        if y_true.rank() == 0 {
            return Err(Error::invalid(op, "targets need a batch axis, received a scalar"));
        }
        if output.rank() == 0 {
            return Err(Error::invalid(op, format!("the output {output} has no axis to compare targets with")));
        }
        if matches!(self, Loss::Custom(_)) {
            return Ok(());
        }
        // The output's unknown axes take the targets' sizes where they have that axis.
        let out: Vec<Option<usize>> =
            output.dims.iter().enumerate().map(|(i, d)| d.or_else(|| y_true.dims().get(i).copied())).collect();
        let t: Vec<Option<usize>> = y_true.dims().iter().map(|&d| Some(d)).collect();
        let shown = |dims: &[Option<usize>]| TensorSpec::new(dims.to_vec(), DType::F32).to_string();
        let mismatch = |reason: &str| {
            Error::invalid(
                op,
                format!(
                    "targets of shape {} do not fit the output {output}: {reason}",
                    crate::shape_tuple(y_true.dims())
                ),
            )
        };
        match self {
            Loss::SparseCategoricalCrossentropy { .. } => {
                let mut labels = t.clone();
                if labels.len() == out.len() && labels.last() == Some(&Some(1)) {
                    labels.pop();
                }
                let want = &out[..out.len() - 1];
                if !dims_fit(&labels, want) {
                    return Err(mismatch(&format!(
                        "class ids must have shape {} (or that with a trailing 1)",
                        shown(want)
                    )));
                }
                check_labels(op, y_true, out.last().copied().flatten())
            }
            Loss::BinaryCrossentropy { .. } | Loss::CategoricalCrossentropy { .. } => {
                let (t, p) = squeeze_or_expand_dims(&t, &out, true);
                if dims_fit(&t, &p) {
                    return Ok(());
                }
                let mut reason = format!("they must have the same shape {}", shown(&p));
                if matches!(self, Loss::CategoricalCrossentropy { .. })
                    && (t.len() + 1 == p.len() || t.last() == Some(&Some(1)))
                {
                    reason.push_str("; integer class ids need sparse_categorical_crossentropy");
                }
                Err(mismatch(&reason))
            }
            _ => {
                let (t, p) = squeeze_or_expand_dims(&t, &out, true);
                let rank = t.len().max(p.len());
                let from_right = |d: &[Option<usize>], i: usize| if i < d.len() { d[d.len() - 1 - i] } else { Some(1) };
                let fits = (0..rank).all(|i| match (from_right(&t, i), from_right(&p, i)) {
                    (Some(a), Some(b)) => a == b || a == 1 || b == 1,
                    _ => true,
                });
                if fits {
                    Ok(())
                } else {
                    Err(mismatch("the shapes cannot be broadcast together"))
                }
            }
        }
    }

    /// Keras-like `{"class_name": "BinaryCrossentropy", "config": {...}}`,
    /// with Keras' keys (`name`, `reduction`, `from_logits`, and the fixed
    /// `label_smoothing: 0.0`, `axis: -1`, `ignore_class: null`). Huber also
    /// stores its `delta` (Keras 3 omits it). A custom loss stores its name.
    pub fn get_config(&self) -> Value {
        let mut config = json!({"name": self.name(), "reduction": REDUCTION});
        match self {
            Loss::Huber { delta } => config["delta"] = json!(delta),
            Loss::BinaryCrossentropy { from_logits } | Loss::CategoricalCrossentropy { from_logits } => {
                config["from_logits"] = json!(from_logits);
                config["label_smoothing"] = json!(0.0);
                config["axis"] = json!(-1);
            }
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                config["from_logits"] = json!(from_logits);
                config["ignore_class"] = Value::Null;
            }
            Loss::Custom(_) => config = json!({"name": self.name()}),
            Loss::MeanSquaredError | Loss::MeanAbsoluteError => {}
        }
        json!({"class_name": self.class_name(), "config": config})
    }

    /// Rebuilds a loss from [`get_config`](Self::get_config)'s form (also
    /// Keras' own configs, as long as they use only what strata implements),
    /// or from a plain name string. A custom loss must be
    /// [registered](register_loss).
    pub fn from_config(config: &Value) -> Result<Loss> {
        if let Some(name) = config.as_str() {
            return Loss::from_name(name).map_err(|e| Error::Config(e.to_string()));
        }
        let bad = |msg: String| Error::Config(format!("loss: {msg} (in {config})"));
        let class = config
            .get("class_name")
            .and_then(Value::as_str)
            .ok_or_else(|| bad("expected a name or {\"class_name\": .., \"config\": {..}}".into()))?;
        let empty = serde_json::Map::new();
        let inner = match config.get("config") {
            None | Some(Value::Null) => &empty,
            Some(Value::Object(m)) => m,
            Some(other) => return Err(bad(format!("`config` must be an object, received {other}"))),
        };
        if class == "CustomLoss" {
            let name =
                inner.get("name").and_then(Value::as_str).ok_or_else(|| bad("a custom loss needs a `name`".into()))?;
            return registered_loss(name)
                .map(Loss::Custom)
                .ok_or_else(|| bad(format!("custom loss `{name}` is not registered (see register_loss)")));
        }
        let mut loss = match class {
            "MeanSquaredError" => Loss::MeanSquaredError,
            "MeanAbsoluteError" => Loss::MeanAbsoluteError,
            "Huber" => Loss::Huber { delta: 1.0 },
            "BinaryCrossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "CategoricalCrossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
            "SparseCategoricalCrossentropy" => Loss::SparseCategoricalCrossentropy { from_logits: false },
            other => {
                return Err(bad(format!(
                    "unknown loss class `{other}`; known: MeanSquaredError, MeanAbsoluteError, Huber, \
                     BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy, CustomLoss"
                )))
            }
        };
        for (key, value) in inner {
            let ok = match (key.as_str(), &mut loss) {
                ("name", _) => value.is_string() || value.is_null(),
                ("dtype", _) => value.is_null() || value == "float32",
                ("reduction", _) => value == REDUCTION,
                ("delta", Loss::Huber { delta }) => match value.as_f64() {
                    Some(d) if d.is_finite() && d > 0.0 => {
                        *delta = d;
                        true
                    }
                    _ => false,
                },
                (
                    "from_logits",
                    Loss::BinaryCrossentropy { from_logits }
                    | Loss::CategoricalCrossentropy { from_logits }
                    | Loss::SparseCategoricalCrossentropy { from_logits },
                ) => match value.as_bool() {
                    Some(b) => {
                        *from_logits = b;
                        true
                    }
                    None => false,
                },
                ("label_smoothing", Loss::BinaryCrossentropy { .. } | Loss::CategoricalCrossentropy { .. }) => {
                    value.as_f64() == Some(0.0)
                }
                ("axis", Loss::BinaryCrossentropy { .. } | Loss::CategoricalCrossentropy { .. }) => {
                    value.as_i64() == Some(-1)
                }
                ("ignore_class", Loss::SparseCategoricalCrossentropy { .. }) => value.is_null(),
                _ => return Err(bad(format!("`{key}` is not a {class} setting strata knows"))),
            };
            if !ok {
                return Err(bad(format!("{class}: unsupported {key} = {value}")));
            }
        }
        Ok(loss)
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name())
    }
}

/// Accepted by compile: &str, String, Loss.
pub trait IntoLoss {
    /// Resolves to a [`Loss`]; an unknown name is an error listing the valid ones.
    fn into_loss(self) -> Result<Loss>;
}

impl IntoLoss for Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self)
    }
}

impl IntoLoss for &Loss {
    fn into_loss(self) -> Result<Loss> {
        Ok(self.clone())
    }
}

impl IntoLoss for CustomLoss {
    fn into_loss(self) -> Result<Loss> {
        Ok(Loss::Custom(self))
    }
}

impl IntoLoss for &str {
    fn into_loss(self) -> Result<Loss> {
        Loss::from_name(self)
    }
}

impl IntoLoss for String {
    fn into_loss(self) -> Result<Loss> {
        Loss::from_name(&self)
    }
}

impl IntoLoss for &String {
    fn into_loss(self) -> Result<Loss> {
        Loss::from_name(self)
    }
}

// ------------------------------------------------------------- the formulas

/// `clip(p, ε, 1 − ε)`, as Keras does before taking logarithms.
fn clip_probabilities(p: &Tensor) -> Result<Tensor> {
    p.maximum_scalar(EPSILON)?.minimum_scalar(1.0 - EPSILON)
}

/// The logits behind predictions `p`: `p` itself with `from_logits`, else
/// the input of the softmax that produced `p`, when it was recorded.
fn logits(p: &Tensor, from_logits: bool) -> Option<&Tensor> {
    if from_logits {
        Some(p)
    } else {
        p.softmax_input()
    }
}

/// `−Σ t·log p` over the last axis: from logits (given, or under a recorded
/// softmax) in one fused op, else from renormalised, clipped probabilities.
fn categorical_from_targets(t: &Tensor, p: &Tensor, from_logits: bool) -> Result<Tensor> {
    if let Some(z) = logits(p, from_logits) {
        return z.softmax_cross_entropy(t);
    }
    let p = p.div(&p.sum(&[-1], true)?)?;
    t.mul(&clip_probabilities(&p)?.log()?)?.sum(&[-1], false)?.neg()
}

fn sparse_categorical_crossentropy(y_true: &Tensor, y_pred: &Tensor, from_logits: bool) -> Result<Tensor> {
    const OP: &str = "sparse_categorical_crossentropy";
    // Keras' wrapper aligns ranks first; then a trailing 1 on the ids goes.
    let (t, p) = squeeze_or_expand(y_true, y_pred, true)?;
    let t = if t.rank() == p.rank() && t.dims().last() == Some(&1) { t.squeeze(-1)? } else { t };
    if t.dims() != &p.dims()[..p.rank() - 1] {
        return Err(Error::ShapeMismatch {
            op: OP,
            lhs: t.shape().clone(),
            rhs: p.shape().clone(),
            reason: "class ids must have the predictions' shape without its last axis".into(),
        });
    }
    let ids = t.cast(DType::I64)?;
    if let Some(z) = logits(&p, from_logits) {
        return z.softmax_cross_entropy(&ids);
    }
    let one_hot = class_mask(&ids, p.dims()[p.rank() - 1])?.cast(DType::F32)?;
    categorical_from_targets(&one_hot, &p, false)
}

/// `ids[..., None] == arange(classes)` as `i64` 0/1: a one-hot encoding
/// without `Tensor::one_hot`'s range check, which would cost a device→host
/// sync on every batch. [`Loss::check_targets`] checks the ids once,
/// before training; an id outside `[0, classes)` here gives a row of zeros
/// (a loss of 0, as Keras on JAX gives).
pub(crate) fn class_mask(ids: &Tensor, classes: usize) -> Result<Tensor> {
    ids.unsqueeze(-1)?.eq(&Tensor::arange(classes, DType::I64, ids.device())?)
}

/// Reads every class id on the host: integral, and inside `[0, classes)` when known.
fn check_labels(op: &'static str, y_true: &Tensor, classes: Option<usize>) -> Result<()> {
    let upper = classes.map(|c| c as f64).unwrap_or(f64::INFINITY);
    let range = classes.map(|c| format!("[0, {c})")).unwrap_or_else(|| "[0, classes)".into());
    let check = |i: usize, v: f64, shown: String| -> Result<()> {
        if v.fract() != 0.0 || !v.is_finite() {
            return Err(Error::invalid(op, format!("label {shown} at index {i} is not an integer class id")));
        }
        if v < 0.0 || v >= upper {
            return Err(Error::invalid(op, format!("label {shown} at index {i} is outside {range}")));
        }
        Ok(())
    };
    match y_true.dtype() {
        DType::I64 => {
            y_true.to_vec::<i64>()?.into_iter().enumerate().try_for_each(|(i, v)| check(i, v as f64, v.to_string()))
        }
        DType::F32 => {
            y_true.to_vec::<f32>()?.into_iter().enumerate().try_for_each(|(i, v)| check(i, v as f64, v.to_string()))
        }
    }
}

// ------------------------------------------------------- Keras' shape rules

/// Keras' `squeeze_or_expand_to_same_rank`: when the ranks differ by one and
/// the longer shape ends in 1, squeeze that axis — or, with `expand_rank_1`
/// and a rank-1 shorter operand, expand the shorter one instead.
pub(crate) fn squeeze_or_expand(x1: &Tensor, x2: &Tensor, expand_rank_1: bool) -> Result<(Tensor, Tensor)> {
    let (r1, r2) = (x1.rank(), x2.rank());
    let (mut a, mut b) = (x1.clone(), x2.clone());
    if r1 == r2 + 1 && x1.dims().last() == Some(&1) {
        if r2 == 1 && expand_rank_1 {
            b = b.unsqueeze(-1)?;
        } else {
            a = a.squeeze(-1)?;
        }
    }
    if r2 == r1 + 1 && x2.dims().last() == Some(&1) {
        if r1 == 1 && expand_rank_1 {
            a = a.unsqueeze(-1)?;
        } else {
            b = b.squeeze(-1)?;
        }
    }
    Ok((a, b))
}

/// [`squeeze_or_expand`] on shapes with unknown (`None`) axes.
fn squeeze_or_expand_dims(
    x1: &[Option<usize>],
    x2: &[Option<usize>],
    expand_rank_1: bool,
) -> (Vec<Option<usize>>, Vec<Option<usize>>) {
    let (mut a, mut b) = (x1.to_vec(), x2.to_vec());
    if x1.len() == x2.len() + 1 && x1.last() == Some(&Some(1)) {
        if x2.len() == 1 && expand_rank_1 {
            b.push(Some(1));
        } else {
            a.pop();
        }
    }
    if x2.len() == x1.len() + 1 && x2.last() == Some(&Some(1)) {
        if x1.len() == 1 && expand_rank_1 {
            a.push(Some(1));
        } else {
            b.pop();
        }
    }
    (a, b)
}

/// Equal ranks and equal sizes wherever both are known.
fn dims_fit(a: &[Option<usize>], b: &[Option<usize>]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.is_none() || y.is_none() || x == y)
}

fn same_shape(op: &'static str, t: &Tensor, p: &Tensor, hint: &str) -> Result<()> {
    if t.dims() == p.dims() {
        return Ok(());
    }
    Err(Error::ShapeMismatch {
        op,
        lhs: t.shape().clone(),
        rhs: p.shape().clone(),
        reason: format!("targets must have the predictions' shape{hint}"),
    })
}

fn broadcastable(op: &'static str, t: &Tensor, p: &Tensor) -> Result<()> {
    Shape::broadcast(op, t.shape(), p.shape()).map(|_| ())
}

/// Pads `w` with trailing size-1 axes up to `rank`: sample weights line up
/// with the leading (batch) axes of what they weight.
pub(crate) fn pad_trailing(w: &Tensor, rank: usize) -> Result<Tensor> {
    if w.rank() >= rank {
        return Ok(w.clone());
    }
    let mut dims = w.dims().to_vec();
    dims.resize(rank, 1);
    w.reshape(dims)
}

/// Two weights multiplied after Keras' rank alignment and batch-aligned padding.
pub(crate) fn mul_weights(op: &'static str, a: &Tensor, b: &Tensor) -> Result<Tensor> {
    let (a, b) = squeeze_or_expand(a, b, true)?;
    let rank = a.rank().max(b.rank());
    let (a, b) = (pad_trailing(&a, rank)?, pad_trailing(&b, rank)?);
    Shape::broadcast(op, a.shape(), b.shape())?;
    a.mul(&b)
}

/// Keras' `reduce_weighted_values` with `apply_mask`, reduction
/// `"sum_over_batch_size"`.
fn reduce_weighted(
    op: &'static str,
    values: &Tensor,
    sample_weight: Option<&Tensor>,
    mask: Option<&Tensor>,
) -> Result<Tensor> {
    let mut weight = sample_weight.map(|w| w.cast(DType::F32)).transpose()?;
    if let Some(mask) = mask {
        // Valid entries weigh total/valid, masked ones 0 (divide_no_nan: all 0 when nothing is valid).
        let m = mask.cast(DType::F32)?.ne_scalar(0.0)?;
        let total = m.numel() as f64;
        let scale = m.sum_all()?.maximum_scalar(1.0)?.recip()?.mul_scalar(total)?;
        let float_mask = m.mul(&scale)?;
        weight = Some(match weight {
            Some(w) => mul_weights(op, &float_mask, &w)?,
            None => float_mask,
        });
    }
    let values = match weight {
        Some(w) => {
            let (v, w) = squeeze_or_expand(values, &w, true)?;
            let w = pad_trailing(&w, v.rank())?;
            Shape::broadcast(op, v.shape(), w.shape()).map_err(|_| Error::ShapeMismatch {
                op,
                lhs: v.shape().clone(),
                rhs: w.shape().clone(),
                reason: "the sample weight (times the mask) does not fit the per-sample losses".into(),
            })?;
            v.mul(&w)?
        }
        None => values.clone(),
    };
    if values.numel() == 0 {
        return Tensor::zeros([], DType::F32, values.device());
    }
    values.sum_all()?.div_scalar(values.numel() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend;

    fn t(data: &[f32], shape: &[usize]) -> Tensor {
        Tensor::new(data.to_vec(), shape.to_vec(), &backend::native()).unwrap()
    }

    /// Sparse and dense categorical cross-entropy on a recorded softmax read
    /// its logits: the clipped formula's value where probabilities are
    /// moderate, the gradient `(softmax(z) − onehot) / rows` to the logits,
    /// and past the clip the exact `−log p` instead of `−log ε`.
    #[test]
    fn cross_entropy_reads_the_logits_under_a_recorded_softmax() -> Result<()> {
        let dev = backend::native();
        let zv = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
        let z = Tensor::new(zv.to_vec(), [2, 3], &dev)?.to_variable()?;
        let p = z.softmax(-1)?;
        assert!(p.softmax_input().is_some() && p.detach().softmax_input().is_none());
        let ids = Tensor::new(vec![2i64, 0], [2], &dev)?;
        let one_hot = Tensor::new(vec![0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0], [2, 3], &dev)?;
        let probs: Vec<f64> = (0..2)
            .flat_map(|r| {
                let row = &zv[r * 3..r * 3 + 3];
                let sum: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
                row.iter().map(move |&v| (v as f64).exp() / sum)
            })
            .collect();
        for (loss, y) in [
            (Loss::SparseCategoricalCrossentropy { from_logits: false }, &ids),
            (Loss::CategoricalCrossentropy { from_logits: false }, &one_hot),
        ] {
            let fused = loss.compute(y, &p, None, None)?;
            let clipped = loss.compute(y, &p.detach(), None, None)?.to_scalar::<f32>()?;
            let want = -(probs[2].ln() + probs[3].ln()) / 2.0;
            assert!((fused.to_scalar::<f32>()? as f64 - want).abs() < 1e-6, "{loss:?}");
            assert!((clipped as f64 - want).abs() < 1e-6, "{loss:?}");
            let grads = fused.backward()?;
            let g = grads.get(&z).expect("a gradient for the logits").to_vec::<f32>()?;
            let hot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
            for i in 0..6 {
                assert!((g[i] as f64 - (probs[i] - hot[i]) / 2.0).abs() < 1e-6, "{loss:?}: {g:?}");
            }
        }
        // Saturated: p(class 1) = e^-30 / (1 + 2e^-30), far below ε.
        let z = Tensor::new(vec![30.0f32, 0.0, 0.0], [1, 3], &dev)?.to_variable()?;
        let p = z.softmax(-1)?;
        let label = Tensor::new(vec![1i64], [1], &dev)?;
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
        assert!((loss.compute(&label, &p, None, None)?.to_scalar::<f32>()? - 30.0).abs() < 1e-5);
        let clipped = loss.compute(&label, &p.detach(), None, None)?.to_scalar::<f32>()?;
        assert!((clipped as f64 + EPSILON.ln()).abs() < 1e-4, "{clipped}");
        Ok(())
    }

    #[test]
    fn names_resolve_and_unknown_lists_valid_ones() {
        assert_eq!(Loss::from_name("mse").unwrap(), Loss::MeanSquaredError);
        assert_eq!(Loss::from_name("MeanAbsoluteError").unwrap(), Loss::MeanAbsoluteError);
        assert_eq!(Loss::from_name("huber").unwrap(), Loss::Huber { delta: 1.0 });
        assert_eq!(
            Loss::from_name("sparse_categorical_crossentropy").unwrap(),
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        );
        let e = Loss::from_name("cross_entropy").unwrap_err().to_string();
        assert!(e.contains("cross_entropy"), "{e}");
        for name in LOSS_NAMES {
            assert!(e.contains(name), "{e} lacks {name}");
        }
        assert!("msq".into_loss().is_err());
        assert_eq!(String::from("mae").into_loss().unwrap(), Loss::MeanAbsoluteError);
    }

    #[test]
    fn configs_round_trip() {
        let losses = [
            Loss::MeanSquaredError,
            Loss::MeanAbsoluteError,
            Loss::Huber { delta: 2.5 },
            Loss::BinaryCrossentropy { from_logits: true },
            Loss::BinaryCrossentropy { from_logits: false },
            Loss::CategoricalCrossentropy { from_logits: true },
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            Loss::SparseCategoricalCrossentropy { from_logits: false },
        ];
        for loss in losses {
            let config = loss.get_config();
            assert_eq!(Loss::from_config(&config).unwrap(), loss, "{config}");
            let text = serde_json::to_string(&config).unwrap();
            assert_eq!(Loss::from_config(&serde_json::from_str(&text).unwrap()).unwrap(), loss);
        }
        assert_eq!(Loss::from_config(&json!("mse")).unwrap(), Loss::MeanSquaredError);
        // Keras' own config for BinaryCrossentropy(from_logits=True).
        let keras = json!({"class_name": "BinaryCrossentropy", "config": {"name": "binary_crossentropy",
            "reduction": "sum_over_batch_size", "from_logits": true, "label_smoothing": 0.0, "axis": -1}});
        assert_eq!(Loss::from_config(&keras).unwrap(), Loss::BinaryCrossentropy { from_logits: true });
        let smoothing = json!({"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 0.1}});
        let e = Loss::from_config(&smoothing).unwrap_err().to_string();
        assert!(e.contains("label_smoothing"), "{e}");
        let e = Loss::from_config(&json!({"class_name": "Hinge"})).unwrap_err().to_string();
        assert!(e.contains("Hinge") && e.contains("Huber"), "{e}");
        let e = Loss::from_config(&json!({"class_name": "Huber", "config": {"delta": -1.0}})).unwrap_err().to_string();
        assert!(e.contains("delta"), "{e}");
    }

    #[test]
    fn custom_losses_register_and_round_trip() {
        let cube = CustomLoss::new("test_mean_cube", |t, p| p.sub(t)?.abs()?.pow_scalar(3.0)?.mean(&[-1], false));
        let loss = Loss::Custom(cube.clone());
        let e = Loss::from_config(&loss.get_config()).unwrap_err().to_string();
        assert!(e.contains("not registered"), "{e}");
        register_loss(&cube).unwrap();
        assert_eq!(Loss::from_config(&loss.get_config()).unwrap(), loss);
        assert_eq!(Loss::from_name("test_mean_cube").unwrap(), loss);
        assert!(Loss::from_name("nope").unwrap_err().to_string().contains("test_mean_cube"));
        assert!(register_loss(&CustomLoss::new("mse", |t, _| Ok(t.clone()))).is_err());
        let v = loss.compute(&t(&[0.0, 0.0], &[1, 2]), &t(&[1.0, 2.0], &[1, 2]), None, None).unwrap();
        assert_eq!(v.to_scalar::<f32>().unwrap(), 4.5);
    }

    #[test]
    fn sparse_labels_out_of_range_name_value_and_index() {
        let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
        let spec = TensorSpec::batched(&[10], DType::F32);
        let dev = backend::native();
        let mut labels: Vec<i64> = (0..400).map(|i| i % 10).collect();
        labels[345] = 12;
        let y = Tensor::new(labels, [400], &dev).unwrap();
        let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
        assert_eq!(e, "sparse_categorical_crossentropy: label 12 at index 345 is outside [0, 10)");
        let y = t(&[1.0, -1.0], &[2]);
        let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
        assert!(e.contains("label -1 at index 1"), "{e}");
        let y = t(&[1.0, 2.5], &[2, 1]);
        let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
        assert!(e.contains("label 2.5 at index 1 is not an integer"), "{e}");
        assert!(loss.check_targets(&t(&[1.0, 9.0], &[2, 1]), &spec).is_ok());
        // compute does not check (that would sync every batch): a bad id weighs 0, as in Keras on JAX.
        let y = Tensor::new(vec![3i64, 10], [2], &dev).unwrap();
        let v = loss.per_sample(&y, &Tensor::zeros([2, 10], DType::F32, &dev).unwrap()).unwrap();
        assert_eq!(v.to_vec::<f32>().unwrap()[1], 0.0);
    }

    #[test]
    fn target_shape_mismatches_are_errors() {
        let spec = TensorSpec::batched(&[10], DType::F32);
        let dev = backend::native();
        // Sparse targets for categorical cross-entropy.
        let ids = Tensor::new(vec![1i64, 2, 3], [3], &dev).unwrap();
        let e = Loss::from_name("categorical_crossentropy").unwrap().check_targets(&ids, &spec).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("(3,)") && e.contains("(None, 10)") && e.contains("sparse_categorical"), "{e}");
        // One-hot targets for sparse categorical cross-entropy.
        let one_hot = Tensor::zeros([3, 10], DType::F32, &dev).unwrap();
        let e = Loss::from_name("sparse_categorical_crossentropy").unwrap().check_targets(&one_hot, &spec);
        let e = e.unwrap_err().to_string();
        assert!(e.contains("(3, 10)") && e.contains("class ids must have shape (3,)"), "{e}");
        // Binary: [batch] fits [batch, 1], [batch, 2] does not.
        let bce = Loss::from_name("binary_crossentropy").unwrap();
        let one = TensorSpec::batched(&[1], DType::F32);
        assert!(bce.check_targets(&t(&[0.0, 1.0], &[2]), &one).is_ok());
        assert!(bce.check_targets(&t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]), &one).is_err());
        // Regression: broadcastable shapes are fine, others are not.
        let mse = Loss::MeanSquaredError;
        let three = TensorSpec::batched(&[3], DType::F32);
        assert!(mse.check_targets(&Tensor::zeros([4, 3], DType::F32, &dev).unwrap(), &three).is_ok());
        assert!(mse.check_targets(&Tensor::zeros([4, 1], DType::F32, &dev).unwrap(), &three).is_ok());
        let e = mse.check_targets(&Tensor::zeros([4, 2], DType::F32, &dev).unwrap(), &three).unwrap_err();
        assert!(e.to_string().contains("broadcast"), "{e}");
        assert!(mse.check_targets(&Tensor::zeros([4], DType::F32, &dev).unwrap(), &three).is_err());
        // per_sample checks too.
        let e = bce.per_sample(&t(&[0.0, 1.0, 1.0], &[3, 1]), &t(&[0.5, 0.5], &[2, 1])).unwrap_err();
        assert!(e.to_string().contains("binary_crossentropy"), "{e}");
    }

    #[test]
    fn probabilities_of_exactly_zero_and_one_stay_finite() {
        let y_true = t(&[1.0, 0.0, 1.0, 0.0], &[2, 2]);
        let y_pred = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]);
        for loss in
            [Loss::BinaryCrossentropy { from_logits: false }, Loss::CategoricalCrossentropy { from_logits: false }]
        {
            let v = loss.per_sample(&y_true, &y_pred).unwrap().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{loss}: {v:?}");
        }
        // Logits far out are stable too.
        let logits = t(&[-200.0, 200.0, 200.0, -200.0], &[2, 2]);
        for loss in
            [Loss::BinaryCrossentropy { from_logits: true }, Loss::CategoricalCrossentropy { from_logits: true }]
        {
            let v = loss.per_sample(&y_true, &logits).unwrap().to_vec::<f32>().unwrap();
            assert!(v.iter().all(|x| x.is_finite()), "{loss}: {v:?}");
        }
    }

    /// d loss / d y_pred by central differences against autodiff, for every
    /// built-in loss, with a sample weight and a mask.
    #[test]
    fn gradients_match_finite_differences() {
        let dev = backend::native();
        let pred = [0.3f32, -0.7, 1.2, 0.1, 0.4, -1.5];
        let probs = [0.2f32, 0.5, 0.3, 0.6, 0.1, 0.3];
        let cases: Vec<(Loss, Tensor, &[f32])> = vec![
            (Loss::MeanSquaredError, t(&[0.0, 1.0, 2.0, 0.5, 0.5, -1.0], &[2, 3]), &pred),
            (Loss::MeanAbsoluteError, t(&[0.0, 1.0, 2.0, 0.5, 0.0, -1.0], &[2, 3]), &pred),
            (Loss::Huber { delta: 0.5 }, t(&[0.0, 1.0, 2.0, 0.5, 0.5, -1.0], &[2, 3]), &pred),
            (Loss::BinaryCrossentropy { from_logits: true }, t(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]), &pred),
            (Loss::BinaryCrossentropy { from_logits: false }, t(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]), &probs),
            (Loss::CategoricalCrossentropy { from_logits: true }, t(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]), &pred),
            (Loss::CategoricalCrossentropy { from_logits: false }, t(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]), &probs),
            (Loss::SparseCategoricalCrossentropy { from_logits: true }, t(&[1.0, 2.0], &[2]), &pred),
            (Loss::SparseCategoricalCrossentropy { from_logits: false }, t(&[1.0, 2.0], &[2, 1]), &probs),
        ];
        let weight = t(&[0.5, 2.0], &[2]);
        let mask = t(&[1.0, 1.0], &[2]);
        for (loss, y_true, values) in cases {
            let y_pred = Tensor::new(values.to_vec(), [2, 3], &dev).unwrap().to_variable().unwrap();
            let value = loss.compute(&y_true, &y_pred, Some(&weight), Some(&mask)).unwrap();
            let grad = value.backward().unwrap();
            let grad = grad.get(&y_pred).expect("gradient reaches y_pred").to_vec::<f32>().unwrap();
            let eval = |v: &[f32]| -> f64 {
                let p = Tensor::new(v.to_vec(), [2, 3], &dev).unwrap();
                loss.compute(&y_true, &p, Some(&weight), Some(&mask)).unwrap().to_scalar::<f32>().unwrap() as f64
            };
            let h = 1e-2f32;
            for i in 0..values.len() {
                let (mut up, mut down) = (values.to_vec(), values.to_vec());
                up[i] += h;
                down[i] -= h;
                let numeric = (eval(&up) - eval(&down)) / (2.0 * h as f64);
                let analytic = grad[i] as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-3 + 1e-2 * numeric.abs(),
                    "{loss} d/dy_pred[{i}]: autodiff {analytic}, finite differences {numeric}"
                );
            }
        }
    }

    #[test]
    fn masks_and_weights_reduce_like_keras() {
        // Per-sample losses [1, 2, 3, 4] (MAE against zeros), mask [1, 1, 0, 1], weights [1, 2, 3, 4]:
        // Keras: Σ l·w·m / valid = (1 + 4 + 16) / 3 = 7.
        let y_true = t(&[0.0; 4], &[4, 1]);
        let y_pred = t(&[1.0, 2.0, 3.0, 4.0], &[4, 1]);
        let w = t(&[1.0, 2.0, 3.0, 4.0], &[4]);
        let m = t(&[1.0, 1.0, 0.0, 1.0], &[4]);
        let loss = Loss::MeanAbsoluteError;
        let v = |w, m| loss.compute(&y_true, &y_pred, w, m).unwrap().to_scalar::<f32>().unwrap();
        assert_eq!(v(None, None), 2.5);
        assert_eq!(v(Some(&w), None), 7.5);
        assert!((v(None, Some(&m)) - 7.0 / 3.0).abs() < 1e-6);
        assert_eq!(v(Some(&w), Some(&m)), 7.0);
        // Nothing valid: 0, not NaN.
        assert_eq!(v(None, Some(&t(&[0.0; 4], &[4]))), 0.0);
        // A weight that fits nothing is an error naming both shapes.
        let e = loss.compute(&y_true, &y_pred, Some(&t(&[1.0; 3], &[3])), None).unwrap_err().to_string();
        assert!(e.contains("[4]") && e.contains("[3]"), "{e}");
    }
}
