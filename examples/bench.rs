//! The performance harness: the Keras MNIST MLP benchmark
//! (`shared/bench/keras_mlp.py`: 784-256-128-10, Adam 1e-3, sparse
//! categorical cross-entropy, batch 128, 3 epochs, shuffled, no metrics)
//! trained by strata on each backend, by a hand-written candle loop of the
//! same model, and — when given a Python with Keras — by Keras itself, side
//! by side in one run. Also an `Embedding(mask_zero) → GlobalAveragePooling1D
//! → Dense` model on padded sequences, and the `convnet` case: keras.io's
//! "Simple MNIST convnet" (`shared/bench/keras_bench.py convnet`: Conv2D 32
//! → MaxPooling2D → Conv2D 64 → MaxPooling2D → Flatten → Dropout 0.5 →
//! Dense 10, Adam, batch 128, no metrics), 2 epochs on the first
//! `BENCH_SAMPLES` (default 12000) training images, Keras given the same,
//! and the `lstm` case (`keras_bench.py lstm`: the 28 rows of each image
//! as 28 timesteps → LSTM(128) → Dense 10, on the same images and epochs;
//! `gru` the same with GRU(128), without a Keras counterpart).
//!
//! ```text
//! cargo run --release --example bench                          # every case, 1 round
//! cargo run --release --example bench -- --rounds 3 --keras ../keras-venv/bin/python
//! cargo run --release --example bench -- --cases mlp --backends native
//! cargo run --release --example bench -- --cases convnet --rounds 3 --keras ../keras-venv/bin/python
//! cargo run --release --example bench -- --cases lstm --rounds 3 --keras ../keras-venv/bin/python
//! ```
//!
//! Each case runs in a fresh child process (so its peak RSS and allocator
//! state are its own) and prints one JSON line: steady-state train
//! samples/s (the mean over epochs 2..), the first epoch's seconds, the time
//! from data loaded (and from process start) to the first finished training
//! step, predict samples/s (batch 1024, median of 5 calls over the test
//! set), test accuracy and peak RSS. With several rounds the cases are
//! interleaved and a final `summary` line gives medians and the ratios to
//! Keras and to the candle loop. Threads: `BENCH_THREADS` (default 2) sets
//! `RAYON_NUM_THREADS` for the children, as the Keras script does for XLA.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{bail, Context};
use serde_json::{json, Value};
use strata::callbacks::{Callback, CallbackContext};
use strata::datasets::mnist;
use strata::optimizers::Adam;
use strata::prelude::*;

static START: OnceLock<Instant> = OnceLock::new();

const EPOCHS: usize = 3;
const BATCH: usize = 128;
const PREDICT_BATCH: usize = 1024;
const PREDICT_REPS: usize = 5;

fn main() -> anyhow::Result<()> {
    START.get_or_init(Instant::now);
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("--child") {
        let case = args.get(1).context("--child CASE BACKEND DATA")?;
        let backend = args.get(2).context("--child CASE BACKEND DATA")?;
        let data = args.get(3).context("--child CASE BACKEND DATA")?;
        let line = child(case, backend, data)?;
        println!("{line}");
        return Ok(());
    }
    parent(&args)
}

/// Peak resident set size of this process in MB (Linux; `null` elsewhere).
fn peak_rss_mb() -> Value {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map(|kb| json!((kb / 1024.0 * 10.0).round() / 10.0))
        .unwrap_or(Value::Null)
}

fn since_start_ms() -> f64 {
    START.get().map(|s| s.elapsed().as_secs_f64() * 1e3).unwrap_or(f64::NAN)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    if v.is_empty() {
        f64::NAN
    } else {
        v[v.len() / 2]
    }
}

fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

/// Times what the Keras script times: each epoch, and the first step.
struct Timer {
    loaded: Instant,
    epoch_start: Instant,
    epochs: Vec<f64>,
    first_step_ms: Option<(f64, f64)>,
    losses: Vec<f64>,
}

impl Timer {
    fn new(loaded: Instant) -> Self {
        Timer { loaded, epoch_start: Instant::now(), epochs: vec![], first_step_ms: None, losses: vec![] }
    }

