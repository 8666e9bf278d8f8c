//! `unfold` (im2col) and `fold` (col2im) from candle ops: the image is padded
//! (with `pad_value` for `unfold`), flattened over its spatial axes, and the
//! patches are one `index_select` along that axis — `fold` is the matching
//! `index_add` into zeros, with the padding cut off afterwards. The same ops
//! run on every candle device.

use candle_core::Tensor;
use strata_core::{ConvSpec, DType, Result, Shape, Storage, UnfoldSpec, WindowAxis};

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

/// A window candle's own `conv2d` / `max_pool2d` can run: one or two
/// spatial axes (one is viewed as two with a unit height) with one stride
/// and one dilation for both.
struct Planar {
    /// Input height and width.
    h: usize,
    w: usize,
    kh: usize,
    kw: usize,
    oh: usize,
    ow: usize,
    stride: usize,
    dilation: usize,
    /// Zeros before and after (the cells windows read past the input) per axis.
    pad: [(usize, usize); 2],
}

impl Planar {
    fn of(spec: &UnfoldSpec) -> Option<Planar> {
        let (a, b) = match spec.axes.as_slice() {
            [b] => (None, b),
            [a, b] => (Some(a), b),
            _ => return None,
        };
        if a.is_some_and(|a| (a.stride, a.dilation) != (b.stride, b.dilation)) {
            return None;
        }
        let unit = WindowAxis { input: 1, kernel: 1, stride: b.stride, dilation: b.dilation, pad_before: 0, output: 1 };
        let a = a.unwrap_or(&unit);
        Some(Planar {
            h: a.input,
            w: b.input,
            kh: a.kernel,
            kw: b.kernel,
            oh: a.output,
            ow: b.output,
            stride: b.stride,
            dilation: b.dilation,
            pad: [(a.pad_before, pad_after(a)), (b.pad_before, pad_after(b))],
        })
    }

    fn padded(&self) -> bool {
        self.pad.iter().any(|&(b, a)| b + a > 0)
    }
}

impl CandleBackend {
    /// The image as NCHW, zero-padded by `p.pad`.
    fn nchw_padded(&self, x: &Storage, spec: &UnfoldSpec, p: &Planar) -> Result<Tensor> {
        let t = self.shaped(x, &spec.image_shape())?;
        let mut t = self.c(t.reshape((spec.batch, p.h, p.w, spec.channels)).and_then(|t| t.permute((0, 3, 1, 2))))?;
        for (axis, &(before, after)) in [2, 3].iter().zip(&p.pad) {
            if before + after > 0 {
                t = self.c(t.pad_with_zeros(*axis, before, after))?;
            }
        }
        Ok(t)
    }

    /// The kernel matrix `[kh·kw·c, f]` as candle's `[f, c, kh, kw]`.
    fn oihw(&self, w: &Storage, spec: &ConvSpec, p: &Planar) -> Result<Tensor> {
        let (c, f) = (spec.window.channels, spec.filters);
        let k = self.shaped(w, &Shape::from([p.kh * p.kw * c, f]))?;
        self.c(k.reshape((p.kh, p.kw, c, f)).and_then(|k| k.permute((3, 2, 0, 1))).and_then(|k| k.contiguous()))
    }

    /// `g` (`[positions, f]`, channels last) as NCHW.
    fn grad_nchw(&self, g: &Storage, spec: &ConvSpec, p: &Planar) -> Result<Tensor> {
        let t = self.shaped(g, &spec.output_shape())?;
        self.c(t.reshape((spec.window.batch, p.oh, p.ow, spec.filters)).and_then(|t| t.permute((0, 3, 1, 2))))
    }

