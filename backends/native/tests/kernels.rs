//! Kernel-level tests of the native backend against naive reference loops.

use strata_core::{Backend, BinaryOp, DType, Error, FastPaths, MatmulSpec, ReduceOp, Shape, Storage, UnaryOp};
use strata_native::{NativeBackend, NativeStorage};

const B: NativeBackend = NativeBackend;

// ----------------------------------------------------------------- helpers

/// A small deterministic generator (xorshift64*), so tests need no extra crates.
struct Gen(u64);

impl Gen {
    fn new(seed: u64) -> Self {
        Gen(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [-1, 1).
    fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
    fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f()).collect()
    }
    fn ints(&mut self, n: usize, lo: i64, hi: i64) -> Vec<i64> {
        (0..n).map(|_| lo + (self.next() % (hi - lo) as u64) as i64).collect()
    }
}

fn f32s(v: Vec<f32>) -> Storage {
    B.upload_f32(v).unwrap()
}

fn i64s(v: Vec<i64>) -> Storage {
    B.upload_i64(v).unwrap()
}

fn get_f32(s: &Storage) -> Vec<f32> {
    B.download_f32(s).unwrap()
}

fn get_i64(s: &Storage) -> Vec<i64> {
    B.download_i64(s).unwrap()
}

fn shape(d: &[usize]) -> Shape {
    Shape::from(d)
}

fn numel(d: &[usize]) -> usize {
    d.iter().product()
}

/// Multi-index of flat position `i` in `dims`.
fn unravel(mut i: usize, dims: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; dims.len()];
    for a in (0..dims.len()).rev() {
        idx[a] = i % dims[a];
        i /= dims[a];
    }
    idx
}

fn ravel(idx: &[usize], dims: &[usize]) -> usize {
    idx.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// Flat index into `dims` (right-aligned, broadcast) of output multi-index `idx`.
fn broadcast_index(idx: &[usize], dims: &[usize]) -> usize {
    let lead = idx.len() - dims.len();
    let local: Vec<usize> = dims.iter().enumerate().map(|(a, &d)| if d == 1 { 0 } else { idx[lead + a] }).collect();
    ravel(&local, dims)
}

fn close(a: f32, b: f64, tol: f64) -> bool {
    if b.is_nan() {
        return a.is_nan();
    }
    if b.is_infinite() {
        return a as f64 == b;
    }
    (a as f64 - b).abs() <= tol * (1.0 + b.abs())
}

fn assert_close(got: &[f32], want: &[f64], tol: f64, what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        assert!(close(g, w, tol), "{what}: element {i}: got {g}, want {w}");
    }
}

fn broadcast_out(a: &[usize], b: &[usize]) -> Vec<usize> {
    Shape::broadcast("test", &shape(a), &shape(b)).unwrap().dims().to_vec()
}

// ------------------------------------------------------------ broadcasting

const BROADCAST_CASES: &[(&[usize], &[usize])] = &[
    (&[2, 3], &[2, 3]),
    (&[], &[]),
    (&[2, 3], &[]),
    (&[], &[2, 3]),
    (&[5, 4], &[1]),
    (&[1], &[3]),
    (&[5, 4], &[4]),
    (&[5, 4], &[5, 1]),
    (&[5, 1], &[5, 4]),
    (&[4], &[5, 4]),
    (&[4, 1, 3], &[2, 1]),
    (&[2, 1], &[4, 1, 3]),
    (&[5, 1], &[1, 4]),
    (&[2, 1, 3, 1], &[1, 4, 1, 5]),
    (&[3, 1, 2, 1, 4], &[3, 2, 2, 1, 4]),
    // Large enough for the parallel paths.
    (&[300, 200], &[300, 200]),
    (&[300, 200], &[200]),
    (&[300, 200], &[300, 1]),
    (&[300, 7, 20], &[7, 1]),
    (&[1, 70000], &[1]),
    (&[40, 1, 50], &[1, 30, 50]),
];

#[test]
fn binary_f32_broadcasting_matches_reference() {
    let mut g = Gen::new(1);
    for &(ld, rd) in BROADCAST_CASES {
        let out = broadcast_out(ld, rd);
        let a = g.vec(numel(ld));
        // Keep divisors and pow bases away from trouble.
        let b: Vec<f32> = g.vec(numel(rd)).into_iter().map(|v| v + 2.0).collect();
        // Make some elements equal so the comparisons see ties.
        let a: Vec<f32> = a.iter().enumerate().map(|(i, &v)| if i % 5 == 0 { b[i % b.len()] } else { v }).collect();
        for op in BinaryOp::ALL {
            let s = B.binary(op, &f32s(a.clone()), &shape(ld), &f32s(b.clone()), &shape(rd), &shape(&out)).unwrap();
            let got = get_f32(&s);
            let want: Vec<f64> = (0..numel(&out))
                .map(|i| {
                    let idx = unravel(i, &out);
                    let x = a[broadcast_index(&idx, ld)];
                    let y = b[broadcast_index(&idx, rd)];
                    if op == BinaryOp::Pow {
                        // f32 arithmetic; compare with its own precision.
                        op.reference(x.abs() as f64, y as f64)
                    } else {
                        op.reference(x as f64, y as f64)
                    }
                })
                .collect();
            if op == BinaryOp::Pow {
                let s = B.unary(UnaryOp::Abs, &f32s(a.clone())).unwrap();
                let s = B.binary(op, &s, &shape(ld), &f32s(b.clone()), &shape(rd), &shape(&out)).unwrap();
                assert_close(&get_f32(&s), &want, 1e-5, &format!("pow {ld:?} {rd:?}"));
            } else {
                assert_close(&got, &want, 1e-6, &format!("{} {ld:?} {rd:?}", op.name()));
            }
        }
    }
}

