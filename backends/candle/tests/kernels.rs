//! Kernel tests for the candle backend with hand-checked numbers.
//!
//! The cross-backend conformance suite (strata_core::conformance) checks every
//! op against the f64 references; these tests cover candle-specific edges:
//! broadcasting, transposed and broadcast matmul operands, multi-axis
//! reductions, ties, index validation, stability, empty tensors and integer
//! division.

use strata_candle::{CandleBackend, CandleStorage};
use strata_core::{Backend, BinaryOp, DType, Error, FastPaths, MatmulSpec, ReduceOp, Shape, Storage, Tensor, UnaryOp};

fn be() -> CandleBackend {
    CandleBackend::cpu()
}

fn f(b: &CandleBackend, v: &[f32]) -> Storage {
    b.upload_f32(v.to_vec()).unwrap()
}

fn i(b: &CandleBackend, v: &[i64]) -> Storage {
    b.upload_i64(v.to_vec()).unwrap()
}

fn sh(d: &[usize]) -> Shape {
    Shape::from(d)
}

fn fv(b: &CandleBackend, s: &Storage) -> Vec<f32> {
    b.download_f32(s).unwrap()
}

fn iv(b: &CandleBackend, s: &Storage) -> Vec<i64> {
    b.download_i64(s).unwrap()
}

fn assert_close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "lengths differ: {got:?} vs {want:?}");
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= tol * (1.0 + w.abs());
        assert!(ok, "element {k}: got {g}, want {w} (got {got:?}, want {want:?})");
    }
}

fn assert_bits(got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len());
    for (k, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()), "element {k}: got {g:?}, want {w:?}");
    }
}

/// Deterministic test data without an RNG dependency.
fn data(n: usize, seed: u32) -> Vec<f32> {
    let mut s = seed.wrapping_mul(2_654_435_761).wrapping_add(12345);
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            (s % 2001) as f32 / 1000.0 - 1.0
        })
        .collect()
}

// ------------------------------------------------------------------- basics

#[test]
fn names_and_devices() {
    assert_eq!(be().name(), "candle-cpu");
    assert_eq!(strata_candle::cpu().name(), "candle-cpu");
    if !cfg!(feature = "cuda") {
        let e = strata_candle::cuda(0).unwrap_err();
        assert!(matches!(e, Error::UnknownBackend { .. }), "{e}");
        assert!(e.to_string().contains("cuda` feature"), "{e}");
        assert!(!strata_candle::is_cuda_available());
    }
}

#[test]
fn round_trips_and_full() {
    let b = be();
    assert_eq!(fv(&b, &f(&b, &[1.5, -2.0])), vec![1.5, -2.0]);
    assert_eq!(iv(&b, &i(&b, &[i64::MIN, 7, i64::MAX])), vec![i64::MIN, 7, i64::MAX]);
    assert_eq!(fv(&b, &b.full(2.5, 3, DType::F32).unwrap()), vec![2.5; 3]);
    assert_eq!(iv(&b, &b.full(-3.0, 2, DType::I64).unwrap()), vec![-3, -3]);
    assert!(b.full(1.0, 0, DType::F32).unwrap().is_empty());
    // to_f32 of an i64 storage is a dtype error, not a panic.
    assert!(matches!(b.download_f32(&i(&b, &[1])), Err(Error::DTypeMismatch { .. })));
}

#[test]
fn foreign_storage_is_an_error() {
    let b = be();
    let foreign = Storage::new(vec![1.0f32, 2.0], DType::F32, 2);
    let e = b.unary(UnaryOp::Exp, &foreign).unwrap_err();
    assert!(matches!(&e, Error::Backend { backend, .. } if backend == "candle-cpu"), "{e}");
    assert!(b.download_f32(&foreign).is_err());
    let ok = f(&b, &[1.0, 2.0]);
    assert!(b.binary(BinaryOp::Add, &ok, &sh(&[2]), &foreign, &sh(&[2]), &sh(&[2])).is_err());
    // The storage exposes the candle tensor.
    assert_eq!(ok.downcast_ref::<CandleStorage>().unwrap().tensor().dims(), &[2]);
}

// ---------------------------------------------------------------- elementwise

#[test]
fn unary_matches_reference() {
    let b = be();
    let xs = [-3.5f32, -1.0, -0.25, 0.0, 0.3, 1.0, 2.5, 7.0];
    let s = f(&b, &xs);
    for op in UnaryOp::ALL {
        let got = fv(&b, &b.unary(op, &s).unwrap());
        let want: Vec<f32> = xs.iter().map(|&x| op.reference(x as f64) as f32).collect();
        assert_close(&got, &want, 2e-6);
    }
}

