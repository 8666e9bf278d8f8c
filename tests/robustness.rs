//! User input that used to panic, abort or hang, on every backend: each case
//! must come back as an `Err` that names what was wrong (or, for a panic in
//! user code that strata does not catch, as that panic), within seconds.

use std::sync::mpsc;
use std::time::Duration;

use anyhow::{anyhow, Result};
use strata::layers::{BuildContext, CallContext, TensorSpec};
use strata::prelude::*;
use strata::Error;

/// Runs `f` on its own thread and fails the test (instead of hanging it)
/// when it does not return within `secs` seconds.
fn within<T: Send + 'static>(secs: u64, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(Duration::from_secs(secs)).map_err(|_| anyhow!("no answer within {secs} s: a hang"))
}

/// At least two threads in rayon's global pool, where the native backend
/// runs training steps (the hang needed two or more).
fn two_thread_pool() {
    let _ = rayon::ThreadPoolBuilder::new().num_threads(2).build_global();
}

fn devices() -> Vec<(&'static str, Device)> {
    strata::backend::available().into_iter().map(|n| (n, strata::backend::by_name(n).unwrap())).collect()
}

/// A custom layer that panics in `call` (once built).
struct Explodes;

impl Layer for Explodes {
    fn class_name(&self) -> &str {
        "Explodes"
    }
    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> strata::Result<TensorSpec> {
        Ok(inputs[0].clone())
    }
    fn call(&self, _inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> strata::Result<Tensor> {
        panic!("boom in a custom layer")
    }
}

fn small_data(dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::new((0..32).map(|i| i as f32 / 32.0).collect::<Vec<_>>(), [8, 4], dev)?;
    let y = Tensor::new(vec![0i64, 1, 0, 1, 0, 1, 0, 1], [8], dev)?;
    Ok((x, y))
}

#[test]
fn a_panicking_custom_layer_in_fit_is_an_error_naming_it() -> Result<()> {
    two_thread_pool();
    for (name, dev) in devices() {
        let result = within(10, move || -> Result<String> {
            let (x, y) = small_data(&dev)?;
            let mut model = Sequential::new()
                .add(Input::new([4]))
                .add(Explodes)
                .add(Dense::new(2).activation("softmax"))
                .build_on(&dev)?;
            model.compile("sgd", "sparse_categorical_crossentropy", ())?;
            let err = model.fit(&x, &y, FitOptions::default().epochs(1).verbose(0)).unwrap_err();
            Ok(err.to_string())
        })??;
        assert!(
            result.contains("explodes (Explodes)") && result.contains("boom in a custom layer"),
            "{name}: {result}"
        );
    }
    Ok(())
}

#[test]
fn a_panicking_lambda_and_custom_loss_are_errors_naming_them() -> Result<()> {
    two_thread_pool();
    for (name, dev) in devices() {
        let (x, y) = small_data(&dev)?;
        // Lambda runs its function at build (to infer the output shape).
        let e = Sequential::new()
            .add(Input::new([4]))
            .add(Lambda::new("robustness_panics", |_| panic!("lambda went wrong")))
            .add(Dense::new(2))
            .build_on(&dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("lambda (Lambda)") && e.contains("panicked: lambda went wrong"), "{name}: {e}");

        let loss = strata::losses::CustomLoss::new("robustness_bad_loss", |_, _| panic!("loss went wrong"));
        let mut model = Sequential::new().add(Input::new([4])).add(Dense::new(1)).build_on(&dev)?;
        model.compile("sgd", Loss::Custom(loss), ())?;
        let y = y.cast(DType::F32)?;
        let e = model.fit(&x, &y, FitOptions::default().verbose(0)).unwrap_err().to_string();
        assert!(e.contains("robustness_bad_loss") && e.contains("loss went wrong"), "{name}: {e}");
    }
    Ok(())
}

/// A metric that panics while it is updated: inside the training step, on
/// the native pool's thread.
#[derive(Clone)]
struct PanickingMetric;

impl Metric for PanickingMetric {
    fn name(&self) -> &str {
        "panics"
    }
    fn update_state(&mut self, _: &Tensor, _: &Tensor, _: Option<&Tensor>, _: Option<&Tensor>) -> strata::Result<()> {
        panic!("metric went wrong")
    }
    fn result(&self) -> f64 {
        0.0
    }
    fn reset_state(&mut self) {}
    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        Box::new(PanickingMetric)
    }
}

