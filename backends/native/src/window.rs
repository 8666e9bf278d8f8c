//! `unfold` (im2col) and `fold` (col2im) on channels-last `f32` buffers.
//!
//! Both kernels view every window as three-dimensional, with size-1 axes in
//! front of the real ones, so one loop nest serves 1-d, 2-d and 3-d windows.
//! `unfold` splits its output into rows, one per `(batch, o_1, o_2)`, across
//! threads; within a row each `(o_3, k_1, k_2)` step copies a run of
//! `k_3 · channels` values at once when the run lies inside the image and the
//! last axis is not dilated (the common case), else cell by cell.
//! `fold` gives each thread whole batch items, so no two threads add into the
//! same cell.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;
use strata_core::{ConvSpec, LinearActivation, UnfoldSpec, WindowAxis};

use crate::elementwise::bias_act;
use crate::layout::{simd, uninit_vec, PAR_CHUNK, PAR_THRESHOLD};
use crate::matmul::gemm_one;

/// Sentinel in the source tables for a cell in the padding.
const PAD: usize = usize::MAX;

/// The spec's axes with size-1 axes in front, making three.
fn axes3(spec: &UnfoldSpec) -> [WindowAxis; 3] {
    let unit = WindowAxis { input: 1, kernel: 1, stride: 1, dilation: 1, pad_before: 0, output: 1 };
    let mut out = [unit; 3];
    let d = spec.axes.len().min(3);
    out[3 - d..].copy_from_slice(&spec.axes[spec.axes.len() - d..]);
    out
}

/// `table[o * kernel + k]`: the input coordinate window position `o` reads
/// at kernel offset `k`, or [`PAD`].
fn sources(a: &WindowAxis) -> Vec<usize> {
    (0..a.output).flat_map(|o| (0..a.kernel).map(move |k| a.source(o, k).unwrap_or(PAD))).collect()
}

#[inline(always)]
fn put(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    /// A copy of a length known at compile time: a few moves, not a call.
    #[inline(always)]
    fn fixed<const N: usize>(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
        let (d, s) = (&mut dst[..N], &src[..N]);
        for i in 0..N {
            d[i].write(s[i]);
        }
    }
    // Runs of a 3-wide kernel over 1 to 4 channels are 3 to 12 values:
    // `memcpy` calls for them cost more than the copying.
    match src.len().min(dst.len()) {
        1 => fixed::<1>(dst, src),
        2 => fixed::<2>(dst, src),
        3 => fixed::<3>(dst, src),
        4 => fixed::<4>(dst, src),
        5 => fixed::<5>(dst, src),
        6 => fixed::<6>(dst, src),
        7 => fixed::<7>(dst, src),
        8 => fixed::<8>(dst, src),
        9 => fixed::<9>(dst, src),
        12 => fixed::<12>(dst, src),
        16 => fixed::<16>(dst, src),
        _ => {
            for (d, &s) in dst.iter_mut().zip(src) {
                d.write(s);
            }
        }
    }
}

#[inline(always)]
fn fill(dst: &mut [MaybeUninit<f32>], v: f32) {
    for d in dst {
        d.write(v);
    }
}

/// A window's geometry over channels-last buffers, every window viewed as
/// three-dimensional. An unfold "row" is one `(batch, o_1, o_2)`: the
/// patches of `a2.output` consecutive window positions.
struct Geometry {
    a: [WindowAxis; 3],
    /// Source tables of the three axes (see [`sources`]).
    t: [Vec<usize>; 3],
    c: usize,
    /// Element strides of the image's first two spatial axes.
    s0: usize,
    s1: usize,
    /// Elements per image.
    image: usize,
    /// Elements per window (`k_0 · k_1 · k_2 · c`).
    patch: usize,
    /// Elements per unfold row (`o_2 · patch`).
    row_len: usize,
    /// Unfold rows per image (`o_0 · o_1`).
    rows_per_image: usize,
    pad: f32,
}

