//! Small, standard data sets for examples and tests, in the spirit of
//! `keras.datasets`.
//!
//! | module | what | shape of `x` | where the data comes from |
//! |---|---|---|---|
//! | [`mnist`] | handwritten digits, 60000 + 10000 | `[N, 28, 28]`, `f32` in `[0, 1]` | IDX files on disk (see below) |
//! | [`fashion_mnist`] | Zalando clothing images, 60000 + 10000 | `[N, 28, 28]`, `f32` in `[0, 1]` | IDX files on disk |
//! | [`digits`] | scikit-learn's 8x8 digits, 1797 rows | `[1797, 64]`, `f32` in `0..=16` | shipped inside the crate |
//! | [`iris`] | Fisher's iris, 150 rows | `[150, 4]`, `f32` (cm) | shipped inside the crate |
//!
//! Every loader returns labels as an `i64` tensor of shape `[N]`, and puts
//! both tensors on the device [`backend::from_env`](crate::backend::from_env)
//! picks (the same default a [`Model`](crate::Model) uses); move them with
//! [`Dataset::to_device`].
//!
//! Keras' `(x_train, y_train), (x_test, y_test) = mnist.load_data()` reads:
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! use strata::datasets::mnist;
//!
//! let ((x_train, y_train), (x_test, y_test)) = mnist::load()?.into_xy();
//! assert_eq!(x_train.dims(), &[60000, 28, 28]);
//! assert_eq!(y_test.dims(), &[10000]);
//! // For a Dense network, flatten the images: [60000, 784].
//! let x_train = x_train.reshape([60000, 784])?;
//! # let _ = (x_train, y_train, x_test);
//! # Ok(()) }
//! ```
//!
//! The bundled sets work anywhere, with no files at all:
//!
//! ```
//! # fn main() -> strata::Result<()> {
//! use strata::datasets::digits;
//!
//! let data = digits::load()?;                      // x: [1797, 64], values 0..=16
//! let split = data.train_test_split(0.2, 42)?;     // seeded shuffle, 20 % held out
//! assert_eq!((split.train.len(), split.test.len()), (1437, 360));
//! let x_train = split.train.x.div_scalar(16.0)?;   // scale to [0, 1]
//! # let _ = x_train;
//! # Ok(()) }
//! ```
//!
//! # Where the IDX files are looked up
//!
//! [`mnist::load`] and
//! [`fashion_mnist::load`] look for a folder (`mnist/` or `fashion-mnist/`)
//! holding the four standard files (`train-images-idx3-ubyte.gz`,
//! `train-labels-idx1-ubyte.gz`, `t10k-images-idx3-ubyte.gz`,
//! `t10k-labels-idx1-ubyte.gz`; gzipped or not), in this order:
//!
//! 1. under the folder named by the `STRATA_DATA_DIR` environment variable
//!    ([`DATA_DIR_ENV_VAR`]), then under the one named by `STRATA_DATA`
//!    ([`DATA_ENV_VAR`], the older name, still accepted);
//! 2. under the cache folder [`cache_dir`]: `$XDG_CACHE_HOME/strata/datasets`,
//!    else `~/.cache/strata/datasets`;
//! 3. under `shared/data` in the current folder and each of its ancestors
//!    (a checkout next to a `shared/data` folder finds it from anywhere
//!    inside);
//! 4. under `/usr/share/datasets` ([`DEBIAN_DATASETS`]), where Debian's
//!    `dataset-fashion-mnist` package (`apt install dataset-fashion-mnist`)
//!    puts the original Fashion-MNIST files.
//!
//! The first folder holding all four files wins. When none does, the error
//! lists every place looked at and what was missing there. To read from one
//! folder only, use [`mnist::load_from`] / [`fashion_mnist::load_from`].
//!
//! # Downloads and checksums
//!
//! With the default cargo feature `download`, when no folder has the files,
//! [`mnist::load`] and [`fashion_mnist::load`] download them into the cache
//! folder ([`cache_dir`]`/mnist`, `.../fashion-mnist`) from the canonical
//! mirror ([`mnist::URL`], [`fashion_mnist::URL`]) or from
//! `$STRATA_DATASETS_URL/<folder>/` ([`DATASETS_URL_ENV_VAR`]), then load
//! them. [`mnist::download_to`] / [`fashion_mnist::download_to`] fetch into
//! a folder of your choice from a URL of your choice.
//!
//! Each file is written to a temporary name beside its final one and
//! renamed into place only after all four pass their check; a failed
//! download or a checksum mismatch is an `Err` and leaves no file behind.
//!
//! The check is the SHA-256 of each file's **uncompressed** content, not of
//! the `.gz`: the same IDX bytes may be gzipped differently (the MNIST copy
//! this project was checked against is recompressed, so the canonical `.gz`
//! sums could not be confirmed from it), while the uncompressed content is
//! what the loaders read. The expected sums were computed from those local
//! copies, whose uncompressed MD5s equal the published ones (MNIST:
//! `6bbc9ace…`, `a25bea73…`, `2646ac64…`, `27ae3e4e…`; Fashion-MNIST, whose
//! `.gz` files are byte-identical to Zalando's: `f4a8712d…`, `9018921c…`,
//! `8181f547…`, `15d48437…`).

