//! Normalization layers: [`LayerNormalization`].

mod layer_normalization;

pub use layer_normalization::LayerNormalization;
