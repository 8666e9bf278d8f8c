//! Weights written by other tools, loaded through a name mapping, give that
//! tool's predictions within 1e-5 on every backend.
//!
//! The fixtures in `tests/fixtures/` come from `make_interchange.py` (its
//! docstring says how to run it):
//! - `keras_mlp.safetensors`: a Keras 3 MLP 4-8-3 (relu, softmax), exported
//!   with `safetensors.numpy.save_file({v.path: v.numpy() for v in
//!   model.weights})`, so named `sequential/dense/kernel`, ..., kernels
//!   `[in, out]`; `keras_mlp.json` holds inputs and `model.predict(inputs)`.
//! - `torch_mlp.safetensors`: the `state_dict` of
//!   `nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))` — `0.weight`
//!   `[8, 4]`, `0.bias`, `2.weight` `[3, 8]`, `2.bias` — emulated with numpy
//!   (torch is not installed there); `torch_mlp.json` holds inputs and the
//!   predictions `relu(x @ W0.T + b0) @ W2.T + b2`.

use anyhow::{ensure, Result};
use serde_json::Value;
use strata::prelude::*;
use strata::{LoadWeightsOptions, SkipReason, Transform};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn devices() -> Vec<Device> {
    strata::backend::available().into_iter().map(|n| strata::backend::by_name(n).unwrap()).collect()
}

fn fixture(name: &str) -> String {
    format!("{FIXTURES}/{name}")
}

/// The inputs and expected predictions of a fixture's JSON.
fn expected(name: &str, dev: &Device) -> Result<(Tensor, Vec<Vec<f64>>)> {
    let json: Value = serde_json::from_str(&std::fs::read_to_string(fixture(name))?)?;
    let rows = |key: &str| -> Result<Vec<Vec<f64>>> { Ok(serde_json::from_value(json[key].clone())?) };
    let inputs = rows("inputs")?;
    let flat: Vec<f32> = inputs.iter().flatten().map(|&v| v as f32).collect();
    Ok((Tensor::new(flat, [inputs.len(), inputs[0].len()], dev)?, rows("predictions")?))
}

/// The largest difference between the model's predictions and `want`.
fn max_error(model: &Model, x: &Tensor, want: &[Vec<f64>]) -> Result<f64> {
    let got = model.predict(x)?;
    ensure!(got.dims() == [want.len(), want[0].len()], "predictions are {:?}", got.dims());
    let got = got.to_vec::<f32>()?;
    Ok(want.iter().flatten().zip(&got).map(|(w, g)| (w - *g as f64).abs()).fold(0.0, f64::max))
}

/// The strata model with the fixtures' architecture.
fn mlp(dev: &Device, output_activation: &str) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([4]))
        .add(Dense::new(8).activation("relu"))
        .add(Dense::new(3).activation(output_activation))
        .seed(1)
        .build_on(dev)?)
}

/// Keras 3 variable paths (`sequential/dense/kernel`) to strata names
/// (`dense.kernel`); the layout is the same.
fn keras_paths(name: &str, _shape: &[usize]) -> Option<(String, Transform)> {
    Some((name.strip_prefix("sequential/")?.replace('/', "."), Transform::Keep))
}

/// PyTorch module indices to strata layers; `nn.Linear.weight` is
/// `[out, in]`, a Dense kernel `[in, out]`.
fn torch_linear(name: &str, _shape: &[usize]) -> Option<(String, Transform)> {
    let (module, param) = name.split_once('.')?;
    let layer = match module {
        "0" => "dense",
        "2" => "dense_1",
        _ => return None,
    };
    match param {
        "weight" => Some((format!("{layer}.kernel"), Transform::Transpose)),
        "bias" => Some((format!("{layer}.bias"), Transform::Keep)),
        _ => None,
    }
}

#[test]
fn a_keras_mlp_reproduces_keras_predictions() -> Result<()> {
    for dev in devices() {
        let model = mlp(&dev, "softmax")?;
        let report = model
            .load_weights_with(fixture("keras_mlp.safetensors"), LoadWeightsOptions::new().mapping(keras_paths))?;
        assert!(report.is_complete() && report.loaded.len() == 4, "{report}");
        let (x, want) = expected("keras_mlp.json", &dev)?;
        let err = max_error(&model, &x, &want)?;
        assert!(err <= 1e-5, "{}: predictions differ from Keras' by {err:e}", dev.name());
    }
    Ok(())
}