#[test]
fn binary_i64_broadcasting_matches_reference() {
    let mut g = Gen::new(2);
    for &(ld, rd) in BROADCAST_CASES {
        let out = broadcast_out(ld, rd);
        let a = g.ints(numel(ld), -50, 50);
        let b: Vec<i64> = g.ints(numel(rd), 1, 9).into_iter().map(|v| if v % 2 == 0 { -v } else { v }).collect();
        for op in BinaryOp::ALL {
            if op == BinaryOp::Pow {
                continue;
            }
            let s = B.binary(op, &i64s(a.clone()), &shape(ld), &i64s(b.clone()), &shape(rd), &shape(&out)).unwrap();
            let got = get_i64(&s);
            for (i, &v) in got.iter().enumerate() {
                let idx = unravel(i, &out);
                let x = a[broadcast_index(&idx, ld)];
                let y = b[broadcast_index(&idx, rd)];
                let want = match op {
                    BinaryOp::Div => x / y,
                    _ => op.reference(x as f64, y as f64) as i64,
                };
                assert_eq!(v, want, "{} {ld:?} {rd:?} at {i}: {x} op {y}", op.name());
            }
        }
    }
}

#[test]
fn integer_division_truncates_and_rejects_zero() {
    let s = B
        .binary(BinaryOp::Div, &i64s(vec![-7, 7, 9]), &shape(&[3]), &i64s(vec![2, -2, 3]), &shape(&[3]), &shape(&[3]))
        .unwrap();
    assert_eq!(get_i64(&s), vec![-3, -3, 3]);
    let e = B.binary(BinaryOp::Div, &i64s(vec![1, 2]), &shape(&[2]), &i64s(vec![1, 0]), &shape(&[2]), &shape(&[2]));
    assert!(matches!(e, Err(Error::Backend { .. })), "{e:?}");
    let e = B.binary_scalar(BinaryOp::Div, &i64s(vec![1, 2]), &shape(&[2]), 0.0);
    assert!(matches!(e, Err(Error::Backend { .. })), "{e:?}");
    // Overflow wraps instead of panicking.
    let s = B
        .binary(BinaryOp::Div, &i64s(vec![i64::MIN]), &shape(&[1]), &i64s(vec![-1]), &shape(&[1]), &shape(&[1]))
        .unwrap();
    assert_eq!(get_i64(&s), vec![i64::MIN]);
    let e = B.binary(BinaryOp::Pow, &i64s(vec![2]), &shape(&[1]), &i64s(vec![2]), &shape(&[1]), &shape(&[1]));
    assert!(matches!(e, Err(Error::DTypeMismatch { .. })), "{e:?}");
    // Float division by zero is IEEE.
    let s = B.binary_scalar(BinaryOp::Div, &f32s(vec![1.0, -1.0, 0.0]), &shape(&[3]), 0.0).unwrap();
    let v = get_f32(&s);
    assert_eq!(v[0], f32::INFINITY);
    assert_eq!(v[1], f32::NEG_INFINITY);
    assert!(v[2].is_nan());
}

#[test]
fn binary_scalar_matches_broadcast_binary() {
    let mut g = Gen::new(3);
    let x = g.vec(50_000);
    for op in BinaryOp::ALL {
        for scalar in [0.5, -1.25, 2.0] {
            let want = B
                .binary(
                    op,
                    &f32s(x.clone()),
                    &shape(&[50_000]),
                    &f32s(vec![scalar as f32]),
                    &Shape::scalar(),
                    &shape(&[50_000]),
                )
                .unwrap();
            let got = B.binary_scalar(op, &f32s(x.clone()), &shape(&[50_000]), scalar).unwrap();
            let (w, v) = (get_f32(&want), get_f32(&got));
            for (a, b) in v.iter().zip(&w) {
                assert!(a == b || (a.is_nan() && b.is_nan()), "{}: {a} vs {b}", op.name());
            }
        }
    }
    let s = B.binary_scalar(BinaryOp::Sub, &i64s(vec![1, 2, 3]), &shape(&[3]), 2.0).unwrap();
    assert_eq!(get_i64(&s), vec![-1, 0, 1]);
    let s = B.binary_scalar(BinaryOp::Ge, &i64s(vec![1, 2, 3]), &shape(&[3]), 2.0).unwrap();
    assert_eq!(get_i64(&s), vec![0, 1, 1]);
}

#[test]
fn binary_rejects_mixed_dtypes_and_bad_shapes() {
    let e = B.binary(BinaryOp::Add, &f32s(vec![1.0]), &shape(&[1]), &i64s(vec![1]), &shape(&[1]), &shape(&[1]));
    assert!(matches!(e, Err(Error::DTypeMismatch { .. })), "{e:?}");
    let e = B.binary(
        BinaryOp::Add,
        &f32s(vec![1.0; 6]),
        &shape(&[2, 3]),
        &f32s(vec![1.0; 2]),
        &shape(&[2]),
        &shape(&[2, 3]),
    );
    assert!(e.is_err());
    // Storage length disagreeing with the shape.
    let e =
        B.binary(BinaryOp::Add, &f32s(vec![1.0; 5]), &shape(&[2, 3]), &f32s(vec![1.0]), &shape(&[]), &shape(&[2, 3]));
    assert!(matches!(e, Err(Error::Backend { .. })), "{e:?}");
}

// ------------------------------------------------------------------ unary

#[test]
fn unary_f32_matches_reference() {
    let mut g = Gen::new(4);
    let mut x: Vec<f32> = g.vec(40_000).into_iter().map(|v| v * 6.0).collect();
    x.extend([0.0, -0.0, 1e-8, -1e-8, 30.0, -30.0, 88.0, -88.0, 100.0, -100.0, 1000.0, -1000.0]);
    for op in UnaryOp::ALL {
        let got = get_f32(&B.unary(op, &f32s(x.clone())).unwrap());
        for (&v, &o) in x.iter().zip(&got) {
            let want = op.reference(v as f64);
            let tol = match op {
                UnaryOp::Gelu | UnaryOp::Erf | UnaryOp::Softplus | UnaryOp::Sigmoid => 2e-6,
                _ => 1e-6,
            };
            // f32 overflow where f64 is still finite.
            if want.abs() > f32::MAX as f64 {
                assert!(o.is_infinite(), "{}({v}) = {o}, want {want}", op.name());
                continue;
            }
            let ok = close(o, want, tol) || (want.abs() < 1e-30 && o.abs() < 1e-30);
            assert!(ok, "{}({v}) = {o}, want {want}", op.name());
        }
    }
}

