//! `compile` / `fit` / `evaluate` / `predict`: behaviour, determinism and
//! the errors bad input gets before any training step.

use anyhow::Result;
use strata::losses::Loss;
use strata::optimizers::{Adam, SGD};
use strata::prelude::*;

/// Three classes from two features: the label is the quadrant-ish region.
fn blobs(n: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let mut rng = Rng::seed(11);
    let mut xs = Vec::with_capacity(n * 2);
    let mut ys = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % 3;
        let (cx, cy) = [(0.0, 2.0), (2.0, -1.0), (-2.0, -1.0)][c];
        xs.push(cx + 0.5 * rng.normal());
        xs.push(cy + 0.5 * rng.normal());
        ys.push(c as i64);
    }
    Ok((Tensor::new(xs, [n, 2], dev)?, Tensor::new(ys, [n], dev)?))
}

fn classifier(dev: &Device, seed: u64) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([2]))
        .add(Dense::new(16).activation("relu"))
        .add(Dropout::new(0.2))
        .add(Dense::new(3).activation("softmax"))
        .seed(seed)
        .build_on(dev)?)
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::default().verbose(0)
}

#[test]
fn fit_learns_and_reports_history_per_epoch() -> Result<()> {
    for dev in [backend::native(), backend::candle_cpu()] {
        let (x, y) = blobs(300, &dev)?;
        let mut model = classifier(&dev, 1)?;
        model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
        let history = model.fit(&x, &y, quiet().epochs(8).batch_size(32).validation_split(0.2))?;
        assert_eq!(history.len(), 8);
        assert_eq!(history.keys().collect::<Vec<_>>(), ["accuracy", "loss", "val_accuracy", "val_loss"]);
        let loss = history.get("loss").unwrap();
        assert!(loss[7] < loss[0] * 0.5, "{}: {loss:?}", dev.name());
        assert!(history.last("val_accuracy").unwrap() > 0.95, "{}", dev.name());
        let logs = model.evaluate_with(&x, &y, EvaluateOptions::default().verbose(0))?;
        assert!(logs["accuracy"] > 0.95);
        let probs = model.predict(&x)?;
        assert_eq!(probs.dims(), &[300, 3]);
    }
    Ok(())
}

#[test]
fn validation_split_holds_out_the_last_samples_before_shuffling() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(100, &dev)?;
    let mut model = classifier(&dev, 2)?;
    model.compile(SGD::new(0.05), "sparse_categorical_crossentropy", &["accuracy"])?;
    let history = model.fit(&x, &y, quiet().epochs(1).validation_split(0.3))?;
    // val_* is measured at the end of the epoch on samples 70..100.
    let tail =
        model.evaluate_with(&x.narrow(0, 70, 30)?, &y.narrow(0, 70, 30)?, EvaluateOptions::default().verbose(0))?;
    assert!((history.last("val_loss").unwrap() - tail["loss"]).abs() < 1e-6);
    assert_eq!(history.last("val_accuracy").unwrap(), tail["accuracy"]);
    Ok(())
}

#[test]
fn the_same_seed_gives_bit_identical_weights_on_native() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(200, &dev)?;
    let run = |seed: u64| -> Result<Vec<Vec<f32>>> {
        let mut model = classifier(&dev, seed)?;
        model.compile("adam", "sparse_categorical_crossentropy", ())?;
        // Shuffling and dropout both draw from the model's seed.
        model.fit(&x, &y, quiet().epochs(3).batch_size(16))?;
        Ok(model.weights().iter().map(|w| w.value.to_vec::<f32>().unwrap()).collect())
    };
    let a = run(5)?;
    assert_eq!(a, run(5)?);
    assert_ne!(a, run(6)?);
    Ok(())
}

#[test]
fn initial_epoch_numbers_the_epochs_it_runs() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(60, &dev)?;
    let mut model = classifier(&dev, 3)?;
    model.compile("sgd", "sparse_categorical_crossentropy", ())?;
    let history = model.fit(&x, &y, quiet().epochs(5).initial_epoch(3))?;
    assert_eq!(history.epochs(), &[3, 4]);
    Ok(())
}