use std::fmt;
use std::path::{Path, PathBuf};

use strata_core::{DType, Device, Error, Result, Rng, Tensor};

mod catalogue;
#[cfg(feature = "download")]
mod download;
mod idx;
mod preprocessing;

pub use preprocessing::{to_categorical, Standardizer};

pub mod csv;
pub mod digits;
pub mod fashion_mnist;
pub mod iris;
pub mod mnist;

/// The environment variable naming a folder that holds `mnist/`,
/// `fashion-mnist/`, ... (see [where the files are looked up](self#where-the-idx-files-are-looked-up)).
pub const DATA_DIR_ENV_VAR: &str = "STRATA_DATA_DIR";

/// The environment variable that replaces the canonical download mirrors
/// (for a local copy or a test server): files are fetched from
/// `$STRATA_DATASETS_URL/mnist/<file>.gz` and
/// `$STRATA_DATASETS_URL/fashion-mnist/<file>.gz`.
pub const DATASETS_URL_ENV_VAR: &str = "STRATA_DATASETS_URL";

/// The older name of [`DATA_DIR_ENV_VAR`], still accepted; searched after it
/// when both are set.
pub const DATA_ENV_VAR: &str = "STRATA_DATA";

/// The per-user cache folder searched for data sets:
/// `$XDG_CACHE_HOME/strata/datasets`, else `$HOME/.cache/strata/datasets`;
/// `None` when neither variable is set.
///
/// ```
/// if let Some(dir) = strata::datasets::cache_dir() {
///     assert!(dir.ends_with("strata/datasets"));
/// }
/// ```
pub fn cache_dir() -> Option<PathBuf> {
    let non_empty = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    non_empty("XDG_CACHE_HOME")
        .or_else(|| non_empty("HOME").map(|home| home.join(".cache")))
        .map(|cache| cache.join("strata").join("datasets"))
}

/// Examples `x` with their labels `y`: `x` has the examples along axis 0,
/// `y` is a tensor of shape `[N]`: `i64` class ids, or `f32` numeric
/// targets (a CSV table with a numeric label column).
///
/// The fields are public, so `let Dataset { x, y } = data;` takes them out;
/// the methods return new datasets and never change `self`.
#[derive(Clone)]
pub struct Dataset {
    /// The examples, `[N, ...]` (`f32` for every built-in loader).
    pub x: Tensor,
    /// The labels, `[N]`: `i64` class ids (every built-in data set), or
    /// `f32` regression targets.
    pub y: Tensor,
}

/// A training set and a test set, as Keras' `load_data()` returns them.
#[derive(Clone)]
pub struct Split {
    /// The examples to train on.
    pub train: Dataset,
    /// The held-out examples.
    pub test: Dataset,
}

