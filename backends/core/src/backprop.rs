//! Reverse-mode autodiff, written once above the backends.
//!
//! Every op that involves a tensor needing gradients records an [`Op`] naming
//! its inputs. [`Tensor::backward`] sorts the recorded graph topologically and
//! applies each op's backward rule, written in terms of ordinary tensor ops,
//! so every backend shares one tested gradient implementation and only
//! supplies forward kernels.
//!
//! Derivative rules that a backend may also run as a fused kernel (relu,
//! sigmoid and tanh from their outputs, [`LinearActivation::grad`]) are
//! stated here once, over [`RuleOps`]: evaluated on `f32` values they are
//! the reference a fused kernel matches, and the default kernel
//! ([`FastPaths::activation_grad`](crate::FastPaths::activation_grad))
//! evaluates the same formula with elementwise backend ops.

use std::cell::Cell;
use std::collections::{HashMap, HashSet};

use crate::{
    BinaryOp, ConvSpec, DType, Error, GruSpec, LinearActivation, LstmSpec, ReduceOp, Result, Shape, Tensor, TensorId,
    UnaryOp, UnfoldSpec,
};

/// The elementwise steps derivative rules are written in: implemented for
/// `f32` values (the reference) and, in the backend defaults, for storages.
pub(crate) trait RuleOps {
    /// A value: an `f32`, or a whole storage.
    type Value;
    /// What a step can fail with.
    type Error;
    /// `a`, as a value of its own.
    fn copy(&self, a: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `a · b`.
    fn mul(&self, a: &Self::Value, b: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `-a + 1`.
    fn one_minus(&self, a: &Self::Value) -> Result<Self::Value, Self::Error>;
    /// `1` where `a > 0`, else `0`.
    fn positive(&self, a: &Self::Value) -> Result<Self::Value, Self::Error>;
}

/// The derivative rule of the activations whose derivative is a function of
/// their output: `g · f'(x)` from `y = f(x)` — identity `g`, relu
/// `g · [y > 0]`, sigmoid `g · (y · (1 - y))`, tanh `g · (1 - y²)`.
#[inline(always)]
pub(crate) fn activation_grad_rule<O: RuleOps>(
    ops: &O,
    act: LinearActivation,
    y: &O::Value,
    g: &O::Value,
) -> Result<O::Value, O::Error> {
    match act {
        LinearActivation::Identity => ops.copy(g),
        LinearActivation::Relu => ops.mul(g, &ops.positive(y)?),
        LinearActivation::Sigmoid => ops.mul(g, &ops.mul(y, &ops.one_minus(y)?)?),
        LinearActivation::Tanh => ops.mul(g, &ops.one_minus(&ops.mul(y, y)?)?),
    }
}

/// [`RuleOps`] on single `f32` values: the reference arithmetic.
struct ScalarOps;

impl RuleOps for ScalarOps {
    type Value = f32;
    type Error = std::convert::Infallible;

    #[inline(always)]
    fn copy(&self, a: &f32) -> Result<f32, Self::Error> {
        Ok(*a)
    }

    #[inline(always)]
    fn mul(&self, a: &f32, b: &f32) -> Result<f32, Self::Error> {
        Ok(a * b)
    }

    #[inline(always)]
    fn one_minus(&self, a: &f32) -> Result<f32, Self::Error> {
        Ok(-a + 1.0)
    }

    #[inline(always)]
    fn positive(&self, a: &f32) -> Result<f32, Self::Error> {
        Ok(if *a > 0.0 { 1.0 } else { 0.0 })
    }
}

impl LinearActivation {
    /// `g · f'(x)` computed from the output `y = f(x)`: the backward rule of
    /// both `linear` and the unary relu, sigmoid and tanh — relu
    /// `g · [y > 0]`, sigmoid `g · (y · (1 - y))`, tanh `g · (1 - y²)` —
    /// and the reference every
    /// [`FastPaths::activation_grad`](crate::FastPaths::activation_grad)
    /// kernel must match bit for bit.
    #[inline(always)]
    pub fn grad(self, y: f32, g: f32) -> f32 {
        match activation_grad_rule(&ScalarOps, self, &y, &g) {
            Ok(v) => v,
            Err(never) => match never {},
        }
    }
}

/// How a tensor was computed: the op and its inputs.
#[derive(Clone)]
pub(crate) enum Op {
    Unary(UnaryOp, Tensor),
    Binary(BinaryOp, Tensor, Tensor),
    BinaryScalar(BinaryOp, Tensor, f64),
    Reduce(ReduceOp, Tensor, Vec<usize>),
    Matmul {
        lhs: Tensor,
        rhs: Tensor,
        trans_lhs: bool,
        trans_rhs: bool,
    },
    Reshape(Tensor),
    Permute(Tensor, Vec<usize>),
    Broadcast(Tensor),
    Narrow(Tensor, usize, usize),
    Concat(Vec<Tensor>, usize),
    Gather(Tensor, Tensor, usize),
    IndexAdd(Tensor, Tensor, Tensor, usize),
    Where(Tensor, Tensor, Tensor),
    Softmax(Tensor),
    LogSoftmax(Tensor),
    Linear {
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        act: LinearActivation,
    },
    SoftmaxCrossEntropy(Tensor, Tensor),
    Unfold(Tensor, Box<UnfoldSpec>),
    Fold(Tensor, Box<UnfoldSpec>),
    Conv {
        x: Tensor,
        w: Tensor,
        b: Option<Tensor>,
        spec: Box<ConvSpec>,
    },
    MaxPool(Tensor, Box<UnfoldSpec>),
    /// The fused recurrence; `gates` is its second result, kept for the gradient.
    Lstm {
        xw: Tensor,
        u: Tensor,
        h0: Tensor,
        c0: Tensor,
        mask: Option<Tensor>,
        gates: Tensor,
        spec: LstmSpec,
    },
    /// The fused GRU recurrence; `gates` is its second result, kept for the gradient.
    Gru {
        xw: Tensor,
        u: Tensor,
        b: Option<Tensor>,
        h0: Tensor,
        mask: Option<Tensor>,
        gates: Tensor,
        spec: GruSpec,
    },
}

impl Op {
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Op::Unary(op, _) => op.name(),
            Op::Binary(op, _, _) | Op::BinaryScalar(op, _, _) => op.name(),
            Op::Reduce(op, _, _) => op.name(),
            Op::Matmul { .. } => "matmul",
            Op::Reshape(_) => "reshape",
            Op::Permute(..) => "permute",
            Op::Broadcast(_) => "broadcast_to",
            Op::Narrow(..) => "narrow",
            Op::Concat(..) => "concat",
            Op::Gather(..) => "gather",
            Op::IndexAdd(..) => "index_add",
            Op::Where(..) => "where",
            Op::Softmax(_) => "softmax",
            Op::LogSoftmax(_) => "log_softmax",
            Op::Linear { .. } => "linear",
            Op::SoftmaxCrossEntropy(..) => "softmax_cross_entropy",
            Op::Unfold(..) => "unfold",
            Op::Fold(..) => "fold",
            Op::Conv { .. } => "conv",
            Op::MaxPool(..) => "max_pool",
            Op::Lstm { .. } => "lstm",
            Op::Gru { .. } => "gru",
        }
    }