    /// The JSON fields shared by every training case.
    fn report(&self, n: usize) -> Value {
        let rates: Vec<f64> = self.epochs.iter().map(|t| n as f64 / t).collect();
        let steady = if rates.len() > 1 { rates[1..].iter().sum::<f64>() / (rates.len() - 1) as f64 } else { rates[0] };
        let (after_load, after_start) = self.first_step_ms.unwrap_or((f64::NAN, f64::NAN));
        json!({
            "train_samples_per_s_steady": round1(steady),
            "train_samples_per_s_per_epoch": rates.iter().map(|r| round1(*r)).collect::<Vec<_>>(),
            "first_epoch_seconds": (self.epochs[0] * 1e3).round() / 1e3,
            "first_step_ms_after_load": (after_load * 100.0).round() / 100.0,
            "first_step_ms_after_start": round1(after_start),
            "final_train_loss": (self.losses.last().copied().unwrap_or(f64::NAN) * 1e4).round() / 1e4,
        })
    }

    fn begin_epoch(&mut self) {
        self.epoch_start = Instant::now();
    }

    fn end_step(&mut self) {
        if self.first_step_ms.is_none() {
            self.first_step_ms = Some((self.loaded.elapsed().as_secs_f64() * 1e3, since_start_ms()));
        }
    }

    fn end_epoch(&mut self, loss: f64) {
        self.epochs.push(self.epoch_start.elapsed().as_secs_f64());
        self.losses.push(loss);
    }
}

impl Callback for Timer {
    fn on_epoch_begin(&mut self, _epoch: usize, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.begin_epoch();
        Ok(())
    }

    fn on_train_batch_end(&mut self, _batch: usize, _logs: &Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.end_step();
        Ok(())
    }

    fn on_epoch_end(&mut self, _epoch: usize, logs: &mut Logs, _ctx: &mut CallbackContext<'_>) -> Result<()> {
        self.end_epoch(logs.get("loss").unwrap_or(f64::NAN));
        Ok(())
    }
}

/// Median samples/s of `PREDICT_REPS` calls of `f` over `n` samples (after one warm-up call).
fn predict_rate(n: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut rates = Vec::new();
    for _ in 0..PREDICT_REPS {
        let t = Instant::now();
        f()?;
        rates.push(n as f64 / t.elapsed().as_secs_f64());
    }
    Ok(median(rates))
}

fn child(case: &str, backend_name: &str, data_dir: &str) -> anyhow::Result<String> {
    let mut out = match case {
        "mlp" => mlp(backend_name, data_dir)?,
        "candle_loop" => candle_loop(data_dir)?,
        "embedding" => embedding(backend_name)?,
        "convnet" => convnet(backend_name, data_dir)?,
        "candle_convnet_loop" => candle_convnet_loop(data_dir)?,
        "lstm" => lstm(backend_name, data_dir)?,
        "gru" => gru(backend_name, data_dir)?,
        other => {
            bail!("unknown case `{other}`; valid: mlp, candle_loop, embedding, convnet, candle_convnet_loop, lstm, gru")
        }
    };
    out["case"] = json!(case);
    out["threads"] = json!(rayon_threads());
    out["peak_rss_mb"] = peak_rss_mb();
    Ok(out.to_string())
}

fn rayon_threads() -> usize {
    std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse().ok()).unwrap_or(0)
}

fn mlp(backend_name: &str, data_dir: &str) -> anyhow::Result<Value> {
    let dev = backend::by_name(backend_name)?;
    let data = mnist::load_from(data_dir)?.flatten()?.to_device(&dev)?;
    let loaded = Instant::now();
    let mut model = Sequential::new()
        .add(Input::new([784]))
        .add(Dense::new(256).activation("relu"))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(0)
        .build_on(&dev)?;
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ())?;
    let (mut out, probs) = train_and_predict(&mut model, &data.train.x, &data.train.y, &data.test.x, loaded)?;
    out["test_accuracy"] = json!(accuracy(&probs.argmax(-1, false)?.to_vec::<i64>()?, &data.test.y.to_vec::<i64>()?));
    Ok(out)
}

/// Trains `model` (compiled) for the benchmark's epochs with a [`Timer`]
/// counting from `loaded`, then predicts `x_test`: the timer's report with
/// the backend and the predict rate added, and the predictions.
fn train_and_predict(
    model: &mut Model,
    x: &Tensor,
    y: &Tensor,
    x_test: &Tensor,
    loaded: Instant,
) -> anyhow::Result<(Value, Tensor)> {
    train_and_predict_for(model, x, y, x_test, loaded, EPOCHS)
}

