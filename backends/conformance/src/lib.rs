//! The backend conformance suite of strata: one set of cases every backend
//! of [`strata_core::Backend`] must pass.
//!
//! Each case is a function taking a [`Device`]; it checks forward values
//! against hand-computed or `f64` reference values, gradients against central
//! finite differences, broadcasting edge cases, empty and size-1 tensors, and
//! that bad input comes back as an [`Error`] naming the shapes — never a
//! panic. A backend crate adds this crate as a dev-dependency and
//! instantiates the whole suite as `#[test]`s with one line in a test file:
//!
//! ```ignore
//! strata_conformance::conformance_suite!(strata_native::device());
//! ```
//!
//! The list of cases is written once, in this crate: the same list generates
//! [`CASES`] and the macro's `#[test]` functions, and a test of this crate
//! checks that every case function in the source is on it. Cases a backend
//! opts out of are listed, with the reason, in [`OPT_OUTS`].

pub mod allocation;

use strata_core::{
    BinaryOp, DType, Device, Error, FusedUpdate, LinearActivation, Result, Rng, Shape, Tensor, UnaryOp, Window,
};

/// Cases a backend skips: `(backend name prefix, case, reason)`. Empty: every
/// backend runs every case.
pub const OPT_OUTS: &[(&str, &str, &str)] = &[];

/// The reason `device` skips `case`, if it does.
pub fn opt_out(device: &Device, case: &str) -> Option<&'static str> {
    OPT_OUTS.iter().find(|(b, c, _)| device.name().starts_with(b) && *c == case).map(|(_, _, why)| *why)
}

/// Declares the case list once: `CASES`, [`run_case`] and the exported
/// `conformance_suite!` macro all expand from it. (`$d` is a literal `$`,
/// so the inner macro can have variables of its own.)
macro_rules! declare_cases {
    ($d:tt; $($case:ident),* $(,)?) => {
        /// The name of every conformance case, in the order the suite lists them.
        pub const CASES: &[&str] = &[$(stringify!($case)),*];

        /// Runs the case called `name` on `device`; an unknown name is an
        /// [`Error::InvalidArgument`] listing the known ones.
        pub fn run_case(name: &str, device: &Device) -> Result<()> {
            match name {
                $(stringify!($case) => $case(device),)*
                _ => Err(Error::invalid(
                    "conformance",
                    format!("no case `{name}`; the cases are {}", CASES.join(", ")),
                )),
            }
        }

        /// Instantiates every conformance case as a `#[test]` for the device
        /// that `$device` evaluates to (evaluated once per test), plus a test
        /// that the instantiation has exactly [`CASES`]`.len()` of them.
        #[macro_export]
        macro_rules! conformance_suite {
            ($d device:expr) => {
                $(
                    #[test]
                    fn $case() {
                        $crate::__run_instantiated(stringify!($case), $d device);
                    }
                )*

                /// The instantiation generated one test per listed case.
                #[test]
                fn conformance_case_count() {
                    let generated: &[&str] = &[$(stringify!($case)),*];
                    assert_eq!(generated, $crate::CASES, "the instantiation is out of step with the case list");
                }
            };
        }
    };
}

declare_cases! { $;
    creation, random_is_seeded, display,
    unary_forward, unary_int, unary_grad,
    binary_forward, binary_broadcasting, binary_grad, binary_scalar, int_arithmetic,
    reduce_forward, reduce_grad, argmax_ties,
    matmul_forward, matmul_transposed, matmul_batched, matmul_grad,
    shape_ops, shape_ops_grad,
    gather_and_index_add, gather_grad,
    where_cond, cast, softmax_forward, softmax_grad, one_hot,
    linear_forward, linear_grad, softmax_cross_entropy_forward, softmax_cross_entropy_grad,
    autodiff_accumulates, autodiff_no_grad_and_detach, autodiff_deep_chain, assign, fused_update, find_non_finite,
    empty_tensors, size_one_tensors,
    errors_shapes, errors_matmul, errors_index, errors_dtype, errors_axes, errors_size_overflow,
    unfold_forward, fold_forward, unfold_fold_grad, convolution_by_unfold, unfold_edge_cases, errors_unfold,
    conv_forward, conv_grad, max_pool_forward, max_pool_grad, errors_conv_pool,
    lstm_forward, lstm_grad, errors_lstm,
    gru_forward, gru_grad, errors_gru,
}

/// The body of one generated `#[test]`: skips an opted-out case (saying
/// why), panics with the case's error otherwise.
#[doc(hidden)]
pub fn __run_instantiated(case: &str, device: Device) {
    if let Some(why) = opt_out(&device, case) {
        eprintln!("{} opts out of `{case}`: {why}", device.name());
        return;
    }
    if let Err(e) = run_case(case, &device) {
        panic!("conformance case `{case}` failed on {}: {e}", device.name());
    }
}

// ------------------------------------------------------------------ helpers

fn fail(msg: impl Into<String>) -> Error {
    Error::invalid("conformance", msg.into())
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<()> {
    if cond {
        Ok(())
    } else {
        Err(fail(msg()))
    }
}

/// Asserts `got` ≈ `want` elementwise within `atol + rtol·|want|` (NaN matches NaN).
pub fn assert_close(what: &str, got: &[f32], want: &[f64], atol: f64, rtol: f64) -> Result<()> {
    ensure(got.len() == want.len(), || format!("{what}: {} values, expected {}", got.len(), want.len()))?;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let g = g as f64;
        let ok = (g.is_nan() && w.is_nan()) || g == w || (g - w).abs() <= atol + rtol * w.abs();
        ensure(ok, || format!("{what}: element {i} is {g}, expected {w} (got {got:?})"))?;
    }
    Ok(())
}

fn t(dev: &Device, data: &[f32], shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_slice(data, shape, dev)
}

fn ti(dev: &Device, data: &[i64], shape: impl Into<Shape>) -> Result<Tensor> {
    Tensor::from_slice(data, shape, dev)
}

fn vals(x: &Tensor) -> Result<Vec<f32>> {
    x.to_vec::<f32>()
}

fn random_vals(rng: &mut Rng, n: usize, low: f32, high: f32) -> Vec<f32> {
    (0..n).map(|_| low + (high - low) * rng.uniform()).collect()
}

/// Index of `flat` in a row-major tensor of `dims`, broadcast from `src` dims.
fn broadcast_index(flat: usize, out: &[usize], src: &[usize]) -> usize {
    let mut rem = flat;
    let mut idx = 0;
    let mut stride = 1;
    let off = out.len() - src.len();
    let mut coords = vec![0; out.len()];
    for i in (0..out.len()).rev() {
        coords[i] = rem % out[i];
        rem /= out[i];
    }
    for i in (0..src.len()).rev() {
        let c = if src[i] == 1 { 0 } else { coords[i + off] };
        idx += c * stride;
        stride *= src[i];
    }
    idx
}

/// Checks the gradients of `f` at `inputs` against central finite differences.
///
/// The scalar checked is `Σ f(x) ⊙ w` for fixed random weights `w`, so every
/// entry of the Jacobian takes part. Differences are taken in `f32` with step
/// `eps` and summed in `f64`.
pub fn check_grad(
    what: &str,
    dev: &Device,
    inputs: &[(Vec<f32>, Shape)],
    eps: f32,
    f: impl Fn(&[Tensor]) -> Result<Tensor>,
) -> Result<()> {
    let vars =
        inputs.iter().map(|(v, s)| Tensor::from_slice(v, s.clone(), dev)?.to_variable()).collect::<Result<Vec<_>>>()?;
    let out = f(&vars)?;
    let mut rng = Rng::seed(7);
    let w = random_vals(&mut rng, out.numel(), 0.5, 1.5);
    let wt = Tensor::from_slice(&w, out.shape().clone(), dev)?;
    let grads = out.mul(&wt)?.sum_all()?.backward()?;
    let objective = |xs: &[Tensor]| -> Result<f64> {
        let y = strata_core::no_grad(|| f(xs))?.to_vec::<f32>()?;
        Ok(y.iter().zip(&w).map(|(&a, &b)| a as f64 * b as f64).sum())
    };
    for (k, (v, s)) in inputs.iter().enumerate() {
        let analytic = match grads.get(&vars[k]) {
            Some(g) => {
                ensure(g.shape() == s, || {
                    format!("{what}: gradient of input {k} has shape {}, expected {s}", g.shape())
                })?;
                g.to_vec::<f32>()?
            }
            None => vec![0.0; v.len()],
        };
        for i in 0..v.len() {
            let eval = |delta: f32| -> Result<f64> {
                let mut xs: Vec<Tensor> = vars.iter().map(|x| x.detach()).collect();
                let mut p = v.clone();
                p[i] += delta;
                xs[k] = Tensor::from_slice(&p, s.clone(), dev)?;
                objective(&xs)
            };
            let numeric = (eval(eps)? - eval(-eps)?) / (2.0 * eps as f64);
            let a = analytic[i] as f64;
            let tol = 2e-3 + 2e-2 * numeric.abs().max(a.abs());
            ensure((a - numeric).abs() <= tol, || {
                format!("{what}: d/dx{k}[{i}] is {a}, finite differences give {numeric} (input {v:?})")
            })?;
        }
    }
    Ok(())
}

fn expect_err<T>(what: &str, r: Result<T>, needles: &[&str]) -> Result<()> {
    match r {
        Ok(_) => Err(fail(format!("{what}: expected an error, got Ok"))),
        Err(e) => {
            let msg = e.to_string();
            for n in needles {
                ensure(msg.contains(n), || format!("{what}: error `{msg}` does not mention `{n}`"))?;
            }
            Ok(())
        }
    }
}

// -------------------------------------------------------------------- cases

/// Creation, upload and download of both dtypes.
pub fn creation(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?;
    ensure(x.dims() == [2, 3] && x.dtype() == DType::F32, || "shape/dtype".into())?;
    assert_close("roundtrip", &vals(&x)?, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0, 0.0)?;
    let i = ti(dev, &[-3, 0, 7], [3])?;
    ensure(i.to_vec::<i64>()? == vec![-3, 0, 7], || "i64 roundtrip".into())?;
    assert_close("zeros", &vals(&Tensor::zeros([2, 2], DType::F32, dev)?)?, &[0.0; 4], 0.0, 0.0)?;
    assert_close("ones", &vals(&Tensor::ones([3], DType::F32, dev)?)?, &[1.0; 3], 0.0, 0.0)?;
    assert_close("full", &vals(&Tensor::full(2.5, [2], DType::F32, dev)?)?, &[2.5, 2.5], 0.0, 0.0)?;
    ensure(Tensor::full(4.0, [2], DType::I64, dev)?.to_vec::<i64>()? == vec![4, 4], || "full i64".into())?;
    ensure(Tensor::arange(4, DType::I64, dev)?.to_vec::<i64>()? == vec![0, 1, 2, 3], || "arange".into())?;
    let s = Tensor::scalar(3.5f32, dev)?;
    ensure(s.rank() == 0 && s.to_scalar::<f32>()? == 3.5, || "scalar".into())?;
    expect_err("length", Tensor::new(vec![1.0f32; 5], [2, 3], dev), &["5", "[2, 3]"])?;
    expect_err("to_vec dtype", x.to_vec::<i64>(), &["i64", "f32"])?;
    expect_err("to_scalar", x.to_scalar::<f32>(), &["[2, 3]"])?;
    Ok(())
}

/// Seeded random tensors are reproducible and have the requested range/moments.
pub fn random_is_seeded(dev: &Device) -> Result<()> {
    let a = vals(&Tensor::rand_uniform([1000], -2.0, 3.0, &mut Rng::seed(1), dev)?)?;
    let b = vals(&Tensor::rand_uniform([1000], -2.0, 3.0, &mut Rng::seed(1), dev)?)?;
    let c = vals(&Tensor::rand_uniform([1000], -2.0, 3.0, &mut Rng::seed(2), dev)?)?;
    ensure(a == b && a != c, || "same seed must give the same values, another seed others".into())?;
    ensure(a.iter().all(|&v| (-2.0..3.0).contains(&v)), || "uniform out of range".into())?;
    let n = vals(&Tensor::rand_normal([20000], 1.0, 2.0, &mut Rng::seed(3), dev)?)?;
    let mean = n.iter().map(|&v| v as f64).sum::<f64>() / n.len() as f64;
    let var = n.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n.len() as f64;
    ensure((mean - 1.0).abs() < 0.05 && (var.sqrt() - 2.0).abs() < 0.05, || format!("normal moments {mean} {var}"))?;
    expect_err("bad range", Tensor::rand_uniform([2], 1.0, 0.0, &mut Rng::seed(0), dev), &["low=1"])?;
    Ok(())
}

/// `Display` shows shape, dtype, device and truncated values.
pub fn display(dev: &Device) -> Result<()> {
    let x = Tensor::arange(100, DType::F32, dev)?.reshape([10, 10])?;
    let s = x.to_string();
    ensure(s.contains("[10, 10]") && s.contains("f32") && s.contains(dev.name()), || s.clone())?;
    ensure(s.contains("...") && s.contains("99.0000") && !s.contains("55.0000"), || s.clone())?;
    let i = ti(dev, &[1, 2], [2])?.to_string();
    ensure(i.contains("[1, 2]") && i.contains("i64"), || i.clone())?;
    Ok(())
}

fn unary_domain(op: UnaryOp) -> Vec<f32> {
    match op {
        UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => vec![0.1, 0.5, 1.0, 2.0, 7.5, 1e3],
        UnaryOp::Exp => vec![-20.0, -1.5, 0.0, 0.3, 1.0, 5.0],
        _ => vec![-1e3, -30.0, -2.5, -0.7, 0.0, 0.4, 1.3, 3.0, 30.0, 1e3],
    }
}

