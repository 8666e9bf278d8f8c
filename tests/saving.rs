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
    again.set_weights_by_name(weights.iter().map(|w| (w.name.as_str(), &w.value)))?;
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

/// A temporary path no other call shares (tests run in parallel).
fn unique_temp_path(name: &str) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    temp_path(&format!("{name}_{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)))
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

/// A save that fails (here: its temporary file cannot be created) is an
/// error and leaves the earlier file as it was.
#[test]
fn a_failed_save_leaves_the_previous_file_intact() -> Result<()> {
    let dev = native();
    let dir = std::env::temp_dir().join(format!("strata_saving_atomic_{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let path = dir.join("model.safetensors");
    let model = classifier(&dev)?;
    model.save(&path)?;
    let before = std::fs::read(&path)?;

    // Occupy the temporary file's name with a directory.
    let blocker = dir.join(format!(".model.safetensors.tmp-{}", std::process::id()));
    std::fs::create_dir(&blocker)?;
    let other = Sequential::new().add(Input::new([5])).add(Dense::new(2)).build_on(&dev)?;
    let e = other.save(&path).unwrap_err().to_string();
    assert!(e.contains("cannot save to") && e.contains("model.safetensors"), "{e}");
    assert_eq!(std::fs::read(&path)?, before);
    assert_eq!(strata::load_model_on(&path, &dev)?.get_config(), model.get_config());
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// A user's metric object: `compile_config` keeps only its name.
#[derive(Default)]
struct MeanPrediction {
    total: f64,
    batches: f64,
}

impl Metric for MeanPrediction {
    fn name(&self) -> &str {
        "mean_prediction"
    }
    fn update_state(
        &mut self,
        _: &Tensor,
        y_pred: &Tensor,
        _: Option<&Tensor>,
        _: Option<&Tensor>,
    ) -> strata::Result<()> {
        self.total += f64::from(y_pred.mean_all()?.to_scalar::<f32>()?);
        self.batches += 1.0;
        Ok(())
    }
    fn result(&self) -> f64 {
        self.total / self.batches.max(1.0)
    }
    fn reset_state(&mut self) {
        *self = Self::default();
    }
    fn box_clone_fresh(&self) -> Box<dyn Metric> {
        Box::new(Self::default())
    }
}

/// A compile state that cannot be restored (a custom metric object) makes
/// `load_model` an error pointing to `compile(false)`, which loads the
/// architecture and weights uncompiled; the user compiles again.
#[test]
fn a_model_whose_compile_state_cannot_be_restored_loads_uncompiled() -> Result<()> {
    use strata::LoadOptions;
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let mut model = classifier(&dev)?;
        let metrics = || vec![MetricSpec::from(MeanPrediction::default())];
        model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", metrics())?;
        fit(&mut model, &x, &y, 1)?;
        let path = temp_path(&format!("custom_metric_{}", dev.name()));
        model.save(&path)?;

        let e = strata::load_model_on(&path, &dev).unwrap_err().to_string();
        expect(e, &["compile_config", "mean_prediction", "LoadOptions::new().compile(false)"]);
        let mut again = strata::load_model_with(&path, LoadOptions::new().device(&dev).compile(false))?;
        assert!(!again.is_compiled());
        assert_eq!(again.device().name(), dev.name());
        assert_eq!(max_diff(&again, &model)?, 0.0);
        assert_eq!(again.predict(&x)?.to_vec::<f32>()?, model.predict(&x)?.to_vec::<f32>()?);
        again.compile(Adam::new(0.01), "sparse_categorical_crossentropy", metrics())?;
        assert!(again.evaluate(&x, &y)?.contains_key("mean_prediction"));

        // compile(false) on a model that would compile: also uncompiled.
        let mut plain = classifier(&dev)?;
        plain.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        plain.save(&path)?;
        assert!(!strata::load_model_with(&path, LoadOptions::new().device(&dev).compile(false))?.is_compiled());
        assert!(strata::load_model_with(&path, LoadOptions::new().device(&dev))?.is_compiled());
        std::fs::remove_file(&path).ok();
    }
    Ok(())
}

// -------------------------------------------------------- half precision

/// A 64-128-10 classifier, trained for one epoch with Adam when `train`.
fn wide(dev: &Device, seed: u64, train: bool) -> Result<Model> {
    let mut model = Sequential::new()
        .add(Input::new([64]))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .seed(seed)
        .build_on(dev)?;
    if train {
        model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", ())?;
        let x = randn(&[32, 64], 60, dev)?;
        let y = Tensor::new((0..32).map(|i| (i * 3 % 10) as i64).collect::<Vec<_>>(), [32], dev)?;
        fit(&mut model, &x, &y, 1)?;
    }
    Ok(model)
}

/// The bytes after the header: the tensors' data.
fn data_len(bytes: &[u8]) -> usize {
    bytes.len() - 8 - u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize
}

/// Every tensor of an `f32` file, by name.
fn f32_tensors(bytes: &[u8]) -> Result<std::collections::BTreeMap<String, Vec<f32>>> {
    let file = safetensors::SafeTensors::deserialize(bytes)?;
    file.tensors()
        .into_iter()
        .map(|(n, v)| {
            ensure!(v.dtype() == safetensors::Dtype::F32, "{n} is {:?}", v.dtype());
            Ok((n, v.data().chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect()))
        })
        .collect()
}

/// `|a - b| <= max(rel·|a|, floor)` everywhere; returns the largest
/// relative error where the relative bound applies.
fn within(what: &str, a: &[f32], b: &[f32], rel: f32, floor: f32) -> Result<f32> {
    ensure!(a.len() == b.len(), "{what}: {} vs {} values", a.len(), b.len());
    let mut worst = 0f32;
    for (x, y) in a.iter().zip(b) {
        let err = (x - y).abs();
        ensure!(err <= (rel * x.abs()).max(floor), "{what}: {x} became {y} (error {err:e}, allowed {rel:e}·|x|)");
        if *x != 0.0 && rel * x.abs() >= floor {
            worst = worst.max(err / x.abs());
        }
    }
    Ok(worst)
}

/// f16 and bf16 files: each tensor stored in that dtype, half the data
/// bytes, and weights and Adam's slots back within the format's rounding
/// (f16: 2^-11 relative, 2^-25 absolute below its normal range; bf16:
/// 2^-8), through `load_model` and `load_weights`, on each backend.
#[test]
fn half_precision_files_round_trip_within_their_precision() -> Result<()> {
    use strata::{SaveDType, SaveOptions};
    for dev in devices() {
        let model = wide(&dev, 61, true)?;
        let exact_path = temp_path(&format!("half_exact_{}", dev.name()));
        model.save(&exact_path)?;
        let exact = std::fs::read(&exact_path)?;
        let reference = f32_tensors(&exact)?;
        assert!(reference.contains_key("optimizer.dense.kernel.velocity"), "{:?}", reference.keys());

        let cases = [
            (SaveDType::F16, safetensors::Dtype::F16, 2f32.powi(-11), 2f32.powi(-25)),
            (SaveDType::BF16, safetensors::Dtype::BF16, 2f32.powi(-8), 0.0),
        ];
        for (dtype, stored, rel, floor) in cases {
            let tag = format!("{dtype:?}_{}", dev.name());
            let path = temp_path(&format!("half_{tag}"));
            model.save_with(&path, SaveOptions::new().dtype(dtype))?;
            let bytes = std::fs::read(&path)?;
            let file = safetensors::SafeTensors::deserialize(&bytes)?;
            assert!(file.tensors().iter().all(|(_, v)| v.dtype() == stored), "{tag}: not all {stored:?}");
            assert_eq!(2 * data_len(&bytes), data_len(&exact), "{tag}");
            assert!(bytes.len() * 100 <= exact.len() * 55, "{tag}: {} vs {} bytes", bytes.len(), exact.len());

            // load_model: weights and optimizer slots, saved again as f32 to compare.
            let again = strata::load_model_on(&path, &dev)?;
            assert_eq!(again.compile_config(), model.compile_config());
            let back_path = temp_path(&format!("half_back_{tag}"));
            again.save(&back_path)?;
            let back = f32_tensors(&std::fs::read(&back_path)?)?;
            assert_eq!(back.keys().collect::<Vec<_>>(), reference.keys().collect::<Vec<_>>());
            let mut worst = 0f32;
            for (name, want) in &reference {
                worst = worst.max(within(&format!("{tag} {name}"), want, &back[name], rel, floor)?);
            }
            assert!(worst > rel / 2.0, "{tag}: worst relative error {worst:e}: no rounding happened?");

            // Weights only, into a model with other initial weights.
            model.save_weights_with(&path, SaveOptions::new().dtype(dtype))?;
            let fresh = wide(&dev, 62, false)?;
            fresh.load_weights(&path)?;
            for (w, v) in model.weights().iter().zip(fresh.weights()) {
                within(&format!("{tag} {}", w.name), &w.value.to_vec::<f32>()?, &v.value.to_vec::<f32>()?, rel, floor)?;
            }
            for p in [&path, &back_path] {
                std::fs::remove_file(p).ok();
            }
        }
        std::fs::remove_file(&exact_path).ok();
    }
    Ok(())
}

/// A weight beyond f16's range (±65504) is an error naming it, and leaves
/// the earlier file intact; bf16 has f32's range.
#[test]
fn f16_refuses_weights_beyond_its_range() -> Result<()> {
    use strata::{SaveDType, SaveOptions};
    let dev = native();
    let model = classifier(&dev)?;
    let path = temp_path("f16_range");
    model.save_weights(&path)?;
    let before = std::fs::read(&path)?;
    let mut kernel = model.weight("dense_1.kernel")?.to_vec::<f32>()?;
    kernel[4] = 1.0e5;
    model.set_weights_by_name([("dense_1.kernel", &Tensor::new(kernel, [8, 3], &dev)?)])?;
    let e = model.save_weights_with(&path, SaveOptions::new().dtype(SaveDType::F16)).unwrap_err().to_string();
    expect(e, &["dense_1.kernel", "F16", "1e5", "BF16"]);
    assert_eq!(std::fs::read(&path)?, before);
    model.save_weights_with(&path, SaveOptions::new().dtype(SaveDType::BF16))?;
    let other = classifier(&dev)?;
    other.load_weights(&path)?;
    let got = other.weight("dense_1.kernel")?.to_vec::<f32>()?[4];
    assert!((got - 1.0e5).abs() <= 1.0e5 * 2f32.powi(-8), "{got}");
    std::fs::remove_file(&path).ok();
    Ok(())
}

/// A model saved as bf16 on native loads on candle with the predictions of
/// the same bf16 weights on native (within 1e-5), and near the f32 model's.
#[test]
fn a_bf16_model_saved_on_native_loads_on_candle() -> Result<()> {
    use strata::{SaveDType, SaveOptions};
    if !strata::backend::available().contains(&"candle") {
        return Ok(());
    }
    let native = native();
    let candle = strata::backend::by_name("candle")?;
    let (x, y) = data(&native)?;
    let mut model = classifier(&native)?;
    model.compile("adam", "sparse_categorical_crossentropy", ())?;
    fit(&mut model, &x, &y, 2)?;
    let path = temp_path("bf16_cross_backend");
    model.save_with(&path, SaveOptions::new().dtype(SaveDType::BF16))?;
    let on_candle = strata::load_model_on(&path, &candle)?;
    let on_native = strata::load_model_on(&path, &native)?;
    assert_eq!(on_candle.device().name(), candle.name());
    assert_eq!(max_diff(&on_candle, &on_native)?, 0.0);
    let f32_preds = model.predict(&x)?.to_vec::<f32>()?;
    let native_preds = on_native.predict(&x)?.to_vec::<f32>()?;
    let candle_preds = on_candle.predict(&x.to_device(&candle)?)?.to_vec::<f32>()?;
    for ((a, b), c) in native_preds.iter().zip(&candle_preds).zip(&f32_preds) {
        assert!((a - b).abs() <= 1e-5, "native {a} vs candle {b}");
        assert!((a - c).abs() <= 2e-2, "bf16 {a} vs f32 {c}");
    }
    std::fs::remove_file(&path).ok();
    Ok(())
}

// ------------------------------------------------------- skip_mismatch

fn dense_stack(dev: &Device, layers: &[(&str, usize)], seed: u64) -> Result<Model> {
    let mut s = Sequential::new().add(Input::new([5]));
    for (name, units) in layers {
        s = s.add(Dense::new(*units).name(name));
    }
    Ok(s.seed(seed).build_on(dev)?)
}

fn values(model: &Model, name: &str) -> Result<Vec<f32>> {
    Ok(model.weight(name)?.to_vec::<f32>()?)
}

/// Keras' `skip_mismatch`: what matches by name and shape loads, the rest
/// is reported (missing in the file, shape differs with both shapes,
/// unexpected in the file, a dtype that does not load); without it, the
/// same file is one error listing every mismatch, and nothing loads.
#[test]
fn skip_mismatch_loads_what_matches_and_reports_the_rest() -> Result<()> {
    use strata::{LoadWeightsOptions, SkipReason, Skipped};
    for dev in devices() {
        let saved = dense_stack(&dev, &[("body", 8), ("head", 3), ("aux", 2)], 70)?;
        let path = temp_path(&format!("skip_{}", dev.name()));
        saved.save_weights(&path)?;
        let target = || dense_stack(&dev, &[("body", 8), ("head", 4), ("tail", 2)], 71);

        let model = target()?;
        let before = model.snapshot_weights()?;
        let e = model.load_weights(&path).unwrap_err().to_string();
        expect(
            e,
            &[
                "6 mismatches",
                "`head.kernel` is [8, 3] in the file but [8, 4] in the model",
                "`head.bias` is [3] in the file but [4] in the model",
                "no tensor named `tail.kernel` in the file (the model's weight is [4, 2])",
                "`aux.kernel` is in the file, but the model does not have it",
                "skip_mismatch",
            ],
        );
        let fresh = target()?;
        fresh.restore_weights(&before)?;
        assert_eq!(max_diff(&model, &fresh)?, 0.0, "a failed load changed the model");

        let report = model.load_weights_with(&path, LoadWeightsOptions::new().skip_mismatch(true))?;
        assert_eq!(report.loaded, ["body.kernel", "body.bias"]);
        let skip = |name: &str, reason| Skipped { name: name.into(), file_name: None, reason };
        assert_eq!(
            report.skipped,
            [
                skip("tail.kernel", SkipReason::MissingInFile { model: vec![4, 2] }),
                skip("tail.bias", SkipReason::MissingInFile { model: vec![2] }),
                skip("aux.bias", SkipReason::UnexpectedInFile),
                skip("aux.kernel", SkipReason::UnexpectedInFile),
                skip("head.bias", SkipReason::ShapeDiffers { model: vec![4], file: vec![3] }),
                skip("head.kernel", SkipReason::ShapeDiffers { model: vec![8, 4], file: vec![8, 3] }),
            ]
        );
        assert!(!report.is_complete());
        let shown = report.to_string();
        assert!(shown.starts_with("loaded 2 weight(s); skipped 6:") && shown.contains("head.kernel"), "{shown}");
        assert_eq!(values(&model, "body.kernel")?, values(&saved, "body.kernel")?);
        for kept in ["head.kernel", "tail.kernel", "tail.bias"] {
            assert_eq!(values(&model, kept)?, values(&fresh, kept)?, "{kept} changed");
        }

        // A complete file reports nothing skipped.
        let report = saved.load_weights_with(&path, LoadWeightsOptions::new())?;
        assert!(report.is_complete() && report.loaded.len() == 6, "{report}");
        std::fs::remove_file(&path).ok();
    }
    Ok(())
}

/// A tensor that is not floating point is an error naming its dtype, or
/// skipped as such.
#[test]
fn integer_tensors_do_not_load_as_weights() -> Result<()> {
    use strata::{LoadWeightsOptions, SkipReason};
    let dev = native();
    let model = dense_stack(&dev, &[("body", 2)], 72)?;
    let kernel: Vec<u8> = vec![0u8; 5 * 2 * 4];
    let bias: Vec<u8> = [7i64, 9].iter().flat_map(|v| v.to_le_bytes()).collect();
    let views = vec![
        ("body.kernel", safetensors::tensor::TensorView::new(safetensors::Dtype::F32, vec![5, 2], &kernel)?),
        ("body.bias", safetensors::tensor::TensorView::new(safetensors::Dtype::I64, vec![2], &bias)?),
    ];
    let path = temp_path("integer_tensor");
    std::fs::write(&path, safetensors::serialize(views, None)?)?;
    expect(model.load_weights(&path).unwrap_err().to_string(), &["`body.bias` is I64 in the file", "F16"]);
    let report = model.load_weights_with(&path, LoadWeightsOptions::new().skip_mismatch(true))?;
    assert_eq!(report.loaded, ["body.kernel"]);
    assert_eq!(report.skipped[0].reason, SkipReason::UnsupportedDType { dtype: "I64".into() });
    assert_eq!(values(&model, "body.kernel")?, vec![0.0; 10]);
    std::fs::remove_file(&path).ok();
    Ok(())
}

// ------------------------------------------------------------- bad files

/// A valid file: a compiled, trained model with its optimizer state.
fn valid_file() -> Result<Vec<u8>> {
    let dev = native();
    let (x, y) = data(&dev)?;
    let mut model = classifier(&dev)?;
    model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
    fit(&mut model, &x, &y, 1)?;
    let path = unique_temp_path("valid_source");
    model.save(&path)?;
    let bytes = std::fs::read(&path)?;
    std::fs::remove_file(&path).ok();
    Ok(bytes)
}

/// A file whose model uses every built-in layer type, a nested model and a
/// registered Lambda (uncompiled).
fn rich_file() -> Result<Vec<u8>> {
    register_test_layers();
    let dev = native();
    let tokens = Input::new([6]).dtype(DType::I64).name("tokens");
    let feats = Input::new([3, 2]).name("feats");
    let t = Embedding::new(30, 4).mask_zero(true).call(&tokens)?;
    let t = LayerNormalization::new().call(&t)?;
    let t = GlobalAveragePooling1D::new().call(&t)?;
    let f = Flatten::new().call(&feats)?;
    let f = Dense::new(4).call(&f)?;
    let f = Dropout::new(0.2).call(&f)?;
    let sum = Add::new().call(&[&t, &f])?;
    let r = Reshape::new([2, -1]).call(&sum)?;
    let r = Flatten::new().call(&r)?;
    let m = Masking::new(-1.0).call(&feats)?;
    let m = GlobalMaxPooling1D::new().call(&m)?;
    let x = Concatenate::new().call(&[&sum, &r, &m])?;
    let x = ActivationLayer::new("relu").call(&x)?;
    let x = Lambda::new("saving_test_halve", |x| x.mul_scalar(0.5)).call(&x)?;
    let x = Squared { units: 3 }.call(&x)?;
    let inner = Sequential::new().add(Input::new([3])).add(Dense::new(2)).name("head").build_on(&dev)?;
    let out = inner.call(&x)?;
    let model = Model::new_with(&[tokens, feats], &[out], BuildOptions::new().device(&dev).seed(50))?;
    let path = unique_temp_path("rich_source");
    model.save(&path)?;
    let bytes = std::fs::read(&path)?;
    std::fs::remove_file(&path).ok();
    Ok(bytes)
}

/// `load_model` on these bytes; returns the error or `None` when it loaded.
fn try_load(bytes: &[u8], tag: &str) -> Option<String> {
    let path = unique_temp_path(&format!("bad_{tag}"));
    std::fs::write(&path, bytes).unwrap();
    let result = strata::load_model_on(&path, &native());
    std::fs::remove_file(&path).ok();
    result.err().map(|e| e.to_string())
}

fn load_err(bytes: &[u8], tag: &str) -> String {
    try_load(bytes, tag).unwrap_or_else(|| panic!("{tag}: the file loaded"))
}

/// The file with its JSON header rewritten by `f` (the data left as is).
fn with_header(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    f(&mut header);
    let text = header.to_string().into_bytes();
    let mut out = (text.len() as u64).to_le_bytes().to_vec();
    out.extend(text);
    out.extend(&bytes[8 + n..]);
    out
}

/// The file with one metadata entry set (`None` removes it).
fn with_metadata(bytes: &[u8], key: &str, value: Option<String>) -> Vec<u8> {
    with_header(bytes, |h| {
        let meta = h["__metadata__"].as_object_mut().unwrap();
        match value {
            Some(v) => meta.insert(key.to_string(), Value::String(v)),
            None => meta.remove(key),
        };
    })
}

/// The file rebuilt from its tensors after `f` edits the list.
fn with_tensors(bytes: &[u8], f: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<u8>)>)) -> Vec<u8> {
    let file = safetensors::SafeTensors::deserialize(bytes).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> =
        file.tensors().into_iter().map(|(n, v)| (n, v.shape().to_vec(), v.data().to_vec())).collect();
    f(&mut tensors);
    let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = tensors
        .iter()
        .map(|(n, s, d)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), d).unwrap())
        })
        .collect();
    safetensors::serialize(views, header.metadata().clone()).unwrap()
}

