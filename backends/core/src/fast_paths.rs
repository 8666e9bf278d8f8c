//! The second half of the backend contract: fast paths, each with a
//! default built from the [`Backend`] primitives.
//!
//! A backend is complete once it implements [`Backend`]: the conformance
//! suite (`strata-conformance`) checks the primitives, and through the
//! defaults here every fused op as well. `impl FastPaths for MyBackend {}`
//! then gives a working device. Override a method only for speed — a fused
//! kernel, a scan in place, a better thread to run a step on — and keep the
//! numbers: where a method documents a reference (the derivative rule
//! [`LinearActivation::grad`], [`FusedUpdate::apply`]), an override must
//! match it bit for bit.

use crate::{
    Backend, BinaryOp, DType, Error, GruGrads, GruSpec, LstmGrads, LstmSpec, MatmulSpec, ReduceOp, Result, Shape,
    Storage, UnaryOp, UnfoldSpec,
};

/// The sizes and activation of a [`FastPaths::linear`]: `x` is `m × k`, `w`
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

/// A convolution for [`FastPaths::conv`] and its two gradients: the
/// patches `window` takes from a channels-last image (padding reads 0),
/// each times a kernel matrix of `window.patch_len() × filters` whose rows
/// follow the patch order (kernel offsets, then channels: Keras' kernel
/// layout `[k_1, .., k_d, channels, filters]` flattened), then the bias and
/// `activation`.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvSpec {
    /// The window over the image; its `pad_value` is 0.
    pub window: UnfoldSpec,
    /// Columns of the kernel matrix and of the output; the bias's length.
    pub filters: usize,
    /// Applied after the bias.
    pub activation: LinearActivation,
}

impl ConvSpec {
    /// The matrix product a convolution is: `positions × patch_len`
    /// patches times `patch_len × filters`.
    pub fn linear_spec(&self) -> LinearSpec {
        LinearSpec {
            m: self.window.positions(),
            k: self.window.patch_len(),
            n: self.filters,
            activation: self.activation,
        }
    }

    /// `[batch, o_1, .., o_d, filters]`: the output's shape.
    pub fn output_shape(&self) -> Shape {
        let mut dims = self.window.pooled_shape().dims().to_vec();
        if let Some(last) = dims.last_mut() {
            *last = self.filters;
        }
        Shape::new(dims)
    }
}

/// An optimizer step that a backend may apply in place, in one pass over
/// the weight, its gradient and its slots (see [`FastPaths::fused_update`]).
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

/// The activation a fused [`FastPaths::linear`] applies: one whose derivative
/// is a function of its output, so the backward pass needs only the result
/// (the rule is [`LinearActivation::grad`]; the kernel
/// [`FastPaths::activation_grad`]).
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

/// The second half of the backend contract: fused and composite kernels,
/// each with a default built from the [`Backend`] primitives. Override a
/// method only for speed.
///
/// [`Device`](crate::Device) holds a backend as a `dyn FastPaths`, so every
/// backend implements this trait, if only as `impl FastPaths for MyBackend {}`:
/// a backend whose primitives pass the conformance suite then runs every op,
/// fused ones included, through these defaults. An override — a fused
/// kernel, a scan in place, a better thread to run a step on — must keep the
/// numbers: where a method names a reference (the derivative rule
/// [`LinearActivation::grad`], [`FusedUpdate::apply`]) it matches it bit for
/// bit, and the conformance suite checks every method against the same
/// expectations as the defaults.
pub trait FastPaths: Backend {
    /// Calls `f` once, on the thread where this backend's kernels run best
    /// (see [`Device::run`](crate::Device::run)). The default calls it here.
    fn run(&self, f: &mut (dyn FnMut() + Send)) {
        f()
    }

