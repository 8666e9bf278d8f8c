//! Background prefetch: batches read and prepared on worker threads into
//! bounded queues, handed to the training loop in index order.
//!
//! Worker `w` of `W` prepares batches `w, w + W, w + 2W, ...` into its own
//! queue; the consumer takes batch `k` from queue `k % W`. The order and the
//! content are therefore the dataset's, whatever `W` is, memory is bounded
//! by the queues, and no lock is shared between workers. A worker's error
//! reaches the consumer in its place in the order (naming the batch); a
//! worker's panic is resumed on the consumer's thread; when the consumer
//! stops (the end, an error, a callback asking to stop, its own panic) the
//! queues are dropped, which ends every worker at its next hand-over.

use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{sync_channel, Receiver};

use strata_core::{Error, Result};

use super::{Batch, Dataset};

/// What a worker hands over for one index.
enum Msg<T> {
    Item(T),
    End,
    Failed(Error),
    Panicked(Box<dyn std::any::Any + Send>),
}

/// Where a run of batches starts and how it is read.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Read {
    /// The pass over the dataset.
    pub(crate) pass: usize,
    /// The first batch index.
    pub(crate) start: usize,
    /// At most this many batches.
    pub(crate) limit: Option<usize>,
    /// Worker threads (0: read on the calling thread).
    pub(crate) workers: usize,
    /// Prepared batches held at most, over all workers.
    pub(crate) queue: usize,
}

/// How a run of batches ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Ran {
    /// Batches handed to `consume`.
    pub(crate) consumed: usize,
    /// Whether the dataset's pass ended (`get` returned `None`).
    pub(crate) ended: bool,
}

fn item_name(index: usize, pass: usize) -> String {
    format!("dataset batch {index} (pass {pass})")
}

/// One batch: read, then prepared; errors name the batch.
fn produce<T>(
    ds: &dyn Dataset,
    index: usize,
    pass: usize,
    prepare: &(dyn Fn(usize, Batch) -> Result<T> + Sync),
) -> Result<Option<T>> {
    let batch = ds.get(index, pass).map_err(|e| e.in_item(item_name(index, pass)))?;
    batch.map(|b| prepare(index, b).map_err(|e| e.in_item(item_name(index, pass)))).transpose()
}

