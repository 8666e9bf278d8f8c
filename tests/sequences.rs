//! Recurrent layers in whole models: several outputs through the Functional
//! API (`call_multi`), the summary, configs and saved files with them,
//! initial states from another layer, and masks from `Embedding` through an
//! `LSTM` into pooling, losses and metrics.

use anyhow::Result;
use strata::prelude::*;

fn dev() -> Device {
    strata::backend::native()
}

fn randn(shape: &[usize], seed: u64) -> Result<Tensor> {
    Ok(Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, &mut Rng::seed(seed), &dev())?)
}

/// An encoder LSTM's final states start a decoder LSTM.
fn encoder_decoder() -> Result<Model> {
    let source = Input::new([6, 3]).name("source");
    let target = Input::new([4, 2]).name("target");
    let [_, h, c] = LSTM::new(5).return_state(true).name("encoder").call_multi(&source)?;
    let decoded = LSTM::new(5).return_sequences(true).name("decoder").call(&[&target, &h, &c])?;
    let out = Dense::new(2).name("head").call(&decoded)?;
    let state_out = Dense::new(1).name("from_c").call(&c)?;
    Ok(Model::new_with(&[source, target], &[out, state_out], BuildOptions::new().device(&dev()).seed(1))?)
}

#[test]
fn several_outputs_flow_through_the_functional_api() -> Result<()> {
    let model = encoder_decoder()?;
    assert_eq!(model.output_specs().iter().map(|s| s.to_string()).collect::<Vec<_>>(), ["(None, 4, 2)", "(None, 1)"]);
    let summary = model.summary_string();
    assert!(summary.contains("[(None, 5), (None, 5), (None, 5)]"), "{summary}");
    assert!(summary.contains("encoder[0][1], encoder[0][2]"), "{summary}");
    assert!(summary.contains("encoder[0][2]") && summary.contains("from_c"), "{summary}");
    // 4·5·(3 + 5 + 1) for each LSTM (the decoder reads 2 features), plus the heads.
    assert_eq!(model.count_params(), 4 * 5 * (3 + 5 + 1) + 4 * 5 * (2 + 5 + 1) + (5 * 2 + 2) + (5 + 1));
    let y = model.forward(&[randn(&[2, 6, 3], 1)?, randn(&[2, 4, 2], 2)?], false)?;
    assert_eq!(y[0].dims(), [2, 4, 2]);
    assert_eq!(y[1].dims(), [2, 1]);
    Ok(())
}

#[test]
fn a_layer_with_several_outputs_asks_for_call_multi() -> Result<()> {
    let x = Input::new([6, 3]);
    let e = LSTM::new(5).return_state(true).name("enc").call(&x).unwrap_err().to_string();
    assert!(e.contains("enc (LSTM)") && e.contains("returns 3 tensor(s)") && e.contains("call_multi"), "{e}");
    let e = LSTM::new(5).return_state(true).call_multi::<2>(&x).unwrap_err().to_string();
    assert!(e.contains("returns 3 tensor(s), but 2 were asked for"), "{e}");
    assert_eq!(GRU::new(2).return_state(true).call_outputs(&x)?.len(), 2);
    Ok(())
}

#[test]
fn models_with_several_outputs_per_layer_round_trip() -> Result<()> {
    let model = encoder_decoder()?;
    let config = model.get_config();
    // The decoder reads the encoder's second and third outputs.
    assert_eq!(config["layers"][1]["inbound_nodes"][0][1], serde_json::json!(["encoder", 0, 1]));
    assert_eq!(config["layers"][1]["inbound_nodes"][0][2], serde_json::json!(["encoder", 0, 2]));
    let again = Model::from_config(&config)?;
    assert_eq!(again.get_config(), config);

    let path = std::env::temp_dir().join(format!("strata_sequences_{}.safetensors", std::process::id()));
    model.save(&path)?;
    let x = [randn(&[3, 6, 3], 4)?, randn(&[3, 4, 2], 5)?];
    for backend in strata::backend::available() {
        let loaded = strata::load_model_on(&path, &strata::backend::by_name(backend)?)?;
        let xs: Vec<Tensor> = x.iter().map(|t| t.to_device(loaded.device())).collect::<strata::Result<_>>()?;
        let (a, b) = (model.forward(&x, false)?, loaded.forward(&xs, false)?);
        for (p, q) in a.iter().zip(&b) {
            for (u, v) in p.to_vec::<f32>()?.iter().zip(q.to_vec::<f32>()?) {
                assert!((u - v).abs() < 1e-5, "{backend}: {u} vs {v}");
            }
        }
    }
    std::fs::remove_file(&path)?;

    // A reference to an output the layer does not have is an error.
    let mut bad = config.clone();
    bad["layers"][1]["inbound_nodes"][0][2] = serde_json::json!(["encoder", 0, 3]);
    let e = Model::from_config(&bad).unwrap_err().to_string();
    assert!(e.contains("output 3 of `encoder`, which has 3 output(s)"), "{e}");
    Ok(())
}