#[test]
fn class_weight_equals_the_matching_sample_weight() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(90, &dev)?;
    let weights: Vec<f32> = y.to_vec::<i64>()?.iter().map(|&c| [1.0, 3.0, 0.5][c as usize]).collect();
    let sw = Tensor::new(weights, [90], &dev)?;
    let train = |options: FitOptions<'_>| -> Result<Vec<f32>> {
        let mut model = classifier(&dev, 4)?;
        model.compile(SGD::new(0.1), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, options.epochs(2).shuffle(false))?;
        Ok(model.weight("dense_1.kernel")?.to_vec::<f32>()?)
    };
    let by_class = train(quiet().class_weight([(0, 1.0), (1, 3.0), (2, 0.5)]))?;
    let by_sample = train(quiet().sample_weight(&sw))?;
    let plain = train(quiet())?;
    assert_eq!(by_class, by_sample);
    assert_ne!(by_class, plain);
    Ok(())
}

#[test]
fn several_outputs_get_their_own_losses_weights_and_metrics() -> Result<()> {
    let dev = backend::native();
    let x = Input::new([2]).name("features");
    let h = Dense::new(8).activation("tanh").call(&x)?;
    let class = Dense::new(3).activation("softmax").name("class").call(&h)?;
    let value = Dense::new(1).name("value").call(&h)?;
    let mut model = Model::new_with(&x, &[class, value], BuildOptions::new().device(&dev).seed(1))?;
    model.compile(
        "adam",
        Losses::named([("value", "mse"), ("class", "sparse_categorical_crossentropy")])?.weights([1.0, 0.5]),
        Metrics::named([("class", vec!["accuracy".into()]), ("value", vec!["mae".into()])]),
    )?;
    let (xs, labels) = blobs(64, &dev)?;
    let target = xs.sum(&[-1], true)?;
    let logs = model.test_on_batch(&xs, &[labels.clone(), target.clone()])?;
    assert_eq!(logs.keys().collect::<Vec<_>>(), ["class_accuracy", "class_loss", "loss", "value_loss", "value_mae"]);
    let total = logs["class_loss"] + 0.5 * logs["value_loss"];
    assert!((logs["loss"] - total).abs() < 1e-5, "{logs:?}");
    let history = model.fit(&xs, &[labels, target], quiet().epochs(2))?;
    assert!(history.get("value_mae").is_some());
    // predict needs predict_outputs for several outputs.
    assert!(model.predict(&xs).unwrap_err().to_string().contains("predict_outputs"));
    let outs = model.predict_outputs(&xs)?;
    assert_eq!((outs[0].dims(), outs[1].dims()), (&[64, 3][..], &[64, 1][..]));
    // A loss for an output that does not exist.
    let err = model.compile("adam", Losses::named([("nope", "mse")])?, ()).unwrap_err().to_string();
    assert!(err.contains("nope") && err.contains("class") && err.contains("value"), "{err}");
    Ok(())
}

#[test]
fn predict_in_batches_equals_one_forward_pass() -> Result<()> {
    let dev = backend::native();
    let (x, _) = blobs(77, &dev)?;
    let model = classifier(&dev, 6)?;
    let whole = model.forward(&x, false)?.remove(0).to_vec::<f32>()?;
    let batched = model.predict_with(&x, PredictOptions::default().batch_size(10))?.to_vec::<f32>()?;
    assert_eq!(whole, batched);
    assert_eq!(model.predict_on_batch(&x)?.to_vec::<f32>()?, whole);
    Ok(())
}

#[test]
fn train_on_batch_takes_one_step() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(32, &dev)?;
    let mut model = classifier(&dev, 7)?;
    model.compile(SGD::new(0.1), "sparse_categorical_crossentropy", &["accuracy"])?;
    let before = model.test_on_batch(&x, &y)?;
    let k0 = model.weight("dense.kernel")?.to_vec::<f32>()?;
    let logs = model.train_on_batch(&x, &y)?;
    assert_ne!(model.weight("dense.kernel")?.to_vec::<f32>()?, k0);
    assert!(logs.contains_key("accuracy"));
    let after = model.test_on_batch(&x, &y)?;
    assert!(after["loss"] < before["loss"]);
    Ok(())
}

