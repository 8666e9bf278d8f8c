//! MNIST: 70000 handwritten digits, 28x28 grey levels (Keras'
//! `keras.datasets.mnist`).
//!
//! The four standard IDX files are read from disk; see
//! [where they are looked up](super#where-the-idx-files-are-looked-up).
//! Train: 60000 images, test: 10000. Pixels are `f32` scaled to `[0, 1]`
//! (`byte / 255`), shape `[N, 28, 28]`; labels are the digits `0..=9` as
//! `i64`, shape `[N]`.

use std::path::Path;

use strata_core::Result;

use super::{idx, Split};

const SPEC: idx::Spec = idx::Spec {
    name: "mnist",
    folder: "mnist",
    module: "strata::datasets::mnist",
    hint: "They are the files torchvision keeps in `MNIST/raw/`.",
};

/// Loads MNIST from the first place that has it, on the default device
/// ([`backend::from_env`](crate::backend::from_env)).
///
/// Missing files are an error that lists every place looked at; a truncated
/// or corrupt file is an error naming it.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::mnist;
///
/// let mnist = mnist::load()?;
/// assert_eq!(mnist.train.x.dims(), &[60000, 28, 28]);
/// assert_eq!(mnist.test.len(), 10000);
/// // A Dense network wants [N, 784]: flatten both parts.
/// let mnist = mnist.flatten()?;
/// assert_eq!(mnist.train.x.dims(), &[60000, 784]);
/// # Ok(()) }
/// ```
pub fn load() -> Result<Split> {
    idx::load(&SPEC)
}

/// Loads MNIST from `dir` only: the folder holding the four files, or a
/// folder holding `mnist/`.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// let ((x_train, y_train), (x_test, y_test)) = strata::datasets::mnist::load_from("data/mnist")?.into_xy();
/// # let _ = (x_train, y_train, x_test, y_test);
/// # Ok(()) }
/// ```
pub fn load_from(dir: impl AsRef<Path>) -> Result<Split> {
    idx::load_from(&SPEC, dir.as_ref())
}