    /// The flat index of the first NaN or infinity in an `f32` storage, if
    /// any: the data check before training. The default downloads a copy;
    /// backends override it to scan in place.
    fn find_non_finite(&self, x: &Storage) -> Result<Option<usize>> {
        Ok(defaults::first_non_finite(&self.download_f32(x)?))
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

    /// A convolution, `activation(unfold(x) · w + b)` as [`ConvSpec`]
    /// describes it (`f32`): `x` is the image, `w` the kernel matrix
    /// (`patch_len × filters`), `b` an optional bias of `filters`; the
    /// result is `positions × filters`, row-major (the output image). The
    /// default unfolds the whole batch and calls [`linear`](Self::linear);
    /// a backend may instead unfold a few rows at a time into a small
    /// buffer and multiply each band as it goes.
    fn conv(&self, x: &Storage, w: &Storage, b: Option<&Storage>, spec: &ConvSpec) -> Result<Storage> {
        defaults::conv(self, x, w, b, spec)
    }

    /// The gradient of a [`conv`](Self::conv) with respect to its image,
    /// from `g`, the gradient of its output before the activation
    /// (`positions × filters`): `fold(g · wᵀ)`. The default runs that product
    /// and [`fold`](Backend::fold).
    fn conv_input_grad(&self, g: &Storage, w: &Storage, spec: &ConvSpec) -> Result<Storage> {
        defaults::conv_input_grad(self, g, w, spec)
    }

    /// The gradient of a [`conv`](Self::conv) with respect to its kernel
    /// matrix, from the image `x` and `g` as in
    /// [`conv_input_grad`](Self::conv_input_grad): `unfold(x)ᵀ · g`,
    /// `patch_len × filters`. The default unfolds the whole batch.
    fn conv_kernel_grad(&self, x: &Storage, g: &Storage, spec: &ConvSpec) -> Result<Storage> {
        defaults::conv_kernel_grad(self, x, g, spec)
    }

    /// Max pooling: the largest value of each window `spec` takes from the
    /// channels-last image `x` (`f32`), per channel, giving
    /// `spec.pooled_shape()`; padding cells never win (they read `-∞`,
    /// whatever `spec.pad_value` says). The default unfolds and reduces.
    fn max_pool(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        defaults::max_pool(self, x, spec)
    }

    /// The gradient of [`max_pool`](Self::max_pool) with respect to `x`,
    /// given `g` (`spec.pooled_shape()`): each window's gradient goes to the
    /// first cell holding its maximum, in window order (outer kernel offsets
    /// first), as Keras' backends do; overlapping windows add up. The
    /// default finds the cells with an arg-max over the unfolded windows.
    fn max_pool_grad(&self, x: &Storage, g: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        defaults::max_pool_grad(self, x, g, spec)
    }

    /// The whole recurrence of an LSTM layer as [`LstmSpec`] describes it:
    /// every step's states `h`, `c` (`spec.states_shape()`) and activated
    /// gates (`spec.gates_shape()`, kept for [`lstm_grad`](Self::lstm_grad);
    /// may be empty unless `spec.keep_gates`).
    /// A row whose `mask` is 0 at a step keeps its states. The default runs
    /// each step as a matrix product and elementwise kernels; a backend may
    /// fuse each step's gate arithmetic into one pass.
    fn lstm(
        &self,
        xw: &Storage,
        u: &Storage,
        h0: &Storage,
        c0: &Storage,
        mask: Option<&Storage>,
        spec: &LstmSpec,
    ) -> Result<(Storage, Storage)> {
        crate::recurrence::lstm(self, xw, u, h0, c0, mask, spec)
    }

    /// The gradients of an [`lstm`](Self::lstm) with respect to `xw`, `u`,
    /// `h0` and `c0` from `dy`, the gradient of its states
    /// (`spec.states_shape()`), given its `states` and `gates`.
    #[allow(clippy::too_many_arguments)]
    fn lstm_grad(
        &self,
        dy: &Storage,
        u: &Storage,
        h0: &Storage,
        c0: &Storage,
        mask: Option<&Storage>,
        states: &Storage,
        gates: &Storage,
        spec: &LstmSpec,
    ) -> Result<LstmGrads> {
        crate::recurrence::lstm_grad(self, dy, u, h0, c0, mask, states, gates, spec)
    }

    /// The whole recurrence of a GRU layer (`reset_after`) as [`GruSpec`]
    /// describes it: every step's state (`spec.states_shape()`) and the
    /// gate values its gradient needs (`spec.gates_shape()`, kept for
    /// [`gru_grad`](Self::gru_grad); may be empty unless
    /// `spec.keep_gates`). A row whose `mask` is 0 at a step keeps its
    /// state. The default runs each step as a matrix product and
    /// elementwise kernels; a backend may fuse each step's gate arithmetic
    /// into one pass.
    #[allow(clippy::too_many_arguments)]
    fn gru(
        &self,
        xw: &Storage,
        u: &Storage,
        b: Option<&Storage>,
        h0: &Storage,
        mask: Option<&Storage>,
        spec: &GruSpec,
    ) -> Result<(Storage, Storage)> {
        crate::recurrence::gru(self, xw, u, b, h0, mask, spec)
    }

    /// The gradients of a [`gru`](Self::gru) with respect to `xw`, `u`,
    /// the recurrent bias and `h0` from `dy`, the gradient of its states
    /// (`spec.states_shape()`), given its `states` and `gates`.
    #[allow(clippy::too_many_arguments)]
    fn gru_grad(
        &self,
        dy: &Storage,
        u: &Storage,
        h0: &Storage,
        mask: Option<&Storage>,
        states: &Storage,
        gates: &Storage,
        spec: &GruSpec,
    ) -> Result<GruGrads> {
        crate::recurrence::gru_grad(self, dy, u, h0, mask, states, gates, spec)
    }

    /// `g · f'(x)` from the activation's output `y = f(x)` (equal-length
    /// `f32` storages of `shape`), as the derivative rule
    /// [`LinearActivation::grad`] computes it. The default evaluates that
    /// same rule with elementwise kernels, one op per step of the formula.
    fn activation_grad(&self, act: LinearActivation, y: &Storage, g: &Storage, shape: &Shape) -> Result<Storage> {
        crate::backprop::activation_grad_rule(&StorageOps { backend: self, shape }, act, y, g)
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
            hot = one_hot_rows(self, targets, shape)?;
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
            hot = one_hot_rows(self, targets, shape)?;
            &hot
        };
        let p = self.softmax(z, shape)?;
        let total = self.reduce(ReduceOp::Sum, t, shape, &[shape.rank() - 1])?;
        let scaled = self.binary(BinaryOp::Mul, &p, shape, &total, &reduced, shape)?;
        let diff = self.binary(BinaryOp::Sub, &scaled, shape, t, shape, shape)?;
        self.binary(BinaryOp::Mul, &diff, shape, g, &reduced, shape)
    }