/// Every unary op against its `f64` reference, including extreme inputs;
/// `relu(NaN)` is NaN.
pub fn unary_forward(dev: &Device) -> Result<()> {
    for op in UnaryOp::ALL {
        let xs = unary_domain(op);
        let got = vals(&t(dev, &xs, [xs.len()])?.unary(op)?)?;
        let want: Vec<f64> = xs.iter().map(|&x| op.reference(x as f64)).collect();
        assert_close(op.name(), &got, &want, 1e-6, 2e-5)?;
        ensure(got.iter().all(|v| !v.is_nan()), || format!("{} produced NaN on {xs:?}: {got:?}", op.name()))?;
    }
    // relu keeps NaN, as Keras and JAX do: a diverged activation must stay
    // visible (to TerminateOnNaN), not become 0. Alone and fused after a
    // product.
    let got = vals(&t(dev, &[f32::NAN, f32::NEG_INFINITY, f32::INFINITY, -2.0, 3.0], [5])?.relu()?)?;
    ensure(got[0].is_nan() && got[1..] == [0.0, f32::INFINITY, 0.0, 3.0], || format!("relu on NaN/inf: {got:?}"))?;
    let x = t(dev, &[f32::NAN, 1.0, -1.0, -1.0], [2, 2])?;
    let fused = vals(&x.linear(&t(dev, &[1.0; 2], [2, 1])?, None, LinearActivation::Relu)?)?;
    ensure(fused[0].is_nan() && fused[1] == 0.0, || format!("linear + relu on a NaN row: {fused:?}"))?;
    // maximum and minimum propagate NaN from either side (relu6 is
    // relu, then minimum with 6).
    let a = t(dev, &[f32::NAN, 1.0, 2.0], [3])?;
    let b = t(dev, &[0.0, f32::NAN, 1.0], [3])?;
    for (name, got) in [("maximum", vals(&a.maximum(&b)?)?), ("minimum", vals(&a.minimum(&b)?)?)] {
        ensure(got[0].is_nan() && got[1].is_nan() && !got[2].is_nan(), || format!("{name} with NaN: {got:?}"))?;
    }
    let clipped = vals(&a.minimum_scalar(6.0)?)?;
    ensure(clipped[0].is_nan(), || format!("minimum_scalar(NaN, 6): {clipped:?}"))?;
    Ok(())
}

/// Integer unary ops, and `f32`-only ops rejected on integers.
pub fn unary_int(dev: &Device) -> Result<()> {
    let x = ti(dev, &[-3, 0, 5], [3])?;
    for op in UnaryOp::ALL {
        let r = x.unary(op);
        if op.supports_int() {
            let got = r?.to_vec::<i64>()?;
            let want: Vec<i64> = [-3.0, 0.0, 5.0].iter().map(|&v| op.reference(v) as i64).collect();
            ensure(got == want, || format!("{} on i64: {got:?}, expected {want:?}", op.name()))?;
        } else {
            expect_err(op.name(), r, &["f32", "i64"])?;
        }
    }
    Ok(())
}

/// Every differentiable unary op's gradient against finite differences.
pub fn unary_grad(dev: &Device) -> Result<()> {
    for op in UnaryOp::ALL {
        if matches!(op, UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Ceil) {
            continue;
        }
        let xs: Vec<f32> = match op {
            UnaryOp::Log | UnaryOp::Sqrt | UnaryOp::Recip => vec![0.3, 0.8, 1.7, 2.5],
            _ => vec![-2.1, -0.6, 0.35, 1.2, 2.4],
        };
        let shape = Shape::from([xs.len()]);
        check_grad(op.name(), dev, &[(xs, shape)], 1e-2, |v| v[0].unary(op))?;
    }
    Ok(())
}

fn binary_reference(op: BinaryOp, a: &[f32], sa: &[usize], b: &[f32], sb: &[usize], out: &[usize]) -> Vec<f64> {
    let n: usize = out.iter().product();
    (0..n).map(|i| op.reference(a[broadcast_index(i, out, sa)] as f64, b[broadcast_index(i, out, sb)] as f64)).collect()
}

/// Every binary op against its reference on equal shapes.
pub fn binary_forward(dev: &Device) -> Result<()> {
    let a = [1.5f32, -2.0, 3.0, 0.5, 2.0, 4.0];
    let b = [0.5f32, -2.0, 1.0, 2.0, 2.0, -3.0];
    let (x, y) = (t(dev, &a, [2, 3])?, t(dev, &b, [2, 3])?);
    for op in BinaryOp::ALL {
        let (a, b, x, y) = if op == BinaryOp::Pow {
            let pa = [1.5f32, 2.0, 3.0, 0.5, 2.0, 4.0];
            (pa, b, t(dev, &pa, [2, 3])?, y.clone())
        } else {
            (a, b, x.clone(), y.clone())
        };
        let got = vals(&x.binary(op, &y)?)?;
        let want = binary_reference(op, &a, &[2, 3], &b, &[2, 3], &[2, 3]);
        assert_close(op.name(), &got, &want, 1e-6, 1e-5)?;
    }
    Ok(())
}

/// Broadcasting: scalars, size-1 axes on both sides, rank differences, empty axes.
pub fn binary_broadcasting(dev: &Device) -> Result<()> {
    let cases: &[(&[usize], &[usize], &[usize])] = &[
        (&[2, 3], &[], &[2, 3]),
        (&[], &[2, 3], &[2, 3]),
        (&[2, 3], &[3], &[2, 3]),
        (&[2, 3], &[2, 1], &[2, 3]),
        (&[4, 1, 3], &[2, 1], &[4, 2, 3]),
        (&[3, 1], &[1, 4], &[3, 4]),
        (&[2, 3, 4], &[4], &[2, 3, 4]),
        (&[1], &[5], &[5]),
        (&[1, 1], &[1, 1], &[1, 1]),
        (&[0, 3], &[3], &[0, 3]),
        (&[2, 1, 4], &[1, 3, 1], &[2, 3, 4]),
    ];
    let mut rng = Rng::seed(11);
    for (sa, sb, so) in cases {
        let a = random_vals(&mut rng, sa.iter().product(), -2.0, 2.0);
        let b = random_vals(&mut rng, sb.iter().product(), 0.5, 2.0);
        for op in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Div, BinaryOp::Maximum, BinaryOp::Gt] {
            let r = t(dev, &a, *sa)?.binary(op, &t(dev, &b, *sb)?)?;
            ensure(r.dims() == *so, || {
                format!("{} {sa:?} with {sb:?}: shape {}, expected {so:?}", op.name(), r.shape())
            })?;
            let want = binary_reference(op, &a, sa, &b, sb, so);
            assert_close(&format!("{} {sa:?} with {sb:?}", op.name()), &vals(&r)?, &want, 1e-6, 1e-6)?;
        }
    }
    Ok(())
}

/// Gradients of the arithmetic ops, reduced back to broadcast operands' shapes.
pub fn binary_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(5);
    for (sa, sb) in [(vec![2, 3], vec![2, 3]), (vec![2, 3], vec![3]), (vec![3, 1], vec![1, 4]), (vec![2, 3], vec![])] {
        for op in [
            BinaryOp::Add,
            BinaryOp::Sub,
            BinaryOp::Mul,
            BinaryOp::Div,
            BinaryOp::Pow,
            BinaryOp::Maximum,
            BinaryOp::Minimum,
        ] {
            let na: usize = sa.iter().product();
            let nb: usize = sb.iter().product();
            let a = random_vals(&mut rng, na, 0.5, 2.0);
            // Keep maximum/minimum away from ties: b on a disjoint grid.
            let b: Vec<f32> = (0..nb).map(|i| if i % 2 == 0 { 0.25 } else { 2.6 } + 0.01 * i as f32).collect();
            let what = format!("{} {sa:?} with {sb:?}", op.name());
            check_grad(&what, dev, &[(a, sa.clone().into()), (b, sb.clone().into())], 1e-3, |v| {
                v[0].binary(op, &v[1])
            })?;
        }
    }
    Ok(())
}

/// Ops with a scalar right operand: values and gradients.
pub fn binary_scalar(dev: &Device) -> Result<()> {
    let xs = [0.5f32, 1.5, 2.5, 4.0];
    let x = t(dev, &xs, [4])?;
    for op in BinaryOp::ALL {
        let got = vals(&x.binary_scalar(op, 2.0)?)?;
        let want: Vec<f64> = xs.iter().map(|&v| op.reference(v as f64, 2.0)).collect();
        assert_close(op.name(), &got, &want, 1e-6, 1e-6)?;
        if !op.is_comparison() {
            check_grad(op.name(), dev, &[(vec![0.5, 1.5, 2.6, 4.0], Shape::from([4]))], 1e-3, |v| {
                v[0].binary_scalar(op, 2.0)
            })?;
        }
    }
    assert_close("affine", &vals(&x.affine(2.0, -1.0)?)?, &[0.0, 2.0, 4.0, 7.0], 0.0, 0.0)?;
    Ok(())
}

/// Integer arithmetic, and integer division by zero as an error.
pub fn int_arithmetic(dev: &Device) -> Result<()> {
    let a = ti(dev, &[7, -7, 9], [3])?;
    let b = ti(dev, &[2, 2, 3], [3])?;
    ensure(a.add(&b)?.to_vec::<i64>()? == vec![9, -5, 12], || "i64 add".into())?;
    ensure(a.mul(&b)?.to_vec::<i64>()? == vec![14, -14, 27], || "i64 mul".into())?;
    ensure(a.div(&b)?.to_vec::<i64>()? == vec![3, -3, 3], || "i64 div truncates".into())?;
    ensure(a.gt(&b)?.to_vec::<i64>()? == vec![1, 0, 1], || "i64 gt".into())?;
    ensure(a.add_scalar(1.0)?.to_vec::<i64>()? == vec![8, -6, 10], || "i64 add_scalar".into())?;
    expect_err("i64 division by zero", a.div(&ti(dev, &[1, 0, 1], [3])?).and_then(|r| r.to_vec::<i64>()), &["zero"])?;
    expect_err("i64 pow", a.pow(&b), &["f32"])?;
    expect_err("i64 fractional scalar", a.add_scalar(2.5), &["integral", "2.5"])?;
    Ok(())
}

/// Sum / max / min / mean over axes, with and without keepdim.
pub fn reduce_forward(dev: &Device) -> Result<()> {
    // x[i][j][k] = i*100 + j*10 + k - 50
    let data: Vec<f32> = (0..24).map(|n| ((n / 12) * 100 + ((n / 4) % 3) * 10 + n % 4) as f32 - 50.0).collect();
    let x = t(dev, &data, [2, 3, 4])?;
    let at = |i: usize, j: usize, k: usize| data[i * 12 + j * 4 + k] as f64;
    let s = x.sum(&[1], false)?;
    ensure(s.dims() == [2, 4], || format!("sum shape {}", s.shape()))?;
    let want: Vec<f64> = (0..2).flat_map(|i| (0..4).map(move |k| (0..3).map(|j| at(i, j, k)).sum())).collect();
    assert_close("sum axis 1", &vals(&s)?, &want, 1e-4, 0.0)?;
    let s = x.sum(&[0, 2], true)?;
    ensure(s.dims() == [1, 3, 1], || format!("sum keepdim shape {}", s.shape()))?;
    let want: Vec<f64> =
        (0..3).map(|j| (0..2).flat_map(|i| (0..4).map(move |k| (i, k))).map(|(i, k)| at(i, j, k)).sum()).collect();
    assert_close("sum axes 0,2", &vals(&s)?, &want, 1e-4, 0.0)?;
    assert_close("sum_all", &vals(&x.sum_all()?)?, &[data.iter().map(|&v| v as f64).sum()], 1e-3, 0.0)?;
    assert_close(
        "mean -1",
        &vals(&x.mean(&[-1], false)?)?,
        &(0..6).map(|r| (0..4).map(|k| data[r * 4 + k] as f64).sum::<f64>() / 4.0).collect::<Vec<_>>(),
        1e-4,
        0.0,
    )?;
    assert_close(
        "max 0",
        &vals(&x.max(0, false)?)?,
        &data[12..].iter().map(|&v| v as f64).collect::<Vec<_>>(),
        0.0,
        0.0,
    )?;
    assert_close(
        "min 2",
        &vals(&x.min(2, false)?)?,
        &(0..6).map(|r| data[r * 4] as f64).collect::<Vec<_>>(),
        0.0,
        0.0,
    )?;
    let am = x.argmax(1, false)?;
    ensure(am.dtype() == DType::I64 && am.to_vec::<i64>()? == vec![2; 8], || "argmax".into())?;
    ensure(x.argmin(-1, true)?.dims() == [2, 3, 1], || "argmin keepdim".into())?;
    let i = ti(dev, &[3, -1, 4, 1], [2, 2])?;
    ensure(i.sum(&[1], false)?.to_vec::<i64>()? == vec![2, 5], || "i64 sum".into())?;
    ensure(i.max(0, false)?.to_vec::<i64>()? == vec![4, 1], || "i64 max".into())?;
    Ok(())
}

/// Gradients of sum, mean, max and min.
pub fn reduce_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(9);
    // Distinct values (a shuffled grid) so max/min have no ties.
    let mut data: Vec<f32> = (0..24).map(|i| i as f32 * 0.37 - 4.0).collect();
    rng.shuffle(&mut data);
    let s = Shape::from([2, 3, 4]);
    let inp = [(data, s)];
    check_grad("sum", dev, &inp, 1e-2, |v| v[0].sum(&[1], false))?;
    check_grad("sum 0,2 keepdim", dev, &inp, 1e-2, |v| v[0].sum(&[0, 2], true))?;
    check_grad("mean", dev, &inp, 1e-2, |v| v[0].mean(&[-1], false))?;
    check_grad("mean_all", dev, &inp, 1e-2, |v| v[0].mean_all())?;
    check_grad("max", dev, &inp, 1e-2, |v| v[0].max(1, false))?;
    check_grad("min", dev, &inp, 1e-2, |v| v[0].min(-1, true))?;
    // Ties share the gradient.
    let x = t(dev, &[2.0, 2.0, 1.0], [3])?.to_variable()?;
    let g = x.max(0, false)?.backward()?;
    assert_close("max ties", &vals(g.get(&x).unwrap())?, &[0.5, 0.5, 0.0], 0.0, 0.0)?;
    Ok(())
}

/// ArgMax/ArgMin pick the first of tied values.
pub fn argmax_ties(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.0, 5.0, 5.0, 0.0, -1.0, -1.0], [2, 3])?;
    ensure(x.argmax(1, false)?.to_vec::<i64>()? == vec![1, 0], || "argmax ties".into())?;
    ensure(x.argmin(1, false)?.to_vec::<i64>()? == vec![0, 1], || "argmin ties".into())?;
    ensure(x.argmax(0, false)?.to_vec::<i64>()? == vec![0, 0, 0], || "argmax axis 0".into())?;
    Ok(())
}

