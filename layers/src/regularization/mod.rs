//! Regularization layers: [`Dropout`].

mod dropout;

pub use dropout::Dropout;
