//! The backend contract: a small trait of forward kernels over opaque storage.
//!
//! Everything above this trait — shape checking, broadcasting rules, autodiff,
//! layers, training — is written once in terms of [`Tensor`](crate::Tensor).
//! A backend only supplies forward kernels. Ops are passed as enums
//! ([`UnaryOp`], [`BinaryOp`], [`ReduceOp`]) so the trait stays small; composite
//! ops (softmax, log-softmax, scalar ops) have default implementations in terms
//! of the primitives, which a backend may override with fused kernels.
//!
//! The caller (the `Tensor` front end) guarantees that shapes passed in are
//! consistent with the storages' lengths and that axes are in range. Data
//! dependent checks — an out-of-range gather index — are the backend's job and
//! must come back as [`Error::IndexOutOfRange`](crate::Error::IndexOutOfRange),
//! never as a panic.

use std::any::Any;
use std::fmt;

use crate::{DType, Error, Result, Shape};

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
            UnaryOp::Relu => x.max(0.0),
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
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
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

/// The sizes and activation of a [`Backend::linear`]: `x` is `m × k`, `w`
/// is `k × n`, the output (and the bias, by row) `m × n`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LinearSpec {
    /// Rows of `x` and of the output.
    pub m: usize,
    /// Columns of `x`, rows of `w`.
    pub k: usize,
    /// Columns of `w` and of the output; the bias's length.
    pub n: usize,
    /// Applied after the bias.
    pub activation: LinearActivation,
}

/// An optimizer step that a backend may apply in place, in one pass over
/// the weight, its gradient and its slots (see [`Backend::fused_update`]).
///
/// Every scalar is already in `f32`, as the unfused ops would round it, and
/// each formula is evaluated in the order written here, so a fused kernel
/// gives the same bits as the sequence of elementwise ops it replaces.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FusedUpdate {
    /// Plain SGD: `w = w - g·lr`.
    Sgd {
        /// Learning rate.
        lr: f32,
    },
    /// SGD with momentum (slot 0: `m`): `m = m·momentum - g·lr`, then
    /// `w = w + m`, or with Nesterov `w = w + (m·momentum - g·lr)`.
    Momentum {
        /// Learning rate.
        lr: f32,
        /// Momentum factor.
        momentum: f32,
        /// Nesterov's variant.
        nesterov: bool,
    },
    /// Adam without AMSGrad (slots 0 and 1: `m`, `v`):
    /// `m = m + (g - m)·one_minus_beta_1`, `v = v + (g² - v)·one_minus_beta_2`,
    /// `w = w - (m·alpha) / (√v + epsilon)`.
    Adam {
        /// The bias-corrected step size `lr·√(1-β₂ᵗ)/(1-β₁ᵗ)`.
        alpha: f32,
        /// `1 - β₁`.
        one_minus_beta_1: f32,
        /// `1 - β₂`.
        one_minus_beta_2: f32,
        /// Added to `√v`.
        epsilon: f32,
    },
}

/// The activation a fused [`Backend::linear`] applies: one whose derivative
/// is a function of its output, so the backward pass needs only the result
/// ([`Backend::activation_grad`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum LinearActivation {
    /// No activation.
    Identity,
    /// `max(x, 0)`, as [`UnaryOp::Relu`].
    Relu,
    /// `1 / (1 + e^-x)`, as [`UnaryOp::Sigmoid`].
    Sigmoid,
    /// `tanh(x)`, as [`UnaryOp::Tanh`].
    Tanh,
}

impl LinearActivation {
    /// The elementwise op applied after the bias, if any.
    pub fn unary(self) -> Option<UnaryOp> {
        match self {
            LinearActivation::Identity => None,
            LinearActivation::Relu => Some(UnaryOp::Relu),
            LinearActivation::Sigmoid => Some(UnaryOp::Sigmoid),
            LinearActivation::Tanh => Some(UnaryOp::Tanh),
        }
    }

