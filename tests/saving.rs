//! Saving and loading: architectures rebuilt from their config
//! (`Model::from_config`, `to_json` / `from_json`).

use anyhow::{ensure, Result};
use serde_json::{json, Value};
use strata::layers::{register_lambda, register_layer, Layer};
use strata::prelude::*;

fn native() -> Device {
    strata::backend::native()
}

/// `y = x·w ⊙ x·w`, a custom layer with one weight and one argument.
struct Squared {
    units: usize,
}

impl Layer for Squared {
    fn class_name(&self) -> &str {
        "SavingTestSquared"
    }
    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext) -> strata::Result<TensorSpec> {
        let features = inputs[0].last().unwrap_or(0);
        ctx.add_weight("w", [features, self.units], "glorot_uniform")?;
        Ok(inputs[0].with_last(self.units))
    }
    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> strata::Result<Tensor> {
        inputs[0].matmul(&ctx.weight("w")?)?.square()
    }
    fn config(&self) -> Value {
        json!({ "units": self.units })
    }
}

fn register_test_layers() {
    register_layer("SavingTestSquared", |c| {
        let units = c["units"]
            .as_u64()
            .ok_or_else(|| Error::Config(format!("SavingTestSquared needs `units`, received {c}")))?;
        Ok(Box::new(Squared { units: units as usize }) as Box<dyn Layer>)
    })
    .unwrap();
    register_lambda(&Lambda::new("saving_test_halve", |x| x.mul_scalar(0.5)));
}

fn randn(shape: &[usize], seed: u64, dev: &Device) -> Result<Tensor> {
    Ok(Tensor::rand_normal(shape.to_vec(), 0.0, 1.0, &mut Rng::seed(seed), dev)?)
}

/// `from_config(get_config())` gives the same config, and with the weights
/// copied by name the same predictions, bit for bit.
fn round_trip(model: &Model, inputs: &[Tensor]) -> Result<Model> {
    let config = model.get_config();
    let again = Model::from_config_with(&config, BuildOptions::new().device(model.device()).seed(99))?;
    ensure!(again.get_config() == config, "config changed:\n{}\n{}", again.get_config(), config);
    ensure!(again.to_json() == model.to_json());
    let names = |m: &Model| m.weights().into_iter().map(|w| w.name).collect::<Vec<_>>();
    ensure!(names(&again) == names(model), "{:?} vs {:?}", names(&again), names(model));
    let weights = model.weights();
    again.set_weights(weights.iter().map(|w| (w.name.as_str(), &w.value)))?;
    let (a, b) = (model.forward(inputs, false)?, again.forward(inputs, false)?);
    ensure!(a.len() == b.len());
    for (x, y) in a.iter().zip(&b) {
        ensure!(x.to_vec::<f32>()? == y.to_vec::<f32>()?, "predictions differ");
    }
    Ok(again)
}

#[test]
fn an_mlp_round_trips() -> Result<()> {
    let dev = native();
    let model = Sequential::new()
        .add(Input::new([6]))
        .add(Dense::new(8).activation("relu"))
        .add(Dropout::new(0.3))
        .add(LayerNormalization::new())
        .add(Dense::new(3).activation("softmax").name("probs"))
        .name("mlp")
        .seed(1)
        .build_on(&dev)?;
    let again = round_trip(&model, &[randn(&[5, 6], 2, &dev)?])?;
    assert_eq!(again.get_config()["class_name"], "Sequential");
    assert_eq!(again.name(), "mlp");
    assert_eq!(again.layer_names(), ["dense", "dropout", "layer_normalization", "probs"]);
    Ok(())
}

#[test]
fn a_two_input_two_output_functional_model_round_trips() -> Result<()> {
    let dev = native();
    let a = Input::new([4]).name("a");
    let b = Input::new([3]).name("b");
    let x = Concatenate::new().call(&[&a, &b])?;
    let x = Dense::new(8).activation("tanh").call(&x)?;
    let price = Dense::new(1).name("price").call(&x)?;
    let churn = Dense::new(1).activation("sigmoid").name("churn").call(&x)?;
    let model = Model::new_with(&[a, b], &[price, churn], BuildOptions::new().device(&dev).seed(3))?;
    let again = round_trip(&model, &[randn(&[5, 4], 4, &dev)?, randn(&[5, 3], 5, &dev)?])?;
    assert_eq!(again.input_names(), ["a", "b"]);
    assert_eq!(again.output_names(), ["price", "churn"]);
    Ok(())
}

