//! strata's layers crate: weight [`initializers`] (Keras' names, defaults and
//! formulas), and — as the layers issue lands — the `Layer` trait and the
//! built-in layers. Layers use only the [`strata_core::Tensor`] API, so they
//! run unchanged on every backend.

pub mod initializers;

pub use initializers::{Distribution, FanMode, Initializer};
