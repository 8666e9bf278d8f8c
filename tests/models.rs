//! Sequential and Functional models: graph building, names, shape
//! inference errors, shared and nested layers, weights and summary.

use anyhow::Result;
use strata::prelude::*;

fn dev() -> Device {
    strata::backend::native()
}

fn seq_mlp() -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([4]))
        .add(Dense::new(8).activation("relu"))
        .add(Dense::new(3).activation("softmax"))
        .seed(1)
        .build_on(&dev())?)
}

#[test]
fn sequential_names_shapes_and_params_follow_keras() -> Result<()> {
    let m = seq_mlp()?;
    assert_eq!(m.name(), "sequential");
    assert_eq!(m.layer_names(), ["dense", "dense_1"]);
    assert_eq!(m.output_specs()[0].to_string(), "(None, 3)");
    let names: Vec<String> = m.weights().iter().map(|w| w.name.clone()).collect();
    assert_eq!(names, ["dense.kernel", "dense.bias", "dense_1.kernel", "dense_1.bias"]);
    assert_eq!(m.weight("dense.kernel")?.dims(), [4, 8]);
    assert_eq!(m.weight("dense_1.bias")?.dims(), [3]);
    assert_eq!(m.count_params(), 4 * 8 + 8 + 8 * 3 + 3);
    Ok(())
}

#[test]
fn forward_matches_a_hand_written_computation() -> Result<()> {
    let m = seq_mlp()?;
    let x = Tensor::rand_normal([5, 4], 0.0, 1.0, &mut Rng::seed(3), &dev())?;
    let y = &m.forward(&x, false)?[0];
    let (k0, b0) = (m.weight("dense.kernel")?, m.weight("dense.bias")?);
    let (k1, b1) = (m.weight("dense_1.kernel")?, m.weight("dense_1.bias")?);
    let want = x.matmul(&k0)?.add(&b0)?.relu()?.matmul(&k1)?.add(&b1)?.softmax(-1)?;
    assert_eq!(y.to_vec::<f32>()?, want.to_vec::<f32>()?);
    // Rows of a softmax sum to one.
    for s in y.sum(&[-1], false)?.to_vec::<f32>()? {
        assert!((s - 1.0).abs() < 1e-5);
    }
    Ok(())
}