#[test]
fn a_shared_layer_keeps_its_calls_and_one_set_of_weights() -> Result<()> {
    let dev = native();
    let (a, b) = (Input::new([4]), Input::new([4]));
    let shared = Dense::new(4).activation("relu").shared();
    let (ya, yb) = (shared.call(&a)?, shared.call(&b)?);
    let sum = Add::new().call(&[&ya, &yb])?;
    let again_a = shared.call(&sum.clone())?; // a third call, on a layer output
    let out = Dense::new(1).call(&again_a)?;
    let model = Model::new_with(&[a, b], &[out, yb], BuildOptions::new().device(&dev).seed(6))?;
    let again = round_trip(&model, &[randn(&[2, 4], 7, &dev)?, randn(&[2, 4], 8, &dev)?])?;
    let c = again.get_config();
    assert_eq!(c["layers"][0]["inbound_nodes"].as_array().unwrap().len(), 3, "{c}");
    assert_eq!(again.count_params(), model.count_params());
    Ok(())
}

#[test]
fn embedding_with_mask_zero_and_pooling_round_trips() -> Result<()> {
    let dev = native();
    let tokens = Input::new([None]).dtype(DType::I64).name("tokens");
    let x = Embedding::new(20, 4).mask_zero(true).call(&tokens)?;
    let x = GlobalAveragePooling1D::new().call(&x)?;
    let out = Dense::new(2).call(&x)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev).seed(8))?;
    let ids = Tensor::new(vec![3i64, 5, 0, 0, 7, 1, 2, 0], [2, 4], &dev)?;
    round_trip(&model, &[ids])?;
    Ok(())
}

#[test]
fn a_registered_lambda_and_custom_layer_round_trip() -> Result<()> {
    register_test_layers();
    let dev = native();
    let x = Input::new([5]);
    let y = Squared { units: 3 }.call(&x)?;
    let y = Lambda::new("saving_test_halve", |x| x.mul_scalar(0.5)).name("halve").call(&y)?;
    let model = Model::new_with(&[x], &[y], BuildOptions::new().device(&dev).seed(9))?;
    let again = round_trip(&model, &[randn(&[3, 5], 10, &dev)?])?;
    assert_eq!(again.layer_names(), ["saving_test_squared", "halve"]);
    assert_eq!(again.get_layer("saving_test_squared")?.class_name(), "SavingTestSquared");
    Ok(())
}

#[test]
fn a_nested_model_round_trips() -> Result<()> {
    let dev = native();
    let inner = Sequential::new()
        .add(Input::new([4]))
        .add(Dense::new(3).activation("relu"))
        .name("encoder")
        .seed(11)
        .build_on(&dev)?;
    let x = Input::new([4]);
    let z = inner.call(&x)?;
    let out = Dense::new(1).call(&z)?;
    let model = Model::new_with(&[x], &[out], BuildOptions::new().device(&dev).seed(12))?;
    let again = round_trip(&model, &[randn(&[2, 4], 13, &dev)?])?;
    assert_eq!(again.layer_names(), ["encoder", "dense"]);
    assert!(again.weight("encoder.dense.kernel").is_ok());
    Ok(())
}

#[test]
fn json_round_trips_and_bad_json_is_an_error() -> Result<()> {
    let model = Sequential::new().add(Input::new([2])).add(Dense::new(1)).build_on(&native())?;
    let again = Model::from_json(&model.to_json())?;
    assert_eq!(again.to_json(), model.to_json());
    let e = Model::from_json("[1, 2").err().unwrap().to_string();
    assert!(e.contains("JSON"), "{e}");
    Ok(())
}

