//! strata's layers: the [`Layer`] trait — the one way to write a layer,
//! built-in or custom — the built-in layers (one file each, in one folder per family as Keras groups
//! them: [`core`], [`attention`], [`convolutional`], [`merging`], [`normalization`], [`pooling`],
//! [`preprocessing`], [`recurrent`], [`regularization`], [`reshaping`]), activations,
//! weight [`initializers`] and regularizers.
//!
//! Layers use only the [`strata_core::Tensor`] API, so they run unchanged on
//! every backend and autodiff differentiates them. Models (`Sequential`, the
//! Functional API) live in the `strata` crate.

pub mod activations;
pub mod attention;
pub mod convolutional;
pub mod core;
mod image_ops;
pub mod initializers;
mod layer;
pub mod merging;
mod meta;
pub mod normalization;
pub mod pooling;
pub mod preprocessing;
pub mod recurrent;
mod registry;
pub mod regularization;
pub mod regularizers;
pub mod reshaping;
mod resolve;
#[cfg(test)]
mod testutil;
mod window_args;

pub use crate::core::{register_lambda, registered_lambdas, ActivationLayer, Dense, Embedding, Lambda, Masking};
pub use activations::Activation;
pub use attention::{AdditiveAttention, Attention, MultiHeadAttention};
pub use convolutional::{
    Conv, Conv1D, Conv1DTranspose, Conv2D, Conv2DTranspose, ConvTranspose, DepthwiseConv2D, SeparableConv2D,
};
pub use image_ops::{Factor, FillMode, Interpolation};
pub use initializers::{Distribution, FanMode, Initializer};
pub use layer::{
    expect_float, expect_rank, snake_case, Arity, BuildContext, CallContext, Layer, LayerClass, TensorSpec, Weight,
};
pub use merging::{Add, Average, Concatenate, Dot, DotAxes, Maximum, Minimum, Multiply, Subtract};
pub use normalization::{BatchNormalization, GroupNormalization, LayerNormalization};
pub use pooling::{
    AveragePooling1D, AveragePooling2D, GlobalAveragePooling1D, GlobalAveragePooling2D, GlobalMaxPooling1D,
    GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D,
};
pub use preprocessing::{
    CenterCrop, FlipMode, Normalization, RandomContrast, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
    Rescaling, Resizing, Stat,
};
pub use recurrent::{Bidirectional, MergeMode, SimpleRNN, TimeDistributed, GRU, LSTM};
pub use registry::{layer_from_config, register_layer, register_layer_class, registered_layers, LayerFactory};
pub use regularization::{Dropout, SpatialDropout1D, SpatialDropout2D};
pub use regularizers::Regularizer;
pub use reshaping::{
    Cropping, Cropping1D, Cropping2D, Flatten, Permute, RepeatVector, Reshape, UpSampling, UpSampling1D, UpSampling2D,
    ZeroPadding, ZeroPadding1D, ZeroPadding2D,
};
pub use resolve::Resolve;
pub use window_args::{DataFormat, Dims, Margins, Padding};