fn model_config(bytes: &[u8]) -> Value {
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).unwrap();
    serde_json::from_str(&header.metadata().as_ref().unwrap()["model_config"]).unwrap()
}

fn with_model_config(bytes: &[u8], f: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut config = model_config(bytes);
    f(&mut config);
    with_metadata(bytes, "model_config", Some(config.to_string()))
}

fn expect(message: String, parts: &[&str]) {
    for p in parts {
        assert!(message.contains(p), "`{message}` does not mention `{p}`");
    }
}

#[test]
fn the_valid_file_loads() -> Result<()> {
    assert_eq!(try_load(&valid_file()?, "valid"), None);
    assert_eq!(try_load(&rich_file()?, "rich"), None);
    Ok(())
}

#[test]
fn broken_safetensors_files_are_errors() -> Result<()> {
    let good = valid_file()?;
    expect(load_err(&[], "empty"), &["not a valid safetensors file", "empty"]);
    expect(load_err(&good[..5], "five_bytes"), &["not a valid safetensors file"]);
    expect(load_err(&good[..good.len() - 3], "truncated_data"), &["not a valid safetensors file"]);
    expect(load_err(&good[..100], "truncated_header"), &["not a valid safetensors file"]);

    let mut beyond = good.clone();
    beyond[..8].copy_from_slice(&(good.len() as u64 + 10).to_le_bytes());
    expect(load_err(&beyond, "header_beyond_file"), &["not a valid safetensors file"]);
    let mut huge = good.clone();
    huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    expect(load_err(&huge, "header_huge"), &["not a valid safetensors file"]);

    let n = u64::from_le_bytes(good[..8].try_into()?) as usize;
    let mut not_json = good.clone();
    not_json[8..8 + n].fill(b'x');
    expect(load_err(&not_json, "header_not_json"), &["not a valid safetensors file"]);
    let mut not_utf8 = good.clone();
    not_utf8[9] = 0xff;
    expect(load_err(&not_utf8, "header_not_utf8"), &["not a valid safetensors file"]);

    let out_of_range = with_header(&good, |h| h["dense.bias"]["data_offsets"][1] = json!(1u64 << 40));
    expect(load_err(&out_of_range, "offsets_out_of_range"), &["not a valid safetensors file"]);
    let wrong_size = with_header(&good, |h| h["dense.bias"]["shape"] = json!([9]));
    expect(load_err(&wrong_size, "size_not_shape_times_dtype"), &["not a valid safetensors file"]);
    let wrong_dtype = with_header(&good, |h| h["dense.bias"]["dtype"] = json!("I32"));
    expect(load_err(&wrong_dtype, "dtype"), &["dense.bias", "I32"]);
    let overflow = with_header(&good, |h| h["dense.bias"]["shape"] = json!([1u64 << 62, 1u64 << 62]));
    expect(load_err(&overflow, "shape_overflow"), &["not a valid safetensors file"]);
    Ok(())
}

