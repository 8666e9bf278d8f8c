//! Data bigger than memory: datasets that yield batches to
//! [`Model::fit_dataset`](crate::Model::fit_dataset),
//! [`evaluate_dataset`](crate::Model::evaluate_dataset) and
//! [`predict_dataset`](crate::Model::predict_dataset), read on worker
//! threads while the model trains.
//!
//! Two traits, one per level:
//!
//! - a [`Source`] holds *samples* and gathers any of them by index: tensors
//!   in memory ([`from_tensors`]), NumPy files read row by row
//!   ([`npy::NpySource`]), your own reader;
//! - a [`Dataset`] yields *batches* by index, as Keras' `PyDataset` does:
//!   `source.shuffle(buffer).batch(n)` makes one from a source, and you may
//!   implement it directly (two methods) or with [`from_fn`].
//!
//! The transforms are tf.data's: [`Source::shuffle`] (reshuffled every
//! pass), [`Source::batch`], [`Source::split`] for a validation part,
//! [`Source::cache`] (into memory) and [`Source::cache_to_disk`] (into
//! `.npy` files, then read from them), [`Dataset::map`] and
//! [`Dataset::map_random`] for preprocessing and augmentation,
//! [`Dataset::take`], [`Dataset::skip`] and [`Dataset::repeat`].
//!
//! Batches are addressed by `(index, pass)`, never by "the next one", so a
//! batch's content depends only on the dataset, its seeds, the pass and the
//! index: whatever the number of worker threads, training sees the same
//! batches in the same order.
//!
//! ```
//! use strata::prelude::*;
//! use strata::data::{self, Dataset, Source};
//! # fn main() -> strata::Result<()> {
//! let dev = backend::native();
//! let x = Tensor::rand_uniform([100, 3], -1.0, 1.0, &mut Rng::seed(0), &dev)?;
//! let y = x.sum(&[1], false)?.gt_scalar(0.0)?.cast(DType::I64)?; // 1 when the sum is positive
//! let (train, val) = data::from_tensors(&x, &y)?.split(0.2)?;
//! let train = train.shuffle(1000).seed(7).batch(16);
//! let val = val.batch(32);
//! assert_eq!(train.length(), data::Length::Known(5));    // 80 samples in batches of 16
//!
//! let mut model = Sequential::new().add(Input::new([3])).add(Dense::new(2).activation("softmax")).seed(0).build_on(&dev)?;
//! model.compile(SGD::new(0.5), "sparse_categorical_crossentropy", &["accuracy"])?;
//! let history = model.fit_dataset(&train, FitOptions::default().epochs(20).validation_dataset(&val).verbose(0))?;
//! assert!(history.last("val_accuracy").unwrap() > 0.8);
//! # Ok(()) }
//! ```

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::path::Path;
use std::sync::{Arc, Mutex};

use strata_core::{Error, Result, Rng, Tensor};

use crate::ModelInputs;

#[cfg(feature = "images")]
pub mod images;
pub mod npy;
pub(crate) mod prefetch;

/// One batch: the inputs (one tensor per model input), the targets (one per
/// output; empty for [`predict_dataset`](crate::Model::predict_dataset)) and
/// optional per-sample weights, all with the same number of samples along
/// axis 0.
#[derive(Clone, Debug)]
pub struct Batch {
    /// One tensor per model input.
    pub x: Vec<Tensor>,
    /// One tensor per model output (empty when only predicting).
    pub y: Vec<Tensor>,
    /// Per-sample loss weights, shape `[samples]`.
    pub sample_weight: Option<Tensor>,
}

impl Batch {
    /// A batch of inputs and targets.
    pub fn new(x: impl ModelInputs, y: impl ModelInputs) -> Batch {
        Batch { x: x.into_tensors(), y: y.into_tensors(), sample_weight: None }
    }

    /// A batch of inputs only (for prediction).
    pub fn inputs(x: impl ModelInputs) -> Batch {
        Batch { x: x.into_tensors(), y: Vec::new(), sample_weight: None }
    }

    /// The same batch with per-sample weights.
    pub fn with_sample_weight(mut self, weights: &Tensor) -> Batch {
        self.sample_weight = Some(weights.clone());
        self
    }

    /// The number of samples (axis 0 of the first input; 0 without inputs).
    pub fn len(&self) -> usize {
        self.x.first().and_then(|t| t.dims().first().copied()).unwrap_or(0)
    }