/// [`train_and_predict`] for `epochs` epochs.
fn train_and_predict_for(
    model: &mut Model,
    x: &Tensor,
    y: &Tensor,
    x_test: &Tensor,
    loaded: Instant,
    epochs: usize,
) -> anyhow::Result<(Value, Tensor)> {
    let mut timer = Timer::new(loaded);
    model.fit(x, y, FitOptions::default().epochs(epochs).batch_size(BATCH).verbose(0).callback(&mut timer))?;
    let opts = PredictOptions::default().batch_size(PREDICT_BATCH);
    let predictions = model.predict_with(x_test, opts.clone())?;
    let rate = predict_rate(x_test.dims()[0], || {
        model.predict_with(x_test, opts.clone())?;
        Ok(())
    })?;
    let mut out = timer.report(x.dims()[0]);
    out["backend"] = json!(model.device().name());
    out["predict_samples_per_s"] = json!(round1(rate));
    Ok((out, predictions))
}

/// Training images the convnet case uses (`BENCH_SAMPLES`, as the Keras script reads it).
fn convnet_samples() -> usize {
    std::env::var("BENCH_SAMPLES").ok().and_then(|v| v.parse().ok()).unwrap_or(CONVNET_SAMPLES)
}

const CONVNET_SAMPLES: usize = 12_000;
const CONVNET_EPOCHS: usize = 2;

fn convnet(backend_name: &str, data_dir: &str) -> anyhow::Result<Value> {
    mnist_case(backend_name, data_dir, &[28, 28, 1], |model| {
        model
            .add(Conv2D::new(32, 3).activation("relu"))
            .add(MaxPooling2D::new(2))
            .add(Conv2D::new(64, 3).activation("relu"))
            .add(MaxPooling2D::new(2))
            .add(Flatten::new())
            .add(Dropout::new(0.5))
            .add(Dense::new(10).activation("softmax"))
    })
}

/// Trains the layers `add` puts after `Input::new(image)` (Adam 1e-3,
/// sparse categorical cross-entropy, seed 0) on the first
/// [`convnet_samples`] MNIST training images reshaped to `image`, for the
/// convnet case's epochs, then predicts the test images: the report with
/// the test accuracy.
fn mnist_case(
    backend_name: &str,
    data_dir: &str,
    image: &[usize],
    add: impl FnOnce(Sequential) -> Sequential,
) -> anyhow::Result<Value> {
    let dev = backend::by_name(backend_name)?;
    let data = mnist::load_from(data_dir)?.to_device(&dev)?;
    let n = convnet_samples().min(data.train.len());
    let shaped = |rows: usize| [&[rows][..], image].concat();
    let x = data.train.x.narrow(0, 0, n)?.reshape(shaped(n))?;
    let y = data.train.y.narrow(0, 0, n)?;
    let xt = data.test.x.reshape(shaped(data.test.len()))?;
    let loaded = Instant::now();
    let mut model = add(Sequential::new().add(Input::new(image.to_vec()))).seed(0).build_on(&dev)?;
    model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", ())?;
    let (mut out, probs) = train_and_predict_for(&mut model, &x, &y, &xt, loaded, CONVNET_EPOCHS)?;
    out["test_accuracy"] = json!(accuracy(&probs.argmax(-1, false)?.to_vec::<i64>()?, &data.test.y.to_vec::<i64>()?));
    Ok(out)
}

/// `shared/bench/keras_bench.py lstm`: each MNIST image as 28 timesteps of
/// its 28 rows, LSTM(128) → Dense(10, softmax), on the convnet case's
/// training images and epochs.
fn lstm(backend_name: &str, data_dir: &str) -> anyhow::Result<Value> {
    mnist_case(backend_name, data_dir, &[28, 28], |model| {
        model.add(LSTM::new(128)).add(Dense::new(10).activation("softmax"))
    })
}

/// The `lstm` case with GRU(128) in place of the LSTM (no Keras script
/// beside it: `keras_bench.py` has no GRU model).
fn gru(backend_name: &str, data_dir: &str) -> anyhow::Result<Value> {
    mnist_case(backend_name, data_dir, &[28, 28], |model| {
        model.add(GRU::new(128)).add(Dense::new(10).activation("softmax"))
    })
}

