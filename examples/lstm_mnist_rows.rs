//! An LSTM reading each MNIST image as a sequence: its 28 rows are 28
//! timesteps of 28 pixels, LSTM(128) → Dense 10 softmax (the model of
//! `shared/bench/keras_bench.py lstm`), Adam 1e-3, batch 128, 10% of the
//! training set held out for validation. Prints the test accuracy and the
//! time per epoch; fails below 98% after 8 epochs (the default), below 95%
//! after 2 to 7, below 90% after 1.
//!
//! ```text
//! cargo run --release --example lstm_mnist_rows                 # 8 epochs, data found as for mnist_mlp
//! cargo run --release --example lstm_mnist_rows -- 2            # 2 epochs (CI)
//! cargo run --release --example lstm_mnist_rows -- 1 path/to/mnist
//! STRATA_BACKEND=candle cargo run --release --example lstm_mnist_rows
//! ```

use std::time::Instant;

use strata::datasets::mnist;
use strata::optimizers::Adam;
use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    // Arguments: an epoch count and/or a data folder, in any order.
    let mut epochs = 8;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(0) => anyhow::bail!("the epoch count must be at least 1"),
            Ok(n) => epochs = n,
            Err(_) => dir = Some(arg),
        }
    }
    let dev = backend::from_env()?;
    let data = match dir {
        Some(dir) => mnist::load_from(dir)?,
        None => mnist::load()?,
    }
    .to_device(&dev)?;
    // [N, 784] pixels as [N, 28 timesteps, 28 features].
    let rows = |x: &Tensor| x.reshape([x.dims()[0], 28, 28]);
    let (x_train, x_test) = (rows(&data.train.x)?, rows(&data.test.x)?);
    println!("backend: {}, {} training and {} test images", dev.name(), data.train.len(), data.test.len());

    let mut model = Sequential::new()
        .add(Input::new([28, 28]))
        .add(LSTM::new(128))
        .add(Dense::new(10).activation("softmax"))
        .seed(42)
        .build_on(&dev)?;
    model.summary();
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;

    let start = Instant::now();
    let history = model.fit(
        &x_train,
        &data.train.y,
        FitOptions::default().epochs(epochs).batch_size(128).validation_split(0.1),
    )?;
    let per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let report = model.evaluate(&x_test, &data.test.y)?;
    let acc = report["accuracy"];
    println!(
        "{}: test accuracy {:.4}, test loss {:.4}, {:.1} s/epoch (incl. validation), final val_accuracy {:.4}",
        dev.name(),
        acc,
        report["loss"],
        per_epoch,
        history.last("val_accuracy").unwrap_or(f64::NAN)
    );
    let bar = match epochs {
        8.. => 0.98,
        2..=7 => 0.95,
        _ => 0.90,
    };
    anyhow::ensure!(acc >= bar, "test accuracy {acc:.4} is below {:.0}%", bar * 100.0);
    Ok(())
}
