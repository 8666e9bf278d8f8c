//! Reductions (sum, max, min, argmax, argmin) and the fused softmax kernels.
//!
//! A reduction first [coalesces](groups) the shape into alternating runs of
//! kept and reduced axes. The two layouts that cover almost every real use are
//! direct kernels:
//!
//! * `[K, R]` — reduce contiguous rows (the last axes), one output per row;
//! * `[K1, R, K2]` — reduce a middle run, accumulating whole rows of `K2`
//!   values at a time (column sums such as bias gradients are `K1 = 1`).
//!
//! Anything else (several separated reduced runs) is permuted into `[K, R]`
//! first.

use rayon::prelude::*;
use strata_core::{Error, ReduceOp, Result};

use crate::layout::{contiguous_strides, strided_copy, PAR_CHUNK, PAR_THRESHOLD};
use crate::math;
use crate::storage::NativeStorage;

/// Element types the reductions work on.
pub(crate) trait Reducible: Copy + Send + Sync + Default + PartialOrd + 'static {
    /// The identity of `max` (−∞ or `i64::MIN`).
    const LOWEST: Self;
    /// The identity of `min` (+∞ or `i64::MAX`).
    const HIGHEST: Self;
    /// Addition (wrapping for integers).
    fn plus(self, o: Self) -> Self;
    /// The larger value; NaN loses to any number.
    fn maxv(self, o: Self) -> Self;
    /// The smaller value; NaN loses to any number.
    fn minv(self, o: Self) -> Self;
    /// Whether the value is NaN.
    fn nan(self) -> bool;
    /// Sum of a contiguous run.
    fn sum(x: &[Self]) -> Self;
}

impl Reducible for f32 {
    const LOWEST: Self = f32::NEG_INFINITY;
    const HIGHEST: Self = f32::INFINITY;
    #[inline]
    fn plus(self, o: Self) -> Self {
        self + o
    }
    #[inline]
    fn maxv(self, o: Self) -> Self {
        self.max(o)
    }
    #[inline]
    fn minv(self, o: Self) -> Self {
        self.min(o)
    }
    #[inline]
    fn nan(self) -> bool {
        self.is_nan()
    }
    fn sum(x: &[Self]) -> Self {
        sum_f32(x)
    }
}

impl Reducible for i64 {
    const LOWEST: Self = i64::MIN;
    const HIGHEST: Self = i64::MAX;
    #[inline]
    fn plus(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline]
    fn maxv(self, o: Self) -> Self {
        self.max(o)
    }
    #[inline]
    fn minv(self, o: Self) -> Self {
        self.min(o)
    }
    #[inline]
    fn nan(self) -> bool {
        false
    }
    fn sum(x: &[Self]) -> Self {
        x.iter().fold(0i64, |a, &b| a.wrapping_add(b))
    }
}

/// Sum of `x` with 16 independent accumulators: vectorises, and the error
/// grows far more slowly than with one running sum.
pub(crate) fn sum_f32(x: &[f32]) -> f32 {
    const LANES: usize = 16;
    let mut acc = [0.0f32; LANES];
    let chunks = x.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for (a, &v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    // Pairwise combination of the lanes.
    let mut width = LANES / 2;
    while width > 0 {
        for i in 0..width {
            acc[i] += acc[i + width];
        }
        width /= 2;
    }
    rest.iter().fold(acc[0], |a, &b| a + b)
}

/// The value reductions.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Sum,
    Max,
    Min,
}

impl Kind {
    fn identity<T: Reducible>(self) -> T {
        match self {
            Kind::Sum => T::default(),
            Kind::Max => T::LOWEST,
            Kind::Min => T::HIGHEST,
        }
    }

    #[inline]
    fn combine<T: Reducible>(self, a: T, b: T) -> T {
        match self {
            Kind::Sum => a.plus(b),
            Kind::Max => a.maxv(b),
            Kind::Min => a.minv(b),
        }
    }

    /// Reduces a contiguous run.
    fn run<T: Reducible>(self, x: &[T]) -> T {
        match self {
            Kind::Sum => T::sum(x),
            Kind::Max => x.iter().fold(T::LOWEST, |a, &b| a.maxv(b)),
            Kind::Min => x.iter().fold(T::HIGHEST, |a, &b| a.minv(b)),
        }
    }
}