fn accuracy(pred: &[i64], truth: &[i64]) -> f64 {
    let hits = pred.iter().zip(truth).filter(|(p, t)| p == t).count();
    (hits as f64 / truth.len() as f64 * 1e4).round() / 1e4
}

/// Padded token sequences whose label is whether the mean real token id is
/// above the vocabulary's middle: 0 is padding, lengths 8..=64.
fn sequences(n: usize, seed: u64, dev: &Device) -> anyhow::Result<(Tensor, Tensor)> {
    const LEN: usize = 64;
    const VOCAB: usize = 1000;
    let mut rng = Rng::seed(seed);
    let mut ids = vec![0i64; n * LEN];
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let len = 8 + (rng.uniform() * (LEN - 7) as f32) as usize % (LEN - 7);
        let mut sum = 0.0;
        for t in 0..len {
            let id = 1 + (rng.uniform() * (VOCAB - 1) as f32) as usize % (VOCAB - 1);
            ids[i * LEN + t] = id as i64;
            sum += id as f64;
        }
        labels.push(f32::from(sum / len as f64 > VOCAB as f64 / 2.0));
    }
    Ok((Tensor::new(ids, [n, LEN], dev)?, Tensor::new(labels, [n, 1], dev)?))
}

fn embedding(backend_name: &str) -> anyhow::Result<Value> {
    let dev = backend::by_name(backend_name)?;
    let (x, y) = sequences(20_000, 0, &dev)?;
    let (xt, yt) = sequences(5_000, 1, &dev)?;
    let loaded = Instant::now();
    let mut model = Sequential::new()
        .add(Input::new([64]).dtype(DType::I64))
        .add(Embedding::new(1000, 32).mask_zero(true))
        .add(GlobalAveragePooling1D::new())
        .add(Dense::new(16).activation("relu"))
        .add(Dense::new(1).activation("sigmoid"))
        .seed(0)
        .build_on(&dev)?;
    model.compile(Adam::new(1e-2), "binary_crossentropy", ())?;
    let (mut out, p) = train_and_predict(&mut model, &x, &y, &xt, loaded)?;
    let above_half = |t: &Tensor| -> anyhow::Result<Vec<i64>> {
        Ok(t.to_vec::<f32>()?.into_iter().map(|v| i64::from(v > 0.5)).collect())
    };
    out["test_accuracy"] = json!(accuracy(&above_half(&p)?, &above_half(&yt)?));
    Ok(out)
}

/// The same MLP written directly against candle (candle-nn's `Linear` and
/// `AdamW` with weight decay 0, which is Adam), as a user of candle would.
#[cfg(feature = "candle")]
fn candle_loop(data_dir: &str) -> anyhow::Result<Value> {
    use candle_core::{DType as CDType, Device as CDevice, Module, Tensor as CTensor};
    use candle_nn::{Optimizer, VarBuilder, VarMap};

    let data = mnist::load_from(data_dir)?.flatten()?;
    let cdev = CDevice::Cpu;
    let to_c = |t: &Tensor| -> anyhow::Result<CTensor> { Ok(CTensor::from_vec(t.to_vec::<f32>()?, t.dims(), &cdev)?) };
    let to_u32 = |t: &Tensor| -> anyhow::Result<CTensor> {
        let v: Vec<u32> = t.to_vec::<i64>()?.into_iter().map(|l| l as u32).collect();
        Ok(CTensor::from_vec(v, t.dims(), &cdev)?)
    };
    let (x, y) = (to_c(&data.train.x)?, to_u32(&data.train.y)?);
    let (xt, yt) = (to_c(&data.test.x)?, data.test.y.to_vec::<i64>()?);
    let loaded = Instant::now();

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, CDType::F32, &cdev);
    let l1 = candle_nn::linear(784, 256, vb.pp("l1"))?;
    let l2 = candle_nn::linear(256, 128, vb.pp("l2"))?;
    let l3 = candle_nn::linear(128, 10, vb.pp("l3"))?;
    let forward = |x: &CTensor| -> candle_core::Result<CTensor> {
        let h = l1.forward(x)?.relu()?;
        let h = l2.forward(&h)?.relu()?;
        l3.forward(&h)
    };
    let params = candle_nn::ParamsAdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), params)?;

    let forward = |x: &CTensor, _train: bool| forward(x);
    candle_fit_and_predict(&x, &y, &xt, &yt, EPOCHS, loaded, &mut opt, forward, "candle-cpu (hand-written loop)")
}

