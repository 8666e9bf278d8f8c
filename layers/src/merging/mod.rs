//! Merging layers: [`Add`] and [`Concatenate`].

mod merge;

pub use merge::{Add, Concatenate};