    /// Whether the batch holds no samples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every tensor of the batch along axis 0 at `start..start + n`.
    fn narrow(&self, start: usize, n: usize) -> Result<Batch> {
        let cut = |t: &Tensor| t.narrow(0, start, n);
        Ok(Batch {
            x: self.x.iter().map(cut).collect::<Result<_>>()?,
            y: self.y.iter().map(cut).collect::<Result<_>>()?,
            sample_weight: self.sample_weight.as_ref().map(cut).transpose()?,
        })
    }

    /// The samples at `indices`, in that order (a narrow when contiguous).
    fn select(&self, indices: &[usize]) -> Result<Batch> {
        if let Some(&first) = indices.first() {
            if indices.iter().enumerate().all(|(k, &i)| i == first + k) {
                return self.narrow(first, indices.len());
            }
        }
        let Some(dev) = self.x.first().map(|t| t.device().clone()) else { return Ok(self.clone()) };
        let idx = Tensor::new(indices.iter().map(|&i| i as i64).collect::<Vec<_>>(), [indices.len()], &dev)?;
        let pick = |t: &Tensor| t.gather(0, &idx.to_device(t.device())?);
        Ok(Batch {
            x: self.x.iter().map(pick).collect::<Result<_>>()?,
            y: self.y.iter().map(pick).collect::<Result<_>>()?,
            sample_weight: self.sample_weight.as_ref().map(pick).transpose()?,
        })
    }

    /// The batches concatenated along axis 0.
    fn concat(parts: &[Batch]) -> Result<Batch> {
        let Some(first) = parts.first() else { return Err(Error::msg("no batches to concatenate")) };
        let join = |pick: &dyn Fn(&Batch) -> &Tensor| -> Result<Tensor> {
            let ts: Vec<&Tensor> = parts.iter().map(pick).collect();
            if ts.len() == 1 {
                Ok(ts[0].clone())
            } else {
                Tensor::concat(&ts, 0)
            }
        };
        let x = (0..first.x.len()).map(|i| join(&|b| &b.x[i])).collect::<Result<_>>()?;
        let y = (0..first.y.len()).map(|i| join(&|b| &b.y[i])).collect::<Result<_>>()?;
        let sample_weight = match &first.sample_weight {
            Some(_) => {
                let ws = parts
                    .iter()
                    .map(|b| {
                        b.sample_weight
                            .as_ref()
                            .ok_or_else(|| Error::msg("some batches have sample weights and some not"))
                    })
                    .collect::<Result<Vec<_>>>()?;
                Some(Tensor::concat(&ws, 0)?)
            }
            None => None,
        };
        Ok(Batch { x, y, sample_weight })
    }
}

/// How many batches one pass over a dataset yields.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Length {
    /// Exactly this many.
    Known(usize),
    /// Not known in advance: [`Dataset::get`] returns `Ok(None)` past the
    /// last batch (the progress bar then shows the step count and rate).
    Unknown,
    /// Never ends (a [`repeat`](Dataset::repeat) without a count): `fit`
    /// needs `steps_per_epoch`, `evaluate` and `predict` need `steps`.
    Infinite,
}

impl Length {
    /// The count, if known.
    pub fn known(self) -> Option<usize> {
        match self {
            Length::Known(n) => Some(n),
            _ => None,
        }
    }
}

/// Batches by index, as Keras' `PyDataset`: implement
/// [`length`](Self::length) and [`get`](Self::get), and `fit_dataset` reads
/// the batches on worker threads
/// ([`FitOptions::workers`](crate::FitOptions::workers)).
///
/// `get(index, pass)` must give the same batch for the same arguments
/// (draw any randomness from a seed and the two numbers, as
/// [`map_random`](Self::map_random) does); `pass` counts the passes over
/// the data (the epoch, unless `steps_per_epoch` cuts epochs short), so a
/// dataset can reorder itself every pass. It is called from several
/// threads at once, and past the end it returns `Ok(None)`.
///
/// ```
/// use strata::prelude::*;
/// use strata::data::{Batch, Dataset, Length};
///
/// /// y = 2x, 10 batches of 4 samples, computed on demand.
/// struct Line;
/// impl Dataset for Line {
///     fn length(&self) -> Length { Length::Known(10) }
///     fn get(&self, index: usize, _pass: usize) -> strata::Result<Option<Batch>> {
///         if index >= 10 { return Ok(None); }
///         let dev = backend::native();
///         let x: Vec<f32> = (0..4).map(|i| (index * 4 + i) as f32 / 40.0).collect();
///         let y: Vec<f32> = x.iter().map(|v| 2.0 * v).collect();
///         Ok(Some(Batch::new(&Tensor::new(x, [4, 1], &dev)?, &Tensor::new(y, [4, 1], &dev)?)))
///     }
/// }
/// # fn main() -> strata::Result<()> {
/// let mut model = Sequential::new().add(Input::new([1])).add(Dense::new(1)).seed(0).build_on(&backend::native())?;
/// model.compile(SGD::new(0.5), "mse", &[] as &[&str])?;
/// let history = model.fit_dataset(&Line, FitOptions::default().epochs(40).verbose(0))?;
/// assert!(history.last("loss").unwrap() < 1e-3);
/// # Ok(()) }
/// ```
pub trait Dataset: Send + Sync {
    /// Batches per pass.
    fn length(&self) -> Length;