#[test]
fn stable_activations_at_extremes() {
    let x = f32s(vec![-1000.0, -100.0, 0.0, 100.0, 1000.0, f32::INFINITY, f32::NEG_INFINITY]);
    let sp = get_f32(&B.unary(UnaryOp::Softplus, &x).unwrap());
    assert_eq!(sp[0], 0.0);
    assert_eq!(sp[3], 100.0);
    assert_eq!(sp[4], 1000.0);
    assert!((sp[2] - std::f32::consts::LN_2).abs() < 1e-7);
    let sg = get_f32(&B.unary(UnaryOp::Sigmoid, &x).unwrap());
    assert_eq!(sg, vec![0.0, sg[1], 0.5, 1.0, 1.0, 1.0, 0.0]);
    assert!(sg[1] > 0.0 && sg[1] < 1e-40);
    let ge = get_f32(&B.unary(UnaryOp::Gelu, &x).unwrap());
    assert_eq!(ge[0], -0.0);
    assert_eq!(ge[4], 1000.0);
    assert!(ge.iter().take(5).all(|v| v.is_finite()));
    // GELU(-5) = -5 Φ(-5) ≈ -1.4333e-6: the tail must not cancel to zero.
    let g5 = get_f32(&B.unary(UnaryOp::Gelu, &f32s(vec![-5.0])).unwrap())[0];
    assert!((g5 as f64 - UnaryOp::Gelu.reference(-5.0)).abs() < 1e-11, "{g5}");
}

#[test]
fn unary_i64() {
    let x = i64s(vec![-3, 0, 5, i64::MIN]);
    let run = |op| get_i64(&B.unary(op, &x).unwrap());
    assert_eq!(run(UnaryOp::Neg), vec![3, 0, -5, i64::MIN]);
    assert_eq!(run(UnaryOp::Abs), vec![3, 0, 5, i64::MIN]);
    assert_eq!(run(UnaryOp::Sign), vec![-1, 0, 1, -1]);
    assert_eq!(run(UnaryOp::Square)[..3], [9, 0, 25]);
    assert_eq!(run(UnaryOp::Relu), vec![0, 0, 5, 0]);
    assert_eq!(run(UnaryOp::Floor), vec![-3, 0, 5, i64::MIN]);
    assert_eq!(run(UnaryOp::Ceil), vec![-3, 0, 5, i64::MIN]);
    for op in UnaryOp::ALL {
        let r = B.unary(op, &x);
        assert_eq!(r.is_ok(), op.supports_int(), "{}", op.name());
    }
}

// ------------------------------------------------------------------ matmul

/// `out[b] = op(lhs[b]) · op(rhs[b])`, naively, in f64.
fn naive_matmul(lhs: &[f32], rhs: &[f32], s: &MatmulSpec) -> Vec<f64> {
    let mut out = vec![0.0; s.batch * s.m * s.n];
    for b in 0..s.batch {
        for i in 0..s.m {
            for j in 0..s.n {
                let mut acc = 0.0f64;
                for p in 0..s.k {
                    let l = if s.trans_lhs {
                        lhs[b * s.lhs_batch_stride + p * s.m + i]
                    } else {
                        lhs[b * s.lhs_batch_stride + i * s.k + p]
                    };
                    let r = if s.trans_rhs {
                        rhs[b * s.rhs_batch_stride + j * s.k + p]
                    } else {
                        rhs[b * s.rhs_batch_stride + p * s.n + j]
                    };
                    acc += l as f64 * r as f64;
                }
                out[(b * s.m + i) * s.n + j] = acc;
            }
        }
    }
    out
}

fn check_matmul(g: &mut Gen, [batch, m, n, k]: [usize; 4], tl: bool, tr: bool, lb: Option<usize>, rb: Option<usize>) {
    // None: the natural stride; Some(s): the given stride (0 broadcasts).
    let lbs = lb.unwrap_or(m * k);
    let rbs = rb.unwrap_or(k * n);
    let llen = if batch == 0 { 0 } else { (batch - 1) * lbs + m * k };
    let rlen = if batch == 0 { 0 } else { (batch - 1) * rbs + k * n };
    let lhs = g.vec(llen);
    let rhs = g.vec(rlen);
    let spec =
        MatmulSpec { batch, m, n, k, trans_lhs: tl, trans_rhs: tr, lhs_batch_stride: lbs, rhs_batch_stride: rbs };
    let got = get_f32(&B.matmul(&f32s(lhs.clone()), &f32s(rhs.clone()), &spec).unwrap());
    let want = naive_matmul(&lhs, &rhs, &spec);
    assert_close(&got, &want, 1e-4, &format!("{spec:?}"));
}

#[test]
fn matmul_all_transposes_match_naive() {
    let mut g = Gen::new(5);
    for &(m, n, k) in &[(1, 1, 1), (3, 4, 5), (7, 1, 9), (1, 6, 4), (17, 33, 29), (130, 70, 90)] {
        for tl in [false, true] {
            for tr in [false, true] {
                check_matmul(&mut g, [1, m, n, k], tl, tr, None, None);
            }
        }
    }
}

#[test]
fn matmul_batches_and_broadcast_strides() {
    let mut g = Gen::new(6);
    for tl in [false, true] {
        for tr in [false, true] {
            // Plain batches, broadcast lhs, broadcast rhs, both broadcast.
            check_matmul(&mut g, [4, 5, 6, 7], tl, tr, None, None);
            check_matmul(&mut g, [4, 5, 6, 7], tl, tr, Some(0), None);
            check_matmul(&mut g, [4, 5, 6, 7], tl, tr, None, Some(0));
            check_matmul(&mut g, [3, 5, 6, 7], tl, tr, Some(0), Some(0));
            // Padded batch strides.
            check_matmul(&mut g, [3, 4, 3, 2], tl, tr, Some(11), Some(9));
            // Many small products (parallel over the batch).
            check_matmul(&mut g, [64, 16, 16, 16], tl, tr, None, None);
            check_matmul(&mut g, [64, 16, 16, 16], tl, tr, None, Some(0));
            // A few large ones.
            check_matmul(&mut g, [2, 70, 80, 90], tl, tr, None, None);
        }
    }
}

