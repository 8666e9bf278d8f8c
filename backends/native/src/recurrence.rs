//! The fused LSTM and GRU recurrences: per step one matrix product, then
//! one pass over each block of rows that adds the step's input projection
//! and computes the gates,
//! the state update and (backward) the gate gradients; the recurrent
//! kernel's gradient is one product over every step at the end. The row
//! passes use fused multiply-adds where the CPU has them.

use gemm::Parallelism;
use rayon::prelude::*;
use strata_core::{GruSpec, LstmSpec};

use crate::layout::{simd_fma, uninit_vec};
use crate::math::{sigmoid_with, tanh_with};

/// Rows × units below which a step's row pass stays on one thread.
const PAR_ELEMENTS: usize = 8192;

/// Multiply-adds from which a product is split into row bands, one per thread.
const PAR_FLOPS: usize = 64 * 64 * 64;

/// One operand of a product: its elements and the strides of its rows and
/// columns as used (a transposed matrix is its strides swapped).
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    row: usize,
    col: usize,
}

/// `dst (m × n, row stride dst_rs) (+)= lhs · rhs`, with `k` inner terms;
/// split into bands of output rows across threads when `split` and large
/// enough.
fn product(
    dst: &mut [f32],
    dst_rs: usize,
    lhs: Operand<'_>,
    rhs: Operand<'_>,
    (m, n, k): (usize, usize, usize),
    add: bool,
    split: bool,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last = |rows: usize, op: Operand<'_>, cols: usize| (rows - 1) * op.row + (cols - 1) * op.col + 1;
    assert!(dst.len() >= (m - 1) * dst_rs + n);
    if k == 0 {
        if !add {
            dst.chunks_mut(dst_rs).take(m).for_each(|r| r[..n].fill(0.0));
        }
        return;
    }
    assert!(lhs.data.len() >= last(m, lhs, k) && rhs.data.len() >= last(k, rhs, n));
    let band = |d: &mut [f32], r0: usize, rows: usize| {
        // SAFETY: the band's output rows `r0..r0 + rows` lie in `d` (it holds
        // `(rows - 1)·dst_rs + n` elements from row `r0`, checked by the
        // callers' split and the assertion above); lhs reads rows
        // `r0..r0 + rows` within `lhs.data` and rhs `k × n` within
        // `rhs.data` (both asserted). `d` is exclusively borrowed and does
        // not alias the shared operands. With `read_dst = add`, `d` is read
        // only when accumulating, and it is always initialised.
        unsafe {
            gemm::gemm(
                rows,
                n,
                k,
                d.as_mut_ptr(),
                1,
                dst_rs as isize,
                add,
                lhs.data.as_ptr().add(r0 * lhs.row),
                lhs.col as isize,
                lhs.row as isize,
                rhs.data.as_ptr(),
                rhs.col as isize,
                rhs.row as isize,
                1.0f32,
                1.0f32,
                false,
                false,
                false,
                Parallelism::None,
            );
        }
    };
    let threads = rayon::current_num_threads();
    if split && threads > 1 && m >= 16 && m * n * k >= PAR_FLOPS {
        let rows = m.div_ceil(threads).next_multiple_of(8);
        dst[..(m - 1) * dst_rs + n].par_chunks_mut(rows * dst_rs).enumerate().for_each(|(i, d)| {
            let r0 = i * rows;
            let r = rows.min(m - r0);
            band(d, r0, r);
        });
    } else {
        band(dst, 0, m);
    }
}

/// `n` zeros in a buffer from the native pool of freed ones (recycled pages
/// instead of fresh ones, which cost a page fault each).
fn zeroed(n: usize) -> Vec<f32> {
    // SAFETY: the fill writes all `n` elements.
    unsafe { uninit_vec(n, |v| v.iter_mut().for_each(|x| _ = x.write(0.0))) }
}

/// Rows a step handles at once: one block's gate buffer (`rows × 4·units`,
/// 256 KB for 128 units) stays in L2 between its product and its row pass.
/// 128 rather than 32 trained the MNIST-rows LSTM 10% faster (interleaved
/// A/B, 5 rounds, AMD EPYC; predict unchanged).
const BLOCK_ROWS: usize = 128;

