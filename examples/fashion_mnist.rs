//! The MNIST MLP on Fashion-MNIST (Zalando's 28x28 pictures of clothes, 10
//! classes): 784-256-128-10, Adam 1e-3, batch 128, 10% of the training set
//! held out for validation. Prints the test accuracy, the accuracy per class
//! and the time per epoch; fails below 85% (80% when run for fewer than 3
//! epochs, as CI does).
//!
//! ```text
//! cargo run --release --example fashion_mnist                 # 5 epochs, data found as for mnist_mlp
//! cargo run --release --example fashion_mnist -- 2            # 2 epochs
//! cargo run --release --example fashion_mnist -- 2 path/to/fashion-mnist
//! STRATA_BACKEND=candle cargo run --release --example fashion_mnist
//! ```
//!
//! The four IDX files are looked up (and downloaded when missing) as
//! `strata::datasets::fashion_mnist::load` documents.

use std::time::Instant;

use strata::datasets::fashion_mnist::{self, CLASS_NAMES};
use strata::optimizers::Adam;
use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    // Arguments: an epoch count and/or a data folder, in any order.
    let mut epochs = 5;
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
        Some(dir) => fashion_mnist::load_from(dir)?,
        None => fashion_mnist::load()?,
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
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;

    let start = Instant::now();
    let options = FitOptions::default().epochs(epochs).batch_size(128).validation_split(0.1).verbose(2);
    model.fit(&data.train.x, &data.train.y, options)?;
    let per_epoch = start.elapsed().as_secs_f64() / epochs as f64;

    // Accuracy per class, from the predicted probabilities.
    let predicted = model.predict(&data.test.x)?.argmax(1, false)?.to_vec::<i64>()?;
    let labels = data.test.y.to_vec::<i64>()?;
    let mut right = [0usize; 10];
    let mut total = [0usize; 10];
    for (&p, &y) in predicted.iter().zip(&labels) {
        total[y as usize] += 1;
        right[y as usize] += usize::from(p == y);
    }
    for (c, name) in CLASS_NAMES.iter().enumerate() {
        println!("  {name:<12} {:.3}", right[c] as f64 / total[c].max(1) as f64);
    }
    let acc = right.iter().sum::<usize>() as f64 / labels.len() as f64;
    println!(
        "{}: test accuracy {acc:.4} after {epochs} epoch(s), {per_epoch:.2} s/epoch (incl. validation)",
        dev.name()
    );

    let bar = if epochs >= 3 { 0.85 } else { 0.80 };
    anyhow::ensure!(acc >= bar, "test accuracy {acc:.4} is below {bar}");
    Ok(())
}
