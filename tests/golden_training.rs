//! One epoch of `fit` (no shuffling) from fixed initial weights, against
//! Keras 3: the final weights, the epoch's logged metrics and `evaluate`.
//!
//! `tests/golden/keras_training.json` comes from
//! `tests/golden/keras_training.py` (Keras 3.15.1, JAX 0.10.2 on CPU):
//!
//! ```text
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_training.py
//! ```
//!
//! Cases: SGD with momentum 0.9 (sparse categorical cross-entropy +
//! accuracy); Adam with an L2 kernel regularizer and sample weights; Adam
//! with binary cross-entropy from logits, an MAE metric and
//! `validation_split` 0.25. The issue's bar is 1e-4 on the weights; they
//! agree within 1e-6 on both backends (measured), and the test holds
//! weights, logged values and `evaluate` to 1e-5.

use anyhow::{Context, Result};
use serde_json::Value;
use strata::losses::Loss;
use strata::optimizers::{Adam, Optimizer, SGD};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_training.json");
const TOL: f32 = 1e-5;

fn tensor(v: &Value, dev: &Device) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    if v["dtype"] == "int64" {
        Ok(Tensor::new(serde_json::from_value::<Vec<i64>>(v["data"].clone())?, shape, dev)?)
    } else {
        Ok(Tensor::new(serde_json::from_value::<Vec<f32>>(v["data"].clone())?, shape, dev)?)
    }
}

/// The model, optimizer, loss and metric of each case, written out in strata.
fn setup(name: &str, dev: &Device) -> Result<(Model, Box<dyn Optimizer>, Loss, &'static str)> {
    let seq = Sequential::new().add(Input::new([4]));
    Ok(match name {
        "sgd_momentum" => (
            seq.add(Dense::new(8).activation("relu")).add(Dense::new(3).activation("softmax")).build_on(dev)?,
            Box::new(SGD::new(0.1).momentum(0.9)),
            Loss::from_name("sparse_categorical_crossentropy")?,
            "accuracy",
        ),
        "adam_l2_sample_weight" => (
            seq.add(Dense::new(8).activation("tanh").kernel_regularizer(Regularizer::l2(0.01)))
                .add(Dense::new(3).activation("softmax"))
                .build_on(dev)?,
            Box::new(Adam::new(0.01)),
            Loss::from_name("sparse_categorical_crossentropy")?,
            "accuracy",
        ),
        "adam_binary_logits_validation" => (
            seq.add(Dense::new(6).activation("relu")).add(Dense::new(1)).build_on(dev)?,
            Box::new(Adam::new(0.02)),
            Loss::BinaryCrossentropy { from_logits: true },
            "mae",
        ),
        other => anyhow::bail!("unknown case {other}"),
    })
}

/// Keras numbers layer names per session (`dense_2`, ...), strata per
/// model: `dense_2.kernel` becomes the strata name of the same layer.
fn strata_name(case: &Value, model: &Model, keras: &str) -> Result<String> {
    let (layer, weight) = keras.split_once('.').context("weight name")?;
    let keras_layers: Vec<&str> =
        case["layers"].as_array().context("layers")?.iter().filter_map(|l| l["name"].as_str()).collect();
    let i = keras_layers.iter().position(|l| *l == layer).context("layer")?;
    let ours: Vec<&str> = model.layer_names().into_iter().filter(|n| n.starts_with("dense")).collect();
    Ok(format!("{}.{weight}", ours[i]))
}

fn run_case(case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let (mut model, optimizer, loss, metric) = setup(name, dev)?;
    let initial = case["initial"].as_object().context("initial")?;
    assert_eq!(model.weights().len(), initial.len(), "{name}: weight count");
    let values: Vec<(String, Tensor)> =
        initial.iter().map(|(k, v)| Ok((strata_name(case, &model, k)?, tensor(v, dev)?))).collect::<Result<_>>()?;
    model.set_weights_by_name(values.iter().map(|(k, t)| (k.as_str(), t)))?;
    model.compile(optimizer, loss, &[metric])?;

    let x = tensor(&case["x"], dev)?;
    let y = tensor(&case["y"], dev)?;
    let fit = &case["fit"];
    let mut options = FitOptions::default()
        .epochs(1)
        .shuffle(false)
        .verbose(0)
        .batch_size(fit["batch_size"].as_u64().context("batch_size")? as usize);
    if let Some(split) = fit["validation_split"].as_f64() {
        options = options.validation_split(split);
    }
    if let Some(sw) = case["sample_weight"].as_array() {
        let sw: Vec<f32> = sw.iter().map(|v| v.as_f64().unwrap_or(f64::NAN) as f32).collect();
        let n = sw.len();
        options = options.sample_weight(&Tensor::new(sw, [n], dev)?);
    }
    let history = model.fit(&x, &y, options)?;

    for (key, want) in case["final"].as_object().context("final")? {
        let got = model.weight(&strata_name(case, &model, key)?)?.to_vec::<f32>()?;
        let want: Vec<f32> = serde_json::from_value(want["data"].clone())?;
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= TOL, "{name} on {}: {key}[{i}] = {a}, Keras {b}", dev.name());
        }
    }
    for (key, want) in case["history"].as_object().context("history")? {
        let got = history.last(key).with_context(|| format!("{name}: history has no `{key}`"))?;
        let want = want[0].as_f64().context("history value")?;
        assert!((got - want).abs() <= f64::from(TOL), "{name} on {}: history {key} = {got}, Keras {want}", dev.name());
    }
    let logs = model.evaluate_with(&x, &y, EvaluateOptions::default().batch_size(16).verbose(0))?;
    for (key, want) in case["evaluate"].as_object().context("evaluate")? {
        let want = want.as_f64().context("evaluate value")?;
        let got = logs[key.as_str()];
        assert!((got - want).abs() <= f64::from(TOL), "{name} on {}: evaluate {key} = {got}, Keras {want}", dev.name());
    }
    Ok(())
}

fn run_all(dev: &Device) -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 3);
    for case in cases {
        run_case(case, dev)?;
    }
    Ok(())
}

#[test]
fn one_epoch_matches_keras_on_native() -> Result<()> {
    run_all(&backend::native())
}

#[cfg(feature = "candle")]
#[test]
fn one_epoch_matches_keras_on_candle() -> Result<()> {
    run_all(&backend::candle_cpu())
}
