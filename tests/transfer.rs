//! Freezing, fine-tuning and taking models apart, on every backend: Keras'
//! `trainable` semantics (no gradient, no update, summary counts, frozen
//! BatchNormalization in inference mode, the change taking effect at the
//! next compile, saved with the model), symbolic inputs/outputs and layer
//! outputs for feature extractors that share weights, nested models, and
//! positional `get_weights` / `set_weights`.

use anyhow::Result;
use strata::optimizers::Adam;
use strata::prelude::*;

fn devices() -> Vec<Device> {
    strata::backend::available().into_iter().map(|n| strata::backend::by_name(n).unwrap()).collect()
}

fn quiet() -> FitOptions<'static> {
    FitOptions::default().verbose(0)
}

fn vals(t: &Tensor) -> Vec<f32> {
    t.to_vec::<f32>().unwrap()
}

/// 64 rows of 4 features and a 0/1 label (the sign of their sum).
fn data(dev: &Device) -> Result<(Tensor, Tensor)> {
    let x = Tensor::rand_normal([64, 4], 0.0, 1.0, &mut Rng::seed(5), dev)?;
    let y: Vec<i64> = vals(&x).chunks(4).map(|r| (r.iter().sum::<f32>() > 0.0) as i64).collect();
    Ok((x, Tensor::new(y, [64], dev)?))
}

fn base_and_head(dev: &Device) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([4]))
        .add(Dense::new(8).activation("relu").name("base"))
        .add(Dense::new(2).activation("softmax").name("head"))
        .seed(1)
        .build_on(dev)?)
}

#[test]
fn a_frozen_layer_is_not_updated_and_counts_as_non_trainable() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let mut model = base_and_head(&dev)?;
        model.get_layer("base")?.set_trainable(false);
        assert!(!model.get_layer("base")?.trainable() && model.get_layer("head")?.trainable());
        let names = |ws: Vec<Weight>| ws.into_iter().map(|w| w.name).collect::<Vec<_>>();
        assert_eq!(names(model.trainable_weights()), ["head.kernel", "head.bias"]);
        assert_eq!(names(model.non_trainable_weights()), ["base.kernel", "base.bias"]);
        let summary = model.summary_string();
        assert!(summary.contains("Trainable params: 18 (72.00 B)"), "{summary}");
        assert!(summary.contains("Non-trainable params: 40 (160.00 B)"), "{summary}");

        let before = model.get_weights()?;
        model.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, quiet().epochs(3).batch_size(16))?;
        let after = model.get_weights()?;
        // base.kernel and base.bias bit for bit; the head moved.
        assert_eq!(vals(&before[0]), vals(&after[0]), "{}", dev.name());
        assert_eq!(vals(&before[1]), vals(&after[1]));
        assert_ne!(vals(&before[2]), vals(&after[2]));

        // A frozen layer's weights get no gradient at all (they reach it detached).
        let loss = model.forward(&x, true)?.remove(0).sum_all()?;
        let grads = loss.backward()?;
        assert!(grads.get(&model.weight("base.kernel")?).is_none());
        assert!(grads.get(&model.weight("head.kernel")?).is_some());
    }
    Ok(())
}

#[test]
fn changing_trainable_after_compile_takes_effect_at_the_next_compile() -> Result<()> {
    let dev = strata::backend::native();
    let (x, y) = data(&dev)?;
    let mut model = base_and_head(&dev)?;
    model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", ())?;
    model.get_layer("base")?.set_trainable(false);
    let e = model.fit(&x, &y, quiet()).unwrap_err().to_string();
    assert!(e.contains("compile again") && e.contains("frozen since: [base.kernel, base.bias]"), "{e}");
    let e = model.train_on_batch(&x, &y).unwrap_err().to_string();
    assert!(e.contains("compile again"), "{e}");
    model.compile(Adam::new(0.01), "sparse_categorical_crossentropy", ())?;
    model.fit(&x, &y, quiet())?;
    model.get_layer("base")?.set_trainable(true);
    let e = model.fit(&x, &y, quiet()).unwrap_err().to_string();
    assert!(e.contains("unfrozen since: [base.kernel, base.bias]"), "{e}");
    Ok(())
}