#[test]
fn matmul_degenerate_sizes() {
    let spec = |batch, m, n, k| MatmulSpec {
        batch,
        m,
        n,
        k,
        trans_lhs: false,
        trans_rhs: false,
        lhs_batch_stride: m * k,
        rhs_batch_stride: k * n,
    };
    // k == 0: zeros.
    let s = B.matmul(&f32s(vec![]), &f32s(vec![]), &spec(2, 3, 4, 0)).unwrap();
    assert_eq!(get_f32(&s), vec![0.0; 24]);
    // m == 0 or n == 0 or batch == 0: empty.
    for sp in [spec(1, 0, 4, 3), spec(1, 4, 0, 3), spec(0, 2, 2, 2)] {
        let l = f32s(vec![1.0; sp.batch * sp.m * sp.k]);
        let r = f32s(vec![1.0; sp.batch * sp.k * sp.n]);
        assert!(get_f32(&B.matmul(&l, &r, &sp).unwrap()).is_empty());
    }
    // Too little data: an error, not an out-of-bounds read.
    let e = B.matmul(&f32s(vec![1.0; 5]), &f32s(vec![1.0; 6]), &spec(1, 2, 2, 3));
    assert!(matches!(e, Err(Error::Backend { .. })), "{e:?}");
    let e = B.matmul(&i64s(vec![1; 6]), &f32s(vec![1.0; 6]), &spec(1, 2, 2, 3));
    assert!(matches!(e, Err(Error::DTypeMismatch { .. })), "{e:?}");
}

// -------------------------------------------------------------- reductions

fn naive_reduce(op: ReduceOp, x: &[f64], dims: &[usize], axes: &[usize]) -> Vec<f64> {
    let out_dims: Vec<usize> = dims.iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect();
    let init = match op {
        ReduceOp::Sum => 0.0,
        ReduceOp::Max => f64::NEG_INFINITY,
        ReduceOp::Min => f64::INFINITY,
        _ => unreachable!(),
    };
    let mut out = vec![init; numel(&out_dims)];
    for (i, &v) in x.iter().enumerate() {
        let mut idx = unravel(i, dims);
        for &a in axes {
            idx[a] = 0;
        }
        let o = &mut out[ravel(&idx, &out_dims)];
        *o = match op {
            ReduceOp::Sum => *o + v,
            ReduceOp::Max => o.max(v),
            ReduceOp::Min => o.min(v),
            _ => unreachable!(),
        };
    }
    out
}

const REDUCE_CASES: &[(&[usize], &[usize])] = &[
    (&[5], &[0]),
    (&[2, 3, 4, 5], &[0]),
    (&[2, 3, 4, 5], &[1]),
    (&[2, 3, 4, 5], &[3]),
    (&[2, 3, 4, 5], &[0, 2]),
    (&[2, 3, 4, 5], &[1, 3]),
    (&[2, 3, 4, 5], &[0, 3]),
    (&[2, 3, 4, 5], &[1, 2]),
    (&[2, 3, 4, 5], &[0, 1, 2, 3]),
    (&[2, 1, 4, 1], &[1, 3]),
    (&[2, 1, 4, 1], &[0, 1]),
    (&[3, 1, 5], &[0, 2]),
    // Parallel paths.
    (&[512, 300], &[0]),
    (&[512, 300], &[1]),
    (&[50_000, 3], &[0]),
    (&[3, 20_000, 2], &[1]),
    (&[70_000], &[0]),
    (&[2, 40_000], &[0]),
    (&[30, 40, 50], &[0, 2]),
];

#[test]
fn reductions_match_reference() {
    let mut g = Gen::new(7);
    for &(dims, axes) in REDUCE_CASES {
        let x = g.vec(numel(dims));
        let xf: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let xi: Vec<i64> = g.ints(numel(dims), -100, 100);
        let xif: Vec<f64> = xi.iter().map(|&v| v as f64).collect();
        for op in [ReduceOp::Sum, ReduceOp::Max, ReduceOp::Min] {
            let got = get_f32(&B.reduce(op, &f32s(x.clone()), &shape(dims), axes).unwrap());
            let want = naive_reduce(op, &xf, dims, axes);
            let n: usize = axes.iter().map(|&a| dims[a]).product();
            // Sum of n values in [-1, 1): allow an error growing like sqrt(n).
            let tol = 1e-6 * (n as f64).sqrt().max(1.0);
            for (i, (&a, &b)) in got.iter().zip(&want).enumerate() {
                assert!((a as f64 - b).abs() <= tol * 4.0, "{} {dims:?} {axes:?} [{i}]: {a} vs {b}", op.name());
            }
            assert_eq!(got.len(), want.len());
            let got = get_i64(&B.reduce(op, &i64s(xi.clone()), &shape(dims), axes).unwrap());
            let want = naive_reduce(op, &xif, dims, axes);
            assert_eq!(got, want.iter().map(|&v| v as i64).collect::<Vec<_>>(), "i64 {} {dims:?} {axes:?}", op.name());
        }
    }
}

fn naive_arg(max: bool, x: &[f64], dims: &[usize], axis: usize) -> Vec<i64> {
    let mut out_dims = dims.to_vec();
    out_dims[axis] = 1;
    (0..numel(&out_dims))
        .map(|o| {
            let mut idx = unravel(o, &out_dims);
            let mut best = 0;
            let mut bv = x[ravel(&idx, dims)];
            for i in 1..dims[axis] {
                idx[axis] = i;
                let v = x[ravel(&idx, dims)];
                if (max && v > bv) || (!max && v < bv) {
                    bv = v;
                    best = i as i64;
                }
            }
            best
        })
        .collect()
}

