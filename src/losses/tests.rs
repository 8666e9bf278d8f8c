use super::*;
use crate::backend;

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::new(data.to_vec(), shape.to_vec(), &backend::native()).unwrap()
}

/// Sparse and dense categorical cross-entropy on a recorded softmax read
/// its logits: the clipped formula's value where probabilities are
/// moderate, the gradient `(softmax(z) − onehot) / rows` to the logits,
/// and past the clip the exact `−log p` instead of `−log ε`.
#[test]
fn cross_entropy_reads_the_logits_under_a_recorded_softmax() -> Result<()> {
    let dev = backend::native();
    let zv = [1.0f32, 2.0, 0.5, -1.0, 0.0, 3.0];
    let z = Tensor::new(zv.to_vec(), [2, 3], &dev)?.to_variable()?;
    let p = z.softmax(-1)?;
    assert!(p.softmax_input().is_some() && p.detach().softmax_input().is_none());
    let ids = Tensor::new(vec![2i64, 0], [2], &dev)?;
    let one_hot = Tensor::new(vec![0.0f32, 0.0, 1.0, 1.0, 0.0, 0.0], [2, 3], &dev)?;
    let probs: Vec<f64> = (0..2)
        .flat_map(|r| {
            let row = &zv[r * 3..r * 3 + 3];
            let sum: f64 = row.iter().map(|&v| (v as f64).exp()).sum();
            row.iter().map(move |&v| (v as f64).exp() / sum)
        })
        .collect();
    for (loss, y) in [
        (Loss::SparseCategoricalCrossentropy { from_logits: false }, &ids),
        (Loss::CategoricalCrossentropy { from_logits: false }, &one_hot),
    ] {
        let fused = loss.compute(y, &p, None, None)?;
        let clipped = loss.compute(y, &p.detach(), None, None)?.to_scalar::<f32>()?;
        let want = -(probs[2].ln() + probs[3].ln()) / 2.0;
        assert!((fused.to_scalar::<f32>()? as f64 - want).abs() < 1e-6, "{loss:?}");
        assert!((clipped as f64 - want).abs() < 1e-6, "{loss:?}");
        let grads = fused.backward()?;
        let g = grads.get(&z).expect("a gradient for the logits").to_vec::<f32>()?;
        let hot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        for i in 0..6 {
            assert!((g[i] as f64 - (probs[i] - hot[i]) / 2.0).abs() < 1e-6, "{loss:?}: {g:?}");
        }
    }
    // Saturated: p(class 1) = e^-30 / (1 + 2e^-30), far below ε.
    let z = Tensor::new(vec![30.0f32, 0.0, 0.0], [1, 3], &dev)?.to_variable()?;
    let p = z.softmax(-1)?;
    let label = Tensor::new(vec![1i64], [1], &dev)?;
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
    assert!((loss.compute(&label, &p, None, None)?.to_scalar::<f32>()? - 30.0).abs() < 1e-5);
    let clipped = loss.compute(&label, &p.detach(), None, None)?.to_scalar::<f32>()?;
    assert!((clipped as f64 + EPSILON.ln()).abs() < 1e-4, "{clipped}");
    Ok(())
}

#[test]
fn names_resolve_and_unknown_lists_valid_ones() {
    assert_eq!(Loss::from_name("mse").unwrap(), Loss::MeanSquaredError);
    assert_eq!(Loss::from_name("MeanAbsoluteError").unwrap(), Loss::MeanAbsoluteError);
    assert_eq!(Loss::from_name("huber").unwrap(), Loss::Huber { delta: 1.0 });
    assert_eq!(
        Loss::from_name("sparse_categorical_crossentropy").unwrap(),
        Loss::SparseCategoricalCrossentropy { from_logits: false }
    );
    let e = Loss::from_name("cross_entropy").unwrap_err().to_string();
    assert!(e.contains("cross_entropy"), "{e}");
    for name in LOSS_NAMES {
        assert!(e.contains(name), "{e} lacks {name}");
    }
    assert!("msq".into_loss().is_err());
    assert_eq!(String::from("mae").into_loss().unwrap(), Loss::MeanAbsoluteError);
}

