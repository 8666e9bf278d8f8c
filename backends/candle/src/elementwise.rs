//! Elementwise kernels: unary ops, broadcasting binary ops, scalar ops and the
//! last-axis softmax / log-softmax.

use candle_core::backend::BackendStorage;
use candle_core::cpu_backend::{binary_map, unary_map};
use candle_core::{CpuStorage, CustomOp1, CustomOp2, Layout, Tensor, D};
use strata_core::{Backend, BinaryOp, DType, Error, Result, Shape, Storage, UnaryOp};

use crate::CandleBackend;

impl CandleBackend {
    pub(crate) fn unary_impl(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        let t = self.tensor(x)?;
        if x.dtype() == DType::I64 && !op.supports_int() {
            return Err(Error::DTypeMismatch { op: op.name(), expected: DType::F32, received: DType::I64 });
        }
        if t.elem_count() == 0 {
            return self.share(x);
        }
        let r = match x.dtype() {
            DType::F32 => unary_f32(op, t),
            DType::I64 => match op {
                // Candle has no i64 kernels for neg and sqr (they would panic).
                UnaryOp::Neg => t.affine(-1.0, 0.0),
                UnaryOp::Square => t.mul(t),
                UnaryOp::Abs => t.abs(),
                UnaryOp::Sign => t.sign(),
                UnaryOp::Relu => t.relu(),
                UnaryOp::Floor | UnaryOp::Ceil => return self.share(x),
                _ => unreachable!("checked by supports_int"),
            },
        };
        self.wrap(self.c(r)?)
    }

    pub(crate) fn binary_impl(
        &self,
        op: BinaryOp,
        lhs: &Storage,
        lhs_shape: &Shape,
        rhs: &Storage,
        rhs_shape: &Shape,
        out: &Shape,
    ) -> Result<Storage> {
        let dtype = lhs.dtype();
        if rhs.dtype() != dtype {
            return Err(Error::DTypeMismatch { op: op.name(), expected: dtype, received: rhs.dtype() });
        }
        if op == BinaryOp::Pow && dtype != DType::F32 {
            return Err(Error::DTypeMismatch { op: "pow", expected: DType::F32, received: dtype });
        }
        if out.numel() == 0 {
            return self.empty(dtype);
        }
        let l = self.shaped(lhs, lhs_shape)?;
        let r = self.shaped(rhs, rhs_shape)?;
        if dtype == DType::I64 && op == BinaryOp::Div {
            self.check_int_div(&l, &r)?;
        }
        let exact_on_cpu = dtype == DType::F32
            && self.device().is_cpu()
            && matches!(op, BinaryOp::Pow | BinaryOp::Maximum | BinaryOp::Minimum);
        let res =
            if exact_on_cpu { self.c(exact_binary(op, &l, &r, out))? } else { self.c(candle_binary(op, &l, &r))? };
        let res = if op.is_comparison() { self.c(res.to_dtype(crate::backend::candle_dtype(dtype)))? } else { res };
        self.wrap(res)
    }

    /// Integer division must not reach candle's `/` with a zero divisor or
    /// with `i64::MIN / -1`: both panic in Rust.
    fn check_int_div(&self, l: &Tensor, r: &Tensor) -> Result<()> {
        let any = |t: candle_core::Result<Tensor>| -> Result<bool> {
            let t = self.c(t)?;
            Ok(self.c(t.flatten_all().and_then(|t| t.max(0)).and_then(|t| t.to_scalar::<u8>()))? != 0)
        };
        if any(r.eq(0i64))? {
            return Err(Error::invalid("div", "integer division by zero (the divisor holds a 0)"));
        }
        let has_min = self.c(l.flatten_all().and_then(|t| t.min(0)).and_then(|t| t.to_scalar::<i64>()))? == i64::MIN;
        if has_min && any(l.eq(i64::MIN).and_then(|a| a.broadcast_mul(&r.eq(-1i64)?)))? {
            return Err(Error::invalid("div", "integer overflow: i64::MIN / -1"));
        }
        Ok(())
    }