#[test]
fn argmax_argmin_first_occurrence() {
    let mut g = Gen::new(8);
    for dims in [&[7][..], &[4, 6], &[3, 5, 4], &[2, 3, 4, 5], &[400, 120], &[3, 30_000]] {
        // Few distinct values: many ties.
        let xi = g.ints(numel(dims), 0, 4);
        let xf: Vec<f64> = xi.iter().map(|&v| v as f64).collect();
        let x32: Vec<f32> = xi.iter().map(|&v| v as f32).collect();
        for axis in 0..dims.len() {
            for (op, max) in [(ReduceOp::ArgMax, true), (ReduceOp::ArgMin, false)] {
                let want = naive_arg(max, &xf, dims, axis);
                let got = get_i64(&B.reduce(op, &f32s(x32.clone()), &shape(dims), &[axis]).unwrap());
                assert_eq!(got, want, "f32 {} {dims:?} axis {axis}", op.name());
                let got = get_i64(&B.reduce(op, &i64s(xi.clone()), &shape(dims), &[axis]).unwrap());
                assert_eq!(got, want, "i64 {} {dims:?} axis {axis}", op.name());
            }
        }
    }
    let s = B.reduce(ReduceOp::ArgMax, &f32s(vec![1.0, 3.0, 3.0, 2.0]), &shape(&[4]), &[0]).unwrap();
    assert_eq!(s.dtype(), DType::I64);
    assert_eq!(get_i64(&s), vec![1]);
    // NaN never panics and is skipped consistently with `max`.
    let x = f32s(vec![f32::NAN, 1.0, f32::NAN, 2.0, f32::NAN]);
    assert_eq!(get_i64(&B.reduce(ReduceOp::ArgMax, &x, &shape(&[5]), &[0]).unwrap()), vec![3]);
    assert_eq!(get_i64(&B.reduce(ReduceOp::ArgMin, &x, &shape(&[5]), &[0]).unwrap()), vec![1]);
    assert_eq!(get_f32(&B.reduce(ReduceOp::Max, &x, &shape(&[5]), &[0]).unwrap()), vec![2.0]);
    let e = B.reduce(ReduceOp::ArgMax, &f32s(vec![1.0; 4]), &shape(&[2, 2]), &[0, 1]);
    assert!(e.is_err());
}

// ---------------------------------------------------------- layout ops

#[test]
fn permute_matches_reference() {
    let mut g = Gen::new(9);
    let cases: &[(&[usize], &[usize])] = &[
        (&[2, 3], &[1, 0]),
        (&[2, 3, 4], &[2, 0, 1]),
        (&[2, 3, 4], &[0, 2, 1]),
        (&[2, 3, 4, 5], &[3, 1, 0, 2]),
        (&[2, 3, 4, 5], &[0, 2, 1, 3]),
        (&[1, 3, 1, 5], &[3, 2, 1, 0]),
        (&[300, 500], &[1, 0]),
        (&[3, 200, 150], &[0, 2, 1]),
        (&[40, 33, 37], &[2, 1, 0]),
        (&[8, 64, 4, 32], &[0, 2, 1, 3]),
    ];
    for &(dims, perm) in cases {
        let x = g.ints(numel(dims), -1000, 1000);
        let got = get_i64(&B.permute(&i64s(x.clone()), &shape(dims), perm).unwrap());
        let out_dims: Vec<usize> = perm.iter().map(|&p| dims[p]).collect();
        let want: Vec<i64> = (0..numel(dims))
            .map(|o| {
                let oi = unravel(o, &out_dims);
                let mut ii = vec![0; dims.len()];
                for (a, &p) in perm.iter().enumerate() {
                    ii[p] = oi[a];
                }
                x[ravel(&ii, dims)]
            })
            .collect();
        assert_eq!(got, want, "{dims:?} {perm:?}");
    }
    assert!(B.permute(&f32s(vec![0.0; 6]), &shape(&[2, 3]), &[0, 0]).is_err());
}

#[test]
fn broadcast_to_matches_reference() {
    let mut g = Gen::new(10);
    let cases: &[(&[usize], &[usize])] = &[
        (&[], &[3, 2]),
        (&[3], &[2, 3]),
        (&[2, 1], &[2, 4]),
        (&[4, 1, 3], &[2, 4, 5, 3]),
        (&[1, 1], &[3, 1]),
        (&[256], &[300, 256]),
        (&[300, 1], &[300, 256]),
    ];
    for &(dims, out) in cases {
        let x = g.vec(numel(dims));
        let got = get_f32(&B.broadcast_to(&f32s(x.clone()), &shape(dims), &shape(out)).unwrap());
        let want: Vec<f32> = (0..numel(out)).map(|i| x[broadcast_index(&unravel(i, out), dims)]).collect();
        assert_eq!(got, want, "{dims:?} -> {out:?}");
    }
}

#[test]
fn narrow_every_axis() {
    let dims = [3, 4, 5];
    let x: Vec<i64> = (0..60).collect();
    for axis in 0..3 {
        for (start, len) in [(0, 1), (1, 2), (0, dims[axis]), (dims[axis] - 1, 1), (2, 0)] {
            let got = get_i64(&B.narrow(&i64s(x.clone()), &shape(&dims), axis, start, len).unwrap());
            let mut out = dims.to_vec();
            out[axis] = len;
            let want: Vec<i64> = (0..numel(&out))
                .map(|o| {
                    let mut idx = unravel(o, &out);
                    idx[axis] += start;
                    x[ravel(&idx, &dims)]
                })
                .collect();
            assert_eq!(got, want, "axis {axis} {start}+{len}");
        }
    }
    assert!(B.narrow(&i64s(x), &shape(&dims), 1, 3, 2).is_err());
    // Large, to take the parallel path.
    let x: Vec<f32> = (0..200_000).map(|v| v as f32).collect();
    let got = get_f32(&B.narrow(&f32s(x), &shape(&[400, 500]), 1, 100, 300).unwrap());
    assert_eq!(got.len(), 400 * 300);
    assert_eq!(got[0], 100.0);
    assert_eq!(got[300], 600.0);
    assert_eq!(*got.last().unwrap(), 399.0 * 500.0 + 399.0);
}

#[test]
fn concat_along_each_axis() {
    let a: Vec<i64> = (0..6).collect(); // [2, 3]
    let b: Vec<i64> = (10..14).collect(); // [2, 2] or [..]
    let sa = shape(&[2, 3]);
    let s = B.concat(&[(&i64s(a.clone()), &sa), (&i64s(b.clone()), &shape(&[2, 2]))], 1).unwrap();
    assert_eq!(get_i64(&s), vec![0, 1, 2, 10, 11, 3, 4, 5, 12, 13]);
    let c: Vec<i64> = (20..23).collect();
    let s = B.concat(&[(&i64s(a.clone()), &sa), (&i64s(c), &shape(&[1, 3]))], 0).unwrap();
    assert_eq!(get_i64(&s), vec![0, 1, 2, 3, 4, 5, 20, 21, 22]);
    // With an empty part.
    let s = B.concat(&[(&i64s(a.clone()), &sa), (&i64s(vec![]), &shape(&[2, 0]))], 1).unwrap();
    assert_eq!(get_i64(&s), a);
    let e = B.concat(&[(&i64s(a.clone()), &sa), (&f32s(vec![0.0; 3]), &shape(&[1, 3]))], 0);
    assert!(matches!(e, Err(Error::DTypeMismatch { .. })), "{e:?}");
}