fn naive_matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f64> {
    let mut out = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            out[i * n + j] = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
        }
    }
    out
}

fn transpose(a: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..cols).flat_map(|j| (0..rows).map(move |i| a[i * cols + j])).collect()
}

/// 2-D products against a naive loop, including a hand-computed one.
pub fn matmul_forward(dev: &Device) -> Result<()> {
    let a = t(dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?;
    let b = t(dev, &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0], [3, 2])?;
    assert_close("2x3·3x2", &vals(&a.matmul(&b)?)?, &[58.0, 64.0, 139.0, 154.0], 0.0, 0.0)?;
    let mut rng = Rng::seed(3);
    for (m, k, n) in [(1, 1, 1), (5, 7, 3), (33, 65, 17), (128, 64, 96)] {
        let av = random_vals(&mut rng, m * k, -1.0, 1.0);
        let bv = random_vals(&mut rng, k * n, -1.0, 1.0);
        let got = vals(&t(dev, &av, [m, k])?.matmul(&t(dev, &bv, [k, n])?)?)?;
        assert_close(&format!("matmul {m}x{k}x{n}"), &got, &naive_matmul(&av, &bv, m, k, n), 1e-4, 1e-4)?;
    }
    Ok(())
}

/// All four transpose combinations fold into the kernel and agree.
pub fn matmul_transposed(dev: &Device) -> Result<()> {
    let (m, k, n) = (6, 5, 4);
    let mut rng = Rng::seed(4);
    let av = random_vals(&mut rng, m * k, -1.0, 1.0);
    let bv = random_vals(&mut rng, k * n, -1.0, 1.0);
    let want = naive_matmul(&av, &bv, m, k, n);
    let at = transpose(&av, m, k);
    let bt = transpose(&bv, k, n);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let a = if ta { t(dev, &at, [k, m])? } else { t(dev, &av, [m, k])? };
        let b = if tb { t(dev, &bt, [n, k])? } else { t(dev, &bv, [k, n])? };
        let got = vals(&a.matmul_t(&b, ta, tb)?)?;
        assert_close(&format!("matmul_t({ta}, {tb})"), &got, &want, 1e-5, 1e-5)?;
    }
    let viat = vals(&t(dev, &at, [k, m])?.t()?.matmul(&t(dev, &bv, [k, n])?)?)?;
    assert_close("t() then matmul", &viat, &want, 1e-5, 1e-5)?;
    Ok(())
}

/// Batched products, with batch broadcasting in both directions.
pub fn matmul_batched(dev: &Device) -> Result<()> {
    let (bsz, m, k, n) = (3, 4, 5, 2);
    let mut rng = Rng::seed(6);
    let av = random_vals(&mut rng, bsz * m * k, -1.0, 1.0);
    let bv = random_vals(&mut rng, bsz * k * n, -1.0, 1.0);
    let a = t(dev, &av, [bsz, m, k])?;
    let b = t(dev, &bv, [bsz, k, n])?;
    let got = vals(&a.matmul(&b)?)?;
    let want: Vec<f64> = (0..bsz)
        .flat_map(|i| naive_matmul(&av[i * m * k..(i + 1) * m * k], &bv[i * k * n..(i + 1) * k * n], m, k, n))
        .collect();
    assert_close("batched", &got, &want, 1e-5, 1e-5)?;
    // rank-3 · rank-2 (Dense on sequences)
    let w = &bv[..k * n];
    let r = a.matmul(&t(dev, w, [k, n])?)?;
    ensure(r.dims() == [bsz, m, n], || format!("3x2 shape {}", r.shape()))?;
    let want: Vec<f64> = (0..bsz).flat_map(|i| naive_matmul(&av[i * m * k..(i + 1) * m * k], w, m, k, n)).collect();
    assert_close("rank3·rank2", &vals(&r)?, &want, 1e-5, 1e-5)?;
    // rank-2 · rank-3 (stride-0 lhs)
    let l = &av[..m * k];
    let r = t(dev, l, [m, k])?.matmul(&b)?;
    let want: Vec<f64> = (0..bsz).flat_map(|i| naive_matmul(l, &bv[i * k * n..(i + 1) * k * n], m, k, n)).collect();
    assert_close("rank2·rank3", &vals(&r)?, &want, 1e-5, 1e-5)?;
    // [2,1,m,k] · [3,k,n] → [2,3,m,n]
    let a4 = &av[..2 * m * k];
    let r = t(dev, a4, [2, 1, m, k])?.matmul(&b)?;
    ensure(r.dims() == [2, 3, m, n], || format!("broadcast batch shape {}", r.shape()))?;
    let want: Vec<f64> = (0..2)
        .flat_map(|i| (0..3).map(move |j| (i, j)))
        .flat_map(|(i, j)| naive_matmul(&a4[i * m * k..(i + 1) * m * k], &bv[j * k * n..(j + 1) * k * n], m, k, n))
        .collect();
    assert_close("broadcast batch", &vals(&r)?, &want, 1e-5, 1e-5)?;
    Ok(())
}

/// Matmul gradients for every transpose combination and for batch broadcasting.
pub fn matmul_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(8);
    let (m, k, n) = (3, 4, 2);
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let sa: Shape = if ta { [k, m].into() } else { [m, k].into() };
        let sb: Shape = if tb { [n, k].into() } else { [k, n].into() };
        let a = random_vals(&mut rng, m * k, -1.0, 1.0);
        let b = random_vals(&mut rng, k * n, -1.0, 1.0);
        check_grad(&format!("matmul_t({ta}, {tb})"), dev, &[(a, sa), (b, sb)], 1e-2, |v| v[0].matmul_t(&v[1], ta, tb))?;
    }
    let a = random_vals(&mut rng, 2 * m * k, -1.0, 1.0);
    let b = random_vals(&mut rng, k * n, -1.0, 1.0);
    check_grad("rank3·rank2", dev, &[(a.clone(), [2, m, k].into()), (b.clone(), [k, n].into())], 1e-2, |v| {
        v[0].matmul(&v[1])
    })?;
    let b3 = random_vals(&mut rng, 2 * k * n, -1.0, 1.0);
    check_grad("rank2·rank3", dev, &[(a[..m * k].to_vec(), [m, k].into()), (b3, [2, k, n].into())], 1e-2, |v| {
        v[0].matmul(&v[1])
    })?;
    Ok(())
}

/// Reshape, permute, transpose, broadcast_to, narrow, concat, (un)squeeze.
pub fn shape_ops(dev: &Device) -> Result<()> {
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let x = t(dev, &data, [2, 3, 4])?;
    let p = x.permute(&[2, 0, 1])?;
    ensure(p.dims() == [4, 2, 3], || "permute shape".into())?;
    let want: Vec<f64> =
        (0..4).flat_map(|k| (0..2).flat_map(move |i| (0..3).map(move |j| (i * 12 + j * 4 + k) as f64))).collect();
    assert_close("permute", &vals(&p)?, &want, 0.0, 0.0)?;
    let tr = t(dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?.t()?;
    assert_close("t", &vals(&tr)?, &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0], 0.0, 0.0)?;
    let b = t(dev, &[1.0, 2.0], [2, 1])?.broadcast_to([2, 3])?;
    assert_close("broadcast_to", &vals(&b)?, &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0], 0.0, 0.0)?;
    let nr = x.narrow(2, 1, 2)?;
    ensure(nr.dims() == [2, 3, 2], || "narrow shape".into())?;
    let want: Vec<f64> = (0..6).flat_map(|r| [(r * 4 + 1) as f64, (r * 4 + 2) as f64]).collect();
    assert_close("narrow", &vals(&nr)?, &want, 0.0, 0.0)?;
    let a = t(dev, &[1.0, 2.0], [1, 2])?;
    let c = t(dev, &[3.0, 4.0, 5.0, 6.0], [2, 2])?;
    assert_close("concat 0", &vals(&Tensor::concat(&[&a, &c], 0)?)?, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 0.0, 0.0)?;
    let d = t(dev, &[7.0, 8.0], [2, 1])?;
    assert_close("concat 1", &vals(&Tensor::concat(&[&c, &d], -1)?)?, &[3.0, 4.0, 7.0, 5.0, 6.0, 8.0], 0.0, 0.0)?;
    ensure(x.reshape([6, 4])?.dims() == [6, 4] && x.flatten_from(1)?.dims() == [2, 12], || "reshape".into())?;
    ensure(x.unsqueeze(1)?.dims() == [2, 1, 3, 4] && x.unsqueeze(-1)?.squeeze(-1)?.dims() == [2, 3, 4], || {
        "unsqueeze".into()
    })?;
    let it = ti(dev, &[1, 2, 3, 4, 5, 6], [2, 3])?.t()?;
    ensure(it.to_vec::<i64>()? == vec![1, 4, 2, 5, 3, 6], || "i64 transpose".into())?;
    Ok(())
}

/// Gradients through the shape ops.
pub fn shape_ops_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(12);
    let x = random_vals(&mut rng, 24, -1.0, 1.0);
    let s = Shape::from([2, 3, 4]);
    let inp = [(x.clone(), s.clone())];
    check_grad("permute", dev, &inp, 1e-2, |v| v[0].permute(&[1, 2, 0]))?;
    check_grad("reshape", dev, &inp, 1e-2, |v| v[0].reshape([4, 6])?.square())?;
    check_grad("narrow", dev, &inp, 1e-2, |v| v[0].narrow(1, 1, 1))?;
    check_grad("narrow end", dev, &inp, 1e-2, |v| v[0].narrow(2, 2, 2))?;
    check_grad("broadcast_to", dev, &[(x[..3].to_vec(), [3, 1].into())], 1e-2, |v| v[0].broadcast_to([2, 3, 4]))?;
    check_grad("concat", dev, &[(x[..6].to_vec(), [2, 3].into()), (x[6..10].to_vec(), [2, 2].into())], 1e-2, |v| {
        Tensor::concat(&[&v[0], &v[1]], 1)?.square()
    })?;
    Ok(())
}

/// Gather (any index shape, repeated indices) and index_add values.
pub fn gather_and_index_add(dev: &Device) -> Result<()> {
    let table = t(dev, &[0.0, 1.0, 10.0, 11.0, 20.0, 21.0], [3, 2])?;
    let idx = ti(dev, &[2, 0, 2, 1], [2, 2])?;
    let g = table.gather(0, &idx)?;
    ensure(g.dims() == [2, 2, 2], || format!("gather shape {}", g.shape()))?;
    assert_close("gather rows", &vals(&g)?, &[20.0, 21.0, 0.0, 1.0, 20.0, 21.0, 10.0, 11.0], 0.0, 0.0)?;
    let cols = table.gather(1, &ti(dev, &[1, 1, 0], [3])?)?;
    assert_close("gather cols", &vals(&cols)?, &[1.0, 1.0, 0.0, 11.0, 11.0, 10.0, 21.0, 21.0, 20.0], 0.0, 0.0)?;
    let src = t(dev, &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0], [3, 2])?;
    let r = table.index_add(0, &ti(dev, &[1, 1, 0], [3])?, &src)?;
    assert_close("index_add", &vals(&r)?, &[3.0, 4.0, 13.0, 14.0, 20.0, 21.0], 0.0, 0.0)?;
    let ig = ti(dev, &[5, 6, 7], [3])?.gather(0, &ti(dev, &[2, 2], [2])?)?;
    ensure(ig.to_vec::<i64>()? == vec![7, 7], || "gather i64".into())?;
    Ok(())
}

/// Gradients of gather (embedding lookup with repeats) and index_add.
pub fn gather_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(13);
    let table = random_vals(&mut rng, 12, -1.0, 1.0);
    let idx = ti(dev, &[3, 0, 3, 3, 1], [5])?;
    check_grad("gather", dev, &[(table.clone(), [4, 3].into())], 1e-2, |v| v[0].gather(0, &idx)?.square())?;
    let src = random_vals(&mut rng, 15, -1.0, 1.0);
    check_grad("index_add", dev, &[(table, [4, 3].into()), (src, [5, 3].into())], 1e-2, |v| {
        v[0].index_add(0, &idx, &v[1])?.square()
    })?;
    Ok(())
}

/// `where` with broadcasting, f32 and i64 conditions, and its gradient.
pub fn where_cond(dev: &Device) -> Result<()> {
    let c = t(dev, &[1.0, 0.0, 1.0], [3])?;
    let a = t(dev, &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3])?;
    let b = Tensor::scalar(-1.0f32, dev)?;
    let r = Tensor::where_cond(&c, &a, &b)?;
    assert_close("where", &vals(&r)?, &[1.0, -1.0, 3.0, 4.0, -1.0, 6.0], 0.0, 0.0)?;
    let ci = ti(dev, &[0, 5, 0], [3])?;
    assert_close(
        "where i64 cond",
        &vals(&Tensor::where_cond(&ci, &a, &b)?)?,
        &[-1.0, 2.0, -1.0, -1.0, 5.0, -1.0],
        0.0,
        0.0,
    )?;
    let mut rng = Rng::seed(14);
    let av = random_vals(&mut rng, 6, -1.0, 1.0);
    let bv = random_vals(&mut rng, 3, -1.0, 1.0);
    check_grad("where", dev, &[(av, [2, 3].into()), (bv, [3].into())], 1e-2, |v| {
        Tensor::where_cond(&c, &v[0], &v[1])?.square()
    })?;
    Ok(())
}

/// Casts between f32 and i64.
pub fn cast(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.7, -1.7, 0.2, 3.0], [4])?;
    ensure(x.cast(DType::I64)?.to_vec::<i64>()? == vec![1, -1, 0, 3], || "f32→i64 truncates".into())?;
    assert_close("i64→f32", &vals(&ti(dev, &[-2, 5], [2])?.cast(DType::F32)?)?, &[-2.0, 5.0], 0.0, 0.0)?;
    let v = x.to_variable()?;
    ensure(!v.cast(DType::I64)?.requires_grad(), || "casts carry no gradient".into())?;
    Ok(())
}