/// Runs `f(first_row, rows, a, b)` over the row blocks of a step, `a` and
/// `b` the blocks' slices of two buffers of `a_row` and `b_row` values per
/// row; one band of blocks per thread when the step is large enough.
fn blocks<A: Send, B: Send>(
    batch: usize,
    units: usize,
    (a, a_row): (&mut [A], usize),
    (b, b_row): (&mut [B], usize),
    f: impl Fn(usize, usize, &mut [A], &mut [B]) + Sync + Send,
) {
    let run = |first: usize, a: &mut [A], b: &mut [B]| {
        let rows = a.len() / a_row;
        for (k, (a, b)) in a.chunks_mut(BLOCK_ROWS * a_row).zip(b.chunks_mut(BLOCK_ROWS * b_row)).enumerate() {
            f(first + k * BLOCK_ROWS, (rows - k * BLOCK_ROWS).min(BLOCK_ROWS), a, b);
        }
    };
    let threads = rayon::current_num_threads();
    if batch * units >= PAR_ELEMENTS && threads > 1 {
        let band = batch.div_ceil(threads).next_multiple_of(BLOCK_ROWS.min(8));
        a.par_chunks_mut(band * a_row)
            .zip(b.par_chunks_mut(band * b_row))
            .enumerate()
            .for_each(|(i, (a, b))| run(i * band, a, b));
    } else {
        run(0, a, b);
    }
}

/// [`FastPaths::lstm`](strata_core::FastPaths::lstm): the states after every
/// step and the activated gates.
pub(crate) fn lstm(
    xw: &[f32],
    u: &[f32],
    h0: &[f32],
    c0: &[f32],
    mask: Option<&[f32]>,
    spec: &LstmSpec,
) -> (Vec<f32>, Vec<f32>) {
    let LstmSpec { steps, batch, units: n, keep_gates } = *spec;
    let (w, pair) = (4 * n, 2 * n);
    let mut states = zeroed(steps * batch * pair);
    // Every step's gates for the gradient, or one step's as scratch.
    let mut gates = zeroed(if keep_gates { steps } else { 1 } * batch * w);
    for t in 0..steps {
        let (done, rest) = states.split_at_mut(t * batch * pair);
        let now = &mut rest[..batch * pair];
        let prev: Option<&[f32]> = (t > 0).then(|| &done[(t - 1) * batch * pair..]);
        // Per block of rows: z = h·u, then the row pass adds xw[t].
        let at = if keep_gates { t * batch * w } else { 0 };
        let z = &mut gates[at..at + batch * w];
        let keep = mask.map(|m| &m[t * batch..(t + 1) * batch]);
        let x_t = &xw[t * batch * w..(t + 1) * batch * w];
        blocks(batch, n, (z, w), (now, pair), |r0, count, z, out| {
            let h = match prev {
                Some(p) => Operand { data: &p[r0 * pair..], row: pair, col: 1 },
                None => Operand { data: &h0[r0 * n..], row: n, col: 1 },
            };
            product(z, w, h, Operand { data: u, row: w, col: 1 }, (count, w, n), false, false);
            for (k, (z, out)) in z.chunks_mut(w).zip(out.chunks_mut(pair)).enumerate() {
                let b = r0 + k;
                let (h_prev, c_prev) = match prev {
                    Some(p) => (&p[b * pair..b * pair + n], &p[b * pair + n..(b + 1) * pair]),
                    None => (&h0[b * n..(b + 1) * n], &c0[b * n..(b + 1) * n]),
                };
                let x = &x_t[b * w..(b + 1) * w];
                simd_fma(
                    #[inline(always)]
                    |fused| match fused {
                        true => forward_row::<true>(z, x, out, c_prev, n),
                        false => forward_row::<false>(z, x, out, c_prev, n),
                    },
                );
                if keep.is_some_and(|k| k[b] == 0.0) {
                    let (h_out, c_out) = out.split_at_mut(n);
                    h_out.copy_from_slice(h_prev);
                    c_out.copy_from_slice(c_prev);
                }
            }
        });
    }
    if !keep_gates {
        gates = Vec::new();
    }
    (states, gates)
}

/// One row of a step: the gates from `z + x` (`[i, f, g, o]` before their
/// activations: the recurrent product and the input projection; `z` gets
/// the activated gates) and the new `[h, c]` into `out`.
#[inline(always)]
fn forward_row<const FMA: bool>(z: &mut [f32], x: &[f32], out: &mut [f32], c_prev: &[f32], n: usize) {
    let (sigmoid, tanh) = (sigmoid_with::<FMA>, tanh_with::<FMA>);
    let (zi, rest) = z.split_at_mut(n);
    let (zf, rest) = rest.split_at_mut(n);
    let (zg, zo) = rest.split_at_mut(n);
    let (h_out, c_out) = out.split_at_mut(n);
    for j in 0..n {
        let (i, f) = (sigmoid(x[j] + zi[j]), sigmoid(x[n + j] + zf[j]));
        let (g, o) = (tanh(x[2 * n + j] + zg[j]), sigmoid(x[3 * n + j] + zo[j]));
        let c = f * c_prev[j] + i * g;
        (zi[j], zf[j], zg[j], zo[j]) = (i, f, g, o);
        (h_out[j], c_out[j]) = (o * tanh(c), c);
    }
}