impl Geometry {
    fn new(spec: &UnfoldSpec) -> Geometry {
        let a = axes3(spec);
        let c = spec.channels;
        let (s1, s0) = (a[2].input * c, a[1].input * a[2].input * c);
        let patch = a[0].kernel * a[1].kernel * a[2].kernel * c;
        Geometry {
            t: [sources(&a[0]), sources(&a[1]), sources(&a[2])],
            c,
            s0,
            s1,
            image: a[0].input * s0,
            patch,
            row_len: a[2].output * patch,
            rows_per_image: a[0].output * a[1].output,
            pad: spec.pad_value as f32,
            a,
        }
    }

    /// `(batch, o_0, o_1)` of unfold row `r` (counted over the whole batch).
    #[inline(always)]
    fn coords(&self, r: usize) -> (usize, usize, usize) {
        let o1 = r % self.a[1].output;
        let o0 = (r / self.a[1].output) % self.a[0].output;
        (r / self.rows_per_image, o0, o1)
    }

    /// Calls `f` for each cell of the window at position `(o0, o1, o2)`, in
    /// window order (outer kernel offsets first): the cell's offset within
    /// its image, or `None` for a padding cell.
    #[inline(always)]
    fn for_each_cell(&self, (o0, o1, o2): (usize, usize, usize), mut f: impl FnMut(Option<usize>)) {
        let [a0, a1, a2] = &self.a;
        let [t0, t1, t2] = &self.t;
        for &i0 in &t0[o0 * a0.kernel..(o0 + 1) * a0.kernel] {
            for &i1 in &t1[o1 * a1.kernel..(o1 + 1) * a1.kernel] {
                for &i2 in &t2[o2 * a2.kernel..(o2 + 1) * a2.kernel] {
                    let inside = i0 != PAD && i1 != PAD && i2 != PAD;
                    f(inside.then(|| i0 * self.s0 + i1 * self.s1 + i2 * self.c));
                }
            }
        }
    }