    /// Elementwise `op(x, scalar)`. The default broadcasts a one-element storage.
    fn binary_scalar(&self, op: BinaryOp, x: &Storage, shape: &Shape, scalar: f64) -> Result<Storage> {
        let s = self.full(scalar, 1, x.dtype())?;
        self.binary(op, x, shape, &s, &Shape::scalar(), shape)
    }

    /// Softmax over the last axis, numerically stable. The default is built
    /// from primitives: `exp(x - max) / sum(exp(x - max))`.
    fn softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let (shifted, reduced) = shift_by_max(self, x, shape)?;
        let e = self.unary(UnaryOp::Exp, &shifted)?;
        let s = self.reduce(ReduceOp::Sum, &e, shape, &[shape.rank() - 1])?;
        self.binary(BinaryOp::Div, &e, shape, &s, &reduced, shape)
    }

    /// Log-softmax over the last axis: `x - max - ln(sum(exp(x - max)))`.
    fn log_softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        let (shifted, reduced) = shift_by_max(self, x, shape)?;
        let e = self.unary(UnaryOp::Exp, &shifted)?;
        let s = self.reduce(ReduceOp::Sum, &e, shape, &[shape.rank() - 1])?;
        let l = self.unary(UnaryOp::Log, &s)?;
        self.binary(BinaryOp::Sub, &shifted, shape, &l, &reduced, shape)
    }
}

/// The [`FastPaths`] defaults of the window ops as free functions, so a
/// backend that overrides one for the cases its own kernels cover can fall
/// back to the default for the rest.
pub mod defaults {
    use super::*;
    pub use crate::recurrence::{gru, gru_grad, lstm, lstm_grad};

    /// `max(a, b)`, NaN if either is NaN (NumPy's, JAX's and Keras'
    /// `maximum`; `f32::max` returns the other operand instead).
    #[inline(always)]
    pub fn maximum(a: f32, b: f32) -> f32 {
        if a > b || a.is_nan() {
            a
        } else {
            b
        }
    }

