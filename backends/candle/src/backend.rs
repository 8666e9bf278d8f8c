//! [`CandleBackend`]: construction, shared helpers and the [`Backend`] impl,
//! which dispatches to the kernel modules.

use candle_core::{DeviceLocation, Tensor};
use strata_core::{
    fast_path_defaults as defaults, Backend, BinaryOp, ConvSpec, DType, Error, FastPaths, MatmulSpec, ReduceOp, Result,
    Shape, Storage, UnaryOp, UnfoldSpec,
};

use crate::storage::CandleStorage;

/// strata's [`Backend`] on a candle device (CPU, or CUDA with the `cuda`
/// feature).
///
/// Use [`crate::cpu()`] / [`crate::cuda()`] to get a
/// [`Device`](strata_core::Device); construct a `CandleBackend` directly only
/// to call kernels without the [`Tensor`](strata_core::Tensor) front end.
///
/// # Semantics
///
/// * Candle errors come back as [`Error::Backend`] with candle's message; a
///   storage that is not a [`CandleStorage`] is an [`Error::Backend`] too.
/// * `pow` follows IEEE `powf` on the CPU (negative bases with integer
///   exponents, `0^0 = 1`, `1^NaN = 1`), through a CPU kernel of the backend's
///   own: candle's `Tensor::pow` computes `exp(b·ln a)`, which is NaN for
///   every negative base and NaN for `0^0`. On other devices the backend
///   emulates `powf` with candle ops (sign fixes for integer exponents),
///   accurate to a few ulp times `|b·ln a|`.
/// * Elementwise `maximum`/`minimum` ignore a NaN operand, like Rust's
///   `f32::max` (the conformance reference), on the CPU. Candle's kernel
///   returns the left operand whenever either is NaN; on other devices that
///   behaviour remains.
/// * `max`/`min`/`argmax`/`argmin` *reductions* use candle's kernels, which
///   keep the first element of a lane if it is NaN and otherwise skip NaNs.
///   Ties in `argmax`/`argmin` resolve to the first occurrence.
/// * Integer division by zero, and `i64::MIN / -1`, are errors, never panics.
///   Other `i64` overflow (e.g. in `add`, `mul`, `neg`) is candle's plain Rust
///   arithmetic: it wraps in release builds and panics in debug builds.
/// * `f32 → i64` casts truncate towards zero and saturate (NaN becomes 0).
#[derive(Clone, Debug)]
pub struct CandleBackend {
    device: candle_core::Device,
    name: String,
}

impl CandleBackend {
    /// A backend on an existing candle device.
    ///
    /// ```
    /// use strata_core::Backend;
    /// let b = strata_candle::CandleBackend::new(strata_candle::candle_core::Device::Cpu);
    /// assert_eq!(b.name(), "candle-cpu");
    /// ```
    pub fn new(device: candle_core::Device) -> Self {
        let name = match device.location() {
            DeviceLocation::Cpu => "candle-cpu".to_string(),
            DeviceLocation::Cuda { gpu_id } => format!("candle-cuda:{gpu_id}"),
            DeviceLocation::Metal { gpu_id } => format!("candle-metal:{gpu_id}"),
        };
        CandleBackend { device, name }
    }

    /// The CPU backend (`"candle-cpu"`).
    pub fn cpu() -> Self {
        Self::new(candle_core::Device::Cpu)
    }

    /// The backend on CUDA GPU `ordinal` (`"candle-cuda:{ordinal}"`).
    ///
    /// Without the `cuda` feature this is an [`Error::UnknownBackend`].
    pub fn cuda(ordinal: usize) -> Result<Self> {
        #[cfg(feature = "cuda")]
        {
            let device = candle_core::Device::new_cuda(ordinal).map_err(|e| Error::Backend {
                backend: format!("candle-cuda:{ordinal}"),
                message: format!("cannot open CUDA device {ordinal}: {e}"),
            })?;
            Ok(Self::new(device))
        }
        #[cfg(not(feature = "cuda"))]
        {
            Err(Error::UnknownBackend {
                name: format!("candle-cuda:{ordinal}"),
                available: "candle-cpu (strata-candle was built without the `cuda` feature; \
                            rebuild with `--features cuda`, which needs the CUDA toolkit and nvcc)"
                    .to_string(),
            })
        }
    }

