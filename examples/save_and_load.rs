//! Save a model mid-training, load it back and resume: the resumed run ends
//! with the same weights as an uninterrupted one.
//!
//! ```text
//! cargo run --release --example save_and_load
//! STRATA_BACKEND=native cargo run --release --example save_and_load
//! ```

use strata::prelude::*;

fn build(dev: &Device) -> Result<Model> {
    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(32).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(0)
        .build_on(dev)?;
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let split = strata::datasets::digits::load_scaled()?.train_test_split(0.25, 0)?.to_device(&dev)?;
    let ((x, y), (x_test, y_test)) = split.into_xy();
    let fit = |m: &mut Model, epochs| m.fit(&x, &y, FitOptions::default().epochs(epochs).shuffle(false).verbose(0));

    let mut straight = build(&dev)?;
    fit(&mut straight, 4)?;

    let mut model = build(&dev)?;
    fit(&mut model, 2)?;
    let path = std::env::temp_dir().join("strata_save_and_load.safetensors");
    model.save(&path)?;
    println!("saved {} ({} bytes) on {}", path.display(), std::fs::metadata(&path)?.len(), dev.name());

    let mut resumed = strata::load_model_on(&path, &dev)?;
    fit(&mut resumed, 2)?;
    std::fs::remove_file(&path).ok();

    let mut worst = 0f32;
    for (a, b) in resumed.weights().iter().zip(straight.weights()) {
        for (p, q) in a.value.to_vec::<f32>()?.iter().zip(b.value.to_vec::<f32>()?) {
            worst = worst.max((p - q).abs());
        }
    }
    let report = resumed.evaluate_with(&x_test, &y_test, EvaluateOptions::default().verbose(0))?;
    let accuracy = report["accuracy"];
    println!("2 + 2 epochs vs 4 in one go: largest weight difference {worst:e}; test accuracy {accuracy:.4}");
    anyhow::ensure!(worst <= 1e-5, "the resumed run drifted by {worst}");
    Ok(())
}