    /// The inputs gradients can flow to.
    fn inputs(&self) -> Vec<&Tensor> {
        match self {
            Op::Unary(_, x)
            | Op::BinaryScalar(_, x, _)
            | Op::Reduce(_, x, _)
            | Op::Reshape(x)
            | Op::Permute(x, _)
            | Op::Broadcast(x)
            | Op::Narrow(x, _, _)
            | Op::Gather(x, _, _)
            | Op::Softmax(x)
            | Op::LogSoftmax(x)
            | Op::SoftmaxCrossEntropy(x, _)
            | Op::Unfold(x, _)
            | Op::Fold(x, _)
            | Op::MaxPool(x, _) => vec![x],
            Op::Linear { x, w, b, .. } | Op::Conv { x, w, b, .. } => [x, w].into_iter().chain(b).collect(),
            Op::Binary(_, a, b) | Op::Matmul { lhs: a, rhs: b, .. } | Op::IndexAdd(a, _, b, _) | Op::Where(_, a, b) => {
                vec![a, b]
            }
            Op::Concat(xs, _) => xs.iter().collect(),
            Op::Lstm { xw, u, h0, c0, .. } => vec![xw, u, h0, c0],
            Op::Gru { xw, u, b, h0, .. } => [xw, u, h0].into_iter().chain(b).collect(),
        }
    }
}

