//! Elementwise kernels: unary functions, broadcasting binary ops, scalar ops,
//! `where` and casts.

use std::f32::consts::FRAC_1_SQRT_2;

use rayon::prelude::*;
use strata_core::{BinaryOp, DType, Error, LinearActivation, Result, UnaryOp};

use std::mem::MaybeUninit;

use crate::layout::{broadcast_strides, coalesce, fill_strided, simd, uninit_vec, PAR_CHUNK, PAR_THRESHOLD};
use crate::math;
use crate::storage::{backend_err, NativeStorage};

/// `max(v, 0)` that keeps NaN (Keras and JAX return NaN for `relu(NaN)`;
/// `f32::max` would return 0 and hide a diverged model).
#[inline(always)]
fn relu(v: f32) -> f32 {
    if v < 0.0 {
        0.0
    } else {
        v
    }
}

/// `out[i] = f(x[i])`, on several threads for large inputs.
pub(crate) fn map<T, U>(x: &[T], f: impl Fn(T) -> U + Sync) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default + 'static,
{
    #[inline(always)]
    fn kernel<T: Copy, U>(o: &mut [MaybeUninit<U>], i: &[T], f: &impl Fn(T) -> U) {
        for (o, &i) in o.iter_mut().zip(i) {
            o.write(f(i));
        }
    }
    // SAFETY: the output chunks pair up with input chunks of the same
    // lengths, and the kernel writes each element of its chunk.
    unsafe {
        uninit_vec(x.len(), |out| {
            if x.len() >= PAR_THRESHOLD {
                out.par_chunks_mut(PAR_CHUNK).zip(x.par_chunks(PAR_CHUNK)).for_each(|(o, i)| {
                    simd(
                        #[inline(always)]
                        || kernel(o, i, &f),
                    )
                });
            } else {
                simd(
                    #[inline(always)]
                    || kernel(out, x, &f),
                );
            }
        })
    }
}

/// `out[i] = f(a[i], b[i])` over equal-length inputs.
fn zip_map<T, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U + Sync) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default + 'static,
{
    let n = a.len().min(b.len());
    #[inline(always)]
    fn kernel<T: Copy, U>(o: &mut [MaybeUninit<U>], a: &[T], b: &[T], f: &impl Fn(T, T) -> U) {
        for ((o, &a), &b) in o.iter_mut().zip(a).zip(b) {
            o.write(f(a, b));
        }
    }
    // SAFETY: the output has `n` elements, as many as the shorter input, so
    // the zipped chunks cover every output element and each is written.
    unsafe {
        uninit_vec(n, |out| {
            if n >= PAR_THRESHOLD {
                out.par_chunks_mut(PAR_CHUNK).zip(a.par_chunks(PAR_CHUNK)).zip(b.par_chunks(PAR_CHUNK)).for_each(
                    |((o, a), b)| {
                        simd(
                            #[inline(always)]
                            || kernel(o, a, b, &f),
                        )
                    },
                );
            } else {
                simd(
                    #[inline(always)]
                    || kernel(out, a, b, &f),
                );
            }
        })
    }
}

