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

use std::mem::MaybeUninit;

use rayon::prelude::*;
use strata_core::{UnfoldSpec, WindowAxis};

use crate::layout::{uninit_vec, PAR_CHUNK, PAR_THRESHOLD};

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

fn put(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    for (d, &s) in dst.iter_mut().zip(src) {
        d.write(s);
    }
}

fn fill(dst: &mut [MaybeUninit<f32>], v: f32) {
    for d in dst {
        d.write(v);
    }
}

/// Patches `[batch, o.., k.., channels]` of the image `x` (`[batch, s.., channels]`).
pub(crate) fn unfold(x: &[f32], spec: &UnfoldSpec) -> Vec<f32> {
    let [a0, a1, a2] = axes3(spec);
    let c = spec.channels;
    let (t0, t1, t2) = (sources(&a0), sources(&a1), sources(&a2));
    let (s1, s0) = (a2.input * c, a1.input * a2.input * c);
    let sb = a0.input * s0;
    let run = a2.kernel * c;
    let row_len = a2.output * a0.kernel * a1.kernel * run;
    let rows = spec.batch * a0.output * a1.output;
    let total = rows * row_len;
    let pad = spec.pad_value as f32;
    if total == 0 {
        return Vec::new();
    }
    let fill_row = |r: usize, dst: &mut [MaybeUninit<f32>]| {
        let o1 = r % a1.output;
        let o0 = (r / a1.output) % a0.output;
        let b = r / (a1.output * a0.output);
        let mut at = 0;
        for o2 in 0..a2.output {
            // The run's first input coordinate along the last axis, if the
            // whole undilated run lies inside the image.
            let first = (o2 * a2.stride).checked_sub(a2.pad_before).filter(|&f| f + a2.kernel <= a2.input);
            let contiguous = a2.dilation == 1 && first.is_some();
            for &i0 in &t0[o0 * a0.kernel..(o0 + 1) * a0.kernel] {
                for &i1 in &t1[o1 * a1.kernel..(o1 + 1) * a1.kernel] {
                    let seg = &mut dst[at..at + run];
                    at += run;
                    if i0 == PAD || i1 == PAD {
                        fill(seg, pad);
                        continue;
                    }
                    let base = b * sb + i0 * s0 + i1 * s1;
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
    };
    let fill_all = |out: &mut [MaybeUninit<f32>]| {
        if total >= PAR_THRESHOLD {
            let rows_per_task = PAR_CHUNK.div_ceil(row_len);
            out.par_chunks_mut(rows_per_task * row_len).enumerate().for_each(|(t, chunk)| {
                for (i, dst) in chunk.chunks_mut(row_len).enumerate() {
                    fill_row(t * rows_per_task + i, dst);
                }
            });
        } else {
            for (r, dst) in out.chunks_mut(row_len).enumerate() {
                fill_row(r, dst);
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
    let [a0, a1, a2] = axes3(spec);
    let c = spec.channels;
    let (t0, t1, t2) = (sources(&a0), sources(&a1), sources(&a2));
    let (s1, s0) = (a2.input * c, a1.input * a2.input * c);
    let image = a0.input * s0;
    let patches = a0.output * a1.output * a2.output * a0.kernel * a1.kernel * a2.kernel * c;
    let mut out = crate::pool::take(spec.batch * image);
    out.resize(spec.batch * image, 0.0);
    if out.is_empty() || patches == 0 {
        return out;
    }
    let one = |dst: &mut [f32], src: &[f32]| {
        let mut at = 0;
        for o0 in 0..a0.output {
            for o1 in 0..a1.output {
                for o2 in 0..a2.output {
                    for &i0 in &t0[o0 * a0.kernel..(o0 + 1) * a0.kernel] {
                        for &i1 in &t1[o1 * a1.kernel..(o1 + 1) * a1.kernel] {
                            for &i2 in &t2[o2 * a2.kernel..(o2 + 1) * a2.kernel] {
                                if i0 != PAD && i1 != PAD && i2 != PAD {
                                    let d = i0 * s0 + i1 * s1 + i2 * c;
                                    for (a, &v) in dst[d..d + c].iter_mut().zip(&src[at..at + c]) {
                                        *a += v;
                                    }
                                }
                                at += c;
                            }
                        }
                    }
                }
            }
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