impl Dataset {
    /// A dataset from examples and labels. `y` must have shape `[N]` (`i64`
    /// class ids or `f32` targets), `x` must have `N` entries along axis 0,
    /// and both must be on the same device.
    ///
    /// ```
    /// # use strata::{datasets::Dataset, Tensor};
    /// # fn main() -> strata::Result<()> {
    /// let dev = strata::backend::native();
    /// let x = Tensor::new(vec![0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0], [3, 2], &dev)?;
    /// let y = Tensor::new(vec![0i64, 1, 0], [3], &dev)?;
    /// let data = Dataset::new(x, y)?;
    /// assert_eq!(data.len(), 3);
    /// # Ok(()) }
    /// ```
    pub fn new(x: Tensor, y: Tensor) -> Result<Dataset> {
        if y.rank() != 1 {
            return Err(Error::InvalidShape {
                op: "Dataset::new",
                shape: y.shape().clone(),
                reason: "labels must have shape [N]".into(),
            });
        }
        if x.rank() == 0 || x.dims()[0] != y.dims()[0] {
            return Err(Error::ShapeMismatch {
                op: "Dataset::new",
                lhs: x.shape().clone(),
                rhs: y.shape().clone(),
                reason: "x needs one entry along axis 0 per label".into(),
            });
        }
        if !x.device().same(y.device()) {
            return Err(Error::DeviceMismatch {
                op: "Dataset::new",
                lhs: x.device().name().into(),
                rhs: y.device().name().into(),
            });
        }
        Ok(Dataset { x, y })
    }

    /// The labels as class ids; numeric targets are an error for `op`.
    fn class_ids(&self, op: &'static str) -> Result<Vec<i64>> {
        if self.y.dtype() != DType::I64 {
            return Err(Error::invalid(
                op,
                format!("needs class ids (i64 labels), but y holds {} numeric targets", self.y.dtype()),
            ));
        }
        self.y.to_vec::<i64>()
    }