#[test]
fn wrong_tensors_are_errors_naming_them() -> Result<()> {
    let good = valid_file()?;
    let missing = with_tensors(&good, |t| t.retain(|(n, _, _)| n != "dense_1.kernel"));
    expect(load_err(&missing, "missing"), &["no tensor named `dense_1.kernel`", "[8, 3]"]);
    let extra = with_tensors(&good, |t| t.push(("dense_9.kernel".into(), vec![2], vec![0; 8])));
    expect(load_err(&extra, "extra"), &["does not have", "dense_9.kernel"]);
    let misshapen = with_tensors(&good, |t| {
        let k = t.iter_mut().find(|(n, _, _)| n == "dense.kernel").unwrap();
        k.1 = vec![8, 5];
    });
    expect(load_err(&misshapen, "misshapen"), &["dense.kernel", "[8, 5]", "[5, 8]"]);
    let stray_slot = with_tensors(&good, |t| t.push(("optimizer.nope.kernel.momentum".into(), vec![1], vec![0; 4])));
    expect(load_err(&stray_slot, "stray_slot"), &["optimizer variable `nope.kernel.momentum`"]);
    let bad_slot = with_tensors(&good, |t| t.push(("optimizer.dense.kernel.speed".into(), vec![5, 8], vec![0; 160])));
    expect(load_err(&bad_slot, "bad_slot"), &["dense.kernel.speed"]);
    Ok(())
}