/// One row of a step backward: the gate gradients into `dz` and the
/// gradients carried to the previous `h` (zeroed, for the product to fill)
/// and `c`.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_row<const FMA: bool>(
    dz: &mut [f32],
    dh: &mut [f32],
    dc: &mut [f32],
    dy: &[f32],
    g: &[f32],
    c: &[f32],
    c_prev: &[f32],
    n: usize,
) {
    for j in 0..n {
        let (i, f, gg, o) = (g[j], g[n + j], g[2 * n + j], g[3 * n + j]);
        let dh_t = dh[j] + dy[j];
        let tc = tanh_with::<FMA>(c[j]);
        let dcf = dc[j] + dy[n + j] + dh_t * o * (1.0 - tc * tc);
        dz[j] = dcf * gg * (i * (1.0 - i));
        dz[n + j] = dcf * c_prev[j] * (f * (1.0 - f));
        dz[2 * n + j] = dcf * i * (1.0 - gg * gg);
        dz[3 * n + j] = dh_t * tc * (o * (1.0 - o));
        dc[j] = dcf * f;
        dh[j] = 0.0;
    }
}

/// The gradients [`FastPaths::lstm_grad`](strata_core::FastPaths::lstm_grad)
/// returns: of `xw`, `u`, `h0`, `c0`.
pub(crate) type Grads = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// [`FastPaths::lstm_grad`](strata_core::FastPaths::lstm_grad):
/// backpropagation through time.
#[allow(clippy::too_many_arguments)]
pub(crate) fn lstm_grad(
    dy: &[f32],
    u: &[f32],
    h0: &[f32],
    c0: &[f32],
    mask: Option<&[f32]>,
    states: &[f32],
    gates: &[f32],
    spec: &LstmSpec,
) -> Grads {
    let LstmSpec { steps, batch, units: n, .. } = *spec;
    let (w, pair) = (4 * n, 2 * n);
    let mut dz = zeroed(steps * batch * w);
    // The gradients carried to the previous step's h and c.
    // dh and dc side by side per row, so that one block holds both.
    let mut carry = vec![0.0f32; batch * pair];
    for t in (0..steps).rev() {
        let dz_t = &mut dz[t * batch * w..(t + 1) * batch * w];
        let keep = mask.map(|m| &m[t * batch..(t + 1) * batch]);
        blocks(batch, n, (dz_t, w), (&mut carry, pair), |r0, count, dz, carry| {
            for (k, (dz, carry)) in dz.chunks_mut(w).zip(carry.chunks_mut(pair)).enumerate() {
                let b = r0 + k;
                let at = (t * batch + b) * pair;
                let dy = &dy[at..at + pair];
                let (dh, dc) = carry.split_at_mut(n);
                if keep.is_some_and(|k| k[b] == 0.0) {
                    // A skipped step passes the state gradients straight through.
                    for j in 0..n {
                        dh[j] += dy[j];
                        dc[j] += dy[n + j];
                    }
                    dz.fill(0.0);
                    continue;
                }
                let g = &gates[(t * batch + b) * w..(t * batch + b + 1) * w];
                let c = &states[at + n..at + pair];
                let c_prev = if t == 0 {
                    &c0[b * n..(b + 1) * n]
                } else {
                    &states[at - batch * pair + n..at - batch * pair + pair]
                };
                simd_fma(
                    #[inline(always)]
                    |fused| match fused {
                        true => backward_row::<true>(dz, dh, dc, dy, g, c, c_prev, n),
                        false => backward_row::<false>(dz, dh, dc, dy, g, c, c_prev, n),
                    },
                );
            }
            // dh += dz · uᵀ (a skipped row has dz = 0 and keeps its passed-on dh).
            let ut = Operand { data: u, row: 1, col: w };
            product(carry, pair, Operand { data: dz, row: w, col: 1 }, ut, (count, n, w), true, false);
        });
    }
    let (mut dh, mut dc) = (Vec::with_capacity(batch * n), Vec::with_capacity(batch * n));
    for row in carry.chunks(pair) {
        dh.extend_from_slice(&row[..n]);
        dc.extend_from_slice(&row[n..]);
    }
    // du = Σ_t h_{t-1}ᵀ · dz_t, one product over the previous states of every step.
    let mut prev = Vec::with_capacity(steps * batch * n);
    prev.extend_from_slice(h0);
    for row in states[..(steps - 1) * batch * pair].chunks(pair) {
        prev.extend_from_slice(&row[..n]);
    }
    let mut du = vec![0.0f32; n * w];
    let prev_t = Operand { data: &prev, row: 1, col: n };
    product(&mut du, w, prev_t, Operand { data: &dz, row: w, col: 1 }, (n, w, steps * batch), false, true);
    (dz, du, dh, dc)
}

