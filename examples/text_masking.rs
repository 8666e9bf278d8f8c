//! Masking on padded sequences: `Embedding(mask_zero)` →
//! `GlobalAveragePooling1D` → `Dense`, trained on variable-length sequences
//! of token ids padded with `0`. The label depends on the real tokens only:
//! whether their mean id is above the middle of the vocabulary.
//!
//! Then the same sequence is fed with different amounts of padding. The
//! masked model averages over the real tokens only, so its prediction does
//! not change; an unmasked twin with the very same weights averages the
//! padding in too, and its prediction drifts with the padding. The example
//! fails unless the model reaches 90% test accuracy, the masked
//! predictions agree and the unmasked ones differ.
//!
//! ```text
//! cargo run --release --example text_masking
//! STRATA_BACKEND=candle cargo run --release --example text_masking
//! ```

use strata::prelude::*;

/// Token ids `1..VOCAB` are words; `0` is padding.
const VOCAB: usize = 50;
const MAX_LEN: usize = 20;

/// `n` sequences of 3 to `MAX_LEN` random tokens, padded with zeros at
/// the end to `MAX_LEN`, and their labels: 1 when the mean token id is
/// above `VOCAB / 2`.
fn sequences(n: usize, rng: &mut Rng, dev: &Device) -> Result<(Tensor, Tensor)> {
    let mut ids = Vec::with_capacity(n * MAX_LEN);
    let mut labels = Vec::with_capacity(n);
    for _ in 0..n {
        let len = 3 + rng.below(MAX_LEN - 2)?;
        let tokens: Vec<i64> = (0..len).map(|_| Ok(1 + rng.below(VOCAB - 1)? as i64)).collect::<Result<_>>()?;
        let mean = tokens.iter().sum::<i64>() as f64 / len as f64;
        labels.push(if mean > (VOCAB / 2) as f64 { 1.0f32 } else { 0.0 });
        ids.extend(&tokens);
        ids.extend(std::iter::repeat_n(0, MAX_LEN - len));
    }
    Ok((Tensor::new(ids, [n, MAX_LEN], dev)?, Tensor::new(labels, [n, 1], dev)?))
}

fn build(mask_zero: bool, dev: &Device) -> Result<Model> {
    Sequential::new()
        .add(Input::new([None]).dtype(DType::I64)) // any sequence length
        .add(Embedding::new(VOCAB, 8).mask_zero(mask_zero))
        .add(GlobalAveragePooling1D::new())
        .add(Dense::new(1).activation("sigmoid"))
        .seed(0)
        .build_on(dev)
}

/// The model's prediction for `tokens` padded with zeros to `len`.
fn predict_padded(model: &Model, tokens: &[i64], len: usize) -> Result<f32> {
    let mut ids = tokens.to_vec();
    ids.resize(len, 0);
    let x = Tensor::new(ids, [1, len], model.device())?;
    Ok(model.predict(&x)?.to_vec::<f32>()?[0])
}

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let mut rng = Rng::seed(0);
    let (x_train, y_train) = sequences(2000, &mut rng, &dev)?;
    let (x_test, y_test) = sequences(500, &mut rng, &dev)?;

    let mut model = build(true, &dev)?;
    model.summary();
    model.compile(Adam::new(1e-2), "binary_crossentropy", &["accuracy"])?;
    model.fit(&x_train, &y_train, FitOptions::default().epochs(15).batch_size(32).verbose(0))?;
    let report = model.evaluate_with(&x_test, &y_test, EvaluateOptions::default().verbose(0))?;

    // The unmasked twin: same layers and names, the trained weights copied
    // over. Averaging the padding in pulls every probability towards the
    // padding token's score: the loss grows even where the class stays.
    let mut twin = build(false, &dev)?;
    let weights = model.weights();
    twin.set_weights_by_name(weights.iter().map(|w| (w.name.as_str(), &w.value)))?;
    twin.compile(Adam::new(1e-2), "binary_crossentropy", &["accuracy"])?;
    let twin_report = twin.evaluate_with(&x_test, &y_test, EvaluateOptions::default().verbose(0))?;
    let acc = report["accuracy"];
    println!(
        "{}: test accuracy {acc:.4}, loss {:.4} with the mask; {:.4}, {:.4} without it (same weights)",
        dev.name(),
        report["loss"],
        twin_report["accuracy"],
        twin_report["loss"]
    );

    // Close to the boundary, so that the prediction is not saturated at 1.
    let tokens = [30, 22, 26, 28, 24];
    println!("the sequence {tokens:?} (mean 26, label 1), padded to:");
    let lengths = [5, MAX_LEN, 60];
    let mut masked = Vec::new();
    let mut unmasked = Vec::new();
    for len in lengths {
        let (m, u) = (predict_padded(&model, &tokens, len)?, predict_padded(&twin, &tokens, len)?);
        println!("  {len:>2} steps: masked {m:.6}, unmasked {u:.6}");
        masked.push(m);
        unmasked.push(u);
    }
    let spread = |p: &[f32]| p.iter().fold(f32::MIN, |a, &b| a.max(b)) - p.iter().fold(f32::MAX, |a, &b| a.min(b));
    let (masked_spread, unmasked_spread) = (spread(&masked), spread(&unmasked));
    println!("spread over the paddings: masked {masked_spread:.2e}, unmasked {unmasked_spread:.2e}");

    anyhow::ensure!(acc >= 0.9, "test accuracy {acc:.4} is below 90%");
    anyhow::ensure!(
        masked[0] > 0.5 && masked[0] < 0.99,
        "expected a positive, unsaturated prediction for a sequence with mean 26, got {}",
        masked[0]
    );
    anyhow::ensure!(masked_spread <= 1e-5, "padding changed the masked prediction by {masked_spread}");
    anyhow::ensure!(unmasked_spread >= 1e-2, "padding barely changed the unmasked prediction ({unmasked_spread})");
    Ok(())
}
