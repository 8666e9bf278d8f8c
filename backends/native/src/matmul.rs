//! Batched matrix products through the `gemm` crate.
//!
//! Transposed operands are never copied: `gemm` takes a row stride and a
//! column stride per operand, so a stored `k × m` matrix read as `m × k` is
//! just the strides swapped.

use std::mem::MaybeUninit;

use gemm::Parallelism;
use rayon::prelude::*;
use strata_core::{LinearActivation, LinearSpec, MatmulSpec, Result};

use crate::elementwise::bias_act;
use crate::layout::simd;
use crate::storage::backend_err;

/// Work applied to each band of finished output rows while it is still in
/// cache (the fused bias and activation of [`linear`]).
pub(crate) type Epilogue<'a> = Option<&'a (dyn Fn(&mut [f32]) + Sync)>;

/// Products with at least this many output rows are split into row bands,
/// one per thread, when they are large enough to use several threads.
const SPLIT_MIN_ROWS: usize = 32;

/// Products with at least this many multiply-adds use several threads.
const PAR_FLOPS: usize = 64 * 64 * 64;

/// Element strides `(row, col)` of an operand used as `rows × cols` that is
/// stored row-major either as such or (`trans`) as `cols × rows`.
fn strides(rows: usize, cols: usize, trans: bool) -> (isize, isize) {
    if trans {
        (1, rows as isize)
    } else {
        (cols as isize, 1)
    }
}

/// One product `dst (m × n) = op(lhs) · op(rhs)`; `lhs` and `rhs` start at
/// their matrices and hold at least `m·k` and `k·n` elements.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_one(
    dst: &mut [MaybeUninit<f32>],
    lhs: &[f32],
    rhs: &[f32],
    m: usize,
    n: usize,
    k: usize,
    trans_lhs: bool,
    trans_rhs: bool,
    parallelism: Parallelism,
    epilogue: Epilogue<'_>,
) {
    assert!(dst.len() >= m * n && lhs.len() >= m * k && rhs.len() >= k * n);
    if m == 0 || n == 0 {
        return;
    }
    // Runs the epilogue on `d` once all of it has been written.
    let finish = |d: &mut [MaybeUninit<f32>]| {
        if let Some(e) = epilogue {
            // SAFETY: every caller has initialised all of `d` (`MaybeUninit<f32>`
            // has the layout of `f32`).
            e(unsafe { std::slice::from_raw_parts_mut(d.as_mut_ptr().cast::<f32>(), d.len()) });
        }
    };
    if k == 0 {
        for d in &mut dst[..m * n] {
            d.write(0.0);
        }
        finish(&mut dst[..m * n]);
        return;
    }
    let (lhs_rs, lhs_cs) = strides(m, k, trans_lhs);
    let (rhs_rs, rhs_cs) = strides(k, n, trans_rhs);
    // Output rows `r0..r0 + d.len() / n` into `d`, reading `op(lhs)` through
    // the whole matrix's strides.
    let band = |d: &mut [MaybeUninit<f32>], r0: usize, par: Parallelism| {
        let r = d.len() / n;
        assert!(r0 + r <= m);
        // SAFETY: every pointer covers the elements `gemm` touches: lhs reads
        // offsets `(r0 + i)·rs + p·cs < m·k` (`r0 + r <= m`), rhs reads
        // `< k·n` and `d` gets `r·n` writes, all checked by the assertions.
        // `d` is an exclusive borrow, so it does not alias the shared
        // `lhs`/`rhs`. With `read_dst = false` the old contents of `d` are
        // never read (`alpha` is unused), so it may be uninitialised, and
        // every one of its elements is written: `d = beta · lhs · rhs` with
        // `beta = 1`.
        unsafe {
            gemm::gemm(
                r,
                n,
                k,
                d.as_mut_ptr().cast::<f32>(),
                1,
                n as isize,
                false,
                lhs.as_ptr().add(r0 * lhs_rs as usize),
                lhs_cs,
                lhs_rs,
                rhs.as_ptr(),
                rhs_cs,
                rhs_rs,
                0.0f32,
                1.0f32,
                false,
                false,
                false,
                par,
            );
        }
        finish(d);
    };
    let threads = rayon::current_num_threads();
    if matches!(parallelism, Parallelism::Rayon(_)) && threads > 1 && m >= SPLIT_MIN_ROWS {
        // One band of output rows per thread, each a one-thread product:
        // measured 5-20% faster than gemm's own split for the MLP's
        // backward products (e.g. `xᵀ·g`, 784×128·128×256), no slower for
        // the forward ones.
        let rows = m.div_ceil(threads).next_multiple_of(8);
        dst[..m * n].par_chunks_mut(rows * n).enumerate().for_each(|(i, d)| band(d, i * rows, Parallelism::None));
    } else {
        band(&mut dst[..m * n], 0, parallelism);
    }
}

