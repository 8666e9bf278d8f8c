//! strata's layers: the [`Layer`] trait — the one way to write a layer,
//! built-in or custom — the built-in layers (one file each), activations,
//! weight [`initializers`] and regularizers.
//!
//! Layers use only the [`strata_core::Tensor`] API, so they run unchanged on
//! every backend and autodiff differentiates them. Models (`Sequential`, the
//! Functional API) live in the `strata` crate.

pub mod activations;
mod dense;
pub mod initializers;
mod layer;
mod meta;
mod registry;
pub mod regularizers;
mod resolve;

pub use activations::Activation;
pub use dense::Dense;
pub use initializers::{Distribution, FanMode, Initializer};
pub use layer::{expect_float, expect_rank, snake_case, Arity, BuildContext, CallContext, Layer, TensorSpec, Weight};
pub use registry::{layer_from_config, register_layer, registered_layers, LayerFactory};
pub use regularizers::Regularizer;
pub use resolve::Resolve;
