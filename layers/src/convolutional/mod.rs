//! Convolution layers: [`Conv1D`] and [`Conv2D`] (strides, `valid`/`same`/
//! `causal` padding, dilation, groups, channels first or last).

mod conv;

pub use conv::{Conv, Conv1D, Conv2D};