fn config_error(config: &Value) -> String {
    match Model::from_config_with(config, BuildOptions::new().device(&native())) {
        Ok(_) => panic!("expected an error for {config}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn unknown_layers_and_lambdas_are_named_with_what_is_registered() -> Result<()> {
    register_test_layers();
    let x = Input::new([5]);
    let y = Squared { units: 2 }.call(&x)?;
    let y = Lambda::new("saving_test_halve", |x| x.mul_scalar(0.5)).call(&y)?;
    let model = Model::new_with(&[x], &[y], BuildOptions::new().device(&native()))?;

    let mut c = model.get_config();
    c["layers"][0]["class_name"] = json!("NotALayer");
    let e = config_error(&c);
    assert!(e.contains("`NotALayer`") && e.contains("Dense") && e.contains("SavingTestSquared"), "{e}");

    let mut c = model.get_config();
    c["layers"][1]["config"]["function"] = json!("not_registered_fn");
    let e = config_error(&c);
    assert!(e.contains("not_registered_fn") && e.contains("saving_test_halve"), "{e}");
    Ok(())
}

#[test]
fn malformed_configs_are_errors() -> Result<()> {
    let a = Input::new([3]).name("a");
    let h = Dense::new(2).call(&a)?;
    let out = Dense::new(1).call(&h)?;
    let model = Model::new_with(&[a], &[out], BuildOptions::new().device(&native()))?;
    let good = model.get_config();
    type Mutation = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(&str, Mutation, &str)> = vec![
        ("not an object", Box::new(|c| *c = json!([1])), "object"),
        ("no class", Box::new(|c| c["class_name"] = json!(null)), "class_name"),
        ("unknown model class", Box::new(|c| c["class_name"] = json!("Graph")), "Graph"),
        ("no layers", Box::new(|c| *c.get_mut("layers").unwrap() = json!(null)), "layers"),
        ("unknown producer", Box::new(|c| c["layers"][1]["inbound_nodes"][0][0][0] = json!("nope")), "`nope`"),
        ("call out of range", Box::new(|c| c["layers"][1]["inbound_nodes"][0][0][1] = json!(4)), "call 4"),
        ("bad reference", Box::new(|c| c["outputs"][0] = json!("dense_1")), "call_index"),
        ("duplicate name", Box::new(|c| c["layers"][1]["name"] = json!("dense")), "twice"),
        ("cycle", Box::new(|c| c["layers"][0]["inbound_nodes"][0][0] = json!(["dense_1", 0])), "cycle"),
        ("bad shape", Box::new(|c| c["inputs"][0]["config"]["shape"][0] = json!(-3)), "axis size"),
        ("bad dtype", Box::new(|c| c["inputs"][0]["config"]["dtype"] = json!("complex")), "dtype"),
        ("bad layer argument", Box::new(|c| c["layers"][0]["config"]["units"] = json!("many")), "Dense"),
        ("never called", Box::new(|c| c["layers"][0]["inbound_nodes"] = json!([])), "never called"),
    ];
    for (what, mutate, expected) in cases {
        let mut c = good.clone();
        mutate(&mut c);
        let e = config_error(&c);
        assert!(e.contains(expected), "{what}: `{e}` does not mention `{expected}`");
    }
    Ok(())
}

// ------------------------------------------------------------ whole models

fn devices() -> Vec<Device> {
    strata::backend::available().into_iter().map(|n| strata::backend::by_name(n).unwrap()).collect()
}

fn temp_path(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("strata_saving_{}_{name}.safetensors", std::process::id()))
}

/// A small classifier and data it can learn.
fn classifier(dev: &Device) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([5]))
        .add(Dense::new(8).activation("relu"))
        .add(Dense::new(3).activation("softmax"))
        .seed(21)
        .build_on(dev)?)
}

fn data(dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = randn(&[40, 5], 22, dev)?;
    let y: Vec<i64> = (0..40).map(|i| (i * 7 % 3) as i64).collect();
    Ok((x, Tensor::new(y, [40], dev)?))
}