/// Trains with `opt` for `epochs` shuffled epochs of [`BATCH`] (timed from
/// `loaded`), then predicts `xt` at [`PREDICT_BATCH`]: the shared part of
/// the hand-written candle loops. `forward(x, training)` gives the logits.
#[cfg(feature = "candle")]
#[allow(clippy::too_many_arguments)]
fn candle_fit_and_predict(
    x: &candle_core::Tensor,
    y: &candle_core::Tensor,
    xt: &candle_core::Tensor,
    yt: &[i64],
    epochs: usize,
    loaded: Instant,
    opt: &mut candle_nn::AdamW,
    forward: impl Fn(&candle_core::Tensor, bool) -> candle_core::Result<candle_core::Tensor>,
    name: &str,
) -> anyhow::Result<Value> {
    use candle_core::Tensor as CTensor;
    use candle_nn::Optimizer;

    let n = x.dims()[0];
    let mut timer = Timer::new(loaded);
    let mut rng = Rng::seed(0);
    let mut order: Vec<u32> = (0..n as u32).collect();
    for _ in 0..epochs {
        timer.begin_epoch();
        rng.shuffle(&mut order);
        let mut total = 0.0;
        let mut steps = 0;
        for idx in order.chunks(BATCH) {
            let idx = CTensor::from_slice(idx, idx.len(), x.device())?;
            let (xb, yb) = (x.index_select(&idx, 0)?, y.index_select(&idx, 0)?);
            let loss = candle_nn::loss::cross_entropy(&forward(&xb, true)?, &yb)?;
            opt.backward_step(&loss)?;
            total += f64::from(loss.to_scalar::<f32>()?);
            steps += 1;
            timer.end_step();
        }
        timer.end_epoch(total / steps as f64);
    }

    let predict = |x: &CTensor| -> anyhow::Result<Vec<u32>> {
        let mut out = Vec::new();
        let rows = x.dims()[0];
        for start in (0..rows).step_by(PREDICT_BATCH) {
            let xb = x.narrow(0, start, PREDICT_BATCH.min(rows - start))?;
            let probs = candle_nn::ops::softmax_last_dim(&forward(&xb, false)?)?;
            out.extend(probs.argmax(1)?.to_vec1::<u32>()?);
        }
        Ok(out)
    };
    let pred: Vec<i64> = predict(xt)?.into_iter().map(i64::from).collect();
    let acc = accuracy(&pred, yt);
    let rate = predict_rate(yt.len(), || {
        predict(xt)?;
        Ok(())
    })?;
    let mut out = timer.report(n);
    out["backend"] = json!(name);
    out["test_accuracy"] = json!(acc);
    out["predict_samples_per_s"] = json!(round1(rate));
    Ok(out)
}

#[cfg(not(feature = "candle"))]
fn candle_loop(_data_dir: &str) -> anyhow::Result<Value> {
    bail!("the candle_loop case needs the `candle` feature")
}