/// [`FastPaths::gru`](strata_core::FastPaths::gru): the state after every
/// step and the gate values for the gradient.
///
/// Per block of rows, the product `h·u` goes into the first `3·units` of
/// each row's `4·units` gate slot; the row pass then adds the bias and the
/// input projection and leaves `z, r, ĥ, a_h` in the slot.
pub(crate) fn gru(
    xw: &[f32],
    u: &[f32],
    bias: Option<&[f32]>,
    h0: &[f32],
    mask: Option<&[f32]>,
    spec: &GruSpec,
) -> (Vec<f32>, Vec<f32>) {
    let GruSpec { steps, batch, units: n, keep_gates } = *spec;
    let (w3, w4) = (3 * n, 4 * n);
    let zero_bias;
    let bias = match bias {
        Some(b) => b,
        None => {
            zero_bias = vec![0.0f32; w3];
            &zero_bias
        }
    };
    let mut states = zeroed(steps * batch * n);
    let mut gates = zeroed(if keep_gates { steps } else { 1 } * batch * w4);
    for t in 0..steps {
        let (done, rest) = states.split_at_mut(t * batch * n);
        let now = &mut rest[..batch * n];
        let prev: &[f32] = if t > 0 { &done[(t - 1) * batch * n..] } else { h0 };
        let at = if keep_gates { t * batch * w4 } else { 0 };
        let g = &mut gates[at..at + batch * w4];
        let keep = mask.map(|m| &m[t * batch..(t + 1) * batch]);
        let x_t = &xw[t * batch * w3..(t + 1) * batch * w3];
        blocks(batch, n, (g, w4), (now, n), |r0, count, g, out| {
            let h = Operand { data: &prev[r0 * n..], row: n, col: 1 };
            product(g, w4, h, Operand { data: u, row: w3, col: 1 }, (count, w3, n), false, false);
            for (k, (g, out)) in g.chunks_mut(w4).zip(out.chunks_mut(n)).enumerate() {
                let b = r0 + k;
                let h_prev = &prev[b * n..(b + 1) * n];
                if keep.is_some_and(|k| k[b] == 0.0) {
                    out.copy_from_slice(h_prev);
                    continue;
                }
                let x = &x_t[b * w3..(b + 1) * w3];
                simd_fma(
                    #[inline(always)]
                    |fused| match fused {
                        true => gru_forward_row::<true>(g, x, bias, out, h_prev, n),
                        false => gru_forward_row::<false>(g, x, bias, out, h_prev, n),
                    },
                );
            }
        });
    }
    if !keep_gates {
        gates = Vec::new();
    }
    (states, gates)
}

/// One GRU row of a step: `g` holds `h·u` in its first `3·n` values and
/// gets `z, r, ĥ, a_h`; the new state goes to `out`.
#[inline(always)]
fn gru_forward_row<const FMA: bool>(g: &mut [f32], x: &[f32], bias: &[f32], out: &mut [f32], h_prev: &[f32], n: usize) {
    let (sigmoid, tanh) = (sigmoid_with::<FMA>, tanh_with::<FMA>);
    let (gz, rest) = g.split_at_mut(n);
    let (gr, rest) = rest.split_at_mut(n);
    let (gh, ga) = rest.split_at_mut(n);
    for j in 0..n {
        let a_h = gh[j] + bias[2 * n + j];
        let z = sigmoid(x[j] + gz[j] + bias[j]);
        let r = sigmoid(x[n + j] + gr[j] + bias[n + j]);
        let hh = tanh(x[2 * n + j] + r * a_h);
        (gz[j], gr[j], gh[j], ga[j]) = (z, r, hh, a_h);
        out[j] = hh + z * (h_prev[j] - hh);
    }
}

