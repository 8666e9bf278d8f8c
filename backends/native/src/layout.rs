//! Data movement: the strided-copy engine behind permute, broadcast and
//! narrow, plus concat, gather and index_add.
//!
//! Everything here writes a contiguous row-major output. Inputs are described
//! by per-output-axis strides in elements (0 for a broadcast axis); before any
//! copying the axes are [coalesced](coalesce) so that, for instance, a narrow
//! along axis 0 or a permutation that only moves whole rows becomes a handful
//! of large `memcpy`s.

use rayon::prelude::*;
use std::mem::MaybeUninit;
use strata_core::{Error, Result, Shape};

/// Outputs at least this large are produced by several threads.
pub(crate) const PAR_THRESHOLD: usize = 32 * 1024;
/// Elements per parallel task for elementwise work.
pub(crate) const PAR_CHUNK: usize = 8 * 1024;

/// Row-major strides of `dims`.
pub(crate) fn contiguous_strides(dims: &[usize]) -> Vec<usize> {
    let mut strides = vec![0; dims.len()];
    let mut acc = 1;
    for (s, d) in strides.iter_mut().zip(dims).rev() {
        *s = acc;
        acc *= *d;
    }
    strides
}

/// Strides that read a contiguous `shape` as if broadcast to `out` (NumPy
/// rules: `shape` is right-aligned; size-1 and missing axes get stride 0).
pub(crate) fn broadcast_strides(shape: &[usize], out: &[usize]) -> Vec<usize> {
    let own = contiguous_strides(shape);
    let lead = out.len() - shape.len();
    (0..out.len()).map(|i| if i < lead || shape[i - lead] == 1 { 0 } else { own[i - lead] }).collect()
}

/// Simplifies an iteration space over `N` operands: drops size-1 axes and
/// merges neighbouring axes wherever every operand's strides allow it (the
/// output is always contiguous, so only the inputs constrain merging).
///
/// Returns at least one axis. An empty iteration space (some size 0) is kept
/// as is; callers return early on empty outputs.
pub(crate) fn coalesce<const N: usize>(dims: &[usize], strides: [&[usize]; N]) -> (Vec<usize>, [Vec<usize>; N]) {
    let mut d: Vec<usize> = Vec::with_capacity(dims.len());
    let mut s: [Vec<usize>; N] = std::array::from_fn(|_| Vec::with_capacity(dims.len()));
    for (i, &size) in dims.iter().enumerate() {
        if size == 1 {
            continue;
        }
        if let Some(last) = d.last_mut() {
            let mergeable = (0..N).all(|k| s[k].last() == Some(&(strides[k][i] * size)));
            if mergeable {
                *last *= size;
                for k in 0..N {
                    if let Some(st) = s[k].last_mut() {
                        *st = strides[k][i];
                    }
                }
                continue;
            }
        }
        d.push(size);
        for k in 0..N {
            s[k].push(strides[k][i]);
        }
    }
    if d.is_empty() {
        d.push(1);
        for st in &mut s {
            st.push(0);
        }
    }
    (d, s)
}

/// Walks the part `out` of a contiguous output that starts at flat index
/// `start`, calling `f(segment, offsets)` for each run along the innermost
/// axis; `offsets[k]` is where operand `k`'s data for the segment's first
/// element lives. The innermost strides are `strides[k][last]`.
///
/// `dims` must be non-empty with no zero-sized axis.
pub(crate) fn walk<const N: usize, T>(
    out: &mut [T],
    start: usize,
    dims: &[usize],
    strides: &[Vec<usize>; N],
    mut f: impl FnMut(&mut [T], [usize; N]),
) {
    let r = dims.len();
    let inner = dims[r - 1];
    let outer = &dims[..r - 1];
    let mut idx = vec![0usize; r - 1];
    let mut rem = start / inner;
    for d in (0..r - 1).rev() {
        idx[d] = rem % outer[d];
        rem /= outer[d];
    }
    let mut offs = [0usize; N];
    for (k, o) in offs.iter_mut().enumerate() {
        *o = idx.iter().zip(&strides[k]).map(|(i, s)| i * s).sum();
    }
    let mut col = start % inner;
    let mut pos = 0;
    while pos < out.len() {
        let n = (inner - col).min(out.len() - pos);
        let mut at = offs;
        for (k, a) in at.iter_mut().enumerate() {
            *a += col * strides[k][r - 1];
        }
        f(&mut out[pos..pos + n], at);
        pos += n;
        col = 0;
        for d in (0..r - 1).rev() {
            idx[d] += 1;
            for (k, o) in offs.iter_mut().enumerate() {
                *o += strides[k][d];
            }
            if idx[d] < outer[d] {
                break;
            }
            for (k, o) in offs.iter_mut().enumerate() {
                *o -= strides[k][d] * outer[d];
            }
            idx[d] = 0;
        }
    }
}