    pub(crate) fn binary_scalar_impl(&self, op: BinaryOp, x: &Storage, shape: &Shape, scalar: f64) -> Result<Storage> {
        if x.dtype() == DType::F32 && matches!(op, BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Pow) {
            let t = self.tensor(x)?;
            if t.elem_count() == 0 {
                return self.share(x);
            }
            // All exact in IEEE arithmetic: `v·1 + s`, `v·1 + (−s)`, `v·s + (−0)`
            // (adding −0 leaves every value, including −0, unchanged), and
            // candle's `powf` is `f32::powf`.
            let s = scalar as f32 as f64;
            let r = match op {
                BinaryOp::Add => t.affine(1.0, s),
                BinaryOp::Sub => t.affine(1.0, -s),
                BinaryOp::Mul => t.affine(s, -0.0),
                _ => t.powf(s),
            };
            return self.wrap(self.c(r)?);
        }
        let s = self.full(scalar, 1, x.dtype())?;
        self.binary_impl(op, x, shape, &s, &Shape::scalar(), shape)
    }

    pub(crate) fn softmax_impl(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        self.expect_dtype("softmax", x, DType::F32)?;
        if shape.rank() == 0 {
            return Err(Error::InvalidShape {
                op: "softmax",
                shape: shape.clone(),
                reason: "needs at least one axis".into(),
            });
        }
        if shape.numel() == 0 {
            return self.share(x);
        }
        let t = self.shaped(x, shape)?;
        self.wrap(self.c(candle_nn::ops::softmax_last_dim(&t))?)
    }

    pub(crate) fn log_softmax_impl(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        self.expect_dtype("log_softmax", x, DType::F32)?;
        if shape.rank() == 0 {
            return Err(Error::InvalidShape {
                op: "log_softmax",
                shape: shape.clone(),
                reason: "needs at least one axis".into(),
            });
        }
        if shape.numel() == 0 {
            return self.share(x);
        }
        let t = self.shaped(x, shape)?;
        let r = if self.device().is_cpu() {
            t.apply_op1_no_bwd(&LogSoftmaxLastDim)
        } else {
            candle_nn::ops::log_softmax(&t, D::Minus1)
        };
        self.wrap(self.c(r)?)
    }
}

/// `op(t)` for an `f32` tensor.
fn unary_f32(op: UnaryOp, t: &Tensor) -> candle_core::Result<Tensor> {
    match op {
        UnaryOp::Neg => t.neg(),
        UnaryOp::Abs => t.abs(),
        UnaryOp::Sign => t.sign(),
        UnaryOp::Exp => t.exp(),
        UnaryOp::Log => t.log(),
        UnaryOp::Sqrt => t.sqrt(),
        UnaryOp::Square => t.sqr(),
        UnaryOp::Recip => t.recip(),
        UnaryOp::Relu => relu_keep_nan(t),
        UnaryOp::Sigmoid => candle_nn::ops::sigmoid(t),
        UnaryOp::Tanh => t.tanh(),
        UnaryOp::Gelu => t.gelu_erf(),
        UnaryOp::Softplus => softplus(t),
        UnaryOp::Erf => t.erf(),
        UnaryOp::Sin => t.sin(),
        UnaryOp::Cos => t.cos(),
        UnaryOp::Floor => t.floor(),
        UnaryOp::Ceil => t.ceil(),
    }
}

/// `ln(1 + e^x)` without overflow: `relu(x) + log1p(e^-|x|)`.
pub(crate) fn softplus(x: &Tensor) -> candle_core::Result<Tensor> {
    let y = x.abs()?.neg()?.exp()?;
    x.relu()? + log1p(&y)?
}

/// `ln(1 + y)` for `y >= 0`, accurate for tiny `y` (Goldberg's trick:
/// `ln(u)·y/(u−1)` with `u = 1 + y` rounded, and `y` itself where `u == 1`).
pub(crate) fn log1p(y: &Tensor) -> candle_core::Result<Tensor> {
    let u = y.affine(1.0, 1.0)?;
    let d = u.affine(1.0, -1.0)?;
    let tiny = d.eq(0f32)?;
    // Where d == 0 the ratio is 0/0; where_cond picks y there.
    let ratio = (u.log()? * y.div(&d)?)?;
    tiny.where_cond(y, &ratio)
}

/// Candle's own broadcasting kernel for `op`. Comparisons return `u8`.
fn candle_binary(op: BinaryOp, l: &Tensor, r: &Tensor) -> candle_core::Result<Tensor> {
    match op {
        BinaryOp::Add => l.broadcast_add(r),
        BinaryOp::Sub => l.broadcast_sub(r),
        BinaryOp::Mul => l.broadcast_mul(r),
        BinaryOp::Div => l.broadcast_div(r),
        BinaryOp::Pow => pow_composite(l, r),
        BinaryOp::Maximum => l.broadcast_maximum(r),
        BinaryOp::Minimum => l.broadcast_minimum(r),
        BinaryOp::Eq => l.broadcast_eq(r),
        BinaryOp::Ne => l.broadcast_ne(r),
        BinaryOp::Lt => l.broadcast_lt(r),
        BinaryOp::Le => l.broadcast_le(r),
        BinaryOp::Gt => l.broadcast_gt(r),
        BinaryOp::Ge => l.broadcast_ge(r),
    }
}

