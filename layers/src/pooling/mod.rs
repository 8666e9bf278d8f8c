//! Pooling layers: windowed ([`MaxPooling1D`], [`MaxPooling2D`],
//! [`AveragePooling1D`], [`AveragePooling2D`]) and global
//! ([`GlobalAveragePooling1D`] and [`GlobalMaxPooling1D`], mask-aware;
//! [`GlobalAveragePooling2D`], [`GlobalMaxPooling2D`]).

mod global_pooling1d;
mod global_pooling2d;
// The windowed pooling layers, named as the family is.
#[allow(clippy::module_inception)]
mod pooling;

pub use global_pooling1d::{GlobalAveragePooling1D, GlobalMaxPooling1D};
pub use global_pooling2d::{GlobalAveragePooling2D, GlobalMaxPooling2D, GlobalPooling2D};
pub use pooling::{Average, AveragePooling1D, AveragePooling2D, Max, MaxPooling1D, MaxPooling2D, PoolReduce, Pooling};
