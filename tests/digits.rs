//! End to end on real data shipped with the crate: scikit-learn's 8×8
//! digits (1797 images), 75% to train, 25% held out. A 64-64-10 MLP with
//! Adam must reach >= 95% held-out accuracy on every backend, in seconds.

use anyhow::Result;
use strata::datasets::digits;
use strata::optimizers::Adam;
use strata::prelude::*;

fn train_on(dev: &Device) -> Result<f64> {
    let split = digits::load_scaled()?.train_test_split(0.25, 0)?.to_device(dev)?;
    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(0)
        .build_on(dev)?;
    model.compile(Adam::new(3e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
    let history =
        model.fit(&split.train.x, &split.train.y, FitOptions::default().epochs(30).batch_size(32).verbose(0))?;
    let loss = history.get("loss").unwrap();
    assert!(loss[29] < loss[0] / 5.0, "{loss:?}");
    let report = model.evaluate_with(&split.test.x, &split.test.y, EvaluateOptions::default().verbose(0))?;
    Ok(report["accuracy"])
}

#[test]
fn digits_mlp_reaches_95_percent_held_out_on_native() -> Result<()> {
    let acc = train_on(&backend::native())?;
    assert!(acc >= 0.95, "held-out accuracy {acc}");
    Ok(())
}

#[cfg(feature = "candle")]
#[test]
fn digits_mlp_reaches_95_percent_held_out_on_candle() -> Result<()> {
    let acc = train_on(&backend::candle_cpu())?;
    assert!(acc >= 0.95, "held-out accuracy {acc}");
    Ok(())
}