#[test]
fn wrong_metadata_is_an_error_naming_it() -> Result<()> {
    let good = valid_file()?;
    let cases: Vec<(&str, &str, Option<&str>, Vec<&str>)> = vec![
        ("format_version", "version", Some("99"), vec!["format_version `99`", "reads format_version 1"]),
        ("format", "format", Some("keras"), vec!["format `keras`", "strata"]),
        ("format", "no_format", None, vec!["no `format`", "load_weights"]),
        ("format_version", "no_version", None, vec!["no `format_version`"]),
        ("model_config", "no_config", None, vec!["no `model_config`", "load_weights"]),
        ("model_config", "config_not_json", Some("{\"layers\": ["), vec!["model_config", "not JSON"]),
        ("compile_config", "compile_not_json", Some("nope"), vec!["compile_config", "not JSON"]),
        ("optimizer_iterations", "iterations", Some("-1"), vec!["optimizer_iterations", "-1"]),
        ("optimizer_iterations", "no_iterations", None, vec!["optimizer_iterations"]),
    ];
    for (key, tag, value, parts) in cases {
        expect(load_err(&with_metadata(&good, key, value.map(str::to_string)), tag), &parts);
    }
    let compile = |f: &dyn Fn(&mut Value)| {
        let (_, header) = safetensors::SafeTensors::read_metadata(&good).unwrap();
        let mut c: Value = serde_json::from_str(&header.metadata().as_ref().unwrap()["compile_config"]).unwrap();
        f(&mut c);
        with_metadata(&good, "compile_config", Some(c.to_string()))
    };
    expect(load_err(&compile(&|c| c["optimizer"]["class_name"] = json!("Adamax")), "optimizer"), &["Adamax"]);
    expect(load_err(&compile(&|c| c["metrics"]["dense_1"] = json!(["acuracy"])), "metric"), &["acuracy"]);
    expect(load_err(&compile(&|c| c["loss"] = json!({"other": "mse"})), "loss_output"), &["`other`"]);
    expect(load_err(&compile(&|c| c["loss"]["dense_1"] = json!("hinge")), "loss_name"), &["hinge"]);
    Ok(())
}

