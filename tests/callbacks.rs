//! Every built-in callback, each with a test that shows its effect.

use std::cell::RefCell;

use anyhow::Result;
use strata::callbacks::{
    CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
};
use strata::optimizers::SGD;
use strata::prelude::*;
use strata::WeightSnapshot;

/// `y = x·[1, -2, 0.5] + 0.3` with 64 samples, and a linear model for it.
fn regression(dev: &Device) -> Result<(Model, Tensor, Tensor)> {
    let mut rng = Rng::seed(7);
    let x = Tensor::rand_normal([64, 3], 0.0, 1.0, &mut rng, dev)?;
    let w = Tensor::new(vec![1.0f32, -2.0, 0.5], [3, 1], dev)?;
    let y = x.matmul(&w)?.add_scalar(0.3)?;
    let model = Sequential::new().add(Input::new([3])).add(Dense::new(1)).seed(3).build_on(dev)?;
    Ok((model, x, y))
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(0).batch_size(16)
}

fn same(a: &WeightSnapshot, b: &WeightSnapshot) -> Result<bool> {
    for ((na, ta), (nb, tb)) in a.values().iter().zip(b.values()) {
        if na != nb || ta.to_vec::<f32>()? != tb.to_vec::<f32>()? {
            return Ok(false);
        }
    }
    Ok(true)
}

fn tmp(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-callbacks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn early_stopping_stops_and_restores_the_best_weights() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.05), "mse", ())?;
    // Three good epochs, then a learning rate that makes training diverge.
    let snapshots = RefCell::new(Vec::new());
    let diverge = LearningRateScheduler::new(|epoch, _| if epoch < 3 { 0.05 } else { 3.0 });
    let record = LambdaCallback::new().on_epoch_end(|_, _, ctx| {
        snapshots.borrow_mut().push(ctx.model().snapshot_weights().unwrap());
    });
    let mut stop = EarlyStopping::new("loss").patience(2).restore_best_weights(true);
    let history = model.fit(&x, &y, quiet().epochs(50).callback(diverge).callback(record).callback(&mut stop))?;
    let loss = history.get("loss").unwrap();
    let best = (0..loss.len()).min_by(|&a, &b| loss[a].total_cmp(&loss[b])).unwrap();
    assert_eq!(best, 2, "losses {loss:?}");
    // Stopped `patience` epochs after the best one, long before 50.
    assert_eq!(stop.stopped_epoch(), Some(4));
    assert_eq!(history.len(), 5);
    assert_eq!(stop.best_epoch(), Some(2));
    // The weights are those at the end of the best epoch, not the last.
    let now = model.snapshot_weights()?;
    let snaps = snapshots.borrow();
    assert!(same(&now, &snaps[2])?);
    assert!(!same(&now, &snaps[4])?);
    Ok(())
}

#[test]
fn early_stopping_on_a_metric_that_is_not_logged_is_an_error() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile("sgd", "mse", ())?;
    let err = model.fit(&x, &y, quiet().epochs(2).callback(EarlyStopping::new("val_loss"))).unwrap_err().to_string();
    assert!(err.contains("val_loss") && err.contains("[loss]") && err.contains("validation"), "{err}");
    Ok(())
}

#[test]
fn reduce_lr_on_plateau_lowers_the_rate() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.1), "mse", ())?;
    // A huge min_delta: no epoch after the first counts as an improvement.
    let reduce = ReduceLROnPlateau::new("loss").factor(0.5).patience(1).min_delta(1e9);
    let history = model.fit(&x, &y, quiet().epochs(4).callback(reduce))?;
    // Logged before each epoch's reduction, as Keras does.
    assert_eq!(history.get("learning_rate").unwrap(), &[0.1, 0.1, 0.05, 0.025]);
    assert!((model.learning_rate().unwrap() - 0.0125).abs() < 1e-12);
    // min_lr is a floor.
    model.compile(SGD::new(0.1), "mse", ())?;
    let reduce = ReduceLROnPlateau::new("loss").factor(0.1).patience(1).min_delta(1e9).min_lr(0.005);
    model.fit(&x, &y, quiet().epochs(5).callback(reduce))?;
    assert!((model.learning_rate().unwrap() - 0.005).abs() < 1e-12);
    // factor must be below 1.
    let err = model.fit(&x, &y, quiet().callback(ReduceLROnPlateau::new("loss").factor(2.0))).unwrap_err();
    assert!(err.to_string().contains("factor"), "{err}");
    Ok(())
}

