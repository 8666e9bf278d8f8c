//! strata's candle backend: the [`Backend`](strata_core::Backend) kernels
//! implemented with [candle](https://github.com/huggingface/candle)'s
//! `candle-core` and `candle-nn` ops.
//!
//! The CPU device is always available through [`cpu()`]; candle's CUDA device
//! is available through [`cuda()`] when the crate is built with the `cuda`
//! feature (which needs the CUDA toolkit and `nvcc` at build time).
//!
//! Tensor data lives in a [`CandleStorage`]: a contiguous, rank-1
//! [`candle_core::Tensor`]. Every kernel first reshapes it to the shape the
//! front end passes in (free for contiguous data), so the front end can
//! reshape tensors without telling the backend.
//!
//! ```
//! use strata_core::{DType, Tensor};
//! # fn main() -> strata_core::Result<()> {
//! let dev = strata_candle::cpu();
//! assert_eq!(dev.name(), "candle-cpu");
//! let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev)?;
//! let w = Tensor::new(vec![0.5f32, -1.0], [2, 1], &dev)?;
//! let y = x.matmul(&w)?.relu()?;                  // [[0], [0]] after relu
//! assert_eq!(y.to_vec::<f32>()?, vec![0.0, 0.0]);
//! let p = x.softmax(-1)?;
//! assert_eq!(p.dtype(), DType::F32);
//! assert!((p.sum_all()?.to_scalar::<f32>()? - 2.0).abs() < 1e-6);
//! # Ok(()) }
//! ```
//!
//! # Differences from the reference semantics
//!
//! The kernels follow the `f64` references in [`strata_core::UnaryOp`] and
//! [`strata_core::BinaryOp`] (IEEE `powf`, NaN-ignoring `max`/`min`). Where
//! candle's own kernels differ the backend works around them; see the
//! documentation of [`CandleBackend`] for the details and the few remaining
//! differences (NaN inside `max`/`min`/`argmax` reductions).

mod backend;
mod elementwise;
mod matmul;
mod reduce;
mod shape_ops;
mod storage;
mod window;

pub use backend::CandleBackend;
pub use storage::CandleStorage;

/// Re-export of the `candle-core` crate this backend is built on, so that
/// callers can build [`CandleStorage`] values from their own candle tensors.
pub use candle_core;

/// A [`Device`](strata_core::Device) computing with candle on the CPU
/// (named `"candle-cpu"`).
///
/// ```
/// let dev = strata_candle::cpu();
/// assert_eq!(dev.name(), "candle-cpu");
/// ```
pub fn cpu() -> strata_core::Device {
    strata_core::Device::new(CandleBackend::cpu())
}

/// A [`Device`](strata_core::Device) computing with candle on CUDA GPU
/// `ordinal` (named `"candle-cuda:{ordinal}"`).
///
/// Without the crate's `cuda` feature this always returns
/// [`Error::UnknownBackend`](strata_core::Error::UnknownBackend); with it,
/// failures to open the device (no driver, no such GPU) come back as
/// [`Error::Backend`](strata_core::Error::Backend) with candle's message.
///
/// ```
/// match strata_candle::cuda(0) {
///     Ok(dev) => assert_eq!(dev.name(), "candle-cuda:0"),
///     Err(e) => println!("no CUDA device: {e}"),
/// }
/// ```
pub fn cuda(ordinal: usize) -> strata_core::Result<strata_core::Device> {
    CandleBackend::cuda(ordinal).map(strata_core::Device::new)
}

/// Whether [`cuda(0)`](cuda()) would succeed: the crate was built with the
/// `cuda` feature and candle can open CUDA device 0.
///
/// ```
/// if !strata_candle::is_cuda_available() {
///     assert!(strata_candle::cuda(0).is_err());
/// }
/// ```
pub fn is_cuda_available() -> bool {
    cfg!(feature = "cuda") && CandleBackend::cuda(0).is_ok()
}