    /// The candle device the kernels run on.
    pub fn device(&self) -> &candle_core::Device {
        &self.device
    }

    /// The candle tensor inside `storage` (rank 1, contiguous), or an
    /// [`Error::Backend`] when the storage belongs to another backend.
    pub fn tensor<'a>(&self, storage: &'a Storage) -> Result<&'a Tensor> {
        storage
            .downcast_ref::<CandleStorage>()
            .map(CandleStorage::tensor)
            .ok_or_else(|| self.fail(format!("{storage:?} is not candle storage (was it made by another backend?)")))
    }

    /// Wraps a candle tensor (any shape or layout, dtype `f32` or `i64`) as
    /// storage of this backend. The tensor must live on [`Self::device`].
    pub fn wrap(&self, t: Tensor) -> Result<Storage> {
        if !t.device().same_device(&self.device) {
            return Err(self.fail(format!(
                "tensor is on {:?}, the backend on {:?}",
                t.device().location(),
                self.device.location()
            )));
        }
        CandleStorage::wrap(t, &self.name)
    }

    // ----------------------------------------------------------- helpers

    /// An [`Error::Backend`] naming this backend.
    pub(crate) fn fail(&self, message: impl Into<String>) -> Error {
        Error::Backend { backend: self.name.clone(), message: message.into() }
    }

    /// Maps a candle result to a strata one.
    pub(crate) fn c<T>(&self, r: candle_core::Result<T>) -> Result<T> {
        r.map_err(|e| self.fail(e.to_string()))
    }

    /// The storage's tensor reshaped to `shape` (free for contiguous data).
    pub(crate) fn shaped(&self, s: &Storage, shape: &Shape) -> Result<Tensor> {
        let t = self.tensor(s)?;
        if t.dims() == shape.dims() {
            return Ok(t.clone());
        }
        self.c(t.reshape(shape.dims()))
    }

    /// A storage with no elements.
    pub(crate) fn empty(&self, dtype: DType) -> Result<Storage> {
        let t = self.c(Tensor::zeros(0, candle_dtype(dtype), &self.device))?;
        Ok(Storage::new(CandleStorage::from_flat(t), dtype, 0))
    }

    /// A second handle on the same (immutable) data.
    pub(crate) fn share(&self, s: &Storage) -> Result<Storage> {
        let t = self.tensor(s)?.clone();
        Ok(Storage::new(CandleStorage::from_flat(t), s.dtype(), s.len()))
    }

    /// Checks that a buffer of `len` elements of `dtype` (`what`: the shape
    /// or the count, for the message) can be allocated,
    /// before candle (which aborts the process when an allocation fails) is
    /// asked for it: an [`Error::SizeOverflow`] naming `op` and the byte
    /// count when the count overflows or a fallible host reservation of the
    /// same size fails. The probe is made for CPU buffers of 1 MiB or more
    /// only: smaller ones are not worth a second allocation, and a CUDA
    /// device's memory is not the host's (candle reports a failed CUDA
    /// allocation as an error of its own).
    pub(crate) fn probe_alloc(&self, op: &str, len: usize, dtype: DType, what: &dyn std::fmt::Display) -> Result<()> {
        let size = dtype.size_in_bytes();
        let overflow = |detail: String| Error::SizeOverflow {
            op: format!("{} {op}", self.name),
            message: format!("cannot allocate {} bytes for {what} ({dtype}): {detail}", len as u128 * size as u128),
        };
        let bytes = len
            .checked_mul(size)
            .filter(|&b| b <= isize::MAX as usize)
            .ok_or_else(|| overflow("the byte count overflows".into()))?;
        if self.device.is_cpu() && bytes >= 1 << 20 {
            let mut probe: Vec<u8> = Vec::new();
            probe.try_reserve_exact(bytes).map_err(|e| overflow(e.to_string()))?;
        }
        Ok(())
    }

    /// Checks that `s` holds `dtype`.
    pub(crate) fn expect_dtype(&self, op: &'static str, s: &Storage, dtype: DType) -> Result<()> {
        if s.dtype() != dtype {
            return Err(Error::DTypeMismatch { op, expected: dtype, received: s.dtype() });
        }
        Ok(())
    }
}