    /// Writes unfold row `r` (over the whole batch) of the images `x` into `dst`.
    fn fill_row(&self, x: &[f32], r: usize, dst: &mut [MaybeUninit<f32>]) {
        let [_, a1, a2] = &self.a;
        let [t0, t1, t2] = &self.t;
        let (c, pad) = (self.c, self.pad);
        let run = a2.kernel * c;
        let (b, o0, o1) = self.coords(r);
        let (k0, k1) = (self.a[0].kernel, a1.kernel);
        let mut at = 0;
        for o2 in 0..a2.output {
            // The run's first input coordinate along the last axis, if the
            // whole undilated run lies inside the image.
            let first = (o2 * a2.stride).checked_sub(a2.pad_before).filter(|&f| f + a2.kernel <= a2.input);
            let contiguous = a2.dilation == 1 && first.is_some();
            for &i0 in &t0[o0 * k0..(o0 + 1) * k0] {
                for &i1 in &t1[o1 * k1..(o1 + 1) * k1] {
                    let seg = &mut dst[at..at + run];
                    at += run;
                    if i0 == PAD || i1 == PAD {
                        fill(seg, pad);
                        continue;
                    }
                    let base = b * self.image + i0 * self.s0 + i1 * self.s1;
                    match first {
                        Some(f) if contiguous => put(seg, &x[base + f * c..base + f * c + run]),
                        _ => {
                            for (k2, cell) in seg.chunks_mut(c).enumerate() {
                                match t2[o2 * a2.kernel + k2] {
                                    PAD => fill(cell, pad),
                                    i2 => put(cell, &x[base + i2 * c..base + (i2 + 1) * c]),
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    /// Adds unfold row `r` of one image (`r < rows_per_image`), `src`, back
    /// into that image, `dst`, at the cells it was read from.
    fn add_row(&self, r: usize, src: &[f32], dst: &mut [f32]) {
        let c = self.c;
        let (_, o0, o1) = self.coords(r);
        let mut at = 0;
        for o2 in 0..self.a[2].output {
            self.for_each_cell((o0, o1, o2), |cell| {
                if let Some(d) = cell {
                    for (a, &v) in dst[d..d + c].iter_mut().zip(&src[at..at + c]) {
                        *a += v;
                    }
                }
                at += c;
            });
        }
    }
}

/// Patches `[batch, o.., k.., channels]` of the image `x` (`[batch, s.., channels]`).
pub(crate) fn unfold(x: &[f32], spec: &UnfoldSpec) -> Vec<f32> {
    let g = Geometry::new(spec);
    let row_len = g.row_len;
    let total = spec.batch * g.rows_per_image * row_len;
    if total == 0 {
        return Vec::new();
    }
    let fill_all = |out: &mut [MaybeUninit<f32>]| {
        if total >= PAR_THRESHOLD {
            let rows_per_task = PAR_CHUNK.div_ceil(row_len);
            out.par_chunks_mut(rows_per_task * row_len).enumerate().for_each(|(t, chunk)| {
                for (i, dst) in chunk.chunks_mut(row_len).enumerate() {
                    g.fill_row(x, t * rows_per_task + i, dst);
                }
            });
        } else {
            for (r, dst) in out.chunks_mut(row_len).enumerate() {
                g.fill_row(x, r, dst);
            }
        }
    };
    // SAFETY: the rows tile the `total` elements and `fill_row` writes every
    // element of its row: `a0.kernel · a1.kernel · a2.output` runs of `run`.
    unsafe { uninit_vec(total, fill_all) }
}

/// The image `[batch, s.., channels]` with every patch entry of `cols`
/// (`[batch, o.., k.., channels]`) added at the cell it was read from.
pub(crate) fn fold(cols: &[f32], spec: &UnfoldSpec) -> Vec<f32> {
    let g = Geometry::new(spec);
    let image = g.image;
    let patches = g.rows_per_image * g.row_len;
    let mut out = crate::pool::take(spec.batch * image);
    out.resize(spec.batch * image, 0.0);
    if out.is_empty() || patches == 0 {
        return out;
    }
    let one = |dst: &mut [f32], src: &[f32]| {
        for (r, row) in src.chunks_exact(g.row_len).enumerate() {
            g.add_row(r, row, dst);
        }
    };
    if spec.batch > 1 && cols.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(image).zip(cols.par_chunks(patches)).for_each(|(dst, src)| one(dst, src));
    } else {
        for (dst, src) in out.chunks_mut(image).zip(cols.chunks(patches)) {
            one(dst, src);
        }
    }
    out
}

/// Patch elements unfolded at a time by the fused convolution kernels: a
/// band of unfold rows goes into a per-thread buffer of about this size
/// (256 KB, cache-resident) and is multiplied right away, so the whole
/// batch's patches never exist at once.
const BAND_ELEMS: usize = 64 * 1024;

/// Bands of the kernel gradient are summed in this many fixed groups, then
/// the groups in order: the same bits on any number of threads.
const KERNEL_GRAD_GROUPS: usize = 8;

thread_local! {
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's patch buffer, grown to `len` elements.
fn with_scratch<R>(len: usize, f: impl FnOnce(&mut [f32]) -> R) -> R {
    SCRATCH.with(|s| match s.try_borrow_mut() {
        Ok(mut s) => {
            if s.len() < len {
                s.resize(len, 0.0);
            }
            f(&mut s[..len])
        }
        // Re-entered on this thread (cannot happen with the kernels below,
        // which do not nest parallel work): a buffer of its own.
        Err(_) => f(&mut vec![0.0; len]),
    })
}

/// `s` viewed as uninitialised cells, to be overwritten.
fn as_uninit(s: &mut [f32]) -> &mut [MaybeUninit<f32>] {
    // SAFETY: `MaybeUninit<f32>` has the layout of `f32`; writing through
    // the view keeps every element initialised.
    unsafe { std::slice::from_raw_parts_mut(s.as_mut_ptr().cast(), s.len()) }
}

/// Bands of `band_rows` unfold rows, and how many rows.
fn bands(g: &Geometry, batch: usize) -> (usize, usize) {
    let rows = batch * g.rows_per_image;
    ((BAND_ELEMS / g.row_len.max(1)).max(1), rows)
}

/// `act(unfold(x) · w + b)` (see [`ConvSpec`]), one band of unfold rows at
/// a time: each band's patches are unfolded into a per-thread buffer and
/// multiplied into their output rows, then the bias and activation run on
/// those rows while they are in cache. Bands are split across threads.
pub(crate) fn conv(x: &[f32], w: &[f32], b: Option<&[f32]>, spec: &ConvSpec) -> Vec<f32> {
    let g = Geometry::new(&spec.window);
    let (n, k, act) = (spec.filters, g.patch, spec.activation);
    let per_row = g.a[2].output;
    let (band_rows, rows) = bands(&g, spec.window.batch);
    let out_row = per_row * n;
    let total = rows * out_row;
    if total == 0 {
        return Vec::new();
    }
    let epilogue = |d: &mut [f32]| {
        simd(
            #[inline(always)]
            || bias_act(d, b, act),
        )
    };
    let fused = b.is_some() || act != LinearActivation::Identity;
    let band = |i: usize, dst: &mut [MaybeUninit<f32>]| {
        let (r0, nr) = (i * band_rows, dst.len() / out_row);
        with_scratch(nr * g.row_len, |cols| {
            for (j, row) in as_uninit(cols).chunks_mut(g.row_len).enumerate() {
                g.fill_row(x, r0 + j, row);
            }
            let epi = fused.then_some(&epilogue as &(dyn Fn(&mut [f32]) + Sync));
            gemm_one(dst, cols, w, nr * per_row, n, k, false, false, Parallelism::None, epi);
        });
    };
    let fill_all = |out: &mut [MaybeUninit<f32>]| {
        if rows > band_rows && rayon::current_num_threads() > 1 {
            out.par_chunks_mut(band_rows * out_row).enumerate().for_each(|(i, d)| band(i, d));
        } else {
            for (i, d) in out.chunks_mut(band_rows * out_row).enumerate() {
                band(i, d);
            }
        }
    };
    // SAFETY: the bands tile the output and `gemm_one` writes every element
    // of its band (`nr · per_row` rows of `n`).
    unsafe { uninit_vec(total, fill_all) }
}

/// The image gradient of [`conv`]: `fold(g · wᵀ)`, one band of unfold rows
/// at a time within each image (images split across threads, so no two
/// threads add into the same cell).
pub(crate) fn conv_input_grad(grad: &[f32], w: &[f32], spec: &ConvSpec) -> Vec<f32> {
    let g = Geometry::new(&spec.window);
    let (n, k) = (spec.filters, g.patch);
    let per_row = g.a[2].output;
    let batch = spec.window.batch;
    let mut out = crate::pool::take(batch * g.image);
    out.resize(batch * g.image, 0.0);
    let (band_rows, _) = bands(&g, batch);
    let band_rows = band_rows.min(g.rows_per_image);
    let out_per_image = g.rows_per_image * per_row * n;
    if out.is_empty() || out_per_image == 0 || k == 0 {
        return out;
    }
    let one = |dst: &mut [f32], src: &[f32]| {
        for (i, gb) in src.chunks(band_rows * per_row * n).enumerate() {
            let nr = gb.len() / (per_row * n);
            with_scratch(nr * g.row_len, |cols| {
                gemm_one(as_uninit(cols), gb, w, nr * per_row, k, n, false, true, Parallelism::None, None);
                for (j, row) in cols.chunks_exact(g.row_len).enumerate() {
                    g.add_row(i * band_rows + j, row, dst);
                }
            });
        }
    };
    if batch > 1 && rayon::current_num_threads() > 1 {
        out.par_chunks_mut(g.image).zip(grad.par_chunks(out_per_image)).for_each(|(d, s)| one(d, s));
    } else {
        for (d, s) in out.chunks_mut(g.image).zip(grad.chunks(out_per_image)) {
            one(d, s);
        }
    }
    out
}

/// The kernel gradient of [`conv`]: `unfold(x)ᵀ · g` (`patch × filters`),
/// accumulated band by band. The bands fall into a fixed number of groups,
/// each summed into its own matrix on some thread, and the groups are then
/// added in order, so the result does not depend on the thread count.
pub(crate) fn conv_kernel_grad(x: &[f32], grad: &[f32], spec: &ConvSpec) -> Vec<f32> {
    let g = Geometry::new(&spec.window);
    let (n, k) = (spec.filters, g.patch);
    let per_row = g.a[2].output;
    let (band_rows, rows) = bands(&g, spec.window.batch);
    let count = rows.div_ceil(band_rows);
    let groups = count.min(KERNEL_GRAD_GROUPS);
    if groups == 0 || k * n == 0 || per_row == 0 {
        return vec![0.0; k * n];
    }
    let per_group = count.div_ceil(groups);
    let group = |gi: usize| {
        let mut acc = vec![0.0f32; k * n];
        for bi in gi * per_group..((gi + 1) * per_group).min(count) {
            let r0 = bi * band_rows;
            let nr = band_rows.min(rows - r0);
            let m = nr * per_row;
            let gb = &grad[r0 * per_row * n..(r0 * per_row + m) * n];
            with_scratch(nr * g.row_len, |cols| {
                for (j, row) in as_uninit(cols).chunks_mut(g.row_len).enumerate() {
                    g.fill_row(x, r0 + j, row);
                }
                // SAFETY: `acc` is `k × n` (row stride `n`), written and read
                // in place (`read_dst`: acc = acc + colsᵀ·gb); `cols` holds
                // `m × k` (read as `k × m`: row stride 1, column stride `k`)
                // and `gb` `m × n` (row stride `n`), all in bounds.
                unsafe {
                    gemm::gemm(
                        k,
                        n,
                        m,
                        acc.as_mut_ptr(),
                        1,
                        n as isize,
                        true,
                        cols.as_ptr(),
                        k as isize,
                        1,
                        gb.as_ptr(),
                        1,
                        n as isize,
                        1.0f32,
                        1.0f32,
                        false,
                        false,
                        false,
                        Parallelism::None,
                    );
                }
            });
        }
        acc
    };
    let partials: Vec<Vec<f32>> = if rayon::current_num_threads() > 1 {
        (0..groups).into_par_iter().map(group).collect()
    } else {
        (0..groups).map(group).collect()
    };
    let mut parts = partials.into_iter();
    let mut out = parts.next().unwrap_or_else(|| vec![0.0; k * n]);
    for p in parts {
        for (o, v) in out.iter_mut().zip(&p) {
            *o += v;
        }
    }
    out
}

/// Max pooling: per window and channel, the largest value (padding cells
/// never win); `[batch, o.., channels]`.
pub(crate) fn max_pool(x: &[f32], spec: &UnfoldSpec) -> Vec<f32> {
    let g = Geometry::new(spec);
    let c = g.c;
    let out_row = g.a[2].output * c;
    let rows = spec.batch * g.rows_per_image;
    let total = rows * out_row;
    if total == 0 {
        return Vec::new();
    }
    // One pass per row of outputs, compiled for the CPU's vector width: the
    // first cell of each window inside the image is copied, the others
    // folded in with an elementwise maximum.
    let fill_rows = |r0: usize, chunk: &mut [MaybeUninit<f32>]| {
        simd(
            #[inline(always)]
            || {
                for (i, dst) in chunk.chunks_mut(out_row).enumerate() {
                    let (b, o0, o1) = g.coords(r0 + i);
                    let image = &x[b * g.image..(b + 1) * g.image];
                    for (o2, cell) in dst.chunks_mut(c).enumerate() {
                        let mut first = true;
                        g.for_each_cell((o0, o1, o2), |at| {
                            let Some(at) = at else { return };
                            let src = &image[at..at + c];
                            if first {
                                put(cell, src);
                                first = false;
                            } else {
                                // SAFETY: `cell` was written whole by `put` above.
                                let cell = unsafe { &mut *(cell as *mut [MaybeUninit<f32>] as *mut [f32]) };
                                for (m, &v) in cell.iter_mut().zip(src) {
                                    *m = if v > *m { v } else { *m };
                                }
                            }
                        });
                        if first {
                            // Every cell of the window is padding.
                            fill(cell, f32::NEG_INFINITY);
                        }
                    }
                }
            },
        )
    };
    let fill_all = |out: &mut [MaybeUninit<f32>]| {
        if total >= PAR_THRESHOLD {
            let rows_per_task = PAR_CHUNK.div_ceil(out_row);
            out.par_chunks_mut(rows_per_task * out_row)
                .enumerate()
                .for_each(|(t, chunk)| fill_rows(t * rows_per_task, chunk));
        } else {
            fill_rows(0, out);
        }
    };
    // SAFETY: every output row is `a2.output` cells of `c`, each written
    // whole (by `put` from its first cell inside the image, else by `fill`).
    unsafe { uninit_vec(total, fill_all) }
}

/// The gradient of [`max_pool`]: each window's gradient is added at the
/// first cell (window order, padding cells included as `-∞`) holding its
/// maximum, as the arg-max of the unfolded window picks it; a padding cell
/// drops it. Images are split across threads.
pub(crate) fn max_pool_grad(x: &[f32], grad: &[f32], spec: &UnfoldSpec) -> Vec<f32> {
    let g = Geometry::new(spec);
    let c = g.c;
    let per_row = g.a[2].output;
    let mut out = crate::pool::take(spec.batch * g.image);
    out.resize(spec.batch * g.image, 0.0);
    let per_image = g.rows_per_image * per_row * c;
    if out.is_empty() || per_image == 0 {
        return out;
    }
    // Per window, 64 channels at a time: the running maximum and the cell
    // holding it (`PAD` for a padding cell, which drops the gradient).
    let one = |dst: &mut [f32], src: &[f32], img: &[f32]| {
        simd(
            #[inline(always)]
            || {
                let mut best = [0.0f32; 64];
                let mut at = [PAD; 64];
                for r in 0..g.rows_per_image {
                    let (_, o0, o1) = g.coords(r);
                    for o2 in 0..per_row {
                        let gpos = &src[(r * per_row + o2) * c..][..c];
                        for c0 in (0..c).step_by(64) {
                            let w = (c - c0).min(64);
                            let mut first = true;
                            g.for_each_cell((o0, o1, o2), |cell| {
                                match cell {
                                    None if first => {
                                        best[..w].fill(f32::NEG_INFINITY);
                                        at[..w].fill(PAD);
                                    }
                                    None => {}
                                    Some(cell) => {
                                        let vals = &img[cell + c0..cell + c0 + w];
                                        for j in 0..w {
                                            if first || vals[j] > best[j] {
                                                best[j] = vals[j];
                                                at[j] = cell + c0 + j;
                                            }
                                        }
                                    }
                                }
                                first = false;
                            });
                            for j in 0..w {
                                if at[j] != PAD {
                                    dst[at[j]] += gpos[c0 + j];
                                }
                            }
                        }
                    }
                }
            },
        )
    };
    if spec.batch > 1 && rayon::current_num_threads() > 1 {
        let images = out.par_chunks_mut(g.image).zip(grad.par_chunks(per_image)).zip(x.par_chunks(g.image));
        images.for_each(|((d, s), img)| one(d, s, img));
    } else {
        for ((d, s), img) in out.chunks_mut(g.image).zip(grad.chunks(per_image)).zip(x.chunks(g.image)) {
            one(d, s, img);
        }
    }
    out
}
