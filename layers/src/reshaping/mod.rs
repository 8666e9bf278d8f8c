//! Reshaping layers: [`Flatten`], [`Reshape`], [`RepeatVector`],
//! [`Permute`], [`ZeroPadding1D`] /
//! [`ZeroPadding2D`], [`Cropping1D`] / [`Cropping2D`] and [`UpSampling1D`] /
//! [`UpSampling2D`].

mod cropping;
mod flatten;
mod permute;
mod repeat_vector;
mod reshape;
mod up_sampling;
mod zero_padding;

pub use cropping::{Cropping, Cropping1D, Cropping2D};
pub use flatten::Flatten;
pub use permute::Permute;
pub use repeat_vector::RepeatVector;
pub use reshape::Reshape;
pub use up_sampling::{UpSampling, UpSampling1D, UpSampling2D};
pub use zero_padding::{ZeroPadding, ZeroPadding1D, ZeroPadding2D};