/// The shape as alternating runs `(size, reduced)`, with size-1 axes dropped
/// and neighbouring axes of the same kind merged.
fn groups(dims: &[usize], axes: &[usize]) -> Vec<(usize, bool)> {
    let mut g: Vec<(usize, bool)> = Vec::new();
    for (i, &d) in dims.iter().enumerate() {
        if d == 1 {
            continue;
        }
        let red = axes.contains(&i);
        match g.last_mut() {
            Some(last) if last.1 == red => last.0 *= d,
            _ => g.push((d, red)),
        }
    }
    g
}

/// The layout a reduction runs in.
enum Plan {
    /// Nothing to reduce (every reduced axis has size 1): a copy.
    Copy,
    /// `[K1, R, K2]` with one reduced run.
    Middle(usize, usize, usize),
    /// Separated reduced runs: permute kept runs first, then `[K, R]` rows.
    Permute(Vec<(usize, bool)>),
}

fn plan(dims: &[usize], axes: &[usize]) -> Plan {
    let g = groups(dims, axes);
    let reduced: Vec<usize> = (0..g.len()).filter(|&i| g[i].1).collect();
    match reduced.as_slice() {
        [] => Plan::Copy,
        [i] => {
            let k1 = g[..*i].iter().map(|p| p.0).product();
            let k2 = g[i + 1..].iter().map(|p| p.0).product();
            Plan::Middle(k1, g[*i].0, k2)
        }
        _ => Plan::Permute(g),
    }
}

/// Brings the kept runs of `g` to the front and the reduced runs to the back,
/// returning the copy and the row length.
fn kept_first<T: Copy + Send + Sync + Default>(x: &[T], g: &[(usize, bool)]) -> (Vec<T>, usize) {
    let sizes: Vec<usize> = g.iter().map(|p| p.0).collect();
    let strides = contiguous_strides(&sizes);
    let order: Vec<usize> = (0..g.len()).filter(|&i| !g[i].1).chain((0..g.len()).filter(|&i| g[i].1)).collect();
    let dims: Vec<usize> = order.iter().map(|&i| sizes[i]).collect();
    let st: Vec<usize> = order.iter().map(|&i| strides[i]).collect();
    let r = g.iter().filter(|p| p.1).map(|p| p.0).product();
    (strided_copy(x, 0, &dims, &st), r)
}

/// Reduces each of the `out.len()` contiguous rows of length `r` in `x`.
fn rows<T: Reducible, U: Copy + Send + Sync>(x: &[T], r: usize, out: &mut [U], f: impl Fn(&[T]) -> U + Sync) {
    if x.len() >= PAR_THRESHOLD && out.len() > 1 {
        let per_task = PAR_CHUNK.div_ceil(r).max(1);
        out.par_chunks_mut(per_task).zip(x.par_chunks(per_task * r)).for_each(|(o, x)| {
            for (o, row) in o.iter_mut().zip(x.chunks_exact(r)) {
                *o = f(row);
            }
        });
    } else {
        for (o, row) in out.iter_mut().zip(x.chunks_exact(r)) {
            *o = f(row);
        }
    }
}

/// Folds `R` rows of `acc.len()` values (row stride `k2`, starting at column
/// `c0` of `x`) into `acc`, which starts as the first row.
fn fold_rows<T: Reducible>(kind: Kind, x: &[T], r: usize, k2: usize, c0: usize, acc: &mut [T]) {
    let w = acc.len();
    acc.copy_from_slice(&x[c0..c0 + w]);
    for i in 1..r {
        let row = &x[i * k2 + c0..i * k2 + c0 + w];
        match kind {
            Kind::Sum => {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = a.plus(v);
                }
            }
            Kind::Max => {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = a.maxv(v);
                }
            }
            Kind::Min => {
                for (a, &v) in acc.iter_mut().zip(row) {
                    *a = a.minv(v);
                }
            }
        }
    }
}