#[test]
fn a_panic_inside_the_training_step_reaches_the_caller_instead_of_hanging() -> Result<()> {
    two_thread_pool();
    for (name, dev) in devices() {
        let outcome = within(10, move || {
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| -> Result<()> {
                let (x, y) = small_data(&dev)?;
                let mut model =
                    Sequential::new().add(Input::new([4])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
                model.compile("sgd", "sparse_categorical_crossentropy", vec![MetricSpec::from(PanickingMetric)])?;
                model.fit(&x, &y, FitOptions::default().epochs(1).verbose(0))?;
                Ok(())
            }))
        })?;
        let payload = outcome.expect_err("the metric panics");
        let message = payload.downcast_ref::<&str>().copied().unwrap_or_default();
        assert_eq!(message, "metric went wrong", "{name}");
    }
    // The pool still trains afterwards.
    let dev = strata::backend::native();
    let (x, y) = small_data(&dev)?;
    let mut model = Sequential::new().add(Input::new([4])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
    model.compile("sgd", "sparse_categorical_crossentropy", ())?;
    within(10, move || model.fit(&x, &y, FitOptions::default().epochs(1).verbose(0)).map(|_| ()))??;
    Ok(())
}

/// A layer whose `call` returns another shape than its `build` declared.
struct Liar;

impl Layer for Liar {
    fn class_name(&self) -> &str {
        "Liar"
    }
    fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> strata::Result<TensorSpec> {
        Ok(inputs[0].with_last(3))
    }
    fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> strata::Result<Tensor> {
        Ok(inputs[0].clone())
    }
}

#[test]
fn a_layer_returning_another_shape_than_it_declared_is_blamed() -> Result<()> {
    for (name, dev) in devices() {
        let model = Sequential::new().add(Input::new([4])).add(Liar).add(Dense::new(2)).build_on(&dev)?;
        let e = model.predict(&Tensor::zeros([2, 4], DType::F32, &dev)?).unwrap_err().to_string();
        assert!(
            e.contains("liar (Liar)") && e.contains("call returned (2, 4) f32") && e.contains("declared (None, 3)"),
            "{name}: {e}"
        );
    }
    Ok(())
}

#[test]
fn sizes_that_overflow_are_errors_naming_the_shape() -> Result<()> {
    for (name, dev) in devices() {
        let e = Tensor::zeros([usize::MAX, 2], DType::F32, &dev).unwrap_err();
        assert!(matches!(e, Error::SizeOverflow { .. }), "{name}: {e}");
        let e = Tensor::new(Vec::<f32>::new(), [1 << 32, 1 << 32], &dev).unwrap_err();
        assert!(e.to_string().contains("4294967296"), "{name}: {e}");

        // At build: the shape and the layer.
        let e = Sequential::new()
            .add(Input::new([1 << 32, 1 << 32]))
            .add(Flatten::new())
            .add(Dense::new(1))
            .build_on(&dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("4294967296, 4294967296") && e.contains("usize"), "{name}: {e}");
        let e = Sequential::new()
            .add(Input::new([1 << 31, 1 << 31]))
            .add(Flatten::new())
            .add(Flatten::new())
            .build_on(&dev);
        assert!(e.is_ok(), "{name}: 2^62 per sample still fits a spec: {e:?}");
        let e = Sequential::new()
            .add(Input::new([3]).dtype(DType::I64))
            .add(Embedding::new(1 << 32, 1 << 32))
            .build_on(&dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("embedding (Embedding)") && e.contains("4294967296"), "{name}: {e}");

        // 47,040,000 x 512 f32 weights are 96 GB: an error, not an abort.
        let e = Sequential::new().add(Input::new([60000 * 784])).add(Dense::new(512)).build_on(&dev).unwrap_err();
        let e = e.to_string();
        assert!(e.contains("dense (Dense)") && e.contains("47040000"), "{name}: {e}");
        // The truncated normal is drawn on the host: also an error.
        let e = Sequential::new()
            .add(Input::new([60000 * 784]))
            .add(Dense::new(512).kernel_initializer("he_normal"))
            .build_on(&dev)
            .unwrap_err()
            .to_string();
        assert!(e.contains("dense (Dense)") && e.contains("47040000"), "{name}: {e}");
    }
    Ok(())
}