#[test]
fn configs_that_cannot_be_rebuilt_are_errors() -> Result<()> {
    let good = valid_file()?;
    let unknown = with_model_config(&good, |c| c["layers"][0]["class_name"] = json!("Dense3D"));
    expect(load_err(&unknown, "unknown_layer"), &["`Dense3D`", "Dense", "register_layer"]);
    let lambda = with_model_config(&good, |c| {
        c["layers"][1] = json!({"name": "dense_1", "class_name": "Lambda", "config": {"function": "no_such_fn"},
                                 "inbound_nodes": [[["dense", 0]]]});
    });
    expect(load_err(&lambda, "unknown_lambda"), &["no_such_fn", "register_lambda"]);
    // Sizes beyond what the file holds are refused before anything is allocated.
    let wide = with_model_config(&good, |c| c["layers"][0]["config"]["units"] = json!(1u64 << 40));
    expect(load_err(&wide, "huge_units"), &["exceeds"]);
    let wide_input = with_model_config(&good, |c| c["inputs"][0]["config"]["shape"] = json!([1u64 << 40, 1u64 << 40]));
    expect(load_err(&wide_input, "huge_input"), &["larger than a loaded model may use"]);
    let renamed = with_model_config(&good, |c| c["layers"][0]["name"] = json!("first"));
    expect(load_err(&renamed, "renamed"), &["refers to `dense`"]);
    Ok(())
}

mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::OnceLock;

    /// Cases run (also makes each case's file name unique).
    static CASES: AtomicUsize = AtomicUsize::new(0);

    fn good() -> &'static [u8] {
        static GOOD: OnceLock<Vec<u8>> = OnceLock::new();
        GOOD.get_or_init(|| valid_file().unwrap())
    }

    fn rich() -> &'static [u8] {
        static RICH: OnceLock<Vec<u8>> = OnceLock::new();
        RICH.get_or_init(|| rich_file().unwrap())
    }

    /// `cases` cases, or `PROPTEST_CASES` for a longer run.
    fn config(cases: u32) -> ProptestConfig {
        let cases = std::env::var("PROPTEST_CASES").ok().and_then(|c| c.parse().ok()).unwrap_or(cases);
        ProptestConfig { cases, failure_persistence: None, ..ProptestConfig::default() }
    }

    /// Loads `bytes`; an error is fine, a panic fails the test.
    fn survive(bytes: &[u8]) {
        let id = CASES.fetch_add(1, Ordering::Relaxed);
        let _ = try_load(bytes, &format!("fuzz_{id}"));
    }

    /// JSON values that stress a config: odd numbers, wrong types, nesting.
    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (0u64..70).prop_map(Value::from),
            prop::sample::select(vec![-2i64, -1, 0, 1, 2, 3, 8, 1 << 31, 1 << 40]).prop_map(Value::from),
            any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Value::from),
            prop::sample::select(vec![
                "",
                "dense",
                "dense_1",
                "input_layer",
                "Dense",
                "Lambda",
                "Functional",
                "Sequential",
                "relu",
                "float32",
                "int64",
                "glorot_uniform",
                "x",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 16, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::vec(("[a-z_]{1,8}", inner), 0..3)
                    .prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    /// Every JSON path in `v` (for choosing where to mutate).
    fn paths(v: &Value, here: Vec<Value>, out: &mut Vec<Vec<Value>>) {
        out.push(here.clone());
        match v {
            Value::Array(a) => a.iter().enumerate().for_each(|(i, x)| {
                let mut p = here.clone();
                p.push(json!(i));
                paths(x, p, out)
            }),
            Value::Object(o) => o.iter().for_each(|(k, x)| {
                let mut p = here.clone();
                p.push(json!(k));
                paths(x, p, out)
            }),
            _ => {}
        }
    }

    fn at<'v>(v: &'v mut Value, path: &[Value]) -> &'v mut Value {
        path.iter().fold(v, |v, k| match k {
            Value::Number(i) => &mut v[i.as_u64().unwrap() as usize],
            Value::String(s) => &mut v[s.as_str()],
            _ => unreachable!(),
        })
    }

    proptest! {
        #![proptest_config(config(1000))]

        #[test]
        fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
            survive(&bytes);
        }

        #[test]
        fn arbitrary_bytes_behind_a_plausible_header_length_never_panic(
            body in prop::collection::vec(any::<u8>(), 0..600), extra in 0usize..16,
        ) {
            let mut bytes = (body.len().saturating_sub(extra) as u64).to_le_bytes().to_vec();
            bytes.extend(body);
            survive(&bytes);
        }
    }

    proptest! {
        #![proptest_config(config(2000))]

        #[test]
        fn mutated_valid_files_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(), truncate in any::<bool>(),
        ) {
            let mut bytes = good().to_vec();
            for (i, b) in edits {
                let i = i.index(bytes.len());
                bytes[i] = b;
            }
            if truncate {
                bytes.truncate(cut.index(bytes.len()));
            }
            survive(&bytes);
        }

        #[test]
        fn header_byte_mutations_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4),
        ) {
            // Only inside the JSON header, where most of the structure is.
            let n = u64::from_le_bytes(good()[..8].try_into().unwrap()) as usize;
            let mut bytes = good().to_vec();
            for (i, b) in edits {
                bytes[8 + i.index(n)] = b;
            }
            survive(&bytes);
        }

        #[test]
        fn mutated_model_configs_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4),
            use_rich in any::<bool>(),
        ) {
            let source = if use_rich { rich() } else { good() };
            let mut config = model_config(source);
            for (i, value) in edits {
                let mut all = Vec::new();
                paths(&config, Vec::new(), &mut all);
                let path = all[i.index(all.len())].clone();
                *at(&mut config, &path) = value;
            }
            survive(&with_metadata(source, "model_config", Some(config.to_string())));
        }

        #[test]
        fn mutated_compile_configs_never_panic(
            edits in prop::collection::vec((any::<prop::sample::Index>(), json_value()), 1..4),
        ) {
            let (_, header) = safetensors::SafeTensors::read_metadata(good()).unwrap();
            let mut config: Value =
                serde_json::from_str(&header.metadata().as_ref().unwrap()["compile_config"]).unwrap();
            for (i, value) in edits {
                let mut all = Vec::new();
                paths(&config, Vec::new(), &mut all);
                let path = all[i.index(all.len())].clone();
                *at(&mut config, &path) = value;
            }
            survive(&with_metadata(good(), "compile_config", Some(config.to_string())));
        }
    }
}

