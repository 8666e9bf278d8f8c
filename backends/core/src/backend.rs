//! The first half of the backend contract: the primitive forward kernels
//! over opaque storage.
//!
//! Everything above this trait — shape checking, broadcasting rules, autodiff,
//! layers, training — is written once in terms of [`Tensor`](crate::Tensor).
//! A backend only supplies forward kernels. Ops are passed as enums
//! ([`UnaryOp`], [`BinaryOp`], [`ReduceOp`]) so the trait stays small.
//! Implement every method of [`Backend`] and the conformance suite (the
//! `strata-conformance` crate) tells you when you are done; add
//! `impl FastPaths for MyBackend {}` (the [second half](crate::FastPaths),
//! fused kernels with defaults built from these primitives) and
//! `Device::new(MyBackend)` runs every model.
//!
//! The caller (the `Tensor` front end) guarantees that shapes passed in are
//! consistent with the storages' lengths and that axes are in range. Data
//! dependent checks — an out-of-range gather index — are the backend's job and
//! must come back as [`Error::IndexOutOfRange`](crate::Error::IndexOutOfRange),
//! never as a panic.

use std::any::Any;
use std::fmt;

use crate::{DType, Result, Shape, UnfoldSpec};

/// Elementwise functions of one operand.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    /// `-x`
    Neg,
    /// `|x|`
    Abs,
    /// `-1`, `0` or `1`
    Sign,
    /// `e^x`
    Exp,
    /// natural logarithm
    Log,
    /// square root
    Sqrt,
    /// `x * x`
    Square,
    /// `1 / x`
    Recip,
    /// `max(x, 0)`
    Relu,
    /// `1 / (1 + e^-x)`
    Sigmoid,
    /// hyperbolic tangent
    Tanh,
    /// exact GELU: `x * Φ(x)` with the normal CDF `Φ` (Keras' default)
    Gelu,
    /// `ln(1 + e^x)`, computed without overflow
    Softplus,
    /// the error function
    Erf,
    /// sine
    Sin,
    /// cosine
    Cos,
    /// round towards −∞
    Floor,
    /// round towards +∞
    Ceil,
}

impl UnaryOp {
    /// Every unary op, for tests and tooling.
    pub const ALL: [UnaryOp; 18] = [
        UnaryOp::Neg,
        UnaryOp::Abs,
        UnaryOp::Sign,
        UnaryOp::Exp,
        UnaryOp::Log,
        UnaryOp::Sqrt,
        UnaryOp::Square,
        UnaryOp::Recip,
        UnaryOp::Relu,
        UnaryOp::Sigmoid,
        UnaryOp::Tanh,
        UnaryOp::Gelu,
        UnaryOp::Softplus,
        UnaryOp::Erf,
        UnaryOp::Sin,
        UnaryOp::Cos,
        UnaryOp::Floor,
        UnaryOp::Ceil,
    ];

