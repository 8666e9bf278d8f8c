//! The MNIST MLP from Keras' examples: 784-256-128-10, Adam 1e-3, batch 128,
//! 5 epochs, 10% of the training set held out for validation. Prints the
//! test accuracy and the time per epoch, and fails below 97.5%.
//!
//! ```text
//! cargo run --release --example mnist_mlp                 # data from STRATA_DATA, the cache, or ../shared/data
//! cargo run --release --example mnist_mlp -- path/to/mnist
//! STRATA_BACKEND=candle cargo run --release --example mnist_mlp
//! ```
//!
//! The four IDX files (`train-images-idx3-ubyte.gz`, ...) are looked up as
//! `strata::datasets::mnist::load` documents.

use std::time::Instant;

use strata::datasets::mnist;
use strata::optimizers::Adam;
use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let data = match std::env::args().nth(1) {
        Some(dir) => mnist::load_from(dir)?,
        None => mnist::load()?,
    }
    .flatten()?
    .to_device(&dev)?;
    println!("backend: {}, {} training and {} test images", dev.name(), data.train.len(), data.test.len());

    let mut model = Sequential::new()
        .add(Input::new([784]))
        .add(Dense::new(256).activation("relu"))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(42)
        .build_on(&dev)?;
    model.summary();
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;

    let epochs = 5;
    let start = Instant::now();
    let history = model.fit(
        &data.train.x,
        &data.train.y,
        FitOptions::default().epochs(epochs).batch_size(128).validation_split(0.1),
    )?;
    let per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let report = model.evaluate(&data.test.x, &data.test.y)?;
    let acc = report["accuracy"];
    println!(
        "{}: test accuracy {:.4}, test loss {:.4}, {:.2} s/epoch (incl. validation), final val_accuracy {:.4}",
        dev.name(),
        acc,
        report["loss"],
        per_epoch,
        history.last("val_accuracy").unwrap_or(f64::NAN)
    );
    anyhow::ensure!(acc >= 0.975, "test accuracy {acc:.4} is below 97.5%");
    Ok(())
}