/// A model with several outputs is itself a layer with several outputs.
#[test]
fn a_model_with_several_outputs_nests_as_a_layer() -> Result<()> {
    let inner_in = Input::new([4, 3]);
    let [seq, h] = GRU::new(2).return_sequences(true).return_state(true).call_multi(&inner_in)?;
    let inner = Model::new_with(&[inner_in], &[seq, h], BuildOptions::new().device(&dev()).seed(2).name("inner"))?;
    let x = Input::new([4, 3]);
    let [seq, h] = inner.call_multi(&x)?;
    let pooled = GlobalAveragePooling1D::new().call(&seq)?;
    let out = Concatenate::new().call(&[&pooled, &h])?;
    let outer = Model::new_with(&[x], &[out], BuildOptions::new().device(&dev()))?;
    let data = randn(&[2, 4, 3], 3)?;
    let y = outer.forward(&data, false)?;
    assert_eq!(y[0].dims(), [2, 4]);
    let again = Model::from_config(&outer.get_config())?;
    assert_eq!(again.get_config(), outer.get_config());
    Ok(())
}

fn tagger() -> Result<Model> {
    let tokens = Input::new([None]).dtype(DType::I64);
    let x = Embedding::new(8, 4).mask_zero(true).call(&tokens)?;
    let x = LSTM::new(6).return_sequences(true).call(&x)?;
    let x = GRU::new(5).return_sequences(true).go_backwards(true).call(&x)?;
    let out = Dense::new(3).activation("softmax").call(&x)?;
    Ok(Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()).seed(4))?)
}

/// A mask made by `Embedding(mask_zero)` passes through two recurrent
/// layers to the per-step loss and metric: the labels at padded steps do
/// not change them, and training leaves the padded outputs out.
#[test]
fn masks_reach_per_step_losses_and_metrics() -> Result<()> {
    let mut model = tagger()?;
    model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
    let ids = Tensor::new(vec![3i64, 1, 4, 0, 0, 2, 5, 1, 3, 0, 7, 0, 0, 0, 0], [3, 5], &dev())?;
    let (_, masks) = model.forward_masked(&ids, false)?;
    assert_eq!(
        masks[0].as_ref().expect("the mask reaches the output").to_vec::<f32>()?,
        [1., 1., 1., 0., 0., 1., 1., 1., 1., 0., 1., 0., 0., 0., 0.]
    );
    let labels = |pad: i64| -> Result<Tensor> {
        let real = [0i64, 1, 2, -1, -1, 2, 2, 0, 1, -1, 1, -1, -1, -1, -1];
        Ok(Tensor::new(real.iter().map(|&v| if v < 0 { pad } else { v }).collect::<Vec<_>>(), [3, 5], &dev())?)
    };
    let a = model.evaluate(&ids, &labels(0)?)?;
    let b = model.evaluate(&ids, &labels(2)?)?;
    assert_eq!(a["loss"], b["loss"]);
    assert_eq!(a["accuracy"], b["accuracy"]);
    Ok(())
}

/// A classifier over token sequences (Embedding → GRU → LSTM → Dense): a
/// sequence padded on the left or the right classifies as it does unpadded.
#[test]
fn a_padded_sequence_classifies_like_the_unpadded_one() -> Result<()> {
    let tokens = Input::new([None]).dtype(DType::I64);
    let x = Embedding::new(8, 4).mask_zero(true).call(&tokens)?;
    let x = stacked_recurrent(&x)?;
    let out = Dense::new(2).activation("softmax").call(&x)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()).seed(6))?;
    let padded = Tensor::new(vec![0i64, 0, 3, 1, 4, 3, 1, 4, 0, 0], [2, 5], &dev())?;
    let plain = Tensor::new(vec![3i64, 1, 4], [1, 3], &dev())?;
    let y = model.forward(&padded, false)?[0].to_vec::<f32>()?;
    let want = model.forward(&plain, false)?[0].to_vec::<f32>()?;
    for row in 0..2 {
        for k in 0..2 {
            assert!((y[row * 2 + k] - want[k]).abs() < 1e-6, "row {row}: {:?} vs {want:?}", &y[row * 2..row * 2 + 2]);
        }
    }
    Ok(())
}