    /// Lower-case name, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            UnaryOp::Neg => "neg",
            UnaryOp::Abs => "abs",
            UnaryOp::Sign => "sign",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Square => "square",
            UnaryOp::Recip => "recip",
            UnaryOp::Relu => "relu",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Gelu => "gelu",
            UnaryOp::Softplus => "softplus",
            UnaryOp::Erf => "erf",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Floor => "floor",
            UnaryOp::Ceil => "ceil",
        }
    }

    /// Whether the op is defined on integer tensors (the rest need `f32`).
    pub fn supports_int(self) -> bool {
        matches!(
            self,
            UnaryOp::Neg
                | UnaryOp::Abs
                | UnaryOp::Sign
                | UnaryOp::Square
                | UnaryOp::Relu
                | UnaryOp::Floor
                | UnaryOp::Ceil
        )
    }

    /// The scalar function, in `f64`: the reference the conformance suite
    /// checks every backend against.
    pub fn reference(self, x: f64) -> f64 {
        match self {
            UnaryOp::Neg => -x,
            UnaryOp::Abs => x.abs(),
            UnaryOp::Sign => {
                if x > 0.0 {
                    1.0
                } else if x < 0.0 {
                    -1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Square => x * x,
            UnaryOp::Recip => 1.0 / x,
            // NaN stays NaN, as in Keras/JAX (`f64::max` would drop it).
            UnaryOp::Relu => {
                if x < 0.0 {
                    0.0
                } else {
                    x
                }
            }
            UnaryOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::Gelu => 0.5 * x * (1.0 + erf_f64(x / std::f64::consts::SQRT_2)),
            UnaryOp::Softplus => x.max(0.0) + (-x.abs()).exp().ln_1p(),
            UnaryOp::Erf => erf_f64(x),
            UnaryOp::Sin => x.sin(),
            UnaryOp::Cos => x.cos(),
            UnaryOp::Floor => x.floor(),
            UnaryOp::Ceil => x.ceil(),
        }
    }
}

/// Elementwise functions of two operands, with NumPy broadcasting.
///
/// Comparisons return `1` where true and `0` where false, in the operands' dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `a + b`
    Add,
    /// `a - b`
    Sub,
    /// `a * b`
    Mul,
    /// `a / b` (truncating for integers; division by zero is an error there)
    Div,
    /// `a ^ b` (f32 only)
    Pow,
    /// elementwise maximum
    Maximum,
    /// elementwise minimum
    Minimum,
    /// `a == b`
    Eq,
    /// `a != b`
    Ne,
    /// `a < b`
    Lt,
    /// `a <= b`
    Le,
    /// `a > b`
    Gt,
    /// `a >= b`
    Ge,
}

impl BinaryOp {
    /// Every binary op, for tests and tooling.
    pub const ALL: [BinaryOp; 13] = [
        BinaryOp::Add,
        BinaryOp::Sub,
        BinaryOp::Mul,
        BinaryOp::Div,
        BinaryOp::Pow,
        BinaryOp::Maximum,
        BinaryOp::Minimum,
        BinaryOp::Eq,
        BinaryOp::Ne,
        BinaryOp::Lt,
        BinaryOp::Le,
        BinaryOp::Gt,
        BinaryOp::Ge,
    ];

    /// Lower-case name, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
        }
    }

    /// Whether the op is a comparison (no gradient, 0/1 result).
    pub fn is_comparison(self) -> bool {
        matches!(self, BinaryOp::Eq | BinaryOp::Ne | BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge)
    }

    /// The scalar function, in `f64`: the reference for the conformance suite.
    pub fn reference(self, a: f64, b: f64) -> f64 {
        let t = |c: bool| if c { 1.0 } else { 0.0 };
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Pow => a.powf(b),
            // NaN if either is NaN, as NumPy, JAX and Keras (`f64::max`
            // would return the other operand).
            BinaryOp::Maximum => {
                if a > b || a.is_nan() {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Minimum => {
                if a < b || a.is_nan() {
                    a
                } else {
                    b
                }
            }
            BinaryOp::Eq => t(a == b),
            BinaryOp::Ne => t(a != b),
            BinaryOp::Lt => t(a < b),
            BinaryOp::Le => t(a <= b),
            BinaryOp::Gt => t(a > b),
            BinaryOp::Ge => t(a >= b),
        }
    }
}

/// Reductions over axes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    /// sum of the elements
    Sum,
    /// largest element
    Max,
    /// smallest element
    Min,
    /// index of the (first) largest element; one axis only; result is `i64`
    ArgMax,
    /// index of the (first) smallest element; one axis only; result is `i64`
    ArgMin,
}

impl ReduceOp {
    /// Lower-case name, as in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ReduceOp::Sum => "sum",
            ReduceOp::Max => "max",
            ReduceOp::Min => "min",
            ReduceOp::ArgMax => "argmax",
            ReduceOp::ArgMin => "argmin",
        }
    }
}