#[test]
fn a_masked_sequence_loss_ignores_padded_steps() -> Result<()> {
    let dev = backend::native();
    let ids = Input::new([4]).dtype(DType::I64);
    let e = Embedding::new(10, 3).mask_zero(true).call(&ids)?;
    let out = Dense::new(2).activation("softmax").call(&e)?;
    let mut model = Model::new_with(&ids, &out, BuildOptions::new().device(&dev).seed(2))?;
    model.compile("sgd", "sparse_categorical_crossentropy", &["accuracy"])?;
    let x = Tensor::new(vec![3i64, 4, 0, 0, 5, 0, 0, 0], [2, 4], &dev)?;
    let y = Tensor::new(vec![1i64, 0, 1, 1, 0, 1, 1, 1], [2, 4], &dev)?;
    // Other targets at padded steps (id 0) do not change loss or accuracy.
    let y2 = Tensor::new(vec![1i64, 0, 0, 0, 0, 0, 0, 0], [2, 4], &dev)?;
    let a = model.test_on_batch(&x, &y)?;
    let b = model.test_on_batch(&x, &y2)?;
    assert!((a["loss"] - b["loss"]).abs() < 1e-6 && a["accuracy"] == b["accuracy"], "{a:?} vs {b:?}");
    // And equal the loss over the three real steps.
    let probs = model.predict(&x)?.to_vec::<f32>()?;
    let picked = [probs[1], probs[2], probs[8]]; // (0,0)->1, (0,1)->0, (1,0)->0
    let manual = -picked.iter().map(|p| f64::from(*p).ln()).sum::<f64>() / 3.0;
    assert!((a["loss"] - manual).abs() < 1e-5, "{} vs {manual}", a["loss"]);
    Ok(())
}

/// Runs `fit` and checks it fails with a message containing every `needle`,
/// without having changed a weight.
fn rejects(model: &mut Model, x: &Tensor, y: &Tensor, options: FitOptions<'_>, needles: &[&str]) -> Result<()> {
    let before = model.weight("dense.kernel")?.to_vec::<f32>()?;
    let err = model.fit(x, y, options).expect_err("fit should fail").to_string();
    for n in needles {
        assert!(err.contains(n), "`{err}` should mention `{n}`");
    }
    assert_eq!(model.weight("dense.kernel")?.to_vec::<f32>()?, before, "a step ran before `{err}`");
    Ok(())
}

#[test]
fn bad_input_is_an_error_before_any_training_step() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(30, &dev)?;
    let mut model = classifier(&dev, 8)?;
    let err = model.fit(&x, &y, quiet()).unwrap_err().to_string();
    assert!(err.contains("compile"), "{err}");
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;

    rejects(&mut model, &x, &y.narrow(0, 0, 20)?, quiet(), &["30", "20", "samples"])?;
    let wide = Tensor::zeros([30, 5], DType::F32, &dev)?;
    rejects(&mut model, &wide, &y, quiet(), &["(None, 2)", "(30, 5)"])?;
    let bad_labels = Tensor::new((0..30).map(|i| if i == 17 { 3 } else { i % 3 }).collect::<Vec<i64>>(), [30], &dev)?;
    rejects(&mut model, &x, &bad_labels, quiet(), &["3", "17"])?;
    let negative = Tensor::new((0..30).map(|i| if i == 4 { -1 } else { 0 }).collect::<Vec<i64>>(), [30], &dev)?;
    rejects(&mut model, &x, &negative, quiet(), &["-1"])?;
    let mut v = x.to_vec::<f32>()?;
    v[2 * 9 + 1] = f32::NAN;
    let nan = Tensor::new(v, [30, 2], &dev)?;
    rejects(&mut model, &nan, &y, quiet(), &["NaN", "sample 9"])?;
    // predict does not scan its inputs (as Keras does not): the NaN sample
    // gets whatever the layers make of it, every other row is unchanged.
    let p = model.predict(&nan)?.to_vec::<f32>()?;
    let clean = model.predict(&x)?.to_vec::<f32>()?;
    assert_eq!(p.len(), 30 * 3);
    assert_eq!(p[..9 * 3], clean[..9 * 3]);
    assert_eq!(p[10 * 3..], clean[10 * 3..]);
    let mut v = x.to_vec::<f32>()?;
    v[0] = f32::INFINITY;
    rejects(&mut model, &Tensor::new(v, [30, 2], &dev)?, &y, quiet(), &["inf"])?;
    let empty_x = Tensor::zeros([0, 2], DType::F32, &dev)?;
    let empty_y = Tensor::zeros([0], DType::I64, &dev)?;
    rejects(&mut model, &empty_x, &empty_y, quiet(), &["empty"])?;
    rejects(&mut model, &x, &y, quiet().batch_size(0), &["batch_size", "0"])?;
    rejects(&mut model, &x, &y, quiet().validation_split(1.0), &["validation_split", "[0, 1)"])?;
    rejects(&mut model, &x, &y, quiet().validation_split(-0.1), &["validation_split"])?;
    rejects(&mut model, &x, &y, quiet().validation_split(0.99), &["validation", "0 for training"])?;
    rejects(&mut model, &x, &y, quiet().verbose(3), &["verbose"])?;
    rejects(
        &mut model,
        &x,
        &y,
        quiet().sample_weight(&Tensor::ones([29], DType::F32, &dev)?),
        &["sample_weight", "(30,)"],
    )?;
    rejects(&mut model, &x, &y, quiet().validation_data(&x, &bad_labels), &["3"])?;
    // Not a panic either: a one-hot target for a sparse loss.
    let one_hot = y.one_hot(3)?;
    rejects(&mut model, &x, &one_hot, quiet(), &["sparse_categorical_crossentropy"])?;
    // Unknown names are errors from compile, listing the valid names.
    for (opt, loss, metric, needles) in [
        ("adamm", "mse", "mae", ["adamm", "rmsprop"]),
        ("adam", "msee", "mae", ["msee", "huber"]),
        ("adam", "mse", "acuracy", ["acuracy", "sparse_categorical_accuracy"]),
    ] {
        let err = model.compile(opt, loss, &[metric]).expect_err("unknown name").to_string();
        for n in needles {
            assert!(err.contains(n), "`{err}` should mention `{n}`");
        }
    }
    Ok(())
}

