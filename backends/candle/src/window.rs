//! `unfold` (im2col) and `fold` (col2im) from candle ops: the image is padded
//! (with `pad_value` for `unfold`), flattened over its spatial axes, and the
//! patches are one `index_select` along that axis — `fold` is the matching
//! `index_add` into zeros, with the padding cut off afterwards. The same ops
//! run on every candle device.

use candle_core::Tensor;
use strata_core::{DType, Result, Storage, UnfoldSpec, WindowAxis};

use crate::CandleBackend;

/// The cells a window reads past the end of the input, beyond `pad_before`
/// and the input itself.
fn pad_after(a: &WindowAxis) -> usize {
    let last = a.output.saturating_sub(1) * a.stride + a.kernel.saturating_sub(1) * a.dilation + 1;
    last.saturating_sub(a.pad_before + a.input)
}

/// The padded image's spatial sizes.
fn padded(spec: &UnfoldSpec) -> Vec<usize> {
    spec.axes.iter().map(|a| a.pad_before + a.input + pad_after(a)).collect()
}

/// For every `(o.., k..)` in patch order, the flat index of the padded cell
/// it reads.
fn patch_sources(spec: &UnfoldSpec) -> Vec<i64> {
    let sizes = padded(spec);
    let d = sizes.len();
    let mut strides = vec![1usize; d];
    for a in (0..d.saturating_sub(1)).rev() {
        strides[a] = strides[a + 1] * sizes[a + 1];
    }
    // Offsets of the window positions, then of the kernel taps, each as an
    // outer sum over the axes.
    let mut starts = vec![0usize];
    for (a, ax) in spec.axes.iter().enumerate() {
        let step = ax.stride * strides[a];
        starts = starts.iter().flat_map(|&s| (0..ax.output).map(move |o| s + o * step)).collect();
    }
    let mut taps = vec![0usize];
    for (a, ax) in spec.axes.iter().enumerate() {
        let step = ax.dilation * strides[a];
        taps = taps.iter().flat_map(|&t| (0..ax.kernel).map(move |k| t + k * step)).collect();
    }
    starts.iter().flat_map(|&s| taps.iter().map(move |&t| (s + t) as i64)).collect()
}

impl CandleBackend {
    fn patch_index(&self, spec: &UnfoldSpec) -> Result<Tensor> {
        let idx = patch_sources(spec);
        let n = idx.len();
        self.c(Tensor::from_vec(idx, n, self.device()))
    }

    pub(crate) fn unfold_impl(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        self.expect_dtype("unfold", x, DType::F32)?;
        let out = spec.patches_shape();
        if out.numel() == 0 {
            return self.empty(DType::F32);
        }
        self.probe_alloc("unfold", out.numel(), DType::F32, &format_args!("shape {out}"))?;
        let mut t = self.shaped(x, &spec.image_shape())?;
        for (i, a) in spec.axes.iter().enumerate() {
            let (before, after) = (a.pad_before, pad_after(a));
            if before + after == 0 {
                continue;
            }
            t = if spec.pad_value == 0.0 {
                self.c(t.pad_with_zeros(i + 1, before, after))?
            } else {
                let mut parts = Vec::with_capacity(3);
                for (n, is_pad) in [(before, true), (0, false), (after, true)] {
                    if !is_pad {
                        parts.push(t.clone());
                    } else if n > 0 {
                        let mut dims = t.dims().to_vec();
                        dims[i + 1] = n;
                        parts.push(self.c(Tensor::full(spec.pad_value as f32, dims, self.device()))?);
                    }
                }
                self.c(Tensor::cat(&parts, i + 1))?
            };
        }
        let cells: usize = padded(spec).iter().product();
        let flat = self.c(t.reshape((spec.batch, cells, spec.channels)))?;
        let idx = self.patch_index(spec)?;
        self.wrap(self.c(flat.index_select(&idx, 1))?)
    }

    pub(crate) fn fold_impl(&self, cols: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        self.expect_dtype("fold", cols, DType::F32)?;
        let image = spec.image_shape();
        if image.numel() == 0 {
            return self.empty(DType::F32);
        }
        self.probe_alloc("fold", image.numel(), DType::F32, &format_args!("shape {image}"))?;
        let sizes = padded(spec);
        let cells: usize = sizes.iter().product();
        let mut t =
            self.c(Tensor::zeros((spec.batch, cells, spec.channels), candle_core::DType::F32, self.device()))?;
        if spec.patches_shape().numel() > 0 {
            let idx = self.patch_index(spec)?;
            let src = self.shaped(cols, &strata_core::Shape::from([spec.batch, idx.elem_count(), spec.channels]))?;
            t = self.c(t.index_add(&idx, &src, 1))?;
        }
        let mut dims = vec![spec.batch];
        dims.extend(&sizes);
        dims.push(spec.channels);
        let mut t = self.c(t.reshape(dims))?;
        for (i, a) in spec.axes.iter().enumerate() {
            if a.pad_before > 0 || pad_after(a) > 0 {
                t = self.c(t.narrow(i + 1, a.pad_before, a.input))?;
            }
        }
        self.wrap(t)
    }
}
