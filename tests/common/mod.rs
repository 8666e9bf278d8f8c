//! What the golden training tests share: reading the golden files' tensors
//! and checking one epoch of `fit` against Keras' final weights, history
//! and `evaluate`.

#![allow(dead_code)]

use anyhow::{Context, Result};
use serde_json::Value;
use strata::prelude::*;

/// The bar on the final weights.
pub const WEIGHT_TOL: f32 = 1e-5;
/// The bar on the logged loss and metrics.
pub const LOG_TOL: f64 = 1e-5;

/// A golden `{"shape", "data"}` tensor (`"dtype": "int64"` for ids and labels).
pub fn tensor(v: &Value, dev: &Device) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    if v["dtype"] == "int64" {
        Ok(Tensor::new(serde_json::from_value::<Vec<i64>>(v["data"].clone())?, shape, dev)?)
    } else {
        Ok(Tensor::new(serde_json::from_value::<Vec<f32>>(v["data"].clone())?, shape, dev)?)
    }
}

/// Sets `model`'s weights to the case's `initial` ones (every weight must
/// be there).
pub fn set_initial(model: &mut Model, case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let initial = case["initial"].as_object().context("initial")?;
    assert_eq!(model.weights().len(), initial.len(), "{name}: weight count");
    let values: Vec<(String, Tensor)> =
        initial.iter().map(|(k, v)| Ok((k.clone(), tensor(v, dev)?))).collect::<Result<_>>()?;
    model.set_weights_by_name(values.iter().map(|(k, t)| (k.as_str(), t)))?;
    Ok(())
}

/// Fits the compiled `model` one epoch on the case's `x` and `y` (no
/// shuffling, batch `batch`) and checks the final weights, the history and
/// `evaluate` (batch 16) against Keras'.
pub fn check_one_epoch(model: &mut Model, case: &Value, batch: usize, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let (x, y) = (tensor(&case["x"], dev)?, tensor(&case["y"], dev)?);
    let history = model.fit(&x, &y, FitOptions::default().epochs(1).shuffle(false).verbose(0).batch_size(batch))?;
    for (key, want) in case["final"].as_object().context("final")? {
        let got = model.weight(key)?.to_vec::<f32>()?;
        let want: Vec<f32> = serde_json::from_value(want["data"].clone())?;
        assert_eq!(got.len(), want.len(), "{name}: {key} size");
        for (i, (a, b)) in got.iter().zip(&want).enumerate() {
            assert!((a - b).abs() <= WEIGHT_TOL, "{name} on {}: {key}[{i}] = {a}, Keras {b}", dev.name());
        }
    }
    for (key, want) in case["history"].as_object().context("history")? {
        let got = history.last(key).with_context(|| format!("{name}: history has no `{key}`"))?;
        let want = want[0].as_f64().context("history value")?;
        assert!((got - want).abs() <= LOG_TOL, "{name} on {}: history {key} = {got}, Keras {want}", dev.name());
    }
    let logs = model.evaluate_with(&x, &y, EvaluateOptions::default().batch_size(16).verbose(0))?;
    for (key, want) in case["evaluate"].as_object().context("evaluate")? {
        let want = want.as_f64().context("evaluate value")?;
        let got = logs[key.as_str()];
        assert!((got - want).abs() <= LOG_TOL, "{name} on {}: evaluate {key} = {got}, Keras {want}", dev.name());
    }
    Ok(())
}