    /// `g · f'(x)` computed from the output `y = f(x)`: the reference every
    /// [`Backend::activation_grad`] kernel must match bit for bit, and the
    /// backward rule of both `linear` and the unary relu, sigmoid and tanh:
    /// relu `g · [y > 0]`, sigmoid `g · (y · (1 - y))`, tanh `g · (1 - y²)`.
    #[inline(always)]
    pub fn grad(self, y: f32, g: f32) -> f32 {
        match self {
            LinearActivation::Identity => g,
            LinearActivation::Relu => g * if y > 0.0 { 1.0 } else { 0.0 },
            LinearActivation::Sigmoid => g * (y * (-y + 1.0)),
            LinearActivation::Tanh => g * (-(y * y) + 1.0),
        }
    }
}

impl FusedUpdate {
    /// How many slot buffers the update reads and writes.
    pub fn slots(&self) -> usize {
        match self {
            FusedUpdate::Sgd { .. } => 0,
            FusedUpdate::Momentum { .. } => 1,
            FusedUpdate::Adam { .. } => 2,
        }
    }

    /// The update of one element: the reference every fused kernel must
    /// match bit for bit (`slots` holds [`slots`](Self::slots) values).
    #[inline(always)]
    pub fn apply(&self, w: &mut f32, g: f32, slots: &mut [f32]) {
        match *self {
            FusedUpdate::Sgd { lr } => *w -= g * lr,
            FusedUpdate::Momentum { lr, momentum, nesterov } => {
                let m = slots[0] * momentum - g * lr;
                slots[0] = m;
                *w = if nesterov { *w + (m * momentum - g * lr) } else { *w + m };
            }
            FusedUpdate::Adam { alpha, one_minus_beta_1, one_minus_beta_2, epsilon } => {
                let m = slots[0] + (g - slots[0]) * one_minus_beta_1;
                let v = slots[1] + (g * g - slots[1]) * one_minus_beta_2;
                slots[0] = m;
                slots[1] = v;
                *w -= (m * alpha) / (v.sqrt() + epsilon);
            }
        }
    }
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

/// The forward kernels a backend provides.
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
    /// [`Error::IndexOutOfRange`].
    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage>;
    /// Returns `x` with `src` added at `indices` along `axis` (repeated indices
    /// accumulate): the adjoint of [`Backend::gather`].
    fn index_add(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage, src: &Storage) -> Result<Storage>;
    /// `cond != 0 ? on_true : on_false`, elementwise over equal-length storages.
    fn where_cond(&self, cond: &Storage, on_true: &Storage, on_false: &Storage) -> Result<Storage>;
    /// Converts to `dtype` (f32 → i64 truncates towards zero).
    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage>;

    /// Calls `f` once, on the thread where this backend's kernels run best
    /// (see [`Device::run`](crate::Device::run)). The default calls it here.
    fn run(&self, f: &mut (dyn FnMut() + Send)) {
        f()
    }

    /// The flat index of the first NaN or infinity in an `f32` storage, if
    /// any: the data check before training. The default downloads a copy;
    /// backends override it to scan in place.
    fn find_non_finite(&self, x: &Storage) -> Result<Option<usize>> {
        Ok(self.download_f32(x)?.iter().position(|v| !v.is_finite()))
    }

    /// Applies `update` to `param` in place, reading `grad` and updating
    /// `slots` (all `f32`, all of one length; `slots.len() ==
    /// update.slots()`), and returns `true` — or returns `false` without
    /// touching anything when the backend has no fused kernel for it, in
    /// which case the caller runs the same update as separate ops. The
    /// default has none.
    fn fused_update(
        &self,
        update: &FusedUpdate,
        param: &mut Storage,
        grad: &Storage,
        slots: &mut [&mut Storage],
    ) -> Result<bool> {
        let _ = (update, param, grad, slots);
        Ok(false)
    }