/// Softmax and log-softmax along any axis, stable for large inputs.
pub fn softmax_forward(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0], [2, 3])?;
    let e = [1f64.exp(), 2f64.exp(), 3f64.exp()];
    let z: f64 = e.iter().sum();
    let want = [e[0] / z, e[1] / z, e[2] / z, 0.5, 0.5, 0.0];
    assert_close("softmax", &vals(&x.softmax(-1)?)?, &want, 1e-6, 1e-5)?;
    let lwant = [
        1.0 - 3.0 - (z / 3f64.exp()).ln(),
        2.0 - 3.0 - (z / 3f64.exp()).ln(),
        -(z / 3f64.exp()).ln(),
        -(2f64).ln(),
        -(2f64).ln(),
        -2000.0 - 2f64.ln(),
    ];
    assert_close("log_softmax", &vals(&x.log_softmax(1)?)?, &lwant, 1e-5, 1e-5)?;
    let col = vals(&t(dev, &[0.0, 1.0, 0.0, 1.0], [2, 2])?.softmax(0)?)?;
    assert_close("softmax axis 0", &col, &[0.5, 0.5, 0.5, 0.5], 1e-6, 0.0)?;
    let s3 = t(dev, &(0..24).map(|i| (i % 5) as f32).collect::<Vec<_>>(), [2, 3, 4])?.softmax(1)?;
    let sums = vals(&s3.sum(&[1], false)?)?;
    assert_close("softmax axis 1 sums", &sums, &[1.0; 8], 1e-6, 0.0)?;
    Ok(())
}

/// Softmax and log-softmax gradients.
pub fn softmax_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(15);
    let x = random_vals(&mut rng, 12, -2.0, 2.0);
    check_grad("softmax", dev, &[(x.clone(), [3, 4].into())], 1e-2, |v| v[0].softmax(-1))?;
    check_grad("softmax axis 0", dev, &[(x.clone(), [3, 4].into())], 1e-2, |v| v[0].softmax(0))?;
    check_grad("log_softmax", dev, &[(x, [3, 4].into())], 1e-2, |v| v[0].log_softmax(-1))?;
    Ok(())
}

const LINEAR_ACTIVATIONS: [LinearActivation; 4] =
    [LinearActivation::Identity, LinearActivation::Relu, LinearActivation::Sigmoid, LinearActivation::Tanh];

fn activate_f64(act: LinearActivation, v: f64) -> f64 {
    match act {
        LinearActivation::Identity => v,
        LinearActivation::Relu => UnaryOp::Relu.reference(v),
        LinearActivation::Sigmoid => 1.0 / (1.0 + (-v).exp()),
        LinearActivation::Tanh => v.tanh(),
    }
}

/// `act(x·w + b)` against an `f64` reference, with and without a bias, for
/// every fused activation, on a product big enough for threads and on a
/// rank-3 input; it equals the unfused ops; bad shapes are errors.
pub fn linear_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(31);
    for (m, k, n) in [(3, 4, 2), (70, 50, 90), (1, 1, 1)] {
        let x = random_vals(&mut rng, m * k, -1.0, 1.0);
        let w = random_vals(&mut rng, k * n, -1.0, 1.0);
        let b = random_vals(&mut rng, n, -0.5, 0.5);
        let (xt, wt, bt) = (t(dev, &x, [m, k])?, t(dev, &w, [k, n])?, t(dev, &b, [n])?);
        let xw = naive_matmul(&x, &w, m, k, n);
        for act in LINEAR_ACTIVATIONS {
            for bias in [false, true] {
                let want: Vec<f64> = xw
                    .iter()
                    .enumerate()
                    .map(|(i, &v)| activate_f64(act, v + if bias { b[i % n] as f64 } else { 0.0 }))
                    .collect();
                let got = xt.linear(&wt, bias.then_some(&bt), act)?;
                ensure(got.dims() == [m, n], || format!("linear {act:?}: shape {}", got.shape()))?;
                assert_close(&format!("linear {m}x{k}x{n} {act:?} bias={bias}"), &vals(&got)?, &want, 1e-5, 1e-5)?;
                // The same values as the ops it fuses.
                let mut unfused = xt.matmul(&wt)?;
                if bias {
                    unfused = unfused.add(&bt)?;
                }
                let unfused = match act.unary() {
                    Some(op) => unfused.unary(op)?,
                    None => unfused,
                };
                let u = vals(&unfused)?;
                assert_close(
                    &format!("linear {act:?} vs unfused"),
                    &vals(&got)?,
                    &u.iter().map(|&v| v as f64).collect::<Vec<_>>(),
                    0.0,
                    0.0,
                )?;
            }
        }
    }
    // Rank 3: the leading axes are rows.
    let x = random_vals(&mut rng, 2 * 3 * 4, -1.0, 1.0);
    let w = random_vals(&mut rng, 4 * 5, -1.0, 1.0);
    let got = t(dev, &x, [2, 3, 4])?.linear(&t(dev, &w, [4, 5])?, None, LinearActivation::Tanh)?;
    ensure(got.dims() == [2, 3, 5], || format!("rank-3 linear: shape {}", got.shape()))?;
    let want: Vec<f64> = naive_matmul(&x, &w, 6, 4, 5).into_iter().map(f64::tanh).collect();
    assert_close("rank-3 linear", &vals(&got)?, &want, 1e-5, 1e-5)?;
    let (x, w) = (t(dev, &[1.0; 6], [2, 3])?, t(dev, &[1.0; 8], [4, 2])?);
    expect_err("linear inner", x.linear(&w, None, LinearActivation::Relu), &["linear", "3 vs 4"])?;
    let w = t(dev, &[1.0; 6], [3, 2])?;
    expect_err(
        "linear bias",
        x.linear(&w, Some(&t(dev, &[0.0; 3], [3])?), LinearActivation::Relu),
        &["bias", "(2,)", "[3]"],
    )?;
    expect_err("linear rank", t(dev, &[1.0; 3], [3])?.linear(&w, None, LinearActivation::Relu), &["linear", "rank"])?;
    expect_err("linear dtype", ti(dev, &[1; 6], [2, 3])?.linear(&w, None, LinearActivation::Relu), &["linear"])?;
    Ok(())
}

/// Gradients of `linear` to the input, kernel and bias, for every fused
/// activation, against finite differences.
pub fn linear_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(32);
    let (m, k, n) = (3, 4, 5);
    for act in LINEAR_ACTIVATIONS {
        // Inputs whose pre-activations (with and without the bias) stay away
        // from relu's kink, where finite differences are meaningless.
        let (x, w, b) = loop {
            let x = random_vals(&mut rng, m * k, -1.0, 1.0);
            let w = random_vals(&mut rng, k * n, -1.0, 1.0);
            let b = random_vals(&mut rng, n, -0.3, 0.3);
            let xw = naive_matmul(&x, &w, m, k, n);
            if xw.iter().enumerate().all(|(i, &v)| v.abs() > 0.05 && (v + b[i % n] as f64).abs() > 0.05) {
                break (x, w, b);
            }
        };
        check_grad(
            &format!("linear {act:?}"),
            dev,
            &[(x.clone(), [m, k].into()), (w.clone(), [k, n].into()), (b, [n].into())],
            1e-3,
            |v| v[0].linear(&v[1], Some(&v[2]), act),
        )?;
        check_grad(&format!("linear {act:?} no bias"), dev, &[(x, [m, k].into()), (w, [k, n].into())], 1e-3, |v| {
            v[0].linear(&v[1], None, act)
        })?;
    }
    Ok(())
}

/// `-Σ t·log_softmax(z)` per row against an `f64` reference, for
/// probability targets and class ids (an id outside the classes gives 0).
pub fn softmax_cross_entropy_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(33);
    for (rows, n) in [(4, 3), (300, 130), (2, 1)] {
        let z = random_vals(&mut rng, rows * n, -4.0, 4.0);
        let log_softmax = |r: usize| -> Vec<f64> {
            let row: Vec<f64> = z[r * n..(r + 1) * n].iter().map(|&v| v as f64).collect();
            let m = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            let lse = row.iter().map(|v| (v - m).exp()).sum::<f64>().ln();
            row.iter().map(|v| v - m - lse).collect()
        };
        let probs = random_vals(&mut rng, rows * n, 0.0, 1.0);
        let want: Vec<f64> = (0..rows)
            .map(|r| -log_softmax(r).iter().zip(&probs[r * n..]).map(|(l, &p)| l * p as f64).sum::<f64>())
            .collect();
        let zt = t(dev, &z, [rows, n])?;
        let got = zt.softmax_cross_entropy(&t(dev, &probs, [rows, n])?)?;
        ensure(got.dims() == [rows], || format!("cross-entropy shape {}", got.shape()))?;
        assert_close(&format!("cross-entropy {rows}x{n} dense"), &vals(&got)?, &want, 1e-5, 1e-5)?;
        let ids: Vec<i64> = (0..rows as i64).map(|r| if r == 1 { n as i64 } else { r * 7 % n as i64 }).collect();
        let want: Vec<f64> = (0..rows).map(|r| if r == 1 { 0.0 } else { -log_softmax(r)[ids[r] as usize] }).collect();
        let got = zt.softmax_cross_entropy(&ti(dev, &ids, [rows])?)?;
        assert_close(&format!("cross-entropy {rows}x{n} ids"), &vals(&got)?, &want, 1e-5, 1e-5)?;
    }
    // Leading axes are rows.
    let z = t(dev, &[0.0, 0.0, 2.0, 0.0], [2, 1, 2])?;
    let got = z.softmax_cross_entropy(&ti(dev, &[1, 0], [2, 1])?)?;
    ensure(got.dims() == [2, 1], || format!("rank-3 cross-entropy shape {}", got.shape()))?;
    assert_close("rank-3 cross-entropy", &vals(&got)?, &[2f64.ln(), (1.0 + (-2f64).exp()).ln()], 1e-6, 1e-6)?;
    let z = t(dev, &[0.0; 6], [2, 3])?;
    expect_err(
        "cross-entropy ids",
        z.softmax_cross_entropy(&ti(dev, &[0; 3], [3])?),
        &["softmax_cross_entropy", "[3]"],
    )?;
    expect_err("cross-entropy dense", z.softmax_cross_entropy(&t(dev, &[0.0; 4], [2, 2])?), &["[2, 2]"])?;
    Ok(())
}

/// The cross-entropy's gradient to the logits against finite differences,
/// for probability targets and class ids.
pub fn softmax_cross_entropy_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(34);
    let z = random_vals(&mut rng, 12, -2.0, 2.0);
    let probs = random_vals(&mut rng, 12, 0.0, 1.0);
    let p = t(dev, &probs, [3, 4])?;
    check_grad("cross-entropy dense", dev, &[(z.clone(), [3, 4].into())], 1e-2, |v| v[0].softmax_cross_entropy(&p))?;
    let ids = ti(dev, &[3, 0, 9], [3])?;
    check_grad("cross-entropy ids", dev, &[(z, [3, 4].into())], 1e-2, |v| v[0].softmax_cross_entropy(&ids))?;
    Ok(())
}

/// One-hot encoding, and out-of-range ids as errors.
pub fn one_hot(dev: &Device) -> Result<()> {
    let y = ti(dev, &[2, 0, 1], [3])?.one_hot(3)?;
    ensure(y.dims() == [3, 3] && y.dtype() == DType::F32, || "one_hot shape".into())?;
    assert_close("one_hot", &vals(&y)?, &[0.0, 0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 1.0, 0.0], 0.0, 0.0)?;
    expect_err("one_hot high", ti(dev, &[0, 3], [2])?.one_hot(3), &["index 3", "size 3"])?;
    expect_err("one_hot negative", ti(dev, &[-1], [1])?.one_hot(3), &["index -1"])?;
    expect_err("one_hot f32", t(dev, &[1.0], [1])?.one_hot(3), &["i64", "f32"])?;
    Ok(())
}

/// A variable used several times receives the sum of its contributions.
pub fn autodiff_accumulates(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.5, -2.0], [2])?.to_variable()?;
    // y = x*x + 3x + x  → dy/dx = 2x + 4
    let y = x.mul(&x)?.add(&x.mul_scalar(3.0)?)?.add(&x)?.sum_all()?;
    let g = y.backward()?;
    assert_close("accumulate", &vals(g.get(&x).unwrap())?, &[7.0, 0.0], 1e-6, 0.0)?;
    // Diamond: z = (a+b) * (a-b), dz/da = 2a, dz/db = -2b
    let a = t(dev, &[2.0], [1])?.to_variable()?;
    let b = t(dev, &[3.0], [1])?.to_variable()?;
    let z = a.add(&b)?.mul(&a.sub(&b)?)?.sum_all()?;
    let g = z.backward()?;
    assert_close("diamond a", &vals(g.get(&a).unwrap())?, &[4.0], 1e-6, 0.0)?;
    assert_close("diamond b", &vals(g.get(&b).unwrap())?, &[-6.0], 1e-6, 0.0)?;
    ensure(g.len() == 2, || "only variables get gradients".into())?;
    Ok(())
}

/// `no_grad` records nothing; `detach` stops gradients; misuse is an error.
pub fn autodiff_no_grad_and_detach(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.0, 2.0], [2])?.to_variable()?;
    let y = strata_core::no_grad(|| x.square())?;
    ensure(!y.requires_grad(), || "no_grad result must not require grad".into())?;
    ensure(strata_core::grad_enabled(), || "no_grad must restore recording".into())?;
    expect_err("backward without graph", y.sum_all()?.backward(), &["no variable"])?;
    let z = x.detach().mul(&x)?.sum_all()?; // d/dx = detached x
    assert_close("detach", &vals(z.backward()?.get(&x).unwrap())?, &[1.0, 2.0], 0.0, 0.0)?;
    expect_err("non-scalar backward", x.square()?.backward(), &["[2]"])?;
    expect_err("i64 variable", ti(dev, &[1], [1])?.to_variable(), &["f32", "i64"])?;
    Ok(())
}

