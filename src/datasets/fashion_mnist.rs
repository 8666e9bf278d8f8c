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

use super::{idx, Split};

/// The class names, indexed by label.
pub const CLASS_NAMES: [&str; 10] =
    ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"];

const SPEC: idx::Spec = idx::Spec {
    name: "fashion-mnist",
    folder: "fashion-mnist",
    module: "strata::datasets::fashion_mnist",
    hint: "They are the files of Zalando's fashion-mnist repository (`data/fashion/`), also torchvision's \
           `FashionMNIST/raw/`.",
};

/// Loads Fashion-MNIST from the first place that has it, on the default
/// device ([`backend::from_env`](crate::backend::from_env)).
///
/// Missing files are an error that lists every place looked at; a truncated
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
    idx::load(&SPEC)
}

/// Loads Fashion-MNIST from `dir` only: the folder holding the four files,
/// or a folder holding `fashion-mnist/`.
pub fn load_from(dir: impl AsRef<Path>) -> Result<Split> {
    idx::load_from(&SPEC, dir.as_ref())
}