#[test]
fn gather_and_index_add() {
    // x: [3, 4], rows 0..3.
    let x: Vec<f32> = (0..12).map(|v| v as f32).collect();
    let sx = shape(&[3, 4]);
    let s = B.gather(&f32s(x.clone()), &sx, 0, &i64s(vec![2, 0, 2])).unwrap();
    assert_eq!(get_f32(&s), vec![8.0, 9.0, 10.0, 11.0, 0.0, 1.0, 2.0, 3.0, 8.0, 9.0, 10.0, 11.0]);
    let s = B.gather(&f32s(x.clone()), &sx, 1, &i64s(vec![3, 1])).unwrap();
    assert_eq!(get_f32(&s), vec![3.0, 1.0, 7.0, 5.0, 11.0, 9.0]);
    let s = B.gather(&f32s(x.clone()), &sx, 1, &i64s(vec![])).unwrap();
    assert!(get_f32(&s).is_empty());
    for (axis, bad) in [(0, 3), (0, -1), (1, 4), (1, i64::MIN)] {
        let e = B.gather(&f32s(x.clone()), &sx, axis, &i64s(vec![0, bad])).unwrap_err();
        match e {
            Error::IndexOutOfRange { op, index, axis: a, size, shape } => {
                assert_eq!((op, index, a, size), ("gather", bad, axis, sx.dims()[axis]));
                assert_eq!(shape, sx);
            }
            other => panic!("unexpected {other:?}"),
        }
        let src = f32s(vec![1.0; if axis == 0 { 8 } else { 6 }]);
        let e = B.index_add(&f32s(x.clone()), &sx, axis, &i64s(vec![0, bad]), &src).unwrap_err();
        assert!(matches!(e, Error::IndexOutOfRange { op: "index_add", .. }), "{e:?}");
    }
    // index_add: repeated indices accumulate.
    let zeros = f32s(vec![0.0; 12]);
    let src: Vec<f32> = (1..=8).map(|v| v as f32).collect(); // [2, 4]
    let s = B.index_add(&zeros, &sx, 0, &i64s(vec![1, 1]), &f32s(src.clone())).unwrap();
    assert_eq!(get_f32(&s), vec![0.0, 0.0, 0.0, 0.0, 6.0, 8.0, 10.0, 12.0, 0.0, 0.0, 0.0, 0.0]);
    let src: Vec<i64> = vec![1, 2, 3, 4, 5, 6]; // [3, 2]
    let s = B.index_add(&i64s(vec![100; 12]), &sx, 1, &i64s(vec![3, 3]), &i64s(src)).unwrap();
    assert_eq!(get_i64(&s), vec![100, 100, 100, 103, 100, 100, 100, 107, 100, 100, 100, 111]);
    // Wrong src length is an error.
    assert!(B.index_add(&zeros, &sx, 0, &i64s(vec![1]), &f32s(vec![1.0; 3])).is_err());
}

#[test]
fn index_add_is_the_adjoint_of_gather_at_scale() {
    // <gather(x), y> == <x, index_add(0, y)> for random x, y.
    let mut g = Gen::new(11);
    for (dims, axis) in [(vec![1000, 64], 0), (vec![8, 500, 16], 1), (vec![50, 3000], 1)] {
        let n_idx = 700;
        let x = g.vec(numel(&dims));
        let idx = g.ints(n_idx, 0, dims[axis] as i64);
        let mut ydims = dims.clone();
        ydims[axis] = n_idx;
        let y = g.vec(numel(&ydims));
        let gx = get_f32(&B.gather(&f32s(x.clone()), &shape(&dims), axis, &i64s(idx.clone())).unwrap());
        let ay = get_f32(
            &B.index_add(&f32s(vec![0.0; x.len()]), &shape(&dims), axis, &i64s(idx), &f32s(y.clone())).unwrap(),
        );
        let lhs: f64 = gx.iter().zip(&y).map(|(&a, &b)| a as f64 * b as f64).sum();
        let rhs: f64 = x.iter().zip(&ay).map(|(&a, &b)| a as f64 * b as f64).sum();
        assert!((lhs - rhs).abs() < 1e-3 * (1.0 + lhs.abs()), "{dims:?}: {lhs} vs {rhs}");
    }
}

#[test]
fn where_cast_full() {
    let t = f32s(vec![1.0, 2.0, 3.0, 4.0]);
    let f = f32s(vec![-1.0, -2.0, -3.0, -4.0]);
    let s = B.where_cond(&f32s(vec![1.0, 0.0, -0.5, 0.0]), &t, &f).unwrap();
    assert_eq!(get_f32(&s), vec![1.0, -2.0, 3.0, -4.0]);
    let s = B.where_cond(&i64s(vec![0, 7, 0, 1]), &i64s(vec![1, 2, 3, 4]), &i64s(vec![9; 4])).unwrap();
    assert_eq!(get_i64(&s), vec![9, 2, 9, 4]);
    assert!(B.where_cond(&i64s(vec![0; 3]), &t, &f).is_err());
    assert!(B.where_cond(&i64s(vec![0; 4]), &t, &i64s(vec![0; 4])).is_err());

    let s = B.cast(&f32s(vec![-1.7, 2.9, f32::NAN, 1e30, -1e30, -0.5]), DType::I64).unwrap();
    assert_eq!(get_i64(&s), vec![-1, 2, 0, i64::MAX, i64::MIN, 0]);
    let s = B.cast(&i64s(vec![-3, 1 << 40]), DType::F32).unwrap();
    assert_eq!(get_f32(&s), vec![-3.0, (1u64 << 40) as f32]);
    let s = B.cast(&i64s(vec![5]), DType::I64).unwrap();
    assert_eq!(get_i64(&s), vec![5]);

    assert_eq!(get_f32(&B.full(2.5, 3, DType::F32).unwrap()), vec![2.5; 3]);
    assert_eq!(get_i64(&B.full(-2.9, 2, DType::I64).unwrap()), vec![-2, -2]);
    assert!(get_f32(&B.full(1.0, 0, DType::F32).unwrap()).is_empty());
}