#[test]
fn configs_round_trip() {
    let losses = [
        Loss::MeanSquaredError,
        Loss::MeanAbsoluteError,
        Loss::Huber { delta: 2.5 },
        Loss::BinaryCrossentropy { from_logits: true },
        Loss::BinaryCrossentropy { from_logits: false },
        Loss::CategoricalCrossentropy { from_logits: true },
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        Loss::SparseCategoricalCrossentropy { from_logits: false },
    ];
    for loss in losses {
        let config = loss.get_config();
        assert_eq!(Loss::from_config(&config).unwrap(), loss, "{config}");
        let text = serde_json::to_string(&config).unwrap();
        assert_eq!(Loss::from_config(&serde_json::from_str(&text).unwrap()).unwrap(), loss);
    }
    assert_eq!(Loss::from_config(&json!("mse")).unwrap(), Loss::MeanSquaredError);
    // Keras' own config for BinaryCrossentropy(from_logits=True).
    let keras = json!({"class_name": "BinaryCrossentropy", "config": {"name": "binary_crossentropy",
        "reduction": "sum_over_batch_size", "from_logits": true, "label_smoothing": 0.0, "axis": -1}});
    assert_eq!(Loss::from_config(&keras).unwrap(), Loss::BinaryCrossentropy { from_logits: true });
    let smoothing = json!({"class_name": "BinaryCrossentropy", "config": {"label_smoothing": 0.1}});
    let e = Loss::from_config(&smoothing).unwrap_err().to_string();
    assert!(e.contains("label_smoothing"), "{e}");
    let e = Loss::from_config(&json!({"class_name": "Hinge"})).unwrap_err().to_string();
    assert!(e.contains("Hinge") && e.contains("Huber"), "{e}");
    let e = Loss::from_config(&json!({"class_name": "Huber", "config": {"delta": -1.0}})).unwrap_err().to_string();
    assert!(e.contains("delta"), "{e}");
}

#[test]
fn custom_losses_register_and_round_trip() {
    let cube = CustomLoss::new("test_mean_cube", |t, p| p.sub(t)?.abs()?.pow_scalar(3.0)?.mean(&[-1], false));
    let loss = Loss::Custom(cube.clone());
    let e = Loss::from_config(&loss.get_config()).unwrap_err().to_string();
    assert!(e.contains("not registered"), "{e}");
    register_loss(&cube).unwrap();
    assert_eq!(Loss::from_config(&loss.get_config()).unwrap(), loss);
    assert_eq!(Loss::from_name("test_mean_cube").unwrap(), loss);
    assert!(Loss::from_name("nope").unwrap_err().to_string().contains("test_mean_cube"));
    assert!(register_loss(&CustomLoss::new("mse", |t, _| Ok(t.clone()))).is_err());
    let v = loss.compute(&t(&[0.0, 0.0], &[1, 2]), &t(&[1.0, 2.0], &[1, 2]), None, None).unwrap();
    assert_eq!(v.to_scalar::<f32>().unwrap(), 4.5);
}

#[test]
fn sparse_labels_out_of_range_name_value_and_index() {
    let loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
    let spec = TensorSpec::batched(&[10], DType::F32);
    let dev = backend::native();
    let mut labels: Vec<i64> = (0..400).map(|i| i % 10).collect();
    labels[345] = 12;
    let y = Tensor::new(labels, [400], &dev).unwrap();
    let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
    assert_eq!(e, "sparse_categorical_crossentropy: label 12 at index 345 is outside [0, 10)");
    let y = t(&[1.0, -1.0], &[2]);
    let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
    assert!(e.contains("label -1 at index 1"), "{e}");
    let y = t(&[1.0, 2.5], &[2, 1]);
    let e = loss.check_targets(&y, &spec).unwrap_err().to_string();
    assert!(e.contains("label 2.5 at index 1 is not an integer"), "{e}");
    assert!(loss.check_targets(&t(&[1.0, 9.0], &[2, 1]), &spec).is_ok());
    // compute does not check (that would sync every batch): a bad id weighs 0, as in Keras on JAX.
    let y = Tensor::new(vec![3i64, 10], [2], &dev).unwrap();
    let v = loss.per_sample(&y, &Tensor::zeros([2, 10], DType::F32, &dev).unwrap()).unwrap();
    assert_eq!(v.to_vec::<f32>().unwrap()[1], 0.0);
}