    /// `min(a, b)`, NaN if either is NaN (as [`maximum`]).
    #[inline(always)]
    pub fn minimum(a: f32, b: f32) -> f32 {
        if a < b || a.is_nan() {
            a
        } else {
            b
        }
    }

    /// The index of the first NaN or infinity in `values`, if any.
    ///
    /// Blocks of 256 are tested without a branch per element (an
    /// exponent-all-ones test the compiler vectorizes), and only a block
    /// that holds one is searched: about 15x faster than
    /// `iter().position(|v| !v.is_finite())` on a clean buffer.
    pub fn first_non_finite(values: &[f32]) -> Option<usize> {
        const BLOCK: usize = 256;
        const EXPONENT: u32 = 0x7f80_0000;
        values.chunks(BLOCK).enumerate().find_map(|(b, block)| {
            let any = block.iter().fold(0u32, |acc, v| acc | u32::from(v.to_bits() & EXPONENT == EXPONENT));
            if any == 0 {
                return None;
            }
            block.iter().position(|v| !v.is_finite()).map(|i| b * BLOCK + i)
        })
    }

    /// The default [`FastPaths::conv`]: [`Backend::unfold`], then [`FastPaths::linear`].
    pub fn conv<B: FastPaths + ?Sized>(
        backend: &B,
        x: &Storage,
        w: &Storage,
        b: Option<&Storage>,
        spec: &ConvSpec,
    ) -> Result<Storage> {
        let cols = backend.unfold(x, &spec.window)?;
        backend.linear(&cols, w, b, &spec.linear_spec())
    }

    /// The default [`FastPaths::conv_input_grad`]: a matrix product, then [`Backend::fold`].
    pub fn conv_input_grad<B: Backend + ?Sized>(
        backend: &B,
        g: &Storage,
        w: &Storage,
        spec: &ConvSpec,
    ) -> Result<Storage> {
        let LinearSpec { m, k, n, .. } = spec.linear_spec();
        let product = MatmulSpec {
            batch: 1,
            m,
            n: k,
            k: n,
            trans_lhs: false,
            trans_rhs: true,
            lhs_batch_stride: 0,
            rhs_batch_stride: 0,
        };
        let cols = backend.matmul(g, w, &product)?;
        backend.fold(&cols, &spec.window)
    }

    /// The default [`FastPaths::conv_kernel_grad`]: [`Backend::unfold`], then a matrix product.
    pub fn conv_kernel_grad<B: Backend + ?Sized>(
        backend: &B,
        x: &Storage,
        g: &Storage,
        spec: &ConvSpec,
    ) -> Result<Storage> {
        let LinearSpec { m, k, n, .. } = spec.linear_spec();
        let cols = backend.unfold(x, &spec.window)?;
        let product = MatmulSpec {
            batch: 1,
            m: k,
            n,
            k: m,
            trans_lhs: true,
            trans_rhs: false,
            lhs_batch_stride: 0,
            rhs_batch_stride: 0,
        };
        backend.matmul(&cols, g, &product)
    }

    /// The default [`FastPaths::max_pool`]: [`Backend::unfold`] with `-∞` padding, then a maximum.
    pub fn max_pool<B: Backend + ?Sized>(backend: &B, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        let spec = UnfoldSpec { pad_value: f64::NEG_INFINITY, ..spec.clone() };
        let cols = backend.unfold(x, &spec)?;
        let (positions, taps) = (spec.positions(), spec.patch_len() / spec.channels.max(1));
        let shape = Shape::from([positions, taps, spec.channels]);
        backend.reduce(ReduceOp::Max, &cols, &shape, &[1])
    }

    /// The default [`FastPaths::max_pool_grad`]: an arg-max over the unfolded windows, one-hot, [`Backend::fold`].
    pub fn max_pool_grad<B: Backend + ?Sized>(
        backend: &B,
        x: &Storage,
        g: &Storage,
        spec: &UnfoldSpec,
    ) -> Result<Storage> {
        let spec = UnfoldSpec { pad_value: f64::NEG_INFINITY, ..spec.clone() };
        let cols = backend.unfold(x, &spec)?;
        let (positions, c) = (spec.positions(), spec.channels);
        let taps = spec.patch_len() / c.max(1);
        let windows = Shape::from([positions, taps, c]);
        let best = backend.reduce(ReduceOp::ArgMax, &cols, &windows, &[1])?;
        let range = backend.upload_i64((0..taps as i64).collect())?;
        let at = Shape::from([positions, 1, c]);
        let hot = backend.binary(BinaryOp::Eq, &best, &at, &range, &Shape::from([1, taps, 1]), &windows)?;
        let hot = backend.cast(&hot, DType::F32)?;
        let spread = backend.binary(BinaryOp::Mul, &hot, &windows, g, &at, &windows)?;
        backend.fold(&spread, &spec)
    }
}

