//! Every built-in layer's forward pass (and output mask) with fixed weights,
//! on every backend, against values computed by Keras 3 (JAX backend) — or,
//! where Keras has no such behaviour, NumPy (each case says which).
//!
//! The values in `tests/golden/keras_layers.json` were produced by
//! `tests/golden/keras_layers.py` (Keras 3.15.1, JAX 0.10.2):
//!
//! ```text
//! python3 -m venv keras-venv && keras-venv/bin/pip install keras jax safetensors
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_layers.py
//! ```
//!
//! Each case names a layer type and its strata config, so this test also
//! exercises `layer_from_config` for every built-in layer.

use anyhow::{Context, Result};
use serde_json::Value;
use strata::layers::{layer_from_config, BuildContext, CallContext, TensorSpec, Weight};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_layers.json");

/// `|got − want| <= ATOL + RTOL·|want|` (f32 kernels on different backends
/// round differently; exact-erf GELU and exp-based activations dominate).
const ATOL: f32 = 2e-6;
const RTOL: f32 = 2e-5;

fn tensor(v: &Value, dev: &Device) -> Result<Tensor> {
    let shape: Vec<usize> = serde_json::from_value(v["shape"].clone())?;
    if v["dtype"] == "int64" {
        let data: Vec<i64> = serde_json::from_value(v["data"].clone())?;
        Ok(Tensor::new(data, shape, dev)?)
    } else {
        let data: Vec<f32> = serde_json::from_value(v["data"].clone())?;
        Ok(Tensor::new(data, shape, dev)?)
    }
}

fn assert_close(case: &str, what: &str, got: &Tensor, want: &Tensor) {
    assert_eq!(got.dims(), want.dims(), "{case}: {what} shape");
    let (g, w) = (got.to_vec::<f32>().unwrap(), want.to_vec::<f32>().unwrap());
    for (i, (a, b)) in g.iter().zip(&w).enumerate() {
        assert!((a - b).abs() <= ATOL + RTOL * b.abs(), "{case}: {what}[{i}] = {a}, Keras {b}");
    }
}

fn run_case(case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let class = case["class_name"].as_str().context("class_name")?;
    let mut layer = layer_from_config(class, &case["config"]).with_context(|| name.to_string())?;
    let inputs: Vec<Tensor> =
        case["inputs"].as_array().context("inputs")?.iter().map(|v| tensor(v, dev)).collect::<Result<_>>()?;
    let masks: Vec<Option<Tensor>> = case["input_masks"]
        .as_array()
        .context("input_masks")?
        .iter()
        .map(|m| if m.is_null() { Ok(None) } else { tensor(m, dev).map(Some) })
        .collect::<Result<_>>()?;
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
    let golden_weights = case["weights"].as_object().context("weights")?;
    assert_eq!(weights.len(), golden_weights.len(), "{name}: weight count");
    for w in &weights {
        let v = golden_weights.get(&w.name).with_context(|| format!("{name}: Keras has no weight {}", w.name))?;
        w.value.assign(&tensor(v, dev)?)?;
    }
    let training = case["training"].as_bool().unwrap_or(false);
    let y = layer.call(&inputs, &mut CallContext::new(training, &masks, &weights, &mut Rng::seed(0)))?;
    assert!(spec.matches(&y), "{name}: output {:?} does not fit the built spec {spec}", y.dims());
    assert_close(name, "output", &y, &tensor(&case["output"], dev)?);
    let mask = layer.compute_mask(&inputs, &masks)?;
    match (&case["output_mask"], mask) {
        (Value::Null, None) => {}
        (Value::Null, Some(m)) => panic!("{name}: Keras has no output mask, strata gives {m}"),
        (want, Some(m)) => assert_close(name, "mask", &m, &tensor(want, dev)?),
        (_, None) => panic!("{name}: Keras has an output mask, strata gives none"),
    }
    Ok(())
}

#[test]
fn every_layer_matches_keras_on_every_backend() -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    assert!(cases.len() >= 40, "the golden file has {} cases", cases.len());
    let mut classes = std::collections::BTreeSet::new();
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for case in cases {
            run_case(case, &dev).with_context(|| format!("{backend}: case {}", case["name"]))?;
            classes.insert(case["class_name"].as_str().unwrap_or_default().to_string());
        }
    }
    // Every built-in layer type is covered: here, by the vision cases that
    // `golden_vision.rs` runs, by the sequence cases of `golden_sequences.rs`,
    // or — for the random augmentation layers, whose draws cannot match
    // Keras' generator — by their property tests.
    for file in [include_str!("golden/keras_vision.json"), include_str!("golden/keras_sequences.json")] {
        let golden: Value = serde_json::from_str(file)?;
        for case in golden["cases"].as_array().context("cases")? {
            classes.insert(case["class_name"].as_str().unwrap_or_default().to_string());
        }
    }
    const RANDOM: &[&str] = &[
        "RandomContrast",
        "RandomFlip",
        "RandomRotation",
        "RandomTranslation",
        "RandomZoom",
        "SpatialDropout1D",
        "SpatialDropout2D",
    ];
    for class in strata::layers::registered_layers() {
        if !["Lambda"].contains(&class.as_str()) && !RANDOM.contains(&class.as_str()) && !class.starts_with("Test") {
            assert!(classes.contains(&class), "no golden case for {class}");
        }
    }
    Ok(())
}