fn fit(model: &mut Model, x: &Tensor, y: &Tensor, epochs: usize) -> Result<()> {
    model.fit(x, y, FitOptions::default().epochs(epochs).batch_size(16).shuffle(false).verbose(0))?;
    Ok(())
}

fn max_diff(a: &Model, b: &Model) -> Result<f32> {
    let mut worst = 0f32;
    for (wa, wb) in a.weights().iter().zip(b.weights()) {
        ensure!(wa.name == wb.name);
        for (p, q) in wa.value.to_vec::<f32>()?.iter().zip(wb.value.to_vec::<f32>()?) {
            worst = worst.max((p - q).abs());
        }
    }
    Ok(worst)
}

#[test]
fn a_saved_model_loads_with_its_weights_compile_config_and_optimizer_state() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let mut model = classifier(&dev)?;
        model.compile(
            Adam::new(0.01).clipnorm(1.0),
            "sparse_categorical_crossentropy",
            &["accuracy", "sparse_top_k_categorical_accuracy"],
        )?;
        fit(&mut model, &x, &y, 1)?;
        let path = temp_path(&format!("whole_{}", dev.name()));
        model.save(&path)?;

        let again = strata::load_model_on(&path, &dev)?;
        assert_eq!(again.get_config(), model.get_config());
        assert_eq!(again.compile_config(), model.compile_config());
        assert_eq!(max_diff(&again, &model)?, 0.0);
        assert_eq!(again.predict(&x)?.to_vec::<f32>()?, model.predict(&x)?.to_vec::<f32>()?);
        let report = again.evaluate(&x, &y)?;
        assert!(
            report.contains_key("accuracy") && report.contains_key("sparse_top_k_categorical_accuracy"),
            "{report:?}"
        );

        // The file: weights, optimizer slots and the metadata keys.
        let bytes = std::fs::read(&path)?;
        let file = safetensors::SafeTensors::deserialize(&bytes)?;
        let mut names = file.names();
        names.sort_unstable();
        assert!(names.contains(&"dense.kernel") && names.contains(&"optimizer.dense.kernel.momentum"), "{names:?}");
        assert!(names.contains(&"optimizer.dense_1.bias.velocity"), "{names:?}");
        let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
        let meta = header.metadata().clone().unwrap();
        assert_eq!(meta["format"], "strata");
        assert_eq!(meta["format_version"], "1");
        assert_eq!(meta["optimizer_iterations"], "3");
        assert!(meta.contains_key("model_config") && meta.contains_key("compile_config"));

        // Leaving the optimizer out: a fresh optimizer on load.
        model.save_with(&path, strata::SaveOptions::new().include_optimizer(false))?;
        let fresh = strata::load_model_on(&path, &dev)?;
        assert_eq!(fresh.compile_config(), model.compile_config());
        let bytes = std::fs::read(&path)?;
        assert!(!safetensors::SafeTensors::deserialize(&bytes)?.names().iter().any(|n| n.starts_with("optimizer.")));
        std::fs::remove_file(&path).ok();
    }
    Ok(())
}

#[test]
fn an_uncompiled_multi_output_model_loads() -> Result<()> {
    register_test_layers();
    let dev = native();
    let a = Input::new([4]).name("a");
    let b = Input::new([3]).name("b");
    let x = Concatenate::new().call(&[&a, &b])?;
    let x = Squared { units: 3 }.call(&x)?;
    let p = Dense::new(1).name("p").call(&x)?;
    let q = Lambda::new("saving_test_halve", |x| x.mul_scalar(0.5)).call(&x)?;
    let model = Model::new_with(&[a, b], &[p, q], BuildOptions::new().device(&dev).seed(30))?;
    let path = temp_path("uncompiled");
    model.save(&path)?;
    let again = strata::load_model_on(&path, &dev)?;
    assert!(!again.is_compiled());
    let xs = [randn(&[2, 4], 31, &dev)?, randn(&[2, 3], 32, &dev)?];
    let (ya, yb) = (model.forward(&xs, false)?, again.forward(&xs, false)?);
    for (u, v) in ya.iter().zip(&yb) {
        assert_eq!(u.to_vec::<f32>()?, v.to_vec::<f32>()?);
    }
    std::fs::remove_file(&path).ok();
    Ok(())
}

