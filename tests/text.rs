//! `strata::text::TextVectorization` against Keras 3's `TextVectorization`
//! (`output_mode="int"`): the learned vocabulary and the id rows.
//!
//! The values in `tests/golden/keras_text.json` were produced by
//! `tests/golden/keras_text.py` (Keras 3.15.1 with TensorFlow for its string
//! ops):
//!
//! ```text
//! keras-venv/bin/pip install keras jax tensorflow-cpu
//! KERAS_BACKEND=jax keras-venv/bin/python tests/golden/keras_text.py
//! ```

use anyhow::{bail, Context, Result};
use serde_json::Value;
use strata::text::{Split, Standardize, TextVectorization};

const GOLDEN: &str = include_str!("golden/keras_text.json");

fn strings(v: &Value) -> Result<Vec<String>> {
    Ok(serde_json::from_value(v.clone())?)
}

/// The vectorizer a Keras config describes.
fn from_keras(config: &Value) -> Result<TextVectorization> {
    let mut tv = TextVectorization::new();
    for (k, v) in config.as_object().context("config")? {
        tv = match (k.as_str(), v) {
            ("max_tokens", v) => tv.max_tokens(v.as_u64().context("max_tokens")? as usize),
            ("output_sequence_length", v) => tv.output_sequence_length(v.as_u64().context("length")? as usize),
            ("standardize", Value::Null) => tv.standardize(Standardize::None),
            ("standardize", v) if v == "lower" => tv.standardize(Standardize::Lower),
            ("standardize", v) if v == "strip_punctuation" => tv.standardize(Standardize::StripPunctuation),
            ("split", Value::Null) => tv.split(Split::None),
            ("split", v) if v == "character" => tv.split(Split::Character),
            (k, v) => bail!("unexpected config {k} = {v}"),
        };
    }
    Ok(tv)
}

#[test]
fn text_vectorization_matches_keras() -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let dev = strata::backend::native();
    let cases = golden["cases"].as_array().context("cases")?;
    assert_eq!(cases.len(), 7);
    for case in cases {
        let name = case["name"].as_str().context("name")?;
        let mut tv = from_keras(&case["config"])?;
        if case["corpus"].is_null() {
            tv.set_vocabulary(strings(&case["set_vocabulary"])?)?;
        } else {
            tv.adapt(&strings(&case["corpus"])?)?;
        }
        assert_eq!(tv.vocabulary(), strings(&case["vocabulary"])?, "{name}: vocabulary");
        let ids = tv.call_on(&strings(&case["texts"])?, &dev)?;
        let want: Vec<i64> = serde_json::from_value(case["output"]["data"].clone())?;
        let shape: Vec<usize> = serde_json::from_value(case["output"]["shape"].clone())?;
        assert_eq!(ids.to_vec::<i64>()?, want, "{name}: ids");
        // Keras gives a rank-1 result without splitting; strata rows of one id.
        let expect: Vec<usize> = if shape.len() == 1 { vec![shape[0], 1] } else { shape };
        assert_eq!(ids.dims(), expect, "{name}: shape");
    }
    Ok(())
}
