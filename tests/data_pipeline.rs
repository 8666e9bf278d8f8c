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

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/npy").join(name)
}

/// The values `make_npy_files.py` saved: `(arange(24) - 5.5) / 4`, shape (4, 3, 2).
fn saved_x() -> Vec<f32> {
    (0..24).map(|i| (i as f32 - 5.5) / 4.0).collect()
}

#[test]
fn files_numpy_wrote_read_as_numpy_wrote_them() -> Result<()> {
    let dev = strata::backend::native();
    for name in ["f4.npy", "f8_be.npy", "f2.npy"] {
        let a = npy::NpyArray::open(fixture(name))?;
        assert_eq!(a.shape(), &[4, 3, 2], "{name}");
        // f2 holds these exactly too: quarters below 2048.
        assert_eq!(a.to_tensor(&dev)?.to_vec::<f32>()?, saved_x(), "{name}");
        let mapped = npy::NpyArray::open_mapped(fixture(name))?;
        assert_eq!(mapped.rows(&[3, 0, 1], &dev)?.to_vec::<f32>()?, a.rows(&[3, 0, 1], &dev)?.to_vec::<f32>()?);
    }
    let u1 = npy::NpyArray::open(fixture("u1.npy"))?;
    assert_eq!(u1.dtype(), DType::I64);
    assert_eq!(u1.rows(&[3], &dev)?.to_vec::<i64>()?, (18..24).map(|v| v * 10).collect::<Vec<i64>>());
    let scaled = u1.as_f32(0.5).rows(&[0], &dev)?.to_vec::<f32>()?;
    assert_eq!(scaled, vec![0.0, 5.0, 10.0, 15.0, 20.0, 25.0]);
    assert_eq!(npy::read(fixture("i4.npy"), &dev)?.to_vec::<i64>()?, vec![3, -1, 7, 0]);
    assert_eq!(npy::read(fixture("b1.npy"), &dev)?.to_vec::<i64>()?, vec![1, 0, 0, 1]);
    let e = npy::NpyArray::open(fixture("fortran.npy")).unwrap_err().to_string();
    assert!(e.contains("Fortran-ordered"), "{e}");
    for archive in ["stored.npz", "compressed.npz"] {
        let arrays = npy::read_npz(fixture(archive))?;
        let names: Vec<&str> = arrays.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["x", "y"], "{archive}");
        assert_eq!(arrays[0].1.to_tensor(&dev)?.to_vec::<f32>()?, saved_x(), "{archive}");
        let source = npy::NpySource::new(vec![arrays[0].1.clone()], vec![arrays[1].1.clone()])?.on(&dev);
        assert_eq!(source.gather(&[2, 1])?.y[0].to_vec::<i64>()?, vec![1, 0], "{archive}");
    }
    // Truncated archives and members are errors, never panics.
    let bytes = std::fs::read(fixture("stored.npz"))?;
    let dir = temp_dir("npz");
    for cut in (0..bytes.len()).step_by(7) {
        std::fs::write(dir.join("cut.npz"), &bytes[..cut])?;
        assert!(npy::read_npz(dir.join("cut.npz")).is_err(), "cut at {cut}");
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// NumPy reads what strata writes. Runs when `STRATA_KERAS_PYTHON` names a
/// Python with NumPy (`.ci/run` sets it); otherwise it says so and passes.
#[test]
fn numpy_reads_the_files_strata_writes() -> Result<()> {
    let Ok(python) = std::env::var("STRATA_KERAS_PYTHON") else {
        eprintln!("STRATA_KERAS_PYTHON is not set: NumPy's side of npy::write is not checked");
        return Ok(());
    };
    let dev = strata::backend::native();
    let dir = temp_dir("numpy");
    npy::write(dir.join("x.npy"), &Tensor::new(saved_x(), [4, 3, 2], &dev)?)?;
    npy::write(dir.join("y.npy"), &Tensor::new(vec![5i64, -6, 7], [3], &dev)?)?;
    let script = "import sys, numpy as np\n\
        x = np.load(sys.argv[1] + '/x.npy'); y = np.load(sys.argv[1] + '/y.npy')\n\
        assert x.dtype == np.float32 and x.shape == (4, 3, 2), (x.dtype, x.shape)\n\
        assert (x == (np.arange(24).reshape(4, 3, 2) - 5.5) / 4).all()\n\
        assert y.dtype == np.int64 and list(y) == [5, -6, 7], y\n\
        print('numpy read both files')";
    let out = std::process::Command::new(python).args(["-c", script]).arg(&dir).output()?;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// `dir/a_cat` (6 red-ish PNGs, one in a nested folder as JPEG), `dir/b_dog`
/// (6 blue-ish PNGs) and a text file that is skipped.
fn image_folder(name: &str) -> PathBuf {
    let dir = temp_dir(name);
    for (class, rgb) in [("a_cat", [200u8, 40, 10]), ("b_dog", [10, 60, 220])] {
        std::fs::create_dir_all(dir.join(class).join("more")).unwrap();
        for i in 0..6u8 {
            let img = image::RgbImage::from_pixel(10, 8, image::Rgb([rgb[0], rgb[1] + i, rgb[2]]));
            img.save(dir.join(class).join(format!("{i}.png"))).unwrap();
        }
        std::fs::write(dir.join(class).join("notes.txt"), "not an image").unwrap();
    }
    image::RgbImage::from_pixel(16, 16, image::Rgb([128, 128, 128]))
        .save(dir.join("a_cat").join("more").join("gray.jpg"))
        .unwrap();
    dir
}

#[test]
fn image_folders_read_as_keras_reads_them() -> Result<()> {
    use strata::data::images::{image_dataset_from_directory, ImageFolderOptions};
    let dir = image_folder("images");
    let dev = strata::backend::native();
    let opts = || ImageFolderOptions::new().image_size(4, 5).batch_size(5).shuffle(false);
    let all = image_dataset_from_directory(&dir, &opts())?.on(&dev).all()?;
    let src = all.source();
    assert_eq!(src.class_names(), &["a_cat", "b_dog"]);
    assert_eq!(src.len(), 13);
    let labels: Vec<usize> = src.files().iter().map(|f| f.1).collect();
    assert_eq!(labels, [vec![0; 7], vec![1; 6]].concat());
    assert!(src.files()[6].0.ends_with("a_cat/more/gray.jpg"), "sorted by path: {:?}", src.files()[6].0);
    let b = all.get(0, 0)?.unwrap();
    assert_eq!(b.x[0].dims(), &[5, 4, 5, 3]);
    assert_eq!(b.y[0].to_vec::<i64>()?, vec![0; 5]);
    // A constant image stays constant through the resize; values are 0..=255.
    let first: Vec<f32> = b.x[0].to_vec::<f32>()?[..60].to_vec();
    assert!(first.chunks(3).all(|p| p == [200.0, 40.0, 10.0]), "{first:?}");
    // The JPEG decodes near its gray (lossy), grayscale uses the luma weights.
    let gray = image_dataset_from_directory(&dir, &opts().color_mode("grayscale").batch_size(13))?.on(&dev).all()?;
    let g = gray.get(0, 0)?.unwrap();
    assert_eq!(g.x[0].dims(), &[13, 4, 5, 1]);
    let px = g.x[0].to_vec::<f32>()?;
    assert!((px[6 * 20] - 128.0).abs() <= 2.0, "jpeg gray {}", px[6 * 20]);
    let luma = (0.2126f32 * 200.0 + 0.7152 * 40.0 + 0.0722 * 10.0).round();
    assert!((px[0] - luma).abs() <= 1.0, "luma {} vs {luma}", px[0]);
    // Label modes.
    let cat = image_dataset_from_directory(&dir, &opts().label_mode("categorical").batch_size(13))?.on(&dev).all()?;
    let y = cat.get(0, 0)?.unwrap().y[0].to_rows::<f32>()?;
    assert_eq!((y[0].clone(), y[12].clone()), (vec![1.0, 0.0], vec![0.0, 1.0]));
    let bin = image_dataset_from_directory(&dir, &opts().label_mode("binary").batch_size(13))?.on(&dev).all()?;
    assert_eq!(bin.get(0, 0)?.unwrap().y[0].dims(), &[13, 1]);
    let unlabeled = image_dataset_from_directory(&dir, &opts().no_labels())?.on(&dev).all()?;
    assert!(unlabeled.get(0, 0)?.unwrap().y.is_empty());
    let only_dogs = image_dataset_from_directory(&dir, &opts().class_names(["b_dog"]))?.all()?;
    assert_eq!(only_dogs.source().len(), 6);
    // A seeded split: the last int(0.3 * 13) = 3 files of the shuffled list.
    let split = || ImageFolderOptions::new().image_size(4, 5).batch_size(4).validation_split(0.3).seed(7);
    let (train, val) = image_dataset_from_directory(&dir, &split())?.split()?;
    let (train2, _) = image_dataset_from_directory(&dir, &split())?.split()?;
    assert_eq!((train.source().len(), val.source().len()), (10, 3));
    assert_eq!(train.source().files(), train2.source().files());
    let mut every: Vec<PathBuf> =
        train.source().files().iter().chain(val.source().files()).map(|f| f.0.clone()).collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 13);
    assert_eq!(image_dataset_from_directory(&dir, &split())?.validation()?.source().files(), val.source().files());
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

#[test]
fn corrupt_images_and_bad_image_options_are_errors() -> Result<()> {
    use strata::data::images::{image_dataset_from_directory, ImageFolderOptions};
    let dir = image_folder("corrupt");
    std::fs::write(dir.join("b_dog").join("4.png"), b"\x89PNG\r\n\x1a\n this is not a PNG")?;
    let dev = strata::backend::native();
    let opts = || ImageFolderOptions::new().image_size(4, 4).batch_size(4).shuffle(false);
    let ds = image_dataset_from_directory(&dir, &opts())?.on(&dev).all()?;
    let mut model = Sequential::new()
        .add(Input::new([4, 4, 3]))
        .add(Flatten::new())
        .add(Dense::new(2).activation("softmax"))
        .build_on(&dev)?;
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    for workers in [0, 2] {
        let e = err(model.fit_dataset(&ds, FitOptions::default().shuffle(false).workers(workers).verbose(0)));
        // Sorted: a_cat has 7 files, so b_dog/4.png is file 11, in batch 2.
        assert!(
            e.starts_with("dataset batch 2 (pass 0): ") && e.contains("b_dog/4.png: cannot decode the image"),
            "{e}"
        );
    }
    let bad = |o: ImageFolderOptions| image_dataset_from_directory(&dir, &o).map(|_| ()).unwrap_err().to_string();
    assert!(bad(opts().color_mode("cmyk")).contains("color_mode"));
    assert!(bad(opts().label_mode("sparse")).contains("label_mode"));
    assert!(bad(opts().class_names(["a_cat", "b_dog", "c_cow"])).contains("c_cow"));
    assert!(bad(ImageFolderOptions::new().validation_split(0.2)).contains("seed"));
    assert!(bad(opts().image_size(0, 4)).contains("image_size"));
    std::fs::create_dir_all(dir.join("c_cow"))?;
    assert!(bad(opts().label_mode("binary")).contains("exactly 2 classes"));
    let empty = temp_dir("no-images");
    std::fs::create_dir_all(empty.join("x"))?;
    let e = image_dataset_from_directory(&empty, &opts()).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("found no images"), "{e}");
    let e = image_dataset_from_directory(empty.join("missing"), &opts()).map(|_| ()).unwrap_err().to_string();
    assert!(e.contains("missing") && e.contains("read the folder"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
    std::fs::remove_dir_all(&empty).ok();
    Ok(())
}

#[test]
fn tensors_from_and_to_rows_and_ndarray() -> Result<()> {
    for dev in devices() {
        let t = Tensor::from_rows(&[vec![1.0f32, 2.0, 3.0], vec![4.0, 5.0, 6.0]], &dev)?;
        assert_eq!(t.dims(), &[2, 3]);
        let e = Tensor::from_rows(&[vec![1i64, 2], vec![3]], &dev).unwrap_err().to_string();
        assert!(e.contains("row 1 has 1"), "{e}");
        let model = Sequential::new().add(Input::new([3])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
        let rows = model.predict(&t)?.to_rows::<f32>()?;
        assert_eq!(rows.len(), 2);
        assert!(rows.iter().all(|r| r.len() == 2 && (r.iter().sum::<f32>() - 1.0).abs() < 1e-5));
        let a = ndarray::Array3::from_shape_fn((2, 3, 4), |(i, j, k)| (i * 100 + j * 10 + k) as f32);
        let t = Tensor::from_ndarray(&a, &dev)?;
        assert_eq!(t.dims(), &[2, 3, 4]);
        assert_eq!(t.to_ndarray::<f32>()?, a.clone().into_dyn());
        let view = a.slice(ndarray::s![.., 1.., ..;2]);
        let t = Tensor::from_ndarray(&view, &dev)?;
        assert_eq!(t.dims(), &[2, 2, 2]);
        assert_eq!(t.to_vec::<f32>()?, vec![10.0, 12.0, 20.0, 22.0, 110.0, 112.0, 120.0, 122.0]);
        let ids = ndarray::arr1(&[3i64, 1, 4]);
        assert_eq!(Tensor::from_ndarray(&ids, &dev)?.to_ndarray::<i64>()?, ids.into_dyn());
    }
    Ok(())
}

mod mutated_files {
    use super::*;
    use proptest::prelude::*;

    /// Opens and reads every row of `bytes` as a `.npy` file (and, when it
    /// opens as an archive, every member): errors are fine, panics are not.
    fn read_all(dir: &std::path::Path, bytes: &[u8], name: &str) {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        let dev = strata::backend::native();
        if name.ends_with(".npz") {
            if let Ok(arrays) = npy::read_npz(&path) {
                for (_, a) in arrays {
                    let _ = a.to_tensor(&dev);
                }
            }
        } else if let Ok(a) = npy::NpyArray::open(&path) {
            if a.shape().iter().product::<usize>() < 1 << 20 {
                let _ = a.to_tensor(&dev);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() })]

        /// Flipped bytes and cut files (NumPy's own files as the seeds)
        /// give errors or arrays, never a panic or an allocation blow-up.
        #[test]
        fn mutated_npy_and_npz_files_never_panic(
            which in 0usize..4,
            flips in proptest::collection::vec((0usize..700, any::<u8>()), 0..6),
            cut in 0usize..800,
        ) {
            let name = ["f4.npy", "f8_be.npy", "u1.npy", "stored.npz"][which];
            let mut bytes = std::fs::read(fixture(name)).unwrap();
            for (at, v) in flips {
                if !bytes.is_empty() {
                    let i = at % bytes.len();
                    bytes[i] = v;
                }
            }
            bytes.truncate(cut.max(1));
            let dir = temp_dir("mutated");
            read_all(&dir, &bytes, name);
        }
    }
}