#[test]
fn softplus_and_sigmoid_do_not_overflow() {
    let b = be();
    let xs = [-1000.0f32, -100.0, -20.0, -1e-3, 0.0, 1e-3, 20.0, 100.0, 1000.0];
    let s = f(&b, &xs);
    let sp = fv(&b, &b.unary(UnaryOp::Softplus, &s).unwrap());
    let want: Vec<f32> = xs.iter().map(|&x| UnaryOp::Softplus.reference(x as f64) as f32).collect();
    assert!(sp.iter().all(|v| v.is_finite()), "{sp:?}");
    // Relative accuracy even where softplus is tiny (e^-20 ≈ 2e-9).
    assert_close(&sp, &want, 1e-6);
    assert!(sp[2] > 0.0);
    let sg = fv(&b, &b.unary(UnaryOp::Sigmoid, &s).unwrap());
    assert_close(&sg, &xs.iter().map(|&x| UnaryOp::Sigmoid.reference(x as f64) as f32).collect::<Vec<_>>(), 1e-6);
    let big = fv(&b, &b.unary(UnaryOp::Softplus, &f(&b, &[f32::INFINITY, f32::NEG_INFINITY, f32::NAN])).unwrap());
    assert_eq!(big[0], f32::INFINITY);
    assert_eq!(big[1], 0.0);
    assert!(big[2].is_nan());
}

#[test]
fn integer_unary() {
    let b = be();
    let s = i(&b, &[-5, -1, 0, 3]);
    let run = |op| iv(&b, &b.unary(op, &s).unwrap());
    assert_eq!(run(UnaryOp::Neg), vec![5, 1, 0, -3]);
    assert_eq!(run(UnaryOp::Abs), vec![5, 1, 0, 3]);
    assert_eq!(run(UnaryOp::Sign), vec![-1, -1, 0, 1]);
    assert_eq!(run(UnaryOp::Square), vec![25, 1, 0, 9]);
    assert_eq!(run(UnaryOp::Relu), vec![0, 0, 0, 3]);
    assert_eq!(run(UnaryOp::Floor), vec![-5, -1, 0, 3]);
    assert_eq!(run(UnaryOp::Ceil), vec![-5, -1, 0, 3]);
    assert!(matches!(b.unary(UnaryOp::Exp, &s), Err(Error::DTypeMismatch { .. })));
}

#[test]
fn binary_broadcasting() {
    let b = be();
    // [2, 3] + [3]
    let x = f(&b, &[1., 2., 3., 4., 5., 6.]);
    let r = f(&b, &[10., 20., 30.]);
    let out = b.binary(BinaryOp::Add, &x, &sh(&[2, 3]), &r, &sh(&[3]), &sh(&[2, 3])).unwrap();
    assert_eq!(fv(&b, &out), vec![11., 22., 33., 14., 25., 36.]);
    // [2, 1, 3] * [4, 1] -> [2, 4, 3]
    let l = f(&b, &[1., 2., 3., 4., 5., 6.]);
    let r = f(&b, &[1., 10., 100., 1000.]);
    let out = fv(&b, &b.binary(BinaryOp::Mul, &l, &sh(&[2, 1, 3]), &r, &sh(&[4, 1]), &sh(&[2, 4, 3])).unwrap());
    let mut want = vec![];
    for a in 0..2 {
        for c in 0..4 {
            for d in 0..3 {
                want.push([1., 2., 3., 4., 5., 6.][a * 3 + d] * [1., 10., 100., 1000.][c]);
            }
        }
    }
    assert_eq!(out, want);
    // rank-0 lhs minus [2, 2]
    let s = f(&b, &[1.0]);
    let m = f(&b, &[1., 2., 3., 4.]);
    let out = b.binary(BinaryOp::Sub, &s, &Shape::scalar(), &m, &sh(&[2, 2]), &sh(&[2, 2])).unwrap();
    assert_eq!(fv(&b, &out), vec![0., -1., -2., -3.]);
    // [3, 1] / [1, 2]
    let l = f(&b, &[2., 4., 8.]);
    let r = f(&b, &[1., 2.]);
    let out = b.binary(BinaryOp::Div, &l, &sh(&[3, 1]), &r, &sh(&[1, 2]), &sh(&[3, 2])).unwrap();
    assert_eq!(fv(&b, &out), vec![2., 1., 4., 2., 8., 4.]);
}

