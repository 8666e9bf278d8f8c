//! Sliding windows over channels-last data: the geometry of the
//! [`unfold`](crate::Backend::unfold) / [`fold`](crate::Backend::fold)
//! primitives, from which convolution, transposed convolution and pooling are
//! built.
//!
//! A window slides over the spatial axes of a `[batch, s_1, .., s_d, channels]`
//! tensor. [`Tensor::unfold`](crate::Tensor::unfold) copies every window
//! position's patch into `[batch, o_1, .., o_d, k_1, .., k_d, channels]`
//! (im2col): a convolution is then one matrix product with the kernel
//! reshaped to `[k_1·..·k_d·channels, filters]` — exactly Keras' kernel
//! layout — and pooling is a reduction over the kernel axes.
//! [`Tensor::fold`](crate::Tensor::fold) is its adjoint (col2im): it adds
//! every patch entry back at the input position it came from.

use crate::{Error, Result, Shape};

/// How a window slides along one spatial axis, with its resolved sizes.
///
/// Window position `o` and kernel offset `k` read input coordinate
/// `o·stride + k·dilation − pad_before`; coordinates outside `0..input` are
/// padding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct WindowAxis {
    /// Size of the axis in the input.
    pub input: usize,
    /// Kernel size along the axis.
    pub kernel: usize,
    /// Step between window positions.
    pub stride: usize,
    /// Step between kernel taps.
    pub dilation: usize,
    /// Padding cells before the first input cell.
    pub pad_before: usize,
    /// Number of window positions (the output size).
    pub output: usize,
}

impl WindowAxis {
    /// Resolves one axis. Kernel, stride and dilation must be at least 1, and
    /// the dilated kernel must fit in the padded axis.
    pub fn new(
        input: usize,
        kernel: usize,
        stride: usize,
        dilation: usize,
        pad_before: usize,
        pad_after: usize,
    ) -> Result<WindowAxis> {
        for (what, v) in [("kernel size", kernel), ("stride", stride), ("dilation", dilation)] {
            if v == 0 {
                return Err(Error::invalid("window", format!("the {what} must be at least 1, received 0")));
            }
        }
        let overflow =
            || Error::SizeOverflow { op: "window".into(), message: "the window's sizes overflow usize".into() };
        let span = (kernel - 1).checked_mul(dilation).and_then(|s| s.checked_add(1)).ok_or_else(overflow)?;
        let padded = input.checked_add(pad_before).and_then(|p| p.checked_add(pad_after)).ok_or_else(overflow)?;
        if span > padded {
            return Err(Error::invalid(
                "window",
                format!(
                    "a kernel of size {kernel} with dilation {dilation} spans {span} cells, \
                     more than the {padded} of an axis of size {input} padded by ({pad_before}, {pad_after})"
                ),
            ));
        }
        Ok(WindowAxis { input, kernel, stride, dilation, pad_before, output: (padded - span) / stride + 1 })
    }

    /// The input coordinate read by window position `o` at kernel offset
    /// `k`, or `None` where that is padding.
    #[inline]
    pub fn source(&self, o: usize, k: usize) -> Option<usize> {
        (o * self.stride + k * self.dilation).checked_sub(self.pad_before).filter(|&i| i < self.input)
    }
}

/// A window's shape and steps, independent of the input it slides over:
/// what [`Tensor::unfold`](crate::Tensor::unfold) and
/// [`Tensor::fold`](crate::Tensor::fold) take.
///
/// ```
/// use strata_core::Window;
/// // A 3×3 window with stride 2 and one cell of padding on every side.
/// let w = Window::new(&[3, 3]).strides(&[2, 2]).padding(&[(1, 1), (1, 1)]);
/// assert_eq!(w.output_sizes(&[8, 7]).unwrap(), vec![4, 4]);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Window {
    /// Kernel size per spatial axis.
    pub kernel: Vec<usize>,
    /// Stride per spatial axis (default 1).
    pub strides: Vec<usize>,
    /// Dilation per spatial axis (default 1).
    pub dilation: Vec<usize>,
    /// Padding `(before, after)` per spatial axis (default none).
    pub padding: Vec<(usize, usize)>,
}

impl Window {
    /// A window with these kernel sizes, stride 1, no dilation and no padding.
    pub fn new(kernel: &[usize]) -> Window {
        let d = kernel.len();
        Window { kernel: kernel.to_vec(), strides: vec![1; d], dilation: vec![1; d], padding: vec![(0, 0); d] }
    }

    /// Sets the strides.
    pub fn strides(mut self, strides: &[usize]) -> Window {
        self.strides = strides.to_vec();
        self
    }

    /// Sets the dilation rates.
    pub fn dilation(mut self, dilation: &[usize]) -> Window {
        self.dilation = dilation.to_vec();
        self
    }

    /// Sets the padding, `(before, after)` per axis.
    pub fn padding(mut self, padding: &[(usize, usize)]) -> Window {
        self.padding = padding.to_vec();
        self
    }

    /// Number of spatial axes.
    pub fn rank(&self) -> usize {
        self.kernel.len()
    }

