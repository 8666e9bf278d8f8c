//! Preprocessing layers, as Keras groups them: [`Rescaling`] and
//! [`Normalization`] for values; [`Resizing`] and [`CenterCrop`] for image
//! sizes; and the augmentation layers [`RandomFlip`], [`RandomTranslation`],
//! [`RandomRotation`], [`RandomZoom`] and [`RandomContrast`], which draw
//! from the model's seeded generator during training and are the identity in
//! inference.

mod center_crop;
mod normalization;
mod random_contrast;
mod random_flip;
mod random_rotation;
mod random_translation;
mod random_zoom;
mod rescaling;
mod resizing;

pub use center_crop::CenterCrop;
pub use normalization::{Normalization, Stat};
pub use random_contrast::RandomContrast;
pub use random_flip::{FlipMode, RandomFlip};
pub use random_rotation::RandomRotation;
pub use random_translation::RandomTranslation;
pub use random_zoom::RandomZoom;
pub use rescaling::Rescaling;
pub use resizing::Resizing;