#[test]
fn comparisons_return_operand_dtype() {
    let b = be();
    let l = f(&b, &[1., 2., 3., f32::NAN]);
    let r = f(&b, &[2.]);
    let cmp = |op| fv(&b, &b.binary(op, &l, &sh(&[4]), &r, &sh(&[1]), &sh(&[4])).unwrap());
    assert_eq!(cmp(BinaryOp::Eq), vec![0., 1., 0., 0.]);
    assert_eq!(cmp(BinaryOp::Ne), vec![1., 0., 1., 1.]);
    assert_eq!(cmp(BinaryOp::Lt), vec![1., 0., 0., 0.]);
    assert_eq!(cmp(BinaryOp::Le), vec![1., 1., 0., 0.]);
    assert_eq!(cmp(BinaryOp::Gt), vec![0., 0., 1., 0.]);
    assert_eq!(cmp(BinaryOp::Ge), vec![0., 1., 1., 0.]);
    let li = i(&b, &[1, 2, 3]);
    let ri = i(&b, &[2, 2, 2]);
    let out = b.binary(BinaryOp::Ge, &li, &sh(&[3]), &ri, &sh(&[3]), &sh(&[3])).unwrap();
    assert_eq!(out.dtype(), DType::I64);
    assert_eq!(iv(&b, &out), vec![0, 1, 1]);
    let out = b.binary_scalar(BinaryOp::Lt, &l, &sh(&[4]), 2.5).unwrap();
    assert_eq!(fv(&b, &out), vec![1., 1., 0., 0.]);
}

#[test]
fn pow_follows_ieee_powf() {
    let b = be();
    let a = [-2.0f32, -2.0, -2.0, -8.0, 0.0, 0.0, 0.0, 1.0, f32::NAN, 3.0, 2.0, -0.5];
    let e = [3.0f32, 2.0, 0.5, -1.0, 0.0, 2.0, -1.0, f32::NAN, 0.0, 2.0, 10.0, -3.0];
    let got = fv(&b, &b.binary(BinaryOp::Pow, &f(&b, &a), &sh(&[12]), &f(&b, &e), &sh(&[12]), &sh(&[12])).unwrap());
    let want: Vec<f32> = a.iter().zip(&e).map(|(&x, &y)| x.powf(y)).collect();
    assert_bits(&got, &want);
    assert_eq!(got[0], -8.0);
    assert_eq!(got[1], 4.0);
    assert!(got[2].is_nan());
    assert_eq!(got[4], 1.0);
    assert_eq!(got[7], 1.0);
    // scalar exponent
    let got = fv(&b, &b.binary_scalar(BinaryOp::Pow, &f(&b, &[-3.0, 2.0, 0.0]), &sh(&[3]), 3.0).unwrap());
    assert_eq!(got, vec![-27.0, 8.0, 0.0]);
    // broadcast exponent
    let got = b
        .binary(BinaryOp::Pow, &f(&b, &[-1.0, 2.0]), &sh(&[2, 1]), &f(&b, &[1.0, 2.0, 3.0]), &sh(&[3]), &sh(&[2, 3]))
        .unwrap();
    assert_eq!(fv(&b, &got), vec![-1.0, 1.0, -1.0, 2.0, 4.0, 8.0]);
}

#[test]
/// Keras / NumPy semantics: `maximum` and `minimum` return NaN when either side is NaN
/// (so `relu(NaN)` and a clip of a NaN stay NaN and a NaN is never hidden).
fn maximum_minimum_propagate_nan_like_numpy() {
    let b = be();
    let l = f(&b, &[f32::NAN, 1.0, 3.0, f32::NAN]);
    let r = f(&b, &[1.0, f32::NAN, 2.0, f32::NAN]);
    let mx = fv(&b, &b.binary(BinaryOp::Maximum, &l, &sh(&[4]), &r, &sh(&[4]), &sh(&[4])).unwrap());
    let mn = fv(&b, &b.binary(BinaryOp::Minimum, &l, &sh(&[4]), &r, &sh(&[4]), &sh(&[4])).unwrap());
    assert_bits(&mx, &[f32::NAN, f32::NAN, 3.0, f32::NAN]);
    assert_bits(&mn, &[f32::NAN, f32::NAN, 2.0, f32::NAN]);
    let clip = fv(&b, &b.binary_scalar(BinaryOp::Maximum, &f(&b, &[-1.0, 0.5, f32::NAN]), &sh(&[3]), 0.0).unwrap());
    assert_bits(&clip, &[0.0, 0.5, f32::NAN]);
    let li = i(&b, &[1, 5, -3]);
    let ri = i(&b, &[2]);
    assert_eq!(iv(&b, &b.binary(BinaryOp::Maximum, &li, &sh(&[3]), &ri, &sh(&[1]), &sh(&[3])).unwrap()), vec![2, 5, 2]);
}