#[test]
fn typed_and_string_arguments_are_interchangeable() -> Result<()> {
    let dev = backend::native();
    let (x, y) = blobs(60, &dev)?;
    let train = |typed: bool| -> Result<Vec<f32>> {
        let mut model = classifier(&dev, 9)?;
        if typed {
            model.compile(
                Adam::new(0.001),
                Loss::SparseCategoricalCrossentropy { from_logits: false },
                &["accuracy"],
            )?;
        } else {
            model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        }
        model.fit(&x, &y, quiet().epochs(2))?;
        Ok(model.weight("dense.kernel")?.to_vec::<f32>()?)
    };
    assert_eq!(train(true)?, train(false)?);
    Ok(())
}

/// A saturated softmax output (logits [0, 40], label 0): training and
/// evaluation read the same logits and report the same exact loss,
/// -log softmax(z)_0 = 40 (not the 1e-7 clip's 16.118), on every backend.
#[test]
fn training_and_evaluation_report_the_same_loss_on_a_saturated_softmax() -> Result<()> {
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        let build = || -> Result<Model> {
            let model =
                Sequential::new().add(Input::new([2])).add(Dense::new(2).activation("softmax")).build_on(&dev)?;
            model.set_weights_by_name([
                ("dense.kernel", &Tensor::new(vec![1.0f32, 0.0, 0.0, 1.0], [2, 2], &dev)?),
                ("dense.bias", &Tensor::zeros([2], DType::F32, &dev)?),
            ])?;
            Ok(model)
        };
        let x = Tensor::new(vec![0.0f32, 40.0], [1, 2], &dev)?;
        for loss in ["sparse_categorical_crossentropy", "categorical_crossentropy"] {
            let y = if loss.starts_with("sparse") {
                Tensor::new(vec![0i64], [1], &dev)?
            } else {
                Tensor::new(vec![1.0f32, 0.0], [1, 2], &dev)?
            };
            let mut model = build()?;
            model.compile(SGD::new(0.0), loss, ())?;
            let evaluated = model.evaluate_with(&x, &y, EvaluateOptions::default().verbose(0))?.value("loss")?;
            let tested = model.test_on_batch(&x, &y)?.value("loss")?;
            let trained = model.train_on_batch(&x, &y)?.value("loss")?;
            for (what, v) in [("evaluate", evaluated), ("test_on_batch", tested), ("train_on_batch", trained)] {
                assert!((v - 40.0).abs() < 1e-4, "{backend} {loss} {what}: {v}");
            }
        }
    }
    Ok(())
}
