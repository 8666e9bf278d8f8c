//! Seeing inside training: `check_numerics` names where a NaN or an
//! infinity first appeared (a layer, the loss, a gradient) and stops before
//! the update; `Model::inspect` reports one step's activations, gradients
//! and updates and leaves the model as it was; `intermediate_outputs`
//! returns every layer's output; `relu(NaN)` is NaN through a whole model.

use anyhow::{ensure, Result};
use strata::prelude::*;
use strata::Error;

fn backends() -> Vec<Device> {
    ["native", "candle"].into_iter().filter_map(|n| strata::backend::by_name(n).ok()).collect()
}

fn weights_of(model: &Model) -> Result<Vec<Vec<f32>>> {
    Ok(model.get_weights()?.iter().map(|t| t.to_vec::<f32>()).collect::<strata::Result<_>>()?)
}

fn non_finite_message(r: strata::Result<History>) -> Result<String> {
    match r {
        Err(Error::NonFinite(m)) => Ok(m),
        Err(e) => anyhow::bail!("expected Error::NonFinite, got {e}"),
        Ok(h) => anyhow::bail!("expected an error, training finished: {:?}", h.get("loss")),
    }
}

#[test]
fn check_numerics_names_the_layer_whose_output_overflowed() -> Result<()> {
    for dev in backends() {
        let x = Tensor::new(vec![1.0f32, 2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 1.0], [4, 2], &dev)?;
        let y = Tensor::new(vec![1.0f32, 0.0, 1.0, 0.0], [4, 1], &dev)?;
        let mut model = Sequential::new()
            .add(Input::new([2]))
            .add(Dense::new(3).activation("tanh").name("hidden"))
            .add(Dense::new(2).name("boom"))
            .add(Dense::new(1).name("head"))
            .seed(1)
            .build_on(&dev)?;
        // `boom` multiplies values in [-1, 1] by 3e38: its sum overflows to inf.
        let huge = Tensor::new(vec![3e38f32; 6], [3, 2], &dev)?;
        model.set_weights_by_name([("boom.kernel", &huge)])?;
        model.compile(SGD::new(0.01), "mse", &[])?;
        let before = weights_of(&model)?;
        let msg = non_finite_message(model.fit(
            &x,
            &y,
            FitOptions::default().epochs(2).batch_size(4).verbose(0).check_numerics(true),
        ))?;
        println!("{}: {msg}", dev.name());
        ensure!(
            msg.contains("first appears in the output of boom (Dense) at epoch 1, step 1"),
            "{}: {msg}",
            dev.name()
        );
        ensure!(msg.contains("its input was finite"), "{msg}");
        ensure!(msg.contains("kernel max |w| = 3.000e38"), "{msg}");
        ensure!(weights_of(&model)? == before, "the failing step must not update the weights");
        // Off, the same training runs to the end with a non-finite loss.
        let h = model.fit(&x, &y, FitOptions::default().epochs(1).batch_size(4).verbose(0))?;
        ensure!(!h.get("loss").unwrap()[0].is_finite());
    }
    Ok(())
}

#[test]
fn check_numerics_names_a_non_finite_gradient_and_an_overflowing_loss() -> Result<()> {
    for dev in backends() {
        let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev)?;
        let y = Tensor::new(vec![1.0f32, 1.0], [2, 1], &dev)?;
        // sqrt at 0: the output is 0, its derivative 1/(2·sqrt(0)) = inf.
        let mut model = Sequential::new()
            .add(Input::new([2]))
            .add(Dense::new(1).kernel_initializer("zeros").name("dense"))
            .add(Lambda::new("sqrt", |t: &Tensor| t.sqrt()).name("root"))
            .build_on(&dev)?;
        model.compile(SGD::new(0.01), "mse", &[])?;
        let msg = non_finite_message(model.fit(
            &x,
            &y,
            FitOptions::default().epochs(1).batch_size(2).verbose(0).check_numerics(true),
        ))?;
        println!("{}: {msg}", dev.name());
        ensure!(msg.starts_with("the gradient of dense."), "{}: {msg}", dev.name());
        ensure!(msg.contains("at epoch 1, step 1, after the loss became 1.0000"), "{msg}");
        // Predictions of 1e20 are finite; their squared error is not.
        let mut model = Sequential::new().add(Input::new([2])).add(Dense::new(1).name("out")).build_on(&dev)?;
        let w = Tensor::new(vec![1e20f32, 1e20], [2, 1], &dev)?;
        model.set_weights_by_name([("out.kernel", &w)])?;
        model.compile(SGD::new(0.01), "mse", &[])?;
        let msg = non_finite_message(model.fit(
            &x,
            &y,
            FitOptions::default().epochs(1).batch_size(2).verbose(0).check_numerics(true),
        ))?;
        ensure!(msg.starts_with("the loss is inf at epoch 1, step 1"), "{}: {msg}", dev.name());
        ensure!(msg.contains("every layer output was finite (out in [3.000e20, 7.000e20])"), "{msg}");
    }
    Ok(())
}