/// Geometry of a (batched) matrix product `out[b] = op(lhs[b]) · op(rhs[b])`.
///
/// `op(lhs[b])` is `m × k` and `op(rhs[b])` is `k × n`; the output is a
/// contiguous `batch × m × n` buffer. With `trans_lhs` the stored lhs matrix is
/// `k × m` (row-major) and is used transposed; likewise `trans_rhs` (`n × k`
/// stored). Matrix `b` of lhs starts at element `b * lhs_batch_stride`; a
/// stride of `0` repeats one matrix across the batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MatmulSpec {
    /// Number of products.
    pub batch: usize,
    /// Rows of the output.
    pub m: usize,
    /// Columns of the output.
    pub n: usize,
    /// Contracted dimension.
    pub k: usize,
    /// Use the stored lhs (`k × m`) transposed.
    pub trans_lhs: bool,
    /// Use the stored rhs (`n × k`) transposed.
    pub trans_rhs: bool,
    /// Elements between consecutive lhs matrices (0: broadcast).
    pub lhs_batch_stride: usize,
    /// Elements between consecutive rhs matrices (0: broadcast).
    pub rhs_batch_stride: usize,
}

/// Backend-owned tensor data, opaque to everything above the backend.
///
/// A backend stores whatever it likes inside (a `Vec<f32>`, a candle tensor, a
/// device pointer) and gets it back with [`Storage::downcast_ref`].
pub struct Storage {
    inner: Box<dyn Any + Send + Sync>,
    dtype: DType,
    len: usize,
}

impl Storage {
    /// Wraps backend data holding `len` elements of `dtype`.
    pub fn new<T: Any + Send + Sync>(data: T, dtype: DType, len: usize) -> Self {
        Storage { inner: Box::new(data), dtype, len }
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.dtype
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the storage holds no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The backend data, if it is a `T`.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.inner.downcast_ref()
    }

    /// The backend data, mutably, if it is a `T`.
    pub fn downcast_mut<T: Any>(&mut self) -> Option<&mut T> {
        self.inner.downcast_mut()
    }
}

impl fmt::Debug for Storage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Storage({} x {})", self.len, self.dtype)
    }
}

/// The first half of the backend contract: the primitive forward kernels a
/// backend provides. Every method is required, and together they are
/// enough to run every op (the fused ones through the defaults of
/// [`FastPaths`](crate::FastPaths)): implement them, add
/// `impl FastPaths for MyBackend {}`, and the conformance suite (the
/// `strata-conformance` crate, one `conformance_suite!` line in a test file)
/// tells you when you are done.
///
/// Shapes passed in always match the storages (the front end checks them);
/// reductions keep reduced axes as size 1 (`[2, 3]` summed over axis 1 gives
/// two elements, laid out as `[2, 1]`).
pub trait Backend: Send + Sync + fmt::Debug + 'static {
    /// A short unique name: `"native"`, `"candle-cpu"`, `"candle-cuda:0"`.
    fn name(&self) -> String;

    /// Uploads `f32` values.
    fn upload_f32(&self, data: Vec<f32>) -> Result<Storage>;
    /// Uploads `i64` values.
    fn upload_i64(&self, data: Vec<i64>) -> Result<Storage>;
    /// Downloads as `f32` (the storage must be `F32`).
    fn download_f32(&self, x: &Storage) -> Result<Vec<f32>>;
    /// Downloads as `i64` (the storage must be `I64`).
    fn download_i64(&self, x: &Storage) -> Result<Vec<i64>>;
    /// `len` copies of `value`, converted to `dtype`.
    fn full(&self, value: f64, len: usize, dtype: DType) -> Result<Storage>;

    /// Elementwise `op(x)`.
    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage>;
    /// Elementwise `op(lhs, rhs)` with both broadcast to `out` (same dtype).
    fn binary(
        &self,
        op: BinaryOp,
        lhs: &Storage,
        lhs_shape: &Shape,
        rhs: &Storage,
        rhs_shape: &Shape,
        out: &Shape,
    ) -> Result<Storage>;
    /// `op` over `axes` (sorted, unique, non-empty), keeping them as size 1.
    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage>;
    /// Batched matrix product, see [`MatmulSpec`].
    fn matmul(&self, lhs: &Storage, rhs: &Storage, spec: &MatmulSpec) -> Result<Storage>;

    /// Materialises the axis permutation `perm` of `x`.
    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage>;
    /// Materialises `x` broadcast to `out` (NumPy rules; `shape` broadcasts to `out`).
    fn broadcast_to(&self, x: &Storage, shape: &Shape, out: &Shape) -> Result<Storage>;
    /// Copies `len` entries of `axis` starting at `start`.
    fn narrow(&self, x: &Storage, shape: &Shape, axis: usize, start: usize, len: usize) -> Result<Storage>;
    /// Joins `parts` (same dtype, shapes equal except along `axis`).
    fn concat(&self, parts: &[(&Storage, &Shape)], axis: usize) -> Result<Storage>;
    /// Selects entries `indices` (a 1-D `i64` storage) along `axis`; the result
    /// has `shape[axis] = indices.len()`. An index outside `0..shape[axis]` is an
    /// [`Error::IndexOutOfRange`](crate::Error::IndexOutOfRange).
    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage>;
    /// Returns `x` with `src` added at `indices` along `axis` (repeated indices
    /// accumulate): the adjoint of [`Backend::gather`].
    fn index_add(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage, src: &Storage) -> Result<Storage>;
    /// `cond != 0 ? on_true : on_false`, elementwise over equal-length storages.
    fn where_cond(&self, cond: &Storage, on_true: &Storage, on_false: &Storage) -> Result<Storage>;
    /// Converts to `dtype` (f32 → i64 truncates towards zero).
    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage>;

    /// Copies every window position's patch of the `f32` image `x`
    /// (`spec.image_shape()`, channels last) into a contiguous
    /// `spec.patches_shape()` buffer (im2col); cells that fall in the
    /// padding read `spec.pad_value`. See [`UnfoldSpec`] and
    /// [`WindowAxis::source`](crate::WindowAxis::source) for the geometry.
    fn unfold(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage>;
    /// The adjoint of [`Backend::unfold`] (col2im): a `spec.image_shape()`
    /// buffer, zero except that every entry of the `f32` patches `cols`
    /// (`spec.patches_shape()`) is added at the input cell it was read from;
    /// entries read from padding are dropped.
    fn fold(&self, cols: &Storage, spec: &UnfoldSpec) -> Result<Storage>;
}