#[test]
fn the_same_seed_gives_the_same_weights_and_another_seed_does_not() -> Result<()> {
    let a = seq_mlp()?.weight("dense.kernel")?.to_vec::<f32>()?;
    let b = seq_mlp()?.weight("dense.kernel")?.to_vec::<f32>()?;
    assert_eq!(a, b);
    let c = Sequential::new().add(Input::new([4])).add(Dense::new(8)).seed(2).build_on(&dev())?;
    assert_ne!(a, c.weight("dense.kernel")?.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn set_weights_by_name_checks_names_and_shapes() -> Result<()> {
    let m = seq_mlp()?;
    let k = Tensor::ones([4, 8], DType::F32, &dev())?;
    m.set_weights_by_name([("dense.kernel", &k)])?;
    assert_eq!(m.weight("dense.kernel")?.to_vec::<f32>()?, vec![1.0; 32]);
    let bad = Tensor::ones([8, 4], DType::F32, &dev())?;
    let e = m.set_weights_by_name([("dense.kernel", &bad)]).unwrap_err().to_string();
    assert!(e.contains("dense.kernel") && e.contains("[4, 8]") && e.contains("[8, 4]"), "{e}");
    let e = m.set_weights_by_name([("dense.kernal", &k)]).unwrap_err().to_string();
    assert!(e.contains("dense.kernal") && e.contains("dense.kernel"), "{e}");
    let layer = m.get_layer("dense_1")?;
    assert_eq!(layer.class_name(), "Dense");
    assert_eq!(layer.count_params(), 27);
    layer.set_weights(&[Tensor::zeros([8, 3], DType::F32, &dev())?, Tensor::ones([3], DType::F32, &dev())?])?;
    assert_eq!(m.weight("dense_1.bias")?.to_vec::<f32>()?, vec![1.0; 3]);
    let e = m.get_layer("dense_7").err().unwrap().to_string();
    assert!(e.contains("dense_7") && e.contains("dense_1"), "{e}");
    Ok(())
}

#[test]
fn shape_mismatch_names_the_layer_and_both_shapes() -> Result<()> {
    // A shared layer built for 128 features, then called on 64.
    let a = Input::new([128]);
    let b = Input::new([64]);
    let d0 = Dense::new(128).call(&a)?;
    let d1 = Dense::new(128).call(&d0)?;
    let shared = Dense::new(10).shared();
    let y1 = shared.call(&d1)?;
    let y2 = shared.call(&b)?;
    let e = Model::new_with(&[a, b], &[y1, y2], BuildOptions::new().device(&dev())).err().unwrap().to_string();
    assert!(e.contains("dense_2 (Dense)") && e.contains("expects last axis 128, received (None, 64)"), "{e}");
    Ok(())
}

#[test]
fn bad_inputs_at_run_time_are_errors_naming_the_input() -> Result<()> {
    let m = seq_mlp()?;
    let e = m.forward(&[Tensor::zeros([2, 5], DType::F32, &dev())?], false).unwrap_err().to_string();
    assert!(e.contains("input_layer") && e.contains("(None, 4)") && e.contains("(2, 5)"), "{e}");
    let e = m.forward(&Vec::new(), false).unwrap_err().to_string();
    assert!(e.contains("expects 1 input") && e.contains("received 0"), "{e}");
    // Integer features are cast to f32, as Keras does.
    let xi = Tensor::new(vec![1i64, 2, 3, 4], [1, 4], &dev())?;
    let xf = xi.cast(DType::F32)?;
    assert_eq!(m.forward(&xi, false)?[0].to_vec::<f32>()?, m.forward(&xf, false)?[0].to_vec::<f32>()?);
    Ok(())
}

#[test]
fn graph_errors_are_clear() -> Result<()> {
    let opts = || BuildOptions::new().device(&dev());
    // An output that needs an input the model was not given.
    let a = Input::new([3]).name("a");
    let b = Input::new([3]).name("b");
    let y = Dense::new(2).call(&b)?;
    let e = Model::new_with(&a, &[y], opts()).err().unwrap().to_string();
    assert!(e.contains("disconnected") && e.contains("`b`"), "{e}");
    // An input that reaches no output.
    let y = Dense::new(2).call(&a)?;
    let e = Model::new_with(&[a.clone(), b.clone()], &[y], opts()).err().unwrap().to_string();
    assert!(e.contains("`b`") && e.contains("not connected"), "{e}");
    // Duplicate names.
    let x = Dense::new(2).name("head").call(&a)?;
    let y = Dense::new(2).name("head").call(&x)?;
    let e = Model::new_with(&a, &[y], opts()).err().unwrap().to_string();
    assert!(e.contains("duplicate layer name `head`"), "{e}");
    // A layer's output used as a model input.
    let x = Dense::new(2).call(&a)?;
    let e = Model::new_with(&x, &x, opts()).err().unwrap().to_string();
    assert!(e.contains("Input::new"), "{e}");
    // `.name()` on a layer's output.
    let x = Dense::new(2).call(&a)?.name("oops");
    let e = Model::new_with(&a, &[x], opts()).err().unwrap().to_string();
    assert!(e.contains("oops") && e.contains("name the layer"), "{e}");
    // Sequential without an Input, and empty.
    let e = Sequential::new().add(Dense::new(2)).build_on(&dev()).err().unwrap().to_string();
    assert!(e.contains("Input::new"), "{e}");
    assert!(Sequential::new().build_on(&dev()).err().unwrap().to_string().contains("empty"));
    // Invalid arguments surface at build time, naming the layer.
    let e = Sequential::new().add(Input::new([3])).add(Dense::new(2).activation("rleu")).build_on(&dev());
    let e = e.err().unwrap().to_string();
    assert!(e.contains("dense (Dense)") && e.contains("rleu") && e.contains("relu6"), "{e}");
    let e = Sequential::new().add(Input::new([3])).add(Dense::new(0)).build_on(&dev()).err().unwrap().to_string();
    assert!(e.contains("units must be > 0, received 0"), "{e}");
    // Dense on rank-1 input.
    let e = Sequential::new().add(Input::new(Vec::<usize>::new())).add(Dense::new(2)).build_on(&dev());
    assert!(e.err().unwrap().to_string().contains("rank >= 2"));
    Ok(())
}

#[test]
fn explicit_names_and_generated_names_do_not_collide() -> Result<()> {
    let a = Input::new([3]);
    let x = Dense::new(2).name("dense").call(&a)?;
    let y = Dense::new(2).call(&x)?;
    let m = Model::new_with(&[a], &[y], BuildOptions::new().device(&dev()))?;
    assert_eq!(m.layer_names(), ["dense", "dense_1"]);
    assert_eq!(m.input_names(), ["input_layer"]);
    Ok(())
}

#[test]
fn shared_layers_share_weights_and_count_once() -> Result<()> {
    let (a, b) = (Input::new([3]).name("a"), Input::new([3]).name("b"));
    let shared = Dense::new(2).shared();
    let (ya, yb) = (shared.call(&a)?, shared.call(&b)?);
    let m = Model::new_with(&[a, b], &[ya, yb], BuildOptions::new().device(&dev()).seed(0))?;
    assert_eq!(m.layer_names(), ["dense"]);
    assert_eq!(m.count_params(), 3 * 2 + 2);
    let x = Tensor::rand_normal([4, 3], 0.0, 1.0, &mut Rng::seed(1), &dev())?;
    let out = m.forward(&[x.clone(), x], false)?;
    assert_eq!(out[0].to_vec::<f32>()?, out[1].to_vec::<f32>()?);
    let s = m.summary_string();
    // Two rows for the two calls; the weights are counted on the first only.
    assert!(s.contains("a[0][0]") && s.contains("b[0][0]"), "{s}");
    assert_eq!(s.matches("dense (Dense)").count(), 2, "{s}");
    assert!(s.contains(" Total params: 8 (32.00 B)"), "{s}");
    Ok(())
}

#[test]
fn a_model_can_be_a_layer_of_another_and_gradients_reach_its_weights() -> Result<()> {
    let inner = Sequential::new().add(Input::new([3])).add(Dense::new(4).activation("tanh")).name("encoder").seed(0);
    let inner = inner.build_on(&dev())?;
    let inner_kernel = inner.weight("dense.kernel")?;
    let x = Input::new([3]);
    let h = inner.call(&x)?;
    let y = Dense::new(1).call(&h)?;
    let outer = Model::new_with(&[x], &[y], BuildOptions::new().device(&dev()).seed(0))?;
    assert_eq!(outer.layer_names(), ["encoder", "dense"]);
    let names: Vec<String> = outer.weights().iter().map(|w| w.name.clone()).collect();
    assert_eq!(names, ["encoder.dense.kernel", "encoder.dense.bias", "dense.kernel", "dense.bias"]);
    let xt = Tensor::rand_normal([6, 3], 0.0, 1.0, &mut Rng::seed(2), &dev())?;
    let loss = outer.forward(&xt, true)?[0].square()?.mean_all()?;
    let grads = loss.backward()?;
    let g = grads.get(&inner_kernel).expect("gradient reaches the nested model");
    assert!(g.abs()?.sum_all()?.to_scalar::<f32>()? > 0.0);
    let s = outer.summary_string();
    assert!(s.contains("encoder (Sequential)"), "{s}");
    Ok(())
}

#[test]
fn summary_matches_keras_layout() -> Result<()> {
    let m = Sequential::new()
        .add(Input::new([784]))
        .add(Dense::new(256).activation("relu"))
        .add(Dense::new(10).activation("softmax"))
        .build_on(&dev())?;
    let s = m.summary_string();
    // Printed by Keras 3.15 (JAX) for the same model:
    //   keras.Sequential([keras.Input((784,)), keras.layers.Dense(256, activation="relu"),
    //                     keras.layers.Dense(10, activation="softmax")]).summary()
    let expected = "\
Model: \"sequential\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                         ┃ Output Shape                ┃         Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━┩
│ dense (Dense)                        │ (None, 256)                 │         200,960 │
├──────────────────────────────────────┼─────────────────────────────┼─────────────────┤
│ dense_1 (Dense)                      │ (None, 10)                  │           2,570 │
└──────────────────────────────────────┴─────────────────────────────┴─────────────────┘
 Total params: 203,530 (795.04 KB)
 Trainable params: 203,530 (795.04 KB)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(s, expected, "\n{s}");
    Ok(())
}

#[test]
fn regularizers_add_their_penalty() -> Result<()> {
    let m = Sequential::new()
        .add(Input::new([2]))
        .add(Dense::new(2).kernel_regularizer(Regularizer::l2(0.5)).use_bias(false))
        .build_on(&dev())?;
    let k = Tensor::new(vec![1.0f32, 2.0, 3.0, 4.0], [2, 2], &dev())?;
    m.set_weights_by_name([("dense.kernel", &k)])?;
    let p = m.regularization_loss()?.expect("one regularized weight");
    assert!((p.to_scalar::<f32>()? - 0.5 * 30.0).abs() < 1e-5);
    assert!(seq_mlp()?.regularization_loss()?.is_none());
    Ok(())
}

#[test]
fn model_config_lists_layers_and_connections() -> Result<()> {
    let m = seq_mlp()?;
    let c = m.get_config();
    assert_eq!(c["class_name"], "Sequential");
    assert_eq!(c["layers"][1]["name"], "dense_1");
    assert_eq!(c["layers"][1]["config"]["units"], 3);
    assert_eq!(c["layers"][1]["inbound_nodes"][0][0][0], "dense");
    assert_eq!(c["inputs"][0]["config"]["shape"][0], 4);
    assert_eq!(c["outputs"][0][0], "dense_1");
    Ok(())
}

#[test]
fn functional_summary_matches_keras_layout() -> Result<()> {
    let a = Input::new([32]).name("a");
    let b = Input::new([8]).name("b");
    let x = Concatenate::new().call(&[&a, &b])?;
    let x = Dense::new(64).activation("relu").call(&x)?;
    let out = Dense::new(1).activation("sigmoid").call(&x)?;
    let m = Model::new_with(&[a, b], &[out], BuildOptions::new().device(&dev()))?;
    // Printed by Keras 3.15 (JAX) for the same model, with Keras' session-wide
    // counters (functional_1, dense_2, dense_3) replaced by strata's per-model
    // names (functional, dense, dense_1):
    //   a = keras.Input((32,), name="a"); b = keras.Input((8,), name="b")
    //   x = keras.layers.Concatenate()([a, b]); x = keras.layers.Dense(64, activation="relu")(x)
    //   keras.Model([a, b], keras.layers.Dense(1, activation="sigmoid")(x)).summary()
    let expected = "\
Model: \"functional\"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ Layer (type)                  ┃ Output Shape              ┃         Param # ┃ Connected to               ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ a (InputLayer)                │ (None, 32)                │               0 │ -                          │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ b (InputLayer)                │ (None, 8)                 │               0 │ -                          │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ concatenate (Concatenate)     │ (None, 40)                │               0 │ a[0][0], b[0][0]           │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ dense (Dense)                 │ (None, 64)                │           2,624 │ concatenate[0][0]          │
├───────────────────────────────┼───────────────────────────┼─────────────────┼────────────────────────────┤
│ dense_1 (Dense)               │ (None, 1)                 │              65 │ dense[0][0]                │
└───────────────────────────────┴───────────────────────────┴─────────────────┴────────────────────────────┘
 Total params: 2,689 (10.50 KB)
 Trainable params: 2,689 (10.50 KB)
 Non-trainable params: 0 (0.00 B)
";
    assert_eq!(m.summary_string(), expected, "\n{}", m.summary_string());
    Ok(())
}
