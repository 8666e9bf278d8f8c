//! A layer test harness in the style of Keras' `run_layer_test`, run for
//! every built-in layer on every backend: config round trip, output spec
//! from shape inference, weight names and shapes, the output's concrete
//! shape, mask in and out, and — for layers with weights — one SGD step that
//! lowers a loss.

use anyhow::{ensure, Result};
use strata::layers::*;
use strata::prelude::*;

/// What a layer does with an incoming mask.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Masks {
    /// Makes one from its input (Embedding(mask_zero), Masking).
    Creates,
    /// Makes none, and takes no mask-carrying input (Embedding without mask_zero).
    MakesNone,
    /// Carries it to its output.
    Passes,
    /// Uses it and returns none (pooling).
    Consumes,
    /// Returns an error naming itself.
    Rejects,
}

struct Case {
    make: fn() -> Box<dyn Layer>,
    /// Input shapes without the batch axis, and dtype.
    inputs: Vec<(Vec<usize>, DType)>,
    /// The inferred output spec, as Keras prints it.
    output: &'static str,
    /// Weight names and shapes.
    weights: Vec<(&'static str, Vec<usize>)>,
    masks: Masks,
}

fn f32_in(dims: &[usize]) -> (Vec<usize>, DType) {
    (dims.to_vec(), DType::F32)
}

fn cases() -> Vec<Case> {
    use Masks::*;
    vec![
        Case {
            make: || Box::new(Dense::new(4).activation("relu")),
            inputs: vec![f32_in(&[3])],
            output: "(None, 4)",
            weights: vec![("kernel", vec![3, 4]), ("bias", vec![4])],
            masks: Passes,
        },
        Case {
            make: || Box::new(Dense::new(2).use_bias(false).kernel_regularizer(Regularizer::l2(0.01))),
            inputs: vec![f32_in(&[5, 3])],
            output: "(None, 5, 2)",
            weights: vec![("kernel", vec![3, 2])],
            masks: Passes,
        },
        Case {
            make: || Box::new(ActivationLayer::new("gelu")),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![],
            masks: Passes,
        },
        Case {
            make: || Box::new(Embedding::new(7, 3)),
            inputs: vec![(vec![5], DType::I64)],
            output: "(None, 5, 3)",
            weights: vec![("embeddings", vec![7, 3])],
            masks: MakesNone,
        },
        Case {
            make: || Box::new(Embedding::new(7, 3).mask_zero(true)),
            inputs: vec![(vec![5], DType::I64)],
            output: "(None, 5, 3)",
            weights: vec![("embeddings", vec![7, 3])],
            masks: Creates,
        },
        Case {
            make: || Box::new(Masking::new(0.0)),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![],
            masks: Creates,
        },
        Case {
            make: || Box::new(Lambda::new("harness_double", |x| x.mul_scalar(2.0))),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![],
            masks: Passes,
        },
        Case {
            make: || Box::new(Flatten::new()),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 12)",
            weights: vec![],
            masks: Rejects,
        },
        Case {
            make: || Box::new(Reshape::new([-1, 2])),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 6, 2)",
            weights: vec![],
            masks: Rejects,
        },
        Case {
            make: || Box::new(Dropout::new(0.5)),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![],
            masks: Passes,
        },
        Case {
            make: || Box::new(Concatenate::new()),
            inputs: vec![f32_in(&[4, 3]), f32_in(&[4, 2])],
            output: "(None, 4, 5)",
            weights: vec![],
            masks: Passes,
        },
        Case {
            make: || Box::new(Add::new()),
            inputs: vec![f32_in(&[4, 3]), f32_in(&[4, 3]), f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![],
            masks: Passes,
        },
        Case {
            make: || Box::new(GlobalAveragePooling1D::new()),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 3)",
            weights: vec![],
            masks: Consumes,
        },
        Case {
            make: || Box::new(GlobalMaxPooling1D::new()),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 3)",
            weights: vec![],
            masks: Consumes,
        },
        Case {
            make: || Box::new(LayerNormalization::new()),
            inputs: vec![f32_in(&[4, 3])],
            output: "(None, 4, 3)",
            weights: vec![("gamma", vec![3]), ("beta", vec![3])],
            masks: Passes,
        },
    ]
}

fn inputs(case: &Case) -> Vec<SymbolicTensor> {
    case.inputs.iter().map(|(dims, dtype)| Input::new(dims.clone()).dtype(*dtype)).collect()
}

fn data(case: &Case, dev: &Device, rng: &mut Rng) -> Result<Vec<Tensor>> {
    case.inputs
        .iter()
        .map(|(dims, dtype)| {
            let mut shape = vec![3];
            shape.extend(dims);
            Ok(match dtype {
                DType::F32 => Tensor::rand_normal(shape, 0.0, 1.0, rng, dev)?,
                // Ids in [0, 5), zeros included, for the embeddings.
                DType::I64 => {
                    let n: usize = shape.iter().product();
                    Tensor::new((0..n).map(|i| (i * 7 % 5) as i64).collect::<Vec<_>>(), shape, dev)?
                }
            })
        })
        .collect()
}