    /// Batch `index` (from 0) of pass `pass`, or `None` past the end.
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>>;

    /// Applies `f` to every batch (on the worker threads): scaling,
    /// one-hot encoding, reshaping.
    fn map<F>(self, f: F) -> Map<Self, F>
    where
        Self: Sized,
        F: Fn(Batch) -> Result<Batch> + Send + Sync,
    {
        Map { inner: self, f }
    }

    /// Applies `f` with a generator seeded from `seed`, the pass and the
    /// batch index: random augmentation that differs every pass and is the
    /// same whatever the number of workers.
    fn map_random<F>(self, seed: u64, f: F) -> MapRandom<Self, F>
    where
        Self: Sized,
        F: Fn(Batch, &mut Rng) -> Result<Batch> + Send + Sync,
    {
        MapRandom { inner: self, seed, f }
    }

    /// The first `n` batches of every pass.
    fn take(self, n: usize) -> Take<Self>
    where
        Self: Sized,
    {
        Take { inner: self, n }
    }

    /// Every pass without its first `n` batches.
    fn skip(self, n: usize) -> Skip<Self>
    where
        Self: Sized,
    {
        Skip { inner: self, n }
    }

    /// `count` passes of the inner dataset as one (`None`: forever). Each
    /// inner pass is a new pass, so a shuffled dataset is reshuffled. The
    /// inner length must be known.
    fn repeat(self, count: Option<usize>) -> Repeat<Self>
    where
        Self: Sized,
    {
        Repeat { inner: self, count }
    }
}

impl<D: Dataset + ?Sized> Dataset for &D {
    fn length(&self) -> Length {
        (**self).length()
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        (**self).get(index, pass)
    }
}

impl<D: Dataset + ?Sized> Dataset for Box<D> {
    fn length(&self) -> Length {
        (**self).length()
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        (**self).get(index, pass)
    }
}

impl<D: Dataset + ?Sized> Dataset for Arc<D> {
    fn length(&self) -> Length {
        (**self).length()
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        (**self).get(index, pass)
    }
}

/// Samples gathered by index: the level below [`Dataset`].
///
/// `gather(&[3, 0, 7])` returns those samples, in that order, as one
/// [`Batch`]; an error names the item that failed (the file, the row).
pub trait Source: Send + Sync {
    /// The number of samples.
    fn len(&self) -> usize;

    /// The samples at `indices` (each below [`len`](Self::len)), in order.
    fn gather(&self, indices: &[usize]) -> Result<Batch>;

    /// Whether the source holds no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Batches of `batch_size` samples in order (the last may be smaller).
    fn batch(self, batch_size: usize) -> Batched<Self>
    where
        Self: Sized,
    {
        Batched { source: self, batch_size, drop_remainder: false, order: None }
    }

    /// Shuffles the samples with a buffer of `buffer_size`, reshuffled every
    /// pass, as tf.data's `shuffle`; a buffer at least as large as the
    /// source is a uniform shuffle. Follow it with
    /// [`batch`](Shuffled::batch); set the seed with
    /// [`seed`](Shuffled::seed).
    fn shuffle(self, buffer_size: usize) -> Shuffled<Self>
    where
        Self: Sized,
    {
        Shuffled { source: self, buffer_size, seed: random_seed() }
    }

    /// Splits off the *last* `fraction` of the samples for validation, as
    /// Keras' `validation_split`: `(first part, last part)`. Shuffle the
    /// data beforehand (or use [`split_seeded`](Self::split_seeded)) if it
    /// is sorted.
    fn split(self, fraction: f64) -> Result<(Subset<Self>, Subset<Self>)>
    where
        Self: Sized,
    {
        let n = self.len();
        let at = split_point(n, fraction)?;
        let source = Arc::new(self);
        Ok((
            Subset { source: source.clone(), indices: Indices::Range(0, at) },
            Subset { source, indices: Indices::Range(at, n - at) },
        ))
    }