    /// The number of examples.
    pub fn len(&self) -> usize {
        self.y.dims().first().copied().unwrap_or(0)
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(x, y)`, for Keras-style unpacking.
    pub fn into_xy(self) -> (Tensor, Tensor) {
        (self.x, self.y)
    }

    /// The examples `start..start + len`.
    pub fn narrow(&self, start: usize, len: usize) -> Result<Dataset> {
        if start.checked_add(len).is_none_or(|end| end > self.len()) {
            return Err(Error::invalid(
                "Dataset::narrow",
                format!("range {start}..{} exceeds the {} examples", start.saturating_add(len), self.len()),
            ));
        }
        Ok(Dataset { x: self.x.narrow(0, start, len)?, y: self.y.narrow(0, start, len)? })
    }

    /// The first `n` examples as `train`, the rest as `test`, in order (for a
    /// validation split, shuffle first or use [`Dataset::train_test_split`]).
    ///
    /// ```
    /// # fn main() -> strata::Result<()> {
    /// let data = strata::datasets::iris::load()?;
    /// let split = data.split_at(100)?;
    /// assert_eq!((split.train.len(), split.test.len()), (100, 50));
    /// assert!(data.split_at(151).is_err());
    /// # Ok(()) }
    /// ```
    pub fn split_at(&self, n: usize) -> Result<Split> {
        if n > self.len() {
            return Err(Error::invalid(
                "Dataset::split_at",
                format!("cannot take {n} training examples out of {}", self.len()),
            ));
        }
        Ok(Split { train: self.narrow(0, n)?, test: self.narrow(n, self.len() - n)? })
    }

    /// The examples in a random order drawn from `seed` (the same seed gives
    /// the same order on every platform and backend).
    pub fn shuffle(&self, seed: u64) -> Result<Dataset> {
        let mut order: Vec<i64> = (0..self.len() as i64).collect();
        Rng::seed(seed).shuffle(&mut order);
        self.select(order)
    }

    /// Shuffles with `seed`, then holds out `ceil(test_fraction * N)`
    /// examples as `test` (scikit-learn's `train_test_split(test_size=...,
    /// random_state=seed)`; not stratified, see
    /// [`Dataset::train_test_split_stratified`]). `test_fraction` must lie
    /// strictly between 0 and 1 and leave both parts non-empty.
    ///
    /// ```
    /// # fn main() -> strata::Result<()> {
    /// let data = strata::datasets::iris::load()?;
    /// let split = data.train_test_split(0.2, 7)?;
    /// assert_eq!((split.train.len(), split.test.len()), (120, 30));
    /// // Same seed, same split.
    /// let again = data.train_test_split(0.2, 7)?;
    /// assert_eq!(split.test.y.to_vec::<i64>()?, again.test.y.to_vec::<i64>()?);
    /// assert!(data.train_test_split(1.5, 7).is_err());
    /// # Ok(()) }
    /// ```
    pub fn train_test_split(&self, test_fraction: f64, seed: u64) -> Result<Split> {
        let n = self.len();
        let n_test = Self::test_count("Dataset::train_test_split", test_fraction, n)?;
        self.shuffle(seed)?.split_at(n - n_test)
    }

    /// Like [`Dataset::train_test_split`] (the same number of test examples,
    /// `ceil(test_fraction * N)`), but each class is held out in proportion
    /// to its size, as scikit-learn's `train_test_split(stratify=y)`: class
    /// `k` gives `test_fraction` of its examples to `test`, rounded so that
    /// the total comes out right (largest remainders first, ties to the
    /// smaller class id). Both parts are shuffled with `seed`.
    ///
    /// Labels must be non-negative. A class with a single example may land
    /// entirely in one part.
    ///
    /// ```
    /// # fn main() -> strata::Result<()> {
    /// let data = strata::datasets::iris::load()?; // 50 examples per class
    /// let split = data.train_test_split_stratified(0.2, 7)?;
    /// assert_eq!(split.test.class_counts()?, vec![10, 10, 10]);
    /// assert_eq!(split.train.class_counts()?, vec![40, 40, 40]);
    /// # Ok(()) }
    /// ```
    pub fn train_test_split_stratified(&self, test_fraction: f64, seed: u64) -> Result<Split> {
        let op = "Dataset::train_test_split_stratified";
        let n = self.len();
        let n_test = Self::test_count(op, test_fraction, n)?;
        let labels = self.class_ids(op)?;
        let mut by_class: Vec<Vec<i64>> = Vec::new();
        for (i, &label) in labels.iter().enumerate() {
            let k = usize::try_from(label)
                .map_err(|_| Error::invalid(op, format!("negative label {label} at index {i}")))?;
            if k >= by_class.len() {
                by_class.resize(k + 1, Vec::new());
            }
            by_class[k].push(i as i64);
        }
        // Each class's exact share, floored; the rest to the largest remainders.
        let exact: Vec<f64> = by_class.iter().map(|c| n_test as f64 * c.len() as f64 / n as f64).collect();
        let mut take: Vec<usize> = exact.iter().map(|&e| e.floor() as usize).collect();
        let mut order: Vec<usize> = (0..by_class.len()).collect();
        order.sort_by(|&a, &b| (exact[b] - exact[b].floor()).total_cmp(&(exact[a] - exact[a].floor())).then(a.cmp(&b)));
        let mut left = n_test - take.iter().sum::<usize>();
        for k in order.into_iter().cycle().take(by_class.len() * 2) {
            if left == 0 {
                break;
            }
            if take[k] < by_class[k].len() {
                take[k] += 1;
                left -= 1;
            }
        }
        let mut rng = Rng::seed(seed);
        let (mut train, mut test) = (Vec::with_capacity(n - n_test), Vec::with_capacity(n_test));
        for (members, t) in by_class.iter_mut().zip(take) {
            rng.shuffle(members);
            test.extend_from_slice(&members[..t]);
            train.extend_from_slice(&members[t..]);
        }
        rng.shuffle(&mut train);
        rng.shuffle(&mut test);
        Ok(Split { train: self.select(train)?, test: self.select(test)? })
    }

    /// `ceil(test_fraction * n)`, checked to leave both parts non-empty.
    fn test_count(op: &'static str, test_fraction: f64, n: usize) -> Result<usize> {
        if !(test_fraction > 0.0 && test_fraction < 1.0) {
            return Err(Error::invalid(op, format!("test_fraction must be in (0, 1), received {test_fraction}")));
        }
        let n_test = (test_fraction * n as f64).ceil() as usize;
        if n_test == 0 || n_test >= n {
            return Err(Error::invalid(
                op,
                format!(
                    "test_fraction {test_fraction} of {n} examples leaves {n_test} for test and {} for training; \
                     both need at least one",
                    n.saturating_sub(n_test)
                ),
            ));
        }
        Ok(n_test)
    }

    /// The examples with every axis after the first flattened into one:
    /// MNIST's `[N, 28, 28]` becomes `[N, 784]`, the input a `Dense` layer
    /// expects.
    pub fn flatten(&self) -> Result<Dataset> {
        Ok(Dataset { x: self.x.flatten_from(1)?, y: self.y.clone() })
    }

    /// The same dataset on `device` (a copy through host memory unless it is
    /// already there).
    pub fn to_device(&self, device: &Device) -> Result<Dataset> {
        Ok(Dataset { x: tensor_to_device(&self.x, device)?, y: tensor_to_device(&self.y, device)? })
    }

    /// How many examples each label has: entry `k` counts label `k`, up to
    /// the largest label. A negative label is an error.
    ///
    /// ```
    /// # fn main() -> strata::Result<()> {
    /// assert_eq!(strata::datasets::iris::load()?.class_counts()?, vec![50, 50, 50]);
    /// # Ok(()) }
    /// ```
    pub fn class_counts(&self) -> Result<Vec<usize>> {
        let mut counts = Vec::new();
        for label in self.class_ids("Dataset::class_counts")? {
            let k = usize::try_from(label)
                .map_err(|_| Error::invalid("Dataset::class_counts", format!("negative label {label}")))?;
            if k >= counts.len() {
                counts.resize(k + 1, 0);
            }
            counts[k] += 1;
        }
        Ok(counts)
    }

    /// The examples at `indices` (each in `0..len`), in that order.
    fn select(&self, indices: Vec<i64>) -> Result<Dataset> {
        let n = indices.len();
        let idx = Tensor::new(indices, [n], self.x.device())?;
        Ok(Dataset { x: self.x.gather(0, &idx)?, y: self.y.gather(0, &idx)? })
    }
}

impl Split {
    /// `((x_train, y_train), (x_test, y_test))`, Keras' `load_data()` shape.
    pub fn into_xy(self) -> ((Tensor, Tensor), (Tensor, Tensor)) {
        (self.train.into_xy(), self.test.into_xy())
    }