    /// [`FastPaths::conv`](strata_core::FastPaths::conv) through candle's
    /// `conv2d` (im2col + matmul inside candle), or `None` for a window it
    /// cannot express (3-d, or different strides or dilations per axis).
    pub(crate) fn conv_impl(
        &self,
        x: &Storage,
        w: &Storage,
        b: Option<&Storage>,
        spec: &ConvSpec,
    ) -> Result<Option<Storage>> {
        let Some(p) = Planar::of(&spec.window) else { return Ok(None) };
        let out = spec.output_shape();
        if out.numel() == 0 || spec.window.patch_len() == 0 {
            return Ok(None);
        }
        self.probe_alloc("conv", out.numel(), DType::F32, &format_args!("shape {out}"))?;
        let xt = self.nchw_padded(x, &spec.window, &p)?;
        let k = self.oihw(w, spec, &p)?;
        let y = self.c(xt.conv2d(&k, 0, p.stride, p.dilation, 1))?;
        let mut y = self.c(y.permute((0, 2, 3, 1)).and_then(|y| y.reshape((spec.window.positions(), spec.filters))))?;
        if let Some(b) = b {
            let b = self.shaped(b, &Shape::from([spec.filters]))?;
            y = self.c(y.broadcast_add(&b))?;
        }
        let y = self.wrap(y)?;
        match spec.activation.unary() {
            Some(op) => Ok(Some(self.unary_impl(op, &y)?)),
            None => Ok(Some(y)),
        }
    }

    /// The image gradient of [`conv_impl`](Self::conv_impl): candle's
    /// `conv_transpose2d` of the output gradient, with the padding cut off.
    pub(crate) fn conv_input_grad_impl(&self, g: &Storage, w: &Storage, spec: &ConvSpec) -> Result<Option<Storage>> {
        let Some(p) = Planar::of(&spec.window) else { return Ok(None) };
        let image = spec.window.image_shape();
        if image.numel() == 0 || spec.output_shape().numel() == 0 {
            return Ok(None);
        }
        self.probe_alloc("conv_input_grad", image.numel(), DType::F32, &format_args!("shape {image}"))?;
        let gt = self.grad_nchw(g, spec, &p)?;
        let k = self.oihw(w, spec, &p)?;
        let mut gx = self.c(gt.conv_transpose2d(&k, 0, 0, p.stride, p.dilation))?;
        // The transposed convolution covers the cells the windows read; the
        // padded image may extend past them (cells no window reaches).
        for (axis, (&(before, after), size)) in [2, 3].iter().zip(p.pad.iter().zip([p.h, p.w])) {
            let covered = self.c(gx.dim(*axis))?;
            let full = before + size + after;
            if covered < full {
                gx = self.c(gx.pad_with_zeros(*axis, 0, full - covered))?;
            }
            if before + after > 0 || covered > full {
                gx = self.c(gx.narrow(*axis, before, size))?;
            }
        }
        let gx = self.c(gx.permute((0, 2, 3, 1)).and_then(|t| t.reshape(image.dims())))?;
        Ok(Some(self.wrap(gx)?))
    }

    /// The kernel gradient of [`conv_impl`](Self::conv_impl): the padded
    /// image, batch and channels swapped, convolved with the output gradient
    /// as the kernel (stride and dilation swap roles), cut to the kernel.
    pub(crate) fn conv_kernel_grad_impl(&self, x: &Storage, g: &Storage, spec: &ConvSpec) -> Result<Option<Storage>> {
        let Some(p) = Planar::of(&spec.window) else { return Ok(None) };
        if spec.output_shape().numel() == 0 || spec.window.patch_len() == 0 {
            return Ok(None);
        }
        let xt = self.nchw_padded(x, &spec.window, &p)?;
        let gt = self.grad_nchw(g, spec, &p)?;
        let gk = self.c(xt
            .transpose(0, 1)
            .and_then(|x| x.conv2d(&gt.transpose(0, 1)?, 0, p.dilation, p.stride, 1))
            .and_then(|k| k.narrow(2, 0, p.kh))
            .and_then(|k| k.narrow(3, 0, p.kw)))?;
        // [c, f, kh, kw] → [kh, kw, c, f], the kernel matrix's row order.
        let gk = self
            .c(gk.permute((2, 3, 0, 1)).and_then(|k| k.reshape((p.kh * p.kw * spec.window.channels, spec.filters))))?;
        Ok(Some(self.wrap(gk)?))
    }