#[test]
fn integer_division() {
    let b = be();
    let l = i(&b, &[7, -7, 6, 0]);
    let r = i(&b, &[2, 2, -4, 5]);
    let q = b.binary(BinaryOp::Div, &l, &sh(&[4]), &r, &sh(&[4]), &sh(&[4])).unwrap();
    assert_eq!(iv(&b, &q), vec![3, -3, -1, 0]);
    let z = i(&b, &[1, 0, 3, 4]);
    let e = b.binary(BinaryOp::Div, &l, &sh(&[4]), &z, &sh(&[4]), &sh(&[4])).unwrap_err();
    assert!(e.to_string().contains("division by zero"), "{e}");
    assert!(b.binary_scalar(BinaryOp::Div, &l, &sh(&[4]), 0.0).is_err());
    // broadcast zero divisor
    assert!(b.binary(BinaryOp::Div, &l, &sh(&[4]), &i(&b, &[0]), &sh(&[1]), &sh(&[4])).is_err());
    let e = b.binary_scalar(BinaryOp::Div, &i(&b, &[i64::MIN, 4]), &sh(&[2]), -1.0).unwrap_err();
    assert!(e.to_string().contains("overflow"), "{e}");
    assert_eq!(
        iv(&b, &b.binary_scalar(BinaryOp::Div, &i(&b, &[i64::MIN, 4]), &sh(&[2]), 2.0).unwrap()),
        vec![i64::MIN / 2, 2]
    );
    // integer pow is rejected
    assert!(b.binary(BinaryOp::Pow, &l, &sh(&[4]), &r, &sh(&[4]), &sh(&[4])).is_err());
}

#[test]
fn scalar_ops_are_exact() {
    let b = be();
    let xs = [-0.0f32, 0.0, 1.5, -2.25, f32::INFINITY, 1e-30, 3.0];
    let s = f(&b, &xs);
    for (op, sc) in [
        (BinaryOp::Add, 0.1),
        (BinaryOp::Sub, 0.1),
        (BinaryOp::Mul, 3.3),
        (BinaryOp::Mul, -1.0),
        (BinaryOp::Mul, 0.0),
        (BinaryOp::Div, 3.0),
        (BinaryOp::Add, 0.0),
    ] {
        let got = fv(&b, &b.binary_scalar(op, &s, &sh(&[7]), sc).unwrap());
        let s32 = sc as f32;
        let want: Vec<f32> = xs
            .iter()
            .map(|&x| match op {
                BinaryOp::Add => x + s32,
                BinaryOp::Sub => x - s32,
                BinaryOp::Mul => x * s32,
                _ => x / s32,
            })
            .collect();
        assert_bits(&got, &want);
    }
    let si = i(&b, &[3, -4]);
    assert_eq!(iv(&b, &b.binary_scalar(BinaryOp::Mul, &si, &sh(&[2]), 3.0).unwrap()), vec![9, -12]);
    assert_eq!(iv(&b, &b.binary_scalar(BinaryOp::Sub, &si, &sh(&[2]), 5.0).unwrap()), vec![-2, -9]);
}

// ----------------------------------------------------------------- reductions

/// Naive keep-dim reduction over `axes` of a row-major `dims` array.
fn naive_reduce(x: &[f32], dims: &[usize], axes: &[usize], init: f32, f: impl Fn(f32, f32) -> f32) -> Vec<f32> {
    let out_dims: Vec<usize> = dims.iter().enumerate().map(|(k, &d)| if axes.contains(&k) { 1 } else { d }).collect();
    let mut out = vec![init; out_dims.iter().product()];
    let strides = Shape::from(dims).strides();
    let ostrides = Shape::from(out_dims.clone()).strides();
    for (flat, &v) in x.iter().enumerate() {
        let mut o = 0;
        for k in 0..dims.len() {
            let idx = (flat / strides[k]) % dims[k];
            if !axes.contains(&k) {
                o += idx * ostrides[k];
            }
        }
        out[o] = f(out[o], v);
    }
    out
}

#[test]
fn reductions_over_several_axes() {
    let b = be();
    let dims = [2, 3, 4, 5];
    let x = data(120, 1);
    let s = f(&b, &x);
    for axes in [vec![0], vec![1], vec![3], vec![0, 2], vec![1, 2], vec![2, 3], vec![0, 1, 3], vec![0, 1, 2, 3]] {
        let sum = fv(&b, &b.reduce(ReduceOp::Sum, &s, &sh(&dims), &axes).unwrap());
        assert_close(&sum, &naive_reduce(&x, &dims, &axes, 0.0, |a, v| a + v), 1e-5);
        let mx = fv(&b, &b.reduce(ReduceOp::Max, &s, &sh(&dims), &axes).unwrap());
        assert_eq!(mx, naive_reduce(&x, &dims, &axes, f32::NEG_INFINITY, f32::max), "max over {axes:?}");
        let mn = fv(&b, &b.reduce(ReduceOp::Min, &s, &sh(&dims), &axes).unwrap());
        assert_eq!(mn, naive_reduce(&x, &dims, &axes, f32::INFINITY, f32::min), "min over {axes:?}");
    }
    let si = i(&b, &[1, 2, 3, 4, 5, 6]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::Sum, &si, &sh(&[2, 3]), &[0]).unwrap()), vec![5, 7, 9]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::Max, &si, &sh(&[2, 3]), &[1]).unwrap()), vec![3, 6]);
}