/// IEEE `powf` emulated with candle ops, for devices without the CPU kernel.
///
/// `|a|^b = exp(b·ln|a|)`, negated for a negative base and an odd integer
/// exponent, NaN for a negative base and a non-integer exponent; `a^0 = 1`
/// and `1^b = 1` even for NaN. (Candle's `Tensor::pow` is `exp(b·ln a)`: NaN
/// for every negative base and for `0^0`.)
pub(crate) fn pow_composite(a: &Tensor, b: &Tensor) -> candle_core::Result<Tensor> {
    let shape = a.shape().broadcast_shape_binary_op(b.shape(), "pow")?;
    let a = a.broadcast_as(&shape)?;
    let b = b.broadcast_as(&shape)?;
    let mag = (b.clone() * a.abs()?.log()?)?.exp()?;
    let b_int = b.floor()?.eq(&b)?;
    let half = b.affine(0.5, 0.0)?;
    let b_odd = (half.floor()?.ne(&half)? * &b_int)?;
    let nan = Tensor::full(f32::NAN, shape.clone(), a.device())?;
    let one = Tensor::ones(shape.clone(), a.dtype(), a.device())?;
    let signed = b_odd.where_cond(&mag.neg()?, &mag)?;
    let negative_base = b_int.where_cond(&signed, &nan)?;
    let r = a.lt(0f32)?.where_cond(&negative_base, &mag)?;
    let r = b.eq(0f32)?.where_cond(&one, &r)?;
    a.eq(1f32)?.where_cond(&one, &r)
}

/// `op(l, r)` for `f32` on the CPU with Rust's scalar semantics.
fn exact_binary(op: BinaryOp, l: &Tensor, r: &Tensor, out: &Shape) -> candle_core::Result<Tensor> {
    let l = l.broadcast_as(out.dims())?;
    let r = r.broadcast_as(out.dims())?;
    let f: fn(f32, f32) -> f32 = match op {
        BinaryOp::Pow => f32::powf,
        BinaryOp::Maximum => strata_core::fast_path_defaults::maximum,
        BinaryOp::Minimum => strata_core::fast_path_defaults::minimum,
        _ => candle_core::bail!("no exact CPU kernel for {}", op.name()),
    };
    l.apply_op2_no_bwd(&r, &ExactBinary(op.name(), f))
}

/// `relu` that keeps NaN, as Keras and JAX do (candle's own `relu` is
/// `f32::max(v, 0)`, which turns NaN into 0 and hides a diverged model):
/// one pass on the CPU; elsewhere `where(x != x, x, relu(x))`.
fn relu_keep_nan(t: &Tensor) -> candle_core::Result<Tensor> {
    if t.device().is_cpu() {
        return t.apply_op1_no_bwd(&ReluKeepNan);
    }
    t.ne(t)?.where_cond(t, &t.relu()?)
}

struct ReluKeepNan;

impl CustomOp1 for ReluKeepNan {
    fn name(&self) -> &'static str {
        "relu-keep-nan"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
        let CpuStorage::F32(src) = storage else {
            candle_core::bail!("relu: expected f32, got {:?}", storage.dtype());
        };
        let out = unary_map(src, layout, |v: f32| if v < 0.0 { 0.0 } else { v });
        Ok((CpuStorage::F32(out), layout.shape().clone()))
    }
}

/// A CPU `f32` kernel applying a Rust scalar function to two operands of the
/// same (possibly broadcast) shape.
struct ExactBinary(&'static str, fn(f32, f32) -> f32);

impl CustomOp2 for ExactBinary {
    fn name(&self) -> &'static str {
        self.0
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
        if l1.shape() != l2.shape() {
            candle_core::bail!("{}: shapes {:?} and {:?} differ", self.0, l1.shape(), l2.shape());
        }
        match (s1, s2) {
            (CpuStorage::F32(a), CpuStorage::F32(b)) => {
                Ok((CpuStorage::F32(binary_map(l1, l2, a, b, self.1)), l1.shape().clone()))
            }
            _ => candle_core::bail!("{}: expected two f32 operands, got {:?} and {:?}", self.0, s1.dtype(), s2.dtype()),
        }
    }
}