/// Elements per row band when a column reduction is split across threads.
/// Fixed (not derived from the thread count) so that results do not depend
/// on the machine.
const BAND: usize = 64 * 1024;

/// Reduces one `[R, K2]` block (contiguous) into `out` (`K2` values).
fn middle_block<T: Reducible>(kind: Kind, x: &[T], r: usize, k2: usize, out: &mut [T]) {
    if x.len() < PAR_THRESHOLD {
        fold_rows(kind, x, r, k2, 0, out);
        return;
    }
    let band = BAND.div_ceil(k2);
    if r >= 2 * band {
        // Split the rows into bands that stream through memory, then combine
        // the per-band results in order.
        let partials: Vec<Vec<T>> = x
            .par_chunks(band * k2)
            .map(|b| {
                let mut acc = vec![T::default(); k2];
                fold_rows(kind, b, b.len() / k2, k2, 0, &mut acc);
                acc
            })
            .collect();
        out.copy_from_slice(&partials[0]);
        for p in &partials[1..] {
            for (a, &v) in out.iter_mut().zip(p) {
                *a = kind.combine(*a, v);
            }
        }
    } else {
        // Few, long rows: split the columns.
        let width = k2.div_ceil(16).max(256);
        out.par_chunks_mut(width).enumerate().for_each(|(c, acc)| fold_rows(kind, x, r, k2, c * width, acc));
    }
}

fn reduce_values<T: Reducible>(kind: Kind, x: &[T], dims: &[usize], axes: &[usize]) -> Vec<T> {
    let out_len: usize = dims.iter().enumerate().filter(|(i, _)| !axes.contains(i)).map(|(_, d)| d).product();
    let red_len: usize = axes.iter().map(|&a| dims[a]).product();
    if out_len == 0 {
        return Vec::new();
    }
    if red_len == 0 {
        return vec![kind.identity(); out_len];
    }
    let mut out = vec![T::default(); out_len];
    match plan(dims, axes) {
        Plan::Copy => out.copy_from_slice(x),
        Plan::Middle(k1, r, 1) => {
            if k1 == 1 && r >= PAR_THRESHOLD {
                // One long row: partial results per chunk, combined in order.
                let partials: Vec<T> = x.par_chunks(PAR_CHUNK).map(|c| kind.run(c)).collect();
                out[0] = kind.run(&partials);
            } else {
                rows(x, r, &mut out, |row| kind.run(row));
            }
        }
        Plan::Middle(k1, r, k2) => {
            if x.len() >= PAR_THRESHOLD && k1 > 1 {
                out.par_chunks_mut(k2).zip(x.par_chunks(r * k2)).for_each(|(o, b)| middle_block(kind, b, r, k2, o));
            } else {
                for (o, b) in out.chunks_mut(k2).zip(x.chunks(r * k2)) {
                    middle_block(kind, b, r, k2, o);
                }
            }
        }
        Plan::Permute(g) => {
            let (y, r) = kept_first(x, &g);
            rows(&y, r, &mut out, |row| kind.run(row));
        }
    }
    out
}

/// Whether `v` should replace `best` in an argmax (`max`) or argmin: strictly
/// better, or `best` is NaN and `v` is not. Ties keep the first index.
#[inline]
fn better<T: Reducible>(max: bool, v: T, best: T) -> bool {
    let strictly = if max { v > best } else { v < best };
    strictly || (best.nan() && !v.nan())
}

fn arg_row<T: Reducible>(max: bool, row: &[T]) -> i64 {
    let mut best = row[0];
    let mut at = 0;
    for (i, &v) in row.iter().enumerate().skip(1) {
        if better(max, v, best) {
            best = v;
            at = i;
        }
    }
    at as i64
}

fn arg_block<T: Reducible>(max: bool, x: &[T], r: usize, k2: usize, out: &mut [i64]) {
    let mut best = x[..k2].to_vec();
    out.fill(0);
    for i in 1..r {
        let row = &x[i * k2..(i + 1) * k2];
        for ((b, o), &v) in best.iter_mut().zip(out.iter_mut()).zip(row) {
            if better(max, v, *b) {
                *b = v;
                *o = i as i64;
            }
        }
    }
}