#[test]
fn argmax_argmin_pick_the_first_tie() {
    let b = be();
    let x = f(&b, &[1., 3., 3., 0., 2., 2., 0., 2.]);
    let am = b.reduce(ReduceOp::ArgMax, &x, &sh(&[2, 4]), &[1]).unwrap();
    assert_eq!(am.dtype(), DType::I64);
    assert_eq!(iv(&b, &am), vec![1, 0]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::ArgMin, &x, &sh(&[2, 4]), &[1]).unwrap()), vec![3, 2]);
    // along axis 0 (strided lanes): columns [1,2], [3,2], [3,0], [0,2]
    assert_eq!(iv(&b, &b.reduce(ReduceOp::ArgMax, &x, &sh(&[2, 4]), &[0]).unwrap()), vec![1, 0, 0, 1]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::ArgMin, &x, &sh(&[2, 4]), &[0]).unwrap()), vec![0, 1, 1, 0]);
    let all_same = f(&b, &[5.0; 6]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::ArgMax, &all_same, &sh(&[3, 2]), &[0]).unwrap()), vec![0, 0]);
    let ints = i(&b, &[4, 9, 9, -1]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::ArgMax, &ints, &sh(&[4]), &[0]).unwrap()), vec![1]);
    assert!(b.reduce(ReduceOp::ArgMax, &x, &sh(&[2, 4]), &[0, 1]).is_err());
}

// --------------------------------------------------------------------- matmul

/// Naive batched product following the MatmulSpec definition literally.
fn naive_matmul(l: &[f32], r: &[f32], s: &MatmulSpec) -> Vec<f32> {
    let mut out = vec![0.0f32; s.batch * s.m * s.n];
    for bi in 0..s.batch {
        let lo = bi * s.lhs_batch_stride;
        let ro = bi * s.rhs_batch_stride;
        for row in 0..s.m {
            for col in 0..s.n {
                let mut acc = 0.0f64;
                for kk in 0..s.k {
                    let a = if s.trans_lhs { l[lo + kk * s.m + row] } else { l[lo + row * s.k + kk] };
                    let c = if s.trans_rhs { r[ro + col * s.k + kk] } else { r[ro + kk * s.n + col] };
                    acc += a as f64 * c as f64;
                }
                out[(bi * s.m + row) * s.n + col] = acc as f32;
            }
        }
    }
    out
}

#[test]
fn matmul_all_transposes_and_batch_strides() {
    let b = be();
    let (m, n, k) = (3, 5, 4);
    for batch in [1, 3] {
        for trans_lhs in [false, true] {
            for trans_rhs in [false, true] {
                for (ls, rs) in [(m * k, k * n), (0, k * n), (m * k, 0), (0, 0)] {
                    let spec =
                        MatmulSpec { batch, m, n, k, trans_lhs, trans_rhs, lhs_batch_stride: ls, rhs_batch_stride: rs };
                    let lv = data(if ls == 0 { m * k } else { batch * m * k }, 7);
                    let rv = data(if rs == 0 { k * n } else { batch * k * n }, 9);
                    let got = fv(&b, &b.matmul(&f(&b, &lv), &f(&b, &rv), &spec).unwrap());
                    assert_close(&got, &naive_matmul(&lv, &rv, &spec), 1e-5);
                }
            }
        }
    }
}

#[test]
fn matmul_unusual_strides_and_edges() {
    let b = be();
    // Batch stride larger than a matrix (gaps), and overlapping matrices.
    for stride in [7, 2] {
        let spec = MatmulSpec {
            batch: 3,
            m: 2,
            n: 2,
            k: 3,
            trans_lhs: false,
            trans_rhs: true,
            lhs_batch_stride: stride,
            rhs_batch_stride: 6,
        };
        let lv = data(2 * stride + 6, 3);
        let rv = data(18, 4);
        let got = fv(&b, &b.matmul(&f(&b, &lv), &f(&b, &rv), &spec).unwrap());
        assert_close(&got, &naive_matmul(&lv, &rv, &spec), 1e-5);
    }
    // k == 0 gives zeros; m == 0 gives an empty result.
    let spec = MatmulSpec {
        batch: 2,
        m: 2,
        n: 3,
        k: 0,
        trans_lhs: false,
        trans_rhs: false,
        lhs_batch_stride: 0,
        rhs_batch_stride: 0,
    };
    assert_eq!(fv(&b, &b.matmul(&f(&b, &[]), &f(&b, &[]), &spec).unwrap()), vec![0.0; 12]);
    let spec = MatmulSpec { m: 0, k: 2, ..spec };
    assert!(b.matmul(&f(&b, &[]), &f(&b, &[1.0; 6]), &spec).unwrap().is_empty());
    // Too little data is an error, not a panic.
    let spec = MatmulSpec { m: 2, k: 2, ..spec };
    assert!(b.matmul(&f(&b, &[1.0; 3]), &f(&b, &[1.0; 6]), &spec).is_err());
}