    /// [`split`](Self::split) after a seeded shuffle of the sample order
    /// (Keras' `image_dataset_from_directory(validation_split, seed)`).
    fn split_seeded(self, fraction: f64, seed: u64) -> Result<(Subset<Self>, Subset<Self>)>
    where
        Self: Sized,
    {
        let n = self.len();
        let at = split_point(n, fraction)?;
        let mut order: Vec<usize> = (0..n).collect();
        Rng::seed(seed).shuffle(&mut order);
        let val = order.split_off(at);
        let source = Arc::new(self);
        Ok((
            Subset { source: source.clone(), indices: Indices::List(Arc::new(order)) },
            Subset { source, indices: Indices::List(Arc::new(val)) },
        ))
    }

    /// Reads every sample once into memory (decoded images stay decoded).
    fn cache(&self) -> Result<TensorSource>
    where
        Self: Sized,
    {
        let n = self.len();
        if n == 0 {
            return Err(Error::invalid("cache", "the source holds no samples"));
        }
        let parts = (0..n)
            .step_by(CHUNK)
            .map(|start| self.gather(&(start..(start + CHUNK).min(n)).collect::<Vec<_>>()))
            .collect::<Result<Vec<_>>>()?;
        TensorSource::from_batch(Batch::concat(&parts)?)
    }

    /// Writes every sample once into `.npy` files in `dir` (`x0.npy`,
    /// `y0.npy`, `sample_weight.npy`, created if missing) and reads them
    /// back from disk: decoding happens once, memory stays bounded.
    /// Only a chunk of samples is held in memory at a time.
    fn cache_to_disk(&self, dir: impl AsRef<Path>) -> Result<npy::NpySource>
    where
        Self: Sized,
    {
        npy::cache_source(self, dir.as_ref())
    }
}

/// The bytes a file-backed source reads rows from.
///
/// `File` reads with positional reads (`pread`): the rows land in the
/// batch's buffer and nothing else stays resident, however large the file
/// (the kernel's page cache, which is not the process' memory, keeps what
/// it can). `Mapped` reads from a memory mapping: no system call per row,
/// but every page touched stays in the process' resident set until the
/// mapping is dropped, and current kernels map the whole large folio
/// (2 MiB) around each row read at random, so a shuffled pass makes the
/// resident size the file's size. `Owned` is a buffer (a decompressed
/// `.npz` member).
pub(crate) enum Bytes {
    File { file: std::fs::File, len: u64 },
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Bytes {
    /// The file at `path`, read with positional reads.
    pub(crate) fn file(path: &Path) -> Result<Bytes> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
        let len = file.metadata().map_err(|e| Error::io(path, "read the size of", e))?.len();
        Ok(Bytes::File { file, len })
    }

    /// The file at `path`, memory-mapped.
    ///
    /// Changing or truncating the file while it is mapped is not supported
    /// (reads may then see the new bytes, or fail), as with every
    /// memory-mapped reader.
    pub(crate) fn mapped(path: &Path) -> Result<Bytes> {
        let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
        // SAFETY: the map is only read, through bounds-checked slices; the
        // file being changed underneath is documented as unsupported.
        let map = unsafe { memmap2::Mmap::map(&file) }.map_err(|e| Error::io(path, "memory-map", e))?;
        Ok(Bytes::Mapped(map))
    }

    pub(crate) fn len(&self) -> u64 {
        match self {
            Bytes::File { len, .. } => *len,
            Bytes::Mapped(m) => m.len() as u64,
            Bytes::Owned(v) => v.len() as u64,
        }
    }

    /// Fills `buf` with the bytes at `offset` (an error past the end).
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> std::io::Result<()> {
        let eof = || std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past the end of the file");
        match self {
            Bytes::File { file, .. } => read_exact_at(file, buf, offset),
            Bytes::Mapped(m) => copy_from(m, offset, buf).ok_or_else(eof),
            Bytes::Owned(v) => copy_from(v, offset, buf).ok_or_else(eof),
        }
    }
}

fn copy_from(src: &[u8], offset: u64, buf: &mut [u8]) -> Option<()> {
    let start = usize::try_from(offset).ok()?;
    buf.copy_from_slice(src.get(start..start.checked_add(buf.len())?)?);
    Some(())
}

#[cfg(unix)]
fn read_exact_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
}

#[cfg(windows)]
fn read_exact_at(file: &std::fs::File, mut buf: &mut [u8], mut offset: u64) -> std::io::Result<()> {
    while !buf.is_empty() {
        match std::os::windows::fs::FileExt::seek_read(file, buf, offset)? {
            0 => return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "past the end of the file")),
            n => {
                buf = &mut buf[n..];
                offset += n as u64;
            }
        }
    }
    Ok(())
}