/// A long chain of ops backpropagates without overflowing the stack.
pub fn autodiff_deep_chain(dev: &Device) -> Result<()> {
    let x = t(dev, &[1.0], [1])?.to_variable()?;
    let mut y = x.clone();
    for _ in 0..5000 {
        y = y.mul_scalar(1.0001)?;
    }
    let g = y.sum_all()?.backward()?;
    assert_close("deep chain", &vals(g.get(&x).unwrap())?, &[1.0001f64.powi(5000)], 0.0, 1e-3)?;
    Ok(())
}

/// In-place assignment updates every view; shape mismatches are errors.
pub fn assign(dev: &Device) -> Result<()> {
    let w = t(dev, &[1.0, 2.0], [2])?.to_variable()?;
    let view = w.reshape([1, 2])?;
    w.assign(&t(dev, &[5.0, 6.0], [2])?)?;
    assert_close("assign", &vals(&view)?, &[5.0, 6.0], 0.0, 0.0)?;
    expect_err("assign shape", w.assign(&t(dev, &[1.0], [1])?), &["[2]", "[1]"])?;
    Ok(())
}

/// A fused optimizer update, where the backend has one, gives the same bits
/// as [`FusedUpdate::apply`] and as the same formula run as separate ops, on
/// a small (one thread) and a large (several threads) weight; aliased
/// buffers and bad shapes are refused.
pub fn fused_update(dev: &Device) -> Result<()> {
    let updates = [
        FusedUpdate::Sgd { lr: 0.01 },
        FusedUpdate::Momentum { lr: 0.01, momentum: 0.9, nesterov: false },
        FusedUpdate::Momentum { lr: 0.05, momentum: 0.8, nesterov: true },
        FusedUpdate::Adam { alpha: 1e-3 * 0.0447, one_minus_beta_1: 0.1, one_minus_beta_2: 0.001, epsilon: 1e-7 },
    ];
    let mut rng = Rng::seed(3);
    for update in updates {
        for n in [7usize, 50_000] {
            let w0 = random_vals(&mut rng, n, -1.0, 1.0);
            let g = random_vals(&mut rng, n, -2.0, 2.0);
            let s0: Vec<Vec<f32>> =
                (0..update.slots()).map(|k| random_vals(&mut rng, n, 0.0, 0.5 + k as f32)).collect();
            let w = t(dev, &w0, [n])?;
            let slots = s0.iter().map(|s| t(dev, s, [n])).collect::<Result<Vec<_>>>()?;
            let slot_refs: Vec<&Tensor> = slots.iter().collect();
            if !w.fused_update(&update, &t(dev, &g, [n])?, &slot_refs)? {
                return Ok(()); // no fused kernel: the optimizers use ops
            }
            // The per-element reference.
            let (mut we, mut se) = (w0.clone(), s0.clone());
            for i in 0..n {
                let mut s: Vec<f32> = se.iter().map(|v| v[i]).collect();
                update.apply(&mut we[i], g[i], &mut s);
                for (k, v) in s.into_iter().enumerate() {
                    se[k][i] = v;
                }
            }
            let what = format!("{update:?} on {n}");
            ensure(vals(&w)? == we, || format!("{what}: weight differs from FusedUpdate::apply"))?;
            for (k, s) in slots.iter().enumerate() {
                ensure(vals(s)? == se[k], || format!("{what}: slot {k} differs from FusedUpdate::apply"))?;
            }
            // The same formula as separate ops.
            let (wt, gt) = (t(dev, &w0, [n])?, t(dev, &g, [n])?);
            let expected = match update {
                FusedUpdate::Sgd { lr } => wt.sub(&gt.mul_scalar(lr.into())?)?,
                FusedUpdate::Momentum { lr, momentum, nesterov } => {
                    let g_lr = gt.mul_scalar(lr.into())?;
                    let m = t(dev, &s0[0], [n])?.mul_scalar(momentum.into())?.sub(&g_lr)?;
                    if nesterov {
                        wt.add(&m.mul_scalar(momentum.into())?.sub(&g_lr)?)?
                    } else {
                        wt.add(&m)?
                    }
                }
                FusedUpdate::Adam { alpha, one_minus_beta_1, one_minus_beta_2, epsilon } => {
                    let (m0, v0) = (t(dev, &s0[0], [n])?, t(dev, &s0[1], [n])?);
                    let m = m0.add(&gt.sub(&m0)?.mul_scalar(one_minus_beta_1.into())?)?;
                    let v = v0.add(&gt.square()?.sub(&v0)?.mul_scalar(one_minus_beta_2.into())?)?;
                    wt.sub(&m.mul_scalar(alpha.into())?.div(&v.sqrt()?.add_scalar(epsilon.into())?)?)?
                }
            };
            ensure(vals(&expected)? == we, || format!("{what}: the unfused ops give other bits"))?;
        }
    }
    // Refused: a gradient of another shape, a missing slot; aliases fall back.
    let w = t(dev, &[1.0, 2.0], [2])?;
    let sgd = FusedUpdate::Sgd { lr: 0.1 };
    expect_err("fused_update shape", w.fused_update(&sgd, &t(dev, &[1.0], [1])?, &[]), &["[2]", "[1]"])?;
    let adam = updates[3];
    expect_err("fused_update slots", w.fused_update(&adam, &w.zeros_like()?, &[]), &["slot"])?;
    ensure(!w.fused_update(&sgd, &w, &[])?, || "an aliased gradient must not be fused".into())?;
    ensure(vals(&w)? == [1.0, 2.0], || "a refused update changed the weight".into())?;
    Ok(())
}

/// The first NaN or infinity is found at its flat index, in small and
/// large tensors; clean and integer tensors have none.
pub fn find_non_finite(dev: &Device) -> Result<()> {
    for (n, bad) in [(5usize, vec![]), (5, vec![(3, f32::NAN)]), (200_000, vec![(150_001, f32::NEG_INFINITY)])] {
        let mut v: Vec<f32> = (0..n).map(|i| i as f32 * 0.5 - 7.0).collect();
        for &(at, x) in &bad {
            v[at] = x;
        }
        let got = t(dev, &v, [n])?.reshape([1, n])?.find_non_finite()?;
        let want = bad.first().map(|b| b.0);
        ensure(got == want, || format!("find_non_finite on {n}: {got:?}, expected {want:?}"))?;
    }
    let mut v = vec![1.0f32; 100_000];
    v[99_999] = f32::INFINITY;
    v[64_000] = f32::NAN;
    ensure(t(dev, &v, [100_000])?.find_non_finite()? == Some(64_000), || "the first of two".into())?;
    ensure(ti(dev, &[1, 2], [2])?.find_non_finite()?.is_none(), || "integers have none".into())?;
    Ok(())
}

/// Ops on tensors with a zero-sized axis.
pub fn empty_tensors(dev: &Device) -> Result<()> {
    let e = t(dev, &[], [0, 3])?;
    ensure(e.exp()?.dims() == [0, 3], || "unary on empty".into())?;
    ensure(e.add(&t(dev, &[1.0, 2.0, 3.0], [3])?)?.dims() == [0, 3], || "binary on empty".into())?;
    assert_close("sum over empty axis", &vals(&e.sum(&[0], false)?)?, &[0.0; 3], 0.0, 0.0)?;
    ensure(e.sum(&[1], false)?.dims() == [0], || "sum keeps empty axis".into())?;
    let k0 = t(dev, &[], [2, 0])?.matmul(&t(dev, &[], [0, 3])?)?;
    assert_close("matmul k=0", &vals(&k0)?, &[0.0; 6], 0.0, 0.0)?;
    ensure(e.matmul(&t(dev, &[1.0; 6], [3, 2])?)?.dims() == [0, 2], || "matmul m=0".into())?;
    ensure(Tensor::concat(&[&e, &t(dev, &[1.0, 2.0, 3.0], [1, 3])?], 0)?.dims() == [1, 3], || "concat empty".into())?;
    ensure(e.softmax(-1)?.dims() == [0, 3], || "softmax on empty".into())?;
    ensure(e.t()?.dims() == [3, 0], || "transpose empty".into())?;
    let none = ti(dev, &[], [0])?;
    ensure(t(dev, &[1.0, 2.0], [2])?.gather(0, &none)?.dims() == [0], || "gather nothing".into())?;
    expect_err("max over empty", e.max(0, false), &["empty"])?;
    let v = t(dev, &[], [0])?.to_variable()?;
    let g = v.sum_all()?.backward()?;
    ensure(g.get(&v).unwrap().dims() == [0], || "gradient of empty".into())?;
    Ok(())
}

/// Size-1 tensors and axes behave like their larger cousins.
pub fn size_one_tensors(dev: &Device) -> Result<()> {
    let x = t(dev, &[3.0], [1, 1])?;
    assert_close("1x1 matmul", &vals(&x.matmul(&x)?)?, &[9.0], 0.0, 0.0)?;
    assert_close("sum size-1", &vals(&x.sum(&[0], false)?)?, &[3.0], 0.0, 0.0)?;
    assert_close("softmax size-1", &vals(&x.softmax(-1)?)?, &[1.0], 0.0, 0.0)?;
    ensure(x.argmax(1, false)?.to_vec::<i64>()? == vec![0], || "argmax size-1".into())?;
    let s = Tensor::scalar(2.0f32, dev)?;
    assert_close("scalar sum_all", &vals(&s.sum_all()?)?, &[2.0], 0.0, 0.0)?;
    check_grad("scalar", dev, &[(vec![0.7], Shape::scalar())], 1e-2, |v| v[0].tanh())?;
    Ok(())
}

/// Incompatible shapes are errors naming both shapes.
pub fn errors_shapes(dev: &Device) -> Result<()> {
    let a = t(dev, &[0.0; 6], [2, 3])?;
    let b = t(dev, &[0.0; 4], [4])?;
    expect_err("add", a.add(&b), &["add", "[2, 3]", "[4]"])?;
    expect_err("where", Tensor::where_cond(&b, &a, &a), &["[4]", "[2, 3]"])?;
    expect_err("reshape", a.reshape([4, 2]), &["[2, 3]", "[4, 2]"])?;
    expect_err("broadcast_to", a.broadcast_to([3, 3]), &["[2, 3]", "[3, 3]"])?;
    expect_err("concat", Tensor::concat(&[&a, &t(dev, &[0.0; 4], [2, 2])?], 0), &["[2, 3]", "[2, 2]"])?;
    expect_err("concat none", Tensor::concat(&[], 0), &["at least one"])?;
    expect_err("narrow", a.narrow(1, 2, 2), &["[2, 3]", "2..4"])?;
    expect_err("permute", a.permute(&[0, 0]), &["[2, 3]"])?;
    expect_err("squeeze", a.squeeze(0), &["size 2"])?;
    expect_err("sum_to", a.sum_to(&Shape::from([4])), &["[2, 3]", "[4]"])?;
    Ok(())
}

/// Matmul inner-dimension and rank mismatches.
pub fn errors_matmul(dev: &Device) -> Result<()> {
    let a = t(dev, &[0.0; 6], [2, 3])?;
    let b = t(dev, &[0.0; 8], [4, 2])?;
    expect_err("inner", a.matmul(&b), &["matmul", "[2, 3]", "[4, 2]", "3 vs 4"])?;
    expect_err("rank 1", a.matmul(&t(dev, &[0.0; 3], [3])?), &["[2, 3]", "[3]"])?;
    expect_err(
        "batch",
        t(dev, &[0.0; 12], [2, 2, 3])?.matmul(&t(dev, &[0.0; 18], [3, 3, 2])?),
        &["[2, 2, 3]", "[3, 3, 2]"],
    )?;
    expect_err("i64 matmul", ti(dev, &[1; 4], [2, 2])?.matmul(&ti(dev, &[1; 4], [2, 2])?), &["f32", "i64"])?;
    Ok(())
}

/// Out-of-range indices in gather / index_add are errors naming the index.
pub fn errors_index(dev: &Device) -> Result<()> {
    let table = t(dev, &[0.0; 6], [3, 2])?;
    expect_err("gather high", table.gather(0, &ti(dev, &[0, 3], [2])?), &["index 3", "size 3", "[3, 2]"])?;
    expect_err("gather negative", table.gather(0, &ti(dev, &[-1], [1])?), &["index -1"])?;
    expect_err("gather axis 1", table.gather(1, &ti(dev, &[2], [1])?), &["index 2", "size 2"])?;
    let src = t(dev, &[0.0; 2], [1, 2])?;
    expect_err("index_add", table.index_add(0, &ti(dev, &[5], [1])?, &src), &["index 5"])?;
    expect_err("index_add src", table.index_add(0, &ti(dev, &[1, 2], [2])?, &src), &["[1, 2]"])?;
    Ok(())
}

/// Dtype mismatches are errors naming both dtypes.
pub fn errors_dtype(dev: &Device) -> Result<()> {
    let f = t(dev, &[1.0, 2.0], [2])?;
    let i = ti(dev, &[1, 2], [2])?;
    expect_err("add", f.add(&i), &["f32", "i64"])?;
    expect_err("gather f32 idx", f.gather(0, &f), &["i64", "f32"])?;
    expect_err("where branches", Tensor::where_cond(&f, &f, &i), &["f32", "i64"])?;
    expect_err("concat", Tensor::concat(&[&f, &i], 0), &["f32", "i64"])?;
    expect_err("softmax i64", i.softmax(-1), &["f32", "i64"])?;
    Ok(())
}

/// Axes out of range are errors naming the axis and shape.
pub fn errors_axes(dev: &Device) -> Result<()> {
    let a = t(dev, &[0.0; 6], [2, 3])?;
    expect_err("sum", a.sum(&[2], false), &["axis 2", "[2, 3]"])?;
    expect_err("sum dup", a.sum(&[1, -1], false), &["twice"])?;
    expect_err("softmax", a.softmax(-3), &["axis -3"])?;
    expect_err("argmax many", a.reduce(strata_core::ReduceOp::ArgMax, &[0, 1], false), &["exactly one axis"])?;
    expect_err("transpose", a.transpose(0, 5), &["axis 5"])?;
    expect_err("unsqueeze", a.unsqueeze(4), &["axis 4"])?;
    Ok(())
}