#[test]
fn matmul_through_the_front_end() {
    let dev = strata_candle::cpu();
    // [2, 3, 4] · [4, 2] folds the batch; [2, 3, 4] · [2, 4, 2] is batched.
    let a = Tensor::new(data(24, 1), [2, 3, 4], &dev).unwrap();
    let w = Tensor::new(data(8, 2), [4, 2], &dev).unwrap();
    let wb = Tensor::concat(&[&w.unsqueeze(0).unwrap(), &w.unsqueeze(0).unwrap()], 0).unwrap();
    let y1 = a.matmul(&w).unwrap().to_vec::<f32>().unwrap();
    let y2 = a.matmul(&wb).unwrap().to_vec::<f32>().unwrap();
    assert_close(&y1, &y2, 1e-6);
    let yt = a.matmul_t(&a, false, true).unwrap();
    assert_eq!(yt.dims(), &[2, 3, 3]);
}

// ----------------------------------------------------------------- data movement

#[test]
fn permute_broadcast_narrow_concat() {
    let b = be();
    let x = f(&b, &(0..24).map(|v| v as f32).collect::<Vec<_>>());
    let p = fv(&b, &b.permute(&x, &sh(&[2, 3, 4]), &[2, 0, 1]).unwrap());
    let mut want = vec![];
    for c in 0..4 {
        for a in 0..2 {
            for bb in 0..3 {
                want.push((a * 12 + bb * 4 + c) as f32);
            }
        }
    }
    assert_eq!(p, want);
    let bc = fv(&b, &b.broadcast_to(&f(&b, &[1., 2.]), &sh(&[2, 1]), &sh(&[3, 2, 2])).unwrap());
    assert_eq!(bc, vec![1., 1., 2., 2., 1., 1., 2., 2., 1., 1., 2., 2.]);
    let nr = fv(&b, &b.narrow(&x, &sh(&[2, 3, 4]), 2, 1, 2).unwrap());
    assert_eq!(nr, vec![1., 2., 5., 6., 9., 10., 13., 14., 17., 18., 21., 22.]);
    assert!(b.narrow(&x, &sh(&[2, 3, 4]), 2, 3, 2).is_err());
    let a = f(&b, &[1., 2., 3., 4.]);
    let c = f(&b, &[5., 6.]);
    let cat = fv(&b, &b.concat(&[(&a, &sh(&[2, 2])), (&c, &sh(&[2, 1]))], 1).unwrap());
    assert_eq!(cat, vec![1., 2., 5., 3., 4., 6.]);
    let e = f(&b, &[]);
    let cat = fv(&b, &b.concat(&[(&e, &sh(&[2, 0])), (&a, &sh(&[2, 2])), (&e, &sh(&[2, 0]))], 1).unwrap());
    assert_eq!(cat, vec![1., 2., 3., 4.]);
    let ci = iv(&b, &b.concat(&[(&i(&b, &[1]), &sh(&[1])), (&i(&b, &[2, 3]), &sh(&[2]))], 0).unwrap());
    assert_eq!(ci, vec![1, 2, 3]);
}

#[test]
fn gather_and_index_add() {
    let b = be();
    let x = f(&b, &[0., 1., 2., 10., 11., 12., 20., 21., 22.]);
    let g = fv(&b, &b.gather(&x, &sh(&[3, 3]), 0, &i(&b, &[2, 0, 2])).unwrap());
    assert_eq!(g, vec![20., 21., 22., 0., 1., 2., 20., 21., 22.]);
    let g = fv(&b, &b.gather(&x, &sh(&[3, 3]), 1, &i(&b, &[1, 1])).unwrap());
    assert_eq!(g, vec![1., 1., 11., 11., 21., 21.]);
    for bad in [3i64, -1, i64::MAX] {
        match b.gather(&x, &sh(&[3, 3]), 1, &i(&b, &[0, bad])) {
            Err(Error::IndexOutOfRange { op, index, axis, size, shape }) => {
                assert_eq!((op, index, axis, size), ("gather", bad, 1, 3));
                assert_eq!(shape, sh(&[3, 3]));
            }
            other => panic!("expected IndexOutOfRange, got {other:?}"),
        }
    }
    // index_add accumulates repeated indices, along either axis.
    let z = b.full(0.0, 6, DType::F32).unwrap();
    let src = f(&b, &[1., 2., 3., 4., 5., 6.]);
    let r = fv(&b, &b.index_add(&z, &sh(&[2, 3]), 1, &i(&b, &[2, 0, 2]), &src).unwrap());
    assert_eq!(r, vec![2., 0., 4., 5., 0., 10.]);
    let base = f(&b, &[1., 1., 1., 1.]);
    let src = f(&b, &[1., 2., 3., 4., 5., 6.]);
    let r = fv(&b, &b.index_add(&base, &sh(&[2, 2]), 0, &i(&b, &[1, 1, 0]), &src).unwrap());
    assert_eq!(r, vec![6., 7., 5., 7.]);
    // the input is unchanged
    assert_eq!(fv(&b, &base), vec![1.; 4]);
    let e = b.index_add(&base, &sh(&[2, 2]), 0, &i(&b, &[2]), &f(&b, &[1., 1.])).unwrap_err();
    assert!(matches!(e, Error::IndexOutOfRange { op: "index_add", index: 2, axis: 0, size: 2, .. }), "{e}");
    assert!(b.index_add(&base, &sh(&[2, 2]), 0, &i(&b, &[-5]), &f(&b, &[1., 1.])).is_err());
    let ri = iv(&b, &b.index_add(&i(&b, &[1, 2]), &sh(&[2]), 0, &i(&b, &[0, 0]), &i(&b, &[5, 6])).unwrap());
    assert_eq!(ri, vec![12, 2]);
}

