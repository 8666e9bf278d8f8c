//! Options for [`Model::fit`](crate::Model::fit),
//! [`evaluate_with`](crate::Model::evaluate_with) and
//! [`predict_with`](crate::Model::predict_with), as builders with Keras'
//! defaults.

use std::collections::BTreeMap;

use strata_core::Tensor;

use crate::callbacks::Callback;
use crate::data::Dataset;
use crate::ModelInputs;

/// How `fit` trains: Keras' `fit` arguments as a builder.
///
/// Defaults: `batch_size` 32, `epochs` 1, `verbose` 1 (a progress bar),
/// `shuffle` on, no validation. Arguments are checked when `fit` starts,
/// before any training step: a zero batch size or a `validation_split`
/// outside `[0, 1)` is an error.
///
/// ```
/// # use strata::FitOptions;
/// let options = FitOptions::default().epochs(5).batch_size(128).validation_split(0.1).verbose(0);
/// ```
pub struct FitOptions<'a> {
    pub(crate) batch_size: usize,
    pub(crate) epochs: usize,
    pub(crate) verbose: u8,
    pub(crate) shuffle: bool,
    pub(crate) validation_split: f64,
    pub(crate) validation_data: Option<ValidationData>,
    pub(crate) class_weight: Option<BTreeMap<i64, f64>>,
    pub(crate) sample_weight: Option<Tensor>,
    pub(crate) initial_epoch: usize,
    pub(crate) callbacks: Vec<Box<dyn Callback + 'a>>,
    pub(crate) seed: Option<u64>,
    pub(crate) batch_size_set: bool,
    pub(crate) steps_per_epoch: Option<usize>,
    pub(crate) validation_dataset: Option<Box<dyn Dataset + 'a>>,
    pub(crate) validation_steps: Option<usize>,
    pub(crate) validation_freq: usize,
    pub(crate) validation_batch_size: Option<usize>,
    pub(crate) stream: StreamOptions,
    pub(crate) check_numerics: bool,
}

/// How a [`Dataset`] is read: worker threads and queue size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct StreamOptions {
    pub(crate) workers: usize,
    pub(crate) max_queue_size: usize,
}

impl Default for StreamOptions {
    fn default() -> Self {
        StreamOptions { workers: 1, max_queue_size: 10 }
    }
}

