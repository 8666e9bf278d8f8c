//! Streaming datasets through fit / evaluate / predict, on every backend:
//! the dataset path trains exactly as the tensor path does with the same
//! seed (also from memory-mapped `.npy` files), the worker count changes
//! nothing, Keras' `steps_per_epoch` / `validation_steps` /
//! `validation_freq` semantics, and bad data, bad files and failing or
//! panicking datasets give errors naming the batch, never a hang.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Mutex;

use anyhow::Result;
use strata::data::{self, npy, Batch, Dataset, Length, Source};
use strata::prelude::*;

fn devices() -> Vec<Device> {
    ["native", "candle"]
        .into_iter()
        .filter(|n| strata::backend::available().contains(n))
        .map(|n| strata::backend::by_name(n).unwrap())
        .collect()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-data-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The digits, scaled to [0, 1], on `dev`.
fn digits(dev: &Device) -> Result<(Tensor, Tensor)> {
    let d = strata::datasets::digits::load()?.to_device(dev)?;
    Ok((d.x.div_scalar(16.0)?, d.y))
}

fn mlp(dev: &Device) -> Result<Model> {
    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(32).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(3)
        .build_on(dev)?;
    model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

fn weights(model: &Model) -> Vec<Vec<f32>> {
    model.get_weights().unwrap().iter().map(|t| t.to_vec::<f32>().unwrap()).collect()
}

fn max_diff(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    a.iter().flatten().zip(b.iter().flatten()).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

#[test]
fn the_dataset_path_trains_exactly_as_the_tensor_path_also_from_npy_files() -> Result<()> {
    let dir = temp_dir("same");
    for dev in devices() {
        let (x, y) = digits(&dev)?;
        let opts = || FitOptions::default().epochs(3).seed(11).verbose(0);

        let mut by_tensors = mlp(&dev)?;
        let h_t = by_tensors.fit(&x, &y, opts().batch_size(64))?;

        // The same shuffle (seed 11, uniform) as the tensor path; no batch-order shuffle on top.
        let mut by_dataset = mlp(&dev)?;
        let ds = data::from_tensors(&x, &y)?.shuffle(usize::MAX).seed(11).batch(64);
        let h_d = by_dataset.fit_dataset(&ds, opts().shuffle(false).workers(2))?;

        npy::write(dir.join("x.npy"), &x)?;
        npy::write(dir.join("y.npy"), &y)?;
        let mut by_npy = mlp(&dev)?;
        let mapped = npy::NpySource::open(dir.join("x.npy"), dir.join("y.npy"))?.on(&dev);
        let h_n = by_npy.fit_dataset(mapped.shuffle(usize::MAX).seed(11).batch(64), opts().shuffle(false))?;

        let w = weights(&by_tensors);
        assert!(max_diff(&w, &weights(&by_dataset)) < 1e-6, "{}: dataset path", dev.name());
        assert!(max_diff(&w, &weights(&by_npy)) < 1e-6, "{}: npy path", dev.name());
        for h in [&h_d, &h_n] {
            for key in ["loss", "accuracy"] {
                let (a, b) = (h_t.get(key).unwrap(), h.get(key).unwrap());
                assert!(a.iter().zip(b).all(|(a, b)| (a - b).abs() < 1e-5), "{}: {key} {a:?} vs {b:?}", dev.name());
            }
        }
        assert!(h_t.last("accuracy").unwrap() > 0.9, "{}: it learned", dev.name());

        // evaluate and predict agree between the two paths too.
        let e_t = by_tensors.evaluate_with(&x, &y, EvaluateOptions::default().verbose(0))?;
        let e_d = by_tensors
            .evaluate_dataset(data::from_tensors(&x, &y)?.batch(100), EvaluateOptions::default().verbose(0))?;
        assert!((e_t["loss"] - e_d["loss"]).abs() < 1e-5 && e_t["accuracy"] == e_d["accuracy"], "{e_t:?} {e_d:?}");
        let p_t = by_tensors.predict(&x)?.to_vec::<f32>()?;
        let p_d = by_tensors.predict_dataset(data::from_inputs(&x)?.batch(500), PredictOptions::default())?;
        assert_eq!(p_t, p_d.to_vec::<f32>()?);
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn batches_and_weights_do_not_depend_on_the_number_of_workers() -> Result<()> {
    for dev in devices() {
        let (x, y) = digits(&dev)?;
        let ds =
            data::from_tensors(&x, &y)?.shuffle(500).seed(4).batch(50).map_random(9, |b, rng| {
                Ok(Batch { x: vec![b.x[0].add_scalar(0.01 * f64::from(rng.uniform()))?], ..b })
            });
        let mut runs = Vec::new();
        for workers in [0, 1, 3] {
            let mut model = mlp(&dev)?;
            model.fit_dataset(
                &ds,
                FitOptions::default().epochs(2).seed(1).workers(workers).max_queue_size(2).verbose(0),
            )?;
            runs.push(weights(&model));
        }
        assert_eq!(runs[0], runs[1], "{}", dev.name());
        assert_eq!(runs[0], runs[2], "{}", dev.name());
    }
    Ok(())
}

#[track_caller]
fn err(r: strata::Result<History>) -> String {
    r.unwrap_err().to_string()
}

/// A dataset of `n` batches of 4 samples that records which `(index, pass)` were read.
struct Recorder {
    n: Option<usize>,
    reads: Mutex<Vec<(usize, usize)>>,
}

impl Dataset for Recorder {
    fn length(&self) -> Length {
        self.n.map_or(Length::Unknown, Length::Known)
    }
    fn get(&self, index: usize, pass: usize) -> strata::Result<Option<Batch>> {
        if index >= self.n.unwrap_or(7) {
            return Ok(None);
        }
        self.reads.lock().unwrap().push((index, pass));
        let dev = strata::backend::native();
        let x = Tensor::full(0.1 * index as f64, [4, 64], DType::F32, &dev)?;
        Ok(Some(Batch::new(&x, &Tensor::new(vec![1i64, 2, 3, 4], [4], &dev)?)))
    }
}

fn recorded(n: Option<usize>, options: FitOptions<'_>) -> Result<(Vec<(usize, usize)>, History)> {
    let ds = Recorder { n, reads: Mutex::new(Vec::new()) };
    let mut model = mlp(&strata::backend::native())?;
    let history = model.fit_dataset(&ds, options.workers(0).verbose(0))?;
    let reads = ds.reads.into_inner().unwrap();
    Ok((reads, history))
}

#[test]
fn steps_per_epoch_reads_on_across_epochs_and_a_short_pass_ends_the_epoch_as_in_keras() -> Result<()> {
    let q = || FitOptions::default().shuffle(false);
    // 5 batches, 2 per epoch: 0 1 | 2 3 | 4 (the pass ends) | 0 1 of pass 1.
    let (reads, history) = recorded(Some(5), q().epochs(4).steps_per_epoch(2))?;
    assert_eq!(reads, vec![(0, 0), (1, 0), (2, 0), (3, 0), (4, 0), (0, 1), (1, 1)]);
    assert_eq!(history.get("loss").unwrap().len(), 4);
    // Without steps_per_epoch each epoch is one pass, numbered by the epoch.
    let (reads, _) = recorded(Some(2), q().epochs(2))?;
    assert_eq!(reads, vec![(0, 0), (1, 0), (0, 1), (1, 1)]);
    // An unknown length is read until the dataset says it is over.
    let (reads, _) = recorded(None, q().epochs(1))?;
    assert_eq!(reads.len(), 7);
    // shuffle (the default) reorders the batches of each pass, from the seed.
    let (a, _) = recorded(Some(6), FitOptions::default().epochs(2).seed(5))?;
    let (b, _) = recorded(Some(6), FitOptions::default().epochs(2).seed(5))?;
    assert_eq!(a, b);
    let firsts: Vec<usize> = a[..6].iter().map(|r| r.0).collect();
    assert_ne!(firsts, (0..6).collect::<Vec<_>>());
    let mut sorted = firsts.clone();
    sorted.sort();
    assert_eq!(sorted, (0..6).collect::<Vec<_>>());
    Ok(())
}

#[test]
fn validation_freq_validation_steps_and_validation_batch_size() -> Result<()> {
    let dev = strata::backend::native();
    let (x, y) = digits(&dev)?;
    let (train, val) = data::from_tensors(&x, &y)?.split(0.25)?;
    let train = train.batch(64);
    let mut model = mlp(&dev)?;
    let h = model.fit_dataset(
        &train,
        FitOptions::default().epochs(4).validation_dataset(val.clone().batch(32)).validation_freq(2).verbose(0),
    )?;
    // Keras: val_* only after epochs 2 and 4.
    assert_eq!(h.get("loss").unwrap().len(), 4);
    assert_eq!(h.get("val_loss").unwrap().len(), 2);
    let full = model.evaluate_dataset(val.clone().batch(32), EvaluateOptions::default().verbose(0))?;
    assert!((h.last("val_loss").unwrap() - full["loss"]).abs() < 1e-6);
    // validation_steps reads that many batches from the start.
    let two = model.evaluate_dataset(val.clone().batch(32).take(2), EvaluateOptions::default().verbose(0))?;
    let h = model.fit_dataset(
        &train,
        FitOptions::default().epochs(1).validation_dataset(val.clone().batch(32)).validation_steps(2).verbose(0),
    )?;
    let after = model.evaluate_dataset(val.clone().batch(32).take(2), EvaluateOptions::default().verbose(0))?;
    assert!((h.last("val_loss").unwrap() - after["loss"]).abs() < 1e-6);
    assert_ne!(two["loss"], after["loss"], "the model trained in between");
    // Tensors: validation_batch_size does not change the (sample-weighted) mean.
    let all = val.gather(&(0..val.len()).collect::<Vec<_>>())?;
    let (vx, vy) = (all.x[0].clone(), all.y[0].clone());
    let mut m1 = mlp(&dev)?;
    let mut m2 = mlp(&dev)?;
    let o = || FitOptions::default().epochs(1).batch_size(64).seed(2).verbose(0);
    let h1 = m1.fit(&x, &y, o().validation_data(&vx, &vy).validation_batch_size(7))?;
    let h2 = m2.fit(&x, &y, o().validation_data(&vx, &vy).validation_batch_size(450))?;
    assert!((h1.last("val_loss").unwrap() - h2.last("val_loss").unwrap()).abs() < 1e-5);
    Ok(())
}

#[test]
fn bad_arguments_and_bad_batches_are_errors_naming_the_batch() -> Result<()> {
    let dev = strata::backend::native();
    let (x, y) = digits(&dev)?;
    let mut model = mlp(&dev)?;
    let ds = data::from_tensors(&x, &y)?.batch(100);
    let q = || FitOptions::default().verbose(0);
    assert!(err(model.fit_dataset(&ds, q().batch_size(32))).contains("batched already"));
    assert!(err(model.fit_dataset(&ds, q().validation_split(0.1))).contains("validation_split"));
    assert!(err(model.fit(&x, &y, q().steps_per_epoch(3))).contains("steps_per_epoch"));
    assert!(err(model.fit_dataset(&ds, q().validation_freq(0))).contains("validation_freq"));
    let forever = data::from_tensors(&x, &y)?.batch(100).repeat(None);
    let e = err(model.fit_dataset(&forever, q()));
    assert!(e.contains("infinite") && e.contains("steps_per_epoch"), "{e}");
    assert!(model.fit_dataset(&forever, q().steps_per_epoch(3)).is_ok());
    let e = model.evaluate_dataset(&forever, EvaluateOptions::default().verbose(0)).unwrap_err().to_string();
    assert!(e.contains("`steps`"), "{e}");
    let nothing = data::from_fn(Length::Unknown, |_, _| Ok(None));
    assert!(err(model.fit_dataset(&nothing, q())).contains("yielded no batches"));

    // Batch 3 has 65 features, batch 5 a label out of range, batch 6 a NaN.
    let bad = data::from_fn(Length::Known(8), |i, _| {
        let dev = strata::backend::native();
        let width = if i == 3 { 65 } else { 64 };
        let mut xs = vec![0.5f32; 4 * width];
        if i == 6 {
            xs[5] = f32::NAN;
        }
        let label = if i == 5 { 10 } else { 1 };
        Ok(Some(Batch::new(&Tensor::new(xs, [4, width], &dev)?, &Tensor::new(vec![label; 4], [4], &dev)?)))
    });
    for workers in [0, 2] {
        let o = || q().shuffle(false).workers(workers);
        let e = err(model.fit_dataset(&bad, o()));
        assert!(e.starts_with("dataset batch 3 (pass 0): ") && e.contains("65"), "{e}");
        let e = err(model.fit_dataset((&bad).skip(4), o()));
        assert!(e.starts_with("dataset batch 1 (pass 0): ") && e.contains("10"), "{e}");
        let e = err(model.fit_dataset((&bad).skip(6), o()));
        assert!(e.starts_with("dataset batch 0 (pass 0): ") && e.contains("NaN"), "{e}");
    }
    // A dtype strata cannot train on (NumPy's 4-byte unicode strings).
    let dir = temp_dir("dtype");
    npy::write(dir.join("x.npy"), &x)?;
    let mut bytes = std::fs::read(dir.join("x.npy"))?;
    let at = bytes.windows(5).position(|w| w == b"'<f4'").unwrap();
    bytes[at + 2..at + 4].copy_from_slice(b"U1");
    std::fs::write(dir.join("text.npy"), &bytes)?;
    let e = npy::NpyArray::open(dir.join("text.npy")).unwrap_err().to_string();
    assert!(e.contains("text.npy") && e.contains("unsupported dtype `<U1`"), "{e}");
    // A truncated file is an error when opened, naming it and the sizes.
    let bytes = std::fs::read(dir.join("x.npy"))?;
    std::fs::write(dir.join("cut.npy"), &bytes[..bytes.len() - 100])?;
    let e = npy::NpyArray::open(dir.join("cut.npy")).unwrap_err().to_string();
    assert!(e.contains("cut.npy") && e.contains("truncated"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn a_failing_or_panicking_dataset_or_callback_reaches_the_caller_without_hanging() -> Result<()> {
    let dev = strata::backend::native();
    let mut model = mlp(&dev)?;
    let failing = data::from_fn(Length::Known(50), |i, _| {
        if i == 17 {
            return Err(Error::msg("corrupt record 17"));
        }
        let dev = strata::backend::native();
        Ok(Some(Batch::new(&Tensor::zeros([2, 64], DType::F32, &dev)?, &Tensor::zeros([2], DType::I64, &dev)?)))
    });
    let panicking = data::from_fn(Length::Known(50), |i, _| {
        assert!(i != 9, "bug in the user's dataset at {i}");
        let dev = strata::backend::native();
        Ok(Some(Batch::new(&Tensor::zeros([2, 64], DType::F32, &dev)?, &Tensor::zeros([2], DType::I64, &dev)?)))
    });
    for workers in [0, 1, 4] {
        let o = || FitOptions::default().shuffle(false).workers(workers).max_queue_size(3).verbose(0);
        let e = model.fit_dataset(&failing, o()).unwrap_err().to_string();
        assert_eq!(e, "dataset batch 17 (pass 0): corrupt record 17");
        let caught = catch_unwind(AssertUnwindSafe(|| model.fit_dataset(&panicking, o())));
        let payload = caught.expect_err("the panic reaches the caller");
        let text = payload.downcast_ref::<String>().cloned().unwrap_or_default();
        assert!(text.contains("bug in the user's dataset at 9"), "{text}");
        // A callback's panic while workers are blocked on full queues.
        let cb = strata::callbacks::LambdaCallback::new().on_train_batch_end(|step, _, _| {
            assert!(step != 2, "callback bug");
        });
        let caught = catch_unwind(AssertUnwindSafe(|| model.fit_dataset(&failing, o().callback(cb))));
        if let Ok(r) = caught {
            panic!("the callback's panic was lost: {r:?}");
        }
        // The model still trains afterwards.
        model.fit_dataset((&failing).take(10), o())?;
    }
    Ok(())
}

#[test]
fn cache_in_memory_and_on_disk_keep_the_samples() -> Result<()> {
    let dev = strata::backend::native();
    let (x, y) = digits(&dev)?;
    let w = Tensor::rand_uniform([1797], 0.0, 1.0, &mut Rng::seed(1), &dev)?;
    let src = data::from_tensors(&x, &y)?.with_sample_weight(&w)?;
    let dir = temp_dir("cache");
    let on_disk = src.cache_to_disk(&dir)?;
    let in_memory = on_disk.cache()?;
    let idx = [1796, 0, 5, 1024, 1023];
    let a = src.gather(&idx)?;
    for b in [on_disk.gather(&idx)?, in_memory.gather(&idx)?] {
        assert_eq!(a.x[0].to_vec::<f32>()?, b.x[0].to_vec::<f32>()?);
        assert_eq!(a.y[0].to_vec::<i64>()?, b.y[0].to_vec::<i64>()?);
        assert_eq!(
            a.sample_weight.as_ref().unwrap().to_vec::<f32>()?,
            b.sample_weight.as_ref().unwrap().to_vec::<f32>()?
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}
