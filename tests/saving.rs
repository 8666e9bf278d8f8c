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
