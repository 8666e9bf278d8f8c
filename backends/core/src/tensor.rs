//! The [`Tensor`] type: shape-checked ops over a backend, recorded for autodiff.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock, RwLockReadGuard};

use crate::backprop::{grad_enabled, Op};
use crate::{
    BinaryOp, ConvSpec, DType, Device, Error, GruSpec, LinearActivation, LinearSpec, LstmSpec, MatmulSpec, ReduceOp,
    Result, Rng, Shape, Storage, UnaryOp, UnfoldSpec, Window,
};

/// A unique id per tensor node (used to key gradients).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TensorId(usize);

impl TensorId {
    fn next() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(1);
        TensorId(COUNTER.fetch_add(1, Ordering::Relaxed))
    }
}

/// Element types that can move in and out of tensors: `f32` and `i64`.
pub trait Element: Copy + Send + Sync + fmt::Debug + 'static + private::Sealed {
    /// The matching [`DType`].
    const DTYPE: DType;
    #[doc(hidden)]
    fn upload(device: &Device, data: Vec<Self>) -> Result<Storage>;
    #[doc(hidden)]
    fn download(device: &Device, s: &Storage) -> Result<Vec<Self>>;
    #[doc(hidden)]
    fn to_f64(self) -> f64;
}

mod private {
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for i64 {}
}