/// Samples per `gather` when a whole source is copied.
const CHUNK: usize = 1024;

fn split_point(n: usize, fraction: f64) -> Result<usize> {
    if !(fraction > 0.0 && fraction < 1.0) {
        return Err(Error::invalid("split", format!("the fraction must be in (0, 1), received {fraction}")));
    }
    let at = (n as f64 * (1.0 - fraction)) as usize;
    if at == 0 || at == n {
        return Err(Error::invalid(
            "split",
            format!("{fraction} of {n} samples leaves {at} and {}; both parts need at least one", n - at),
        ));
    }
    Ok(at)
}

/// A seed from the process' random state, for shuffles without one.
fn random_seed() -> u64 {
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// A 64-bit mix of a seed and two counters (splitmix64 finalizer).
pub(crate) fn mix(seed: u64, a: u64, b: u64) -> u64 {
    let mut z = seed ^ a.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ b.wrapping_mul(0xC2B2_AE3D_27D4_EB4F);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl<S: Source + ?Sized> Source for &S {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        (**self).gather(indices)
    }
}

impl<S: Source + ?Sized> Source for Arc<S> {
    fn len(&self) -> usize {
        (**self).len()
    }
    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        (**self).gather(indices)
    }
}

/// Tensors in memory as a [`Source`]: see [`from_tensors`].
#[derive(Clone, Debug)]
pub struct TensorSource {
    all: Batch,
    len: usize,
}

/// In-memory tensors as a source (tf.data's `from_tensor_slices`): `x` is
/// one tensor or one per model input, `y` one per output; every tensor has
/// the samples along axis 0.
///
/// ```
/// use strata::prelude::*;
/// use strata::data::{self, Dataset, Source};
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let x = Tensor::new((0..10).map(|v| v as f32).collect::<Vec<_>>(), [10, 1], &dev)?;
/// let y = Tensor::new((0..10).collect::<Vec<i64>>(), [10], &dev)?;
/// let batches = data::from_tensors(&x, &y)?.batch(4);
/// let last = batches.get(2, 0)?.unwrap();
/// assert_eq!(last.y[0].to_vec::<i64>()?, vec![8, 9]);
/// assert!(batches.get(3, 0)?.is_none());
/// # Ok(()) }
/// ```
pub fn from_tensors(x: impl ModelInputs, y: impl ModelInputs) -> Result<TensorSource> {
    TensorSource::from_batch(Batch::new(x, y))
}

/// Inputs only (for [`predict_dataset`](crate::Model::predict_dataset)).
pub fn from_inputs(x: impl ModelInputs) -> Result<TensorSource> {
    TensorSource::from_batch(Batch::inputs(x))
}

impl TensorSource {
    /// The source with per-sample weights (shape `[samples]`).
    pub fn with_sample_weight(mut self, weights: &Tensor) -> Result<TensorSource> {
        check_samples("sample_weight", weights, self.len)?;
        self.all.sample_weight = Some(weights.clone());
        Ok(self)
    }

    /// Every sample as one batch.
    pub fn tensors(&self) -> &Batch {
        &self.all
    }

    fn from_batch(all: Batch) -> Result<TensorSource> {
        let Some(first) = all.x.first() else { return Err(Error::invalid("from_tensors", "no input tensors given")) };
        let len = *first
            .dims()
            .first()
            .ok_or_else(|| Error::invalid("from_tensors", "x[0] is a scalar; expected a sample axis first"))?;
        for (i, t) in all.x.iter().enumerate() {
            check_samples(&format!("x[{i}]"), t, len)?;
        }
        for (i, t) in all.y.iter().enumerate() {
            check_samples(&format!("y[{i}]"), t, len)?;
        }
        if let Some(w) = &all.sample_weight {
            check_samples("sample_weight", w, len)?;
        }
        Ok(TensorSource { all, len })
    }
}

fn check_samples(what: &str, t: &Tensor, len: usize) -> Result<()> {
    match t.dims().first() {
        Some(&n) if n == len => Ok(()),
        Some(&n) => {
            Err(Error::invalid("from_tensors", format!("x[0] has {len} samples but {what} has {n} along axis 0")))
        }
        None => Err(Error::invalid("from_tensors", format!("{what} is a scalar; expected a sample axis first"))),
    }
}

impl Source for TensorSource {
    fn len(&self) -> usize {
        self.len
    }
    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.len) {
            return Err(Error::invalid("gather", format!("sample {bad} is out of range for {} samples", self.len)));
        }
        self.all.select(indices)
    }
}

