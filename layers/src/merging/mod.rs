//! Merging layers: [`Add`], [`Subtract`], [`Multiply`], [`Average`],
//! [`Maximum`], [`Minimum`], [`Concatenate`] and [`Dot`].

mod dot;
mod elementwise;
mod merge;

pub use dot::{Dot, DotAxes};
pub use elementwise::{Average, Maximum, Minimum, Multiply, Subtract};
pub(crate) use merge::mask_product;
pub use merge::{Add, Concatenate};