#[test]
fn a_frozen_batch_normalization_runs_in_inference_mode() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let mut model = Sequential::new()
            .add(Input::new([4]))
            .add(BatchNormalization::new().name("bn"))
            .add(Dense::new(2).activation("softmax"))
            .seed(2)
            .build_on(&dev)?;
        // Give it statistics that a training-mode call would visibly replace.
        let bn = model.get_layer("bn")?;
        let ones = Tensor::ones([4], DType::F32, &dev)?;
        bn.set_weights(&[ones.mul_scalar(2.0)?, ones.mul_scalar(0.5)?, ones.mul_scalar(0.3)?, ones.mul_scalar(4.0)?])?;
        bn.set_trainable(false);
        let stats = bn.get_weights()?;
        // Training-mode forward equals inference: the moving statistics are used.
        let (train, infer) = (model.forward(&x, true)?.remove(0), model.forward(&x, false)?.remove(0));
        assert_eq!(vals(&train), vals(&infer), "{}", dev.name());
        model.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, quiet().epochs(2).batch_size(16))?;
        for (a, b) in stats.iter().zip(model.get_layer("bn")?.get_weights()?) {
            assert_eq!(vals(a), vals(&b), "gamma, beta and the moving statistics stay");
        }
        // Unfrozen, a training-mode forward normalises with the batch's own statistics.
        model.get_layer("bn")?.set_trainable(true);
        let train = model.forward(&x, true)?.remove(0);
        assert_ne!(vals(&train), vals(&model.forward(&x, false)?.remove(0)));
    }
    Ok(())
}

#[test]
fn a_feature_extractor_shares_the_weights_of_the_model_it_comes_from() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let mut model = base_and_head(&dev)?;
        let on = || BuildOptions::new().device(&dev);
        let extractor = Model::new_with(&model.inputs(), &model.get_layer("base")?.output()?, on())?;
        assert_eq!(extractor.layer_names(), ["base"]);
        assert_eq!(extractor.output_specs()[0].to_string(), "(None, 8)");
        let by_hand = |m: &Model| -> Result<Vec<f32>> {
            let (k, b) = (m.weight("base.kernel")?, m.weight("base.bias")?);
            Ok(vals(&x.matmul(&k)?.add(&b)?.relu()?))
        };
        let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(p, q)| (p - q).abs() <= 1e-6 + 1e-6 * q.abs());
        assert!(close(&vals(&extractor.predict(&x)?), &by_hand(&model)?));
        // Training the model changes what the extractor computes: the same variables.
        model.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, quiet().epochs(2))?;
        assert!(close(&vals(&extractor.predict(&x)?), &by_hand(&model)?), "{}", dev.name());

        // The model's outputs feed new layers: a second head on the same model.
        let twin = Dense::new(3).name("other").call(&model.get_layer("base")?.output()?)?;
        let two_heads = Model::new_with(&model.inputs(), &[model.outputs()[0].clone(), twin], on())?;
        assert_eq!(two_heads.layer_names(), ["base", "head", "other"]);
        let outs = two_heads.forward(&x, false)?;
        assert_eq!(vals(&outs[0]), vals(&model.predict(&x)?));
        assert_eq!(model.layers().iter().map(|l| l.name().to_string()).collect::<Vec<_>>(), ["base", "head"]);
    }
    Ok(())
}

#[test]
fn freezing_a_nested_model_freezes_its_layers_and_one_can_be_thawed() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let inner = Sequential::new()
            .add(Input::new([4]))
            .add(Dense::new(6).activation("relu").name("low"))
            .add(Dense::new(5).activation("relu").name("top"))
            .name("base")
            .build_on(&dev)?;
        let inp = Input::new([4]);
        let out = Dense::new(2).activation("softmax").name("head").call(&inner.call(&inp)?)?;
        let mut model = Model::new_with(&inp, &out, BuildOptions::new().device(&dev))?;
        let base = model.get_layer("base")?;
        base.set_trainable(false);
        assert!(!base.get_layer("low")?.trainable() && !base.get_layer("top")?.trainable());
        assert_eq!(model.trainable_weights().len(), 2);
        // Unfreeze the top of the base, as in the fine-tuning recipe.
        base.set_trainable(true);
        base.get_layer("low")?.set_trainable(false);
        let names: Vec<String> = model.trainable_weights().into_iter().map(|w| w.name).collect();
        assert_eq!(names, ["base.top.kernel", "base.top.bias", "head.kernel", "head.bias"]);
        let e = base.get_layer("nope").unwrap_err().to_string();
        assert!(e.contains("nope") && e.contains("low, top"), "{e}");
        let e = model.get_layer("head")?.get_layer("x").unwrap_err().to_string();
        assert!(e.contains("is not a model"), "{e}");

        let low = model.weight("base.low.kernel")?.copy()?;
        let top = model.weight("base.top.kernel")?.copy()?;
        model.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, quiet().epochs(2))?;
        assert_eq!(vals(&low), vals(&model.weight("base.low.kernel")?), "{}", dev.name());
        assert_ne!(vals(&top), vals(&model.weight("base.top.kernel")?));

        // The flags are saved with the model and come back with it.
        let path = std::env::temp_dir().join(format!("strata_transfer_{}.safetensors", dev.name()));
        model.save(&path)?;
        let again = strata::load_model_on(&path, &dev)?;
        let flags = |m: &Model| -> Result<Vec<bool>> {
            let b = m.get_layer("base")?;
            Ok(vec![b.trainable(), b.get_layer("low")?.trainable(), b.get_layer("top")?.trainable()])
        };
        assert_eq!(flags(&again)?, [true, false, true]);
        assert_eq!(again.trainable_weights().len(), 4);
        std::fs::remove_file(&path)?;
    }
    Ok(())
}

