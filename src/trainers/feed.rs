//! Where the batches of an epoch come from: prepared tensors cut into
//! batches, or a [`Dataset`] read ahead on worker threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use strata_core::{Error, Result, Rng};

use super::data::Data;
use super::options::StreamOptions;
use crate::data::prefetch::{self, Read};
use crate::data::{Batch, Dataset, Length};
use crate::losses::Loss;
use crate::Model;

/// The batches of one `fit`, `evaluate` or `predict`.
pub(crate) enum Feed<'d> {
    /// Checked tensors, shuffled (or not) each epoch.
    Tensors { data: Data, batch_size: usize, order: Vec<usize>, shuffle: Option<Box<Rng>> },
    /// A dataset.
    Stream(Stream<'d>),
}

/// A dataset being read.
pub(crate) struct Stream<'d> {
    ds: &'d dyn Dataset,
    /// Batches per epoch (`steps_per_epoch`, `validation_steps`, `steps`).
    steps: Option<usize>,
    /// Whether epochs continue the pass where the last stopped (Keras with
    /// `steps_per_epoch`), instead of each epoch being one pass.
    carry: bool,
    /// The pass and next batch index (for `carry`).
    pass: usize,
    next: usize,
    /// Reorders the batches of each pass (Keras' `shuffle` for a `PyDataset`).
    shuffle: Option<u64>,
    stream: StreamOptions,
    class_weight: Option<BTreeMap<i64, f64>>,
    /// Which pass an epoch reads when not carrying (evaluation: always 0).
    pass_is_epoch: bool,
}

/// A dataset with its batches in a seeded order per pass.
struct Permuted<'d> {
    ds: &'d dyn Dataset,
    order: Arc<Vec<usize>>,
}

impl Dataset for Permuted<'_> {
    fn length(&self) -> Length {
        Length::Known(self.order.len())
    }
    fn get(&self, index: usize, pass: usize) -> Result<Option<Batch>> {
        match self.order.get(index) {
            Some(&i) => self.ds.get(i, pass),
            None => Ok(None),
        }
    }
}

impl<'d> Stream<'d> {
    /// A dataset read for training (`fit = true`) or evaluation and
    /// prediction; `what` names it in errors ("the dataset", "the
    /// validation dataset").
    pub(crate) fn new(
        ds: &'d dyn Dataset,
        steps: Option<usize>,
        fit: bool,
        shuffle: Option<u64>,
        stream: StreamOptions,
        what: &str,
    ) -> Result<Stream<'d>> {
        if ds.length() == Length::Infinite && steps.is_none() {
            let arg = if !fit {
                "steps"
            } else if what.contains("validation") {
                "validation_steps"
            } else {
                "steps_per_epoch"
            };
            return Err(Error::invalid(
                "data",
                format!("{what} is infinite (a repeat without a count); give `{arg}` to say how many batches to read"),
            ));
        }
        if steps == Some(0) {
            return Err(Error::invalid(
                "data",
                format!("the number of steps for {what} must be at least 1, received 0"),
            ));
        }
        if stream.workers > 0 && stream.max_queue_size == 0 {
            return Err(Error::invalid("max_queue_size", "must be at least 1 when workers read ahead, received 0"));
        }
        Ok(Stream {
            ds,
            steps,
            carry: fit && steps.is_some() && !what.contains("validation"),
            pass: 0,
            next: 0,
            shuffle,
            stream,
            class_weight: None,
            pass_is_epoch: fit && !what.contains("validation"),
        })
    }

    /// Per-class loss weights applied to each batch.
    pub(crate) fn class_weight(mut self, weights: Option<BTreeMap<i64, f64>>) -> Self {
        self.class_weight = weights;
        self
    }
}