/// `f(lhs, rhs)` with both broadcast (NumPy rules) to `out_dims`.
///
/// Equal shapes and one-element operands are straight loops; everything else
/// goes through the coalesced strided walker, whose innermost loop is
/// specialised for the four unit/zero stride combinations, so `[m, n] + [n]`
/// and `[m, n] + [m, 1]` run as contiguous row loops.
fn broadcast_map<T, U>(
    lhs: &[T],
    lhs_dims: &[usize],
    rhs: &[T],
    rhs_dims: &[usize],
    out_dims: &[usize],
    f: impl Fn(T, T) -> U + Sync,
) -> Vec<U>
where
    T: Copy + Sync,
    U: Copy + Send + Default + 'static,
{
    let total: usize = out_dims.iter().product();
    if total == 0 {
        return Vec::new();
    }
    if lhs.len() == total && rhs.len() == total {
        return zip_map(lhs, rhs, f);
    }
    if rhs.len() == 1 {
        let b = rhs[0];
        return map(lhs, move |a| f(a, b));
    }
    if lhs.len() == 1 {
        let a = lhs[0];
        return map(rhs, move |b| f(a, b));
    }
    let ls = broadcast_strides(lhs_dims, out_dims);
    let rs = broadcast_strides(rhs_dims, out_dims);
    let (dims, strides) = coalesce(out_dims, [&ls, &rs]);
    let last = dims.len() - 1;
    let (li, ri) = (strides[0][last], strides[1][last]);
    let kernel = |seg: &mut [MaybeUninit<U>], [lo, ro]: [usize; 2]| {
        let n = seg.len();
        match (li, ri) {
            (1, 1) => {
                for ((o, &a), &b) in seg.iter_mut().zip(&lhs[lo..lo + n]).zip(&rhs[ro..ro + n]) {
                    o.write(f(a, b));
                }
            }
            (1, 0) => {
                let b = rhs[ro];
                for (o, &a) in seg.iter_mut().zip(&lhs[lo..lo + n]) {
                    o.write(f(a, b));
                }
            }
            (0, 1) => {
                let a = lhs[lo];
                for (o, &b) in seg.iter_mut().zip(&rhs[ro..ro + n]) {
                    o.write(f(a, b));
                }
            }
            (0, 0) => {
                let v = f(lhs[lo], rhs[ro]);
                for o in seg.iter_mut() {
                    o.write(v);
                }
            }
            (ls, rs) => {
                for (j, o) in seg.iter_mut().enumerate() {
                    o.write(f(lhs[lo + j * ls], rhs[ro + j * rs]));
                }
            }
        }
    };
    // SAFETY: `fill_strided` hands out consecutive segments covering the
    // whole buffer (`dims` multiply to `total`), and every arm of the kernel
    // writes each element of its segment.
    unsafe {
        uninit_vec(total, |out| {
            fill_strided(out, &dims, &strides, |seg, at| {
                simd(
                    #[inline(always)]
                    || kernel(seg, at),
                )
            })
        })
    }
}

/// Exact GELU, `x Φ(x) = 0.5 x (1 + erf(x / √2))`, written with `erfc` so that
/// the tail for negative `x` does not cancel to zero early.
#[inline]
fn gelu(x: f32) -> f32 {
    0.5 * x * libm::erfcf(-x * FRAC_1_SQRT_2)
}