/// The convnet case's model written directly against candle (candle-nn's
/// `Conv2d` on NCHW images, `max_pool2d`, dropout, `Linear`, `AdamW` with
/// weight decay 0, candle's own autodiff), as a user of candle would: what
/// strata's candle backend is measured against.
#[cfg(feature = "candle")]
fn candle_convnet_loop(data_dir: &str) -> anyhow::Result<Value> {
    use candle_core::{DType as CDType, Device as CDevice, Module, Tensor as CTensor};
    use candle_nn::{Optimizer, VarBuilder, VarMap};

    let data = mnist::load_from(data_dir)?;
    let n = convnet_samples().min(data.train.len());
    let cdev = CDevice::Cpu;
    let to_c = |t: &Tensor, rows: usize| -> anyhow::Result<CTensor> {
        let v = t.narrow(0, 0, rows)?.to_vec::<f32>()?;
        Ok(CTensor::from_vec(v, (rows, 1, 28, 28), &cdev)?)
    };
    let labels: Vec<u32> = data.train.y.narrow(0, 0, n)?.to_vec::<i64>()?.into_iter().map(|l| l as u32).collect();
    let (x, y) = (to_c(&data.train.x, n)?, CTensor::from_vec(labels, n, &cdev)?);
    let (xt, yt) = (to_c(&data.test.x, data.test.len())?, data.test.y.to_vec::<i64>()?);
    let loaded = Instant::now();

    let varmap = VarMap::new();
    let vb = VarBuilder::from_varmap(&varmap, CDType::F32, &cdev);
    let conv1 = candle_nn::conv2d(1, 32, 3, Default::default(), vb.pp("c1"))?;
    let conv2 = candle_nn::conv2d(32, 64, 3, Default::default(), vb.pp("c2"))?;
    let dense = candle_nn::linear(1600, 10, vb.pp("d"))?;
    let forward = |x: &CTensor, train: bool| -> candle_core::Result<CTensor> {
        let h = conv1.forward(x)?.relu()?.max_pool2d(2)?;
        let h = conv2.forward(&h)?.relu()?.max_pool2d(2)?;
        // NCHW flattening; the order differs from Keras' NHWC, the work does not.
        let h = h.flatten_from(1)?;
        let h = if train { candle_nn::ops::dropout(&h, 0.5)? } else { h };
        dense.forward(&h)
    };
    let params = candle_nn::ParamsAdamW { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-7, weight_decay: 0.0 };
    let mut opt = candle_nn::AdamW::new(varmap.all_vars(), params)?;

    let name = "candle-cpu (hand-written convnet loop)";
    candle_fit_and_predict(&x, &y, &xt, &yt, CONVNET_EPOCHS, loaded, &mut opt, forward, name)
}

#[cfg(not(feature = "candle"))]
fn candle_convnet_loop(_data_dir: &str) -> anyhow::Result<Value> {
    bail!("the candle_convnet_loop case needs the `candle` feature")
}

/// `--data DIR`, else where `strata::datasets::mnist::load` finds the files.
fn find_mnist(explicit: Option<&String>) -> anyhow::Result<String> {
    match explicit {
        Some(d) => Ok(d.clone()),
        None => Ok(mnist::locate().context("MNIST not found: pass --data DIR")?.display().to_string()),
    }
}

fn find_keras_script() -> Option<String> {
    let mut dir = std::env::current_dir().ok()?;
    loop {
        let cand = dir.join("shared/bench/keras_mlp.py");
        if cand.exists() {
            return Some(cand.display().to_string());
        }
        if !dir.pop() {
            return None;
        }
    }
}

