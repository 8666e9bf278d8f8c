//! The native backend's data type and the helpers that get it back out of an
//! opaque [`Storage`].

use strata_core::{DType, Error, Result, Storage};

/// The backend name, used in error messages.
pub(crate) const NAME: &str = "native";

/// What the native backend keeps inside a [`Storage`]: a plain host vector.
///
/// Tensors on the native device hold one of these; code that wants to reach
/// the raw values of a native tensor without a copy can downcast the storage:
///
/// ```
/// use strata_core::{Storage, Tensor};
/// use strata_native::NativeStorage;
/// # fn main() -> strata_core::Result<()> {
/// let t = Tensor::new(vec![1.0f32, 2.0, 3.0], [3], &strata_native::device())?;
/// let storage = t.storage();
/// let native = storage.downcast_ref::<NativeStorage>().expect("a native tensor");
/// assert_eq!(native.as_f32(), Some(&[1.0f32, 2.0, 3.0][..]));
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq)]
pub enum NativeStorage {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit signed integers.
    I64(Vec<i64>),
}

impl NativeStorage {
    /// The element type.
    pub fn dtype(&self) -> DType {
        match self {
            NativeStorage::F32(_) => DType::F32,
            NativeStorage::I64(_) => DType::I64,
        }
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            NativeStorage::F32(v) => v.len(),
            NativeStorage::I64(v) => v.len(),
        }
    }

    /// Whether there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The values, if they are `f32`.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match self {
            NativeStorage::F32(v) => Some(v),
            NativeStorage::I64(_) => None,
        }
    }

    /// The values, if they are `i64`.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match self {
            NativeStorage::I64(v) => Some(v),
            NativeStorage::F32(_) => None,
        }
    }

    /// Wraps the data as an opaque [`Storage`] for the front end.
    pub fn into_storage(self) -> Storage {
        let (dtype, len) = (self.dtype(), self.len());
        Storage::new(self, dtype, len)
    }
}

impl Drop for NativeStorage {
    /// Gives an `f32` buffer back to the pool the kernels take their
    /// outputs from.
    fn drop(&mut self) {
        if let NativeStorage::F32(v) = self {
            crate::pool::give(std::mem::take(v));
        }
    }
}

impl From<Vec<f32>> for NativeStorage {
    fn from(v: Vec<f32>) -> Self {
        NativeStorage::F32(v)
    }
}

impl From<Vec<i64>> for NativeStorage {
    fn from(v: Vec<i64>) -> Self {
        NativeStorage::I64(v)
    }
}

/// Kernel outputs of at least this many bytes are checked with [`probe_alloc`]
/// first (smaller requests do not fail short of memory exhaustion, and
/// are not worth a second allocation).
const PROBE_BYTES: usize = 64 << 20;

/// Checks that an output of `len` elements of `elem_size` bytes can be
/// allocated, before a kernel whose output buffer is allocated infallibly
/// asks for it: an [`Error::SizeOverflow`] naming `op`, the byte count and
/// `shape` when the byte count overflows or a fallible reservation of the
/// same size fails (the reservation is released at once).
pub(crate) fn probe_alloc(op: &str, len: usize, elem_size: usize, shape: &dyn std::fmt::Display) -> Result<()> {
    let overflow = |detail: String| Error::SizeOverflow {
        op: format!("{NAME} {op}"),
        message: format!("cannot allocate {} bytes for shape {shape}: {detail}", len as u128 * elem_size as u128),
    };
    let bytes = len
        .checked_mul(elem_size)
        .filter(|&b| b <= isize::MAX as usize)
        .ok_or_else(|| overflow("the byte count overflows".into()))?;
    if bytes >= PROBE_BYTES {
        let mut probe: Vec<u8> = Vec::new();
        probe.try_reserve_exact(bytes).map_err(|e| overflow(e.to_string()))?;
    }
    Ok(())
}

/// An [`Error::Backend`] from this backend.
pub(crate) fn backend_err(message: impl Into<String>) -> Error {
    Error::Backend { backend: NAME.into(), message: message.into() }
}

/// The native data inside `s`, or an error when `s` belongs to another backend
/// or its recorded length or dtype disagree with the data.
pub(crate) fn native<'a>(op: &str, s: &'a Storage) -> Result<&'a NativeStorage> {
    let n = s.downcast_ref::<NativeStorage>().ok_or_else(|| {
        backend_err(format!("{op}: received a storage that does not belong to the native backend ({s:?})"))
    })?;
    if n.len() != s.len() || n.dtype() != s.dtype() {
        return Err(backend_err(format!(
            "{op}: corrupt storage: header says {} x {}, data holds {} x {}",
            s.len(),
            s.dtype(),
            n.len(),
            n.dtype()
        )));
    }
    Ok(n)
}

/// Like [`native`], and also checks that the storage holds `shape`'s element count.
pub(crate) fn native_shaped<'a>(op: &str, s: &'a Storage, shape: &strata_core::Shape) -> Result<&'a NativeStorage> {
    let n = native(op, s)?;
    if n.len() != shape.numel() {
        return Err(backend_err(format!(
            "{op}: storage holds {} elements but the shape {shape} needs {}",
            n.len(),
            shape.numel()
        )));
    }
    Ok(n)
}

/// `f32` values of `s`, or a dtype error naming `op`.
pub(crate) fn expect_f32<'a>(op: &'static str, s: &'a NativeStorage) -> Result<&'a [f32]> {
    s.as_f32().ok_or(Error::DTypeMismatch { op, expected: DType::F32, received: s.dtype() })
}

/// `i64` values of `s`, or a dtype error naming `op`.
pub(crate) fn expect_i64<'a>(op: &'static str, s: &'a NativeStorage) -> Result<&'a [i64]> {
    s.as_i64().ok_or(Error::DTypeMismatch { op, expected: DType::I64, received: s.dtype() })
}