    /// `activation(x · w + b)` for a row-major `x` of `m × k`, `w` of `k × n`
    /// and an optional bias `b` of `n` (see [`LinearSpec`]): a Dense layer's
    /// forward pass in one call (`f32`). The default runs the matrix
    /// product, the broadcast add and the activation as three kernels; a
    /// backend may fuse the last two into the product's output pass.
    fn linear(&self, x: &Storage, w: &Storage, b: Option<&Storage>, spec: &LinearSpec) -> Result<Storage> {
        let LinearSpec { m, k, n, activation } = *spec;
        let matmul = MatmulSpec {
            batch: 1,
            m,
            n,
            k,
            trans_lhs: false,
            trans_rhs: false,
            lhs_batch_stride: 0,
            rhs_batch_stride: 0,
        };
        let mut y = self.matmul(x, w, &matmul)?;
        let out = Shape::from([m, n]);
        if let Some(b) = b {
            y = self.binary(BinaryOp::Add, &y, &out, b, &Shape::from([n]), &out)?;
        }
        match activation.unary() {
            Some(op) => self.unary(op, &y),
            None => Ok(y),
        }
    }

    /// `g · f'(x)` from the activation's output `y = f(x)` (equal-length
    /// `f32` storages of `shape`), as [`LinearActivation::grad`] computes
    /// it. The default composes elementwise ops.
    fn activation_grad(&self, act: LinearActivation, y: &Storage, g: &Storage, shape: &Shape) -> Result<Storage> {
        let mul = |a: &Storage, b: &Storage| self.binary(BinaryOp::Mul, a, shape, b, shape, shape);
        let one_minus = |a: &Storage| {
            let neg = self.binary_scalar(BinaryOp::Mul, a, shape, -1.0)?;
            self.binary_scalar(BinaryOp::Add, &neg, shape, 1.0)
        };
        match act {
            LinearActivation::Identity => self.binary_scalar(BinaryOp::Mul, g, shape, 1.0),
            LinearActivation::Relu => mul(g, &self.binary_scalar(BinaryOp::Gt, y, shape, 0.0)?),
            LinearActivation::Sigmoid => mul(g, &mul(y, &one_minus(y)?)?),
            LinearActivation::Tanh => mul(g, &one_minus(&mul(y, y)?)?),
        }
    }

    /// Per-row softmax cross-entropy from logits `z` of `shape` (`rows ×
    /// classes`, `f32`): `-Σ_j t_j · log_softmax(z)_j`, one value per row.
    /// `targets` is either `f32` probabilities of `shape` or `i64` class
    /// ids, one per row; an id outside `[0, classes)` gives 0, like a row
    /// of zeros. The default composes log-softmax and elementwise ops.
    fn softmax_cross_entropy(&self, z: &Storage, shape: &Shape, targets: &Storage) -> Result<Storage> {
        let (_, reduced) = rows_and_reduced(shape)?;
        let hot;
        let t = if targets.dtype() == DType::F32 {
            targets
        } else {
            hot = self.one_hot_rows(targets, shape)?;
            &hot
        };
        let log_p = self.log_softmax(z, shape)?;
        let prod = self.binary(BinaryOp::Mul, t, shape, &log_p, shape, shape)?;
        let sum = self.reduce(ReduceOp::Sum, &prod, shape, &[shape.rank() - 1])?;
        self.binary_scalar(BinaryOp::Mul, &sum, &reduced, -1.0)
    }

    /// The gradient of [`softmax_cross_entropy`](Self::softmax_cross_entropy)
    /// with respect to `z`, given `g`, the gradient of each row's loss:
    /// `g · (softmax(z) · Σ_j t_j - t)`.
    fn softmax_cross_entropy_grad(
        &self,
        z: &Storage,
        shape: &Shape,
        targets: &Storage,
        g: &Storage,
    ) -> Result<Storage> {
        let (_, reduced) = rows_and_reduced(shape)?;
        let hot;
        let t = if targets.dtype() == DType::F32 {
            targets
        } else {
            hot = self.one_hot_rows(targets, shape)?;
            &hot
        };
        let p = self.softmax(z, shape)?;
        let total = self.reduce(ReduceOp::Sum, t, shape, &[shape.rank() - 1])?;
        let scaled = self.binary(BinaryOp::Mul, &p, shape, &total, &reduced, shape)?;
        let diff = self.binary(BinaryOp::Sub, &scaled, shape, t, shape, shape)?;
        self.binary(BinaryOp::Mul, &diff, shape, g, &reduced, shape)
    }