/// With nothing to find, `check_numerics` changes nothing: the same weights
/// bit for bit after training with dropout (the generator advances as
/// without it).
#[test]
fn check_numerics_on_a_healthy_model_trains_bit_for_bit_the_same() -> Result<()> {
    for dev in backends() {
        let mut rng = Rng::seed(4);
        let x = Tensor::rand_normal([48, 5], 0.0, 1.0, &mut rng, &dev)?;
        let y = Tensor::rand_normal([48, 2], 0.0, 1.0, &mut rng, &dev)?;
        let train = |check: bool| -> Result<Vec<Vec<f32>>> {
            let mut m = Sequential::new()
                .add(Input::new([5]))
                .add(Dense::new(8).activation("relu"))
                .add(Dropout::new(0.3))
                .add(Dense::new(2))
                .seed(9)
                .build_on(&dev)?;
            m.compile(Adam::new(0.01), "mse", &["mae"])?;
            m.fit(&x, &y, FitOptions::default().epochs(3).batch_size(16).seed(2).verbose(0).check_numerics(check))?;
            weights_of(&m)
        };
        ensure!(train(true)? == train(false)?, "{}", dev.name());
    }
    Ok(())
}

#[test]
fn inspect_reports_hand_computed_statistics_and_leaves_the_model_as_it_was() -> Result<()> {
    for dev in backends() {
        // y_pred = x·w + b with w = [1, -1], b = 0.5; mse against y.
        let x = Tensor::new(vec![1.0f32, 2.0, 3.0, 0.0, -1.0, 1.0], [3, 2], &dev)?;
        let y = Tensor::new(vec![0.0f32, 2.0, 0.0], [3, 1], &dev)?;
        let mut model = Sequential::new().add(Input::new([2])).add(Dense::new(1).name("lin")).build_on(&dev)?;
        model.set_weights(&[Tensor::new(vec![1.0f32, -1.0], [2, 1], &dev)?, Tensor::new(vec![0.5f32], [1], &dev)?])?;
        let lr = 0.1;
        model.compile(SGD::new(lr), "mse", &[])?;
        let before = weights_of(&model)?;
        let r = model.inspect(&x, &y)?;
        // Predictions -0.5, 3.5, -1.5; errors e = -0.5, 1.5, -1.5.
        let (pred, e) = ([-0.5f64, 3.5, -1.5], [-0.5f64, 1.5, -1.5]);
        ensure!((r.loss - e.iter().map(|v| v * v).sum::<f64>() / 3.0).abs() < 1e-6, "loss {}", r.loss);
        ensure!(r.layers.len() == 1 && r.layers[0].name == "lin" && r.layers[0].class == "Dense");
        let l = &r.layers[0];
        let mean = pred.iter().sum::<f64>() / 3.0;
        let std = (pred.iter().map(|p| (p - mean).powi(2)).sum::<f64>() / 3.0).sqrt();
        ensure!((l.mean - mean).abs() < 1e-6 && (l.std - std).abs() < 1e-6, "{l:?}");
        ensure!((l.min, l.max, l.zeros, l.nan, l.inf) == (-1.5, 3.5, 0.0, 0, 0), "{l:?}");
        ensure!(l.shape == [3, 1]);
        // dL/dw = (2/3) Σ e·x, dL/db = (2/3) Σ e.
        let gw = [2.0 / 3.0 * (e[0] + e[1] * 3.0 - e[2]), 2.0 / 3.0 * (e[0] * 2.0 + e[2])];
        let gb = 2.0 / 3.0 * e.iter().sum::<f64>();
        let kernel = &r.weights[0];
        let g_norm = (gw[0] * gw[0] + gw[1] * gw[1]).sqrt();
        ensure!(kernel.name == "lin.kernel" && (kernel.grad_norm.unwrap() - g_norm).abs() < 1e-5, "{kernel:?}");
        ensure!((kernel.norm - 2f64.sqrt()).abs() < 1e-6);
        // SGD: the update is lr·g, so the ratio is lr·|g| / |w|.
        ensure!((kernel.update_ratio.unwrap() - lr * g_norm / 2f64.sqrt()).abs() < 1e-5, "{kernel:?}");
        let bias = &r.weights[1];
        ensure!(
            (bias.grad_norm.unwrap() - gb.abs()).abs() < 1e-5
                && (bias.update_ratio.unwrap() - lr * gb.abs() / 0.5).abs() < 1e-5
        );
        ensure!(weights_of(&model)? == before, "inspect changed the weights");
        let table = r.to_string();
        ensure!(
            table.contains("lin (Dense)") && table.contains("lin.kernel") && table.contains("|update|/|w|"),
            "{table}"
        );
    }
    Ok(())
}