impl Element for f32 {
    const DTYPE: DType = DType::F32;
    fn upload(device: &Device, data: Vec<Self>) -> Result<Storage> {
        device.backend().upload_f32(data)
    }
    fn download(device: &Device, s: &Storage) -> Result<Vec<Self>> {
        device.backend().download_f32(s)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

impl Element for i64 {
    const DTYPE: DType = DType::I64;
    fn upload(device: &Device, data: Vec<Self>) -> Result<Storage> {
        device.backend().upload_i64(data)
    }
    fn download(device: &Device, s: &Storage) -> Result<Vec<Self>> {
        device.backend().download_i64(s)
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
}

/// An n-dimensional array on a [`Device`], with reverse-mode autodiff.
///
/// Cloning is cheap (a reference count). Every op checks shapes, dtypes and
/// devices up front and returns an [`Error`] naming both operands rather than
/// panicking. When a tensor that [requires gradients](Tensor::requires_grad)
/// takes part in an op (and no [`no_grad`](crate::no_grad) scope is active)
/// the op is recorded, and [`Tensor::backward`] later walks the record.
///
/// ```
/// use strata_core::{Tensor, Device};
/// # fn run(dev: &Device) -> strata_core::Result<()> {
/// let w = Tensor::new(vec![1.0f32, 2.0, 3.0], [3], dev)?.to_variable()?;
/// let loss = w.square()?.sum_all()?;          // sum(w^2)
/// let grads = loss.backward()?;
/// assert_eq!(grads.get(&w).unwrap().to_vec::<f32>()?, vec![2.0, 4.0, 6.0]);
/// # Ok(()) }
/// # run(&strata_native::device()).unwrap();
/// ```
#[derive(Clone)]
pub struct Tensor(Arc<Inner>);

struct Inner {
    id: TensorId,
    shape: Shape,
    dtype: DType,
    device: Device,
    storage: Arc<RwLock<Storage>>,
    op: Option<Op>,
    is_variable: bool,
    /// For the output of a last-axis softmax: its input, the logits, kept
    /// whether or not autodiff records the op (Keras attaches
    /// `_keras_logits` to a softmax output the same way), so cross-entropy
    /// losses compute from the logits in training and in evaluation alike.
    softmax_input: Option<Tensor>,
}

fn read(s: &RwLock<Storage>) -> RwLockReadGuard<'_, Storage> {
    // A poisoned lock only means another thread panicked while holding it;
    // the storage itself is still a valid buffer.
    s.read().unwrap_or_else(|e| e.into_inner())
}

impl Tensor {
    // ----------------------------------------------------------------- creation

    /// Wraps backend storage; checks that its length and dtype fit.
    pub fn from_storage(storage: Storage, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if storage.len() != shape.checked_numel("from_storage")? {
            return Err(Error::DataLength { op: "from_storage", len: storage.len(), shape });
        }
        Ok(Self::make(storage, shape, device.clone(), None))
    }

    fn make(storage: Storage, shape: Shape, device: Device, op: Option<Op>) -> Tensor {
        let dtype = storage.dtype();
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            shape,
            dtype,
            device,
            storage: Arc::new(RwLock::new(storage)),
            op,
            is_variable: false,
            softmax_input: None,
        }))
    }

    /// The result of an op: records `op` when any input needs gradients.
    fn result(&self, storage: Storage, shape: Shape, inputs: &[&Tensor], op: impl FnOnce() -> Op) -> Tensor {
        let track = storage.dtype().is_float() && grad_enabled() && inputs.iter().any(|t| t.requires_grad());
        Self::make(storage, shape, self.device().clone(), if track { Some(op()) } else { None })
    }

    /// A tensor from values and a shape; the number of values must match.
    ///
    /// ```
    /// # use strata_core::{Tensor, Device};
    /// # fn run(dev: &Device) -> strata_core::Result<()> {
    /// let t = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0, 5.0, 6.0], [2, 3], dev)?;
    /// assert_eq!(t.dims(), &[2, 3]);
    /// assert!(Tensor::new(vec![1.0f32, 2.0], [3], dev).is_err());
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn new<T: Element>(data: Vec<T>, shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if data.len() != shape.checked_numel("Tensor::new")? {
            return Err(Error::DataLength { op: "Tensor::new", len: data.len(), shape });
        }
        let storage = T::upload(device, data)?;
        Ok(Self::make(storage, shape, device.clone(), None))
    }

    /// A tensor from a slice (copied) and a shape.
    pub fn from_slice<T: Element>(data: &[T], shape: impl Into<Shape>, device: &Device) -> Result<Tensor> {
        Self::new(data.to_vec(), shape, device)
    }

    /// A rank-0 tensor holding `value`.
    pub fn scalar<T: Element>(value: T, device: &Device) -> Result<Tensor> {
        Self::new(vec![value], Shape::scalar(), device)
    }

    /// A tensor filled with `value` (converted to `dtype`).
    ///
    /// A shape whose element count overflows `usize`, or whose buffer the
    /// backend cannot allocate, is an [`Error::SizeOverflow`] naming it.
    pub fn full(value: f64, shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        let len = shape.checked_numel("Tensor::full")?;
        let storage = device.backend().full(value, len, dtype).map_err(|e| match e {
            Error::SizeOverflow { op, message } => {
                Error::SizeOverflow { op, message: format!("{message} (shape {shape})") }
            }
            e => e,
        })?;
        Ok(Self::make(storage, shape, device.clone(), None))
    }

    /// A tensor of zeros.
    pub fn zeros(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(0.0, shape, dtype, device)
    }

    /// A tensor of ones.
    pub fn ones(shape: impl Into<Shape>, dtype: DType, device: &Device) -> Result<Tensor> {
        Self::full(1.0, shape, dtype, device)
    }

    /// Zeros with this tensor's shape, dtype and device.
    pub fn zeros_like(&self) -> Result<Tensor> {
        Self::zeros(self.shape().clone(), self.dtype(), self.device())
    }

    /// Ones with this tensor's shape, dtype and device.
    pub fn ones_like(&self) -> Result<Tensor> {
        Self::ones(self.shape().clone(), self.dtype(), self.device())
    }

    /// `[0, 1, ..., n-1]` as a rank-1 tensor of `dtype`.
    pub fn arange(n: usize, dtype: DType, device: &Device) -> Result<Tensor> {
        let shape = Shape::from([n]);
        match dtype {
            DType::F32 => {
                let mut v = host_buffer::<f32>("arange", &shape)?;
                v.extend((0..n).map(|i| i as f32));
                Self::new(v, shape, device)
            }
            DType::I64 => {
                let mut v = host_buffer::<i64>("arange", &shape)?;
                v.extend(0..n as i64);
                Self::new(v, shape, device)
            }
        }
    }

    /// Uniform values in `[low, high)`, drawn from `rng` (same values on every backend).
    pub fn rand_uniform(
        shape: impl Into<Shape>,
        low: f32,
        high: f32,
        rng: &mut Rng,
        device: &Device,
    ) -> Result<Tensor> {
        let shape = shape.into();
        if !(low.is_finite() && high.is_finite() && low <= high) {
            return Err(Error::invalid(
                "rand_uniform",
                format!("needs finite low <= high, received low={low}, high={high}"),
            ));
        }
        let mut data = host_buffer::<f32>("rand_uniform", &shape)?;
        data.extend((0..shape.numel()).map(|_| low + (high - low) * rng.uniform()));
        Self::new(data, shape, device)
    }

    /// Normal values with `mean` and standard deviation `std`, drawn from `rng`.
    pub fn rand_normal(shape: impl Into<Shape>, mean: f32, std: f32, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let shape = shape.into();
        if !(mean.is_finite() && std.is_finite() && std >= 0.0) {
            return Err(Error::invalid(
                "rand_normal",
                format!("needs finite mean and std >= 0, received mean={mean}, std={std}"),
            ));
        }
        let mut data = host_buffer::<f32>("rand_normal", &shape)?;
        data.extend((0..shape.numel()).map(|_| mean + std * rng.normal()));
        Self::new(data, shape, device)
    }

    // --------------------------------------------------------------- accessors

    /// The node's unique id.
    pub fn id(&self) -> TensorId {
        self.0.id
    }

    /// The shape.
    pub fn shape(&self) -> &Shape {
        &self.0.shape
    }

    /// The dimensions.
    pub fn dims(&self) -> &[usize] {
        self.0.shape.dims()
    }

    /// Number of dimensions.
    pub fn rank(&self) -> usize {
        self.0.shape.rank()
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.0.shape.numel()
    }

    /// The element type.
    pub fn dtype(&self) -> DType {
        self.0.dtype
    }

    /// The device.
    pub fn device(&self) -> &Device {
        &self.0.device
    }

    /// Read access to the backend storage (for backend-specific extensions).
    pub fn storage(&self) -> RwLockReadGuard<'_, Storage> {
        read(&self.0.storage)
    }

    pub(crate) fn op(&self) -> Option<&Op> {
        self.0.op.as_ref()
    }

    /// Whether gradients flow to or through this tensor.
    pub fn requires_grad(&self) -> bool {
        self.0.is_variable || self.0.op.is_some()
    }

    /// Whether this is a leaf whose gradient [`Tensor::backward`] reports.
    pub fn is_variable(&self) -> bool {
        self.0.is_variable
    }

    /// The values, copied to the host. `T` must match the dtype.
    pub fn to_vec<T: Element>(&self) -> Result<Vec<T>> {
        self.expect_dtype("to_vec", T::DTYPE)?;
        T::download(self.device(), &self.storage())
    }

    /// The same values on another device (a copy through the host); a clone
    /// when `device` is already this tensor's. The copy records no gradient.
    pub fn to_device(&self, device: &Device) -> Result<Tensor> {
        if self.device().same(device) {
            return Ok(self.clone());
        }
        let storage = match self.dtype() {
            DType::F32 => f32::upload(device, self.to_vec::<f32>()?)?,
            DType::I64 => i64::upload(device, self.to_vec::<i64>()?)?,
        };
        Tensor::from_storage(storage, self.shape().clone(), device)
    }

    /// The single value of a one-element tensor.
    pub fn to_scalar<T: Element>(&self) -> Result<T> {
        if self.numel() != 1 {
            return Err(Error::InvalidShape {
                op: "to_scalar",
                shape: self.shape().clone(),
                reason: "expected exactly one element".into(),
            });
        }
        Ok(self.to_vec::<T>()?[0])
    }

    // ------------------------------------------------------------ graph control

    /// A leaf sharing this tensor's data whose gradient `backward` reports:
    /// what a trainable weight is. Only `f32` tensors can be variables.
    pub fn to_variable(&self) -> Result<Tensor> {
        self.expect_dtype("to_variable", DType::F32)?;
        Ok(Tensor(Arc::new(Inner {
            id: TensorId::next(),
            shape: self.0.shape.clone(),
            dtype: self.0.dtype,
            device: self.0.device.clone(),
            storage: self.0.storage.clone(),
            op: None,
            is_variable: true,
            softmax_input: None,
        })))
    }

    /// A tensor sharing this data that records nothing, needs no gradient
    /// and keeps no [`softmax_input`](Self::softmax_input) alive.
    pub fn detach(&self) -> Tensor {
        if !self.requires_grad() && self.0.softmax_input.is_none() {
            return self.clone();
        }
        self.view(self.shape().clone(), None)
    }

    /// Same data, new shape and id (a free reshape).
    fn view(&self, shape: Shape, op: Option<Op>) -> Tensor {
        Tensor(Arc::new(Inner {
            id: TensorId::next(),
            shape,
            dtype: self.0.dtype,
            device: self.0.device.clone(),
            storage: self.0.storage.clone(),
            op,
            is_variable: false,
            softmax_input: None,
        }))
    }

    /// Overwrites this tensor's data in place with `src`'s (same shape, dtype
    /// and device). Every tensor sharing the data sees the change; this is how
    /// optimizers and `set_weights` update variables.
    pub fn assign(&self, src: &Tensor) -> Result<()> {
        self.same_device("assign", src)?;
        if self.shape() != src.shape() {
            return Err(Error::ShapeMismatch {
                op: "assign",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
                reason: "assign needs equal shapes".into(),
            });
        }
        self.expect_dtype("assign", src.dtype())?;
        if Arc::ptr_eq(&self.0.storage, &src.0.storage) {
            return Ok(());
        }
        // A copy, so the two never share a buffer.
        let fresh = src.copy_storage()?;
        let mut guard = self.0.storage.write().unwrap_or_else(|e| e.into_inner());
        *guard = fresh;
        Ok(())
    }

    /// A copy with a buffer of its own and no autodiff history: later
    /// in-place changes to this tensor ([`assign`](Self::assign), fused
    /// optimizer updates) leave the copy as it was.
    ///
    /// ```
    /// # use strata_core::Tensor;
    /// # fn main() -> strata_core::Result<()> {
    /// # let dev = strata_native::device();
    /// let w = Tensor::new(vec![1.0f32, -0.0], [2], &dev)?;
    /// let snapshot = w.copy()?;
    /// w.assign(&Tensor::new(vec![5.0f32, 6.0], [2], &dev)?)?;
    /// assert_eq!(snapshot.to_vec::<f32>()?, vec![1.0, -0.0]);
    /// # Ok(()) }
    /// ```
    pub fn copy(&self) -> Result<Tensor> {
        Ok(Self::make(self.copy_storage()?, self.shape().clone(), self.device().clone(), None))
    }

    /// This tensor's data in a fresh storage (×1 through the backend keeps
    /// every bit, −0 included, for both dtypes).
    fn copy_storage(&self) -> Result<Storage> {
        let s = self.storage();
        self.device().backend().binary_scalar(BinaryOp::Mul, &s, self.shape(), 1.0)
    }

    /// The flat index of the first NaN or infinity, if any; `None` for
    /// integer tensors. Scans the data where it lives, without a copy on the
    /// built-in CPU backends.
    ///
    /// ```
    /// use strata_core::Tensor;
    /// let x = Tensor::new(vec![1.0f32, f32::INFINITY, f32::NAN], [3], &strata_native::device()).unwrap();
    /// assert_eq!(x.find_non_finite().unwrap(), Some(1));
    /// ```
    pub fn find_non_finite(&self) -> Result<Option<usize>> {
        if self.dtype() != DType::F32 {
            return Ok(None);
        }
        self.device().backend().find_non_finite(&self.storage())
    }

    /// Applies an optimizer step to this variable in place through the
    /// backend's fused kernel (see [`FusedUpdate`](crate::FusedUpdate)):
    /// `grad` and every slot must be `f32` tensors of this tensor's shape on
    /// its device. Returns `Ok(false)`, changing nothing, when the backend
    /// has no fused kernel for `update` or when two of the buffers are the
    /// same; the caller then runs the update as ordinary ops.
    ///
    /// ```
    /// use strata_core::{FusedUpdate, Tensor};
    /// # fn main() -> strata_core::Result<()> {
    /// let dev = strata_native::device();
    /// let w = Tensor::new(vec![1.0f32, 2.0], [2], &dev)?;
    /// let g = Tensor::new(vec![0.5f32, -1.0], [2], &dev)?;
    /// assert!(w.fused_update(&FusedUpdate::Sgd { lr: 0.1 }, &g, &[])?);
    /// assert_eq!(w.to_vec::<f32>()?, vec![1.0 - 0.5 * 0.1, 2.0 + 0.1]);
    /// # Ok(()) }
    /// ```
    pub fn fused_update(&self, update: &crate::FusedUpdate, grad: &Tensor, slots: &[&Tensor]) -> Result<bool> {
        const OP: &str = "fused_update";
        if slots.len() != update.slots() {
            return Err(Error::invalid(
                OP,
                format!("{update:?} keeps {} slot(s), received {}", update.slots(), slots.len()),
            ));
        }
        for t in std::iter::once(grad).chain(slots.iter().copied()) {
            self.same_device(OP, t)?;
            if self.shape() != t.shape() {
                return Err(Error::ShapeMismatch {
                    op: OP,
                    lhs: self.shape().clone(),
                    rhs: t.shape().clone(),
                    reason: "the gradient and the slots need the weight's shape".into(),
                });
            }
            t.expect_dtype(OP, DType::F32)?;
        }
        self.expect_dtype(OP, DType::F32)?;
        // Locking the same buffer twice would deadlock, and a kernel must not
        // read what it writes through another name: leave aliases to the ops.
        let all: Vec<&Arc<RwLock<Storage>>> = std::iter::once(&self.0.storage)
            .chain(std::iter::once(&grad.0.storage))
            .chain(slots.iter().map(|t| &t.0.storage))
            .collect();
        for (i, a) in all.iter().enumerate() {
            if all[i + 1..].iter().any(|b| Arc::ptr_eq(a, b)) {
                return Ok(false);
            }
        }
        let mut param = self.0.storage.write().unwrap_or_else(|e| e.into_inner());
        let grad = read(&grad.0.storage);
        let mut guards: Vec<_> = slots.iter().map(|t| t.0.storage.write().unwrap_or_else(|e| e.into_inner())).collect();
        let mut slot_refs: Vec<&mut Storage> = guards.iter_mut().map(|g| &mut **g).collect();
        self.device().backend().fused_update(update, &mut param, &grad, &mut slot_refs)
    }

    // ------------------------------------------------------------------ checks

    fn expect_dtype(&self, op: &'static str, dtype: DType) -> Result<()> {
        if self.dtype() != dtype {
            return Err(Error::DTypeMismatch { op, expected: dtype, received: self.dtype() });
        }
        Ok(())
    }

    fn same_device(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if !self.device().same(other.device()) {
            return Err(Error::DeviceMismatch {
                op,
                lhs: self.device().name().to_string(),
                rhs: other.device().name().to_string(),
            });
        }
        Ok(())
    }

    /// `other` must have this tensor's dtype (the error names both).
    fn same_dtype(&self, op: &'static str, other: &Tensor) -> Result<()> {
        if self.dtype() != other.dtype() {
            return Err(Error::DTypeMismatch { op, expected: self.dtype(), received: other.dtype() });
        }
        Ok(())
    }

    fn check_binary(&self, op: &'static str, rhs: &Tensor) -> Result<Shape> {
        self.same_device(op, rhs)?;
        self.same_dtype(op, rhs)?;
        Shape::broadcast(op, self.shape(), rhs.shape())
    }

    // ------------------------------------------------------------ elementwise

    /// Applies an elementwise function; `f32`-only ops reject integer tensors.
    pub fn unary(&self, op: UnaryOp) -> Result<Tensor> {
        if !self.dtype().is_float() && !op.supports_int() {
            return Err(Error::DTypeMismatch { op: op.name(), expected: DType::F32, received: self.dtype() });
        }
        let s = self.device().backend().unary(op, &self.storage())?;
        Ok(self.result(s, self.shape().clone(), &[self], || Op::Unary(op, self.clone())))
    }

    /// Applies an elementwise binary function with NumPy broadcasting.
    pub fn binary(&self, op: BinaryOp, rhs: &Tensor) -> Result<Tensor> {
        let out = self.check_binary(op.name(), rhs)?;
        if op == BinaryOp::Pow && !self.dtype().is_float() {
            return Err(Error::DTypeMismatch { op: "pow", expected: DType::F32, received: self.dtype() });
        }
        let s = {
            let (l, r) = (self.storage(), rhs.storage());
            self.device().backend().binary(op, &l, self.shape(), &r, rhs.shape(), &out)?
        };
        if op.is_comparison() {
            return Ok(Self::make(s, out, self.device().clone(), None));
        }
        Ok(self.result(s, out, &[self, rhs], || Op::Binary(op, self.clone(), rhs.clone())))
    }

    /// Applies an elementwise binary function with a scalar right operand.
    pub fn binary_scalar(&self, op: BinaryOp, scalar: f64) -> Result<Tensor> {
        if op == BinaryOp::Pow && !self.dtype().is_float() {
            return Err(Error::DTypeMismatch { op: "pow", expected: DType::F32, received: self.dtype() });
        }
        if !self.dtype().is_float() && (!scalar.is_finite() || scalar.fract() != 0.0) {
            return Err(Error::invalid(
                op.name(),
                format!("an i64 tensor needs an integral scalar, received {scalar}"),
            ));
        }
        let s = self.device().backend().binary_scalar(op, &self.storage(), self.shape(), scalar)?;
        if op.is_comparison() {
            return Ok(Self::make(s, self.shape().clone(), self.device().clone(), None));
        }
        Ok(self.result(s, self.shape().clone(), &[self], || Op::BinaryScalar(op, self.clone(), scalar)))
    }

    /// `self * mul + add`.
    pub fn affine(&self, mul: f64, add: f64) -> Result<Tensor> {
        self.binary_scalar(BinaryOp::Mul, mul)?.binary_scalar(BinaryOp::Add, add)
    }

    // --------------------------------------------------------------- reductions

    fn resolve_axes(&self, op: &'static str, axes: &[isize]) -> Result<Vec<usize>> {
        let mut out = Vec::with_capacity(axes.len());
        for &a in axes {
            let a = self.shape().axis(op, a)?;
            if out.contains(&a) {
                return Err(Error::invalid(
                    op,
                    format!("axis {a} given twice (axes {axes:?}, shape {})", self.shape()),
                ));
            }
            out.push(a);
        }
        out.sort_unstable();
        Ok(out)
    }

    fn reduced_shape(&self, axes: &[usize], keepdim: bool) -> Shape {
        let dims = self.dims().iter().enumerate();
        if keepdim {
            dims.map(|(i, &d)| if axes.contains(&i) { 1 } else { d }).collect::<Vec<_>>().into()
        } else {
            dims.filter(|(i, _)| !axes.contains(i)).map(|(_, &d)| d).collect::<Vec<_>>().into()
        }
    }

    /// Reduces over `axes` (negative counts from the end; empty means all).
    pub fn reduce(&self, op: ReduceOp, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        let axes = if axes.is_empty() { (0..self.rank()).collect() } else { self.resolve_axes(op.name(), axes)? };
        let arg = matches!(op, ReduceOp::ArgMax | ReduceOp::ArgMin);
        if arg && axes.len() != 1 {
            return Err(Error::invalid(
                op.name(),
                format!("needs exactly one axis, received {} for shape {}", axes.len(), self.shape()),
            ));
        }
        if matches!(op, ReduceOp::Max | ReduceOp::Min) || arg {
            if let Some(&a) = axes.iter().find(|&&a| self.dims()[a] == 0) {
                return Err(Error::InvalidShape {
                    op: op.name(),
                    shape: self.shape().clone(),
                    reason: format!("cannot take the {} over empty axis {a}", op.name()),
                });
            }
        }
        let out = self.reduced_shape(&axes, keepdim);
        if axes.is_empty() {
            // Rank-0 input: reducing over nothing is the identity (argmax of a scalar is 0).
            if arg {
                return Tensor::zeros(out, DType::I64, self.device());
            }
            return self.reshape(out);
        }
        let s = self.device().backend().reduce(op, &self.storage(), self.shape(), &axes)?;
        if arg {
            return Ok(Self::make(s, out, self.device().clone(), None));
        }
        Ok(self.result(s, out, &[self], || Op::Reduce(op, self.clone(), axes)))
    }

    /// Sum over `axes`.
    pub fn sum(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, axes, keepdim)
    }

    /// Sum of all elements (rank 0).
    pub fn sum_all(&self) -> Result<Tensor> {
        self.reduce(ReduceOp::Sum, &[], false)
    }

    /// Mean over `axes` (empty means all). The mean over an empty axis is NaN, as in NumPy.
    pub fn mean(&self, axes: &[isize], keepdim: bool) -> Result<Tensor> {
        self.expect_dtype("mean", DType::F32)?;
        let resolved = if axes.is_empty() { (0..self.rank()).collect() } else { self.resolve_axes("mean", axes)? };
        let n: usize = resolved.iter().map(|&a| self.dims()[a]).product();
        self.sum(axes, keepdim)?.binary_scalar(BinaryOp::Div, n as f64)
    }

    /// Mean of all elements (rank 0).
    pub fn mean_all(&self) -> Result<Tensor> {
        self.mean(&[], false)
    }

    /// Largest value along `axis`.
    pub fn max(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Max, &[axis], keepdim)
    }

    /// Smallest value along `axis`.
    pub fn min(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::Min, &[axis], keepdim)
    }

    /// Index (`i64`) of the first largest value along `axis`.
    pub fn argmax(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::ArgMax, &[axis], keepdim)
    }

    /// Index (`i64`) of the first smallest value along `axis`.
    pub fn argmin(&self, axis: isize, keepdim: bool) -> Result<Tensor> {
        self.reduce(ReduceOp::ArgMin, &[axis], keepdim)
    }

    /// Sums broadcast axes away so the result has `shape` (the adjoint of
    /// [`Tensor::broadcast_to`]).
    pub fn sum_to(&self, shape: &Shape) -> Result<Tensor> {
        if self.shape() == shape {
            return Ok(self.clone());
        }
        if !shape.broadcasts_to(self.shape()) {
            return Err(Error::ShapeMismatch {
                op: "sum_to",
                lhs: self.shape().clone(),
                rhs: shape.clone(),
                reason: "the target does not broadcast to the source".into(),
            });
        }
        let lead = self.rank() - shape.rank();
        let axes: Vec<isize> = (0..self.rank())
            .filter(|&i| i < lead || (shape.dims()[i - lead] == 1 && self.dims()[i] != 1))
            .map(|i| i as isize)
            .collect();
        let summed = if axes.is_empty() { self.clone() } else { self.sum(&axes, true)? };
        summed.reshape(shape.clone())
    }

    // ----------------------------------------------------------------- matmul

    /// Matrix product over the last two axes, with NumPy-style batch broadcasting.
    ///
    /// `[..., m, k] · [..., k, n] → [..., m, n]`; rank-2 weights on a rank-3
    /// input fold the batch into the rows (no copy).
    pub fn matmul(&self, rhs: &Tensor) -> Result<Tensor> {
        self.matmul_t(rhs, false, false)
    }

    /// `op(self) · op(rhs)` where `op` transposes the last two axes when its flag
    /// is set. The transposes are folded into the kernel, never materialised.
    pub fn matmul_t(&self, rhs: &Tensor, trans_lhs: bool, trans_rhs: bool) -> Result<Tensor> {
        const OP: &str = "matmul";
        self.same_device(OP, rhs)?;
        self.expect_dtype(OP, DType::F32)?;
        rhs.expect_dtype(OP, DType::F32)?;
        let mismatch = |reason: String| Error::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
            reason,
        };
        if self.rank() < 2 || rhs.rank() < 2 {
            return Err(mismatch("both operands need rank >= 2".into()));
        }
        let (lr, rr) = (self.rank(), rhs.rank());
        let (m, k) = if trans_lhs {
            (self.dims()[lr - 1], self.dims()[lr - 2])
        } else {
            (self.dims()[lr - 2], self.dims()[lr - 1])
        };
        let (k2, n) =
            if trans_rhs { (rhs.dims()[rr - 1], rhs.dims()[rr - 2]) } else { (rhs.dims()[rr - 2], rhs.dims()[rr - 1]) };
        if k != k2 {
            return Err(mismatch(format!("inner dimensions differ ({k} vs {k2})")));
        }
        // Fold a rank>2 lhs into rows when rhs is a plain matrix: one big GEMM.
        if lr > 2 && rr == 2 && !trans_lhs {
            let rows: usize = self.dims()[..lr - 1].iter().product();
            let flat = self.reshape([rows, k])?;
            let out = flat.matmul_t(rhs, false, trans_rhs)?;
            let mut dims = self.dims()[..lr - 1].to_vec();
            dims.push(n);
            return out.reshape(dims);
        }
        let lb = Shape::from(&self.dims()[..lr - 2]);
        let rb = Shape::from(&rhs.dims()[..rr - 2]);
        let batch_shape =
            Shape::broadcast(OP, &lb, &rb).map_err(|_| mismatch("batch dimensions cannot be broadcast".into()))?;
        let batch = batch_shape.numel();
        // Operands whose batch shape differs from the result's are either a
        // single matrix (stride 0) or are materialised by broadcasting.
        let prep = |t: &Tensor, b: &Shape| -> Result<(Tensor, usize)> {
            let mat = t.dims()[t.rank() - 2] * t.dims()[t.rank() - 1];
            if *b == batch_shape {
                Ok((t.clone(), mat))
            } else if b.numel() == 1 {
                Ok((t.clone(), 0))
            } else {
                let mut dims = batch_shape.dims().to_vec();
                dims.extend_from_slice(&t.dims()[t.rank() - 2..]);
                Ok((t.broadcast_to(dims)?, mat))
            }
        };
        let (l, lstride) = prep(self, &lb)?;
        let (r, rstride) = prep(rhs, &rb)?;
        let spec =
            MatmulSpec { batch, m, n, k, trans_lhs, trans_rhs, lhs_batch_stride: lstride, rhs_batch_stride: rstride };
        let s = {
            let (ls, rs) = (l.storage(), r.storage());
            self.device().backend().matmul(&ls, &rs, &spec)?
        };
        let mut dims = batch_shape.dims().to_vec();
        dims.extend([m, n]);
        Ok(self.result(s, dims.into(), &[&l, &r], || Op::Matmul {
            lhs: l.clone(),
            rhs: r.clone(),
            trans_lhs,
            trans_rhs,
        }))
    }

    // ------------------------------------------------------------ shape ops

    /// The same data with a new shape of equal size (free: no copy).
    pub fn reshape(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if shape.checked_numel("reshape")? != self.numel() {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: self.shape().clone(),
                rhs: shape,
                reason: "element counts differ".into(),
            });
        }
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        let track = grad_enabled() && self.requires_grad();
        let op = if track { Some(Op::Reshape(self.clone())) } else { None };
        Ok(self.view(shape, op))
    }

    /// Flattens every axis from `start` on into one (`[b, 28, 28]` → `[b, 784]` for `start = 1`).
    pub fn flatten_from(&self, start: usize) -> Result<Tensor> {
        if start > self.rank() {
            return Err(Error::AxisOutOfRange {
                op: "flatten_from",
                axis: start as isize,
                shape: self.shape().clone(),
            });
        }
        let mut dims = self.dims()[..start].to_vec();
        dims.push(self.dims()[start..].iter().product());
        self.reshape(dims)
    }

    /// Inserts a size-1 axis at `axis` (`-1` appends).
    pub fn unsqueeze(&self, axis: isize) -> Result<Tensor> {
        let rank = self.rank() as isize + 1;
        let a = if axis < 0 { axis + rank } else { axis };
        if a < 0 || a >= rank {
            return Err(Error::AxisOutOfRange { op: "unsqueeze", axis, shape: self.shape().clone() });
        }
        let mut dims = self.dims().to_vec();
        dims.insert(a as usize, 1);
        self.reshape(dims)
    }

    /// Removes the size-1 axis `axis`.
    pub fn squeeze(&self, axis: isize) -> Result<Tensor> {
        let a = self.shape().axis("squeeze", axis)?;
        if self.dims()[a] != 1 {
            return Err(Error::InvalidShape {
                op: "squeeze",
                shape: self.shape().clone(),
                reason: format!("axis {a} has size {}, not 1", self.dims()[a]),
            });
        }
        let mut dims = self.dims().to_vec();
        dims.remove(a);
        self.reshape(dims)
    }

    /// Reorders the axes: output axis `i` is input axis `perm[i]`.
    pub fn permute(&self, perm: &[usize]) -> Result<Tensor> {
        let mut seen = vec![false; self.rank()];
        let valid =
            perm.len() == self.rank() && perm.iter().all(|&p| p < seen.len() && !std::mem::replace(&mut seen[p], true));
        if !valid {
            return Err(Error::InvalidShape {
                op: "permute",
                shape: self.shape().clone(),
                reason: format!("{perm:?} is not a permutation of 0..{}", self.rank()),
            });
        }
        if perm.iter().enumerate().all(|(i, &p)| i == p) {
            return Ok(self.clone());
        }
        let dims: Vec<usize> = perm.iter().map(|&p| self.dims()[p]).collect();
        let s = self.device().backend().permute(&self.storage(), self.shape(), perm)?;
        Ok(self.result(s, dims.into(), &[self], || Op::Permute(self.clone(), perm.to_vec())))
    }

    /// Swaps two axes.
    pub fn transpose(&self, a: isize, b: isize) -> Result<Tensor> {
        let a = self.shape().axis("transpose", a)?;
        let b = self.shape().axis("transpose", b)?;
        let mut perm: Vec<usize> = (0..self.rank()).collect();
        perm.swap(a, b);
        self.permute(&perm)
    }

    /// Transpose of the last two axes.
    pub fn t(&self) -> Result<Tensor> {
        self.transpose(-2, -1)
    }

    /// Materialises this tensor broadcast to `shape` (NumPy rules).
    pub fn broadcast_to(&self, shape: impl Into<Shape>) -> Result<Tensor> {
        let shape = shape.into();
        if &shape == self.shape() {
            return Ok(self.clone());
        }
        if !self.shape().broadcasts_to(&shape) {
            return Err(Error::ShapeMismatch {
                op: "broadcast_to",
                lhs: self.shape().clone(),
                rhs: shape,
                reason: "the source does not broadcast to the target".into(),
            });
        }
        shape.checked_numel("broadcast_to")?;
        let s = self.device().backend().broadcast_to(&self.storage(), self.shape(), &shape)?;
        Ok(self.result(s, shape, &[self], || Op::Broadcast(self.clone())))
    }

    /// `len` entries of `axis` starting at `start`.
    pub fn narrow(&self, axis: isize, start: usize, len: usize) -> Result<Tensor> {
        let a = self.shape().axis("narrow", axis)?;
        let size = self.dims()[a];
        if start.checked_add(len).is_none_or(|end| end > size) {
            return Err(Error::InvalidShape {
                op: "narrow",
                shape: self.shape().clone(),
                reason: format!("range {start}..{} exceeds axis {a} of size {size}", start.saturating_add(len)),
            });
        }
        if start == 0 && len == size {
            return Ok(self.clone());
        }
        let mut dims = self.dims().to_vec();
        dims[a] = len;
        let s = self.device().backend().narrow(&self.storage(), self.shape(), a, start, len)?;
        Ok(self.result(s, dims.into(), &[self], || Op::Narrow(self.clone(), a, start)))
    }

    /// Joins tensors along `axis`; all other axes must match.
    pub fn concat(tensors: &[&Tensor], axis: isize) -> Result<Tensor> {
        let first =
            *tensors.first().ok_or_else(|| Error::invalid("concat", "needs at least one tensor, received none"))?;
        let a = first.shape().axis("concat", axis)?;
        let mut total = 0;
        for t in tensors {
            first.same_device("concat", t)?;
            first.same_dtype("concat", t)?;
            let fits = t.rank() == first.rank() && (0..t.rank()).all(|i| i == a || t.dims()[i] == first.dims()[i]);
            if !fits {
                return Err(Error::ShapeMismatch {
                    op: "concat",
                    lhs: first.shape().clone(),
                    rhs: t.shape().clone(),
                    reason: format!("all axes but {a} must match"),
                });
            }
            total = usize::checked_add(total, t.dims()[a]).ok_or_else(|| Error::SizeOverflow {
                op: "concat".into(),
                message: format!("axis {a} of the result would be longer than usize counts"),
            })?;
        }
        if tensors.len() == 1 {
            return Ok(first.clone());
        }
        let mut dims = first.dims().to_vec();
        dims[a] = total;
        Shape::from(dims.as_slice()).checked_numel("concat")?;
        let guards: Vec<_> = tensors.iter().map(|t| t.storage()).collect();
        let parts: Vec<(&Storage, &Shape)> = guards.iter().zip(tensors).map(|(g, t)| (&**g, t.shape())).collect();
        let s = first.device().backend().concat(&parts, a)?;
        drop(parts);
        drop(guards);
        Ok(first.result(s, dims.into(), tensors, || Op::Concat(tensors.iter().map(|t| (*t).clone()).collect(), a)))
    }

    /// Selects entries along `axis` by an `i64` index tensor of any shape:
    /// the result's shape is `shape[..axis] ++ indices.shape ++ shape[axis+1..]`.
    /// An index outside `0..shape[axis]` is an error naming it.
    ///
    /// With `axis = 0` on an `[vocab, dim]` table this is an embedding lookup.
    pub fn gather(&self, axis: isize, indices: &Tensor) -> Result<Tensor> {
        let a = self.shape().axis("gather", axis)?;
        self.same_device("gather", indices)?;
        indices.expect_dtype("gather", DType::I64)?;
        let flat = indices.reshape([indices.numel()])?;
        let s = {
            let (x, i) = (self.storage(), flat.storage());
            self.device().backend().gather(&x, self.shape(), a, &i)?
        };
        let mut flat_dims = self.dims().to_vec();
        flat_dims[a] = indices.numel();
        let out = self.result(s, flat_dims.into(), &[self], || Op::Gather(self.clone(), flat.clone(), a));
        let mut dims = self.dims()[..a].to_vec();
        dims.extend_from_slice(indices.dims());
        dims.extend_from_slice(&self.dims()[a + 1..]);
        out.reshape(dims)
    }

    /// Adds `src` into a copy of `self` at `indices` (1-D `i64`) along `axis`;
    /// repeated indices accumulate. `src` has `self`'s shape with
    /// `shape[axis] = indices.len()`.
    pub fn index_add(&self, axis: isize, indices: &Tensor, src: &Tensor) -> Result<Tensor> {
        let a = self.shape().axis("index_add", axis)?;
        self.same_device("index_add", indices)?;
        self.same_device("index_add", src)?;
        indices.expect_dtype("index_add", DType::I64)?;
        self.same_dtype("index_add", src)?;
        if indices.rank() != 1 {
            return Err(Error::InvalidShape {
                op: "index_add",
                shape: indices.shape().clone(),
                reason: "indices must be rank 1".into(),
            });
        }
        let mut want = self.dims().to_vec();
        want[a] = indices.numel();
        if src.dims() != want.as_slice() {
            return Err(Error::ShapeMismatch {
                op: "index_add",
                lhs: self.shape().clone(),
                rhs: src.shape().clone(),
                reason: format!("src must have shape {}", Shape::from(want)),
            });
        }
        let s = {
            let (x, i, v) = (self.storage(), indices.storage(), src.storage());
            self.device().backend().index_add(&x, self.shape(), a, &i, &v)?
        };
        Ok(self.result(s, self.shape().clone(), &[self, src], || {
            Op::IndexAdd(self.clone(), indices.clone(), src.clone(), a)
        }))
    }

    /// Extracts sliding-window patches (im2col) from a channels-last
    /// `[batch, s_1, .., s_d, channels]` `f32` tensor: the result is
    /// `[batch, o_1, .., o_d, k_1, .., k_d, channels]`, where `o_i` are
    /// [`Window::output_sizes`] and `k_i` the kernel sizes; cells in the
    /// padding read `pad_value` (`0` for a convolution, `f64::NEG_INFINITY`
    /// for max pooling). Its gradient is [`fold`](Tensor::fold).
    ///
    /// ```
    /// # use strata_core::{Tensor, Window};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// // A 1-d signal [1, 2, 3, 4] (batch 1, one channel), windows of 2 with stride 2.
    /// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4, 1], dev)?;
    /// let p = x.unfold(&Window::new(&[2]).strides(&[2]), 0.0)?;
    /// assert_eq!(p.dims(), &[1, 2, 2, 1]);
    /// assert_eq!(p.to_vec::<f32>()?, vec![1.0, 2.0, 3.0, 4.0]);
    /// // A convolution is unfold + matmul with the kernel as [taps·channels, filters].
    /// let k = Tensor::new(vec![1.0f32, -1.0], [2, 1], dev)?;
    /// let y = p.reshape([2, 2])?.matmul(&k)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, -1.0]);
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn unfold(&self, window: &Window, pad_value: f64) -> Result<Tensor> {
        let d = self.expect_window_rank("unfold", window)?;
        let spec = self.window_spec("unfold", window, &self.dims()[1..d + 1], pad_value)?;
        self.unfold_spec(&spec)
    }

    /// The adjoint of [`unfold`](Tensor::unfold) (col2im): `self` holds
    /// patches `[batch, o_1, .., o_d, k_1, .., k_d, channels]` taken by
    /// `window` from an image with spatial sizes `spatial`; each entry is
    /// added back at the cell it came from, giving
    /// `[batch, s_1, .., s_d, channels]` (entries from padding are dropped).
    /// A transposed convolution is a matmul followed by `fold`.
    ///
    /// ```
    /// # use strata_core::{Tensor, Window};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// // Overlapping windows of 2 with stride 1 over 3 cells: the middle cell is read twice.
    /// let ones = Tensor::ones([1, 2, 2, 1], strata_core::DType::F32, dev)?;
    /// let counts = ones.fold(&Window::new(&[2]), &[3])?;
    /// assert_eq!(counts.to_vec::<f32>()?, vec![1.0, 2.0, 1.0]);
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn fold(&self, window: &Window, spatial: &[usize]) -> Result<Tensor> {
        let d = window.rank();
        if self.rank() != 2 * d + 2 {
            return Err(Error::InvalidShape {
                op: "fold",
                shape: self.shape().clone(),
                reason: format!(
                    "a {d}-d window's patches have rank {} (batch, positions.., taps.., channels)",
                    2 * d + 2
                ),
            });
        }
        let spec = self.window_spec("fold", window, spatial, 0.0)?;
        if self.shape() != &spec.patches_shape() {
            return Err(Error::InvalidShape {
                op: "fold",
                shape: self.shape().clone(),
                reason: format!("{window:?} over spatial sizes {spatial:?} takes patches {}", spec.patches_shape()),
            });
        }
        self.fold_spec(&spec)
    }

    /// A convolution in one op: `act(unfold(self) · w + b)` for a
    /// channels-last image `self` (`[batch, s_1, .., s_d, channels]`, `f32`),
    /// a kernel matrix `w` of `[k_1·..·k_d·channels, filters]` (Keras'
    /// `[k_1, .., k_d, channels, filters]` kernel, flattened) and an optional
    /// bias of `[filters]`; padding reads 0. The result is
    /// `[batch, o_1, .., o_d, filters]`. The backend may run it without
    /// materialising the patches ([`FastPaths::conv`](crate::FastPaths::conv)).
    ///
    /// ```
    /// # use strata_core::{LinearActivation, Tensor, Window};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// // The signal [1, 2, 3, 4], one channel, and the difference kernel [1, -1].
    /// let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [1, 4, 1], dev)?;
    /// let k = Tensor::new(vec![1.0f32, -1.0], [2, 1], dev)?;
    /// let y = x.conv(&k, None, &Window::new(&[2]), LinearActivation::Identity)?;
    /// assert_eq!(y.dims(), &[1, 3, 1]);
    /// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, -1.0, -1.0]);
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn conv(&self, w: &Tensor, b: Option<&Tensor>, window: &Window, act: LinearActivation) -> Result<Tensor> {
        const OP: &str = "conv";
        let d = self.expect_window_rank(OP, window)?;
        self.same_device(OP, w)?;
        w.expect_dtype(OP, DType::F32)?;
        let window = self.window_spec(OP, window, &self.dims()[1..d + 1], 0.0)?;
        let k = window.patch_len();
        let mismatch = |rhs: &Tensor, reason: String| Error::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
            reason,
        };
        if w.rank() != 2 || w.dims()[0] != k {
            return Err(mismatch(
                w,
                format!("the kernel matrix must have {k} rows (window taps · channels) and rank 2"),
            ));
        }
        let filters = w.dims()[1];
        if let Some(b) = b {
            self.same_device(OP, b)?;
            b.expect_dtype(OP, DType::F32)?;
            if b.dims() != [filters] {
                return Err(mismatch(b, format!("the bias must have shape ({filters},)")));
            }
        }
        let spec = ConvSpec { window, filters, activation: act };
        let shape = spec.output_shape();
        shape.checked_numel(OP)?;
        let s = {
            let (xs, ws) = (self.storage(), w.storage());
            let bs = b.map(|b| b.storage());
            self.device().backend().conv(&xs, &ws, bs.as_deref(), &spec)?
        };
        let mut inputs = vec![self, w];
        inputs.extend(b);
        Ok(self.result(s, shape, &inputs, || Op::Conv {
            x: self.clone(),
            w: w.clone(),
            b: b.cloned(),
            spec: Box::new(spec.clone()),
        }))
    }

    /// The image gradient of a [`conv`](Tensor::conv) from `self`, the
    /// gradient before its activation; not recorded for autodiff.
    pub(crate) fn conv_input_grad(&self, w: &Tensor, spec: &ConvSpec) -> Result<Tensor> {
        let s = self.device().backend().conv_input_grad(&self.storage(), &w.storage(), spec)?;
        Ok(Self::make(s, spec.window.image_shape(), self.device().clone(), None))
    }

    /// The kernel gradient of a [`conv`](Tensor::conv) of `self` from `g`,
    /// the gradient before its activation; not recorded for autodiff.
    pub(crate) fn conv_kernel_grad(&self, g: &Tensor, spec: &ConvSpec) -> Result<Tensor> {
        let s = self.device().backend().conv_kernel_grad(&self.storage(), &g.storage(), spec)?;
        let shape = Shape::from([spec.window.patch_len(), spec.filters]);
        Ok(Self::make(s, shape, self.device().clone(), None))
    }

    /// An LSTM's whole recurrence in one op (see [`LstmSpec`]): from the
    /// input projection `xw` `[steps, batch, 4·units]` (time-major, in the
    /// order the steps run, gate blocks i, f, c, o), the recurrent kernel
    /// `u` `[units, 4·units]`, the initial states `h0`, `c0` `[batch,
    /// units]` and an optional `mask` `[steps, batch]` (0: the row skips
    /// that step and keeps its states), the states after every step,
    /// `[steps, batch, 2·units]` with `h` in the first `units` columns and
    /// `c` in the rest. Sigmoid gates and tanh, Keras' defaults; gradients
    /// flow to `xw`, `u`, `h0` and `c0`.
    ///
    /// ```
    /// # use strata_core::{DType, Tensor};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// // One unit, one step, z = (0, 0, 0, 0): i = f = o = ½, g = 0.
    /// let xw = Tensor::zeros([1, 1, 4], DType::F32, dev)?;
    /// let u = Tensor::zeros([1, 4], DType::F32, dev)?;
    /// let (h0, c0) = (Tensor::zeros([1, 1], DType::F32, dev)?, Tensor::ones([1, 1], DType::F32, dev)?);
    /// let y = Tensor::lstm(&xw, &u, &h0, &c0, None)?.to_vec::<f32>()?;
    /// assert_eq!(y, [0.5 * 0.5f32.tanh(), 0.5]);   // h = o·tanh(c), c = f·c0 + i·g
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn lstm(xw: &Tensor, u: &Tensor, h0: &Tensor, c0: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "lstm";
        for t in [u, h0, c0].into_iter().chain(mask) {
            xw.same_device(OP, t)?;
        }
        for t in [xw, u, h0, c0].into_iter().chain(mask) {
            t.expect_dtype(OP, DType::F32)?;
        }
        let bad = |t: &Tensor, reason: String| Error::ShapeMismatch {
            op: OP,
            lhs: xw.shape().clone(),
            rhs: t.shape().clone(),
            reason,
        };
        if xw.rank() != 3 || xw.dims()[2] % 4 != 0 {
            return Err(bad(xw, "xw must be [steps, batch, 4·units]".into()));
        }
        let (steps, batch, units) = (xw.dims()[0], xw.dims()[1], xw.dims()[2] / 4);
        if steps == 0 {
            return Err(bad(xw, "needs at least one step".into()));
        }
        if u.dims() != [units, 4 * units] {
            return Err(bad(u, format!("the recurrent kernel must be [{units}, {}]", 4 * units)));
        }
        for s in [h0, c0] {
            if s.dims() != [batch, units] {
                return Err(bad(s, format!("the initial states must be [{batch}, {units}]")));
            }
        }
        if let Some(m) = mask {
            if m.dims() != [steps, batch] {
                return Err(bad(m, format!("the mask must be [{steps}, {batch}]")));
            }
        }
        let track = grad_enabled() && [xw, u, h0, c0].iter().any(|t| t.requires_grad());
        let spec = LstmSpec { steps, batch, units, keep_gates: track };
        let (states, gates) = {
            let (x, us, h, c) = (xw.storage(), u.storage(), h0.storage(), c0.storage());
            let ms = mask.map(|m| m.storage());
            xw.device().backend().lstm(&x, &us, &h, &c, ms.as_deref(), &spec)?
        };
        let gates_shape = if track { spec.gates_shape() } else { Shape::from([gates.len()]) };
        if gates.len() != gates_shape.numel() {
            return Err(Error::Backend {
                backend: xw.device().name().to_string(),
                message: format!("lstm: returned {} gate values, expected {gates_shape}", gates.len()),
            });
        }
        let gates = Self::make(gates, gates_shape, xw.device().clone(), None);
        Ok(xw.result(states, spec.states_shape(), &[xw, u, h0, c0], || Op::Lstm {
            xw: xw.clone(),
            u: u.clone(),
            h0: h0.clone(),
            c0: c0.clone(),
            mask: mask.cloned(),
            gates,
            spec,
        }))
    }

    /// The gradients of a [`Tensor::lstm`] from `self`, the gradient of its
    /// states: of `xw`, `u`, `h0` and `c0`, in that order; not recorded.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn lstm_grad(
        &self,
        u: &Tensor,
        h0: &Tensor,
        c0: &Tensor,
        mask: Option<&Tensor>,
        states: &Tensor,
        gates: &Tensor,
        spec: &LstmSpec,
    ) -> Result<[Tensor; 4]> {
        let g = {
            let (d, us, h, c, s, gs) =
                (self.storage(), u.storage(), h0.storage(), c0.storage(), states.storage(), gates.storage());
            let ms = mask.map(|m| m.storage());
            self.device().backend().lstm_grad(&d, &us, &h, &c, ms.as_deref(), &s, &gs, spec)?
        };
        let dev = self.device().clone();
        let unit = Shape::from([spec.batch, spec.units]);
        Ok([
            Self::make(g.xw, spec.gates_shape(), dev.clone(), None),
            Self::make(g.u, Shape::from([spec.units, 4 * spec.units]), dev.clone(), None),
            Self::make(g.h0, unit.clone(), dev.clone(), None),
            Self::make(g.c0, unit, dev, None),
        ])
    }

    /// A GRU's whole recurrence in one op, Keras' `reset_after` form (see
    /// [`GruSpec`]): from the input projection `xw` `[steps, batch,
    /// 3·units]` (time-major, in the order the steps run, gate blocks z, r,
    /// h), the recurrent kernel `u` `[units, 3·units]`, the recurrent bias
    /// `b` `[3·units]` if any, the initial state `h0` `[batch, units]` and
    /// an optional `mask` `[steps, batch]` (0: the row skips that step and
    /// keeps its state), the state after every step, `[steps, batch,
    /// units]`. Sigmoid gates and tanh, Keras' defaults; gradients flow to
    /// `xw`, `u`, `b` and `h0`.
    ///
    /// ```
    /// # use strata_core::{DType, Tensor};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// // One unit, one step, everything 0 but h0 = 1: z = r = ½, ĥ = 0.
    /// let xw = Tensor::zeros([1, 1, 3], DType::F32, dev)?;
    /// let u = Tensor::zeros([1, 3], DType::F32, dev)?;
    /// let h0 = Tensor::ones([1, 1], DType::F32, dev)?;
    /// let y = Tensor::gru(&xw, &u, None, &h0, None)?.to_vec::<f32>()?;
    /// assert_eq!(y, [0.5]);   // h = z·h0 + (1 − z)·ĥ
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn gru(xw: &Tensor, u: &Tensor, b: Option<&Tensor>, h0: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        const OP: &str = "gru";
        for t in [u, h0].into_iter().chain(b).chain(mask) {
            xw.same_device(OP, t)?;
        }
        for t in [xw, u, h0].into_iter().chain(b).chain(mask) {
            t.expect_dtype(OP, DType::F32)?;
        }
        let bad = |t: &Tensor, reason: String| Error::ShapeMismatch {
            op: OP,
            lhs: xw.shape().clone(),
            rhs: t.shape().clone(),
            reason,
        };
        if xw.rank() != 3 || xw.dims()[2] % 3 != 0 {
            return Err(bad(xw, "xw must be [steps, batch, 3·units]".into()));
        }
        let (steps, batch, units) = (xw.dims()[0], xw.dims()[1], xw.dims()[2] / 3);
        if steps == 0 {
            return Err(bad(xw, "needs at least one step".into()));
        }
        if u.dims() != [units, 3 * units] {
            return Err(bad(u, format!("the recurrent kernel must be [{units}, {}]", 3 * units)));
        }
        if let Some(b) = b {
            if b.dims() != [3 * units] {
                return Err(bad(b, format!("the recurrent bias must be [{}]", 3 * units)));
            }
        }
        if h0.dims() != [batch, units] {
            return Err(bad(h0, format!("the initial state must be [{batch}, {units}]")));
        }
        if let Some(m) = mask {
            if m.dims() != [steps, batch] {
                return Err(bad(m, format!("the mask must be [{steps}, {batch}]")));
            }
        }
        let track = grad_enabled() && [xw, u, h0].into_iter().chain(b).any(|t| t.requires_grad());
        let spec = GruSpec { steps, batch, units, keep_gates: track };
        let (states, gates) = {
            let (x, us, h) = (xw.storage(), u.storage(), h0.storage());
            let bs = b.map(|b| b.storage());
            let ms = mask.map(|m| m.storage());
            xw.device().backend().gru(&x, &us, bs.as_deref(), &h, ms.as_deref(), &spec)?
        };
        let gates_shape = if track { spec.gates_shape() } else { Shape::from([gates.len()]) };
        if gates.len() != gates_shape.numel() {
            return Err(Error::Backend {
                backend: xw.device().name().to_string(),
                message: format!("gru: returned {} gate values, expected {gates_shape}", gates.len()),
            });
        }
        let gates = Self::make(gates, gates_shape, xw.device().clone(), None);
        let inputs: Vec<&Tensor> = [xw, u, h0].into_iter().chain(b).collect();
        Ok(xw.result(states, spec.states_shape(), &inputs, || Op::Gru {
            xw: xw.clone(),
            u: u.clone(),
            b: b.cloned(),
            h0: h0.clone(),
            mask: mask.cloned(),
            gates,
            spec,
        }))
    }

    /// The gradients of a [`Tensor::gru`] from `self`, the gradient of its
    /// states: of `xw`, `u`, the recurrent bias and `h0`, in that order;
    /// not recorded.
    pub(crate) fn gru_grad(
        &self,
        u: &Tensor,
        h0: &Tensor,
        mask: Option<&Tensor>,
        states: &Tensor,
        gates: &Tensor,
        spec: &GruSpec,
    ) -> Result<[Tensor; 4]> {
        let g = {
            let (d, us, h, s, gs) = (self.storage(), u.storage(), h0.storage(), states.storage(), gates.storage());
            let ms = mask.map(|m| m.storage());
            self.device().backend().gru_grad(&d, &us, &h, ms.as_deref(), &s, &gs, spec)?
        };
        let dev = self.device().clone();
        let n = spec.units;
        Ok([
            Self::make(g.xw, spec.input_shape(), dev.clone(), None),
            Self::make(g.u, Shape::from([n, 3 * n]), dev.clone(), None),
            Self::make(g.b, Shape::from([3 * n]), dev.clone(), None),
            Self::make(g.h0, Shape::from([spec.batch, n]), dev, None),
        ])
    }

    /// Max pooling in one op: the largest value of each `window` over the
    /// channels-last image `self` (`[batch, s_1, .., s_d, channels]`, `f32`),
    /// per channel, giving `[batch, o_1, .., o_d, channels]`. Padding cells
    /// never win. The gradient goes to the first cell of each window that
    /// holds its maximum (window order), as in Keras.
    ///
    /// ```
    /// # use strata_core::{Tensor, Window};
    /// # fn run(dev: &strata_core::Device) -> strata_core::Result<()> {
    /// let x = Tensor::new(vec![1.0f32, 5.0, 3.0, 2.0], [1, 4, 1], dev)?;
    /// let y = x.max_pool(&Window::new(&[2]).strides(&[2]))?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![5.0, 3.0]);
    /// # Ok(()) }
    /// # run(&strata_native::device()).unwrap();
    /// ```
    pub fn max_pool(&self, window: &Window) -> Result<Tensor> {
        const OP: &str = "max_pool";
        let d = self.expect_window_rank(OP, window)?;
        let spec = self.window_spec(OP, window, &self.dims()[1..d + 1], f64::NEG_INFINITY)?;
        let shape = spec.pooled_shape();
        let s = self.device().backend().max_pool(&self.storage(), &spec)?;
        Ok(self.result(s, shape, &[self], || Op::MaxPool(self.clone(), Box::new(spec.clone()))))
    }

    /// The gradient of a [`max_pool`](Tensor::max_pool) of `self` from `g`;
    /// not recorded for autodiff.
    pub(crate) fn max_pool_grad(&self, g: &Tensor, spec: &UnfoldSpec) -> Result<Tensor> {
        let s = self.device().backend().max_pool_grad(&self.storage(), &g.storage(), spec)?;
        Ok(Self::make(s, self.shape().clone(), self.device().clone(), None))
    }

    /// The window's rank `d`, after checking that this image has rank
    /// `d + 2` (batch, spatial.., channels).
    fn expect_window_rank(&self, op: &'static str, window: &Window) -> Result<usize> {
        let d = window.rank();
        if self.rank() != d + 2 {
            return Err(Error::InvalidShape {
                op,
                shape: self.shape().clone(),
                reason: format!("a {d}-d window needs rank {} input (batch, spatial.., channels)", d + 2),
            });
        }
        Ok(d)
    }

    /// The [`UnfoldSpec`] for `window` over `spatial`, with this tensor's
    /// first axis as the batch and its last as the channels.
    fn window_spec(&self, op: &'static str, window: &Window, spatial: &[usize], pad_value: f64) -> Result<UnfoldSpec> {
        self.expect_dtype(op, DType::F32)?;
        if self.rank() < 3 {
            return Err(Error::InvalidShape {
                op,
                shape: self.shape().clone(),
                reason: "expected (batch, spatial.., channels) with at least one spatial axis".into(),
            });
        }
        let axes = window.axes(spatial).map_err(|e| match e {
            Error::InvalidArgument { message, .. } => Error::InvalidArgument { op, message },
            e => e,
        })?;
        let spec = UnfoldSpec { batch: self.dims()[0], channels: self.dims()[self.rank() - 1], axes, pad_value };
        spec.patches_shape().checked_numel(op)?;
        Ok(spec)
    }

    /// [`unfold`](Tensor::unfold) with a resolved spec (the shape is already checked).
    pub(crate) fn unfold_spec(&self, spec: &UnfoldSpec) -> Result<Tensor> {
        let s = self.device().backend().unfold(&self.storage(), spec)?;
        Ok(self.result(s, spec.patches_shape(), &[self], || Op::Unfold(self.clone(), Box::new(spec.clone()))))
    }

    /// [`fold`](Tensor::fold) with a resolved spec (the shape is already checked).
    pub(crate) fn fold_spec(&self, spec: &UnfoldSpec) -> Result<Tensor> {
        let s = self.device().backend().fold(&self.storage(), spec)?;
        Ok(self.result(s, spec.image_shape(), &[self], || Op::Fold(self.clone(), Box::new(spec.clone()))))
    }

    /// `cond ? on_true : on_false` elementwise, all three broadcast together.
    /// `cond` may be any dtype (non-zero is true); the branches share a dtype.
    pub fn where_cond(cond: &Tensor, on_true: &Tensor, on_false: &Tensor) -> Result<Tensor> {
        let shape = on_true.check_binary("where", on_false)?;
        cond.same_device("where", on_true)?;
        let shape = Shape::broadcast("where", cond.shape(), &shape)?;
        let c = cond.broadcast_to(shape.clone())?;
        let t = on_true.broadcast_to(shape.clone())?;
        let f = on_false.broadcast_to(shape.clone())?;
        let s = {
            let (cs, ts, fs) = (c.storage(), t.storage(), f.storage());
            on_true.device().backend().where_cond(&cs, &ts, &fs)?
        };
        Ok(t.result(s, shape, &[&t, &f], || Op::Where(c.clone(), t.clone(), f.clone())))
    }

    /// Converts to `dtype` (`f32` → `i64` truncates towards zero). Gradients do not flow through casts.
    pub fn cast(&self, dtype: DType) -> Result<Tensor> {
        if dtype == self.dtype() {
            return Ok(self.clone());
        }
        let s = self.device().backend().cast(&self.storage(), dtype)?;
        Ok(Self::make(s, self.shape().clone(), self.device().clone(), None))
    }

    /// Softmax along `axis`, numerically stable.
    pub fn softmax(&self, axis: isize) -> Result<Tensor> {
        self.along_last("softmax", axis, |t| {
            let s = t.device().backend().softmax(&t.storage(), t.shape())?;
            let mut out = t.result(s, t.shape().clone(), &[t], || Op::Softmax(t.clone()));
            if let Some(inner) = Arc::get_mut(&mut out.0) {
                inner.softmax_input = Some(t.clone());
            }
            Ok(out)
        })
    }

    /// Log-softmax along `axis`, numerically stable.
    pub fn log_softmax(&self, axis: isize) -> Result<Tensor> {
        self.along_last("log_softmax", axis, |t| {
            let s = t.device().backend().log_softmax(&t.storage(), t.shape())?;
            Ok(t.result(s, t.shape().clone(), &[t], || Op::LogSoftmax(t.clone())))
        })
    }

    /// `act(self · w + b)`: a Dense layer's forward pass as one op, for
    /// `self` of `[..., k]` (rank ≥ 2), `w` of `[k, n]` and an optional `b`
    /// of `[n]`; the result is `[..., n]`. Backends fuse the bias and the
    /// activation into the product (native adds them band by band as the
    /// product is written), and the backward pass reads only the output.
    ///
    /// ```
    /// # use strata_core::{Tensor, LinearActivation};
    /// # fn main() -> strata_core::Result<()> {
    /// # let dev = strata_native::device();
    /// let x = Tensor::new(vec![1.0f32, 2.0], [1, 2], &dev)?;
    /// let w = Tensor::new(vec![1.0f32, -1.0, 1.0, -1.0], [2, 2], &dev)?;
    /// let b = Tensor::new(vec![0.5f32, 0.5], [2], &dev)?;
    /// let y = x.linear(&w, Some(&b), LinearActivation::Relu)?;
    /// assert_eq!(y.to_vec::<f32>()?, vec![3.5, 0.0]); // relu([3.5, -2.5])
    /// # Ok(()) }
    /// ```
    pub fn linear(&self, w: &Tensor, b: Option<&Tensor>, act: LinearActivation) -> Result<Tensor> {
        const OP: &str = "linear";
        self.same_device(OP, w)?;
        self.expect_dtype(OP, DType::F32)?;
        w.expect_dtype(OP, DType::F32)?;
        let mismatch = |rhs: &Tensor, reason: String| Error::ShapeMismatch {
            op: OP,
            lhs: self.shape().clone(),
            rhs: rhs.shape().clone(),
            reason,
        };
        if self.rank() < 2 || w.rank() != 2 {
            return Err(mismatch(w, "needs an input of rank >= 2 and a rank-2 kernel".into()));
        }
        let (k, n) = (w.dims()[0], w.dims()[1]);
        let k_in = self.dims()[self.rank() - 1];
        if k_in != k {
            return Err(mismatch(w, format!("inner dimensions differ ({k_in} vs {k})")));
        }
        if let Some(b) = b {
            self.same_device(OP, b)?;
            b.expect_dtype(OP, DType::F32)?;
            if b.dims() != [n] {
                return Err(mismatch(b, format!("the bias must have shape ({n},)")));
            }
        }
        if self.rank() > 2 {
            let rows = self.numel() / k.max(1);
            let mut dims = self.dims()[..self.rank() - 1].to_vec();
            dims.push(n);
            return self.reshape([rows, k])?.linear(w, b, act)?.reshape(dims);
        }
        let m = self.dims()[0];
        let s = {
            let (xs, ws) = (self.storage(), w.storage());
            let bs = b.map(|b| b.storage());
            self.device().backend().linear(&xs, &ws, bs.as_deref(), &LinearSpec { m, k, n, activation: act })?
        };
        let mut inputs = vec![self, w];
        inputs.extend(b);
        Ok(self.result(s, Shape::from([m, n]), &inputs, || Op::Linear {
            x: self.clone(),
            w: w.clone(),
            b: b.cloned(),
            act,
        }))
    }

    /// `self · f'(x)` from an activation's output `y = f(x)` (see
    /// [`LinearActivation::grad`]); not recorded for autodiff.
    pub(crate) fn activation_grad(&self, act: LinearActivation, y: &Tensor) -> Result<Tensor> {
        let s = self.device().backend().activation_grad(act, &y.storage(), &self.storage(), self.shape())?;
        Ok(Self::make(s, self.shape().clone(), self.device().clone(), None))
    }

    /// Softmax cross-entropy from logits over the last axis, one value per
    /// row: `-Σ_j t_j · log_softmax(self)_j`, without forming the
    /// probabilities' logarithm. `targets` are `f32` probabilities shaped
    /// like `self`, or `i64` class ids shaped like `self` without its last
    /// axis (an id outside `[0, classes)` gives a loss of 0). The gradient,
    /// `softmax(self) · Σ_j t_j - t`, flows to `self` only.
    ///
    /// ```
    /// # use strata_core::Tensor;
    /// # fn main() -> strata_core::Result<()> {
    /// # let dev = strata_native::device();
    /// let z = Tensor::new(vec![0.0f32, 0.0, 2.0, 0.0], [2, 2], &dev)?;
    /// let ids = Tensor::new(vec![1i64, 0], [2], &dev)?;
    /// let loss = z.softmax_cross_entropy(&ids)?.to_vec::<f32>()?;
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// assert!((loss[1] - (1.0 + (-2f32).exp()).ln()).abs() < 1e-6);
    /// # Ok(()) }
    /// ```
    pub fn softmax_cross_entropy(&self, targets: &Tensor) -> Result<Tensor> {
        const OP: &str = "softmax_cross_entropy";
        self.same_device(OP, targets)?;
        self.expect_dtype(OP, DType::F32)?;
        if self.rank() == 0 {
            return Err(Error::InvalidShape {
                op: OP,
                shape: self.shape().clone(),
                reason: "needs a class axis".into(),
            });
        }
        let rows = &self.dims()[..self.rank() - 1];
        let fits = match targets.dtype() {
            DType::I64 => targets.dims() == rows,
            DType::F32 => targets.dims() == self.dims(),
        };
        if !fits {
            return Err(Error::ShapeMismatch {
                op: OP,
                lhs: self.shape().clone(),
                rhs: targets.shape().clone(),
                reason: "targets must be f32 shaped like the logits, or i64 ids shaped like them without the last axis"
                    .into(),
            });
        }
        let s = self.device().backend().softmax_cross_entropy(&self.storage(), self.shape(), &targets.storage())?;
        Ok(self.result(s, Shape::from(rows), &[self], || Op::SoftmaxCrossEntropy(self.clone(), targets.clone())))
    }

    /// The gradient of [`softmax_cross_entropy`](Self::softmax_cross_entropy)
    /// with respect to `self`, given `g` per row; not recorded for autodiff.
    pub(crate) fn softmax_cross_entropy_grad(&self, targets: &Tensor, g: &Tensor) -> Result<Tensor> {
        let s = self.device().backend().softmax_cross_entropy_grad(
            &self.storage(),
            self.shape(),
            &targets.storage(),
            &g.storage(),
        )?;
        Ok(Self::make(s, self.shape().clone(), self.device().clone(), None))
    }

    /// The logits this tensor is the last-axis softmax of (`None` for any
    /// other tensor): what cross-entropy losses compute from, as Keras does
    /// for a softmax output. Kept whether or not autodiff records the
    /// softmax, so training and evaluation compute the same loss.
    ///
    /// ```
    /// # use strata_core::{no_grad, Tensor};
    /// # fn main() -> strata_core::Result<()> {
    /// # let dev = strata_native::device();
    /// let z = Tensor::new(vec![0.0f32, 40.0], [1, 2], &dev)?;
    /// let p = no_grad(|| z.softmax(-1))?;
    /// assert_eq!(p.softmax_input().map(|t| t.to_vec::<f32>()).transpose()?, Some(vec![0.0, 40.0]));
    /// assert!(p.exp()?.softmax_input().is_none());
    /// # Ok(()) }
    /// ```
    pub fn softmax_input(&self) -> Option<&Tensor> {
        self.0.softmax_input.as_ref()
    }

    /// Runs a last-axis kernel along any axis by moving that axis last and back.
    fn along_last(&self, op: &'static str, axis: isize, f: impl Fn(&Tensor) -> Result<Tensor>) -> Result<Tensor> {
        self.expect_dtype(op, DType::F32)?;
        let a = self.shape().axis(op, axis)?;
        let last = self.rank() - 1;
        if a == last {
            return f(self);
        }
        f(&self.transpose(a as isize, -1)?)?.transpose(a as isize, -1)
    }

    /// One-hot encodes `i64` class ids into `f32` with a new last axis of size
    /// `depth`. An id outside `0..depth` is an error naming it.
    pub fn one_hot(&self, depth: usize) -> Result<Tensor> {
        self.expect_dtype("one_hot", DType::I64)?;
        if self.numel() > 0 {
            let flat = self.reshape([self.numel()])?;
            let lo = flat.min(0, false)?.to_scalar::<i64>()?;
            let hi = flat.max(0, false)?.to_scalar::<i64>()?;
            let bad = if lo < 0 {
                Some(lo)
            } else if hi >= depth as i64 {
                Some(hi)
            } else {
                None
            };
            if let Some(index) = bad {
                return Err(Error::IndexOutOfRange {
                    op: "one_hot",
                    index,
                    axis: self.rank(),
                    size: depth,
                    shape: self.shape().clone(),
                });
            }
        }
        let classes = Tensor::arange(depth, DType::I64, self.device())?;
        self.unsqueeze(-1)?.binary(BinaryOp::Eq, &classes)?.cast(DType::F32)
    }
}

