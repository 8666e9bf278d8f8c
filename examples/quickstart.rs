//! The first thing to run: an MLP on the handwritten digits that ship with
//! strata (no download), trained in a few seconds. Prints the held-out
//! accuracy, fails below 95%, and writes `history.png` (the loss and
//! accuracy curves) when the `plot` feature is on, as it is by default.
//!
//! ```text
//! cargo run --release --example quickstart
//! STRATA_BACKEND=candle cargo run --release --example quickstart
//! ```

use strata::datasets::digits;
use strata::optimizers::Adam;
use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    // 1797 8x8 images, pixels in [0, 1]; 25% held out for the test.
    let data = digits::load_scaled()?.train_test_split(0.25, 0)?.to_device(&dev)?;

    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(0)
        .build_on(&dev)?;
    model.summary();
    model.compile(Adam::new(3e-3), "sparse_categorical_crossentropy", &["accuracy"])?;

    let options = FitOptions::default().epochs(30).batch_size(32).validation_split(0.2).verbose(0);
    let history = model.fit(&data.train.x, &data.train.y, options)?;
    let report = model.evaluate_with(&data.test.x, &data.test.y, EvaluateOptions::default().verbose(0))?;
    let acc = report["accuracy"];
    println!("{}: test accuracy {acc:.4} after {} epochs", dev.name(), history.len());

    #[cfg(feature = "plot")]
    {
        history.plot("history.png")?;
        println!("wrote history.png");
    }
    anyhow::ensure!(acc >= 0.95, "test accuracy {acc:.4} is below 95%");
    Ok(())
}