/// Calls `f` compiled for the widest vector units this CPU has (AVX-512F or
/// AVX2, detected at run time; the build itself targets baseline x86-64), so
/// that loops inlined into `f` use 16- or 8-lane instructions. `f` must be
/// `#[inline(always)]`-able for this to matter; the results are the same
/// bits, since Rust never contracts `a * b + c` into an FMA on its own.
#[inline(always)]
pub(crate) fn simd<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f")]
        fn avx512<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        #[target_feature(enable = "avx2")]
        fn avx2<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F (checked just above).
            return unsafe { avx512(f) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f()
}

/// [`simd`] with FMA as well: runs `f(true)` compiled for AVX-512F or
/// AVX2, each with FMA, when the CPU has them, else `f(false)` — for `f`
/// to pick a loop written with `mul_add` or without it (without FMA
/// instructions `mul_add` is a slow library call). The two loops may
/// differ in the last bits.
#[inline(always)]
pub(crate) fn simd_fma<R>(f: impl FnOnce(bool) -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        #[target_feature(enable = "avx512f,fma")]
        fn avx512<R>(f: impl FnOnce(bool) -> R) -> R {
            f(true)
        }
        #[target_feature(enable = "avx2,fma")]
        fn avx2<R>(f: impl FnOnce(bool) -> R) -> R {
            f(true)
        }
        let fused = std::arch::is_x86_feature_detected!("fma");
        if fused && std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU supports AVX-512F and FMA (checked just above).
            return unsafe { avx512(f) };
        }
        if fused && std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports AVX2 and FMA (checked just above).
            return unsafe { avx2(f) };
        }
    }
    f(false)
}

/// A vector of `n` elements written by `fill` into uninitialised memory,
/// skipping the zeroing that `vec![0; n]` does (a memset that cost several
/// percent of a training step).
///
/// # Safety
/// `fill` must write every one of the `n` elements it receives (unless it
/// panics, in which case the buffer is dropped unread).
pub(crate) unsafe fn uninit_vec<U: 'static>(n: usize, fill: impl FnOnce(&mut [MaybeUninit<U>])) -> Vec<U> {
    let mut v = if std::any::TypeId::of::<U>() == std::any::TypeId::of::<f32>() {
        // `f32` buffers come from the pool of freed ones.
        let pooled = std::mem::ManuallyDrop::new(crate::pool::take(n));
        // SAFETY: `U` is `f32`, so this is the same vector, handed over.
        unsafe { Vec::from_raw_parts(pooled.as_ptr() as *mut U, pooled.len(), pooled.capacity()) }
    } else {
        Vec::with_capacity(n)
    };
    fill(&mut v.spare_capacity_mut()[..n]);
    // SAFETY: the caller guarantees that `fill` initialised all `n` elements.
    unsafe { v.set_len(n) };
    v
}

/// Fills the contiguous `out` by [`walk`]ing it, in parallel for large outputs.
pub(crate) fn fill_strided<const N: usize, T: Send>(
    out: &mut [T],
    dims: &[usize],
    strides: &[Vec<usize>; N],
    f: impl Fn(&mut [T], [usize; N]) + Sync,
) {
    if out.is_empty() {
        return;
    }
    if out.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(PAR_CHUNK).enumerate().for_each(|(i, chunk)| walk(chunk, i * PAR_CHUNK, dims, strides, &f));
    } else {
        walk(out, 0, dims, strides, f);
    }
}