fn parent(args: &[String]) -> anyhow::Result<()> {
    let mut opts: BTreeMap<&str, String> = BTreeMap::new();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        let key = match a.as_str() {
            "--cases" | "--backends" | "--rounds" | "--keras" | "--data" | "--keras-script" => a.as_str(),
            "-h" | "--help" => {
                println!("bench [--cases mlp,candle_loop,embedding,convnet,candle_convnet_loop,lstm,gru] [--backends native,candle] [--rounds N] [--data MNIST_DIR] [--keras PYTHON] [--keras-script PATH]");
                return Ok(());
            }
            other => bail!("unknown argument `{other}` (see --help)"),
        };
        let value = it.next().with_context(|| format!("{key} needs a value"))?;
        opts.insert(&key[2..], value.clone());
    }
    let cases: Vec<String> =
        opts.get("cases").map_or("mlp,candle_loop,embedding", |s| s).split(',').map(str::to_string).collect();
    let default_backends = if cfg!(feature = "candle") { "native,candle" } else { "native" };
    let backends: Vec<String> =
        opts.get("backends").map_or(default_backends, |s| s).split(',').map(str::to_string).collect();
    let rounds: usize = opts.get("rounds").map(|r| r.parse()).transpose()?.unwrap_or(1).max(1);
    let data = find_mnist(opts.get("data"))?;
    let threads = std::env::var("BENCH_THREADS").unwrap_or_else(|_| "2".into());
    let exe = std::env::current_exe()?;

    let mut jobs: Vec<(String, String)> = Vec::new();
    for case in &cases {
        match case.as_str() {
            "candle_loop" | "candle_convnet_loop" => jobs.push((case.clone(), "candle".into())),
            _ => jobs.extend(backends.iter().map(|b| (case.clone(), b.clone()))),
        }
    }
    let keras = match opts.get("keras") {
        Some(py) => {
            let script =
                opts.get("keras-script").cloned().or_else(find_keras_script).context(
                    "--keras needs shared/bench/keras_mlp.py in or above this folder, or --keras-script PATH",
                )?;
            Some((py.clone(), script))
        }
        None => None,
    };

    let mut results: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for round in 0..rounds {
        if let Some((py, script)) = &keras {
            // keras_mlp.py for the MLP, keras_bench.py (beside it) for the convnet and the LSTM.
            for case in cases.iter().filter(|c| ["mlp", "convnet", "lstm"].contains(&c.as_str())) {
                let mut cmd = Command::new(py);
                if case == "mlp" {
                    cmd.arg(script);
                } else {
                    let bench = std::path::Path::new(script).with_file_name("keras_bench.py");
                    cmd.arg(bench).arg(case).env("BENCH_SAMPLES", convnet_samples().to_string());
                    cmd.env("BENCH_EPOCHS", CONVNET_EPOCHS.to_string());
                }
                let out = cmd
                    .arg(&data)
                    .env("KERAS_BACKEND", std::env::var("KERAS_BACKEND").unwrap_or_else(|_| "jax".into()))
                    .env("BENCH_THREADS", &threads)
                    .output()?;
                let stdout = String::from_utf8_lossy(&out.stdout);
                let Some(line) = stdout.lines().rev().find(|l| l.starts_with('{')) else {
                    bail!("the Keras script printed no result:\n{}", String::from_utf8_lossy(&out.stderr));
                };
                let mut v: Value = serde_json::from_str(line)?;
                let key = format!("keras_{case}");
                v["case"] = json!(key);
                v["round"] = json!(round);
                println!("{v}");
                results.entry(key).or_default().push(v);
            }
        }
        for (case, backend) in &jobs {
            let out = Command::new(&exe)
                .args(["--child", case, backend, &data])
                .env("RAYON_NUM_THREADS", &threads)
                .output()?;
            if !out.status.success() {
                bail!("case {case} on {backend} failed:\n{}", String::from_utf8_lossy(&out.stderr));
            }
            let stdout = String::from_utf8_lossy(&out.stdout);
            let line = stdout.lines().rev().find(|l| l.starts_with('{')).context("child printed no result")?;
            let mut v: Value = serde_json::from_str(line)?;
            v["round"] = json!(round);
            println!("{v}");
            let key = if case.starts_with("candle_") { case.clone() } else { format!("{case}/{backend}") };
            results.entry(key).or_default().push(v);
        }
    }

    // Medians per case, and the ratios that the targets are stated in.
    let med = |key: &str, field: &str| -> Option<f64> {
        let vals: Vec<f64> = results.get(key)?.iter().filter_map(|v| v[field].as_f64()).collect();
        (!vals.is_empty()).then(|| median(vals))
    };
    let mut summary = serde_json::Map::new();
    for key in results.keys() {
        let mut s = serde_json::Map::new();
        for field in ["train_samples_per_s_steady", "predict_samples_per_s", "first_epoch_seconds", "peak_rss_mb"] {
            if let Some(v) = med(key, field) {
                s.insert(field.into(), json!(v));
            }
        }
        if let Some(v) = med(key, "first_step_ms_after_load") {
            s.insert("first_step_ms_after_load".into(), json!(v));
        }
        let convnet = key.starts_with("convnet/");
        let lstm = key.starts_with("lstm/");
        let (keras_base, loop_base) = if convnet {
            ("keras_convnet", "candle_convnet_loop")
        } else if lstm {
            ("keras_lstm", "")
        } else {
            ("keras_mlp", "candle_loop")
        };
        for (base, name) in [(keras_base, "vs_keras"), (loop_base, "vs_candle_loop")] {
            let compared = key.starts_with("mlp/")
                || convnet
                || lstm
                || (key == "candle_loop" && base == "keras_mlp")
                || (key == "candle_convnet_loop" && base == "keras_convnet");
            if compared {
                let ratio = |field: &str| Some(((med(key, field)? / med(base, field)?) * 100.0).round() / 100.0);
                if let (Some(t), Some(p)) = (ratio("train_samples_per_s_steady"), ratio("predict_samples_per_s")) {
                    s.insert(name.into(), json!({"train": t, "predict": p}));
                }
            }
        }
        summary.insert(key.clone(), Value::Object(s));
    }
    println!("{}", json!({"summary": summary, "rounds": rounds, "threads": threads}));
    Ok(())
}