#[test]
fn learning_rate_scheduler_sets_the_rate_each_epoch() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.1), "mse", ())?;
    let schedule = LearningRateScheduler::new(|epoch, lr| if epoch == 0 { lr } else { lr / 2.0 });
    let history = model.fit(&x, &y, quiet().epochs(3).callback(schedule))?;
    assert_eq!(history.get("learning_rate").unwrap(), &[0.1, 0.05, 0.025]);
    let bad = LearningRateScheduler::new(|_, _| f64::NAN);
    assert!(model.fit(&x, &y, quiet().callback(bad)).unwrap_err().to_string().contains("NaN"));
    Ok(())
}

#[test]
fn csv_logger_writes_a_row_per_epoch_and_appends() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.05), "mse", &["mae"])?;
    let path = tmp("log.csv");
    let history = model.fit(&x, &y, quiet().epochs(3).validation_split(0.25).callback(CsvLogger::new(&path)))?;
    let text = std::fs::read_to_string(&path)?;
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,loss,mae,val_loss,val_mae");
    assert_eq!(lines.len(), 4);
    for (epoch, line) in lines[1..].iter().enumerate() {
        let cells: Vec<f64> = line.split(',').map(|c| c.parse().unwrap()).collect();
        assert_eq!(cells[0], epoch as f64);
        assert_eq!(cells[1], history.get("loss").unwrap()[epoch]);
        assert_eq!(cells[4], history.get("val_mae").unwrap()[epoch]);
    }
    // Resuming appends rows under the same header.
    model.fit(
        &x,
        &y,
        quiet().epochs(5).initial_epoch(3).validation_split(0.25).callback(CsvLogger::new(&path).append(true)),
    )?;
    let text = std::fs::read_to_string(&path)?;
    let epochs: Vec<&str> = text.lines().skip(1).map(|l| l.split(',').next().unwrap()).collect();
    assert_eq!(epochs, ["0", "1", "2", "3", "4"]);
    assert_eq!(text.lines().filter(|l| l.starts_with("epoch")).count(), 1);
    Ok(())
}

#[test]
fn terminate_on_nan_stops_at_the_first_bad_batch() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    let y = y.mul_scalar(1e18)?;
    // Without the callback, all epochs run (on NaN).
    model.compile(SGD::new(1e10), "mse", ())?;
    let history = model.fit(&x, &y, quiet().epochs(3))?;
    assert_eq!(history.len(), 3);
    assert!(history.last("loss").unwrap().is_nan() || history.last("loss").unwrap().is_infinite());
    let (mut model, x, _) = regression(&dev)?;
    model.compile(SGD::new(1e10), "mse", ())?;
    let mut stop = TerminateOnNaN::new();
    let history = model.fit(&x, &y, quiet().epochs(3).callback(&mut stop))?;
    assert_eq!(history.len(), 1);
    let batch = stop.terminated_at().expect("stopped");
    assert!(batch < 4, "stopped at batch {batch}");
    Ok(())
}

