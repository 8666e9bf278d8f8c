//! The core layers: [`Dense`], [`Embedding`], [`Masking`], [`Lambda`] and
//! [`ActivationLayer`] (Keras' `layers/core/`; `Input` lives with the
//! Functional API in the `strata` crate).

mod activation;
mod dense;
mod embedding;
mod lambda;
mod masking;

pub use activation::ActivationLayer;
pub use dense::Dense;
pub use embedding::Embedding;
pub use lambda::{register_lambda, registered_lambdas, Lambda};
pub use masking::Masking;