fn reduce_arg<T: Reducible>(max: bool, x: &[T], dims: &[usize], axis: usize) -> Vec<i64> {
    let r = dims[axis];
    let out_len = dims.iter().enumerate().filter(|&(i, _)| i != axis).map(|(_, d)| d).product();
    let mut out = vec![0i64; out_len];
    if out_len == 0 || r <= 1 {
        return out;
    }
    let k2: usize = dims[axis + 1..].iter().product();
    if k2 == 1 {
        rows(x, r, &mut out, |row| arg_row(max, row));
    } else if x.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(k2).zip(x.par_chunks(r * k2)).for_each(|(o, b)| arg_block(max, b, r, k2, o));
    } else {
        for (o, b) in out.chunks_mut(k2).zip(x.chunks(r * k2)) {
            arg_block(max, b, r, k2, o);
        }
    }
    out
}

/// A reduction's result: values of the input's type, or indices.
enum Reduced<T> {
    Values(Vec<T>),
    Indices(Vec<i64>),
}

fn reduce_typed<T: Reducible>(op: ReduceOp, x: &[T], dims: &[usize], axes: &[usize]) -> Result<Reduced<T>> {
    Ok(match op {
        ReduceOp::Sum => Reduced::Values(reduce_values(Kind::Sum, x, dims, axes)),
        ReduceOp::Max => Reduced::Values(reduce_values(Kind::Max, x, dims, axes)),
        ReduceOp::Min => Reduced::Values(reduce_values(Kind::Min, x, dims, axes)),
        ReduceOp::ArgMax | ReduceOp::ArgMin => {
            let [axis] = axes else {
                return Err(Error::invalid(op.name(), format!("needs exactly one axis, received {axes:?}")));
            };
            Reduced::Indices(reduce_arg(op == ReduceOp::ArgMax, x, dims, *axis))
        }
    })
}

/// `op` over `axes` (sorted, unique, non-empty; one axis for the arg ops).
pub(crate) fn reduce(op: ReduceOp, x: &NativeStorage, dims: &[usize], axes: &[usize]) -> Result<NativeStorage> {
    if let Some(&bad) = axes.iter().find(|&&a| a >= dims.len()) {
        return Err(Error::AxisOutOfRange { op: op.name(), axis: bad as isize, shape: dims.into() });
    }
    if axes.windows(2).any(|w| w[0] >= w[1]) {
        return Err(Error::invalid(op.name(), format!("axes must be sorted and unique, received {axes:?}")));
    }
    Ok(match x {
        NativeStorage::F32(v) => match reduce_typed(op, v, dims, axes)? {
            Reduced::Values(v) => NativeStorage::F32(v),
            Reduced::Indices(i) => NativeStorage::I64(i),
        },
        NativeStorage::I64(v) => match reduce_typed(op, v, dims, axes)? {
            Reduced::Values(v) | Reduced::Indices(v) => NativeStorage::I64(v),
        },
    })
}

/// Runs `f(row_in, row_out)` over the rows of length `n`, in parallel when large.
fn per_row(x: &[f32], n: usize, f: impl Fn(&[f32], &mut [f32]) + Sync) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    if x.is_empty() || n == 0 {
        return out;
    }
    if x.len() >= PAR_THRESHOLD && x.len() > n {
        let per_task = PAR_CHUNK.div_ceil(n).max(1) * n;
        out.par_chunks_mut(per_task).zip(x.par_chunks(per_task)).for_each(|(o, x)| {
            for (o, x) in o.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
                f(x, o);
            }
        });
    } else {
        for (o, x) in out.chunks_exact_mut(n).zip(x.chunks_exact(n)) {
            f(x, o);
        }
    }
    out
}

/// Largest value of a row (NaN ignored unless the row is all NaN).
fn row_max(x: &[f32]) -> f32 {
    x.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b))
}