    /// Both parts [flattened](Dataset::flatten).
    pub fn flatten(&self) -> Result<Split> {
        Ok(Split { train: self.train.flatten()?, test: self.test.flatten()? })
    }

    /// Both parts moved to `device` ([`Dataset::to_device`]).
    pub fn to_device(&self, device: &Device) -> Result<Split> {
        Ok(Split { train: self.train.to_device(device)?, test: self.test.to_device(device)? })
    }
}

impl fmt::Debug for Dataset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Dataset {{ x: {} {}, y: {} {}, device: {} }}",
            self.x.dtype(),
            self.x.shape(),
            self.y.dtype(),
            self.y.shape(),
            self.x.device()
        )
    }
}

impl fmt::Debug for Split {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Split").field("train", &self.train).field("test", &self.test).finish()
    }
}

fn tensor_to_device(t: &Tensor, device: &Device) -> Result<Tensor> {
    if t.device().same(device) {
        return Ok(t.clone());
    }
    match t.dtype() {
        DType::F32 => Tensor::new(t.to_vec::<f32>()?, t.shape().clone(), device),
        DType::I64 => Tensor::new(t.to_vec::<i64>()?, t.shape().clone(), device),
    }
}

/// The data roots searched by the loaders, in order, each with a label for
/// messages; `None` where a root is unknown (`$STRATA_DATA_DIR` unset), so
/// the error can still say it was considered.
fn search_roots() -> Vec<(String, Option<PathBuf>)> {
    let mut roots = Vec::new();
    match std::env::var_os(DATA_DIR_ENV_VAR).filter(|v| !v.is_empty()) {
        Some(dir) => roots.push((format!("${DATA_DIR_ENV_VAR}"), Some(PathBuf::from(dir)))),
        None => roots.push((format!("${DATA_DIR_ENV_VAR} (not set)"), None)),
    }
    // The older name: listed only when set, to keep messages short.
    if let Some(dir) = std::env::var_os(DATA_ENV_VAR).filter(|v| !v.is_empty()) {
        roots.push((format!("${DATA_ENV_VAR}"), Some(PathBuf::from(dir))));
    }
    match cache_dir() {
        Some(dir) => roots.push(("cache".into(), Some(dir))),
        None => roots.push(("cache ($XDG_CACHE_HOME and $HOME not set)".into(), None)),
    }
    if let Ok(cwd) = std::env::current_dir() {
        for dir in cwd.ancestors() {
            roots.push(("shared/data".into(), Some(dir.join("shared").join("data"))));
        }
    }
    roots.push(("Debian's dataset-* packages".into(), Some(PathBuf::from(DEBIAN_DATASETS))));
    roots
}