    /// [`FastPaths::max_pool`](strata_core::FastPaths::max_pool) through
    /// candle's `max_pool2d`, or `None` where it does not apply (padding,
    /// dilation, 3-d windows).
    pub(crate) fn max_pool_impl(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Option<Storage>> {
        let Some(p) = Planar::of(spec) else { return Ok(None) };
        let out = spec.pooled_shape();
        if p.padded() || p.dilation != 1 || out.numel() == 0 {
            return Ok(None);
        }
        self.probe_alloc("max_pool", out.numel(), DType::F32, &format_args!("shape {out}"))?;
        let xt = self.nchw_padded(x, spec, &p)?;
        let y = self.c(xt.max_pool2d_with_stride((p.kh, p.kw), (p.stride, p.stride)))?;
        let y = self.c(y.permute((0, 2, 3, 1)).and_then(|y| y.reshape(out.dims())))?;
        Ok(Some(self.wrap(y)?))
    }

    /// The max-pooling gradient for windows that tile the image (stride =
    /// pool size, no padding or dilation): the windows are a reshaped view,
    /// so an arg-max over each, one-hot, times the gradient, reshaped back —
    /// no gather. `None` for other windows.
    pub(crate) fn max_pool_grad_impl(&self, x: &Storage, g: &Storage, spec: &UnfoldSpec) -> Result<Option<Storage>> {
        let Some(p) = Planar::of(spec) else { return Ok(None) };
        let image = spec.image_shape();
        let tiles = p.stride == p.kw && (spec.axes.len() == 1 || p.stride == p.kh) && p.dilation == 1 && !p.padded();
        if !tiles || image.numel() == 0 || spec.pooled_shape().numel() == 0 {
            return Ok(None);
        }
        let (n, c) = (spec.batch, spec.channels);
        let (kh, kw, oh, ow) = (p.kh, p.kw, p.oh, p.ow);
        let t = self.shaped(x, &image)?;
        let t = self.c(t.reshape((n, p.h, p.w, c)))?;
        let t = self.c(t.narrow(1, 0, oh * kh).and_then(|t| t.narrow(2, 0, ow * kw)))?;
        // [n, oh, kh, ow, kw, c] → [n, oh, ow, c, kh·kw]: each window's cells in window order.
        let windows = self
            .c(t.reshape((n, oh, kh, ow, kw, c))
                .and_then(|t| t.permute((0, 1, 3, 5, 2, 4)))
                .and_then(|t| t.reshape((n * oh * ow * c, kh * kw))))?;
        let best = self.c(windows.argmax_keepdim(1))?;
        let range =
            self.c(Tensor::arange(0u32, (kh * kw) as u32, self.device()).and_then(|r| r.reshape((1, kh * kw))))?;
        let hot = self.c(best.broadcast_eq(&range).and_then(|h| h.to_dtype(candle_core::DType::F32)))?;
        let gt = self.shaped(g, &spec.pooled_shape())?;
        let gt = self.c(gt.reshape((n * oh * ow * c, 1)))?;
        let spread = self.c(hot.broadcast_mul(&gt))?;
        let mut gx = self.c(spread
            .reshape((n, oh, ow, c, kh, kw))
            .and_then(|t| t.permute((0, 1, 4, 2, 5, 3)))
            .and_then(|t| t.reshape((n, oh * kh, ow * kw, c))))?;
        if oh * kh < p.h {
            gx = self.c(gx.pad_with_zeros(1, 0, p.h - oh * kh))?;
        }
        if ow * kw < p.w {
            gx = self.c(gx.pad_with_zeros(2, 0, p.w - ow * kw))?;
        }
        let gx = self.c(gx.reshape(image.dims()))?;
        Ok(Some(self.wrap(gx)?))
    }
}

#[cfg(test)]
mod tests {
    use strata_core::{fast_path_defaults as defaults, Backend, LinearActivation, Rng, Window};