impl Feed<'_> {
    /// Checked tensors in batches of `batch_size`, in order.
    pub(crate) fn tensors(data: Data, batch_size: usize) -> Self {
        let order = (0..data.len).collect();
        Feed::Tensors { data, batch_size, order, shuffle: None }
    }

    /// Batches in the coming epoch, if known.
    pub(crate) fn epoch_steps(&self) -> Option<usize> {
        match self {
            Feed::Tensors { data, batch_size, .. } => Some(data.len.div_ceil(*batch_size)),
            Feed::Stream(s) => match (s.ds.length().known(), s.steps) {
                (Some(n), Some(k)) if s.carry => Some(k.min(n.saturating_sub(s.next)).max(1)),
                (Some(n), Some(k)) => Some(k.min(n)),
                (Some(n), None) => Some(n),
                (None, k) => k,
            },
        }
    }

    /// The samples of the tensors, if the feed is tensors (for
    /// `validation_split`).
    pub(crate) fn tensor_data(&mut self) -> Option<&mut Data> {
        match self {
            Feed::Tensors { data, .. } => Some(data),
            Feed::Stream(_) => None,
        }
    }

    /// Runs epoch `epoch`: every batch, checked against the model and its
    /// `losses` (`None` when predicting), goes to `step` with its step
    /// number; `step` returns `false` to stop. Returns the steps taken.
    pub(crate) fn epoch(
        &mut self,
        model: &Model,
        losses: Option<&[Loss]>,
        epoch: usize,
        step: &mut dyn FnMut(usize, Data) -> Result<bool>,
    ) -> Result<usize> {
        match self {
            Feed::Tensors { data, batch_size, order, shuffle } => {
                if let Some(rng) = shuffle {
                    rng.shuffle(order);
                }
                let mut done = 0;
                for (k, idx) in order.chunks(*batch_size).enumerate() {
                    done = k + 1;
                    if !step(k, data.select(idx)?)? {
                        break;
                    }
                }
                Ok(done)
            }
            Feed::Stream(s) => s.epoch(model, losses, epoch, step),
        }
    }
}

impl Stream<'_> {
    fn epoch(
        &mut self,
        model: &Model,
        losses: Option<&[Loss]>,
        epoch: usize,
        step: &mut dyn FnMut(usize, Data) -> Result<bool>,
    ) -> Result<usize> {
        let (pass, start) =
            if self.carry { (self.pass, self.next) } else { (if self.pass_is_epoch { epoch } else { 0 }, 0) };
        let class_weight = self.class_weight.as_ref();
        let prepare = |_: usize, b: Batch| -> Result<Data> {
            let y = if losses.is_some() { b.y } else { Vec::new() };
            let mut d = Data::new(model, losses, b.x, y, b.sample_weight, "")?;
            if let Some(cw) = class_weight {
                d.apply_class_weight(cw)?;
            }
            Ok(d)
        };
        let permuted;
        let ds: &dyn Dataset = match (self.shuffle, self.ds.length()) {
            (Some(seed), Length::Known(n)) => {
                let mut order: Vec<usize> = (0..n).collect();
                Rng::seed(crate::data::mix(seed, pass as u64, 1)).shuffle(&mut order);
                permuted = Permuted { ds: self.ds, order: Arc::new(order) };
                &permuted
            }
            _ => self.ds,
        };
        let mut taken = 0;
        let mut stopped = false;
        let read =
            Read { pass, start, limit: self.steps, workers: self.stream.workers, queue: self.stream.max_queue_size };
        let ran = prefetch::run(ds, read, &prepare, &mut |_, batch| {
            let go = step(taken, batch)?;
            taken += 1;
            stopped = !go;
            Ok(go)
        })?;
        if ran.consumed == 0 && ran.ended {
            return Err(Error::invalid(
                "data",
                if start == 0 {
                    format!("the dataset yielded no batches (pass {pass})")
                } else {
                    format!("the dataset yielded no batch at index {start} of pass {pass}")
                },
            ));
        }
        if self.carry {
            let pass_over = ran.ended || ds.length().known().is_some_and(|n| start + ran.consumed >= n);
            if pass_over && !stopped {
                self.pass += 1;
                self.next = 0;
            } else {
                self.next = start + ran.consumed;
            }
        }
        Ok(ran.consumed)
    }
}