fn threads_for(flops: usize) -> Parallelism {
    if flops >= PAR_FLOPS && rayon::current_num_threads() > 1 {
        Parallelism::Rayon(0)
    } else {
        Parallelism::None
    }
}

/// Checks that `batch` matrices of `mat` elements spaced `stride` apart fit in `len`.
fn check_operand(name: &str, len: usize, batch: usize, stride: usize, mat: usize) -> Result<()> {
    if batch == 0 || mat == 0 {
        return Ok(());
    }
    let need = (batch - 1)
        .checked_mul(stride)
        .and_then(|s| s.checked_add(mat))
        .ok_or_else(|| backend_err(format!("matmul: {name} extent overflows")))?;
    if need > len {
        return Err(backend_err(format!(
            "matmul: {name} needs {need} elements ({batch} matrices of {mat}, batch stride {stride}) but holds {len}"
        )));
    }
    Ok(())
}

/// `out[b] = op(lhs[b]) · op(rhs[b])` for every `b` in the batch.
pub(crate) fn matmul(lhs: &[f32], rhs: &[f32], spec: &MatmulSpec) -> Result<Vec<f32>> {
    let MatmulSpec { batch, m, n, k, trans_lhs, trans_rhs, lhs_batch_stride: lbs, rhs_batch_stride: rbs } = *spec;
    let overflow = || backend_err(format!("matmul: sizes overflow ({spec:?})"));
    let lmat = m.checked_mul(k).ok_or_else(overflow)?;
    let rmat = k.checked_mul(n).ok_or_else(overflow)?;
    check_operand("lhs", lhs.len(), batch, lbs, lmat)?;
    check_operand("rhs", rhs.len(), batch, rbs, rmat)?;
    let omat = m.checked_mul(n).ok_or_else(overflow)?;
    let total = omat.checked_mul(batch).ok_or_else(overflow)?;
    if total == 0 || k == 0 {
        return Ok(vec![0.0f32; total]);
    }
    // Every element is written by exactly one product below, so the buffer
    // is not zeroed first (that memset cost ~10% of a training step).
    let mut out: Vec<f32> = crate::pool::take(total);
    let buf = &mut out.spare_capacity_mut()[..total];
    let flops = omat.saturating_mul(k);
    if batch == 1 {
        gemm_one(buf, lhs, rhs, m, n, k, trans_lhs, trans_rhs, threads_for(flops), None);
    } else if rbs == 0 && !trans_lhs && lbs == lmat {
        // One shared rhs and stacked row-major lhs matrices: a single tall product.
        let rows = batch * m;
        gemm_one(buf, lhs, rhs, rows, n, k, false, trans_rhs, threads_for(batch.saturating_mul(flops)), None);
    } else if flops < PAR_FLOPS && batch.saturating_mul(flops) >= PAR_FLOPS / 4 {
        // Many small products: one per task.
        buf.par_chunks_mut(omat).enumerate().for_each(|(b, dst)| {
            let l = &lhs[b * lbs..];
            let r = &rhs[b * rbs..];
            gemm_one(dst, l, r, m, n, k, trans_lhs, trans_rhs, Parallelism::None, None);
        });
    } else {
        let par = threads_for(flops);
        for (b, dst) in buf.chunks_mut(omat).enumerate() {
            gemm_one(dst, &lhs[b * lbs..], &rhs[b * rbs..], m, n, k, trans_lhs, trans_rhs, par, None);
        }
    }
    // SAFETY: the `batch` products above wrote all `batch · m · n = total`
    // elements (each chunk of `omat` is one product's full output).
    unsafe { out.set_len(total) };
    Ok(out)
}

