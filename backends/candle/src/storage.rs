//! The backend's storage type: a contiguous rank-1 candle tensor.

use candle_core::Tensor;
use strata_core::{DType, Error, Result, Storage};

/// The data of one strata tensor on a candle device: a contiguous, rank-1
/// [`candle_core::Tensor`] of dtype `f32` or `i64`.
///
/// The shape lives in the front end, which may reshape freely without telling
/// the backend; kernels reshape the tensor to the shape they are given.
/// Get it out of a [`Storage`] with `storage.downcast_ref::<CandleStorage>()`.
///
/// ```
/// use strata_candle::CandleStorage;
/// use strata_core::Tensor;
/// # fn main() -> strata_core::Result<()> {
/// let t = Tensor::new(vec![1.0f32, 2.0, 3.0], [3], &strata_candle::cpu())?;
/// let storage = t.storage();
/// let c = storage.downcast_ref::<CandleStorage>().expect("a candle tensor");
/// assert_eq!(c.tensor().dims(), &[3]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct CandleStorage(Tensor);

impl CandleStorage {
    /// Wraps a tensor already known to be contiguous and rank 1.
    pub(crate) fn from_flat(t: Tensor) -> Self {
        debug_assert!(t.rank() == 1 && t.is_contiguous());
        CandleStorage(t)
    }

    /// The underlying rank-1 candle tensor.
    pub fn tensor(&self) -> &Tensor {
        &self.0
    }

    /// Consumes the storage, returning the candle tensor.
    pub fn into_tensor(self) -> Tensor {
        self.0
    }

    /// Wraps a candle tensor of any shape and layout as strata [`Storage`]:
    /// it is made contiguous (copying only if needed) and flattened.
    ///
    /// The dtype must be `f32` or `i64`; anything else is an
    /// [`Error::Backend`] naming `backend`.
    ///
    /// ```
    /// use strata_candle::{candle_core, CandleStorage};
    /// let t = candle_core::Tensor::new(&[[1i64, 2], [3, 4]], &candle_core::Device::Cpu).unwrap();
    /// let s = CandleStorage::wrap(t, "candle-cpu").unwrap();
    /// assert_eq!(s.len(), 4);
    /// assert_eq!(s.dtype(), strata_core::DType::I64);
    /// ```
    pub fn wrap(t: Tensor, backend: &str) -> Result<Storage> {
        let dtype = match t.dtype() {
            candle_core::DType::F32 => DType::F32,
            candle_core::DType::I64 => DType::I64,
            other => {
                return Err(Error::Backend {
                    backend: backend.to_string(),
                    message: format!("candle dtype {other:?} has no strata equivalent (expected f32 or i64)"),
                })
            }
        };
        let flat = t
            .contiguous()
            .and_then(|t| t.flatten_all())
            .map_err(|e| Error::Backend { backend: backend.to_string(), message: e.to_string() })?;
        let len = flat.elem_count();
        Ok(Storage::new(CandleStorage(flat), dtype, len))
    }
}