/// Inspecting between epochs does not change training: the optimizer's
/// state (Adam's moments and step count) and the dropout sequence are put
/// back.
#[test]
fn inspecting_mid_training_does_not_change_the_result() -> Result<()> {
    let dev = strata::backend::native();
    let mut rng = Rng::seed(8);
    let x = Tensor::rand_normal([32, 4], 0.0, 1.0, &mut rng, &dev)?;
    let y = Tensor::rand_normal([32, 1], 0.0, 1.0, &mut rng, &dev)?;
    let run = |look: bool| -> Result<Vec<Vec<f32>>> {
        let mut m = Sequential::new()
            .add(Input::new([4]))
            .add(Dense::new(6).activation("relu"))
            .add(Dropout::new(0.5))
            .add(Dense::new(1))
            .seed(3)
            .build_on(&dev)?;
        m.compile(Adam::new(0.01), "mse", &[])?;
        for _ in 0..3 {
            m.fit(&x, &y, FitOptions::default().epochs(1).batch_size(8).seed(1).verbose(0))?;
            if look {
                let r = m.inspect(&x, &y)?;
                assert!(r.weights.iter().all(|w| w.update_ratio.is_some_and(f64::is_finite)));
            }
        }
        weights_of(&m)
    };
    ensure!(run(true)? == run(false)?);
    Ok(())
}

#[test]
fn intermediate_outputs_names_every_call_of_a_shared_layer() -> Result<()> {
    let dev = strata::backend::native();
    let a = Input::new([3]).name("a");
    let b = Input::new([3]).name("b");
    let shared = Dense::new(2).activation("relu").name("shared").shared();
    let ha = shared.call(&a)?;
    let hb = shared.call(&b)?;
    let sum = Add::new().name("sum").call(&[ha, hb])?;
    let model = Model::new_with(&[a, b], &sum, BuildOptions::new().device(&dev))?;
    let xa = Tensor::new(vec![1.0f32, 2.0, 3.0], [1, 3], &dev)?;
    let xb = Tensor::new(vec![-1.0f32, 0.5, 2.0], [1, 3], &dev)?;
    let outs = model.intermediate_outputs(&[&xa, &xb])?;
    let names: Vec<&str> = outs.iter().map(|(n, _)| n.as_str()).collect();
    ensure!(names == ["a", "b", "shared", "shared@2", "sum"], "{names:?}");
    let predicted = model.predict(&[&xa, &xb])?.to_vec::<f32>()?;
    ensure!(outs[4].1.to_vec::<f32>()? == predicted);
    let ya = outs[2].1.to_vec::<f32>()?;
    let yb = outs[3].1.to_vec::<f32>()?;
    ensure!(ya.iter().zip(&yb).map(|(p, q)| p + q).collect::<Vec<_>>() == predicted);
    ensure!(model.intermediate_outputs(&xa).is_err(), "one input for a two-input model");
    Ok(())
}

/// `relu(NaN)` is NaN (Keras/JAX), so a NaN reaching a relu layer is not
/// turned into a plausible 0.
#[test]
fn relu_keeps_nan_through_a_model_on_every_backend() -> Result<()> {
    for dev in backends() {
        let model = Sequential::new().add(Input::new([2])).add(Dense::new(3).activation("relu")).build_on(&dev)?;
        let x = Tensor::new(vec![f32::NAN, 1.0], [1, 2], &dev)?;
        let y = model.predict(&x)?.to_vec::<f32>()?;
        ensure!(y.iter().all(|v| v.is_nan()), "{}: {y:?}", dev.name());
        let act = Tensor::new(vec![f32::NAN, -1.0, 2.0], [3], &dev)?;
        let relu6 = "relu6".parse::<Activation>()?.apply(&act)?.to_vec::<f32>()?;
        ensure!(relu6[0].is_nan() && relu6[1..] == [0.0, 2.0], "{}: relu6 {relu6:?}", dev.name());
    }
    Ok(())
}