#[test]
fn wrong_storage_and_dtype_are_errors() {
    let alien = Storage::new(String::from("not native"), DType::F32, 3);
    assert!(matches!(B.download_f32(&alien), Err(Error::Backend { .. })));
    assert!(matches!(B.unary(UnaryOp::Exp, &alien), Err(Error::Backend { .. })));
    assert!(matches!(B.reduce(ReduceOp::Sum, &alien, &shape(&[3]), &[0]), Err(Error::Backend { .. })));
    assert!(matches!(B.download_f32(&i64s(vec![1])), Err(Error::DTypeMismatch { .. })));
    assert!(matches!(B.download_i64(&f32s(vec![1.0])), Err(Error::DTypeMismatch { .. })));
    let s = f32s(vec![1.0, 2.0]);
    let n = s.downcast_ref::<NativeStorage>().unwrap();
    assert_eq!(n.as_f32(), Some(&[1.0f32, 2.0][..]));
    assert_eq!(B.name(), "native");
}

// ----------------------------------------------------------------- softmax

#[test]
fn softmax_rows_sum_to_one_and_are_stable() {
    let mut g = Gen::new(12);
    for dims in [vec![1], vec![4, 7], vec![3, 2, 1000], vec![600, 100], vec![1, 50_000]] {
        let x: Vec<f32> = g.vec(numel(&dims)).into_iter().map(|v| v * 20.0).collect();
        let n = *dims.last().unwrap();
        let sm = get_f32(&B.softmax(&f32s(x.clone()), &shape(&dims)).unwrap());
        let lsm = get_f32(&B.log_softmax(&f32s(x.clone()), &shape(&dims)).unwrap());
        for ((row, srow), lrow) in x.chunks(n).zip(sm.chunks(n)).zip(lsm.chunks(n)) {
            let m = row.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
            let z: f64 = row.iter().map(|&v| (v as f64 - m).exp()).sum();
            let total: f32 = srow.iter().sum();
            assert!((total - 1.0).abs() < 1e-4, "{dims:?}: row sums to {total}");
            for ((&v, &s), &l) in row.iter().zip(srow).zip(lrow) {
                let want = (v as f64 - m).exp() / z;
                assert!((s as f64 - want).abs() < 1e-6, "softmax {s} vs {want}");
                let lwant = v as f64 - m - z.ln();
                assert!((l as f64 - lwant).abs() < 1e-4 * (1.0 + lwant.abs()), "log_softmax {l} vs {lwant}");
            }
        }
    }
    let big = f32s(vec![1000.0, 1000.0, 999.0, -1000.0, 0.0, 1000.0]);
    let sm = get_f32(&B.softmax(&big, &shape(&[2, 3])).unwrap());
    assert!(sm.iter().all(|v| v.is_finite()));
    let e = (-1.0f32).exp();
    assert!((sm[0] - 1.0 / (2.0 + e)).abs() < 1e-6);
    assert!((sm[5] - 1.0).abs() < 1e-6 && sm[3] == 0.0);
    let lsm = get_f32(&B.log_softmax(&big, &shape(&[2, 3])).unwrap());
    assert!((lsm[3] + 2000.0).abs() < 1e-3 && lsm[5].abs() < 1e-6);
    assert!(B.softmax(&f32s(vec![1.0]), &Shape::scalar()).is_err());
    assert!(B.softmax(&i64s(vec![1]), &shape(&[1])).is_err());
}

// ----------------------------------------------------------- empty tensors

#[test]
fn empty_tensors_work_everywhere() {
    let e = || f32s(vec![]);
    let z3 = shape(&[0, 3]);
    assert!(get_f32(&B.unary(UnaryOp::Exp, &e()).unwrap()).is_empty());
    let s = B.binary(BinaryOp::Add, &e(), &z3, &f32s(vec![1.0, 2.0, 3.0]), &shape(&[3]), &z3).unwrap();
    assert!(get_f32(&s).is_empty());
    let s = B.binary(BinaryOp::Div, &i64s(vec![]), &z3, &i64s(vec![0, 1, 2]), &shape(&[3]), &z3).unwrap();
    assert!(get_i64(&s).is_empty());
    assert!(get_f32(&B.binary_scalar(BinaryOp::Mul, &e(), &z3, 2.0).unwrap()).is_empty());
    assert!(get_i64(&B.binary_scalar(BinaryOp::Div, &i64s(vec![]), &z3, 0.0).unwrap()).is_empty());
    // Summing away the empty axis gives zeros; keeping it gives nothing.
    assert_eq!(get_f32(&B.reduce(ReduceOp::Sum, &e(), &z3, &[0]).unwrap()), vec![0.0; 3]);
    assert!(get_f32(&B.reduce(ReduceOp::Sum, &e(), &z3, &[1]).unwrap()).is_empty());
    assert_eq!(get_f32(&B.reduce(ReduceOp::Max, &e(), &z3, &[0]).unwrap()), vec![f32::NEG_INFINITY; 3]);
    assert_eq!(get_i64(&B.reduce(ReduceOp::ArgMax, &e(), &z3, &[0]).unwrap()), vec![0; 3]);
    assert!(get_i64(&B.reduce(ReduceOp::ArgMin, &e(), &z3, &[1]).unwrap()).is_empty());
    assert!(get_f32(&B.permute(&e(), &z3, &[1, 0]).unwrap()).is_empty());
    assert!(get_f32(&B.broadcast_to(&e(), &z3, &shape(&[2, 0, 3])).unwrap()).is_empty());
    assert!(get_f32(&B.narrow(&e(), &z3, 1, 1, 2).unwrap()).is_empty());
    let s = B.concat(&[(&e(), &z3), (&e(), &z3)], 0).unwrap();
    assert!(get_f32(&s).is_empty());
    assert!(get_f32(&B.gather(&e(), &z3, 1, &i64s(vec![2, 0])).unwrap()).is_empty());
    // Any index into an empty axis is out of range.
    assert!(B.gather(&e(), &z3, 0, &i64s(vec![0])).is_err());
    assert!(get_f32(&B.index_add(&e(), &z3, 1, &i64s(vec![1]), &e()).unwrap()).is_empty());
    assert!(get_f32(&B.where_cond(&e(), &e(), &e()).unwrap()).is_empty());
    assert!(get_i64(&B.cast(&e(), DType::I64).unwrap()).is_empty());
    assert!(get_f32(&B.softmax(&e(), &z3).unwrap()).is_empty());
    assert!(get_f32(&B.log_softmax(&e(), &shape(&[3, 0])).unwrap()).is_empty());
    let spec = MatmulSpec {
        batch: 0,
        m: 3,
        n: 3,
        k: 3,
        trans_lhs: true,
        trans_rhs: true,
        lhs_batch_stride: 9,
        rhs_batch_stride: 9,
    };
    assert!(get_f32(&B.matmul(&e(), &e(), &spec).unwrap()).is_empty());
}