#[test]
fn embedding_rejects_ids_that_are_not_whole_numbers() -> Result<()> {
    for (name, dev) in devices() {
        let model = Sequential::new().add(Input::new([3])).add(Embedding::new(10, 2)).build_on(&dev)?;
        let ok = model.predict(&Tensor::new(vec![1.0f32, 2.0, 9.0], [1, 3], &dev)?)?;
        assert_eq!(ok.dims(), &[1, 3, 2]);
        for (bad, shown) in [(2.7f32, "2.7"), (f32::NAN, "NaN"), (f32::INFINITY, "inf")] {
            let x = Tensor::new(vec![1.0f32, bad, 3.0], [1, 3], &dev)?;
            let e = model.predict(&x).unwrap_err().to_string();
            assert!(
                e.contains("embedding (Embedding)") && e.contains(&format!("id {shown} at index 1")),
                "{name}: {e}"
            );
        }
        let e = model.predict(&Tensor::new(vec![1.0f32, 10.0, 3.0], [1, 3], &dev)?).unwrap_err().to_string();
        assert!(e.contains("id 10 at index 1 is out of range"), "{name}: {e}");
    }
    Ok(())
}

#[test]
fn logs_say_which_keys_they_hold() -> Result<()> {
    let dev = strata::backend::native();
    let (x, y) = small_data(&dev)?;
    let mut model = Sequential::new().add(Input::new([4])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    let report = model.evaluate_with(&x, &y, EvaluateOptions::default().verbose(0))?;
    assert!(report.get("acc").is_none());
    let e = report.value("acc").unwrap_err().to_string();
    assert!(e.contains("`acc`") && e.contains("accuracy, loss"), "{e}");
    let panic = std::panic::catch_unwind(|| report["acc"]).unwrap_err();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("accuracy, loss"), "{message}");
    assert_eq!(report.value("accuracy")?, report["accuracy"]);
    Ok(())
}

#[test]
fn file_errors_are_typed_and_keep_their_source() -> Result<()> {
    let dir = std::env::temp_dir().join(format!("strata_robustness_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let missing = dir.join("missing.safetensors");
    match strata::load_model(&missing).unwrap_err() {
        Error::Io { path, source, .. } => {
            assert_eq!(path, missing);
            assert_eq!(source.kind(), std::io::ErrorKind::NotFound);
        }
        other => panic!("expected Error::Io, got {other}"),
    }
    let corrupt = dir.join("corrupt.safetensors");
    std::fs::write(&corrupt, [8u8, 0, 0, 0, 0, 0, 0, 0, b'{', b'x'])?;
    match strata::load_model(&corrupt).unwrap_err() {
        e @ Error::Format { .. } => {
            assert!(std::error::Error::source(&e).is_some(), "the safetensors error is kept: {e}");
            assert!(e.to_string().contains("corrupt.safetensors"), "{e}");
        }
        other => panic!("expected Error::Format, got {other}"),
    }
    let e = strata::datasets::csv::load(dir.join("none.csv"), &Default::default()).unwrap_err();
    assert!(matches!(&e, Error::Io { source, .. } if source.kind() == std::io::ErrorKind::NotFound), "{e}");
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
