//! MNIST trained from `.npy` files through the streaming Dataset path, beside
//! the same model trained on in-memory tensors with the same seed: the
//! images are converted once to `.npy` files (NumPy's format), read back
//! memory-mapped, shuffled with the seed `fit` uses, batched and read ahead
//! on a worker thread. Prints both test accuracies and the largest weight
//! difference, and fails unless the accuracies are equal.
//!
//! ```text
//! cargo run --release --example mnist_npy              # 2 epochs, data found as for mnist_mlp
//! cargo run --release --example mnist_npy -- 5 path/to/mnist
//! ```

use std::time::Instant;

use anyhow::ensure;
use strata::data::{npy, Source};
use strata::datasets::mnist;
use strata::prelude::*;

fn model(dev: &Device) -> strata::Result<Model> {
    let mut m = Sequential::new()
        .add(Input::new([784]))
        .add(Dense::new(256).activation("relu"))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(42)
        .build_on(dev)?;
    m.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(m)
}

fn main() -> anyhow::Result<()> {
    let mut epochs = 2;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(n) if n > 0 => epochs = n,
            _ => dir = Some(arg),
        }
    }
    let dev = backend::from_env()?;
    let data = match dir {
        Some(d) => mnist::load_from(d)?,
        None => mnist::load()?,
    }
    .flatten()?
    .to_device(&dev)?;

    // Convert once: x as float32 [60000, 784], y as int64 [60000].
    let folder = std::env::temp_dir().join(format!("strata-mnist-npy-{}", std::process::id()));
    std::fs::create_dir_all(&folder)?;
    npy::write(folder.join("x_train.npy"), &data.train.x)?;
    npy::write(folder.join("y_train.npy"), &data.train.y)?;

    let seed = 7;
    let mut from_tensors = model(&dev)?;
    let start = Instant::now();
    from_tensors.fit(
        &data.train.x,
        &data.train.y,
        FitOptions::default().epochs(epochs).batch_size(128).seed(seed).verbose(0),
    )?;
    let t_tensors = start.elapsed().as_secs_f64();

    let mapped = npy::NpySource::open(folder.join("x_train.npy"), folder.join("y_train.npy"))?.on(&dev);
    let batches = mapped.shuffle(usize::MAX).seed(seed).batch(128);
    let mut from_files = model(&dev)?;
    let start = Instant::now();
    from_files.fit_dataset(&batches, FitOptions::default().epochs(epochs).shuffle(false).workers(1).verbose(2))?;
    let t_files = start.elapsed().as_secs_f64();
    std::fs::remove_dir_all(&folder)?;

    let quiet = EvaluateOptions::default().verbose(0);
    let acc_tensors = from_tensors.evaluate_with(&data.test.x, &data.test.y, quiet.clone())?.value("accuracy")?;
    let acc_files = from_files.evaluate_with(&data.test.x, &data.test.y, quiet)?.value("accuracy")?;
    let mut max_diff = 0f32;
    for (a, b) in from_tensors.get_weights()?.iter().zip(from_files.get_weights()?) {
        for (x, y) in a.to_vec::<f32>()?.iter().zip(b.to_vec::<f32>()?) {
            max_diff = max_diff.max((x - y).abs());
        }
    }
    println!(
        "backend {}: {epochs} epochs, test accuracy {:.2}% from tensors ({t_tensors:.1}s), {:.2}% from .npy files ({t_files:.1}s); largest weight difference {max_diff:e}",
        dev.name(),
        100.0 * acc_tensors,
        100.0 * acc_files
    );
    ensure!(acc_tensors == acc_files, "the two paths disagree");
    ensure!(acc_files > 0.96, "test accuracy {acc_files} is below 96%");
    Ok(())
}