    use super::*;

    fn storage(b: &CandleBackend, rng: &mut Rng, n: usize) -> Storage {
        b.upload_f32((0..n).map(|_| rng.uniform() * 2.0 - 1.0).collect()).unwrap()
    }

    fn close(what: &str, b: &CandleBackend, got: &Storage, want: &Storage) {
        let (g, w) = (b.download_f32(got).unwrap(), b.download_f32(want).unwrap());
        assert_eq!(g.len(), w.len(), "{what}: lengths");
        for (i, (x, y)) in g.iter().zip(&w).enumerate() {
            assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{what}[{i}]: {x} vs {y}");
        }
    }

    /// The candle-op convolution and its gradients (used off the CPU) agree
    /// with the defaults from `unfold`, `fold` and matmul on the CPU, for
    /// 1-d and 2-d windows with strides, dilation and asymmetric padding;
    /// windows they cannot express fall back.
    #[test]
    fn candle_convolutions_match_the_defaults() {
        let b = CandleBackend::new(candle_core::Device::Cpu);
        let mut rng = Rng::seed(3);
        let cases = [
            (Window::new(&[3, 3]), vec![2, 7, 6, 3]),
            (Window::new(&[3, 2]).strides(&[2, 2]).padding(&[(1, 1), (0, 1)]), vec![2, 7, 6, 2]),
            (Window::new(&[2, 3]).dilation(&[2, 2]).padding(&[(1, 0), (2, 2)]), vec![1, 6, 5, 2]),
            (Window::new(&[4]).strides(&[3]).padding(&[(1, 2)]), vec![3, 11, 2]),
        ];
        for (window, dims) in cases {
            let d = window.rank();
            let axes = window.axes(&dims[1..d + 1]).unwrap();
            let unfold = UnfoldSpec { batch: dims[0], channels: dims[d + 1], axes, pad_value: 0.0 };
            let spec = ConvSpec { window: unfold, filters: 4, activation: LinearActivation::Tanh };
            let lin = spec.linear_spec();
            let x = storage(&b, &mut rng, dims.iter().product());
            let w = storage(&b, &mut rng, lin.k * lin.n);
            let bias = storage(&b, &mut rng, lin.n);
            let g = storage(&b, &mut rng, lin.m * lin.n);
            let what = format!("{window:?} over {dims:?}");
            let y = b.conv_impl(&x, &w, Some(&bias), &spec).unwrap().expect("a planar window");
            close(&format!("conv {what}"), &b, &y, &defaults::conv(&b, &x, &w, Some(&bias), &spec).unwrap());
            let gx = b.conv_input_grad_impl(&g, &w, &spec).unwrap().unwrap();
            close(&format!("input grad {what}"), &b, &gx, &defaults::conv_input_grad(&b, &g, &w, &spec).unwrap());
            let gk = b.conv_kernel_grad_impl(&x, &g, &spec).unwrap().unwrap();
            close(&format!("kernel grad {what}"), &b, &gk, &defaults::conv_kernel_grad(&b, &x, &g, &spec).unwrap());
        }
        let axes = Window::new(&[2, 2]).strides(&[1, 2]).axes(&[4, 4]).unwrap();
        let spec = ConvSpec {
            window: UnfoldSpec { batch: 1, channels: 1, axes, pad_value: 0.0 },
            filters: 1,
            activation: LinearActivation::Identity,
        };
        let x = storage(&b, &mut rng, 16);
        let w = storage(&b, &mut rng, 4);
        assert!(b.conv_impl(&x, &w, None, &spec).unwrap().is_none(), "per-axis strides fall back");
    }
}
