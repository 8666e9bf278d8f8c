//! The vision layers' forward passes (and BatchNormalization's moving
//! statistics after a training call) with fixed weights, on every backend,
//! against Keras 3 (JAX backend).
//!
//! The values in `tests/golden/keras_vision.json` were produced by
//! `tests/golden/keras_vision.py` (Keras 3.15.1, JAX 0.10.2):
//!
//! ```text
//! python3 -m venv keras-venv && keras-venv/bin/pip install keras jax safetensors
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_vision.py
//! ```
//!
//! Each case names a Keras class and the Keras config keys it sets, so this
//! also checks that strata reads Keras' configs of these layers.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use strata::layers::{
    layer_from_config, BuildContext, CallContext, Layer, LayerClass, Normalization, TensorSpec, Weight,
};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_vision.json");

/// `|got − want| <= ATOL + RTOL·|want|`, the issue's tolerance.
const ATOL: f32 = 1e-6;
const RTOL: f32 = 1e-5;

fn tensor(v: &Value, dev: &Device) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    let data: Vec<f32> = serde_json::from_value(v["data"].clone())?;
    Ok(Tensor::new(data, shape, dev)?)
}

fn assert_close(case: &str, what: &str, got: &Tensor, want: &Tensor) -> Result<()> {
    if got.dims() != want.dims() {
        bail!("{case}: {what} has shape {:?}, Keras {:?}", got.dims(), want.dims());
    }
    let (g, w) = (got.to_vec::<f32>()?, want.to_vec::<f32>()?);
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        if (a - b).abs() > ATOL + RTOL * b.abs() {
            bail!("{case}: {what}[{i}] = {a}, Keras {b}");
        }
    }
    Ok(())
}

fn run_case(case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let class = case["class_name"].as_str().context("class_name")?;
    // A case with `adapt_data` (Normalization) adapts a fresh layer on it:
    // the adapted statistics must equal Keras' weights before they are assigned.
    let adapt_data = case.get("adapt_data").map(|v| tensor(v, dev)).transpose()?;
    let mut layer: Box<dyn Layer> = match &adapt_data {
        Some(data) => {
            if class != "Normalization" {
                bail!("{name}: adapt_data for {class}, which cannot adapt");
            }
            Box::new(Normalization::from_config(&case["config"])?.adapt(data)?)
        }
        None => layer_from_config(class, &case["config"]).with_context(|| name.to_string())?,
    };
    let inputs: Vec<Tensor> =
        case["inputs"].as_array().context("inputs")?.iter().map(|v| tensor(v, dev)).collect::<Result<_>>()?;
    let masks: Vec<Option<Tensor>> = vec![None; inputs.len()];
    let specs: Vec<TensorSpec> = inputs
        .iter()
        .map(|x| {
            let mut dims: Vec<Option<usize>> = x.dims().iter().map(|&d| Some(d)).collect();
            dims[0] = None;
            TensorSpec::new(dims, x.dtype())
        })
        .collect();
    let mut weights: Vec<Weight> = Vec::new();
    let spec = layer.build(&specs, &mut BuildContext::new(&mut weights, &mut Rng::seed(0), dev))?;
    // Keras' weights, in Keras' order, with Keras' trainability.
    let order: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
    let want_order: Vec<&str> =
        case["weight_order"].as_array().context("weight_order")?.iter().filter_map(Value::as_str).collect();
    if order != want_order {
        bail!("{name}: weights {order:?}, Keras {want_order:?}");
    }
    if adapt_data.is_some() {
        // `count` is an int32 scalar in Keras (always 0); strata keeps it as an f32 weight.
        for w in &weights {
            assert_close(name, &format!("adapted {}", w.name), &w.value, &tensor(&case["weights"][&w.name], dev)?)?;
        }
    }
    for w in &weights {
        let v = &case["weights"][&w.name];
        w.value.assign(&tensor(v, dev)?)?;
        if case["trainable"][&w.name].as_bool() != Some(w.trainable) {
            bail!("{name}: weight {} trainable = {}, not as in Keras", w.name, w.trainable);
        }
    }
    let training = case["training"].as_bool().unwrap_or(false);
    let y = layer.call(&inputs, &mut CallContext::new(training, &masks, &weights, &mut Rng::seed(0)))?;
    if !spec.matches(&y) {
        bail!("{name}: output {:?} does not fit the built spec {spec}", y.dims());
    }
    assert_close(name, "output", &y, &tensor(&case["output"], dev)?)?;
    if let Some(after) = case.get("weights_after").and_then(Value::as_object) {
        for w in &weights {
            let want = after.get(&w.name).with_context(|| format!("{name}: no weights_after for {}", w.name))?;
            assert_close(name, &format!("{} after the call", w.name), &w.value, &tensor(want, dev)?)?;
        }
    }
    Ok(())
}

/// Classes with golden cases that strata does not have yet; shrinks to
/// nothing as the vision issue lands.
const NOT_YET: &[&str] = &[];

#[test]
fn vision_layers_match_keras_on_every_backend() -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    let registered = strata::layers::registered_layers();
    let mut missing = BTreeSet::new();
    let mut failures = Vec::new();
    let mut ran = 0;
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for case in cases {
            let class = case["class_name"].as_str().context("class_name")?;
            if !registered.iter().any(|c| c == class) {
                missing.insert(class.to_string());
                continue;
            }
            ran += 1;
            if let Err(e) = run_case(case, &dev) {
                failures.push(format!("{backend}: {e:#}"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {ran} cases differ from Keras:\n{}", failures.len(), failures.join("\n"));
    let missing: Vec<&str> = missing.iter().map(String::as_str).collect();
    assert_eq!(missing, NOT_YET, "golden classes strata lacks (update NOT_YET when adding a layer)");
    Ok(())
}
