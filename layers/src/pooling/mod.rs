//! Pooling layers: [`GlobalAveragePooling1D`] and [`GlobalMaxPooling1D`]
//! (mask-aware).

mod global_pooling1d;

pub use global_pooling1d::{GlobalAveragePooling1D, GlobalMaxPooling1D};
