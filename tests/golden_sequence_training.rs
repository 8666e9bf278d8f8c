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

mod common;

use anyhow::{Context, Result};
use serde_json::Value;
use strata::optimizers::{Adam, Optimizer, RMSprop};
use strata::prelude::*;

const GOLDEN: &str = include_str!("golden/keras_sequence_training.json");

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
    common::set_initial(&mut model, case, dev)?;
    model.compile(optimizer, "sparse_categorical_crossentropy", &["accuracy"])?;
    common::check_one_epoch(&mut model, case, 16, dev)
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