/// Held-out data passed to [`FitOptions::validation_data`].
pub(crate) struct ValidationData {
    pub(crate) x: Vec<Tensor>,
    pub(crate) y: Vec<Tensor>,
    pub(crate) sample_weight: Option<Tensor>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            batch_size: 32,
            epochs: 1,
            verbose: 1,
            shuffle: true,
            validation_split: 0.0,
            validation_data: None,
            class_weight: None,
            sample_weight: None,
            initial_epoch: 0,
            callbacks: Vec::new(),
            seed: None,
            batch_size_set: false,
            steps_per_epoch: None,
            validation_dataset: None,
            validation_steps: None,
            validation_freq: 1,
            validation_batch_size: None,
            stream: StreamOptions::default(),
            check_numerics: false,
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Samples per gradient step (default 32; the last batch may be smaller).
    /// Not for [`fit_dataset`](crate::Model::fit_dataset), whose dataset is
    /// batched already (giving both is an error, as in Keras).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self.batch_size_set = true;
        self
    }

    /// The epoch to stop after: training runs epochs `initial_epoch..epochs`.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// 0: silent; 1: a live progress bar per epoch (default); 2: one line per
    /// epoch.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Whether to shuffle the training samples before each epoch (default
    /// true). The order is drawn from the model's seed, or [`seed`](Self::seed).
    ///
    /// For [`fit_dataset`](crate::Model::fit_dataset) it shuffles the order
    /// of the batches of a dataset of known length each epoch, as Keras does
    /// for a `PyDataset`; the samples inside the batches are the dataset's
    /// (shuffle them with [`Source::shuffle`](crate::data::Source::shuffle)).
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Holds out the *last* `fraction` of the samples (taken before shuffling,
    /// as Keras does) and reports `val_*` metrics on them after each epoch.
    pub fn validation_split(mut self, fraction: f64) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Held-out inputs and targets for `val_*` metrics (takes precedence over
    /// `validation_split`).
    pub fn validation_data(mut self, x: impl ModelInputs, y: impl ModelInputs) -> Self {
        self.validation_data = Some(ValidationData { x: x.into_tensors(), y: y.into_tensors(), sample_weight: None });
        self
    }

    /// [`validation_data`](Self::validation_data) with per-sample weights.
    pub fn validation_data_weighted(
        mut self,
        x: impl ModelInputs,
        y: impl ModelInputs,
        sample_weight: &Tensor,
    ) -> Self {
        self.validation_data = Some(ValidationData {
            x: x.into_tensors(),
            y: y.into_tensors(),
            sample_weight: Some(sample_weight.clone()),
        });
        self
    }

    /// Weights the loss of each sample by its class (`[(0, 1.0), (1, 5.0)]`);
    /// classes not listed weigh 1. Classes are the sparse label, the argmax of
    /// a one-hot target, or the rounded value of a binary target.
    pub fn class_weight(mut self, weights: impl IntoIterator<Item = (i64, f64)>) -> Self {
        self.class_weight = Some(weights.into_iter().collect());
        self
    }

    /// Per-sample loss weights, shape `[samples]`.
    pub fn sample_weight(mut self, weights: &Tensor) -> Self {
        self.sample_weight = Some(weights.clone());
        self
    }

    /// The epoch to start at (to resume an earlier run); epochs are counted
    /// from 0 as in Keras.
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Adds a callback. Pass `&mut cb` to keep access to it after training
    /// (e.g. to read [`EarlyStopping::stopped_epoch`](crate::callbacks::EarlyStopping::stopped_epoch)).
    pub fn callback(mut self, callback: impl Callback + 'a) -> Self {
        self.callbacks.push(Box::new(callback));
        self
    }

    /// The seed of the shuffling order (default: drawn from the model's seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Batches per epoch for [`fit_dataset`](crate::Model::fit_dataset)
    /// (Keras' `steps_per_epoch`): the dataset is read on from where the
    /// last epoch stopped, and a pass that ends inside an epoch ends that
    /// epoch early (the next starts a new pass). Needed for an infinite
    /// dataset.
    pub fn steps_per_epoch(mut self, steps: usize) -> Self {
        self.steps_per_epoch = Some(steps);
        self
    }

    /// A held-out [`Dataset`] for the `val_*` metrics (instead of tensors;
    /// takes precedence over [`validation_data`](Self::validation_data)).
    pub fn validation_dataset(mut self, data: impl Dataset + 'a) -> Self {
        self.validation_dataset = Some(Box::new(data));
        self
    }

    /// Batches of the validation dataset per evaluation, from its start
    /// (default: all of it; needed for an infinite one).
    pub fn validation_steps(mut self, steps: usize) -> Self {
        self.validation_steps = Some(steps);
        self
    }

    /// Validate after every `freq`-th epoch only (default 1: every epoch).
    pub fn validation_freq(mut self, freq: usize) -> Self {
        self.validation_freq = freq;
        self
    }

    /// Samples per batch of validation tensors (default: `batch_size`).
    pub fn validation_batch_size(mut self, batch_size: usize) -> Self {
        self.validation_batch_size = Some(batch_size);
        self
    }

    /// Threads that read and prepare a dataset's batches ahead of the
    /// training step (default 1; 0 reads on the training thread). The
    /// batches and their order do not depend on it.
    pub fn workers(mut self, workers: usize) -> Self {
        self.stream.workers = workers;
        self
    }

    /// Prepared batches held in the queue at most (default 10, as Keras).
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.stream.max_queue_size = size;
        self
    }

    /// Debug mode (TensorFlow's `enable_check_numerics`): every training
    /// step scans each layer's output, the loss and every gradient for NaN
    /// and infinities, and the first found ends `fit` with an
    /// [`Error::NonFinite`](crate::Error::NonFinite) saying where it first
    /// appeared, before that step's update:
    ///
    /// ```text
    /// check_numerics: inf first appears in the output of dense_1 (Dense) at epoch 3, step 2;
    ///   its input was finite (in [-2.1e19, 3.4e19]); kernel max |w| = 2.9e19, bias max |w| = 1.1e18
    /// check_numerics: the gradient of dense.kernel is NaN at epoch 1, step 4, after the loss became 3.2e37 ...
    /// ```
    ///
    /// Epochs and steps count from 1, as the progress bar shows them. Off
    /// (the default), training does no scan at all. On, each step pays a
    /// pass over every activation and gradient.
    pub fn check_numerics(mut self, on: bool) -> Self {
        self.check_numerics = on;
        self
    }
}

