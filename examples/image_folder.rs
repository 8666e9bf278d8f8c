//! Training from a folder of image files, as Keras'
//! `image_dataset_from_directory` tutorials do: writes Fashion-MNIST
//! pictures as PNG files into one subfolder per class, reads them back
//! batch by batch (decoded on worker threads while the model trains), holds
//! out 20% for validation, trains a small convnet, and tests it on a second
//! folder. Fails below 75% test accuracy. Then shows the error a corrupt
//! file gives.
//!
//! ```text
//! cargo run --release --example image_folder              # 600 training images per class, 3 epochs
//! cargo run --release --example image_folder -- 1000 5    # 1000 per class, 5 epochs
//! ```
//!
//! The Fashion-MNIST files are looked up as `strata::datasets::fashion_mnist::load`
//! documents (Debian: `apt install dataset-fashion-mnist`).

use std::path::Path;
use std::time::Instant;

use anyhow::{ensure, Context};
use strata::data::images::{image_dataset_from_directory, ImageFolderOptions};
use strata::data::Source;
use strata::datasets::fashion_mnist::{self, CLASS_NAMES};
use strata::prelude::*;

/// A folder name for each class (`T-shirt/top` has a slash).
fn folder(class: &str) -> String {
    class.replace('/', "_")
}

/// Writes the first `per_class` images of each class of `x` (`[N, 28, 28]`
/// in `[0, 1]`) as 8-bit grayscale PNG files under `dir/<class>/`.
fn write_pngs(dir: &Path, x: &Tensor, y: &Tensor, per_class: usize) -> anyhow::Result<usize> {
    let pixels = x.to_vec::<f32>()?;
    let labels = y.to_vec::<i64>()?;
    let mut written = [0usize; 10];
    for class in CLASS_NAMES {
        std::fs::create_dir_all(dir.join(folder(class)))?;
    }
    for (i, &label) in labels.iter().enumerate() {
        let c = label as usize;
        if written[c] == per_class {
            continue;
        }
        let bytes: Vec<u8> = pixels[i * 784..(i + 1) * 784].iter().map(|v| (v * 255.0).round() as u8).collect();
        let img = image::GrayImage::from_raw(28, 28, bytes).context("28x28 pixels")?;
        img.save(dir.join(folder(CLASS_NAMES[c])).join(format!("{i:05}.png")))?;
        written[c] += 1;
    }
    Ok(written.iter().sum())
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1).map(|a| a.parse::<usize>());
    let per_class = args.next().transpose()?.unwrap_or(600);
    let epochs = args.next().transpose()?.unwrap_or(3);
    ensure!(per_class >= 10 && epochs >= 1, "usage: image_folder [images per class >= 10] [epochs >= 1]");

    let dev = backend::from_env()?;
    let data = fashion_mnist::load()?;
    let root = std::env::temp_dir().join(format!("strata-image-folder-{}", std::process::id()));
    let started = Instant::now();
    let n_train = write_pngs(&root.join("train"), &data.train.x, &data.train.y, per_class)?;
    let n_test = write_pngs(&root.join("test"), &data.test.x, &data.test.y, per_class / 4)?;
    println!(
        "wrote {n_train} training and {n_test} test PNG files under {} in {:.1}s",
        root.display(),
        started.elapsed().as_secs_f64()
    );

    // Keras: image_dataset_from_directory(dir, validation_split=0.2, subset="both", seed=1337,
    //        color_mode="grayscale", image_size=(28, 28), batch_size=64), classes in Fashion-MNIST's order.
    let classes: Vec<String> = CLASS_NAMES.iter().map(|c| folder(c)).collect();
    let options = ImageFolderOptions::new()
        .color_mode("grayscale")
        .image_size(28, 28)
        .batch_size(64)
        .class_names(classes.clone())
        .seed(1337);
    let (train, val) =
        image_dataset_from_directory(root.join("train"), &options.clone().validation_split(0.2))?.on(&dev).split()?;
    let test = image_dataset_from_directory(root.join("test"), &options.clone().shuffle(false))?.on(&dev).all()?;
    println!(
        "found {} files belonging to {} classes: {} for training, {} for validation, {} for testing",
        train.source().len() + val.source().len(),
        train.source().class_names().len(),
        train.source().len(),
        val.source().len(),
        test.source().len()
    );

    let mut model = Sequential::new()
        .add(Input::new([28, 28, 1]))
        .add(Rescaling::new(1.0 / 255.0))
        .add(Conv2D::new(16, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dense::new(10).activation("softmax"))
        .seed(7)
        .build_on(&dev)?;
    model.compile(Adam::new(2e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
    let started = Instant::now();
    model.fit_dataset(&train, FitOptions::default().epochs(epochs).validation_dataset(&val).workers(2).verbose(2))?;
    let per_epoch = started.elapsed().as_secs_f64() / epochs as f64;
    let logs = model.evaluate_dataset(&test, EvaluateOptions::default().verbose(0))?;
    let accuracy = logs.value("accuracy")?;
    println!("{:.1}s per epoch (decoding included)", per_epoch);

    // A corrupt file is an error naming it, not a panic.
    let broken = root.join("test").join(&classes[0]).join("00000-broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\n truncated")?;
    let test = image_dataset_from_directory(root.join("test"), &options.shuffle(false))?.on(&dev).all()?;
    let error = model.evaluate_dataset(&test, EvaluateOptions::default().verbose(0)).unwrap_err();
    println!("a corrupt file: {error}");
    std::fs::remove_dir_all(&root)?;

    println!("backend {}: test accuracy {:.2}% on {n_test} PNG files", dev.name(), 100.0 * accuracy);
    ensure!(accuracy >= 0.75, "test accuracy {accuracy:.4} is below 75%");
    Ok(())
}