/// Asserts that `r` is an [`Error::SizeOverflow`] whose message mentions every needle.
fn expect_size_overflow<T>(what: &str, r: Result<T>, needles: &[&str]) -> Result<()> {
    match r {
        Err(e @ Error::SizeOverflow { .. }) => expect_err(what, Err::<T, _>(e), needles),
        Err(e) => Err(fail(format!("{what}: expected a SizeOverflow error, got `{e}`"))),
        Ok(_) => Err(fail(format!("{what}: expected a SizeOverflow error, got Ok"))),
    }
}

/// Shapes whose element count overflows `usize`, or whose buffer's byte
/// count does, are [`Error::SizeOverflow`]s naming the shape, from every
/// constructor and shape op; a zero dimension makes any shape empty and valid.
pub fn errors_size_overflow(dev: &Device) -> Result<()> {
    let huge = [usize::MAX, 2];
    let name = "[18446744073709551615, 2]";
    expect_size_overflow("zeros", Tensor::zeros(huge, DType::F32, dev), &["Tensor::full", name])?;
    expect_size_overflow("ones i64", Tensor::ones(huge, DType::I64, dev), &[name])?;
    expect_size_overflow("full", Tensor::full(2.0, huge, DType::F32, dev), &[name])?;
    let square = [1usize << 32, 1 << 32];
    let square_name = "[4294967296, 4294967296]";
    expect_size_overflow("new", Tensor::new(Vec::<f32>::new(), square, dev), &["Tensor::new", square_name])?;
    expect_size_overflow("from_slice i64", Tensor::from_slice(&[] as &[i64], square, dev), &[square_name])?;
    let mut rng = Rng::seed(0);
    expect_size_overflow("rand_uniform", Tensor::rand_uniform(huge, 0.0, 1.0, &mut rng, dev), &["rand_uniform", name])?;
    expect_size_overflow("rand_normal", Tensor::rand_normal(huge, 0.0, 1.0, &mut rng, dev), &["rand_normal", name])?;
    let empty = Tensor::zeros([0, 3], DType::F32, dev)?;
    expect_size_overflow("reshape", empty.reshape(square), &["reshape", square_name])?;
    let one = t(dev, &[1.0], [1, 1])?;
    expect_size_overflow("broadcast_to", one.broadcast_to(square), &["broadcast_to", square_name])?;
    // The count fits but the bytes do not: 2^62 f32 values are 2^64 bytes.
    let bytes = [1usize << 62];
    expect_size_overflow("zeros bytes", Tensor::zeros(bytes, DType::F32, dev), &["bytes", "[4611686018427387904]"])?;
    // A zero dimension: no elements, whatever the others.
    let none = Tensor::zeros([usize::MAX, 2, 0], DType::F32, dev)?;
    ensure(none.numel() == 0 && vals(&none)?.is_empty(), || format!("{none:?} should be empty"))?;
    Ok(())
}

// ------------------------------------------------------------ windows

/// Row-major coordinates of `flat` in `dims`.
fn coords(mut flat: usize, dims: &[usize]) -> Vec<usize> {
    let mut c = vec![0; dims.len()];
    for i in (0..dims.len()).rev() {
        c[i] = flat % dims[i];
        flat /= dims[i];
    }
    c
}

/// Row-major flat index of `c` in `dims`.
fn flat_index(c: &[usize], dims: &[usize]) -> usize {
    c.iter().zip(dims).fold(0, |acc, (&i, &d)| acc * d + i)
}

/// For each patch entry of `window` over an image `[n, spatial.., c]`, the
/// flat image index it reads (`None`: padding) — the geometry written out
/// by hand, entry by entry, as the reference for `unfold` and `fold`.
fn patch_reference(window: &Window, n: usize, spatial: &[usize], c: usize) -> (Vec<usize>, Vec<Option<usize>>) {
    let d = spatial.len();
    let out: Vec<usize> = (0..d)
        .map(|a| {
            let span = (window.kernel[a] - 1) * window.dilation[a] + 1;
            (spatial[a] + window.padding[a].0 + window.padding[a].1 - span) / window.strides[a] + 1
        })
        .collect();
    let mut pdims = vec![n];
    pdims.extend(&out);
    pdims.extend(&window.kernel);
    pdims.push(c);
    let mut idims = vec![n];
    idims.extend(spatial);
    idims.push(c);
    let total: usize = pdims.iter().product();
    let src = (0..total)
        .map(|f| {
            let p = coords(f, &pdims);
            let mut at = vec![p[0]];
            for a in 0..d {
                let i = (p[1 + a] * window.strides[a] + p[1 + d + a] * window.dilation[a]) as i64
                    - window.padding[a].0 as i64;
                if i < 0 || i >= spatial[a] as i64 {
                    return None;
                }
                at.push(i as usize);
            }
            at.push(p[2 * d + 1]);
            Some(flat_index(&at, &idims))
        })
        .collect();
    (pdims, src)
}

/// The windows the window cases run: 1-d, 2-d and 3-d, with strides,
/// dilation, asymmetric padding, kernels of size 1 and windows that fill the
/// whole (padded) input.
fn window_cases() -> Vec<(Window, usize, Vec<usize>, usize)> {
    vec![
        (Window::new(&[3]), 2, vec![7], 2),
        (Window::new(&[3]).strides(&[2]).padding(&[(1, 2)]), 2, vec![6], 3),
        (Window::new(&[2]).dilation(&[3]).padding(&[(2, 0)]), 1, vec![5], 1),
        (Window::new(&[3, 3]), 2, vec![5, 4], 3),
        (Window::new(&[3, 2]).strides(&[2, 1]).padding(&[(1, 1), (0, 1)]), 2, vec![6, 5], 2),
        (Window::new(&[2, 2]).strides(&[2, 2]), 1, vec![4, 6], 4),
        (Window::new(&[3, 3]).dilation(&[2, 1]).padding(&[(2, 2), (1, 1)]), 1, vec![5, 3], 1),
        (Window::new(&[1, 1]), 2, vec![3, 2], 5),
        (Window::new(&[4, 3]).padding(&[(0, 1), (1, 1)]), 1, vec![3, 1], 2),
        (Window::new(&[2, 2, 2]).strides(&[1, 2, 1]).padding(&[(0, 0), (1, 0), (0, 1)]), 2, vec![3, 4, 2], 2),
    ]
}

/// `[n, spatial.., c]`: the shape of a batch of `n` channels-last images.
fn image_dims(n: usize, spatial: &[usize], c: usize) -> Vec<usize> {
    let mut dims = vec![n];
    dims.extend(spatial);
    dims.push(c);
    dims
}

/// `unfold` copies each patch entry from the cell the geometry names, and
/// writes the pad value (0, −∞, any constant) in the padding.
pub fn unfold_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(31);
    for (window, n, spatial, c) in window_cases() {
        let dims = image_dims(n, &spatial, c);
        let numel: usize = dims.iter().product();
        let x = random_vals(&mut rng, numel, -2.0, 2.0);
        let (pdims, src) = patch_reference(&window, n, &spatial, c);
        for pad in [0.0, f64::NEG_INFINITY, 2.5] {
            let got = t(dev, &x, dims.clone())?.unfold(&window, pad)?;
            let what = format!("unfold {window:?} over {dims:?} padded with {pad}");
            ensure(got.dims() == pdims.as_slice(), || format!("{what}: shape {:?}, expected {pdims:?}", got.dims()))?;
            let want: Vec<f64> = src.iter().map(|s| s.map_or(pad, |i| x[i] as f64)).collect();
            assert_close(&what, &vals(&got)?, &want, 0.0, 0.0)?;
        }
    }
    Ok(())
}

/// `fold` adds every patch entry back at its cell (overlapping windows
/// accumulate, padding entries vanish), and is `unfold`'s adjoint:
/// `⟨unfold(x), p⟩ = ⟨x, fold(p)⟩`.
pub fn fold_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(32);
    for (window, n, spatial, c) in window_cases() {
        let dims = image_dims(n, &spatial, c);
        let numel: usize = dims.iter().product();
        let (pdims, src) = patch_reference(&window, n, &spatial, c);
        let p = random_vals(&mut rng, src.len(), -2.0, 2.0);
        let got = t(dev, &p, pdims.clone())?.fold(&window, &spatial)?;
        let what = format!("fold {window:?} onto {dims:?}");
        ensure(got.dims() == dims.as_slice(), || format!("{what}: shape {:?}", got.dims()))?;
        let mut want = vec![0.0f64; numel];
        for (v, s) in p.iter().zip(&src) {
            if let Some(i) = s {
                want[*i] += *v as f64;
            }
        }
        assert_close(&what, &vals(&got)?, &want, 1e-5, 1e-5)?;
        let x = random_vals(&mut rng, numel, -2.0, 2.0);
        let lhs: f64 = vals(&t(dev, &x, dims.clone())?.unfold(&window, 0.0)?)?
            .iter()
            .zip(&p)
            .map(|(&a, &b)| a as f64 * b as f64)
            .sum();
        let rhs: f64 = x.iter().zip(&vals(&got)?).map(|(&a, &b)| a as f64 * b as f64).sum();
        ensure((lhs - rhs).abs() <= 1e-4 * (1.0 + lhs.abs()), || {
            format!("{what}: ⟨unfold x, p⟩ = {lhs}, ⟨x, fold p⟩ = {rhs}")
        })?;
    }
    Ok(())
}

/// Gradients of `unfold` (including padding, which gets none) and `fold`
/// against finite differences.
pub fn unfold_fold_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(33);
    let window = Window::new(&[2, 3]).strides(&[1, 2]).dilation(&[2, 1]).padding(&[(1, 0), (1, 1)]);
    let x = random_vals(&mut rng, 2 * 4 * 5 * 2, -1.0, 1.0);
    check_grad("unfold", dev, &[(x, Shape::from([2, 4, 5, 2]))], 1e-2, |v| v[0].unfold(&window, 0.0)?.square())?;
    let pdims = t(dev, &[0.0; 2 * 4 * 5 * 2], [2, 4, 5, 2])?.unfold(&window, 0.0)?.shape().clone();
    let p = random_vals(&mut rng, pdims.numel(), -1.0, 1.0);
    check_grad("fold", dev, &[(p, pdims)], 1e-2, |v| v[0].fold(&window, &[4, 5])?.square())?;
    // Max pooling: −∞ padding never wins, and the maximum gets the gradient.
    let pool = Window::new(&[2, 2]).strides(&[2, 2]).padding(&[(0, 1), (0, 1)]);
    let x = random_vals(&mut rng, 3 * 3 * 2, -1.0, 1.0);
    check_grad("max pool", dev, &[(x, Shape::from([1, 3, 3, 2]))], 1e-3, |v| {
        v[0].unfold(&pool, f64::NEG_INFINITY)?.reduce(strata_core::ReduceOp::Max, &[3, 4], false)
    })?;
    Ok(())
}

/// A strided, dilated, padded 2-d convolution with several filters as
/// `unfold` + matmul against a direct f64 convolution, with its gradients.
pub fn convolution_by_unfold(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(34);
    let (n, h, w, c, f) = (2, 6, 5, 3, 4);
    let (kh, kw) = (3, 2);
    let window = Window::new(&[kh, kw]).strides(&[2, 1]).dilation(&[1, 2]).padding(&[(1, 1), (1, 0)]);
    let x = random_vals(&mut rng, n * h * w * c, -1.0, 1.0);
    let k = random_vals(&mut rng, kh * kw * c * f, -1.0, 1.0);
    let conv = |v: &[Tensor]| -> Result<Tensor> {
        let p = v[0].unfold(&window, 0.0)?;
        let (oh, ow) = (p.dims()[1], p.dims()[2]);
        p.reshape([n * oh * ow, kh * kw * c])?.matmul(&v[1].reshape([kh * kw * c, f])?)?.reshape([n, oh, ow, f])
    };
    let got = conv(&[t(dev, &x, [n, h, w, c])?, t(dev, &k, [kh, kw, c, f])?])?;
    let (oh, ow) = (got.dims()[1], got.dims()[2]);
    ensure((oh, ow) == (3, 4), || format!("output {oh}x{ow}, expected 3x4"))?;
    let mut want = vec![0.0f64; n * oh * ow * f];
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for o in 0..f {
                    let mut acc = 0.0;
                    for di in 0..kh {
                        for dj in 0..kw {
                            let (y, z) = ((i * 2 + di) as i64 - 1, (j + dj * 2) as i64 - 1);
                            if y < 0 || z < 0 || y >= h as i64 || z >= w as i64 {
                                continue;
                            }
                            for ch in 0..c {
                                let xv = x[((b * h + y as usize) * w + z as usize) * c + ch] as f64;
                                acc += xv * k[((di * kw + dj) * c + ch) * f + o] as f64;
                            }
                        }
                    }
                    want[((b * oh + i) * ow + j) * f + o] = acc;
                }
            }
        }
    }
    assert_close("convolution", &vals(&got)?, &want, 1e-5, 1e-5)?;
    check_grad("convolution", dev, &[(x, Shape::from([n, h, w, c])), (k, Shape::from([kh, kw, c, f]))], 1e-2, conv)
}

/// Empty batches and channels, size-1 images and windows, and a window
/// filling the whole image.
pub fn unfold_edge_cases(dev: &Device) -> Result<()> {
    let w = Window::new(&[2, 2]);
    ensure(t(dev, &[], [0, 3, 3, 2])?.unfold(&w, 0.0)?.dims() == [0, 2, 2, 2, 2, 2], || "empty batch".into())?;
    ensure(t(dev, &[], [2, 3, 3, 0])?.unfold(&w, 0.0)?.dims() == [2, 2, 2, 2, 2, 0], || "no channels".into())?;
    let back = t(dev, &[], [0, 2, 2, 2, 2, 2])?.fold(&w, &[3, 3])?;
    ensure(back.dims() == [0, 3, 3, 2], || "fold of an empty batch".into())?;
    let one = t(dev, &[4.0], [1, 1, 1, 1])?;
    assert_close("1x1 window", &vals(&one.unfold(&Window::new(&[1, 1]), 0.0)?)?, &[4.0], 0.0, 0.0)?;
    let padded = one.unfold(&Window::new(&[3, 3]).padding(&[(1, 1), (1, 1)]), -1.0)?;
    let mut want = vec![-1.0; 9];
    want[4] = 4.0;
    assert_close("3x3 window around one cell", &vals(&padded)?, &want, 0.0, 0.0)?;
    let x = t(dev, &[1.0, 2.0, 3.0, 4.0], [1, 2, 2, 1])?;
    let whole = x.unfold(&w, 0.0)?;
    ensure(whole.dims() == [1, 1, 1, 2, 2, 1], || "window filling the image".into())?;
    assert_close("window filling the image", &vals(&whole.fold(&w, &[2, 2])?)?, &[1.0, 2.0, 3.0, 4.0], 0.0, 0.0)?;
    Ok(())
}

