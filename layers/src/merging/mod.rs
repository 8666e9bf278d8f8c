//! Merging layers: [`Add`], [`Subtract`], [`Multiply`], [`Average`],
//! [`Maximum`], [`Minimum`] and [`Concatenate`].

mod elementwise;
mod merge;

pub use elementwise::{Average, Maximum, Minimum, Multiply, Subtract};
pub use merge::{Add, Concatenate};