    /// The resolved axes for an input with these spatial sizes.
    pub fn axes(&self, spatial: &[usize]) -> Result<Vec<WindowAxis>> {
        let d = self.kernel.len();
        if !(1..=3).contains(&d) {
            return Err(Error::invalid(
                "window",
                format!("windows have 1 to 3 spatial axes, received a kernel of {d}: {:?}", self.kernel),
            ));
        }
        if self.strides.len() != d || self.dilation.len() != d || self.padding.len() != d {
            return Err(Error::invalid(
                "window",
                format!(
                    "kernel {:?}, strides {:?}, dilation {:?} and padding {:?} must give one entry per spatial axis",
                    self.kernel, self.strides, self.dilation, self.padding
                ),
            ));
        }
        if spatial.len() != d {
            return Err(Error::invalid(
                "window",
                format!("a {d}-d window needs {d} spatial axes, received {}: {spatial:?}", spatial.len()),
            ));
        }
        (0..d)
            .map(|a| {
                let (pb, pa) = self.padding[a];
                WindowAxis::new(spatial[a], self.kernel[a], self.strides[a], self.dilation[a], pb, pa)
            })
            .collect()
    }

    /// The number of window positions along each axis of an input with
    /// these spatial sizes.
    pub fn output_sizes(&self, spatial: &[usize]) -> Result<Vec<usize>> {
        Ok(self.axes(spatial)?.iter().map(|a| a.output).collect())
    }

    /// The padding `(before, after)` of Keras' (and TensorFlow's) `"same"`
    /// mode for one axis: the output has `ceil(input / stride)` positions,
    /// and an odd total puts the extra cell after.
    ///
    /// ```
    /// use strata_core::Window;
    /// assert_eq!(Window::same_padding(6, 3, 2, 1), (0, 1));
    /// assert_eq!(Window::same_padding(7, 3, 2, 1), (1, 1));
    /// assert_eq!(Window::same_padding(5, 3, 1, 2), (2, 2));
    /// ```
    pub fn same_padding(input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
        let stride = stride.max(1);
        let span = kernel.saturating_sub(1).saturating_mul(dilation).saturating_add(1);
        let out = input.div_ceil(stride);
        let total = out.saturating_sub(1).saturating_mul(stride).saturating_add(span).saturating_sub(input);
        (total / 2, total - total / 2)
    }
}

/// The full geometry the backend's [`unfold`](crate::Backend::unfold) and
/// [`fold`](crate::Backend::fold) receive: the batch and channel counts, each
/// spatial axis resolved, and the value padding cells read as in `unfold`.
#[derive(Clone, Debug, PartialEq)]
pub struct UnfoldSpec {
    /// Batch size.
    pub batch: usize,
    /// Channels (the last axis, copied whole).
    pub channels: usize,
    /// The spatial axes, outermost first.
    pub axes: Vec<WindowAxis>,
    /// What `unfold` writes for padding cells (`0` for convolution, `-∞`
    /// for max pooling). `fold` ignores it.
    pub pad_value: f64,
}

impl UnfoldSpec {
    /// `[batch, s_1, .., s_d, channels]`: the shape `unfold` reads and `fold` writes.
    pub fn image_shape(&self) -> Shape {
        let mut dims = vec![self.batch];
        dims.extend(self.axes.iter().map(|a| a.input));
        dims.push(self.channels);
        Shape::new(dims)
    }

    /// `[batch, o_1, .., o_d, channels]`: one value per window position and
    /// channel, the shape a pooling writes (with `channels` replaced by the
    /// filters, a convolution's).
    pub fn pooled_shape(&self) -> Shape {
        let mut dims = vec![self.batch];
        dims.extend(self.axes.iter().map(|a| a.output));
        dims.push(self.channels);
        Shape::new(dims)
    }

    /// `batch · o_1 · .. · o_d`: how many windows, the rows of a
    /// convolution's matrix product (saturating).
    pub fn positions(&self) -> usize {
        self.axes.iter().fold(self.batch, |n, a| n.saturating_mul(a.output))
    }

    /// `k_1 · .. · k_d · channels`: the values in one window, the rows of a
    /// convolution's kernel matrix (saturating).
    pub fn patch_len(&self) -> usize {
        self.axes.iter().fold(self.channels, |n, a| n.saturating_mul(a.kernel))
    }

    /// `[batch, o_1, .., o_d, k_1, .., k_d, channels]`: the shape `unfold`
    /// writes and `fold` reads.
    pub fn patches_shape(&self) -> Shape {
        let mut dims = vec![self.batch];
        dims.extend(self.axes.iter().map(|a| a.output));
        dims.extend(self.axes.iter().map(|a| a.kernel));
        dims.push(self.channels);
        Shape::new(dims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_sizes_follow_the_convolution_formula() {
        // floor((input + pads - dilation·(kernel-1) - 1) / stride) + 1
        let a = WindowAxis::new(7, 3, 2, 1, 0, 0).unwrap();
        assert_eq!(a.output, 3);
        let a = WindowAxis::new(7, 3, 1, 2, 1, 1).unwrap();
        assert_eq!(a.output, 5);
        assert_eq!(a.source(0, 0), None);
        assert_eq!(a.source(0, 1), Some(1));
        assert_eq!(a.source(4, 2), None);
        assert!(WindowAxis::new(2, 3, 1, 1, 0, 0).is_err());
        assert!(WindowAxis::new(5, 0, 1, 1, 0, 0).is_err());
        assert!(WindowAxis::new(5, 2, 0, 1, 0, 0).is_err());
        assert!(WindowAxis::new(5, usize::MAX, 1, 2, 0, 0).is_err());
    }

    #[test]
    fn same_padding_gives_ceil_outputs() {
        for input in 1..12 {
            for kernel in 1..5 {
                for stride in 1..4 {
                    for dilation in 1..3 {
                        let (b, a) = Window::same_padding(input, kernel, stride, dilation);
                        assert!(a == b || a == b + 1);
                        let axis = WindowAxis::new(input, kernel, stride, dilation, b, a).unwrap();
                        assert_eq!(axis.output, input.div_ceil(stride), "{input} {kernel} {stride} {dilation}");
                    }
                }
            }
        }
    }
}