/// Bad window arguments and shapes are errors naming what was wrong.
pub fn errors_unfold(dev: &Device) -> Result<()> {
    let x = t(dev, &[0.0; 2 * 4 * 4 * 3], [2, 4, 4, 3])?;
    expect_err("rank", x.unfold(&Window::new(&[2]), 0.0), &["unfold", "rank 3", "[2, 4, 4, 3]"])?;
    expect_err("too big", x.unfold(&Window::new(&[5, 2]), 0.0), &["unfold", "spans 5", "size 4"])?;
    expect_err("zero stride", x.unfold(&Window::new(&[2, 2]).strides(&[0, 1]), 0.0), &["unfold", "stride"])?;
    expect_err("zero kernel", x.unfold(&Window::new(&[0, 2]), 0.0), &["kernel size"])?;
    expect_err("lengths", x.unfold(&Window::new(&[2, 2]).strides(&[1]), 0.0), &["one entry per spatial axis"])?;
    expect_err("4-d", t(dev, &[0.0; 64], [1, 2, 2, 2, 2, 4])?.unfold(&Window::new(&[1, 1, 1, 1]), 0.0), &["1 to 3"])?;
    let xi = ti(dev, &[0; 16], [1, 4, 4, 1])?;
    expect_err("dtype", xi.unfold(&Window::new(&[2, 2]), 0.0), &["unfold", "f32", "i64"])?;
    let p = x.unfold(&Window::new(&[2, 2]), 0.0)?;
    expect_err("fold size", p.fold(&Window::new(&[2, 2]), &[5, 4]), &["fold", "[2, 3, 3, 2, 2, 3]"])?;
    expect_err("fold rank", x.fold(&Window::new(&[2, 2]), &[4, 4]), &["fold", "rank 6"])?;
    Ok(())
}

/// The window cases plus ones large enough for a backend to split the
/// work into several bands and threads (many rows, more than 64 channels).
fn window_cases_large() -> Vec<(Window, usize, Vec<usize>, usize)> {
    let mut cases = window_cases();
    cases.push((Window::new(&[3, 3]), 3, vec![20, 22], 8));
    cases.push((Window::new(&[2, 2]).strides(&[2, 2]).padding(&[(0, 1), (1, 0)]), 2, vec![9, 8], 70));
    cases.push((Window::new(&[5]).strides(&[3]).padding(&[(2, 2)]), 4, vec![301], 5));
    cases
}

/// `act(patches · k + b)` in f64 from the patch geometry, rows × filters.
fn conv_reference(
    x: &[f32],
    src: &[Option<usize>],
    k: &[f32],
    b: Option<&[f32]>,
    filters: usize,
    act: LinearActivation,
) -> Vec<f64> {
    let patch = k.len() / filters.max(1);
    let rows = src.len().checked_div(patch).unwrap_or(0);
    let mut out = vec![0.0f64; rows * filters];
    for r in 0..rows {
        for f in 0..filters {
            let mut acc = b.map_or(0.0, |b| b[f] as f64);
            for p in 0..patch {
                if let Some(i) = src[r * patch + p] {
                    acc += x[i] as f64 * k[p * filters + f] as f64;
                }
            }
            out[r * filters + f] = match act {
                LinearActivation::Identity => acc,
                LinearActivation::Relu => acc.max(0.0),
                LinearActivation::Sigmoid => 1.0 / (1.0 + (-acc).exp()),
                LinearActivation::Tanh => acc.tanh(),
            };
        }
    }
    out
}

/// The fused convolution `Tensor::conv` (the backend's `conv` fast path)
/// against a direct f64 convolution, for 1-d to 3-d windows with strides,
/// dilation and padding, every fused activation, with and without a bias,
/// and sizes that span several bands of work.
pub fn conv_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(35);
    let acts = [LinearActivation::Identity, LinearActivation::Relu, LinearActivation::Sigmoid, LinearActivation::Tanh];
    for (i, (window, n, spatial, c)) in window_cases_large().into_iter().enumerate() {
        let dims = image_dims(n, &spatial, c);
        let x = random_vals(&mut rng, dims.iter().product(), -1.0, 1.0);
        let (pdims, src) = patch_reference(&window, n, &spatial, c);
        let filters = [3, 1, 16, 5][i % 4];
        let patch: usize = window.kernel.iter().product::<usize>() * c;
        let k = random_vals(&mut rng, patch * filters, -0.5, 0.5);
        let b = random_vals(&mut rng, filters, -0.5, 0.5);
        let act = acts[i % 4];
        for bias in [true, false] {
            let bt = t(dev, &b, [filters])?;
            let got =
                t(dev, &x, dims.clone())?.conv(&t(dev, &k, [patch, filters])?, bias.then_some(&bt), &window, act)?;
            let mut odims = pdims[..spatial.len() + 1].to_vec();
            odims.push(filters);
            let what = format!("conv {window:?} over {dims:?}, {filters} filters, {act:?}, bias {bias}");
            ensure(got.dims() == odims.as_slice(), || format!("{what}: shape {:?}, expected {odims:?}", got.dims()))?;
            let want = conv_reference(&x, &src, &k, bias.then_some(&b), filters, act);
            assert_close(&what, &vals(&got)?, &want, 1e-5, 1e-5)?;
        }
    }
    Ok(())
}

/// Gradients of `Tensor::conv` to the image, kernel and bias: against finite
/// differences on a small strided, dilated, padded case per activation, and
/// against the same gradients through `unfold` + `linear` on sizes that span
/// several bands of work.
pub fn conv_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(36);
    let window = Window::new(&[2, 3]).strides(&[2, 1]).dilation(&[1, 2]).padding(&[(1, 0), (1, 1)]);
    let (n, h, w, c, f) = (2, 5, 4, 2, 3);
    for act in [LinearActivation::Identity, LinearActivation::Tanh, LinearActivation::Sigmoid] {
        let x = random_vals(&mut rng, n * h * w * c, -1.0, 1.0);
        let k = random_vals(&mut rng, 6 * c * f, -1.0, 1.0);
        let b = random_vals(&mut rng, f, -1.0, 1.0);
        let inputs = [(x, Shape::from([n, h, w, c])), (k, Shape::from([6 * c, f])), (b, Shape::from([f]))];
        check_grad(&format!("conv {act:?}"), dev, &inputs, 1e-2, |v| v[0].conv(&v[1], Some(&v[2]), &window, act))?;
    }
    for (window, n, spatial, c) in window_cases_large() {
        let dims = image_dims(n, &spatial, c);
        let filters = 6;
        let patch: usize = window.kernel.iter().product::<usize>() * c;
        let x = t(dev, &random_vals(&mut rng, dims.iter().product(), -1.0, 1.0), dims.clone())?.to_variable()?;
        let k = t(dev, &random_vals(&mut rng, patch * filters, -0.5, 0.5), [patch, filters])?.to_variable()?;
        let b = t(dev, &random_vals(&mut rng, filters, -0.5, 0.5), [filters])?.to_variable()?;
        let fused = x.conv(&k, Some(&b), &window, LinearActivation::Relu)?;
        let r = t(dev, &random_vals(&mut rng, fused.numel(), -1.0, 1.0), fused.shape().clone())?;
        let g1 = fused.mul(&r)?.sum_all()?.backward()?;
        let cols = x.unfold(&window, 0.0)?;
        let rows = cols.numel() / patch.max(1);
        let unfused = cols.reshape([rows, patch])?.linear(&k, Some(&b), LinearActivation::Relu)?;
        let g2 = unfused.mul(&r.reshape([rows, filters])?)?.sum_all()?.backward()?;
        for (name, v) in [("image", &x), ("kernel", &k), ("bias", &b)] {
            let what = format!("conv {window:?} over {dims:?}: {name} gradient");
            let (a, e) = match (g1.get(v), g2.get(v)) {
                (Some(a), Some(e)) => (a, e),
                _ => return Err(fail(format!("{what} missing"))),
            };
            let want: Vec<f64> = vals(e)?.iter().map(|&v| v as f64).collect();
            assert_close(&what, &vals(a)?, &want, 1e-4, 1e-4)?;
        }
    }
    Ok(())
}

/// `Tensor::max_pool` (the backend's `max_pool` fast path): each window's
/// largest value per channel, padding never winning, for 1-d to 3-d
/// windows with strides, dilation and padding and more than 64 channels.
pub fn max_pool_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(37);
    for (window, n, spatial, c) in window_cases_large() {
        let dims = image_dims(n, &spatial, c);
        let x = random_vals(&mut rng, dims.iter().product(), -2.0, 2.0);
        let (pdims, src) = patch_reference(&window, n, &spatial, c);
        let got = t(dev, &x, dims.clone())?.max_pool(&window)?;
        let d = spatial.len();
        let mut odims = pdims[..d + 1].to_vec();
        odims.push(c);
        let what = format!("max_pool {window:?} over {dims:?}");
        ensure(got.dims() == odims.as_slice(), || format!("{what}: shape {:?}, expected {odims:?}", got.dims()))?;
        let taps: usize = window.kernel.iter().product();
        let positions = src.len() / (taps * c).max(1);
        let mut want = vec![f64::NEG_INFINITY; positions * c];
        for p in 0..positions {
            for tap in 0..taps {
                for ch in 0..c {
                    if let Some(i) = src[(p * taps + tap) * c + ch] {
                        want[p * c + ch] = want[p * c + ch].max(x[i] as f64);
                    }
                }
            }
        }
        assert_close(&what, &vals(&got)?, &want, 0.0, 0.0)?;
    }
    Ok(())
}

/// The max-pooling gradient: with ties it all goes to the first cell of the
/// window holding the maximum (hand-computed), overlapping windows add up,
/// and on random data it matches finite differences.
pub fn max_pool_grad(dev: &Device) -> Result<()> {
    // Windows of 2 with stride 1 over [3, 3, 1, 0, 0]: maxima at cells 0
    // (the first of the tie 3, 3; not half to each), 1, 2 and 3 (the first
    // of the tie 0, 0).
    let x = t(dev, &[3.0, 3.0, 1.0, 0.0, 0.0], [1, 5, 1])?.to_variable()?;
    let y = x.max_pool(&Window::new(&[2]))?;
    assert_close("tied max_pool", &vals(&y)?, &[3.0, 3.0, 1.0, 0.0], 0.0, 0.0)?;
    let g = y.mul(&t(dev, &[1.0, 10.0, 100.0, 1000.0], [1, 4, 1])?)?.sum_all()?.backward()?;
    let gx = g.get(&x).ok_or_else(|| fail("no gradient for the pooled input"))?;
    assert_close("tied max_pool gradient", &vals(gx)?, &[1.0, 10.0, 100.0, 1000.0, 0.0], 0.0, 0.0)?;
    // 2-d, padded: −∞ padding never wins; overlapping windows.
    let mut rng = Rng::seed(38);
    for window in [
        Window::new(&[2, 2]).strides(&[2, 2]).padding(&[(0, 1), (0, 1)]),
        Window::new(&[3, 2]).strides(&[1, 1]).padding(&[(1, 1), (0, 1)]),
    ] {
        let x = random_vals(&mut rng, 2 * 3 * 3 * 2, -1.0, 1.0);
        check_grad(&format!("max_pool {window:?}"), dev, &[(x, Shape::from([2, 3, 3, 2]))], 1e-3, |v| {
            v[0].max_pool(&window)
        })?;
    }
    // Large: the same gradient as the arg-max through `unfold`.
    for (window, n, spatial, c) in window_cases_large() {
        let dims = image_dims(n, &spatial, c);
        let xv = random_vals(&mut rng, dims.iter().product(), -2.0, 2.0);
        let (_, src) = patch_reference(&window, n, &spatial, c);
        let x = t(dev, &xv, dims.clone())?.to_variable()?;
        let y = x.max_pool(&window)?;
        let r = random_vals(&mut rng, y.numel(), -1.0, 1.0);
        let g = y.mul(&t(dev, &r, y.shape().clone())?)?.sum_all()?.backward()?;
        let gx = g.get(&x).ok_or_else(|| fail("no gradient for the pooled input"))?;
        let taps: usize = window.kernel.iter().product();
        let positions = src.len() / (taps * c).max(1);
        let mut want = vec![0.0f64; xv.len()];
        for p in 0..positions {
            for ch in 0..c {
                let mut best: Option<(f32, Option<usize>)> = None;
                for tap in 0..taps {
                    let at = src[(p * taps + tap) * c + ch];
                    let v = at.map_or(f32::NEG_INFINITY, |i| xv[i]);
                    if best.is_none_or(|(b, _)| v > b) {
                        best = Some((v, at));
                    }
                }
                if let Some((_, Some(i))) = best {
                    want[i] += r[p * c + ch] as f64;
                }
            }
        }
        assert_close(&format!("max_pool {window:?} over {dims:?}: gradient"), &vals(gx)?, &want, 1e-6, 1e-6)?;
    }
    Ok(())
}