#[test]
fn where_and_cast() {
    let b = be();
    let t = f(&b, &[1., 2., 3., 4.]);
    let e = f(&b, &[-1., -2., -3., -4.]);
    let c = f(&b, &[1., 0., f32::NAN, -0.0]);
    assert_eq!(fv(&b, &b.where_cond(&c, &t, &e).unwrap()), vec![1., -2., 3., -4.]);
    let ci = i(&b, &[0, 5, -1, 0]);
    assert_eq!(fv(&b, &b.where_cond(&ci, &t, &e).unwrap()), vec![-1., 2., 3., -4.]);
    let ti = i(&b, &[1, 2, 3, 4]);
    assert_eq!(iv(&b, &b.where_cond(&c, &ti, &i(&b, &[0; 4])).unwrap()), vec![1, 0, 3, 0]);
    assert!(b.where_cond(&c, &t, &ti).is_err());
    let x = f(&b, &[-1.7, 2.9, -0.2, 1e20, f32::NAN]);
    assert_eq!(iv(&b, &b.cast(&x, DType::I64).unwrap()), vec![-1, 2, 0, i64::MAX, 0]);
    assert_eq!(fv(&b, &b.cast(&i(&b, &[-3, 1 << 40]), DType::F32).unwrap()), vec![-3.0, (1u64 << 40) as f32]);
    assert_eq!(fv(&b, &b.cast(&t, DType::F32).unwrap()), vec![1., 2., 3., 4.]);
}

// -------------------------------------------------------------------- softmax

#[test]
fn softmax_is_stable() {
    let b = be();
    let x = [1000.0f32, 1001.0, 1002.0, -1000.0, 0.0, 1000.0, f32::NEG_INFINITY, 0.0, 0.0];
    let s = f(&b, &x);
    let sm = fv(&b, &b.softmax(&s, &sh(&[3, 3])).unwrap());
    let lsm = fv(&b, &b.log_softmax(&s, &sh(&[3, 3])).unwrap());
    for row in 0..3 {
        let r = &x[row * 3..row * 3 + 3];
        let max = r.iter().fold(f64::NEG_INFINITY, |a, &v| a.max(v as f64));
        let lse = max + r.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
        for c in 0..3 {
            let want_l = r[c] as f64 - lse;
            assert_close(&[lsm[row * 3 + c]], &[want_l as f32], 1e-6);
            assert_close(&[sm[row * 3 + c]], &[want_l.exp() as f32], 1e-6);
        }
    }
    assert!(sm.iter().all(|v| v.is_finite()));
    assert_eq!(lsm[3], -2000.0);
    assert_eq!(lsm[6], f32::NEG_INFINITY);
    // rank 1
    let one = fv(&b, &b.log_softmax(&f(&b, &[0.0, 0.0]), &sh(&[2])).unwrap());
    assert_close(&one, &[-std::f32::consts::LN_2; 2], 1e-7);
}

// ------------------------------------------------------------------ empties