fn stacked_recurrent(x: &SymbolicTensor) -> Result<SymbolicTensor> {
    // Stacked: a sequence-returning GRU feeding a last-output LSTM.
    let x = GRU::new(4).return_sequences(true).call(x)?;
    Ok(LSTM::new(3).call(&x)?)
}

/// Embedding(mask_zero) → Bidirectional(LSTM) → self-attention with a
/// residual Add and LayerNormalization → TimeDistributed(Dense): a tagger
/// whose mask reaches every layer.
fn attention_tagger() -> Result<Model> {
    let tokens = Input::new([None]).dtype(DType::I64).name("tokens");
    let x = Embedding::new(9, 4).mask_zero(true).call(&tokens)?;
    let x = Bidirectional::new(LSTM::new(3).return_sequences(true)).name("bilstm").call(&x)?;
    let a = MultiHeadAttention::new(2, 3).name("mha").call(&[&x, &x])?;
    let x = LayerNormalization::new().call(&Add::new().call(&[&x, &a])?)?;
    let out = TimeDistributed::new(Dense::new(3).activation("softmax")).name("head").call(&x)?;
    Ok(Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()).seed(8))?)
}

/// Right padding changes nothing at the real steps: the backward LSTM
/// starts at the last real step and the attention ignores padded keys.
#[test]
fn padding_changes_nothing_through_bidirectional_and_attention() -> Result<()> {
    let model = attention_tagger()?;
    let padded = Tensor::new(vec![3i64, 1, 4, 0, 0, 5, 2, 6, 7, 8], [2, 5], &dev())?;
    let plain = Tensor::new(vec![3i64, 1, 4], [1, 3], &dev())?;
    let (y, masks) = model.forward_masked(&padded, false)?;
    let y = y[0].to_vec::<f32>()?;
    let want = model.forward(&plain, false)?[0].to_vec::<f32>()?;
    for (k, w) in want.iter().enumerate() {
        assert!((y[k] - w).abs() < 1e-5, "step {}: {} vs {w}", k / 3, y[k]);
    }
    assert_eq!(
        masks[0].as_ref().expect("the mask reaches the output").to_vec::<f32>()?,
        [1., 1., 1., 0., 0., 1., 1., 1., 1., 1.]
    );
    Ok(())
}

/// The tagger trains (the loss falls), its summary names the wrapped
/// layers' weights, and a saved file gives the same outputs on every backend.
#[test]
fn attention_and_wrappers_train_save_and_load() -> Result<()> {
    let mut model = attention_tagger()?;
    let names: Vec<String> = model.weights().iter().map(|w| w.name.clone()).collect();
    for n in ["bilstm.forward_lstm.kernel", "bilstm.backward_lstm.recurrent_kernel", "mha.query.kernel", "head.kernel"]
    {
        assert!(names.iter().any(|w| w == n), "no weight {n} in {names:?}");
    }
    // Bidirectional: 2·4·3·(4 + 3 + 1); attention: 4 projections of 6.
    let lstm = 2 * 4 * 3 * (4 + 3 + 1);
    let mha = 3 * (6 * 2 * 3 + 2 * 3) + (2 * 3 * 6 + 6);
    assert_eq!(model.count_params(), 9 * 4 + lstm + mha + 2 * 6 + (6 * 3 + 3));
    model.compile(Adam::new(0.02), "sparse_categorical_crossentropy", &["accuracy"])?;
    let ids = Tensor::new(vec![3i64, 1, 4, 0, 0, 5, 2, 6, 7, 8, 1, 1, 2, 0, 0], [3, 5], &dev())?;
    let labels = Tensor::new(vec![0i64, 1, 2, 0, 0, 2, 1, 0, 1, 2, 1, 1, 0, 0, 0], [3, 5], &dev())?;
    let before = model.evaluate(&ids, &labels)?["loss"];
    model.fit(&ids, &labels, FitOptions::default().epochs(30).batch_size(3).verbose(0))?;
    let after = model.evaluate(&ids, &labels)?["loss"];
    assert!(after < 0.5 * before, "loss {before} → {after}");

    let path = std::env::temp_dir().join(format!("strata_attention_{}.safetensors", std::process::id()));
    model.save(&path)?;
    let want = model.forward(&ids, false)?[0].to_vec::<f32>()?;
    for backend in strata::backend::available() {
        let loaded = strata::load_model_on(&path, &strata::backend::by_name(backend)?)?;
        let got = loaded.forward(&ids.to_device(loaded.device())?, false)?[0].to_vec::<f32>()?;
        for (u, v) in got.iter().zip(&want) {
            assert!((u - v).abs() < 1e-5, "{backend}: {u} vs {v}");
        }
    }
    std::fs::remove_file(&path)?;
    Ok(())
}