/// Softmax over rows of length `n`: `exp(x - max) / sum`, one pass to find the
/// max, one to exponentiate, one to sum and one to scale (each vectorises).
pub(crate) fn softmax(x: &[f32], n: usize) -> Vec<f32> {
    per_row(x, n, |x, o| {
        let m = row_max(x);
        for (o, &v) in o.iter_mut().zip(x) {
            *o = math::exp(v - m);
        }
        let inv = 1.0 / sum_f32(o);
        for o in o.iter_mut() {
            *o *= inv;
        }
    })
}

/// Log-softmax over rows of length `n`: `x - max - ln(sum(exp(x - max)))`.
pub(crate) fn log_softmax(x: &[f32], n: usize) -> Vec<f32> {
    per_row(x, n, |x, o| {
        let m = row_max(x);
        // The row of `o` is scratch space for the exponentials.
        for (o, &v) in o.iter_mut().zip(x) {
            *o = math::exp(v - m);
        }
        let lse = sum_f32(o).ln();
        for (o, &v) in o.iter_mut().zip(x) {
            *o = (v - m) - lse;
        }
    })
}

/// The targets of a softmax cross-entropy: probability rows or class ids.
#[derive(Clone, Copy)]
pub(crate) enum Targets<'a> {
    /// `f32` rows shaped like the logits.
    Dense(&'a [f32]),
    /// One `i64` class id per row; one outside `[0, n)` selects nothing.
    Ids(&'a [i64]),
}

/// Per-row `-Σ_j t_j · log_softmax(z)_j` over `rows` rows of `n` logits:
/// [`log_softmax`]'s values, reduced row by row.
pub(crate) fn softmax_cross_entropy(z: &[f32], rows: usize, n: usize, t: Targets<'_>) -> Vec<f32> {
    let log_p = log_softmax(z, n);
    (0..rows)
        .map(|r| {
            let lp = &log_p[r * n..(r + 1) * n];
            match t {
                Targets::Dense(t) => -t[r * n..(r + 1) * n].iter().zip(lp).map(|(&t, &l)| t * l).sum::<f32>(),
                Targets::Ids(ids) => usize::try_from(ids[r]).ok().filter(|&c| c < n).map_or(0.0, |c| -lp[c]),
            }
        })
        .collect()
}

/// The gradient of [`softmax_cross_entropy`] with respect to the logits:
/// `g_r · (softmax(z) · Σ_j t_j - t)`, row by row over [`softmax`]'s values.
pub(crate) fn softmax_cross_entropy_grad(z: &[f32], rows: usize, n: usize, t: Targets<'_>, g: &[f32]) -> Vec<f32> {
    let mut p = softmax(z, n);
    if n == 0 {
        return p;
    }
    let min_rows = if p.len() >= PAR_THRESHOLD { PAR_CHUNK.div_ceil(n) } else { rows.max(1) };
    p.par_chunks_mut(n).with_min_len(min_rows).enumerate().for_each(|(r, o)| {
        let g = g[r];
        match t {
            Targets::Dense(t) => {
                let t = &t[r * n..(r + 1) * n];
                let total: f32 = t.iter().sum();
                for (o, &t) in o.iter_mut().zip(t) {
                    *o = (*o * total - t) * g;
                }
            }
            Targets::Ids(ids) => {
                let class = usize::try_from(ids[r]).ok().filter(|&c| c < n);
                let total = if class.is_some() { 1.0 } else { 0.0 };
                for (j, o) in o.iter_mut().enumerate() {
                    let t = if class == Some(j) { 1.0 } else { 0.0 };
                    *o = (*o * total - t) * g;
                }
            }
        }
    });
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_merge_and_drop_unit_axes() {
        assert_eq!(groups(&[2, 3, 1, 4], &[1, 2]), vec![(2, false), (3, true), (4, false)]);
        assert_eq!(groups(&[2, 3, 4], &[1, 2]), vec![(2, false), (12, true)]);
        assert_eq!(groups(&[1, 1], &[0]), vec![]);
    }

    #[test]
    fn sum_f32_matches_naive_sum() {
        for n in [0, 1, 15, 16, 17, 100, 1000] {
            let x: Vec<f32> = (0..n).map(|i| (i % 7) as f32 - 3.0).collect();
            let naive: f32 = x.iter().sum();
            assert_eq!(sum_f32(&x), naive, "n = {n}");
        }
    }
}