#[test]
fn a_pytorch_mlp_reproduces_its_predictions() -> Result<()> {
    for dev in devices() {
        let model = mlp(&dev, "linear")?;
        let report = model
            .load_weights_with(fixture("torch_mlp.safetensors"), LoadWeightsOptions::new().mapping(torch_linear))?;
        assert_eq!(report.loaded, ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]);
        assert!(report.is_complete(), "{report}");
        let (x, want) = expected("torch_mlp.json", &dev)?;
        let err = max_error(&model, &x, &want)?;
        assert!(err <= 1e-5, "{}: predictions differ from PyTorch's by {err:e}", dev.name());
        // The kernel is the file's weight transposed.
        let file = std::fs::read(fixture("torch_mlp.safetensors"))?;
        let file = safetensors::SafeTensors::deserialize(&file)?;
        let w: Vec<f32> = file
            .tensor("0.weight")?
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        let kernel = model.weight("dense.kernel")?;
        assert_eq!(kernel.dims(), [4, 8]);
        let kernel = kernel.to_vec::<f32>()?;
        for i in 0..4 {
            for o in 0..8 {
                assert_eq!(kernel[i * 8 + o], w[o * 4 + i], "kernel[{i}, {o}] is not weight[{o}, {i}]");
            }
        }
    }
    Ok(())
}

/// What goes wrong with a mapping is an error naming the tensors.
#[test]
fn mapping_mistakes_are_errors() -> Result<()> {
    let dev = strata::backend::native();
    let model = mlp(&dev, "linear")?;
    let path = fixture("torch_mlp.safetensors");
    let before = model.weight("dense.kernel")?.to_vec::<f32>()?;
    let err = |options: LoadWeightsOptions<'_>| model.load_weights_with(&path, options).unwrap_err().to_string();

    // Without a mapping: PyTorch's names are not the model's.
    let e = err(LoadWeightsOptions::new());
    assert!(
        e.contains("8 mismatches")
            && e.contains("`0.weight` is in the file")
            && e.contains("no tensor named `dense.kernel`"),
        "{e}"
    );
    // Forgetting the transpose: both shapes.
    let e = err(LoadWeightsOptions::new().mapping(|n, s| torch_linear(n, s).map(|(m, _)| (m, Transform::Keep))));
    assert!(
        e.contains(
            "`dense.kernel` (`0.weight` in the file) is [8, 4] from the file, as mapped, but [4, 8] in the model"
        ),
        "{e}"
    );
    // Transposing a bias.
    let e = err(LoadWeightsOptions::new().mapping(|n, s| torch_linear(n, s).map(|(m, _)| (m, Transform::Transpose))));
    assert!(e.contains("transposes `0.bias` [8]") && e.contains("2-D"), "{e}");
    // Two tensors onto one weight.
    let e = err(LoadWeightsOptions::new().mapping(|_, _| Some(("dense.bias".to_string(), Transform::Keep))));
    assert!(e.contains("both `0.bias` and `0.weight` to `dense.bias`"), "{e}");
    assert_eq!(model.weight("dense.kernel")?.to_vec::<f32>()?, before, "a failed load changed the model");

    // Leaving tensors out on purpose: listed as ignored; the weights they
    // would fill are missing, an error unless skipped.
    let only_first = |n: &str, s: &[usize]| torch_linear(n, s).filter(|(m, _)| m.starts_with("dense."));
    let e = err(LoadWeightsOptions::new().mapping(only_first));
    assert!(e.contains("no tensor named `dense_1.kernel`"), "{e}");
    let report = model.load_weights_with(&path, LoadWeightsOptions::new().mapping(only_first).skip_mismatch(true))?;
    assert_eq!(report.loaded, ["dense.kernel", "dense.bias"]);
    assert_eq!(report.ignored, ["2.bias", "2.weight"]);
    assert_eq!(report.skipped.len(), 2);
    assert_eq!(report.skipped[0].reason, SkipReason::MissingInFile { model: vec![8, 3] });
    Ok(())
}