/// The candle dtype of a strata dtype.
pub(crate) fn candle_dtype(d: DType) -> candle_core::DType {
    match d {
        DType::F32 => candle_core::DType::F32,
        DType::I64 => candle_core::DType::I64,
    }
}

impl Backend for CandleBackend {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn upload_f32(&self, data: Vec<f32>) -> Result<Storage> {
        let len = data.len();
        let t = self.c(Tensor::from_vec(data, len, &self.device))?;
        Ok(Storage::new(CandleStorage::from_flat(t), DType::F32, len))
    }

    fn upload_i64(&self, data: Vec<i64>) -> Result<Storage> {
        let len = data.len();
        let t = self.c(Tensor::from_vec(data, len, &self.device))?;
        Ok(Storage::new(CandleStorage::from_flat(t), DType::I64, len))
    }

    fn download_f32(&self, x: &Storage) -> Result<Vec<f32>> {
        self.expect_dtype("download_f32", x, DType::F32)?;
        let t = self.tensor(x)?;
        self.c(t.to_vec1::<f32>())
    }

    fn download_i64(&self, x: &Storage) -> Result<Vec<i64>> {
        self.expect_dtype("download_i64", x, DType::I64)?;
        let t = self.tensor(x)?;
        self.c(t.to_vec1::<i64>())
    }

    fn full(&self, value: f64, len: usize, dtype: DType) -> Result<Storage> {
        self.probe_alloc("full", len, dtype, &format_args!("{len} elements"))?;
        let t = match dtype {
            DType::F32 => Tensor::full(value as f32, len, &self.device),
            DType::I64 => Tensor::full(value as i64, len, &self.device),
        };
        let t = self.c(t)?;
        Ok(Storage::new(CandleStorage::from_flat(t), dtype, len))
    }

    fn unary(&self, op: UnaryOp, x: &Storage) -> Result<Storage> {
        self.unary_impl(op, x)
    }

    fn binary(
        &self,
        op: BinaryOp,
        lhs: &Storage,
        lhs_shape: &Shape,
        rhs: &Storage,
        rhs_shape: &Shape,
        out: &Shape,
    ) -> Result<Storage> {
        self.binary_impl(op, lhs, lhs_shape, rhs, rhs_shape, out)
    }

    fn reduce(&self, op: ReduceOp, x: &Storage, shape: &Shape, axes: &[usize]) -> Result<Storage> {
        self.reduce_impl(op, x, shape, axes)
    }

    fn matmul(&self, lhs: &Storage, rhs: &Storage, spec: &MatmulSpec) -> Result<Storage> {
        self.matmul_impl(lhs, rhs, spec)
    }

    fn permute(&self, x: &Storage, shape: &Shape, perm: &[usize]) -> Result<Storage> {
        self.permute_impl(x, shape, perm)
    }

    fn broadcast_to(&self, x: &Storage, shape: &Shape, out: &Shape) -> Result<Storage> {
        self.broadcast_to_impl(x, shape, out)
    }

    fn narrow(&self, x: &Storage, shape: &Shape, axis: usize, start: usize, len: usize) -> Result<Storage> {
        self.narrow_impl(x, shape, axis, start, len)
    }

    fn concat(&self, parts: &[(&Storage, &Shape)], axis: usize) -> Result<Storage> {
        self.concat_impl(parts, axis)
    }

    fn gather(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage) -> Result<Storage> {
        self.gather_impl(x, shape, axis, indices)
    }