/// Side of the square tiles used for transposing copies. Measured: 16 beats 8
/// and 32; with power-of-two strides every line of a tile maps to the same L1
/// set, so larger tiles thrash.
const TILE: usize = 16;

/// Copies `x` read through `strides` (one per output axis, starting at
/// element `base`) into a new contiguous buffer of shape `dims`.
pub(crate) fn strided_copy<T: Copy + Send + Sync + Default>(
    x: &[T],
    base: usize,
    dims: &[usize],
    strides: &[usize],
) -> Vec<T> {
    let total: usize = dims.iter().product();
    let mut out = vec![T::default(); total];
    if total == 0 {
        return out;
    }
    let x = &x[base..];
    let (d, st) = coalesce(dims, [strides]);
    let (r, s) = (d.len(), &st[0]);
    if r >= 2 && s[r - 1] != 1 && s[r - 2] == 1 {
        transpose_copy(x, &mut out, &d, s);
        return out;
    }
    let inner = s[r - 1];
    fill_strided(&mut out, &d, &st, |seg, [o]| match inner {
        1 => seg.copy_from_slice(&x[o..o + seg.len()]),
        0 => seg.fill(x[o]),
        st => {
            for (j, v) in seg.iter_mut().enumerate() {
                *v = x[o + j * st];
            }
        }
    });
    out
}

/// The strided copy when the last two (coalesced) axes are a transpose: the
/// input is contiguous along the second-to-last output axis. Copies tile by
/// tile so both sides stay in cache.
fn transpose_copy<T: Copy + Send + Sync>(x: &[T], out: &mut [T], d: &[usize], s: &[usize]) {
    let r = d.len();
    let (rows, cols, col_stride) = (d[r - 2], d[r - 1], s[r - 1]);
    let mat = rows * cols;
    // The batch axes, with the matrix flattened into one axis whose stride is unused.
    let mut bdims = d[..r - 2].to_vec();
    bdims.push(mat);
    let mut bstrides = s[..r - 2].to_vec();
    bstrides.push(0);
    let bstrides = [bstrides];
    // One tile-row band of one matrix: output rows i0.., all columns.
    let band = |dst: &mut [T], base: usize, i0: usize| {
        let nrows = dst.len() / cols;
        for j0 in (0..cols).step_by(TILE) {
            let j1 = (j0 + TILE).min(cols);
            for i in 0..nrows {
                let row = &mut dst[i * cols + j0..i * cols + j1];
                let src = base + i0 + i;
                for (j, v) in (j0..j1).zip(row.iter_mut()) {
                    *v = x[src + j * col_stride];
                }
            }
        }
    };
    let one_matrix = |m: &mut [T], base: usize| {
        if mat >= PAR_THRESHOLD {
            m.par_chunks_mut(TILE * cols).enumerate().for_each(|(b, dst)| band(dst, base, b * TILE));
        } else {
            for (b, dst) in m.chunks_mut(TILE * cols).enumerate() {
                band(dst, base, b * TILE);
            }
        }
    };
    if out.len() >= PAR_THRESHOLD && out.len() > mat {
        out.par_chunks_mut(mat).enumerate().for_each(|(b, m)| {
            walk(m, b * mat, &bdims, &bstrides, |m, [base]| one_matrix(m, base));
        });
    } else {
        walk(out, 0, &bdims, &bstrides, |m, [base]| one_matrix(m, base));
    }
}

/// Materialises the permutation `perm` of `x` (shape `dims`).
pub(crate) fn permute<T: Copy + Send + Sync + Default>(x: &[T], dims: &[usize], perm: &[usize]) -> Vec<T> {
    let strides = contiguous_strides(dims);
    let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
    let in_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    strided_copy(x, 0, &out_dims, &in_strides)
}

/// Materialises `x` (shape `dims`) broadcast to `out`.
pub(crate) fn broadcast_to<T: Copy + Send + Sync + Default>(x: &[T], dims: &[usize], out: &[usize]) -> Vec<T> {
    strided_copy(x, 0, out, &broadcast_strides(dims, out))
}

