//! Fashion-MNIST: 70000 Zalando article images in 10 classes, 28x28 grey
//! levels, a drop-in replacement for MNIST (Keras'
//! `keras.datasets.fashion_mnist`).
//!
//! The four standard IDX files are read from disk, from a folder named
//! `fashion-mnist`; see
//! [where they are looked up](super#where-the-idx-files-are-looked-up).
//! Train: 60000 images, test: 10000, 6000 and 1000 per class. Pixels are
//! `f32` scaled to `[0, 1]`, shape `[N, 28, 28]`; labels are `i64` class
//! indices into [`CLASS_NAMES`], shape `[N]`.

use std::path::Path;

use strata_core::Result;

use super::{catalogue, Split};

/// The class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

const SPEC: catalogue::Spec = catalogue::Spec {
    name: "fashion-mnist",
    folder: "fashion-mnist",
    module: "strata::datasets::fashion_mnist",
    hint: "They are the files of Zalando's fashion-mnist repository (`data/fashion/`), also torchvision's \
           `FashionMNIST/raw/`.",
    url: URL,
    sha256: [
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ],
};

/// The canonical public mirror of the four files (Zalando's, named in the
/// fashion-mnist repository), where [`load`] downloads them from when they
/// are missing. Plain HTTP: the SHA-256 check is what protects the data.
pub const URL: &str = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

/// Loads Fashion-MNIST from the first place that has it, on the default
/// device ([`backend::from_env`](crate::backend::from_env)).
///
/// Missing files are downloaded into the cache folder (with the default
/// `download` feature; see [downloads](super#downloads-and-checksums));
/// where that fails too, the error lists every place looked at. A truncated
/// or corrupt file is an error naming it.
///
/// ```no_run
/// # fn main() -> strata::Result<()> {
/// use strata::datasets::fashion_mnist;
///
/// let data = fashion_mnist::load()?;
/// assert_eq!(data.train.class_counts()?, vec![6000; 10]);
/// let first = data.test.y.to_vec::<i64>()?[0] as usize;
/// println!("the first test image is a {}", fashion_mnist::CLASS_NAMES[first]);
/// # Ok(()) }
/// ```
pub fn load() -> Result<Split> {
    catalogue::load(&SPEC)
}

/// Loads Fashion-MNIST from `dir` only: the folder holding the four files,
/// or a folder holding `fashion-mnist/`.
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
/// use strata::datasets::fashion_mnist;
/// fashion_mnist::download_to("data/fashion-mnist", fashion_mnist::URL)?;
/// let split = fashion_mnist::load_from("data/fashion-mnist")?;
/// # let _ = split;
/// # Ok(()) }
/// ```
#[cfg(feature = "download")]
pub fn download_to(dir: impl AsRef<Path>, base_url: &str) -> Result<()> {
    super::download::download(SPEC.name, &catalogue::FILES, &SPEC.sha256, base_url, dir.as_ref())
}