#[test]
fn model_checkpoint_saves_only_improvements_and_the_files_load() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.05), "mse", ())?;
    let template = tmp("ckpt-{epoch:02d}-{loss:.4f}.safetensors").to_string_lossy().into_owned();
    let diverge = LearningRateScheduler::new(|epoch, _| if epoch < 2 { 0.05 } else { 3.0 });
    let snapshots = RefCell::new(Vec::new());
    let record = LambdaCallback::new().on_epoch_end(|_, _, ctx| {
        snapshots.borrow_mut().push(ctx.model().snapshot_weights().unwrap());
    });
    let mut ckpt = ModelCheckpoint::new(template).monitor("loss").save_best_only(true).save_weights_only(true);
    let history = model.fit(&x, &y, quiet().epochs(4).callback(diverge).callback(&mut ckpt).callback(record))?;
    let loss = history.get("loss").unwrap();
    assert!(loss[1] < loss[0] && loss[2] > loss[1], "{loss:?}");
    // Saved after epochs 1 and 2 (1-based), not after the worse ones.
    let saved = ckpt.saved_paths().to_vec();
    assert_eq!(saved.len(), 2, "{saved:?}");
    let name = saved[1].file_name().unwrap().to_string_lossy().into_owned();
    assert_eq!(name, format!("ckpt-02-{:.4}.safetensors", loss[1]));
    let fresh = Sequential::new().add(Input::new([3])).add(Dense::new(1)).seed(99).build_on(&dev)?;
    fresh.load_weights(&saved[1])?;
    assert!(same(&fresh.snapshot_weights()?, &snapshots.borrow()[1])?);

    // Whole-model checkpoints carry the architecture and compile config.
    let path = tmp("whole.safetensors");
    let mut whole = ModelCheckpoint::new(path.to_string_lossy()).monitor("loss");
    model.compile(SGD::new(0.01), "mse", ())?;
    model.fit(&x, &y, quiet().callback(&mut whole))?;
    let bytes = std::fs::read(&path)?;
    let n = u64::from_le_bytes(bytes[..8].try_into()?) as usize;
    let header: serde_json::Value = serde_json::from_slice(&bytes[8..8 + n])?;
    let meta = &header["__metadata__"];
    assert_eq!(meta["format"], "strata");
    assert!(meta["model_config"].as_str().unwrap().contains("\"Dense\""));
    assert!(meta["compile_config"].as_str().unwrap().contains("mean_squared_error"));
    Ok(())
}

#[test]
fn lambda_callback_sees_every_hook_and_can_stop() -> Result<()> {
    let dev = backend::native();
    let (mut model, x, y) = regression(&dev)?;
    model.compile(SGD::new(0.05), "mse", ())?;
    let events = RefCell::new(Vec::<String>::new());
    let cb = LambdaCallback::new()
        .on_train_begin(|_| events.borrow_mut().push("train_begin".into()))
        .on_epoch_begin(|e, _| events.borrow_mut().push(format!("epoch_begin {e}")))
        .on_train_batch_begin(|b, _| events.borrow_mut().push(format!("batch_begin {b}")))
        .on_train_batch_end(|b, logs, _| {
            events.borrow_mut().push(format!("batch_end {b} {}", logs.contains_key("loss")))
        })
        .on_epoch_end(|e, _, ctx| {
            events.borrow_mut().push(format!("epoch_end {e}"));
            if e == 1 {
                ctx.stop_training();
            }
        })
        .on_train_end(|_, _| events.borrow_mut().push("train_end".into()));
    // 64 samples, batch 32: two batches per epoch.
    let history = model.fit(&x, &y, quiet().epochs(10).batch_size(32).callback(cb))?;
    assert_eq!(history.len(), 2);
    let want = [
        "train_begin",
        "epoch_begin 0",
        "batch_begin 0",
        "batch_end 0 true",
        "batch_begin 1",
        "batch_end 1 true",
        "epoch_end 0",
        "epoch_begin 1",
        "batch_begin 0",
        "batch_end 0 true",
        "batch_begin 1",
        "batch_end 1 true",
        "epoch_end 1",
        "train_end",
    ];
    assert_eq!(*events.borrow(), want);
    Ok(())
}
