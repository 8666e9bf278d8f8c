//! Regularization layers: [`Dropout`], [`SpatialDropout1D`] and
//! [`SpatialDropout2D`].

mod dropout;
mod spatial_dropout1d;
mod spatial_dropout2d;

pub use dropout::Dropout;
pub use spatial_dropout1d::SpatialDropout1D;
pub use spatial_dropout2d::SpatialDropout2D;
