//! Convolution layers: [`Conv1D`] and [`Conv2D`] (strides, `valid`/`same`/
//! `causal` padding, dilation, groups, channels first or last),
//! [`DepthwiseConv2D`] and [`SeparableConv2D`].

mod conv;
mod depthwise_conv2d;
mod separable_conv2d;

pub use conv::{Conv, Conv1D, Conv2D};
pub use depthwise_conv2d::DepthwiseConv2D;
pub use separable_conv2d::SeparableConv2D;