// ------------------------------------------------------ through the front end

#[test]
fn tensor_front_end_smoke() {
    use strata_core::Tensor;
    let dev = strata_native::device();
    let x = Tensor::new(vec![1.0f32, -2.0, 3.0, -4.0, 5.0, -6.0], [2, 3], &dev).unwrap().to_variable().unwrap();
    let w = Tensor::new(vec![0.5f32, -1.0, 2.0], [3, 1], &dev).unwrap().to_variable().unwrap();
    let y = x.matmul(&w).unwrap().relu().unwrap().sum_all().unwrap();
    // rows: 0.5 + 2 + 6 = 8.5 ; 2 + 5 - 12 = -5 -> relu 0
    assert_eq!(y.to_scalar::<f32>().unwrap(), 8.5);
    let grads = y.backward().unwrap();
    assert_eq!(grads.get(&w).unwrap().to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.0]);
    assert_eq!(grads.get(&x).unwrap().to_vec::<f32>().unwrap(), vec![0.5, -1.0, 2.0, 0.0, 0.0, 0.0]);
    let col = x.sum(&[0], false).unwrap();
    assert_eq!(col.to_vec::<f32>().unwrap(), vec![-3.0, 3.0, -3.0]);
}

// ------------------------------------------------------------- determinism

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let mut g = Gen::new(13);
    let x = g.vec(600 * 700);
    let dims = [600, 700];
    let run = || {
        let s = f32s(x.clone());
        let col = get_f32(&B.reduce(ReduceOp::Sum, &s, &shape(&dims), &[0]).unwrap());
        let row = get_f32(&B.reduce(ReduceOp::Sum, &s, &shape(&dims), &[1]).unwrap());
        let all = get_f32(&B.reduce(ReduceOp::Sum, &s, &shape(&[600 * 700]), &[0]).unwrap());
        let sm = get_f32(&B.softmax(&s, &shape(&dims)).unwrap());
        let spec = MatmulSpec {
            batch: 1,
            m: 600,
            n: 600,
            k: 700,
            trans_lhs: false,
            trans_rhs: true,
            lhs_batch_stride: 0,
            rhs_batch_stride: 0,
        };
        let mm = get_f32(&B.matmul(&s, &s, &spec).unwrap());
        (col, row, all, sm, mm)
    };
    let pool = |n| rayon::ThreadPoolBuilder::new().num_threads(n).build().unwrap();
    let one = pool(1).install(run);
    let four = pool(4).install(run);
    assert_eq!(one.0, four.0, "column sums");
    assert_eq!(one.1, four.1, "row sums");
    assert_eq!(one.2, four.2, "total");
    assert_eq!(one.3, four.3, "softmax");
    // gemm may split the work differently; only require closeness there.
    for (a, b) in one.4.iter().zip(&four.4) {
        assert!((a - b).abs() <= 1e-4 * (1.0 + a.abs()), "{a} vs {b}");
    }
}

/// The fused LSTM kernels against the storage-level defaults, on a step
/// large enough for the threaded row passes and products and for several
/// row blocks per thread (blocks of 128 rows), with a mask.
#[test]
fn lstm_kernels_match_the_defaults() {
    use strata_core::{fast_path_defaults as defaults, LstmSpec};
    let spec = LstmSpec { steps: 5, batch: 300, units: 130, keep_gates: true };
    let (s, b, n) = (spec.steps, spec.batch, spec.units);
    let mut g = Gen::new(77);
    let xw = g.vec(s * b * 4 * n);
    let u: Vec<f32> = g.vec(n * 4 * n).iter().map(|v| v * 0.2).collect();
    let (h0, c0) = (g.vec(b * n), g.vec(b * n));
    let mask: Vec<f32> = (0..s * b).map(|i| if i % 5 == 3 { 0.0 } else { 1.0 }).collect();
    let dy = g.vec(s * b * 2 * n);
    let (xw, u, h0, c0, mask, dy) = (f32s(xw), f32s(u), f32s(h0), f32s(c0), f32s(mask), f32s(dy));
    let (fused_y, fused_g) = B.lstm(&xw, &u, &h0, &c0, Some(&mask), &spec).unwrap();
    let (want_y, want_g) = defaults::lstm(&B, &xw, &u, &h0, &c0, Some(&mask), &spec).unwrap();
    let as64 = |v: Vec<f32>| v.into_iter().map(f64::from).collect::<Vec<_>>();
    assert_close(&get_f32(&fused_y), &as64(get_f32(&want_y)), 1e-5, "lstm states");
    assert_close(&get_f32(&fused_g), &as64(get_f32(&want_g)), 1e-5, "lstm gates");
    // Without the gates, the same states.
    let (lean_y, _) = B.lstm(&xw, &u, &h0, &c0, Some(&mask), &LstmSpec { keep_gates: false, ..spec }).unwrap();
    assert_eq!(get_f32(&lean_y), get_f32(&fused_y));
    let got = B.lstm_grad(&dy, &u, &h0, &c0, Some(&mask), &fused_y, &fused_g, &spec).unwrap();
    let want = defaults::lstm_grad(&B, &dy, &u, &h0, &c0, Some(&mask), &want_y, &want_g, &spec).unwrap();
    for (what, a, w) in
        [("dxw", &got.xw, &want.xw), ("du", &got.u, &want.u), ("dh0", &got.h0, &want.h0), ("dc0", &got.c0, &want.c0)]
    {
        assert_close(&get_f32(a), &as64(get_f32(w)), 1e-4, what);
    }
}
