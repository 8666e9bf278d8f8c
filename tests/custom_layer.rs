//! The custom layer from `examples/custom_layer.rs` trains on every backend,
//! works in Functional models and round-trips through the layer registry.

#[path = "../examples/custom_layer.rs"]
mod example;

use anyhow::Result;
use example::Quadratic;
use strata::layers::{layer_from_config, register_layer, Layer};
use strata::prelude::*;

fn devices() -> Vec<Device> {
    strata::backend::available().into_iter().map(|n| strata::backend::by_name(n).unwrap()).collect()
}

#[test]
fn the_custom_layer_trains_on_every_backend() -> Result<()> {
    for dev in devices() {
        let loss = example::train(&dev, false)?;
        assert!(loss < 1e-3, "{}: final mse {loss}", dev.name());
    }
    Ok(())
}

#[test]
fn the_custom_layer_gives_the_same_numbers_on_every_backend() -> Result<()> {
    let mut outputs = Vec::new();
    for dev in devices() {
        let model = Sequential::new().add(Input::new([3])).add(Quadratic { units: 2 }).seed(5).build_on(&dev)?;
        let x = Tensor::rand_normal([4, 3], 0.0, 1.0, &mut Rng::seed(9), &dev)?;
        outputs.push(model.forward(&x, false)?[0].to_vec::<f32>()?);
    }
    for o in &outputs[1..] {
        for (a, b) in o.iter().zip(&outputs[0]) {
            assert!((a - b).abs() <= 1e-5 + 1e-5 * b.abs(), "{a} vs {b}");
        }
    }
    Ok(())
}

#[test]
fn the_custom_layer_has_keras_style_weight_names_and_shapes() -> Result<()> {
    let dev = strata::backend::native();
    let x = Input::new([3]);
    let y = Quadratic { units: 2 }.call(&x)?;
    let model = Model::new_with(&[x], &[y], BuildOptions::new().device(&dev))?;
    let names: Vec<(String, Vec<usize>)> =
        model.weights().iter().map(|w| (w.name.clone(), w.value.dims().to_vec())).collect();
    assert_eq!(
        names,
        [("quadratic.a".into(), vec![3, 2]), ("quadratic.b".into(), vec![3, 2]), ("quadratic.c".into(), vec![2])]
    );
    Ok(())
}

#[test]
fn a_registered_custom_layer_is_rebuilt_from_its_config() -> Result<()> {
    let e = layer_from_config("Quadratic", &serde_json::json!({"units": 4})).err().unwrap().to_string();
    assert!(e.contains("unknown layer type `Quadratic`") && e.contains("Dense"), "{e}");
    register_layer("Quadratic", |c| {
        let units = c["units"].as_u64().ok_or_else(|| Error::Config(format!("Quadratic needs units, got {c}")))?;
        Ok(Box::new(Quadratic { units: units as usize }))
    })?;
    let layer = layer_from_config("Quadratic", &Quadratic { units: 4 }.config())?;
    assert_eq!(layer.class_name(), "Quadratic");
    assert_eq!(layer.config()["units"], 4);
    assert!(strata::layers::registered_layers().contains(&"Quadratic".to_string()));
    assert!(register_layer("Dense", |_| Err(Error::msg("never"))).is_err());
    Ok(())
}