/// `act(x · w + b)` for `x` of `m × k`, `w` of `k × n` and an optional `b` of
/// `n`: the product, with the bias and activation applied to each band of
/// output rows right after it is written (no second buffer, no second pass
/// from memory).
pub(crate) fn linear(x: &[f32], w: &[f32], b: Option<&[f32]>, spec: &LinearSpec) -> Result<Vec<f32>> {
    let LinearSpec { m, k, n, activation: act } = *spec;
    let overflow = || backend_err(format!("linear: sizes overflow ({m} × {k} · {k} × {n})"));
    let total = m.checked_mul(n).ok_or_else(overflow)?;
    let (xlen, wlen) = (m.checked_mul(k).ok_or_else(overflow)?, k.checked_mul(n).ok_or_else(overflow)?);
    if x.len() != xlen || w.len() != wlen || b.is_some_and(|b| b.len() != n) {
        return Err(backend_err(format!(
            "linear: x of {} (expected {xlen}), w of {} (expected {wlen}), bias of {:?} (expected {n})",
            x.len(),
            w.len(),
            b.map(<[f32]>::len)
        )));
    }
    let epilogue = |d: &mut [f32]| {
        simd(
            #[inline(always)]
            || bias_act(d, b, act),
        )
    };
    let fused = b.is_some() || act != LinearActivation::Identity;
    let mut out: Vec<f32> = crate::pool::take(total);
    let buf = &mut out.spare_capacity_mut()[..total];
    let par = threads_for(total.saturating_mul(k));
    gemm_one(buf, x, w, m, n, k, false, false, par, fused.then_some(&epilogue as &(dyn Fn(&mut [f32]) + Sync)));
    // SAFETY: `gemm_one` wrote all `m · n` elements.
    unsafe { out.set_len(total) };
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `op(a)·op(b)` in f64, the reference.
    fn naive(a: &[f32], b: &[f32], m: usize, n: usize, k: usize, ta: bool, tb: bool) -> Vec<f64> {
        let at = |i: usize, p: usize| f64::from(if ta { a[p * m + i] } else { a[i * k + p] });
        let bt = |p: usize, j: usize| f64::from(if tb { b[j * k + p] } else { b[p * n + j] });
        (0..m * n).map(|ij| (0..k).map(|p| at(ij / n, p) * bt(p, ij % n)).sum()).collect()
    }

    /// Products big enough to be split into row bands (on a 3-thread pool,
    /// so the last band is short), in every transpose combination, against
    /// the f64 reference.
    #[test]
    fn row_banded_products_match_the_reference() {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
        let (m, n, k) = (101, 67, 90);
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 50.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 48.0).collect();
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            let spec = MatmulSpec {
                batch: 1,
                m,
                n,
                k,
                trans_lhs: ta,
                trans_rhs: tb,
                lhs_batch_stride: 0,
                rhs_batch_stride: 0,
            };
            assert!(m * n * k >= PAR_FLOPS && m >= SPLIT_MIN_ROWS);
            let got = pool.install(|| matmul(&a, &b, &spec)).unwrap();
            for (g, r) in got.iter().zip(naive(&a, &b, m, n, k, ta, tb)) {
                assert!((f64::from(*g) - r).abs() < 1e-4 * (1.0 + r.abs()), "ta={ta} tb={tb}: {g} vs {r}");
            }
        }
    }
}