/// Bad convolution and pooling arguments are errors naming what was wrong.
pub fn errors_conv_pool(dev: &Device) -> Result<()> {
    let x = t(dev, &[0.0; 2 * 4 * 4 * 3], [2, 4, 4, 3])?;
    let w = Window::new(&[2, 2]);
    let k = t(dev, &[0.0; 12 * 5], [12, 5])?;
    let id = LinearActivation::Identity;
    expect_err("conv rank", x.conv(&k, None, &Window::new(&[2]), id), &["conv", "rank 3", "[2, 4, 4, 3]"])?;
    let short = t(dev, &[0.0; 11 * 5], [11, 5])?;
    expect_err("conv kernel rows", x.conv(&short, None, &w, id), &["conv", "12 rows", "[11, 5]"])?;
    let k4 = t(dev, &[0.0; 12 * 5], [2, 2, 3, 5])?;
    expect_err("conv kernel rank", x.conv(&k4, None, &w, id), &["conv", "rank 2"])?;
    let bias = t(dev, &[0.0; 4], [4])?;
    expect_err("conv bias", x.conv(&k, Some(&bias), &w, id), &["conv", "(5,)", "[4]"])?;
    expect_err("conv window", x.conv(&k, None, &Window::new(&[5, 2]), id), &["conv", "spans 5"])?;
    let xi = ti(dev, &[0; 16], [1, 4, 4, 1])?;
    expect_err("conv dtype", xi.conv(&t(dev, &[0.0; 4], [4, 1])?, None, &w, id), &["conv", "f32", "i64"])?;
    expect_err("pool rank", x.max_pool(&Window::new(&[2])), &["max_pool", "rank 3"])?;
    expect_err("pool window", x.max_pool(&Window::new(&[2, 2]).strides(&[0, 1])), &["max_pool", "stride"])?;
    expect_err("pool dtype", xi.max_pool(&w), &["max_pool", "f32", "i64"])?;
    Ok(())
}

/// The LSTM recurrence in f64, as [`strata_core::LstmSpec`] defines it:
/// the states `[h, c]` after every step.
#[allow(clippy::too_many_arguments)]
fn lstm_reference(
    xw: &[f32],
    u: &[f32],
    h0: &[f32],
    c0: &[f32],
    mask: Option<&[f32]>,
    steps: usize,
    batch: usize,
    n: usize,
) -> Vec<f64> {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut h: Vec<f64> = h0.iter().map(|&v| v as f64).collect();
    let mut c: Vec<f64> = c0.iter().map(|&v| v as f64).collect();
    let mut out = Vec::new();
    for t in 0..steps {
        for b in 0..batch {
            let skip = mask.is_some_and(|m| m[t * batch + b] == 0.0);
            let z: Vec<f64> = (0..4 * n)
                .map(|k| {
                    let rec: f64 = (0..n).map(|j| h[b * n + j] * u[j * 4 * n + k] as f64).sum();
                    xw[(t * batch + b) * 4 * n + k] as f64 + rec
                })
                .collect();
            let mut row = vec![0.0; 2 * n];
            for j in 0..n {
                let (i, f, g, o) = (sig(z[j]), sig(z[n + j]), z[2 * n + j].tanh(), sig(z[3 * n + j]));
                let cj = f * c[b * n + j] + i * g;
                row[j] = o * cj.tanh();
                row[n + j] = cj;
            }
            if skip {
                row[..n].copy_from_slice(&h[b * n..(b + 1) * n]);
                row[n..].copy_from_slice(&c[b * n..(b + 1) * n]);
            }
            out.push(row);
        }
        for (b, row) in out[t * batch..].iter().enumerate() {
            h[b * n..(b + 1) * n].copy_from_slice(&row[..n]);
            c[b * n..(b + 1) * n].copy_from_slice(&row[n..]);
        }
    }
    out.into_iter().flatten().collect()
}

/// [`Tensor::lstm`] against an f64 reference: plain, with a mask (rows
/// skipping steps at the start, middle and end), and one unit, one row.
pub fn lstm_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(41);
    for (steps, batch, n, masked) in [(4, 3, 5, false), (5, 3, 4, true), (1, 1, 1, false), (6, 9, 17, true)] {
        let xw = random_vals(&mut rng, steps * batch * 4 * n, -1.5, 1.5);
        let u = random_vals(&mut rng, n * 4 * n, -0.8, 0.8);
        let h0 = random_vals(&mut rng, batch * n, -0.5, 0.5);
        let c0 = random_vals(&mut rng, batch * n, -0.5, 0.5);
        let mask: Vec<f32> = (0..steps * batch).map(|i| if (i * 7 + i / batch) % 3 == 0 { 0.0 } else { 1.0 }).collect();
        let m = masked.then_some(&mask[..]);
        let want = lstm_reference(&xw, &u, &h0, &c0, m, steps, batch, n);
        let mt = m.map(|m| t(dev, m, [steps, batch])).transpose()?;
        let y = Tensor::lstm(
            &t(dev, &xw, [steps, batch, 4 * n])?,
            &t(dev, &u, [n, 4 * n])?,
            &t(dev, &h0, [batch, n])?,
            &t(dev, &c0, [batch, n])?,
            mt.as_ref(),
        )?;
        ensure(y.dims() == [steps, batch, 2 * n], || format!("lstm: shape {:?}", y.dims()))?;
        assert_close(&format!("lstm {steps}x{batch}x{n} masked={masked}"), &vals(&y)?, &want, 1e-5, 1e-5)?;
    }
    Ok(())
}

/// [`Tensor::lstm`]'s gradients to the projection, the recurrent kernel and
/// both initial states against finite differences, with and without a mask.
pub fn lstm_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(42);
    let (steps, batch, n) = (4, 3, 2);
    let mask = t(dev, &[1., 1., 0., 0., 1., 1., 1., 1., 0., 1., 0., 1.], [steps, batch])?;
    for masked in [false, true] {
        let inputs = vec![
            (random_vals(&mut rng, steps * batch * 4 * n, -1.0, 1.0), Shape::from([steps, batch, 4 * n])),
            (random_vals(&mut rng, n * 4 * n, -0.7, 0.7), Shape::from([n, 4 * n])),
            (random_vals(&mut rng, batch * n, -0.5, 0.5), Shape::from([batch, n])),
            (random_vals(&mut rng, batch * n, -0.5, 0.5), Shape::from([batch, n])),
        ];
        let m = masked.then_some(&mask);
        check_grad(&format!("lstm masked={masked}"), dev, &inputs, 1e-2, |v| {
            Tensor::lstm(&v[0], &v[1], &v[2], &v[3], m)
        })?;
    }
    Ok(())
}

/// Inconsistent LSTM operands are errors naming what was wrong.
pub fn errors_lstm(dev: &Device) -> Result<()> {
    let z = |shape: &[usize]| Tensor::zeros(shape.to_vec(), DType::F32, dev);
    let (xw, u, s) = (z(&[3, 2, 8])?, z(&[2, 8])?, z(&[2, 2])?);
    Tensor::lstm(&xw, &u, &s, &s, None)?;
    expect_err("lstm xw", Tensor::lstm(&z(&[3, 2, 7])?, &u, &s, &s, None), &["lstm", "4·units"])?;
    expect_err("lstm u", Tensor::lstm(&xw, &z(&[2, 4])?, &s, &s, None), &["lstm", "[2, 8]"])?;
    expect_err("lstm state", Tensor::lstm(&xw, &u, &z(&[3, 2])?, &s, None), &["lstm", "[2, 2]"])?;
    expect_err("lstm mask", Tensor::lstm(&xw, &u, &s, &s, Some(&z(&[2, 3])?)), &["lstm", "[3, 2]"])?;
    expect_err("lstm steps", Tensor::lstm(&z(&[0, 2, 8])?, &u, &s, &s, None), &["lstm", "at least one step"])?;
    let ids = Tensor::zeros([3, 2, 8], DType::I64, dev)?;
    expect_err("lstm dtype", Tensor::lstm(&ids, &u, &s, &s, None), &["lstm", "f32"])?;
    Ok(())
}

/// The GRU recurrence (`reset_after`) in f64, as [`strata_core::GruSpec`]
/// defines it: the state after every step.
#[allow(clippy::too_many_arguments)]
fn gru_reference(
    xw: &[f32],
    u: &[f32],
    b: Option<&[f32]>,
    h0: &[f32],
    mask: Option<&[f32]>,
    steps: usize,
    batch: usize,
    n: usize,
) -> Vec<f64> {
    let sig = |x: f64| 1.0 / (1.0 + (-x).exp());
    let mut h: Vec<f64> = h0.iter().map(|&v| v as f64).collect();
    let mut out = Vec::with_capacity(steps * batch * n);
    for t in 0..steps {
        let mut next = h.clone();
        for r in 0..batch {
            if mask.is_some_and(|m| m[t * batch + r] == 0.0) {
                continue;
            }
            let a: Vec<f64> = (0..3 * n)
                .map(|k| {
                    let rec: f64 = (0..n).map(|j| h[r * n + j] * u[j * 3 * n + k] as f64).sum();
                    rec + b.map_or(0.0, |b| b[k] as f64)
                })
                .collect();
            let x = |k: usize| xw[(t * batch + r) * 3 * n + k] as f64;
            for j in 0..n {
                let z = sig(x(j) + a[j]);
                let rr = sig(x(n + j) + a[n + j]);
                let hh = (x(2 * n + j) + rr * a[2 * n + j]).tanh();
                next[r * n + j] = z * h[r * n + j] + (1.0 - z) * hh;
            }
        }
        out.extend_from_slice(&next);
        h = next;
    }
    out
}

/// [`Tensor::gru`] against an f64 reference: with and without the
/// recurrent bias and a mask (rows skipping steps at the start, middle and
/// end), and one unit, one row.
pub fn gru_forward(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(43);
    for (steps, batch, n, masked, biased) in
        [(4, 3, 5, false, true), (5, 3, 4, true, false), (1, 1, 1, false, false), (6, 9, 17, true, true)]
    {
        let xw = random_vals(&mut rng, steps * batch * 3 * n, -1.5, 1.5);
        let u = random_vals(&mut rng, n * 3 * n, -0.8, 0.8);
        let b = random_vals(&mut rng, 3 * n, -0.5, 0.5);
        let h0 = random_vals(&mut rng, batch * n, -0.5, 0.5);
        let mask: Vec<f32> = (0..steps * batch).map(|i| if (i * 7 + i / batch) % 3 == 0 { 0.0 } else { 1.0 }).collect();
        let (m, bb) = (masked.then_some(&mask[..]), biased.then_some(&b[..]));
        let want = gru_reference(&xw, &u, bb, &h0, m, steps, batch, n);
        let mt = m.map(|m| t(dev, m, [steps, batch])).transpose()?;
        let bt = bb.map(|b| t(dev, b, [3 * n])).transpose()?;
        let y = Tensor::gru(
            &t(dev, &xw, [steps, batch, 3 * n])?,
            &t(dev, &u, [n, 3 * n])?,
            bt.as_ref(),
            &t(dev, &h0, [batch, n])?,
            mt.as_ref(),
        )?;
        ensure(y.dims() == [steps, batch, n], || format!("gru: shape {:?}", y.dims()))?;
        let what = format!("gru {steps}x{batch}x{n} masked={masked} bias={biased}");
        assert_close(&what, &vals(&y)?, &want, 1e-5, 1e-5)?;
    }
    Ok(())
}

/// [`Tensor::gru`]'s gradients to the projection, the recurrent kernel,
/// the recurrent bias and the initial state against finite differences,
/// with and without a mask.
pub fn gru_grad(dev: &Device) -> Result<()> {
    let mut rng = Rng::seed(44);
    let (steps, batch, n) = (4, 3, 2);
    let mask = t(dev, &[1., 1., 0., 0., 1., 1., 1., 1., 0., 1., 0., 1.], [steps, batch])?;
    for masked in [false, true] {
        let inputs = vec![
            (random_vals(&mut rng, steps * batch * 3 * n, -1.0, 1.0), Shape::from([steps, batch, 3 * n])),
            (random_vals(&mut rng, n * 3 * n, -0.7, 0.7), Shape::from([n, 3 * n])),
            (random_vals(&mut rng, 3 * n, -0.5, 0.5), Shape::from([3 * n])),
            (random_vals(&mut rng, batch * n, -0.5, 0.5), Shape::from([batch, n])),
        ];
        let m = masked.then_some(&mask);
        check_grad(&format!("gru masked={masked}"), dev, &inputs, 1e-2, |v| {
            Tensor::gru(&v[0], &v[1], Some(&v[2]), &v[3], m)
        })?;
    }
    Ok(())
}

/// Inconsistent GRU operands are errors naming what was wrong.
pub fn errors_gru(dev: &Device) -> Result<()> {
    let z = |shape: &[usize]| Tensor::zeros(shape.to_vec(), DType::F32, dev);
    let (xw, u, b, s) = (z(&[3, 2, 6])?, z(&[2, 6])?, z(&[6])?, z(&[2, 2])?);
    Tensor::gru(&xw, &u, Some(&b), &s, None)?;
    expect_err("gru xw", Tensor::gru(&z(&[3, 2, 7])?, &u, None, &s, None), &["gru", "3·units"])?;
    expect_err("gru u", Tensor::gru(&xw, &z(&[2, 8])?, None, &s, None), &["gru", "[2, 6]"])?;
    expect_err("gru bias", Tensor::gru(&xw, &u, Some(&z(&[2, 6])?), &s, None), &["gru", "bias", "[6]"])?;
    expect_err("gru state", Tensor::gru(&xw, &u, None, &z(&[3, 2])?, None), &["gru", "[2, 2]"])?;
    expect_err("gru mask", Tensor::gru(&xw, &u, None, &s, Some(&z(&[2, 3])?)), &["gru", "[3, 2]"])?;
    expect_err("gru steps", Tensor::gru(&z(&[0, 2, 6])?, &u, None, &s, None), &["gru", "at least one step"])?;
    let ids = Tensor::zeros([3, 2, 6], DType::I64, dev)?;
    expect_err("gru dtype", Tensor::gru(&ids, &u, None, &s, None), &["gru", "f32"])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every public case function in this file (a `pub fn` taking only the
    /// device) is on the case list, and every listed case exists once.
    #[test]
    fn every_case_function_is_listed() {
        let source = include_str!("lib.rs");
        let mut found: Vec<&str> = source
            .lines()
            .filter_map(|l| l.strip_prefix("pub fn ")?.strip_suffix("(dev: &Device) -> Result<()> {"))
            .collect();
        found.sort_unstable();
        let mut listed = CASES.to_vec();
        listed.sort_unstable();
        assert_eq!(found, listed);
        assert_eq!(CASES.len(), 62);
    }

    #[test]
    fn run_case_runs_a_case_and_names_unknown_ones() {
        let dev = strata_native::device();
        run_case("creation", &dev).unwrap();
        let err = run_case("no_such_case", &dev).unwrap_err().to_string();
        assert!(err.contains("no case `no_such_case`") && err.contains("errors_axes"), "{err}");
    }
}
