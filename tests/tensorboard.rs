//! The TensorBoard callback's files, read back by TensorBoard itself when
//! `STRATA_TENSORBOARD_PYTHON` names a Python with the `tensorboard`
//! package (`.ci/run` sets it): every scalar with its exact step and value,
//! every histogram's count, range and sum, the summary text, and every
//! record's checksum accepted (`tests/fixtures/tensorboard/check_events.py`).
#![cfg(feature = "tensorboard")]

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};
use strata::callbacks::{LambdaCallback, TensorBoard, UpdateFreq};
use strata::prelude::*;

fn log_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-tensorboard-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn event_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<std::io::Result<_>>()?;
    files.sort();
    Ok(files)
}

/// What a run is expected to hold, as `check_events.py` reads it.
#[derive(Default)]
struct Expected {
    scalars: BTreeMap<String, Vec<(i64, f64)>>,
    histograms: BTreeMap<String, Vec<Value>>,
    text: Vec<String>,
}

impl Expected {
    fn scalar(&mut self, tag: String, step: i64, value: f64) {
        self.scalars.entry(tag).or_default().push((step, value));
    }
    fn json(&self) -> Value {
        json!({ "scalars": self.scalars, "histograms": self.histograms, "text": self.text })
    }
}

/// Trains a small regression model for 3 epochs of 4 batches with
/// validation data, weight histograms every epoch and batch scalars every
/// 2 batches; returns what the logs must hold.
fn train_with_tensorboard(dir: &Path) -> Result<(Expected, Expected)> {
    let dev = strata::backend::native();
    let mut rng = Rng::seed(11);
    let x = Tensor::rand_normal([64, 3], 0.0, 1.0, &mut rng, &dev)?;
    let y = x.matmul(&Tensor::new(vec![1.0f32, -2.0, 0.5], [3, 1], &dev)?)?.add_scalar(0.3)?;
    let (xv, yv) = (x.narrow(0, 0, 16)?, y.narrow(0, 0, 16)?);
    let mut model = Sequential::new()
        .add(Input::new([3]))
        .add(Dense::new(4).activation("tanh"))
        .add(Dense::new(1))
        .seed(5)
        .build_on(&dev)?;
    model.compile(SGD::new(0.05), "mse", &["mae"])?;
    let batch_logs = RefCell::new(Vec::new());
    let weights_at_epoch_end = RefCell::new(Vec::new());
    let mut tb = TensorBoard::new(dir).histogram_freq(1).update_freq(UpdateFreq::Batches(2));
    let history = model.fit(
        &x,
        &y,
        FitOptions::default().epochs(3).batch_size(16).verbose(0).validation_data(&xv, &yv).callback(&mut tb).callback(
            LambdaCallback::new()
                .on_train_batch_end(|_, logs, _| batch_logs.borrow_mut().push(logs.clone()))
                .on_epoch_end(|_, _, ctx| {
                    let w: Vec<(String, Vec<f32>)> =
                        ctx.model().weights().iter().map(|w| (w.name.clone(), w.value.to_vec().unwrap())).collect();
                    weights_at_epoch_end.borrow_mut().push(w);
                }),
        ),
    )?;
    let mut train = Expected { text: vec!["model_summary".into()], ..Default::default() };
    let mut validation = Expected::default();
    for (epoch, _) in history.epochs().iter().enumerate() {
        for key in history.keys() {
            let v = history.get(key).unwrap()[epoch];
            match key.strip_prefix("val_") {
                Some(name) => {
                    validation.scalar(format!("epoch_{name}"), epoch as i64, v);
                    validation.scalar(format!("evaluation_{name}_vs_iterations"), 4 * (epoch as i64 + 1), v);
                }
                None => train.scalar(format!("epoch_{key}"), epoch as i64, v),
            }
        }
        train.scalar("epoch_learning_rate".into(), epoch as i64, 0.05);
        for (name, values) in &weights_at_epoch_end.borrow()[epoch] {
            let v: Vec<f64> = values.iter().map(|&v| f64::from(v)).collect();
            let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
            let point = json!([epoch, v.len() as f64, lo, hi, v.iter().sum::<f64>()]);
            train.histograms.entry(format!("{name}/histogram")).or_default().push(point);
        }
    }
    for (i, logs) in batch_logs.borrow().iter().enumerate() {
        let global = i as i64 + 1;
        if global % 2 == 0 {
            for (k, v) in logs.iter() {
                train.scalar(format!("batch_{k}"), global, v);
            }
        }
    }
    Ok((train, validation))
}

#[test]
fn tensorboard_writes_keras_layout_and_tensorboard_reads_every_value() -> Result<()> {
    let dir = log_dir("fit");
    let (train, validation) = train_with_tensorboard(&dir)?;
    for run in ["train", "validation"] {
        let files = event_files(&dir.join(run))?;
        ensure!(files.len() == 1, "{run}: {files:?}");
        let name = files[0].file_name().unwrap().to_string_lossy().to_string();
        ensure!(name.starts_with("events.out.tfevents.") && name.ends_with(".v2"), "file name {name}");
        ensure!(name.contains(&format!(".{}.", std::process::id())), "the pid is in the name: {name}");
    }
    // 3 epochs x (loss, mae, learning_rate) + batches 2, 4, ..., 12 x (loss, mae).
    ensure!(train.scalars.values().map(Vec::len).sum::<usize>() == 9 + 12, "{:?}", train.scalars.keys());
    ensure!(train.histograms.len() == 4, "{:?}", train.histograms.keys());
    let Ok(python) = std::env::var("STRATA_TENSORBOARD_PYTHON") else {
        eprintln!("STRATA_TENSORBOARD_PYTHON is not set: TensorBoard's reader is not run on the files");
        return Ok(());
    };
    let expected = dir.join("expected.json");
    std::fs::write(&expected, json!({ "train": train.json(), "validation": validation.json() }).to_string())?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/tensorboard/check_events.py");
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg(&dir)
        .arg(&expected)
        .output()
        .with_context(|| format!("running {python}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    println!("{stdout}");
    ensure!(out.status.success(), "TensorBoard's reader failed:\n{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    ensure!(stdout.contains("OK:"), "{stdout}");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

#[test]
fn a_log_dir_that_cannot_be_created_is_an_error_naming_it() -> Result<()> {
    let blocker = log_dir("blocked");
    std::fs::write(&blocker, b"a file where the log directory should be")?;
    let dev = strata::backend::native();
    let x = Tensor::new(vec![0.0f32, 1.0], [2, 1], &dev)?;
    let mut model = Sequential::new().add(Input::new([1])).add(Dense::new(1)).build_on(&dev)?;
    model.compile(SGD::new(0.1), "mse", &[])?;
    let err = model
        .fit(&x, &x, FitOptions::default().epochs(1).verbose(0).callback(TensorBoard::new(&blocker)))
        .unwrap_err()
        .to_string();
    ensure!(err.contains(&blocker.join("train").display().to_string()) || err.contains(&blocker.display().to_string()));
    std::fs::remove_file(&blocker)?;
    let err = model
        .fit(
            &x,
            &x,
            FitOptions::default()
                .epochs(1)
                .verbose(0)
                .callback(TensorBoard::new(log_dir("zero")).update_freq(UpdateFreq::Batches(0))),
        )
        .unwrap_err()
        .to_string();
    ensure!(err.contains("update_freq") && err.contains("received 0"), "{err}");
    Ok(())
}
