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

use super::{catalogue, Split};

const SPEC: catalogue::Spec = catalogue::Spec {
    name: "mnist",
    folder: "mnist",
    module: "strata::datasets::mnist",
    hint: "They are the files torchvision keeps in `MNIST/raw/`.",
    url: URL,
    sha256: [
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ],
};

/// The canonical public mirror of the four files (the one TensorFlow and
/// torchvision use), where [`load`] downloads them from when they are
/// missing.
pub const URL: &str = "https://storage.googleapis.com/cvdf-datasets/mnist/";

/// Loads MNIST from the first place that has it, on the default device
/// ([`backend::from_env`](crate::backend::from_env)).
///
/// Missing files are downloaded into the cache folder (with the default
/// `download` feature; see [downloads](super#downloads-and-checksums));
/// where that fails too, the error lists every place looked at. A truncated
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
    catalogue::load(&SPEC)
}

/// The folder [`load`] would read the four files from — the first of the
/// places it searches that holds all of them — without loading or
/// downloading anything: for tools that need the files' location (e.g. to
/// hand it to another program). Missing files are an error listing every
/// place looked at.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// let dir = strata::datasets::mnist::locate()?;
/// assert!(dir.join("train-images-idx3-ubyte.gz").exists() || dir.join("train-images-idx3-ubyte").exists());
/// # Ok(()) }
/// ```
pub fn locate() -> Result<std::path::PathBuf> {
    catalogue::locate(&SPEC)
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
    catalogue::load_from(&SPEC, dir.as_ref())
}

/// Downloads the four files from `base_url` (a folder URL such as [`URL`];
/// each file is `<base_url>/<name>.gz`) into `dir`, creating it if needed.
///
/// Each file goes to a temporary name in `dir` first; the SHA-256 of its
/// *uncompressed* content must match the published data (see
/// [checksums](super#downloads-and-checksums)), and only when all four do
/// are they renamed into place. Any failure (network, HTTP status, a
/// checksum mismatch) is an `Err` and leaves no file behind.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::mnist;
/// mnist::download_to("data/mnist", mnist::URL)?;
/// let split = mnist::load_from("data/mnist")?;
/// # let _ = split;
/// # Ok(()) }
/// ```
#[cfg(feature = "download")]
pub fn download_to(dir: impl AsRef<Path>, base_url: &str) -> Result<()> {
    super::download::download(SPEC.name, &catalogue::FILES, &SPEC.sha256, base_url, dir.as_ref())
}