/// A file saved before the model and compile configs became serde types
/// (written by the hand-built JSON writer of v0.1, commit 9ab6200) still
/// loads on every backend: the same architecture, compile config and
/// optimizer state, written back byte for byte, and the same predictions.
///
/// It was written by this program (native backend):
///
/// ```text
/// let a = Input::new([3]).name("a");
/// let b = Input::new([2]).name("b");
/// let x = Concatenate::new().call(&[&a, &b])?;
/// let x = Dense::new(4).activation("relu").name("hidden").call(&x)?;
/// let x = LayerNormalization::new().call(&x)?;
/// let x = Dropout::new(0.25).call(&x)?;
/// let out = Dense::new(3).activation("softmax").name("head").call(&x)?;
/// let mut model = Model::new_with(&[a, b], &[out], BuildOptions::new().device(&dev).seed(7).name("fixture"))?;
/// model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
/// // xa, xb, y as in fixture_inputs below
/// model.fit(&[&xa, &xb], &y, FitOptions::default().epochs(2).batch_size(3).verbose(0).shuffle(false))?;
/// model.save("tests/fixtures/functional_v0.1.safetensors")?;
/// println!("{:?}", model.predict(&[&xa, &xb])?.to_vec::<f32>()?);
/// ```
#[test]
fn a_file_saved_by_v0_1_still_loads() -> Result<()> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/functional_v0.1.safetensors");
    let bytes = std::fs::read(path)?;
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let printed: [f32; 18] = [
        0.2947671, 0.30749395, 0.397739, 0.3480778, 0.32766294, 0.32425922, 0.14025603, 0.6020568, 0.25768715,
        0.27660376, 0.22639896, 0.49699733, 0.38145718, 0.14614299, 0.47239983, 0.33467585, 0.29757997, 0.36774418,
    ];
    for dev in devices() {
        let model = strata::load_model_on(path, &dev)?;
        assert_eq!(model.get_config().to_string(), metadata["model_config"], "{}", dev.name());
        assert_eq!(model.compile_config().map(|c| c.to_string()).as_ref(), metadata.get("compile_config"));
        let xa = Tensor::new((0..18).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), [6, 3], &dev)?;
        let xb = Tensor::new((0..12).map(|i| (i as f32 * 0.61).cos()).collect::<Vec<_>>(), [6, 2], &dev)?;
        let p = model.predict(&[&xa, &xb])?.to_vec::<f32>()?;
        for (got, want) in p.iter().zip(printed) {
            assert!((got - want).abs() < 1e-5, "{}: {p:?}", dev.name());
        }
        // Saved again, the metadata is what v0.1 wrote.
        let again = unique_temp_path("v0_1_again");
        model.save(&again)?;
        let bytes2 = std::fs::read(&again)?;
        let (_, header2) = safetensors::SafeTensors::read_metadata(&bytes2)?;
        let metadata2 = header2.metadata().clone().unwrap_or_default();
        for key in ["model_config", "compile_config", "optimizer_iterations", "format", "format_version"] {
            assert_eq!(metadata2.get(key), metadata.get(key), "{key}");
        }
        std::fs::remove_file(&again).ok();
    }
    Ok(())
}

