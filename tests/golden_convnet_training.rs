//! One epoch of `fit` (no shuffling) of two small convnets from fixed
//! initial weights, against Keras 3: the final weights — including
//! BatchNormalization's moving statistics — the epoch's logged metrics and
//! `evaluate`.
//!
//! `tests/golden/keras_convnet_training.json` comes from
//! `tests/golden/keras_convnet_training.py` (Keras 3.15.1, JAX 0.10.2 on CPU):
//!
//! ```text
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_convnet_training.py
//! ```
//!
//! Cases: Conv2D → MaxPooling2D → Conv2D (same) → Flatten → Dense softmax
//! with Adam; the same with a BatchNormalization after the first Conv2D,
//! with SGD and momentum 0.9. 48 images of 8×8, batch 16: three steps.

mod common;

use anyhow::{Context, Result};
use serde_json::Value;
use strata::optimizers::{Adam, Optimizer, SGD};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_convnet_training.json");

/// Each case's model and optimizer, written out in strata. Layer names are
/// the Keras defaults, as in the file (Keras restarted its counters per case).
fn setup(name: &str, dev: &Device) -> Result<(Model, Box<dyn Optimizer>)> {
    let mut seq = Sequential::new().add(Input::new([8, 8, 1])).add(Conv2D::new(4, 3).activation("relu"));
    if name == "convnet_bn_sgd_momentum" {
        seq = seq.add(BatchNormalization::new());
    }
    let model = seq
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(6, 3).padding("same").activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(3).activation("softmax"))
        .build_on(dev)?;
    let optimizer: Box<dyn Optimizer> = match name {
        "convnet_adam" => Box::new(Adam::new(1e-3)),
        "convnet_bn_sgd_momentum" => Box::new(SGD::new(0.05).momentum(0.9)),
        other => anyhow::bail!("unknown case {other}"),
    };
    Ok((model, optimizer))
}

fn run_case(case: &Value, dev: &Device) -> Result<()> {
    let name = case["name"].as_str().context("name")?;
    let (mut model, optimizer) = setup(name, dev)?;
    common::set_initial(&mut model, case, dev)?;
    for w in model.weights() {
        let keras = case["trainable"][&w.name].as_bool().with_context(|| format!("{name}: Keras has no {}", w.name))?;
        assert_eq!(w.trainable, keras, "{name}: {} trainable", w.name);
    }
    model.compile(optimizer, "sparse_categorical_crossentropy", &["accuracy"])?;
    let batch = case["fit"]["batch_size"].as_u64().context("batch_size")? as usize;
    common::check_one_epoch(&mut model, case, batch, dev)
}

fn run_all(dev: &Device) -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 2);
    for case in cases {
        run_case(case, dev)?;
    }
    Ok(())
}

#[test]
fn one_convnet_epoch_matches_keras_on_native() -> Result<()> {
    run_all(&backend::native())
}

#[cfg(feature = "candle")]
#[test]
fn one_convnet_epoch_matches_keras_on_candle() -> Result<()> {
    run_all(&backend::candle_cpu())
}
