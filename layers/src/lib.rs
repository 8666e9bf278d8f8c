//! strata's layers: the [`Layer`] trait — the one way to write a layer,
//! built-in or custom — the built-in layers (one file each), activations,
//! weight [`initializers`] and regularizers.
//!
//! Layers use only the [`strata_core::Tensor`] API, so they run unchanged on
//! every backend and autodiff differentiates them. Models (`Sequential`, the
//! Functional API) live in the `strata` crate.

mod activation_layer;
pub mod activations;
mod dense;
mod dropout;
mod embedding;
mod flatten;
pub mod initializers;
mod lambda;
mod layer;
mod layer_norm;
mod masking;
mod merge;
mod meta;
mod pooling;
mod registry;
pub mod regularizers;
mod reshape;
mod resolve;
#[cfg(test)]
mod testutil;

pub use activation_layer::ActivationLayer;
pub use activations::Activation;
pub use dense::Dense;
pub use dropout::Dropout;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use initializers::{Distribution, FanMode, Initializer};
pub use lambda::{register_lambda, registered_lambdas, Lambda};
pub use layer::{expect_float, expect_rank, snake_case, Arity, BuildContext, CallContext, Layer, TensorSpec, Weight};
pub use layer_norm::LayerNormalization;
pub use masking::Masking;
pub use merge::{Add, Concatenate};
pub use pooling::{GlobalAveragePooling1D, GlobalMaxPooling1D};
pub use registry::{layer_from_config, register_layer, registered_layers, LayerFactory};
pub use regularizers::Regularizer;
pub use reshape::Reshape;
pub use resolve::Resolve;
