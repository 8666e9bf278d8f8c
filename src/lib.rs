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
    conformance, grad_enabled, no_grad, Backend, BinaryOp, DType, Device, Element, Error, Gradients, MatmulSpec,
    NoGradGuard, ReduceOp, Result, Rng, Shape, Storage, Tensor, TensorId, UnaryOp,
};

pub mod backend;

/// The names most programs need, in one import.
pub mod prelude {
    pub use crate::backend;
    pub use strata_core::{no_grad, DType, Device, Error, Result, Rng, Shape, Tensor};
}

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