/// Where Debian's `dataset-fashion-mnist` package installs the original
/// IDX files (`fashion-mnist/` below it).
pub const DEBIAN_DATASETS: &str = "/usr/share/datasets";

/// The first folder among `candidates` that holds every file of `files`
/// (each `name.gz` or plain `name`), or an error listing each candidate and
/// what it lacked, followed by `how_to`.
fn find_files(
    dataset: &str,
    candidates: &[(String, Option<PathBuf>)],
    files: &[&str],
    how_to: &str,
) -> Result<Vec<PathBuf>> {
    let mut report = String::new();
    let mut seen: Vec<&Path> = Vec::new();
    for (label, dir) in candidates {
        let Some(dir) = dir else {
            report.push_str(&format!("\n  - {label}"));
            continue;
        };
        if seen.contains(&dir.as_path()) {
            continue;
        }
        seen.push(dir);
        if !dir.is_dir() {
            report.push_str(&format!("\n  - {} ({label}): no such folder", dir.display()));
            continue;
        }
        let found: Vec<Option<PathBuf>> = files
            .iter()
            .map(|f| [dir.join(format!("{f}.gz")), dir.join(f)].into_iter().find(|p| p.is_file()))
            .collect();
        if found.iter().all(Option::is_some) {
            return Ok(found.into_iter().flatten().collect());
        }
        let missing: Vec<String> =
            files.iter().zip(&found).filter(|(_, p)| p.is_none()).map(|(f, _)| format!("{f}.gz")).collect();
        report.push_str(&format!("\n  - {} ({label}): missing {}", dir.display(), missing.join(", ")));
    }
    Err(Error::msg(format!("{dataset}: data files not found. Looked in:{report}\n{how_to}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strata_data_dir_is_searched_first_then_strata_data() {
        // The only test that sets these variables; the others read folders
        // given explicitly.
        let saved = [DATA_DIR_ENV_VAR, DATA_ENV_VAR].map(|v| (v, std::env::var_os(v)));
        std::env::set_var(DATA_DIR_ENV_VAR, "/nonexistent/new");
        std::env::set_var(DATA_ENV_VAR, "/nonexistent/old");
        let roots = search_roots();
        assert_eq!(roots[0], ("$STRATA_DATA_DIR".into(), Some(PathBuf::from("/nonexistent/new"))));
        assert_eq!(roots[1], ("$STRATA_DATA".into(), Some(PathBuf::from("/nonexistent/old"))));
        // `mnist::locate` names the folder that `mnist::load` would read.
        let root = std::env::temp_dir().join(format!("strata-locate-{}", std::process::id()));
        let folder = root.join("mnist");
        std::fs::create_dir_all(&folder).unwrap();
        for f in catalogue::FILES {
            std::fs::write(folder.join(format!("{f}.gz")), b"").unwrap();
        }
        std::env::set_var(DATA_DIR_ENV_VAR, &root);
        assert_eq!(mnist::locate().unwrap(), folder);
        // A folder missing one file is passed over (for a later place, or an error).
        std::fs::remove_file(folder.join(format!("{}.gz", catalogue::FILES[3]))).unwrap();
        assert_ne!(mnist::locate().ok(), Some(folder));
        std::fs::remove_dir_all(&root).unwrap();
        std::env::remove_var(DATA_ENV_VAR);
        std::env::remove_var(DATA_DIR_ENV_VAR);
        let roots = search_roots();
        assert_eq!(roots[0], ("$STRATA_DATA_DIR (not set)".into(), None));
        assert_ne!(roots[1].0, "$STRATA_DATA");
        for (var, value) in saved {
            if let Some(value) = value {
                std::env::set_var(var, value);
            }
        }
    }
}