/// `len` entries of `axis` from `start`.
pub(crate) fn narrow<T: Copy + Send + Sync + Default + 'static>(
    x: &[T],
    dims: &[usize],
    axis: usize,
    start: usize,
    len: usize,
) -> Vec<T> {
    let strides = contiguous_strides(dims);
    let mut out_dims = dims.to_vec();
    out_dims[axis] = len;
    if out_dims.contains(&0) {
        return Vec::new();
    }
    if dims[..axis].iter().all(|&d| d == 1) {
        // One contiguous range (a batch of rows): a plain copy, no zeroing,
        // split over threads when large (a 1024-image batch is 3.2 MB).
        let from = start * strides[axis];
        return copy_slice(&x[from..from + len * strides[axis]]);
    }
    strided_copy(x, start * strides[axis], &out_dims, &strides)
}

/// Copies `src` into the uninitialised `dst` of the same length (one
/// `memcpy`; what `MaybeUninit::write_copy_of_slice` does on newer Rust).
fn write_slice<T: Copy>(dst: &mut [MaybeUninit<T>], src: &[T]) {
    assert_eq!(dst.len(), src.len());
    // SAFETY: equal lengths; `dst` is an exclusive borrow, so the two do not
    // overlap; `MaybeUninit<T>` has the layout of `T`.
    unsafe { std::ptr::copy_nonoverlapping(src.as_ptr(), dst.as_mut_ptr().cast::<T>(), src.len()) };
}

/// A copy of `x`, on several threads when large.
fn copy_slice<T: Copy + Send + Sync + 'static>(x: &[T]) -> Vec<T> {
    if x.len() < PAR_THRESHOLD {
        return x.to_vec();
    }
    let fill = |out: &mut [MaybeUninit<T>]| {
        out.par_chunks_mut(PAR_CHUNK * 8).zip(x.par_chunks(PAR_CHUNK * 8)).for_each(|(dst, src)| write_slice(dst, src))
    };
    // SAFETY: the output chunks pair up with input chunks of the same
    // lengths, so `fill` writes every element.
    unsafe { uninit_vec(x.len(), fill) }
}

/// Joins `parts` (each with its dims) along `axis`.
pub(crate) fn concat<T: Copy>(parts: &[(&[T], &[usize])], axis: usize) -> Vec<T> {
    let Some(&(_, first)) = parts.first() else {
        return Vec::new();
    };
    let outer: usize = first[..axis].iter().product();
    let total: usize = parts.iter().map(|(x, _)| x.len()).sum();
    let mut out = Vec::with_capacity(total);
    if total == 0 {
        return out;
    }
    // Per outer index, each part contributes one contiguous block.
    let blocks: Vec<usize> = parts.iter().map(|(_, d)| d[axis..].iter().product()).collect();
    for o in 0..outer {
        for ((x, _), &b) in parts.iter().zip(&blocks) {
            out.extend_from_slice(&x[o * b..(o + 1) * b]);
        }
    }
    out
}

/// Splits `dims` around `axis` into (outer, size, inner) element counts.
fn split_at_axis(dims: &[usize], axis: usize) -> (usize, usize, usize) {
    let outer = dims[..axis].iter().product();
    let inner = dims[axis + 1..].iter().product();
    (outer, dims[axis], inner)
}

/// Checks that every index lies in `0..size`, returning them as `usize`.
pub(crate) fn check_indices(op: &'static str, indices: &[i64], axis: usize, dims: &[usize]) -> Result<Vec<usize>> {
    let size = dims[axis];
    indices
        .iter()
        .map(|&i| {
            if i < 0 || i as u64 >= size as u64 {
                Err(Error::IndexOutOfRange { op, index: i, axis, size, shape: Shape::from(dims) })
            } else {
                Ok(i as usize)
            }
        })
        .collect()
}

