//! Convolution layers: [`Conv1D`] and [`Conv2D`] (strides, `valid`/`same`/
//! `causal` padding, dilation, groups, channels first or last),
//! [`DepthwiseConv2D`], [`SeparableConv2D`], and the transposed
//! convolutions [`Conv1DTranspose`] and [`Conv2DTranspose`].

mod conv;
mod conv_transpose;
mod depthwise_conv2d;
mod separable_conv2d;

pub use conv::{Conv, Conv1D, Conv2D};
pub use conv_transpose::{Conv1DTranspose, Conv2DTranspose, ConvTranspose};
pub use depthwise_conv2d::DepthwiseConv2D;
pub use separable_conv2d::SeparableConv2D;