/// Part of a source: see [`Source::split`].
pub struct Subset<S> {
    source: Arc<S>,
    indices: Indices,
}

enum Indices {
    Range(usize, usize),
    List(Arc<Vec<usize>>),
}

impl<S> Clone for Subset<S> {
    fn clone(&self) -> Self {
        let indices = match &self.indices {
            Indices::Range(a, n) => Indices::Range(*a, *n),
            Indices::List(l) => Indices::List(l.clone()),
        };
        Subset { source: self.source.clone(), indices }
    }
}

impl<S: Source> Source for Subset<S> {
    fn len(&self) -> usize {
        match &self.indices {
            Indices::Range(_, n) => *n,
            Indices::List(l) => l.len(),
        }
    }
    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::invalid("gather", format!("sample {bad} is out of range for {n} samples")));
        }
        let mapped: Vec<usize> = match &self.indices {
            Indices::Range(start, _) => indices.iter().map(|i| start + i).collect(),
            Indices::List(l) => indices.iter().map(|&i| l[i]).collect(),
        };
        self.source.gather(&mapped)
    }
}

/// A source in shuffled order: see [`Source::shuffle`].
pub struct Shuffled<S> {
    source: S,
    buffer_size: usize,
    seed: u64,
}

impl<S: Source> Shuffled<S> {
    /// The seed of the order (default: drawn at random when `shuffle` is
    /// called). With a seed, pass `p` of a uniform shuffle is the order
    /// [`fit`](crate::Model::fit) uses for in-memory tensors in epoch `p`
    /// with [`FitOptions::seed`](crate::FitOptions::seed) set to the same
    /// seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Batches of `batch_size` samples in this pass's order.
    pub fn batch(self, batch_size: usize) -> Batched<S> {
        Batched {
            source: self.source,
            batch_size,
            drop_remainder: false,
            order: Some(Order { buffer: self.buffer_size, seed: self.seed, last: Mutex::new(None) }),
        }
    }
}

/// Batches of a source: see [`Source::batch`] and [`Shuffled::batch`].
pub struct Batched<S> {
    source: S,
    batch_size: usize,
    drop_remainder: bool,
    order: Option<Order>,
}

/// A shuffle, with the last pass' order kept for the other workers.
struct Order {
    buffer: usize,
    seed: u64,
    last: Mutex<Option<(usize, Arc<Vec<usize>>)>>,
}

impl Order {
    fn for_pass(&self, n: usize, pass: usize) -> Arc<Vec<usize>> {
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((p, order)) = &*last {
            if *p == pass && order.len() == n {
                return order.clone();
            }
        }
        let order = Arc::new(if self.buffer >= n {
            // The same stream as fit's shuffle of in-memory tensors: one
            // generator, one Fisher-Yates shuffle of the running order per
            // pass. Passes are replayed (cheap next to a pass of training).
            let mut rng = Rng::seed(self.seed);
            let mut order: Vec<usize> = (0..n).collect();
            for _ in 0..=pass {
                rng.shuffle(&mut order);
            }
            order
        } else {
            // tf.data's shuffle buffer: fill with the first `buffer`
            // samples, then emit a random one and refill from the input.
            let mut rng = Rng::seed(mix(self.seed, pass as u64, 0));
            let mut buf: Vec<usize> = (0..self.buffer.max(1).min(n)).collect();
            let mut next = buf.len();
            let mut order = Vec::with_capacity(n);
            while !buf.is_empty() {
                let j = rng.below(buf.len()).unwrap_or(0);
                order.push(buf[j]);
                if next < n {
                    buf[j] = next;
                    next += 1;
                } else {
                    buf.swap_remove(j);
                }
            }
            order
        });
        *last = Some((pass, order.clone()));
        order
    }
}

impl<S: Source> Batched<S> {
    /// Drops the last batch when it is smaller than the others (tf.data's
    /// `drop_remainder`).
    pub fn drop_remainder(mut self, drop: bool) -> Self {
        self.drop_remainder = drop;
        self
    }

    /// The samples per batch.
    pub fn batch_size(&self) -> usize {
        self.batch_size
    }

    /// The source underneath.
    pub fn source(&self) -> &S {
        &self.source
    }

    fn batches(&self) -> usize {
        let n = self.source.len();
        match self.batch_size {
            0 => 0,
            bs if self.drop_remainder => n / bs,
            bs => n.div_ceil(bs),
        }
    }
}