    fn index_add(&self, x: &Storage, shape: &Shape, axis: usize, indices: &Storage, src: &Storage) -> Result<Storage> {
        self.index_add_impl(x, shape, axis, indices, src)
    }

    fn where_cond(&self, cond: &Storage, on_true: &Storage, on_false: &Storage) -> Result<Storage> {
        self.where_cond_impl(cond, on_true, on_false)
    }

    fn cast(&self, x: &Storage, dtype: DType) -> Result<Storage> {
        self.cast_impl(x, dtype)
    }

    fn unfold(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        self.unfold_impl(x, spec)
    }

    fn fold(&self, cols: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        self.fold_impl(cols, spec)
    }
}

impl FastPaths for CandleBackend {
    fn find_non_finite(&self, x: &Storage) -> Result<Option<usize>> {
        self.expect_dtype("find_non_finite", x, DType::F32)?;
        let t = self.tensor(x)?;
        {
            // On the CPU, scan the buffer in place (it is contiguous and rank 1).
            let (storage, layout) = t.storage_and_layout();
            if let (candle_core::Storage::Cpu(candle_core::CpuStorage::F32(v)), Some((start, end))) =
                (&*storage, layout.contiguous_offsets())
            {
                return Ok(strata_core::fast_path_defaults::first_non_finite(&v[start..end]));
            }
        }
        // Elsewhere, one reduction on the device (x - x is NaN exactly where
        // x is not finite); the index is looked for only when there is one.
        let bad = self.c(t.sub(t).and_then(|d| d.sum_all()).and_then(|s| s.to_scalar::<f32>()))?;
        if bad.is_finite() {
            return Ok(None);
        }
        Ok(strata_core::fast_path_defaults::first_non_finite(&self.c(t.to_vec1::<f32>())?))
    }

    fn binary_scalar(&self, op: BinaryOp, x: &Storage, shape: &Shape, scalar: f64) -> Result<Storage> {
        self.binary_scalar_impl(op, x, shape, scalar)
    }

    // Convolutions use candle's own `conv2d` / `conv_transpose2d` off the
    // CPU only: on the CPU they measured 2x slower than the default (patches
    // by `index_select`, then one matmul) in the MNIST convnet, training and
    // predict alike (`bench --child convnet candle`, 2 threads).
    fn conv(&self, x: &Storage, w: &Storage, b: Option<&Storage>, spec: &ConvSpec) -> Result<Storage> {
        if !self.device().is_cpu() {
            if let Some(y) = self.conv_impl(x, w, b, spec)? {
                return Ok(y);
            }
        }
        defaults::conv(self, x, w, b, spec)
    }

    fn conv_input_grad(&self, g: &Storage, w: &Storage, spec: &ConvSpec) -> Result<Storage> {
        if !self.device().is_cpu() {
            if let Some(gx) = self.conv_input_grad_impl(g, w, spec)? {
                return Ok(gx);
            }
        }
        defaults::conv_input_grad(self, g, w, spec)
    }

    fn conv_kernel_grad(&self, x: &Storage, g: &Storage, spec: &ConvSpec) -> Result<Storage> {
        if !self.device().is_cpu() {
            if let Some(gk) = self.conv_kernel_grad_impl(x, g, spec)? {
                return Ok(gk);
            }
        }
        defaults::conv_kernel_grad(self, x, g, spec)
    }

    fn max_pool(&self, x: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        match self.max_pool_impl(x, spec)? {
            Some(y) => Ok(y),
            None => defaults::max_pool(self, x, spec),
        }
    }

    fn max_pool_grad(&self, x: &Storage, g: &Storage, spec: &UnfoldSpec) -> Result<Storage> {
        match self.max_pool_grad_impl(x, g, spec)? {
            Some(gx) => Ok(gx),
            None => defaults::max_pool_grad(self, x, g, spec),
        }
    }

    fn softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        self.softmax_impl(x, shape)
    }

    fn log_softmax(&self, x: &Storage, shape: &Shape) -> Result<Storage> {
        self.log_softmax_impl(x, shape)
    }
}
