//! One epoch of `fit` (no shuffling) of three small sequence models from
//! fixed initial weights, against Keras 3: the final weights, the epoch's
//! logged metrics and `evaluate`, on every backend.
//!
//! `tests/golden/keras_sequence_training.json` comes from
//! `tests/golden/keras_sequence_training.py` (Keras 3.15.1, JAX 0.10.2 on CPU):
//!
//! ```text
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_sequence_training.py
//! ```
//!
//! Cases: LSTM(5) → Dense softmax with Adam; masked tokens → Embedding →
//! Bidirectional(GRU) → GlobalAveragePooling1D → Dense with RMSprop; masked
//! tokens → Embedding → MultiHeadAttention → Add → LayerNormalization →
//! GlobalAveragePooling1D → Dense with Adam. 48 samples, batch 16.

use anyhow::{Context, Result};
use serde_json::Value;
use strata::optimizers::{Adam, Optimizer, RMSprop};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_sequence_training.json");
/// The issue's bar on the final weights.
const TOL: f32 = 1e-5;

fn tensor(v: &Value, dev: &Device) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    if v["dtype"] == "int64" {
        Ok(Tensor::new(serde_json::from_value::<Vec<i64>>(v["data"].clone())?, shape, dev)?)
    } else {
        Ok(Tensor::new(serde_json::from_value::<Vec<f32>>(v["data"].clone())?, shape, dev)?)
    }
}

/// Each case's model and optimizer, written out in strata with Keras'
/// default layer names.
fn setup(name: &str, dev: &Device) -> Result<(Model, Box<dyn Optimizer>)> {
    Ok(match name {
        "lstm_adam" => {
            let model = Sequential::new()
                .add(Input::new([6, 3]))
                .add(LSTM::new(5))
                .add(Dense::new(3).activation("softmax"))
                .build_on(dev)?;
            (model, Box::new(Adam::new(1e-2)))
        }
        "masked_bigru_rmsprop" => {
            let model = Sequential::new()
                .add(Input::new([8]).dtype(DType::I64))
                .add(Embedding::new(12, 4).mask_zero(true))
                .add(Bidirectional::new(GRU::new(3).return_sequences(true)))
                .add(GlobalAveragePooling1D::new())
                .add(Dense::new(2).activation("softmax"))
                .build_on(dev)?;
            (model, Box::new(RMSprop::new(1e-2)))
        }
        "attention_block_adam" => {
            let tokens = Input::new([8]).dtype(DType::I64);
            let x = Embedding::new(12, 8).mask_zero(true).call(&tokens)?;
            let a = MultiHeadAttention::new(2, 4).call(&[&x, &x])?;
            let x = LayerNormalization::new().call(&Add::new().call(&[&x, &a])?)?;
            let x = GlobalAveragePooling1D::new().call(&x)?;
            let out = Dense::new(2).activation("softmax").call(&x)?;
            (Model::new_with(&[tokens], &[out], BuildOptions::new().device(dev))?, Box::new(Adam::new(1e-2)))
        }
        other => anyhow::bail!("unknown case {other}"),
    })
}

fn run_case(case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let (mut model, optimizer) = setup(name, dev)?;
    let initial = case["initial"].as_object().context("initial")?;
    assert_eq!(model.weights().len(), initial.len(), "{name}: weight count");
    let values: Vec<(String, Tensor)> =
        initial.iter().map(|(k, v)| Ok((k.clone(), tensor(v, dev)?))).collect::<Result<_>>()?;
    model.set_weights(values.iter().map(|(k, t)| (k.as_str(), t)))?;
    model.compile(optimizer, "sparse_categorical_crossentropy", &["accuracy"])?;

    let (x, y) = (tensor(&case["x"], dev)?, tensor(&case["y"], dev)?);
    let history = model.fit(&x, &y, FitOptions::default().epochs(1).shuffle(false).verbose(0).batch_size(16))?;
    for (key, want) in case["final"].as_object().context("final")? {
        let got = model.weight(key)?.to_vec::<f32>()?;
        let want: Vec<f32> = serde_json::from_value(want["data"].clone())?;
        assert_eq!(got.len(), want.len(), "{name}: {key} size");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= TOL, "{name} on {}: {key}[{i}] = {a}, Keras {b}", dev.name());
        }
    }
    for (key, want) in case["history"].as_object().context("history")? {
        let got = history.last(key).with_context(|| format!("{name}: history has no `{key}`"))?;
        let want = want[0].as_f64().context("history value")?;
        assert!((got - want).abs() <= 1e-5, "{name} on {}: history {key} = {got}, Keras {want}", dev.name());
    }
    let logs = model.evaluate_with(&x, &y, EvaluateOptions::default().batch_size(16).verbose(0))?;
    for (key, want) in case["evaluate"].as_object().context("evaluate")? {
        let want = want.as_f64().context("evaluate value")?;
        let got = logs[key.as_str()];
        assert!((got - want).abs() <= 1e-5, "{name} on {}: evaluate {key} = {got}, Keras {want}", dev.name());
    }
    Ok(())
}

#[test]
fn one_sequence_model_epoch_matches_keras_on_every_backend() -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 3);
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for case in cases {
            run_case(case, &dev).with_context(|| format!("backend {backend}"))?;
        }
    }
    Ok(())
}