/// Reads batches `r.start, r.start + 1, ...` of pass `r.pass` (at most
/// `r.limit`), prepares each with `prepare` (on the workers) and hands them
/// to `consume` in order on this thread; `consume` returns `false` to stop.
pub(crate) fn run<T: Send>(
    ds: &dyn Dataset,
    r: Read,
    prepare: &(dyn Fn(usize, Batch) -> Result<T> + Sync),
    consume: &mut dyn FnMut(usize, T) -> Result<bool>,
) -> Result<Ran> {
    let within = |k: usize| r.limit.is_none_or(|l| k < l);
    if r.workers == 0 {
        let mut consumed = 0;
        while within(consumed) {
            let index = r.start + consumed;
            match produce(ds, index, r.pass, prepare)? {
                Some(t) => {
                    consumed += 1;
                    if !consume(index, t)? {
                        break;
                    }
                }
                None => return Ok(Ran { consumed, ended: true }),
            }
        }
        return Ok(Ran { consumed, ended: false });
    }
    let workers = r.workers;
    let capacity = r.queue.div_ceil(workers).max(1);
    let stop = AtomicBool::new(false);
    std::thread::scope(|s| {
        let mut queues: Vec<Receiver<Msg<T>>> = Vec::with_capacity(workers);
        for w in 0..workers {
            let (tx, rx) = sync_channel::<Msg<T>>(capacity);
            queues.push(rx);
            let stop = &stop;
            let spawned = std::thread::Builder::new().name(format!("strata-data-{w}")).spawn_scoped(s, move || {
                let mut k = w;
                while within(k) && !stop.load(Ordering::Relaxed) {
                    let index = r.start + k;
                    let msg = match catch_unwind(AssertUnwindSafe(|| produce(ds, index, r.pass, prepare))) {
                        Ok(Ok(Some(t))) => Msg::Item(t),
                        Ok(Ok(None)) => Msg::End,
                        Ok(Err(e)) => Msg::Failed(e),
                        Err(payload) => Msg::Panicked(payload),
                    };
                    let last = !matches!(msg, Msg::Item(_));
                    if tx.send(msg).is_err() || last {
                        break;
                    }
                    k += workers;
                }
            });
            if let Err(e) = spawned {
                stop.store(true, Ordering::Relaxed);
                return Err(Error::msg(format!("cannot start data worker thread {w}: {e}")));
            }
        }
        let mut consumed = 0;
        let result = loop {
            if !within(consumed) {
                break Ok(Ran { consumed, ended: false });
            }
            let index = r.start + consumed;
            match queues[consumed % workers].recv() {
                Ok(Msg::Item(t)) => {
                    consumed += 1;
                    match consume(index, t) {
                        Ok(true) => {}
                        Ok(false) => break Ok(Ran { consumed, ended: false }),
                        Err(e) => break Err(e),
                    }
                }
                Ok(Msg::End) => break Ok(Ran { consumed, ended: true }),
                Ok(Msg::Failed(e)) => break Err(e),
                Ok(Msg::Panicked(payload)) => {
                    stop.store(true, Ordering::Relaxed);
                    drop(queues);
                    resume_unwind(payload)
                }
                // A worker only leaves without a message past the limit.
                Err(_) => break Err(Error::msg(format!("the data worker for batch {index} stopped unexpectedly"))),
            }
        };
        stop.store(true, Ordering::Relaxed);
        drop(queues);
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{from_fn, Length};
    use std::sync::atomic::AtomicUsize;
    use strata_core::Tensor;

    fn counting(n: usize, fail_at: Option<usize>, panic_at: Option<usize>) -> impl Dataset {
        from_fn(Length::Known(n), move |i, pass| {
            if Some(i) == fail_at {
                return Err(Error::msg("corrupt record"));
            }
            if Some(i) == panic_at {
                panic!("worker bug at {i}");
            }
            let dev = crate::backend::native();
            Ok(Some(crate::data::Batch::inputs(&Tensor::new(vec![(i + 100 * pass) as f32], [1, 1], &dev)?)))
        })
    }

    fn read(ds: &dyn Dataset, workers: usize, limit: Option<usize>) -> Result<(Vec<f32>, Ran)> {
        let mut seen = Vec::new();
        let r = Read { pass: 1, start: 2, limit, workers, queue: 3 };
        let ran = run(ds, r, &|_, b| b.x[0].to_vec::<f32>(), &mut |_, v| {
            seen.extend(v);
            Ok(true)
        })?;
        Ok((seen, ran))
    }

    #[test]
    fn every_worker_count_gives_the_same_batches_in_order() {
        let ds = counting(20, None, None);
        let want: Vec<f32> = (2..20).map(|i| (i + 100) as f32).collect();
        for workers in [0, 1, 2, 3, 7] {
            let (seen, ran) = read(&ds, workers, None).unwrap();
            assert_eq!(seen, want, "{workers} workers");
            assert_eq!(ran, Ran { consumed: 18, ended: true });
            let (seen, ran) = read(&ds, workers, Some(5)).unwrap();
            assert_eq!(seen, want[..5]);
            assert_eq!(ran, Ran { consumed: 5, ended: false });
        }
    }

    #[test]
    fn a_workers_error_names_the_batch_and_a_panic_reaches_the_caller() {
        for workers in [0, 1, 3] {
            let e = read(&counting(20, Some(9), None), workers, None).unwrap_err().to_string();
            assert_eq!(e, "dataset batch 9 (pass 1): corrupt record", "{workers} workers");
            let caught = catch_unwind(AssertUnwindSafe(|| read(&counting(20, None, Some(6)), workers, None)));
            let payload = caught.expect_err("the panic reaches the caller");
            let text = payload.downcast_ref::<String>().cloned().unwrap_or_default();
            assert_eq!(text, "worker bug at 6");
        }
    }

    #[test]
    fn stopping_early_ends_the_workers_without_reading_everything() {
        let reads = AtomicUsize::new(0);
        let ds = from_fn(Length::Unknown, |i, _| {
            reads.fetch_add(1, Ordering::Relaxed);
            let dev = crate::backend::native();
            Ok(Some(crate::data::Batch::inputs(&Tensor::new(vec![i as f32], [1, 1], &dev)?)))
        });
        let r = Read { pass: 0, start: 0, limit: None, workers: 2, queue: 4 };
        let ran = run(&ds, r, &|_, b| Ok(b), &mut |i, _| Ok(i < 10)).unwrap();
        assert_eq!(ran, Ran { consumed: 11, ended: false });
        // At most the queues plus one in flight per worker beyond what was used.
        assert!(reads.load(Ordering::Relaxed) <= 11 + 4 + 2 + 2, "{} reads", reads.load(Ordering::Relaxed));
    }
}