impl<S: Source> Dataset for Batched<S> {
    fn length(&self) -> Length {
        Length::Known(self.batches())
    }

    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        if self.batch_size == 0 {
            return Err(Error::invalid("batch", "batch_size must be at least 1, received 0"));
        }
        if index >= self.batches() {
            return Ok(None);
        }
        let n = self.source.len();
        let (start, end) = (index * self.batch_size, ((index + 1) * self.batch_size).min(n));
        let batch = match &self.order {
            None => self.source.gather(&(start..end).collect::<Vec<_>>())?,
            Some(order) => self.source.gather(&order.for_pass(n, pass)[start..end])?,
        };
        Ok(Some(batch))
    }
}

/// See [`Dataset::map`].
pub struct Map<D, F> {
    inner: D,
    f: F,
}

impl<D: Dataset, F: Fn(Batch) -> Result<Batch> + Send + Sync> Dataset for Map<D, F> {
    fn length(&self) -> Length {
        self.inner.length()
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        self.inner.get(index, pass)?.map(&self.f).transpose()
    }
}

/// See [`Dataset::map_random`].
pub struct MapRandom<D, F> {
    inner: D,
    seed: u64,
    f: F,
}

impl<D: Dataset, F: Fn(Batch, &mut Rng) -> Result<Batch> + Send + Sync> Dataset for MapRandom<D, F> {
    fn length(&self) -> Length {
        self.inner.length()
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        let mut rng = Rng::seed(mix(self.seed, pass as u64, index as u64));
        self.inner.get(index, pass)?.map(|b| (self.f)(b, &mut rng)).transpose()
    }
}

/// See [`Dataset::take`].
pub struct Take<D> {
    inner: D,
    n: usize,
}

impl<D: Dataset> Dataset for Take<D> {
    fn length(&self) -> Length {
        match self.inner.length() {
            Length::Known(m) => Length::Known(m.min(self.n)),
            Length::Infinite => Length::Known(self.n),
            Length::Unknown => Length::Unknown,
        }
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        if index >= self.n {
            return Ok(None);
        }
        self.inner.get(index, pass)
    }
}

/// See [`Dataset::skip`].
pub struct Skip<D> {
    inner: D,
    n: usize,
}

impl<D: Dataset> Dataset for Skip<D> {
    fn length(&self) -> Length {
        match self.inner.length() {
            Length::Known(m) => Length::Known(m.saturating_sub(self.n)),
            other => other,
        }
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        match index.checked_add(self.n) {
            Some(i) => self.inner.get(i, pass),
            None => Ok(None),
        }
    }
}

/// See [`Dataset::repeat`].
pub struct Repeat<D> {
    inner: D,
    count: Option<usize>,
}

impl<D: Dataset> Dataset for Repeat<D> {
    fn length(&self) -> Length {
        match (self.inner.length(), self.count) {
            (Length::Known(n), Some(c)) => n.checked_mul(c).map_or(Length::Infinite, Length::Known),
            (Length::Known(0), None) => Length::Known(0),
            (_, None) | (Length::Infinite, _) => Length::Infinite,
            (Length::Unknown, Some(_)) => Length::Unknown,
        }
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        let n = match self.inner.length() {
            Length::Known(0) => return Ok(None),
            Length::Known(n) => n,
            Length::Infinite => return self.inner.get(index, pass),
            Length::Unknown => {
                return Err(Error::invalid("repeat", "needs a dataset of known length; this one has an unknown length"))
            }
        };
        let (round, i) = (index / n, index % n);
        if self.count.is_some_and(|c| round >= c) {
            return Ok(None);
        }
        // Each round is a pass of its own for the inner dataset.
        let inner_pass = match self.count {
            Some(c) => pass.saturating_mul(c).saturating_add(round),
            None => round,
        };
        self.inner.get(i, inner_pass)
    }
}

/// A dataset from a function of `(index, pass)`: see [`from_fn`].
pub struct FromFn<F> {
    length: Length,
    f: F,
}

/// A [`Dataset`] from a function returning batch `index` of pass `pass`
/// (`Ok(None)` past the end) — a generator, addressed by index so that
/// workers can share it.
pub fn from_fn<F>(length: Length, f: F) -> FromFn<F>
where
    F: Fn(usize, usize) -> Result<Option<Batch>> + Send + Sync,
{
    FromFn { length, f }
}

