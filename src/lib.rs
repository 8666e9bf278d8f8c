//! # strata
//!
//! A Keras-style deep-learning library for Rust: readable model definitions,
//! clear errors, and swappable backends chosen at run time — the pure-Rust
//! `native` backend, which always builds, and `candle` (CPU, CUDA behind the
//! `cuda` feature).
//!
//! This release contains the foundation: [`Tensor`] with reverse-mode
//! autodiff, written once above a small [`Backend`] contract, and the two
//! backends.
//!
//! ```
//! use strata::prelude::*;
//!
//! # fn main() -> strata::Result<()> {
//! let dev = strata::backend::by_name("native")?;
//! let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev)?;
//! let w = Tensor::new(vec![0.1f32, -0.2], [2, 1], &dev)?.to_variable()?;
//! let loss = x.matmul(&w)?.sub_scalar(1.0)?.square()?.mean_all()?;
//! let grads = loss.backward()?;
//! let g = grads.get(&w).expect("loss depends on w");
//! w.assign(&w.sub(&g.mul_scalar(0.05)?)?)?;          // one SGD step
//! let after = x.matmul(&w)?.sub_scalar(1.0)?.square()?.mean_all()?;
//! assert!(after.to_scalar::<f32>()? < loss.to_scalar::<f32>()?);
//! # Ok(()) }
//! ```

pub use strata_core::{
    grad_enabled, no_grad, Backend, BinaryOp, DType, Device, Element, Error, FastPaths, Gradients, MatmulSpec,
    NoGradGuard, ReduceOp, Result, Rng, Shape, Storage, Tensor, TensorId, UnaryOp,
};

pub mod backend;
pub mod callbacks;
mod config;
pub mod datasets;
pub mod losses;
pub mod metrics;
mod model;
pub mod optimizers;
mod plot_model;
mod saving;
mod sequential;
mod summary;
mod symbolic;
mod training;

pub use losses::{CustomLoss, IntoLoss, Loss};
pub use metrics::{
    resolve_metric, Auc, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError, Metric, MetricSpec,
    Precision, Recall, RootMeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
    TopKCategoricalAccuracy,
};
pub use model::{BuildOptions, LayerRef, Model, ModelInputs, WeightSnapshot};
pub use optimizers::{
    optimizer_from_config, optimizer_from_name, Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, IntoOptimizer,
    LearningRate, LearningRateSchedule, Optimizer, PiecewiseConstantDecay, RMSprop, SGD,
};
pub use saving::{
    load_model, load_model_on, load_model_with, LoadOptions, LoadReport, LoadWeightsOptions, SaveDType, SaveOptions,
    SkipReason, Skipped, Transform, FORMAT, FORMAT_VERSION,
};
pub use sequential::{Sequential, SequentialItem};
pub use symbolic::{CallInputs, Input, InputShape, LayerExt, SharedLayer, SymbolicTensor};
pub use training::{
    EvaluateOptions, FitOptions, History, IntoLosses, IntoMetrics, Logs, Losses, Metrics, PredictOptions,
};

/// Layers, activations, initializers and the [`Layer`](layers::Layer) trait
/// (the `strata-layers` crate).
pub mod layers {
    pub use strata_layers::*;
}

/// The names most programs need, in one import.
pub mod prelude {
    pub use crate::backend;
    pub use crate::callbacks::{
        Callback, CallbackContext, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint,
        ReduceLROnPlateau, TerminateOnNaN,
    };
    pub use crate::optimizers::{
        schedules, Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, IntoOptimizer, LearningRate,
        LearningRateSchedule, Optimizer, PiecewiseConstantDecay, RMSprop, SGD,
    };
    pub use crate::{
        Auc, BinaryAccuracy, CategoricalAccuracy, MeanAbsoluteError, MeanSquaredError, Metric, MetricSpec, Precision,
        Recall, RootMeanSquaredError, SparseCategoricalAccuracy, SparseTopKCategoricalAccuracy,
        TopKCategoricalAccuracy,
    };
    pub use crate::{
        BuildOptions, CustomLoss, EvaluateOptions, FitOptions, History, Input, LayerExt, Logs, Loss, Losses, Metrics,
        Model, PredictOptions, Sequential, SharedLayer, SymbolicTensor,
    };
    pub use strata_core::{no_grad, DType, Device, Error, Result, Rng, Shape, Tensor};
    pub use strata_layers::{
        Activation, ActivationLayer, Add, BuildContext, CallContext, Concatenate, Dense, Dropout, Embedding, Flatten,
        GlobalAveragePooling1D, GlobalMaxPooling1D, Initializer, Lambda, Layer, LayerNormalization, Masking,
        Regularizer, Reshape, TensorSpec, Weight,
    };
}

static SEED: std::sync::Mutex<Option<u64>> = std::sync::Mutex::new(None);

/// Sets the seed used by models built without an explicit one (Keras'
/// `keras.utils.set_random_seed`): the same seed gives the same initial
/// weights, on every backend. `None` goes back to a fresh seed per model.
pub fn set_random_seed(seed: impl Into<Option<u64>>) {
    *SEED.lock().unwrap_or_else(|e| e.into_inner()) = seed.into();
}

pub(crate) fn global_seed() -> Option<u64> {
    *SEED.lock().unwrap_or_else(|e| e.into_inner())
}

/// `(32, 784)`: a concrete shape written like Keras writes shapes.
pub(crate) fn shape_tuple(dims: &[usize]) -> String {
    let parts: Vec<String> = dims.iter().map(usize::to_string).collect();
    if parts.len() == 1 {
        format!("({},)", parts[0])
    } else {
        format!("({})", parts.join(", "))
    }
}

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
