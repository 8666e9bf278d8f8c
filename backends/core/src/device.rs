//! Devices: a handle on a backend, chosen at run time.

use std::fmt;
use std::sync::Arc;

use crate::Backend;

/// Where tensors live and which kernels compute on them.
///
/// A `Device` is a cheap, clonable handle on a [`Backend`]. Tensors remember
/// their device; combining tensors from two devices is an error. Backend
/// crates hand out devices (`strata_native::device()`,
/// `strata_candle::cpu()`); the `strata` facade picks one from the
/// `STRATA_BACKEND` environment variable.
#[derive(Clone)]
pub struct Device {
    backend: Arc<dyn Backend>,
    name: Arc<str>,
}

impl Device {
    /// A device computing with `backend`.
    pub fn new(backend: impl Backend) -> Self {
        let name: Arc<str> = backend.name().into();
        Device { backend: Arc::new(backend), name }
    }

    /// The backend's name (`"native"`, `"candle-cpu"`, ...).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The backend's kernels.
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
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
