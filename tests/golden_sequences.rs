//! The sequence layers' outputs (every one of them, with `return_state` or
//! `return_attention_scores`) and output masks with fixed weights, on every
//! backend, against Keras 3 (JAX backend): recurrent layers, Bidirectional,
//! TimeDistributed, the merges with Dot, and the attention layers.
//!
//! The values in `tests/golden/keras_sequences.json` were produced by
//! `tests/golden/keras_sequences.py` (Keras 3.15.1, JAX 0.10.2):
//!
//! ```text
//! python3 -m venv keras-venv && keras-venv/bin/pip install keras jax safetensors
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_sequences.py
//! ```
//!
//! Each case names a Keras class and the Keras config keys it sets, so this
//! also checks that strata reads Keras' configs of these layers.

use std::collections::BTreeSet;

use anyhow::{bail, Context, Result};
use serde_json::Value;
use strata::layers::{layer_from_config, BuildContext, CallContext, TensorSpec, Weight};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_sequences.json");

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
    // Keras' call arguments (`return_attention_scores`, ...) are strata
    // layer arguments of the same name.
    let mut config = case["config"].clone();
    if let (Some(c), Some(extra)) = (config.as_object_mut(), case.get("call_config").and_then(Value::as_object)) {
        c.extend(extra.clone());
    }
    let mut layer = layer_from_config(class, &config).with_context(|| name.to_string())?;
    let inputs: Vec<Tensor> =
        case["inputs"].as_array().context("inputs")?.iter().map(|v| tensor(v, dev)).collect::<Result<_>>()?;
    let mut masks: Vec<Option<Tensor>> = vec![None; inputs.len()];
    if !case["input_mask"].is_null() {
        masks[0] = Some(tensor(&case["input_mask"], dev)?);
    }
    if let Some(per_input) = case.get("input_masks").and_then(Value::as_array) {
        for (m, v) in masks.iter_mut().zip(per_input) {
            if !v.is_null() {
                *m = Some(tensor(v, dev)?);
            }
        }
    }
    let specs: Vec<TensorSpec> = inputs
        .iter()
        .map(|x| {
            let mut dims: Vec<Option<usize>> = x.dims().iter().map(|&d| Some(d)).collect();
            dims[0] = None;
            TensorSpec::new(dims, x.dtype())
        })
        .collect();
    let mut weights: Vec<Weight> = Vec::new();
    let out_specs = layer.build_multi(&specs, &mut BuildContext::new(&mut weights, &mut Rng::seed(0), dev))?;
    let order: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
    let want_order: Vec<&str> =
        case["weight_order"].as_array().context("weight_order")?.iter().filter_map(Value::as_str).collect();
    if order != want_order {
        bail!("{name}: weights {order:?}, Keras {want_order:?}");
    }
    for w in &weights {
        w.value.assign(&tensor(&case["weights"][&w.name], dev)?)?;
    }
    let outs = layer.call_multi(&inputs, &mut CallContext::new(false, &masks, &weights, &mut Rng::seed(0)))?;
    let want = case["outputs"].as_array().context("outputs")?;
    if outs.len() != want.len() || out_specs.len() != want.len() || layer.num_outputs() != want.len() {
        bail!(
            "{name}: {} outputs ({} specs, num_outputs {}), Keras {}",
            outs.len(),
            out_specs.len(),
            layer.num_outputs(),
            want.len()
        );
    }
    for (k, ((y, spec), w)) in outs.iter().zip(&out_specs).zip(want).enumerate() {
        if !spec.matches(y) {
            bail!("{name}: output {k} {:?} does not fit the built spec {spec}", y.dims());
        }
        assert_close(name, &format!("output {k}"), y, &tensor(w, dev)?)?;
    }
    let out_masks = layer.compute_masks(&inputs, &masks)?;
    let want_masks = case["output_masks"].as_array().context("output_masks")?;
    if out_masks.len() != want_masks.len() {
        bail!("{name}: {} output masks, Keras {}", out_masks.len(), want_masks.len());
    }
    for (k, (m, w)) in out_masks.iter().zip(want_masks).enumerate() {
        match (m, w.is_null()) {
            (None, true) => {}
            (Some(m), false) => assert_close(name, &format!("mask {k}"), m, &tensor(w, dev)?)?,
            (m, _) => bail!("{name}: output mask {k} is {m:?}, Keras {w}"),
        }
    }
    Ok(())
}

/// Classes with golden cases that strata does not have yet; shrinks to
/// nothing as the sequences issue lands.
const NOT_YET: &[&str] = &[];

#[test]
fn sequence_layers_match_keras_on_every_backend() -> Result<()> {
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
