//! Devices: a handle on a backend, chosen at run time.

use std::fmt;
use std::sync::Arc;

use crate::FastPaths;

/// Where tensors live and which kernels compute on them.
///
/// A `Device` is a cheap, clonable handle on a backend: both halves of its
/// contract, the [`Backend`](crate::Backend) primitives and the
/// [`FastPaths`] built on them. Tensors remember
/// their device; combining tensors from two devices is an error. Backend
/// crates hand out devices (`strata_native::device()`,
/// `strata_candle::cpu()`); the `strata` facade picks one from the
/// `STRATA_BACKEND` environment variable.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn FastPaths>,
    name: Arc<str>,
}

impl Device {
    /// A device computing with `backend`.
    pub fn new(backend: impl FastPaths) -> Self {
        let name: Arc<str> = backend.name().into();
        Device { backend: Arc::new(backend), name }
    }

    /// The backend's name (`"native"`, `"candle-cpu"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend's kernels: its fast paths, and through them (the
    /// supertrait) its primitives.
    pub fn backend(&self) -> &dyn FastPaths {
        &*self.backend
    }

    /// Runs `f` where this device's kernels run best and returns its result.
    ///
    /// The native backend runs it on a thread of its worker pool, so the
    /// many parallel kernels of a training step start on threads that are
    /// already awake instead of each waking the pool from outside; other
    /// backends run it on the calling thread. Whether ops are recorded for
    /// autodiff ([`no_grad`](crate::no_grad)) carries over to `f`.
    ///
    /// ```
    /// let dev = strata_native::device();
    /// let x = strata_core::Tensor::ones([4], strata_core::DType::F32, &dev).unwrap();
    /// let sum = dev.run(|| x.sum_all()?.to_scalar::<f32>()).unwrap();
    /// assert_eq!(sum, 4.0);
    /// ```
    pub fn run<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        let record = crate::grad_enabled();
        let mut f = Some(f);
        let mut out = None;
        self.backend.run(&mut || {
            if let Some(f) = f.take() {
                let _mode = crate::backprop::GradModeGuard::set(record);
                out = Some(f());
            }
        });
        // `FastPaths::run` must call the closure once; run `f` here if it did not.
        match (out, f) {
            (Some(out), _) => out,
            (None, Some(f)) => f(),
            (None, None) => unreachable!("the closure took `f` and returned"),
        }
    }

    /// Whether two handles compute on the same backend and memory.
    pub fn same(&self, other: &Device) -> bool {
        Arc::ptr_eq(&self.backend, &other.backend) || self.name == other.name
    }
}

impl PartialEq for Device {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}

impl fmt::Debug for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Device({})", self.name)
    }
}

impl fmt::Display for Device {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}
