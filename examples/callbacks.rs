//! Early stopping, checkpoints and a CSV log on the digits that ship with
//! strata: `fit` is asked for 200 epochs and stops once the validation loss
//! has not improved for 5; `ModelCheckpoint` saves the model each time the
//! validation loss improves; `CsvLogger` writes one row per epoch.
//!
//! The example then checks what the callbacks left behind: training
//! stopped early, the CSV has a header and one row per epoch matching the
//! returned `History`, the last checkpoint is the best epoch's, and it holds
//! the weights `restore_best_weights` put back. The files go to a fresh
//! temporary folder, removed at the end.
//!
//! ```text
//! cargo run --release --example callbacks
//! STRATA_BACKEND=candle cargo run --release --example callbacks
//! ```

use std::path::{Path, PathBuf};

use strata::datasets::digits;
use strata::prelude::*;

const MAX_EPOCHS: usize = 200;

/// A fresh folder under the system's temporary folder, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> std::io::Result<TempDir> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!("strata_callbacks_{}_{nanos}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(TempDir(dir))
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let data = digits::load_scaled()?.train_test_split(0.25, 0)?.to_device(&dev)?;
    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(0)
        .build_on(&dev)?;
    model.compile(Adam::new(1e-2), "sparse_categorical_crossentropy", &["accuracy"])?;

    let dir = TempDir::new()?;
    let template = dir.path().join("ckpt-{epoch:03d}.safetensors");
    let csv_path = dir.path().join("log.csv");
    let mut stop = EarlyStopping::new("val_loss").patience(5).restore_best_weights(true);
    let mut checkpoint = ModelCheckpoint::new(template.to_string_lossy()).monitor("val_loss").save_best_only(true);
    let options = FitOptions::default()
        .epochs(MAX_EPOCHS)
        .validation_split(0.2)
        .verbose(0)
        .callback(&mut stop)
        .callback(&mut checkpoint)
        .callback(CsvLogger::new(&csv_path));
    let history = model.fit(&data.train.x, &data.train.y, options)?;

    // Early stopping: stopped before MAX_EPOCHS, at the best epoch + patience.
    let stopped = stop.stopped_epoch().ok_or_else(|| anyhow::anyhow!("training ran all {MAX_EPOCHS} epochs"))?;
    let best = stop.best_epoch().ok_or_else(|| anyhow::anyhow!("no best epoch"))?;
    let val_loss = history.get("val_loss").ok_or_else(|| anyhow::anyhow!("no val_loss in the history"))?;
    println!(
        "{}: stopped after epoch {} of {MAX_EPOCHS}; best val_loss {:.4} at epoch {}",
        dev.name(),
        stopped + 1,
        stop.best(),
        best + 1
    );
    anyhow::ensure!(history.len() == stopped + 1, "{} epochs in the history, stopped at {}", history.len(), stopped);
    anyhow::ensure!(stopped == best + 5, "stopped at epoch {stopped}, 5 after the best should be {}", best + 5);
    anyhow::ensure!(val_loss.iter().all(|&v| v >= stop.best()), "an epoch beat the best val_loss");

    // The CSV log: a header and one row per epoch, with the History's values.
    let csv = std::fs::read_to_string(&csv_path)?;
    let mut lines = csv.lines();
    let header = lines.next().unwrap_or_default();
    anyhow::ensure!(header == "epoch,accuracy,loss,val_accuracy,val_loss", "CSV header: {header}");
    let rows: Vec<Vec<f64>> =
        lines.map(|l| l.split(',').map(str::parse).collect::<Result<_, _>>()).collect::<Result<_, _>>()?;
    anyhow::ensure!(rows.len() == history.len(), "{} CSV rows for {} epochs", rows.len(), history.len());
    for (epoch, row) in rows.iter().enumerate() {
        anyhow::ensure!(row[0] == epoch as f64 && row[4] == val_loss[epoch], "CSV row {epoch} is {row:?}");
    }
    println!("{}: {} rows, e.g. {}", csv_path.display(), rows.len(), csv.lines().nth(1).unwrap_or_default());

    // The checkpoints: one per improvement, the last one the best epoch's,
    // with the weights that restore_best_weights put back.
    let saved = checkpoint.saved_paths();
    let last = saved.last().ok_or_else(|| anyhow::anyhow!("no checkpoint was saved"))?;
    anyhow::ensure!(saved.iter().all(|p| p.is_file()), "a checkpoint file is missing");
    let expected = dir.path().join(format!("ckpt-{:03}.safetensors", best + 1));
    anyhow::ensure!(*last == expected, "last checkpoint {} (expected {})", last.display(), expected.display());
    println!("{} checkpoints, the last: {}", saved.len(), last.display());
    let restored = strata::load_model_on(last, &dev)?;
    for (a, b) in restored.weights().iter().zip(model.weights()) {
        anyhow::ensure!(a.value.to_vec::<f32>()? == b.value.to_vec::<f32>()?, "{} differs from the checkpoint", a.name);
    }

    let acc = restored.evaluate_with(&data.test.x, &data.test.y, EvaluateOptions::default().verbose(0))?["accuracy"];
    println!("test accuracy of the best checkpoint: {acc:.4}");
    anyhow::ensure!(acc >= 0.95, "test accuracy {acc:.4} is below 95%");
    Ok(())
}
