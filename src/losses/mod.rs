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
//! When the predictions come straight out of a softmax (a
//! `Dense(…, "softmax")` or `Activation("softmax")` output), the categorical
//! cross-entropies read the logits under it ([`Tensor::softmax_input`]) and
//! compute `-Σ t·log_softmax(z)` in one fused op
//! ([`Tensor::softmax_cross_entropy`]), as Keras does with the logits it
//! attaches to a softmax output: the same loss wherever every probability
//! lies in `[ε, 1 − ε]`; outside it the loss is the exact `-log p` instead of
//! the clipped one, and its gradient is not cut to zero. This holds whatever
//! the autodiff mode, so `fit`, `train_on_batch`, `evaluate` and
//! `test_on_batch` report the same loss for the same batch and weights
//! (logits `[0, 40]` with label 0: 40, not the clipped 16.118).
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

use std::fmt;

use serde_json::{json, Value};
use strata_core::{DType, Error, Result, Tensor};
use strata_layers::TensorSpec;

mod crossentropy;
mod custom;
mod reduction;
mod regression;
#[cfg(test)]
mod tests;

use crossentropy::check_labels;
pub(crate) use crossentropy::class_mask;
pub use custom::{register_loss, CustomLoss};
use custom::{registered_loss, unknown_loss};
use reduction::{dims_fit, reduce_weighted, squeeze_or_expand_dims};
pub(crate) use reduction::{mul_weights, pad_trailing, squeeze_or_expand};

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
            return crossentropy::sparse_categorical(y_true, y_pred, *from_logits);
        }
        let t = y_true.cast(DType::F32)?;
        let (t, p) = squeeze_or_expand(&t, y_pred, true)?;
        match self {
            Loss::MeanSquaredError => regression::mean_squared_error(op, &t, &p),
            Loss::MeanAbsoluteError => regression::mean_absolute_error(op, &t, &p),
            Loss::Huber { delta } => regression::huber(op, &t, &p, *delta),
            Loss::BinaryCrossentropy { from_logits } => crossentropy::binary(op, &t, &p, *from_logits),
            Loss::CategoricalCrossentropy { from_logits } => crossentropy::categorical(op, &t, &p, *from_logits),
            Loss::Custom(c) => {
                if c.name.trim().is_empty() {
                    return Err(Error::invalid("loss", "a custom loss needs a non-empty name"));
                }
                crate::utils::catch_panic(|| (c.f)(&t, &p))
                    .map_err(|e| Error::msg(format!("custom loss `{}`: {e}", c.name)))
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
                    crate::utils::shape_tuple(y_true.dims())
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
