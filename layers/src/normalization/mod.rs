//! Normalization layers: [`BatchNormalization`] and [`LayerNormalization`].

mod batch_normalization;
mod layer_normalization;

pub use batch_normalization::BatchNormalization;
pub use layer_normalization::LayerNormalization;