#[test]
fn a_compiled_two_output_model_keeps_losses_weights_and_metrics_per_output() -> Result<()> {
    let dev = native();
    let a = Input::new([4]);
    let h = Dense::new(6).activation("relu").call(&a)?;
    let price = Dense::new(1).name("price").call(&h)?;
    let churn = Dense::new(1).activation("sigmoid").name("churn").call(&h)?;
    let mut model = Model::new_with(&[a], &[price, churn], BuildOptions::new().device(&dev).seed(40))?;
    model.compile(
        SGD::new(0.05).momentum(0.9),
        Losses::named([
            ("price", Loss::Huber { delta: 2.0 }),
            ("churn", Loss::BinaryCrossentropy { from_logits: false }),
        ])?
        .weights([1.0, 0.3]),
        Metrics::named([("churn", vec!["accuracy".into()]), ("price", vec!["mae".into()])]).weighted(),
    )?;
    let path = temp_path("two_outputs");
    model.save(&path)?;
    let again = strata::load_model_on(&path, &dev)?;
    assert_eq!(again.compile_config(), model.compile_config());
    std::fs::remove_file(&path).ok();
    Ok(())
}

/// Training 2 epochs, saving, loading and training 2 more gives the weights
/// of 4 epochs in one go (Adam's moments and step count are restored).
#[test]
fn training_resumes_exactly_after_save_and_load() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let compile = |m: &mut Model| m.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"]);

        let mut straight = classifier(&dev)?;
        compile(&mut straight)?;
        fit(&mut straight, &x, &y, 4)?;

        let mut first = classifier(&dev)?;
        compile(&mut first)?;
        fit(&mut first, &x, &y, 2)?;
        let path = temp_path(&format!("resume_{}", dev.name()));
        first.save(&path)?;
        let mut resumed = strata::load_model_on(&path, &dev)?;
        fit(&mut resumed, &x, &y, 2)?;
        std::fs::remove_file(&path).ok();

        let d = max_diff(&resumed, &straight)?;
        assert!(d <= 1e-6, "{}: resumed weights differ by {d}", dev.name());
        // Without the optimizer state the trajectories part.
        let mut cold = classifier(&dev)?;
        compile(&mut cold)?;
        fit(&mut cold, &x, &y, 2)?;
        cold.save_with(&path, strata::SaveOptions::new().include_optimizer(false))?;
        let mut cold = strata::load_model_on(&path, &dev)?;
        fit(&mut cold, &x, &y, 2)?;
        std::fs::remove_file(&path).ok();
        assert!(max_diff(&cold, &straight)? > 1e-4, "{}: the optimizer state made no difference", dev.name());
    }
    Ok(())
}

#[test]
fn a_model_saved_on_native_predicts_the_same_on_candle() -> Result<()> {
    let names = strata::backend::available();
    if !names.contains(&"candle") {
        return Ok(());
    }
    let native = native();
    let candle = strata::backend::by_name("candle")?;
    let (x, y) = data(&native)?;
    let mut model = classifier(&native)?;
    model.compile("adam", "sparse_categorical_crossentropy", ())?;
    fit(&mut model, &x, &y, 2)?;
    let path = temp_path("cross_backend");
    model.save(&path)?;
    let on_candle = strata::load_model_on(&path, &candle)?;
    assert_eq!(on_candle.device().name(), candle.name());
    let want = model.predict(&x)?.to_vec::<f32>()?;
    let got = on_candle.predict(&x.to_device(&candle)?)?.to_vec::<f32>()?;
    for (a, b) in want.iter().zip(&got) {
        assert!((a - b).abs() <= 1e-5, "{a} vs {b}");
    }
    // And back: saved on candle, loaded on native.
    on_candle.save(&path)?;
    let back = strata::load_model_on(&path, &native)?;
    assert_eq!(max_diff(&back, &model)?, 0.0);
    std::fs::remove_file(&path).ok();
    Ok(())
}