/// How [`Model::evaluate_with`](crate::Model::evaluate_with) runs.
///
/// Defaults: `batch_size` 32, `verbose` 1.
#[derive(Clone, Debug)]
pub struct EvaluateOptions {
    pub(crate) batch_size: usize,
    pub(crate) verbose: u8,
    pub(crate) sample_weight: Option<Tensor>,
    pub(crate) steps: Option<usize>,
    pub(crate) stream: StreamOptions,
}

impl Default for EvaluateOptions {
    fn default() -> Self {
        EvaluateOptions {
            batch_size: 32,
            verbose: 1,
            sample_weight: None,
            steps: None,
            stream: StreamOptions::default(),
        }
    }
}

impl EvaluateOptions {
    /// Samples per forward pass (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// 0: silent; 1: a progress bar (default); 2: one line at the end.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Per-sample weights for the loss (and for metrics compiled with
    /// [`Metrics::weighted`](crate::Metrics::weighted)), shape `[samples]`.
    pub fn sample_weight(mut self, weights: &Tensor) -> Self {
        self.sample_weight = Some(weights.clone());
        self
    }

    /// For a dataset: read at most `steps` batches (needed for an infinite one).
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = Some(steps);
        self
    }

    /// For a dataset: threads reading batches ahead (default 1; 0: none).
    pub fn workers(mut self, workers: usize) -> Self {
        self.stream.workers = workers;
        self
    }

    /// For a dataset: prepared batches held at most (default 10).
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.stream.max_queue_size = size;
        self
    }
}

/// How [`Model::predict_with`](crate::Model::predict_with) runs.
///
/// Defaults: `batch_size` 32, `verbose` 0. Keras prints a bar by default;
/// strata does not, because `predict` is what runs in deployed programs.
#[derive(Clone, Debug)]
pub struct PredictOptions {
    pub(crate) batch_size: usize,
    pub(crate) verbose: u8,
    pub(crate) steps: Option<usize>,
    pub(crate) stream: StreamOptions,
}

impl Default for PredictOptions {
    fn default() -> Self {
        PredictOptions { batch_size: 32, verbose: 0, steps: None, stream: StreamOptions::default() }
    }
}

impl PredictOptions {
    /// Samples per forward pass (default 32).
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// 0: silent (default); 1: a progress bar; 2: one line at the end.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// For a dataset: read at most `steps` batches (needed for an infinite one).
    pub fn steps(mut self, steps: usize) -> Self {
        self.steps = Some(steps);
        self
    }

    /// For a dataset: threads reading batches ahead (default 1; 0: none).
    pub fn workers(mut self, workers: usize) -> Self {
        self.stream.workers = workers;
        self
    }

    /// For a dataset: prepared batches held at most (default 10).
    pub fn max_queue_size(mut self, size: usize) -> Self {
        self.stream.max_queue_size = size;
        self
    }
}