macro_rules! unary_methods {
    ($($(#[$doc:meta])* $name:ident => $op:ident),* $(,)?) => {
        impl Tensor {
            $($(#[$doc])* pub fn $name(&self) -> Result<Tensor> { self.unary(UnaryOp::$op) })*
        }
    };
}

unary_methods! {
    /// `-x`
    neg => Neg,
    /// `|x|`
    abs => Abs,
    /// `-1`, `0` or `1` per element
    sign => Sign,
    /// `e^x`
    exp => Exp,
    /// natural logarithm
    log => Log,
    /// square root
    sqrt => Sqrt,
    /// `x²`
    square => Square,
    /// `1 / x`
    recip => Recip,
    /// `max(x, 0)`
    relu => Relu,
    /// logistic sigmoid
    sigmoid => Sigmoid,
    /// hyperbolic tangent
    tanh => Tanh,
    /// exact (erf) GELU
    gelu => Gelu,
    /// `ln(1 + e^x)`
    softplus => Softplus,
    /// error function
    erf => Erf,
    /// sine
    sin => Sin,
    /// cosine
    cos => Cos,
    /// round down
    floor => Floor,
    /// round up
    ceil => Ceil,
}

macro_rules! binary_methods {
    ($($(#[$doc:meta])* $name:ident, $scalar:ident => $op:ident),* $(,)?) => {
        impl Tensor {
            $(
                $(#[$doc])*
                #[doc = ""]
                #[doc = "Broadcasts NumPy-style; an incompatible shape is an error naming both."]
                pub fn $name(&self, rhs: &Tensor) -> Result<Tensor> { self.binary(BinaryOp::$op, rhs) }
                $(#[$doc])*
                #[doc = ""]
                #[doc = "With a scalar right operand."]
                pub fn $scalar(&self, rhs: f64) -> Result<Tensor> { self.binary_scalar(BinaryOp::$op, rhs) }
            )*
        }
    };
}

binary_methods! {
    /// `a + b`
    add, add_scalar => Add,
    /// `a - b`
    sub, sub_scalar => Sub,
    /// `a * b`
    mul, mul_scalar => Mul,
    /// `a / b`
    div, div_scalar => Div,
    /// `a ^ b`
    pow, pow_scalar => Pow,
    /// elementwise maximum
    maximum, maximum_scalar => Maximum,
    /// elementwise minimum
    minimum, minimum_scalar => Minimum,
    /// `1` where `a == b`
    eq, eq_scalar => Eq,
    /// `1` where `a != b`
    ne, ne_scalar => Ne,
    /// `1` where `a < b`
    lt, lt_scalar => Lt,
    /// `1` where `a <= b`
    le, le_scalar => Le,
    /// `1` where `a > b`
    gt, gt_scalar => Gt,
    /// `1` where `a >= b`
    ge, ge_scalar => Ge,
}

/// An empty host vector with room for exactly `shape`'s elements, or an
/// [`Error::SizeOverflow`] naming `op`, the shape and the byte count when the
/// count overflows or the allocator refuses (instead of aborting the process).
fn host_buffer<T>(op: &str, shape: &Shape) -> Result<Vec<T>> {
    let n = shape.checked_numel(op)?;
    let mut v = Vec::new();
    v.try_reserve_exact(n).map_err(|e| Error::SizeOverflow {
        op: op.to_string(),
        message: format!(
            "cannot allocate {} bytes on the host for shape {shape}: {e}",
            n as u128 * std::mem::size_of::<T>() as u128
        ),
    })?;
    Ok(v)
}

// ------------------------------------------------------------------- display

const EDGE: usize = 3;

fn fmt_values(f: &mut fmt::Formatter<'_>, vals: &[f64], dims: &[usize], depth: usize, float: bool) -> fmt::Result {
    let fmt_one = |f: &mut fmt::Formatter<'_>, v: f64| if float { write!(f, "{v:.4}") } else { write!(f, "{v}") };
    if dims.is_empty() {
        return fmt_one(f, vals[0]);
    }
    let n = dims[0];
    let stride: usize = dims[1..].iter().product();
    write!(f, "[")?;
    let mut first = true;
    for i in 0..n {
        if n > 2 * EDGE && i == EDGE {
            write!(f, "{}...", if dims.len() > 1 { format!(",\n{}", " ".repeat(depth + 1)) } else { ", ".into() })?;
            continue;
        }
        if n > 2 * EDGE && i > EDGE && i < n - EDGE {
            continue;
        }
        if !first {
            if dims.len() > 1 {
                write!(f, ",\n{}", " ".repeat(depth + 1))?;
            } else {
                write!(f, ", ")?;
            }
        }
        first = false;
        fmt_values(f, &vals[i * stride..(i + 1) * stride], &dims[1..], depth + 1, float)?;
    }
    write!(f, "]")
}

impl fmt::Display for Tensor {
    /// Shape, dtype, device, and the values (at most three leading and three
    /// trailing entries per axis).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Tensor{} {} on {}", self.shape(), self.dtype(), self.device())?;
        let vals: Result<Vec<f64>> = match self.dtype() {
            DType::F32 => self.to_vec::<f32>().map(|v| v.into_iter().map(f64::from).collect()),
            DType::I64 => self.to_vec::<i64>().map(|v| v.into_iter().map(|x| x as f64).collect()),
        };
        match vals {
            Ok(v) if v.is_empty() => write!(f, "[]"),
            Ok(v) => fmt_values(f, &v, self.dims(), 0, self.dtype().is_float()),
            Err(e) => write!(f, "<values unavailable: {e}>"),
        }
    }
}

impl fmt::Debug for Tensor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Tensor{{id: {}, shape: {}, dtype: {}, device: {}",
            self.id().0,
            self.shape(),
            self.dtype(),
            self.device()
        )?;
        if self.is_variable() {
            write!(f, ", variable")?;
        } else if let Some(op) = self.op() {
            write!(f, ", op: {}", op.name())?;
        }
        write!(f, "}} ")?;
        fmt::Display::fmt(self, f)
    }
}