thread_local! {
    static GRAD_ENABLED: Cell<bool> = const { Cell::new(true) };
}

/// Whether ops on this thread are being recorded for autodiff.
pub fn grad_enabled() -> bool {
    GRAD_ENABLED.with(|g| g.get())
}

/// Disables recording on this thread until dropped (restores the previous state).
#[must_use = "recording resumes as soon as the guard is dropped"]
pub struct NoGradGuard {
    previous: bool,
}

impl NoGradGuard {
    /// Stops recording until the guard is dropped.
    pub fn new() -> Self {
        NoGradGuard { previous: GRAD_ENABLED.with(|g| g.replace(false)) }
    }
}

impl Default for NoGradGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoGradGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Sets whether ops are recorded on this thread until dropped (restores the
/// previous state): carries the caller's mode onto a worker thread.
pub(crate) struct GradModeGuard {
    previous: bool,
}

impl GradModeGuard {
    pub(crate) fn set(enabled: bool) -> Self {
        GradModeGuard { previous: GRAD_ENABLED.with(|g| g.replace(enabled)) }
    }
}

impl Drop for GradModeGuard {
    fn drop(&mut self) {
        GRAD_ENABLED.with(|g| g.set(self.previous));
    }
}

/// Runs `f` without recording any op: for inference and parameter updates.
///
/// ```
/// # use strata_core::{Tensor, DType};
/// # let dev = strata_native::device();
/// let w = Tensor::ones([2], DType::F32, &dev).unwrap().to_variable().unwrap();
/// let y = strata_core::no_grad(|| w.mul_scalar(3.0)).unwrap();
/// assert!(!y.requires_grad());
/// ```
pub fn no_grad<R>(f: impl FnOnce() -> R) -> R {
    let _guard = NoGradGuard::new();
    f()
}

/// Gradients of a scalar with respect to the variables it depends on.
#[derive(Clone, Default)]
pub struct Gradients(HashMap<TensorId, Tensor>);

impl Gradients {
    /// The gradient for `variable`, if the loss depends on it.
    pub fn get(&self, variable: &Tensor) -> Option<&Tensor> {
        self.0.get(&variable.id())
    }

    /// Takes the gradient for `variable` out.
    pub fn remove(&mut self, variable: &Tensor) -> Option<Tensor> {
        self.0.remove(&variable.id())
    }

    /// Sets the gradient for `variable` (e.g. after clipping).
    pub fn insert(&mut self, variable: &Tensor, grad: Tensor) {
        self.0.insert(variable.id(), grad);
    }

    /// Number of gradients held.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no gradient is held.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Tensor {
    /// Gradients of this one-element `f32` tensor with respect to every
    /// variable it depends on ([`Tensor::to_variable`]).
    ///
    /// A variable used several times receives the sum of its contributions;
    /// broadcast operands receive gradients summed back to their own shape.
    /// Nothing is recorded while the gradients are computed.
    pub fn backward(&self) -> Result<Gradients> {
        if self.numel() != 1 {
            return Err(Error::Autodiff(format!(
                "needs a one-element loss, received shape {}; reduce it first (e.g. mean_all)",
                self.shape()
            )));
        }
        if self.dtype() != DType::F32 {
            return Err(Error::Autodiff(format!("needs an f32 loss, received {}", self.dtype())));
        }
        if !self.requires_grad() {
            return Err(Error::Autodiff(
                "the loss depends on no variable (was it computed under no_grad, or from detached tensors?)".into(),
            ));
        }
        let _guard = NoGradGuard::new();
        let order = topo_order(self);
        let mut grads: HashMap<TensorId, Tensor> = HashMap::new();
        grads.insert(self.id(), self.ones_like()?);
        let mut result = HashMap::new();
        for node in order.iter().rev() {
            let Some(grad) = grads.remove(&node.id()) else {
                continue;
            };
            let Some(op) = node.op() else {
                if node.is_variable() {
                    result.insert(node.id(), grad);
                }
                continue;
            };
            for (input, g) in input_grads(op, node, &grad)? {
                if !input.requires_grad() {
                    continue;
                }
                debug_assert_eq!(g.shape(), input.shape(), "gradient of {} has the wrong shape", op.name());
                match grads.remove(&input.id()) {
                    Some(prev) => grads.insert(input.id(), prev.add(&g)?),
                    None => grads.insert(input.id(), g),
                };
            }
        }
        Ok(Gradients(result))
    }
}

/// Nodes that need gradients, each after all of its inputs (iterative DFS, so
/// deep graphs cannot overflow the stack).
fn topo_order(root: &Tensor) -> Vec<Tensor> {
    let mut order = Vec::new();
    let mut seen = HashSet::new();
    let mut stack: Vec<(Tensor, bool)> = vec![(root.clone(), false)];
    while let Some((node, expanded)) = stack.pop() {
        if expanded {
            order.push(node);
            continue;
        }
        if !seen.insert(node.id()) {
            continue;
        }
        stack.push((node.clone(), true));
        if let Some(op) = node.op() {
            for input in op.inputs() {
                if input.requires_grad() && !seen.contains(&input.id()) {
                    stack.push((input.clone(), false));
                }
            }
        }
    }
    order
}

fn keep_shape(x: &Shape, axes: &[usize]) -> Shape {
    x.dims().iter().enumerate().map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect::<Vec<_>>().into()
}

/// The gradient contributions of one node to its inputs.
fn input_grads<'a>(op: &'a Op, y: &Tensor, g: &Tensor) -> Result<Vec<(&'a Tensor, Tensor)>> {
    let needs = |t: &Tensor| t.requires_grad();
    Ok(match op {
        Op::Unary(u, x) => {
            let gx = match u {
                UnaryOp::Neg => g.neg()?,
                UnaryOp::Abs => g.mul(&x.sign()?)?,
                UnaryOp::Sign | UnaryOp::Floor | UnaryOp::Ceil => return Ok(vec![]),
                UnaryOp::Exp => g.mul(y)?,
                UnaryOp::Log => g.div(x)?,
                UnaryOp::Sqrt => g.div(y)?.mul_scalar(0.5)?,
                UnaryOp::Square => g.mul(x)?.mul_scalar(2.0)?,
                UnaryOp::Recip => g.mul(&y.square()?)?.neg()?,
                // From the output, as the fused `linear` does: one rule each.
                UnaryOp::Relu => g.activation_grad(LinearActivation::Relu, y)?,
                UnaryOp::Sigmoid => g.activation_grad(LinearActivation::Sigmoid, y)?,
                UnaryOp::Tanh => g.activation_grad(LinearActivation::Tanh, y)?,
                UnaryOp::Gelu => {
                    // d/dx x·Φ(x) = Φ(x) + x·φ(x)
                    let cdf = x.mul_scalar(std::f64::consts::FRAC_1_SQRT_2)?.erf()?.affine(0.5, 0.5)?;
                    let pdf =
                        x.square()?.mul_scalar(-0.5)?.exp()?.mul_scalar(1.0 / (2.0 * std::f64::consts::PI).sqrt())?;
                    g.mul(&cdf.add(&x.mul(&pdf)?)?)?
                }
                UnaryOp::Softplus => g.mul(&x.sigmoid()?)?,
                UnaryOp::Erf => g.mul(&x.square()?.neg()?.exp()?.mul_scalar(std::f64::consts::FRAC_2_SQRT_PI)?)?,
                UnaryOp::Sin => g.mul(&x.cos()?)?,
                UnaryOp::Cos => g.mul(&x.sin()?)?.neg()?,
            };
            vec![(x, gx)]
        }
        Op::Binary(b, lhs, rhs) => {
            let (ga, gb) = match b {
                BinaryOp::Add => (Some(g.clone()), Some(g.clone())),
                BinaryOp::Sub => (Some(g.clone()), Some(g.neg()?)),
                BinaryOp::Mul => (Some(g.mul(rhs)?), Some(g.mul(lhs)?)),
                BinaryOp::Div => {
                    let ga = g.div(rhs)?;
                    let gb = if needs(rhs) { Some(ga.mul(y)?.neg()?) } else { None };
                    (Some(ga), gb)
                }
                BinaryOp::Pow => {
                    let ga = if needs(lhs) { Some(g.mul(&rhs.mul(&lhs.pow(&rhs.sub_scalar(1.0)?)?)?)?) } else { None };
                    let gb = if needs(rhs) { Some(g.mul(&y.mul(&lhs.log()?)?)?) } else { None };
                    (ga, gb)
                }
                BinaryOp::Maximum | BinaryOp::Minimum => {
                    let mask = if *b == BinaryOp::Maximum { lhs.ge(rhs)? } else { lhs.le(rhs)? };
                    let ga = g.mul(&mask)?;
                    let gb = g.sub(&ga)?;
                    (Some(ga), Some(gb))
                }
                _ => return Ok(vec![]),
            };
            let mut out = Vec::new();
            if let (Some(ga), true) = (ga, needs(lhs)) {
                out.push((lhs, ga.sum_to(lhs.shape())?));
            }
            if let (Some(gb), true) = (gb, needs(rhs)) {
                out.push((rhs, gb.sum_to(rhs.shape())?));
            }
            out
        }
        Op::BinaryScalar(b, x, s) => {
            let gx = match b {
                BinaryOp::Add | BinaryOp::Sub => g.clone(),
                BinaryOp::Mul => g.mul_scalar(*s)?,
                BinaryOp::Div => g.div_scalar(*s)?,
                BinaryOp::Pow => g.mul(&x.pow_scalar(s - 1.0)?)?.mul_scalar(*s)?,
                BinaryOp::Maximum => g.mul(&x.ge_scalar(*s)?)?,
                BinaryOp::Minimum => g.mul(&x.le_scalar(*s)?)?,
                _ => return Ok(vec![]),
            };
            vec![(x, gx)]
        }
        Op::Reduce(r, x, axes) => {
            let keep = keep_shape(x.shape(), axes);
            let gk = g.reshape(keep.clone())?;
            let gx = match r {
                ReduceOp::Sum => gk.broadcast_to(x.shape().clone())?,
                ReduceOp::Max | ReduceOp::Min => {
                    // Ties share the gradient equally.
                    let mask = x.eq(&y.reshape(keep)?)?;
                    let count = mask.sum(&axes.iter().map(|&a| a as isize).collect::<Vec<_>>(), true)?;
                    mask.mul(&gk.div(&count)?)?
                }
                ReduceOp::ArgMax | ReduceOp::ArgMin => return Ok(vec![]),
            };
            vec![(x, gx)]
        }
        Op::Matmul { lhs, rhs, trans_lhs: ta, trans_rhs: tb } => {
            let (ta, tb) = (*ta, *tb);
            let mut out = Vec::new();
            if needs(lhs) {
                let ga = if ta { rhs.matmul_t(g, tb, true)? } else { g.matmul_t(rhs, false, !tb)? };
                out.push((lhs, ga.sum_to(lhs.shape())?));
            }
            if needs(rhs) {
                let gb = if tb { g.matmul_t(lhs, true, ta)? } else { lhs.matmul_t(g, !ta, false)? };
                out.push((rhs, gb.sum_to(rhs.shape())?));
            }
            out
        }
        Op::Reshape(x) => vec![(x, g.reshape(x.shape().clone())?)],
        Op::Permute(x, perm) => {
            let mut inv = vec![0; perm.len()];
            for (i, &p) in perm.iter().enumerate() {
                inv[p] = i;
            }
            vec![(x, g.permute(&inv)?)]
        }
        Op::Broadcast(x) => vec![(x, g.sum_to(x.shape())?)],
        Op::Narrow(x, axis, start) => {
            // Pad the gradient with zeros before and after the narrowed range.
            let len = g.dims()[*axis];
            let zeros = |n: usize| {
                let mut dims = g.dims().to_vec();
                dims[*axis] = n;
                Tensor::zeros(dims, g.dtype(), g.device())
            };
            let before = zeros(*start)?;
            let after = zeros(x.dims()[*axis] - start - len)?;
            vec![(x, Tensor::concat(&[&before, g, &after], *axis as isize)?)]
        }
        Op::Concat(xs, axis) => {
            let mut offset = 0;
            let mut out = Vec::new();
            for x in xs {
                let len = x.dims()[*axis];
                if needs(x) {
                    out.push((x, g.narrow(*axis as isize, offset, len)?));
                }
                offset += len;
            }
            out
        }
        Op::Gather(x, idx, axis) => vec![(x, x.zeros_like()?.index_add(*axis as isize, idx, g)?)],
        // unfold and fold are each other's adjoints; padding cells carry no gradient.
        Op::Unfold(x, spec) => vec![(x, g.fold_spec(spec)?)],
        Op::Fold(x, spec) => vec![(x, g.unfold_spec(&UnfoldSpec { pad_value: 0.0, ..(**spec).clone() })?)],
        Op::IndexAdd(x, idx, src, axis) => {
            let mut out = Vec::new();
            if needs(x) {
                out.push((x, g.clone()));
            }
            if needs(src) {
                out.push((src, g.gather(*axis as isize, idx)?));
            }
            out
        }
        Op::Where(c, t, f) => {
            let zero = Tensor::zeros(Shape::scalar(), g.dtype(), g.device())?;
            let mut out = Vec::new();
            if needs(t) {
                out.push((t, Tensor::where_cond(c, g, &zero)?));
            }
            if needs(f) {
                out.push((f, Tensor::where_cond(c, &zero, g)?));
            }
            out
        }
        Op::Softmax(x) => {
            let dot = g.mul(y)?.sum(&[-1], true)?;
            vec![(x, y.mul(&g.sub(&dot)?)?)]
        }
        Op::LogSoftmax(x) => {
            let s = g.sum(&[-1], true)?;
            vec![(x, g.sub(&y.exp()?.mul(&s)?)?)]
        }
        Op::Linear { x, w, b, act } => {
            let ga = if *act == LinearActivation::Identity { g.clone() } else { g.activation_grad(*act, y)? };
            let mut out = Vec::new();
            if needs(x) {
                out.push((x, ga.matmul_t(w, false, true)?));
            }
            if needs(w) {
                out.push((w, x.matmul_t(&ga, true, false)?));
            }
            if let Some(b) = b.as_ref().filter(|b| needs(b)) {
                out.push((b, ga.sum(&[0], false)?));
            }
            out
        }
        Op::SoftmaxCrossEntropy(z, t) => vec![(z, z.softmax_cross_entropy_grad(t, g)?)],
        Op::Conv { x, w, b, spec } => {
            let act = spec.activation;
            let ga = if act == LinearActivation::Identity { g.clone() } else { g.activation_grad(act, y)? };
            let mut out = Vec::new();
            if needs(x) {
                out.push((x, ga.conv_input_grad(w, spec)?));
            }
            if needs(w) {
                out.push((w, x.conv_kernel_grad(&ga, spec)?));
            }
            if let Some(b) = b.as_ref().filter(|b| needs(b)) {
                out.push((b, ga.reshape([spec.window.positions(), spec.filters])?.sum(&[0], false)?));
            }
            out
        }
        Op::MaxPool(x, spec) => vec![(x, x.max_pool_grad(g, spec)?)],
        Op::Lstm { xw, u, h0, c0, mask, gates, spec } => {
            let grads = g.lstm_grad(u, h0, c0, mask.as_ref(), y, gates, spec)?;
            [(xw, grads[0].clone()), (u, grads[1].clone()), (h0, grads[2].clone()), (c0, grads[3].clone())]
                .into_iter()
                .filter(|(t, _)| needs(t))
                .collect()
        }
        Op::Gru { xw, u, b, h0, mask, gates, spec } => {
            let [dxw, du, db, dh0] = g.gru_grad(u, h0, mask.as_ref(), y, gates, spec)?;
            let mut out = vec![(xw, dxw), (u, du), (h0, dh0)];
            out.extend(b.as_ref().map(|b| (b, db)));
            out.into_iter().filter(|(t, _)| needs(t)).collect()
        }
    })
}