/// One GRU row of a step backward: the input projection's gradient into
/// `dx`, the recurrent product's into `da`, and into `dh` the part of the
/// previous state's gradient that does not go through the product.
#[inline(always)]
fn gru_backward_row(dx: &mut [f32], da: &mut [f32], dh: &mut [f32], dy: &[f32], g: &[f32], h_prev: &[f32], n: usize) {
    for j in 0..n {
        let (z, r, hh, a_h) = (g[j], g[n + j], g[2 * n + j], g[3 * n + j]);
        let dh_t = dh[j] + dy[j];
        let d_hh = dh_t * (1.0 - z) * (1.0 - hh * hh);
        let d_z = dh_t * (h_prev[j] - hh) * (z * (1.0 - z));
        let d_r = d_hh * a_h * (r * (1.0 - r));
        (dx[j], dx[n + j], dx[2 * n + j]) = (d_z, d_r, d_hh);
        (da[j], da[n + j], da[2 * n + j]) = (d_z, d_r, d_hh * r);
        dh[j] = dh_t * z;
    }
}

/// The gradients [`FastPaths::gru_grad`](strata_core::FastPaths::gru_grad)
/// returns: of `xw`, `u`, the recurrent bias and `h0`.
pub(crate) type GruGradients = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// [`FastPaths::gru_grad`](strata_core::FastPaths::gru_grad):
/// backpropagation through time.
pub(crate) fn gru_grad(
    dy: &[f32],
    u: &[f32],
    h0: &[f32],
    mask: Option<&[f32]>,
    states: &[f32],
    gates: &[f32],
    spec: &GruSpec,
) -> GruGradients {
    let GruSpec { steps, batch, units: n, .. } = *spec;
    let (w3, w4) = (3 * n, 4 * n);
    // Per step and row: the gradient of the input projection and of the
    // recurrent product, side by side, so that one block holds both.
    let mut d = zeroed(steps * batch * 2 * w3);
    let mut dh = vec![0.0f32; batch * n];
    for t in (0..steps).rev() {
        let d_t = &mut d[t * batch * 2 * w3..(t + 1) * batch * 2 * w3];
        let keep = mask.map(|m| &m[t * batch..(t + 1) * batch]);
        blocks(batch, n, (d_t, 2 * w3), (&mut dh, n), |r0, count, d, dh| {
            for (k, (d, dh)) in d.chunks_mut(2 * w3).zip(dh.chunks_mut(n)).enumerate() {
                let b = r0 + k;
                let at = (t * batch + b) * n;
                let dy = &dy[at..at + n];
                if keep.is_some_and(|k| k[b] == 0.0) {
                    // A skipped step passes the state gradient straight through.
                    dh.iter_mut().zip(dy).for_each(|(d, y)| *d += y);
                    d.fill(0.0);
                    continue;
                }
                let g = &gates[(t * batch + b) * w4..(t * batch + b + 1) * w4];
                let h_prev = if t == 0 { &h0[b * n..(b + 1) * n] } else { &states[at - batch * n..at - batch * n + n] };
                let (dx, da) = d.split_at_mut(w3);
                gru_backward_row(dx, da, dh, dy, g, h_prev, n);
            }
            // dh += da · uᵀ (a skipped row has da = 0 and keeps its passed-on dh).
            let da = Operand { data: &d[w3..], row: 2 * w3, col: 1 };
            product(dh, n, da, Operand { data: u, row: 1, col: w3 }, (count, n, w3), true, false);
        });
    }
    let rows = steps * batch;
    let mut dxw = Vec::with_capacity(rows * w3);
    for row in d.chunks(2 * w3) {
        dxw.extend_from_slice(&row[..w3]);
    }
    // du = Σ_t h_{t-1}ᵀ · da_t, one product over the previous states of
    // every step; the bias' gradient the column sums of da.
    let mut prev = Vec::with_capacity(rows * n);
    prev.extend_from_slice(h0);
    prev.extend_from_slice(&states[..(steps - 1) * batch * n]);
    let da = Operand { data: &d[w3..], row: 2 * w3, col: 1 };
    let mut du = vec![0.0f32; n * w3];
    product(&mut du, w3, Operand { data: &prev, row: 1, col: n }, da, (n, w3, rows), false, true);
    let mut db = vec![0.0f32; w3];
    for row in d.chunks(2 * w3) {
        db.iter_mut().zip(&row[w3..]).for_each(|(s, v)| *s += v);
    }
    (dxw, du, db, dh)
}