/// Fused log-softmax over the last axis of a contiguous `f32` tensor (CPU):
/// one pass for the maximum, one for `Σ e^(x−max)`, one to write
/// `x − max − ln Σ`.
struct LogSoftmaxLastDim;

impl CustomOp1 for LogSoftmaxLastDim {
    fn name(&self) -> &'static str {
        "log-softmax-last-dim"
    }

    fn cpu_fwd(&self, storage: &CpuStorage, layout: &Layout) -> candle_core::Result<(CpuStorage, candle_core::Shape)> {
        let CpuStorage::F32(src) = storage else {
            candle_core::bail!("log-softmax: expected f32, got {:?}", storage.dtype());
        };
        let Some((o1, o2)) = layout.contiguous_offsets() else {
            candle_core::bail!("log-softmax: input has to be contiguous");
        };
        let src = &src[o1..o2];
        let dims = layout.dims();
        let n = dims.last().copied().unwrap_or(1);
        let mut dst = vec![0f32; src.len()];
        if n > 0 {
            for (row, out) in src.chunks_exact(n).zip(dst.chunks_exact_mut(n)) {
                let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let sum: f32 = row.iter().map(|&v| (v - max).exp()).sum();
                let lse = sum.ln();
                for (o, &v) in out.iter_mut().zip(row) {
                    *o = (v - max) - lse;
                }
            }
        }
        Ok((CpuStorage::F32(dst), layout.shape().clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn t(v: &[f32]) -> Tensor {
        Tensor::new(v, &Device::Cpu).unwrap()
    }

    /// The device-independent `pow` (used off the CPU) against `f32::powf`.
    #[test]
    fn pow_composite_matches_powf() {
        let a = [-2.0f32, -2.0, -2.0, -8.0, 0.0, 0.0, 0.0, 1.0, f32::NAN, 3.0, 2.0, -0.5, 2.0, -3.0, 1.5];
        let e = [3.0f32, 2.0, 0.5, -1.0, 0.0, 2.0, -1.0, f32::NAN, 0.0, 2.0, 10.0, -3.0, f32::NAN, 4.0, -2.5];
        let got = pow_composite(&t(&a), &t(&e)).unwrap().to_vec1::<f32>().unwrap();
        for (k, ((&x, &y), &g)) in a.iter().zip(&e).zip(&got).enumerate() {
            let w = x.powf(y);
            let ok = (w.is_nan() && g.is_nan()) || g == w || (g - w).abs() <= 1e-5 * w.abs();
            assert!(ok, "case {k}: {x}^{y} = {g}, want {w}");
        }
        // Broadcasting.
        let got = pow_composite(&t(&[-1.0, 2.0]).reshape((2, 1)).unwrap(), &t(&[1.0, 2.0, 3.0])).unwrap();
        assert_eq!(got.flatten_all().unwrap().to_vec1::<f32>().unwrap(), vec![-1.0, 1.0, -1.0, 2.0, 4.0, 8.0]);
    }

    #[test]
    fn log1p_is_accurate_for_tiny_arguments() {
        let ys = [0.0f32, 1e-10, 1e-7, 3e-5, 0.5, 1.0];
        let got = log1p(&t(&ys)).unwrap().to_vec1::<f32>().unwrap();
        for (&y, &g) in ys.iter().zip(&got) {
            let w = (y as f64).ln_1p();
            assert!((g as f64 - w).abs() <= 2e-7 * w.abs() + 1e-30, "log1p({y}) = {g}, want {w}");
        }
    }

    /// The device-independent log-softmax (used off the CPU) agrees with the
    /// fused CPU kernel.
    #[test]
    fn fused_log_softmax_matches_candle_nn() {
        let x = t(&[1.0, 2.0, 3.0, 1000.0, 1000.0, -1000.0]).reshape((2, 3)).unwrap();
        let fused = x.apply_op1_no_bwd(&LogSoftmaxLastDim).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        let composed =
            candle_nn::ops::log_softmax(&x, D::Minus1).unwrap().flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for (f, c) in fused.iter().zip(&composed) {
            assert!((f - c).abs() <= 1e-6 * (1.0 + c.abs()), "{fused:?} vs {composed:?}");
        }
    }
}