    /// Helper for the cross-entropy defaults: `i64` class ids, one per row
    /// of `shape`, as `f32` one-hot rows (zeros for an id outside the
    /// classes).
    #[doc(hidden)]
    fn one_hot_rows(&self, targets: &Storage, shape: &Shape) -> Result<Storage> {
        let (rows, _) = rows_and_reduced(shape)?;
        let classes = shape.dims()[shape.rank() - 1];
        let ids = Shape::from([rows, 1]);
        let range = self.upload_i64((0..classes as i64).collect())?;
        let flat = Shape::from([rows, classes]);
        let hot = self.binary(BinaryOp::Eq, targets, &ids, &range, &Shape::from([1, classes]), &flat)?;
        self.cast(&hot, DType::F32)
    }

    /// Elementwise `op(x, scalar)`. The default broadcasts a one-element storage.
    fn binary_scalar(&self, op: BinaryOp, x: &Storage, shape: &Shape, scalar: f64) -> Result<Storage> {
        let s = self.full(scalar, 1, x.dtype())?;
        self.binary(op, x, shape, &s, &Shape::scalar(), shape)
    }

    /// Softmax over the last axis, numerically stable. The default is built
    /// from primitives: `exp(x - max) / sum(exp(x - max))`.
    fn softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let (shifted, reduced) = self.shift_by_max(x, shape)?;
        let e = self.unary(UnaryOp::Exp, &shifted)?;
        let s = self.reduce(ReduceOp::Sum, &e, shape, &[shape.rank() - 1])?;
        self.binary(BinaryOp::Div, &e, shape, &s, &reduced, shape)
    }

    /// Log-softmax over the last axis: `x - max - ln(sum(exp(x - max)))`.
    fn log_softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let (shifted, reduced) = self.shift_by_max(x, shape)?;
        let e = self.unary(UnaryOp::Exp, &shifted)?;
        let s = self.reduce(ReduceOp::Sum, &e, shape, &[shape.rank() - 1])?;
        let l = self.unary(UnaryOp::Log, &s)?;
        self.binary(BinaryOp::Sub, &shifted, shape, &l, &reduced, shape)
    }

    /// Helper for the softmax defaults: `x - max(x, last axis)` and the reduced shape.
    #[doc(hidden)]
    fn shift_by_max(&self, x: &Storage, shape: &Shape) -> Result<(Storage, Shape)> {
        let last = shape.rank().checked_sub(1).ok_or_else(|| Error::InvalidShape {
            op: "softmax",
            shape: shape.clone(),
            reason: "needs at least one axis".into(),
        })?;
        let m = self.reduce(ReduceOp::Max, x, shape, &[last])?;
        let mut reduced = shape.dims().to_vec();
        reduced[last] = 1;
        let reduced = Shape::from(reduced);
        let shifted = self.binary(BinaryOp::Sub, x, shape, &m, &reduced, shape)?;
        Ok((shifted, reduced))
    }
}

/// `(rows, shape with its last axis as 1)` for the cross-entropy kernels.
fn rows_and_reduced(shape: &Shape) -> Result<(usize, Shape)> {
    let last = shape.rank().checked_sub(1).ok_or_else(|| Error::InvalidShape {
        op: "softmax_cross_entropy",
        shape: shape.clone(),
        reason: "needs a class axis".into(),
    })?;
    let mut reduced = shape.dims().to_vec();
    reduced[last] = 1;
    let rows = shape.dims()[..last].iter().product();
    Ok((rows, Shape::from(reduced)))
}

/// The error function in `f64` (Abramowitz–Stegun 7.1.26 refined by one
/// Newton step is not needed: this is W. J. Cody's rational approximation,
/// accurate to ~1e-15), used by [`UnaryOp::reference`].
pub(crate) fn erf_f64(x: f64) -> f64 {
    // erf(x) = 1 - erfc(x); erfc via a continued-fraction-free series split.
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

/// `erfc(x)` for `x >= 0.5` by Lentz's continued fraction.
fn erfc_cf(x: f64) -> f64 {
    // erfc(x) = exp(-x^2)/sqrt(pi) * 1/(x + 1/2/(x + 1/(x + 3/2/(x + ...))))
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
