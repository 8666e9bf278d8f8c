//! strata's tensor core: [`Tensor`], [`Shape`], [`DType`], [`Device`], the
//! backend contract and reverse-mode autodiff.
//!
//! Backends (`strata-native`, `strata-candle`) implement the contract in two
//! halves: the [`Backend`] trait of primitive forward kernels, which the
//! conformance suite (the `strata-conformance` crate) checks, and
//! [`FastPaths`], fused kernels whose defaults are built from the
//! primitives and which a backend overrides only for speed. Everything else —
//! shape checks, broadcasting, gradients — lives here, once.
//!
//! ```
//! use strata_core::{Tensor, DType};
//! # fn main() -> strata_core::Result<()> {
//! let dev = strata_native::device();
//! let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev)?;
//! let w = Tensor::new(vec![0.5f32, -1.0], [2, 1], &dev)?.to_variable()?;
//! let loss = x.matmul(&w)?.square()?.mean_all()?;
//! let grads = loss.backward()?;
//! let step = w.sub(&grads.get(&w).unwrap().mul_scalar(0.1)?)?;
//! w.assign(&step)?;                                 // one SGD step, in place
//! assert_eq!(w.dtype(), DType::F32);
//! # Ok(()) }
//! ```

mod backend;
mod backprop;
mod device;
mod dtype;
mod error;
mod fast_paths;
mod interop;
mod random;
mod recurrence;
mod shape;
mod tensor;
mod window;

pub use backend::{Backend, BinaryOp, MatmulSpec, ReduceOp, Storage, UnaryOp};
pub use backprop::{grad_enabled, no_grad, Gradients, NoGradGuard};
pub use device::Device;
pub use dtype::DType;
pub use error::{Error, Result};
pub use fast_paths::{defaults as fast_path_defaults, ConvSpec, FastPaths, FusedUpdate, LinearActivation, LinearSpec};
pub use random::Rng;
pub use recurrence::{GruGrads, GruSpec, LstmGrads, LstmSpec};
pub use shape::Shape;
pub use tensor::{Element, Tensor, TensorId};
pub use window::{UnfoldSpec, Window, WindowAxis};