/// For the cross-entropy defaults: `i64` class ids, one per row of
/// `shape`, as `f32` one-hot rows (zeros for an id outside the classes).
fn one_hot_rows<B: Backend + ?Sized>(backend: &B, targets: &Storage, shape: &Shape) -> Result<Storage> {
    let (rows, _) = rows_and_reduced(shape)?;
    let classes = shape.dims()[shape.rank() - 1];
    let ids = Shape::from([rows, 1]);
    let range = backend.upload_i64((0..classes as i64).collect())?;
    let flat = Shape::from([rows, classes]);
    let hot = backend.binary(BinaryOp::Eq, targets, &ids, &range, &Shape::from([1, classes]), &flat)?;
    backend.cast(&hot, DType::F32)
}

/// For the softmax defaults: `x - max(x, last axis)` and the reduced shape.
fn shift_by_max<B: Backend + ?Sized>(backend: &B, x: &Storage, shape: &Shape) -> Result<(Storage, Shape)> {
    let last = shape.rank().checked_sub(1).ok_or_else(|| Error::InvalidShape {
        op: "softmax",
        shape: shape.clone(),
        reason: "needs at least one axis".into(),
    })?;
    let m = backend.reduce(ReduceOp::Max, x, shape, &[last])?;
    let mut reduced = shape.dims().to_vec();
    reduced[last] = 1;
    let reduced = Shape::from(reduced);
    let shifted = backend.binary(BinaryOp::Sub, x, shape, &m, &reduced, shape)?;
    Ok((shifted, reduced))
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

/// The elementwise steps of a derivative rule as kernels of `backend` on
/// storages of `shape`: how the default [`FastPaths::activation_grad`]
/// evaluates [`LinearActivation::grad`].
struct StorageOps<'a, B: ?Sized> {
    backend: &'a B,
    shape: &'a Shape,
}

impl<B: FastPaths + ?Sized> crate::backprop::RuleOps for StorageOps<'_, B> {
    type Value = Storage;
    type Error = Error;

    fn copy(&self, a: &Storage) -> Result<Storage> {
        self.backend.binary_scalar(BinaryOp::Mul, a, self.shape, 1.0)
    }

    fn mul(&self, a: &Storage, b: &Storage) -> Result<Storage> {
        self.backend.binary(BinaryOp::Mul, a, self.shape, b, self.shape, self.shape)
    }

    fn one_minus(&self, a: &Storage) -> Result<Storage> {
        let neg = self.backend.binary_scalar(BinaryOp::Mul, a, self.shape, -1.0)?;
        self.backend.binary_scalar(BinaryOp::Add, &neg, self.shape, 1.0)
    }

    fn positive(&self, a: &Storage) -> Result<Storage> {
        self.backend.binary_scalar(BinaryOp::Gt, a, self.shape, 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::defaults::first_non_finite;

    #[test]
    fn first_non_finite_agrees_with_a_plain_search() {
        let specials = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -f32::NAN];
        // Finite extremes that share bits with the exponent test's mask.
        let finite = [f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -0.0, 0.0, 1.0];
        for n in [0usize, 1, 255, 256, 257, 1000] {
            let clean: Vec<f32> = (0..n).map(|i| finite[i % finite.len()]).collect();
            assert_eq!(first_non_finite(&clean), None, "clean buffer of {n}");
            for at in [0, n / 3, n.saturating_sub(1)].into_iter().filter(|&a| a < n) {
                for (k, &s) in specials.iter().enumerate() {
                    let mut v = clean.clone();
                    v[at] = s;
                    if at + 300 < n {
                        v[at + 300] = specials[(k + 1) % specials.len()];
                    }
                    assert_eq!(first_non_finite(&v), v.iter().position(|x| !x.is_finite()), "{s} at {at} of {n}");
                }
            }
        }
    }
}