#[test]
fn empty_tensors_everywhere() {
    let b = be();
    let e = f(&b, &[]);
    let ei = i(&b, &[]);
    let s03 = sh(&[0, 3]);
    assert!(fv(&b, &e).is_empty());
    for op in UnaryOp::ALL {
        assert!(b.unary(op, &e).unwrap().is_empty());
    }
    assert!(b.unary(UnaryOp::Neg, &ei).unwrap().is_empty());
    for op in BinaryOp::ALL {
        assert!(b.binary(op, &e, &s03, &f(&b, &[1., 2., 3.]), &sh(&[3]), &s03).unwrap().is_empty());
        if op != BinaryOp::Pow {
            assert!(b.binary(op, &ei, &s03, &ei, &s03, &s03).unwrap().is_empty());
        }
        assert!(b.binary_scalar(op, &e, &s03, 2.0).unwrap().is_empty());
    }
    // Sum over an empty axis is zero; max over a non-empty axis of an empty tensor is empty.
    assert_eq!(fv(&b, &b.reduce(ReduceOp::Sum, &e, &s03, &[0]).unwrap()), vec![0.; 3]);
    assert_eq!(iv(&b, &b.reduce(ReduceOp::Sum, &ei, &s03, &[0, 1]).unwrap()), vec![0]);
    assert!(b.reduce(ReduceOp::Max, &e, &s03, &[1]).unwrap().is_empty());
    let am = b.reduce(ReduceOp::ArgMax, &e, &s03, &[1]).unwrap();
    assert!(am.is_empty() && am.dtype() == DType::I64);
    assert!(b.permute(&e, &s03, &[1, 0]).unwrap().is_empty());
    assert!(b.broadcast_to(&e, &s03, &sh(&[2, 0, 3])).unwrap().is_empty());
    assert!(b.broadcast_to(&f(&b, &[1.0]), &sh(&[1]), &sh(&[0])).unwrap().is_empty());
    assert!(b.narrow(&f(&b, &[1., 2.]), &sh(&[2]), 0, 1, 0).unwrap().is_empty());
    assert!(b.narrow(&e, &s03, 1, 1, 2).unwrap().is_empty());
    assert!(b.concat(&[(&e, &s03), (&e, &s03)], 0).unwrap().is_empty());
    assert!(b.gather(&f(&b, &[1., 2.]), &sh(&[2]), 0, &ei).unwrap().is_empty());
    assert!(b.gather(&e, &s03, 1, &i(&b, &[0, 2])).unwrap().is_empty());
    assert!(matches!(b.gather(&e, &s03, 0, &i(&b, &[0])), Err(Error::IndexOutOfRange { size: 0, .. })));
    assert_eq!(fv(&b, &b.index_add(&f(&b, &[1., 2.]), &sh(&[2]), 0, &ei, &e).unwrap()), vec![1., 2.]);
    assert!(b.index_add(&e, &s03, 1, &i(&b, &[0]), &e).unwrap().is_empty());
    assert!(b.where_cond(&e, &e, &e).unwrap().is_empty());
    assert!(b.cast(&e, DType::I64).unwrap().is_empty());
    assert!(b.softmax(&e, &s03).unwrap().is_empty());
    assert!(b.softmax(&e, &sh(&[3, 0])).unwrap().is_empty());
    assert!(b.log_softmax(&e, &sh(&[3, 0])).unwrap().is_empty());
    let spec = MatmulSpec {
        batch: 0,
        m: 2,
        n: 2,
        k: 2,
        trans_lhs: false,
        trans_rhs: false,
        lhs_batch_stride: 4,
        rhs_batch_stride: 4,
    };
    assert!(b.matmul(&e, &e, &spec).unwrap().is_empty());
}

// ------------------------------------------------------------------ front end

#[test]
fn front_end_reshapes_without_telling_the_backend() {
    let dev = strata_candle::cpu();
    let t = Tensor::arange(6, DType::F32, &dev).unwrap();
    let m = t.reshape([2, 3]).unwrap();
    assert_eq!(m.sum(&[1], false).unwrap().to_vec::<f32>().unwrap(), vec![3., 12.]);
    assert_eq!(m.t().unwrap().to_vec::<f32>().unwrap(), vec![0., 3., 1., 4., 2., 5.]);
    let col = t.reshape([3, 2]).unwrap().max(0, true).unwrap();
    assert_eq!(col.to_vec::<f32>().unwrap(), vec![4., 5.]);
    let ids = Tensor::new(vec![2i64, 0], [2], &dev).unwrap();
    assert_eq!(m.gather(1, &ids).unwrap().to_vec::<f32>().unwrap(), vec![2., 0., 5., 3.]);
}

#[test]
fn gradients_flow_through_candle_kernels() {
    let dev = strata_candle::cpu();
    let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev).unwrap();
    let w = Tensor::new(vec![0.5f32, -1.0], [2, 1], &dev).unwrap().to_variable().unwrap();
    let loss = x.matmul(&w).unwrap().square().unwrap().mean_all().unwrap();
    let g = loss.backward().unwrap().get(&w).unwrap().to_vec::<f32>().unwrap();
    // y = [-1.5, -2.5]; dL/dw = X^T (2 y / 2) = [1*-1.5 + 3*-2.5, 2*-1.5 + 4*-2.5]
    assert_close(&g, &[-9.0, -13.0], 1e-6);
    let logits = Tensor::new(vec![1000.0f32, 0.0, -1000.0], [1, 3], &dev).unwrap().to_variable().unwrap();
    let l = logits.log_softmax(-1).unwrap().sum_all().unwrap();
    let gl = l.backward().unwrap().get(&logits).unwrap().to_vec::<f32>().unwrap();
    assert_close(&gl, &[-2.0, 1.0, 1.0], 1e-6);
}