#[test]
fn target_shape_mismatches_are_errors() {
    let spec = TensorSpec::batched(&[10], DType::F32);
    let dev = backend::native();
    // Sparse targets for categorical cross-entropy.
    let ids = Tensor::new(vec![1i64, 2, 3], [3], &dev).unwrap();
    let e = Loss::from_name("categorical_crossentropy").unwrap().check_targets(&ids, &spec).unwrap_err();
    let e = e.to_string();
    assert!(e.contains("(3,)") && e.contains("(None, 10)") && e.contains("sparse_categorical"), "{e}");
    // One-hot targets for sparse categorical cross-entropy.
    let one_hot = Tensor::zeros([3, 10], DType::F32, &dev).unwrap();
    let e = Loss::from_name("sparse_categorical_crossentropy").unwrap().check_targets(&one_hot, &spec);
    let e = e.unwrap_err().to_string();
    assert!(e.contains("(3, 10)") && e.contains("class ids must have shape (3,)"), "{e}");
    // Binary: [batch] fits [batch, 1], [batch, 2] does not.
    let bce = Loss::from_name("binary_crossentropy").unwrap();
    let one = TensorSpec::batched(&[1], DType::F32);
    assert!(bce.check_targets(&t(&[0.0, 1.0], &[2]), &one).is_ok());
    assert!(bce.check_targets(&t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]), &one).is_err());
    // Regression: broadcastable shapes are fine, others are not.
    let mse = Loss::MeanSquaredError;
    let three = TensorSpec::batched(&[3], DType::F32);
    assert!(mse.check_targets(&Tensor::zeros([4, 3], DType::F32, &dev).unwrap(), &three).is_ok());
    assert!(mse.check_targets(&Tensor::zeros([4, 1], DType::F32, &dev).unwrap(), &three).is_ok());
    let e = mse.check_targets(&Tensor::zeros([4, 2], DType::F32, &dev).unwrap(), &three).unwrap_err();
    assert!(e.to_string().contains("broadcast"), "{e}");
    assert!(mse.check_targets(&Tensor::zeros([4], DType::F32, &dev).unwrap(), &three).is_err());
    // per_sample checks too.
    let e = bce.per_sample(&t(&[0.0, 1.0, 1.0], &[3, 1]), &t(&[0.5, 0.5], &[2, 1])).unwrap_err();
    assert!(e.to_string().contains("binary_crossentropy"), "{e}");
}

#[test]
fn probabilities_of_exactly_zero_and_one_stay_finite() {
    let y_true = t(&[1.0, 0.0, 1.0, 0.0], &[2, 2]);
    let y_pred = t(&[0.0, 1.0, 1.0, 0.0], &[2, 2]);
    for loss in [Loss::BinaryCrossentropy { from_logits: false }, Loss::CategoricalCrossentropy { from_logits: false }]
    {
        let v = loss.per_sample(&y_true, &y_pred).unwrap().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{loss}: {v:?}");
    }
    // Logits far out are stable too.
    let logits = t(&[-200.0, 200.0, 200.0, -200.0], &[2, 2]);
    for loss in [Loss::BinaryCrossentropy { from_logits: true }, Loss::CategoricalCrossentropy { from_logits: true }] {
        let v = loss.per_sample(&y_true, &logits).unwrap().to_vec::<f32>().unwrap();
        assert!(v.iter().all(|x| x.is_finite()), "{loss}: {v:?}");
    }
}