/// Selects entries `indices` (already range-checked) along `axis`.
pub(crate) fn gather<T: Copy + Send + Sync + Default + 'static>(
    x: &[T],
    dims: &[usize],
    axis: usize,
    indices: &[usize],
) -> Vec<T> {
    let (outer, size, inner) = split_at_axis(dims, axis);
    let n = indices.len();
    let total = outer * n * inner;
    if total == 0 {
        return Vec::new();
    }
    if total >= PAR_THRESHOLD {
        let rows_per_task = PAR_CHUNK.div_ceil(inner);
        let fill = |out: &mut [MaybeUninit<T>]| {
            out.par_chunks_mut(rows_per_task * inner).enumerate().for_each(|(t, chunk)| {
                for (r, dst) in chunk.chunks_mut(inner).enumerate() {
                    let row = t * rows_per_task + r;
                    let (o, j) = (row / n, row % n);
                    let src = (o * size + indices[j]) * inner;
                    write_slice(dst, &x[src..src + inner]);
                }
            })
        };
        // SAFETY: the chunks tile the `total = outer·n·inner` elements, and
        // `fill` writes each row of `inner` elements in them once.
        unsafe { uninit_vec(total, fill) }
    } else {
        let mut out = Vec::with_capacity(total);
        for o in 0..outer {
            for &j in indices {
                let src = (o * size + j) * inner;
                out.extend_from_slice(&x[src..src + inner]);
            }
        }
        out
    }
}

/// `x` with `src` added at `indices` (already range-checked) along `axis`.
pub(crate) fn index_add<T: Copy + Send + Sync>(
    x: &[T],
    dims: &[usize],
    axis: usize,
    indices: &[usize],
    src: &[T],
    add: impl Fn(T, T) -> T + Sync,
) -> Vec<T> {
    let (outer, size, inner) = split_at_axis(dims, axis);
    let n = indices.len();
    let mut out = x.to_vec();
    if out.is_empty() || src.is_empty() {
        return out;
    }
    let block = |dst: &mut [T], s: &[T]| {
        for (j, &i) in indices.iter().enumerate() {
            let d = &mut dst[i * inner..(i + 1) * inner];
            for (a, &b) in d.iter_mut().zip(&s[j * inner..(j + 1) * inner]) {
                *a = add(*a, b);
            }
        }
    };
    if outer > 1 && src.len() >= PAR_THRESHOLD {
        out.par_chunks_mut(size * inner).zip(src.par_chunks(n * inner)).for_each(|(dst, s)| block(dst, s));
    } else {
        for (dst, s) in out.chunks_mut(size * inner).zip(src.chunks(n * inner)) {
            block(dst, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coalesce_merges_contiguous_axes() {
        let dims = [2, 3, 4];
        let st = contiguous_strides(&dims);
        let (d, [s]) = coalesce(&dims, [&st]);
        assert_eq!(d, vec![24]);
        assert_eq!(s, vec![1]);
    }

    #[test]
    fn coalesce_keeps_broadcast_axes_apart() {
        let out = [4, 2, 3];
        let a = broadcast_strides(&[4, 1, 3], &out);
        let b = broadcast_strides(&[2, 1], &out);
        assert_eq!(a, vec![3, 0, 1]);
        assert_eq!(b, vec![0, 1, 0]);
        let (d, [sa, sb]) = coalesce(&out, [&a, &b]);
        assert_eq!(d, vec![4, 2, 3]);
        assert_eq!(sa, vec![3, 0, 1]);
        assert_eq!(sb, vec![0, 1, 0]);
    }

    #[test]
    fn coalesce_drops_unit_axes_and_handles_all_ones() {
        let (d, [s]) = coalesce(&[1, 1], [&[1, 1]]);
        assert_eq!((d, s), (vec![1], vec![0]));
        let (d, [s]) = coalesce(&[1, 5, 1], [&[5, 1, 1]]);
        assert_eq!((d, s), (vec![5], vec![1]));
    }

    #[test]
    fn walk_from_the_middle_of_a_row() {
        // Transposed 3x4 read of a 4x3 matrix, starting at flat index 5.
        let x: Vec<usize> = (0..12).collect();
        let dims = [3, 4];
        let strides = [vec![1, 3]];
        let mut out = vec![0; 7];
        walk(&mut out, 5, &dims, &strides, |seg, [o]| {
            for (j, v) in seg.iter_mut().enumerate() {
                *v = x[o + j * 3];
            }
        });
        // Full transpose is [0,3,6,9, 1,4,7,10, 2,5,8,11]; from index 5 on:
        assert_eq!(out, vec![4, 7, 10, 2, 5, 8, 11]);
    }
}