impl<F: Fn(usize, usize) -> Result<Option<Batch>> + Send + Sync> Dataset for FromFn<F> {
    fn length(&self) -> Length {
        self.length
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        if self.length.known().is_some_and(|n| index >= n) {
            return Ok(None);
        }
        (self.f)(index, pass)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(n: usize) -> TensorSource {
        let dev = crate::backend::native();
        let x = Tensor::new((0..n).map(|v| v as f32).collect::<Vec<_>>(), [n, 1], &dev).unwrap();
        let y = Tensor::new((0..n as i64).collect::<Vec<_>>(), [n], &dev).unwrap();
        from_tensors(&x, &y).unwrap()
    }

    fn labels(ds: &dyn Dataset, pass: usize) -> Vec<i64> {
        let mut out = Vec::new();
        let mut i = 0;
        while let Some(b) = ds.get(i, pass).unwrap() {
            out.extend(b.y[0].to_vec::<i64>().unwrap());
            i += 1;
        }
        out
    }

    #[test]
    fn a_uniform_shuffle_replays_fits_order_pass_by_pass() {
        let ds = source(10).shuffle(100).seed(3).batch(4);
        let mut rng = Rng::seed(3);
        let mut order: Vec<i64> = (0..10).collect();
        for pass in 0..3 {
            rng.shuffle(&mut order);
            assert_eq!(labels(&ds, pass), order, "pass {pass}");
        }
        // Asking for an earlier pass again gives it again.
        let mut first: Vec<i64> = (0..10).collect();
        Rng::seed(3).shuffle(&mut first);
        assert_eq!(labels(&ds, 0), first);
    }

    #[test]
    fn a_buffered_shuffle_is_a_permutation_that_stays_near_its_place() {
        let ds = source(1000).shuffle(10).seed(1).batch(64);
        let order = labels(&ds, 0);
        let mut sorted = order.clone();
        sorted.sort();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_ne!(order, sorted);
        // With a buffer of 10 the first output is one of the first 10 samples,
        // and no sample comes out before position i - 10 would allow it.
        assert!(order[0] < 10);
        for (pos, &v) in order.iter().enumerate() {
            assert!((v as usize) < pos + 10, "sample {v} at position {pos}");
        }
        assert_ne!(labels(&ds, 1), order, "a new pass reshuffles");
    }

    #[test]
    fn split_take_skip_repeat_and_drop_remainder_count_right() {
        let (a, b) = source(10).split(0.3).unwrap();
        assert_eq!((a.len(), b.len()), (7, 3));
        assert_eq!(labels(&b.clone().batch(2), 0), vec![7, 8, 9]);
        let ds = source(10).batch(3);
        assert_eq!(ds.length(), Length::Known(4));
        assert_eq!(labels(&source(10).batch(3).drop_remainder(true), 0).len(), 9);
        assert_eq!(labels(&source(10).batch(3).take(2), 0), (0..6).collect::<Vec<_>>());
        assert_eq!(labels(&source(10).batch(3).skip(3), 0), vec![9]);
        let r = source(4).batch(2).repeat(Some(3));
        assert_eq!(r.length(), Length::Known(6));
        assert_eq!(labels(&r, 0), vec![0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]);
        assert_eq!(source(4).batch(2).repeat(None).length(), Length::Infinite);
        assert!(source(10).split(0.0).is_err());
        assert!(source(1).split(0.5).is_err());
        let (tr, va) = source(10).split_seeded(0.5, 1).unwrap();
        let mut all = labels(&tr.batch(10), 0);
        all.extend(labels(&va.batch(10), 0));
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
    }

    #[test]
    fn map_random_depends_on_seed_pass_and_index_only() {
        let ds = source(8).batch(4).map_random(5, |b, rng| {
            let noise = rng.uniform();
            Ok(Batch { x: vec![b.x[0].add_scalar(f64::from(noise))?], ..b })
        });
        let a = ds.get(1, 2).unwrap().unwrap().x[0].to_vec::<f32>().unwrap();
        let b = ds.get(1, 2).unwrap().unwrap().x[0].to_vec::<f32>().unwrap();
        let c = ds.get(1, 3).unwrap().unwrap().x[0].to_vec::<f32>().unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn mismatched_tensors_and_out_of_range_gathers_are_errors() {
        let dev = crate::backend::native();
        let x = Tensor::zeros([4, 2], strata_core::DType::F32, &dev).unwrap();
        let y = Tensor::zeros([3], strata_core::DType::I64, &dev).unwrap();
        let e = from_tensors(&x, &y).unwrap_err().to_string();
        assert!(e.contains("4 samples") && e.contains("y[0] has 3"), "{e}");
        assert!(source(3).gather(&[3]).is_err());
        let e = source(3).batch(0).get(0, 0).unwrap_err().to_string();
        assert!(e.contains("batch_size"), "{e}");
    }
}