/// d loss / d y_pred by central differences against autodiff, for every
/// built-in loss, with a sample weight and a mask.
#[test]
fn gradients_match_finite_differences() {
    let dev = backend::native();
    let pred = [0.3f32, -0.7, 1.2, 0.1, 0.4, -1.5];
    let probs = [0.2f32, 0.5, 0.3, 0.6, 0.1, 0.3];
    let cases: Vec<(Loss, Tensor, &[f32])> = vec![
        (Loss::MeanSquaredError, t(&[0.0, 1.0, 2.0, 0.5, 0.5, -1.0], &[2, 3]), &pred),
        (Loss::MeanAbsoluteError, t(&[0.0, 1.0, 2.0, 0.5, 0.0, -1.0], &[2, 3]), &pred),
        (Loss::Huber { delta: 0.5 }, t(&[0.0, 1.0, 2.0, 0.5, 0.5, -1.0], &[2, 3]), &pred),
        (Loss::BinaryCrossentropy { from_logits: true }, t(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]), &pred),
        (Loss::BinaryCrossentropy { from_logits: false }, t(&[0.0, 1.0, 1.0, 0.0, 1.0, 0.0], &[2, 3]), &probs),
        (Loss::CategoricalCrossentropy { from_logits: true }, t(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]), &pred),
        (Loss::CategoricalCrossentropy { from_logits: false }, t(&[0.0, 1.0, 0.0, 0.0, 0.0, 1.0], &[2, 3]), &probs),
        (Loss::SparseCategoricalCrossentropy { from_logits: true }, t(&[1.0, 2.0], &[2]), &pred),
        (Loss::SparseCategoricalCrossentropy { from_logits: false }, t(&[1.0, 2.0], &[2, 1]), &probs),
    ];
    let weight = t(&[0.5, 2.0], &[2]);
    let mask = t(&[1.0, 1.0], &[2]);
    for (loss, y_true, values) in cases {
        let y_pred = Tensor::new(values.to_vec(), [2, 3], &dev).unwrap().to_variable().unwrap();
        let value = loss.compute(&y_true, &y_pred, Some(&weight), Some(&mask)).unwrap();
        let grad = value.backward().unwrap();
        let grad = grad.get(&y_pred).expect("gradient reaches y_pred").to_vec::<f32>().unwrap();
        let eval = |v: &[f32]| -> f64 {
            let p = Tensor::new(v.to_vec(), [2, 3], &dev).unwrap();
            loss.compute(&y_true, &p, Some(&weight), Some(&mask)).unwrap().to_scalar::<f32>().unwrap() as f64
        };
        let h = 1e-2f32;
        for i in 0..values.len() {
            let (mut up, mut down) = (values.to_vec(), values.to_vec());
            up[i] += h;
            down[i] -= h;
            let numeric = (eval(&up) - eval(&down)) / (2.0 * h as f64);
            let analytic = grad[i] as f64;
            assert!(
                (numeric - analytic).abs() < 2e-3 + 1e-2 * numeric.abs(),
                "{loss} d/dy_pred[{i}]: autodiff {analytic}, finite differences {numeric}"
            );
        }
    }
}

#[test]
fn masks_and_weights_reduce_like_keras() {
    // Per-sample losses [1, 2, 3, 4] (MAE against zeros), mask [1, 1, 0, 1], weights [1, 2, 3, 4]:
    // Keras: Σ l·w·m / valid = (1 + 4 + 16) / 3 = 7.
    let y_true = t(&[0.0; 4], &[4, 1]);
    let y_pred = t(&[1.0, 2.0, 3.0, 4.0], &[4, 1]);
    let w = t(&[1.0, 2.0, 3.0, 4.0], &[4]);
    let m = t(&[1.0, 1.0, 0.0, 1.0], &[4]);
    let loss = Loss::MeanAbsoluteError;
    let v = |w, m| loss.compute(&y_true, &y_pred, w, m).unwrap().to_scalar::<f32>().unwrap();
    assert_eq!(v(None, None), 2.5);
    assert_eq!(v(Some(&w), None), 7.5);
    assert!((v(None, Some(&m)) - 7.0 / 3.0).abs() < 1e-6);
    assert_eq!(v(Some(&w), Some(&m)), 7.0);
    // Nothing valid: 0, not NaN.
    assert_eq!(v(None, Some(&t(&[0.0; 4], &[4]))), 0.0);
    // A weight that fits nothing is an error naming both shapes.
    let e = loss.compute(&y_true, &y_pred, Some(&t(&[1.0; 3], &[3])), None).unwrap_err().to_string();
    assert!(e.contains("[4]") && e.contains("[3]"), "{e}");
}