/// The error function in `f64`, used by [`UnaryOp::reference`]: for
/// `|x| < 0.5` the Maclaurin series `2/√π · Σ (-1)ⁿ x²ⁿ⁺¹ / (n! (2n+1))`,
/// summed until a term falls below `1e-17`; otherwise `1 - erfc(|x|)` with
/// `erfc` from its continued fraction (`erfc_cf`). Odd: `erf(-x) = -erf(x)`.
pub(crate) fn erf_f64(x: f64) -> f64 {
    let ax = x.abs();
    let r = if ax < 0.5 {
        // Taylor series: erf(x) = 2/sqrt(pi) * sum (-1)^n x^(2n+1) / (n! (2n+1))
        let mut sum = 0.0;
        let mut term = ax;
        let x2 = ax * ax;
        let mut n = 0.0;
        while term.abs() > 1e-17 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -x2 / n;
        }
        sum * std::f64::consts::FRAC_2_SQRT_PI
    } else {
        1.0 - erfc_cf(ax)
    };
    if x < 0.0 {
        -r
    } else {
        r
    }
}

/// `erfc(x)` for `x >= 0.5` from the continued fraction
/// `erfc(x) = e^(-x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + ...))))`,
/// evaluated by the modified Lentz method (at most 299 terms, stopping when
/// a step changes the value by less than `1e-16` relative).
fn erfc_cf(x: f64) -> f64 {
    let tiny = 1e-300;
    let mut f = x;
    let mut c = x;
    let mut d = 0.0;
    for i in 1..300 {
        let a = i as f64 / 2.0;
        d = x + a * d;
        if d.abs() < tiny {
            d = tiny;
        }
        c = x + a / c;
        if c.abs() < tiny {
            c = tiny;
        }
        d = 1.0 / d;
        let delta = c * d;
        f *= delta;
        if (delta - 1.0).abs() < 1e-16 {
            break;
        }
    }
    (-x * x).exp() / std::f64::consts::PI.sqrt() / f
}