/// A convnet with BatchNormalization, trained so its moving statistics have
/// moved, saves and loads on every backend (saved on one, loaded on the
/// other too) with those statistics and the same inference predictions.
#[test]
fn a_convnet_round_trips_with_batch_norm_statistics() -> Result<()> {
    let devs = devices();
    for dev in &devs {
        // Conv1D needs rank 3: the pooled (3, 3, 4) map becomes 9 steps.
        let model = Sequential::new()
            .add(Input::new([6, 6, 2]))
            .add(Conv2D::new(4, 3).padding("same").activation("relu"))
            .add(BatchNormalization::new().momentum(0.5))
            .add(AveragePooling2D::new(2))
            .add(Reshape::new([9, 4]))
            .add(Conv1D::new(3, 2).padding("causal"))
            .add(MaxPooling1D::new(2))
            .add(Flatten::new())
            .add(Dense::new(3).activation("softmax"))
            .seed(5);
        let mut model = model.build_on(dev)?;
        model.compile(SGD::new(0.1), "sparse_categorical_crossentropy", &["accuracy"])?;
        let x = randn(&[12, 6, 6, 2], 6, dev)?;
        let y = Tensor::new((0..12).map(|i| i % 3).collect::<Vec<i64>>(), [12], dev)?;
        fit(&mut model, &x, &y, 1)?;
        let moving = model.weight("batch_normalization.moving_mean")?.to_vec::<f32>()?;
        ensure!(moving.iter().any(|&v| v != 0.0), "the moving mean did not move: {moving:?}");
        let path = unique_temp_path("convnet");
        model.save(&path)?;
        let want = model.predict(&x)?.to_vec::<f32>()?;
        for other in &devs {
            let again = strata::load_model_on(&path, other)?;
            ensure!(
                again.weight("batch_normalization.moving_mean")?.to_vec::<f32>()? == moving,
                "moving mean lost loading on {}",
                other.name()
            );
            let got = again.predict(&x.to_device(other)?)?.to_vec::<f32>()?;
            for (a, b) in got.iter().zip(&want) {
                ensure!((a - b).abs() < 1e-5, "{} → {}: prediction {a} vs {b}", dev.name(), other.name());
            }
        }
        std::fs::remove_file(&path)?;
    }
    Ok(())
}