fn run_layer_test(case: &Case, dev: &Device) -> Result<()> {
    let layer = (case.make)();
    let class = layer.class_name().to_string();

    // Config round trip through the registry.
    let config = layer.config();
    let rebuilt = layer_from_config(&class, &config)?;
    ensure!(rebuilt.config() == config, "{class}: config round trip changed {config} into {}", rebuilt.config());

    // Shape inference and weights, through a Functional model.
    let xs = inputs(case);
    let y = SharedLayer::from_box(layer).call(&xs)?;
    let model = Model::new_with(&xs, &[y], BuildOptions::new().device(dev).seed(0))?;
    let spec = &model.output_specs()[0];
    ensure!(spec.to_string() == case.output, "{class}: output spec {spec}, expected {}", case.output);
    let name = model.layer_names()[0].to_string();
    let got: Vec<(String, Vec<usize>)> =
        model.get_layer(&name)?.weights().iter().map(|w| (w.name.clone(), w.value.dims().to_vec())).collect();
    let want: Vec<(String, Vec<usize>)> = case.weights.iter().map(|(n, d)| (n.to_string(), d.clone())).collect();
    ensure!(got == want, "{class}: weights {got:?}, expected {want:?}");

    // A forward pass: concrete shape fits the spec, values are finite.
    let mut rng = Rng::seed(1);
    let x = data(case, dev, &mut rng)?;
    let (out, out_masks) = model.forward_masked(&x, false)?;
    ensure!(spec.with_dtype(out[0].dtype()).matches(&out[0]), "{class}: output {:?} vs spec {spec}", out[0].dims());
    ensure!(out[0].to_vec::<f32>()?.iter().all(|v| v.is_finite()), "{class}: non-finite output");

    // Masks.
    match case.masks {
        Masks::Creates => {
            let m = out_masks[0].as_ref().ok_or_else(|| anyhow::anyhow!("{class}: no mask created"))?;
            ensure!(m.dims() == &out[0].dims()[..out[0].rank() - 1], "{class}: mask shape {:?}", m.dims());
        }
        Masks::MakesNone => ensure!(out_masks[0].is_none(), "{class}: unexpected mask"),
        Masks::Passes | Masks::Consumes | Masks::Rejects => {
            // Feed a mask in: a Masking layer in front of every input.
            let xs = inputs(case);
            let masked: Vec<SymbolicTensor> =
                xs.iter().map(|x| Masking::new(0.0).call(x)).collect::<strata::Result<_>>()?;
            let y = SharedLayer::from_box((case.make)()).call(&masked)?;
            let built = Model::new_with(&xs, &[y], BuildOptions::new().device(dev).seed(0));
            let result = built.and_then(|m| m.forward_masked(&x, false));
            match (case.masks, result) {
                (Masks::Passes, Ok((o, m))) => {
                    let m = m[0].as_ref().ok_or_else(|| anyhow::anyhow!("{class}: mask dropped"))?;
                    ensure!(m.dims() == &o[0].dims()[..o[0].rank() - 1], "{class}: mask shape {:?}", m.dims());
                }
                (Masks::Consumes, Ok((_, m))) => ensure!(m[0].is_none(), "{class}: mask not consumed"),
                (Masks::Rejects, Err(e)) => {
                    let e = e.to_string();
                    ensure!(e.contains(&snake_case(&class)) && e.contains("mask"), "{class}: {e}");
                }
                (expected, got) => anyhow::bail!("{class}: expected {expected:?}, got {:?}", got.map(|_| ())),
            }
        }
    }

    // One SGD step lowers a loss, for layers with trainable weights.
    let params = model.trainable_weights();
    if !params.is_empty() {
        let loss_of =
            |m: &Model| -> Result<Tensor> { Ok(m.forward(&x, true)?[0].sub_scalar(0.5)?.square()?.mean_all()?) };
        let before = loss_of(&model)?;
        let grads = before.backward()?;
        no_grad(|| -> Result<()> {
            for p in &params {
                let g = grads.get(&p.value).ok_or_else(|| anyhow::anyhow!("{class}: no gradient for {}", p.name))?;
                p.value.assign(&p.value.sub(&g.mul_scalar(0.05)?)?)?;
            }
            Ok(())
        })?;
        let after = loss_of(&model)?.to_scalar::<f32>()?;
        let before = before.to_scalar::<f32>()?;
        ensure!(after < before, "{class}: loss {before} → {after} after one step");
    }
    Ok(())
}

#[test]
fn every_built_in_layer_passes_the_harness_on_every_backend() -> Result<()> {
    register_lambda(&Lambda::new("harness_double", |x| x.mul_scalar(2.0)));
    let cases = cases();
    let mut covered = std::collections::BTreeSet::new();
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for case in &cases {
            run_layer_test(case, &dev).map_err(|e| e.context(format!("backend {backend}")))?;
            covered.insert((case.make)().class_name().to_string());
        }
    }
    for class in registered_layers() {
        assert!(covered.contains(&class), "the harness has no case for {class}");
    }
    Ok(())
}