#[test]
fn positional_weights_round_trip_and_a_bad_list_changes_nothing() -> Result<()> {
    for dev in devices() {
        let a = base_and_head(&dev)?;
        let b = Sequential::new()
            .add(Input::new([4]))
            .add(Dense::new(8).activation("relu").name("base"))
            .add(Dense::new(2).activation("softmax").name("head"))
            .seed(9)
            .build_on(&dev)?;
        let x = Tensor::ones([2, 4], DType::F32, &dev)?;
        assert_ne!(vals(&a.predict(&x)?), vals(&b.predict(&x)?));
        b.set_weights(&a.get_weights()?)?;
        assert_eq!(vals(&a.predict(&x)?), vals(&b.predict(&x)?));

        let before = b.get_weights()?;
        let mut wrong = a.get_weights()?;
        wrong[3] = Tensor::zeros([3], DType::F32, &dev)?; // head.bias is [2]
        let e = b.set_weights(&wrong).unwrap_err().to_string();
        assert!(e.contains("head.bias") && e.contains("[2]") && e.contains("[3]"), "{e}");
        let e = b.set_weights(&wrong[..2]).unwrap_err().to_string();
        assert!(e.contains("expects 4") && e.contains("received 2"), "{e}");
        for (p, q) in before.iter().zip(b.get_weights()?) {
            assert_eq!(vals(p), vals(&q), "a failed set_weights changed a weight");
        }
        let layer = b.get_layer("head")?;
        layer.set_weights(&[Tensor::zeros([8, 2], DType::F32, &dev)?, Tensor::zeros([2], DType::F32, &dev)?])?;
        assert_eq!(vals(&b.predict(&x)?), [0.5; 4]);
        assert_eq!(layer.get_weights()?.len(), 2);
    }
    Ok(())
}

#[test]
fn clone_model_copies_the_architecture_with_fresh_weights_and_shares_nothing() -> Result<()> {
    for dev in devices() {
        let (x, y) = data(&dev)?;
        let inner = Sequential::new()
            .add(Input::new([4]))
            .add(Dense::new(6).activation("relu").name("low"))
            .name("inner")
            .seed(3)
            .build_on(&dev)?;
        let inp = Input::new([4]).name("x");
        let h = inner.call(&inp)?;
        let out = Dense::new(2).activation("softmax").name("head").call(&h)?;
        let mut model = Model::new_with(&inp, &out, BuildOptions::new().device(&dev).seed(4))?;
        model.get_layer("inner")?.set_trainable(false);
        model.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        model.fit(&x, &y, quiet().epochs(2))?;

        let mut twin = strata::models::clone_model(&model)?;
        assert_eq!(twin.get_config(), model.get_config(), "{}", dev.name());
        assert_eq!(twin.device().name(), dev.name());
        assert!(!twin.get_layer("inner")?.trainable(), "the trainable flag is part of the architecture");
        let (a, b) = (model.get_weights()?, twin.get_weights()?);
        assert_eq!(a.len(), b.len());
        for (p, q) in a.iter().zip(&b) {
            assert_eq!(p.dims(), q.dims());
            if p.dims().len() == 2 {
                assert_ne!(vals(p), vals(q), "a clone's kernels are fresh, not copied");
            } else {
                assert!(vals(q).iter().all(|&v| v == 0.0), "a clone's biases start at zero");
            }
        }

        // Training the clone leaves the original as it was.
        let before = model.predict(&x)?;
        twin.compile(Adam::new(0.05), "sparse_categorical_crossentropy", ())?;
        twin.fit(&x, &y, quiet().epochs(1))?;
        assert_eq!(vals(&model.predict(&x)?), vals(&before));

        // With the weights copied over, the clone computes what the original does.
        twin.set_weights(&model.get_weights()?)?;
        assert_eq!(vals(&twin.predict(&x)?), vals(&before));
    }
    Ok(())
}