/// `-1`, `0` or `1` (0 for NaN and for ±0, as in [`UnaryOp::reference`]).
#[inline]
fn sign_f32(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

/// Overflow-free softplus: `max(x, 0) + ln(1 + e^-|x|)`.
#[inline]
fn softplus(x: f32) -> f32 {
    x.max(0.0) + math::exp(-x.abs()).ln_1p()
}

/// `out = act(out + bias)` row by row (rows of `bias.len()`), in place: the
/// epilogue of the fused [`linear`](crate::matmul::linear), with the same
/// functions as the unary kernels so results match the unfused ops bit for
/// bit.
#[inline(always)]
pub(crate) fn bias_act(out: &mut [f32], bias: Option<&[f32]>, act: LinearActivation) {
    #[inline(always)]
    fn run(out: &mut [f32], bias: Option<&[f32]>, f: impl Fn(f32) -> f32) {
        match bias {
            Some(b) if !b.is_empty() => {
                for row in out.chunks_exact_mut(b.len()) {
                    for (v, &b) in row.iter_mut().zip(b) {
                        *v = f(*v + b);
                    }
                }
            }
            _ => {
                for v in out {
                    *v = f(*v);
                }
            }
        }
    }
    match act {
        LinearActivation::Identity => run(out, bias, |v| v),
        LinearActivation::Relu => run(out, bias, relu),
        LinearActivation::Sigmoid => run(out, bias, math::sigmoid),
        LinearActivation::Tanh => run(out, bias, f32::tanh),
    }
}

/// `g · f'(x)` from `y = f(x)`, as [`LinearActivation::grad`].
pub(crate) fn activation_grad(act: LinearActivation, y: &[f32], g: &[f32]) -> Vec<f32> {
    match act {
        LinearActivation::Identity => zip_map(y, g, |_, g| g),
        LinearActivation::Relu => zip_map(y, g, |y, g| LinearActivation::Relu.grad(y, g)),
        LinearActivation::Sigmoid => zip_map(y, g, |y, g| LinearActivation::Sigmoid.grad(y, g)),
        LinearActivation::Tanh => zip_map(y, g, |y, g| LinearActivation::Tanh.grad(y, g)),
    }
}

/// Elementwise `op(x)`.
pub(crate) fn unary(op: UnaryOp, x: &NativeStorage) -> Result<NativeStorage> {
    match x {
        NativeStorage::F32(v) => Ok(NativeStorage::F32(unary_f32(op, v))),
        NativeStorage::I64(v) => unary_i64(op, v).map(NativeStorage::I64),
    }
}

fn unary_f32(op: UnaryOp, x: &[f32]) -> Vec<f32> {
    match op {
        UnaryOp::Neg => map(x, |v| -v),
        UnaryOp::Abs => map(x, f32::abs),
        UnaryOp::Sign => map(x, sign_f32),
        UnaryOp::Exp => map(x, math::exp),
        UnaryOp::Log => map(x, f32::ln),
        UnaryOp::Sqrt => map(x, f32::sqrt),
        UnaryOp::Square => map(x, |v| v * v),
        UnaryOp::Recip => map(x, |v| 1.0 / v),
        UnaryOp::Relu => map(x, relu),
        UnaryOp::Sigmoid => map(x, math::sigmoid),
        UnaryOp::Tanh => map(x, f32::tanh),
        UnaryOp::Gelu => map(x, gelu),
        UnaryOp::Softplus => map(x, softplus),
        UnaryOp::Erf => map(x, libm::erff),
        UnaryOp::Sin => map(x, f32::sin),
        UnaryOp::Cos => map(x, f32::cos),
        UnaryOp::Floor => map(x, f32::floor),
        UnaryOp::Ceil => map(x, f32::ceil),
    }
}

fn unary_i64(op: UnaryOp, x: &[i64]) -> Result<Vec<i64>> {
    Ok(match op {
        UnaryOp::Neg => map(x, i64::wrapping_neg),
        UnaryOp::Abs => map(x, i64::wrapping_abs),
        UnaryOp::Sign => map(x, i64::signum),
        UnaryOp::Square => map(x, |v| v.wrapping_mul(v)),
        UnaryOp::Relu => map(x, |v| v.max(0)),
        UnaryOp::Floor | UnaryOp::Ceil => x.to_vec(),
        _ => return Err(Error::DTypeMismatch { op: op.name(), expected: DType::F32, received: DType::I64 }),
    })
}

/// Elementwise `op(lhs, rhs)` with broadcasting to `out`.
pub(crate) fn binary(
    op: BinaryOp,
    lhs: &NativeStorage,
    lhs_dims: &[usize],
    rhs: &NativeStorage,
    rhs_dims: &[usize],
    out: &[usize],
) -> Result<NativeStorage> {
    match (lhs, rhs) {
        (NativeStorage::F32(a), NativeStorage::F32(b)) => {
            Ok(NativeStorage::F32(binary_f32(op, a, lhs_dims, b, rhs_dims, out)))
        }
        (NativeStorage::I64(a), NativeStorage::I64(b)) => {
            binary_i64(op, a, lhs_dims, b, rhs_dims, out).map(NativeStorage::I64)
        }
        _ => Err(Error::DTypeMismatch { op: op.name(), expected: lhs.dtype(), received: rhs.dtype() }),
    }
}

/// Dispatches `op` to a monomorphised kernel `$run(closure)`, for `f32`.
macro_rules! f32_ops {
    ($op:expr, $run:ident) => {
        match $op {
            BinaryOp::Add => $run!(|a: f32, b: f32| a + b),
            BinaryOp::Sub => $run!(|a: f32, b: f32| a - b),
            BinaryOp::Mul => $run!(|a: f32, b: f32| a * b),
            BinaryOp::Div => $run!(|a: f32, b: f32| a / b),
            BinaryOp::Pow => $run!(f32::powf),
            BinaryOp::Maximum => $run!(strata_core::fast_path_defaults::maximum),
            BinaryOp::Minimum => $run!(strata_core::fast_path_defaults::minimum),
            BinaryOp::Eq => $run!(|a: f32, b: f32| f32::from(a == b)),
            BinaryOp::Ne => $run!(|a: f32, b: f32| f32::from(a != b)),
            BinaryOp::Lt => $run!(|a: f32, b: f32| f32::from(a < b)),
            BinaryOp::Le => $run!(|a: f32, b: f32| f32::from(a <= b)),
            BinaryOp::Gt => $run!(|a: f32, b: f32| f32::from(a > b)),
            BinaryOp::Ge => $run!(|a: f32, b: f32| f32::from(a >= b)),
        }
    };
}

/// Dispatches `op` to a monomorphised kernel `$run(closure)`, for `i64`.
/// Arithmetic wraps on overflow; the caller rules out division by zero and `pow`.
macro_rules! i64_ops {
    ($op:expr, $run:ident) => {
        match $op {
            BinaryOp::Add => $run!(i64::wrapping_add),
            BinaryOp::Sub => $run!(i64::wrapping_sub),
            BinaryOp::Mul => $run!(i64::wrapping_mul),
            BinaryOp::Div => $run!(|a: i64, b: i64| if b == 0 { 0 } else { a.wrapping_div(b) }),
            BinaryOp::Pow => unreachable!("pow on i64 is rejected before dispatch"),
            BinaryOp::Maximum => $run!(|a: i64, b: i64| a.max(b)),
            BinaryOp::Minimum => $run!(|a: i64, b: i64| a.min(b)),
            BinaryOp::Eq => $run!(|a: i64, b: i64| i64::from(a == b)),
            BinaryOp::Ne => $run!(|a: i64, b: i64| i64::from(a != b)),
            BinaryOp::Lt => $run!(|a: i64, b: i64| i64::from(a < b)),
            BinaryOp::Le => $run!(|a: i64, b: i64| i64::from(a <= b)),
            BinaryOp::Gt => $run!(|a: i64, b: i64| i64::from(a > b)),
            BinaryOp::Ge => $run!(|a: i64, b: i64| i64::from(a >= b)),
        }
    };
}

fn binary_f32(op: BinaryOp, a: &[f32], ad: &[usize], b: &[f32], bd: &[usize], out: &[usize]) -> Vec<f32> {
    macro_rules! run_inline {
        ($f:expr) => {
            broadcast_map(a, ad, b, bd, out, $f)
        };
    }
    f32_ops!(op, run_inline)
}

/// Errors for `i64` ops that have no integer meaning or would divide by zero.
fn check_i64_op(op: BinaryOp, divisor_has_zero: impl FnOnce() -> bool) -> Result<()> {
    if op == BinaryOp::Pow {
        return Err(Error::DTypeMismatch { op: "pow", expected: DType::F32, received: DType::I64 });
    }
    if op == BinaryOp::Div && divisor_has_zero() {
        return Err(backend_err("div: integer division by zero"));
    }
    Ok(())
}

fn binary_i64(op: BinaryOp, a: &[i64], ad: &[usize], b: &[i64], bd: &[usize], out: &[usize]) -> Result<Vec<i64>> {
    let total: usize = out.iter().product();
    // With a non-empty output every divisor element is used at least once.
    check_i64_op(op, || total > 0 && b.contains(&0))?;
    macro_rules! run_inline {
        ($f:expr) => {
            broadcast_map(a, ad, b, bd, out, $f)
        };
    }
    Ok(i64_ops!(op, run_inline))
}

/// Elementwise `op(x, scalar)`, the scalar converted to `x`'s dtype.
pub(crate) fn binary_scalar(op: BinaryOp, x: &NativeStorage, scalar: f64) -> Result<NativeStorage> {
    match x {
        NativeStorage::F32(v) => {
            let s = scalar as f32;
            macro_rules! run_inline {
                ($f:expr) => {{
                    let f = $f;
                    map(v, move |a| f(a, s))
                }};
            }
            Ok(NativeStorage::F32(f32_ops!(op, run_inline)))
        }
        NativeStorage::I64(v) => {
            let s = scalar as i64;
            check_i64_op(op, || s == 0 && !v.is_empty())?;
            macro_rules! run_inline {
                ($f:expr) => {{
                    let f = $f;
                    map(v, move |a| f(a, s))
                }};
            }
            Ok(NativeStorage::I64(i64_ops!(op, run_inline)))
        }
    }
}

/// `cond != 0 ? on_true : on_false`, elementwise.
pub(crate) fn where_cond(
    cond: &NativeStorage,
    on_true: &NativeStorage,
    on_false: &NativeStorage,
) -> Result<NativeStorage> {
    let n = cond.len();
    if on_true.len() != n || on_false.len() != n {
        return Err(backend_err(format!(
            "where: storages differ in length (cond {n}, on_true {}, on_false {})",
            on_true.len(),
            on_false.len()
        )));
    }
    let mask: Vec<bool> = match cond {
        NativeStorage::F32(c) => map(c, |v| v != 0.0),
        NativeStorage::I64(c) => map(c, |v| v != 0),
    };
    fn select<T: Copy + Send + Sync + Default>(m: &[bool], t: &[T], f: &[T]) -> Vec<T> {
        let mut out = vec![T::default(); m.len()];
        let kernel = |o: &mut [T], m: &[bool], t: &[T], f: &[T]| {
            for (((o, &m), &t), &f) in o.iter_mut().zip(m).zip(t).zip(f) {
                *o = if m { t } else { f };
            }
        };
        if m.len() >= PAR_THRESHOLD {
            out.par_chunks_mut(PAR_CHUNK)
                .zip(m.par_chunks(PAR_CHUNK))
                .zip(t.par_chunks(PAR_CHUNK).zip(f.par_chunks(PAR_CHUNK)))
                .for_each(|((o, m), (t, f))| kernel(o, m, t, f));
        } else {
            kernel(&mut out, m, t, f);
        }
        out
    }
    match (on_true, on_false) {
        (NativeStorage::F32(t), NativeStorage::F32(f)) => Ok(NativeStorage::F32(select(&mask, t, f))),
        (NativeStorage::I64(t), NativeStorage::I64(f)) => Ok(NativeStorage::I64(select(&mask, t, f))),
        _ => Err(Error::DTypeMismatch { op: "where", expected: on_true.dtype(), received: on_false.dtype() }),
    }
}

/// Converts to `dtype`; `f32 → i64` truncates towards zero and saturates
/// (NaN becomes 0).
pub(crate) fn cast(x: &NativeStorage, dtype: DType) -> NativeStorage {
    match (x, dtype) {
        (NativeStorage::F32(v), DType::F32) => NativeStorage::F32(v.clone()),
        (NativeStorage::I64(v), DType::I64) => NativeStorage::I64(v.clone()),
        (NativeStorage::F32(v), DType::I64) => NativeStorage::I64(map(v, |a| a as i64)),
        (NativeStorage::I64(v), DType::F32) => NativeStorage::F32(map(v, |a| a as f32)),
    }
}

/// `len` copies of `value` converted to `dtype` (saturating for `i64`); an
/// allocation the machine cannot make is an [`Error::SizeOverflow`], not an
/// abort.
pub(crate) fn full(value: f64, len: usize, dtype: DType) -> Result<NativeStorage> {
    Ok(match dtype {
        DType::F32 => NativeStorage::F32(filled("full", value as f32, len)?),
        DType::I64 => NativeStorage::I64(filled("full", value as i64, len)?),
    })
}

/// `len` copies of `value` in a buffer allocated fallibly.
fn filled<T: Copy>(op: &str, value: T, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|e| Error::SizeOverflow {
        op: format!("{} {op}", crate::storage::NAME),
        message: format!(
            "cannot allocate {} bytes for {len} elements: {e}",
            len as u128 * std::mem::size_of::<T>() as u128
        ),
    })?;
    v.resize(len, value);
    Ok(v)
}
