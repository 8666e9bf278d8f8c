use super::*;
use crate::backend;

fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::new(data.to_vec(), shape.to_vec(), &backend::native()).unwrap()
}

#[test]
fn names_resolve_keeping_the_users_key() {
    let mse = Loss::MeanSquaredError;
    let cases: &[(&str, &[usize], &[usize])] =
        &[("mae", &[4, 1], &[4, 1]), ("RMSE", &[4, 1], &[4, 1]), ("auc", &[4], &[4, 1])];
    for (name, t_dims, p_dims) in cases {
        let m = resolve_metric(&(*name).into(), &mse, t_dims, p_dims).unwrap();
        assert_eq!(m.name(), *name);
    }
    let e = resolve_metric(&"f1".into(), &mse, &[4], &[4]).err().unwrap().to_string();
    assert!(e.contains("`f1`"), "{e}");
    for name in METRIC_NAMES {
        assert!(e.contains(name), "{e} lacks {name}");
        assert!(resolve_metric(&(*name).into(), &mse, &[4], &[4, 3]).is_ok(), "{name}");
    }
}

/// Which accuracy "accuracy" becomes: checked by behaviour on a batch
/// that the three kinds score differently.
#[test]
fn accuracy_follows_the_loss_then_keras_shape_rule() {
    fn score(loss: Loss, y_true: &Tensor, y_pred: &Tensor) -> Result<f64> {
        let mut m = resolve_metric(&"accuracy".into(), &loss, y_true.dims(), y_pred.dims())?;
        m.update_state(y_true, y_pred, None, None)?;
        Ok(m.result())
    }
    let p = t(&[0.2, 0.7, 0.1, 0.6, 0.3, 0.1], &[2, 3]);
    let ids = t(&[1.0, 1.0], &[2]);
    let one_hot = t(&[0.0, 1.0, 0.0, 0.0, 1.0, 0.0], &[2, 3]);
    // Sparse targets: SCCE and Keras' rank rule both pick sparse accuracy.
    assert_eq!(score(Loss::SparseCategoricalCrossentropy { from_logits: false }, &ids, &p).unwrap(), 0.5);
    assert_eq!(score(Loss::MeanSquaredError, &ids, &p).unwrap(), 0.5);
    assert_eq!(score(Loss::MeanSquaredError, &t(&[1.0, 1.0], &[2, 1]), &p).unwrap(), 0.5);
    // One-hot targets: categorical.
    assert_eq!(score(Loss::CategoricalCrossentropy { from_logits: false }, &one_hot, &p).unwrap(), 0.5);
    assert_eq!(score(Loss::MeanSquaredError, &one_hot, &p).unwrap(), 0.5);
    // Multi-label outputs with binary cross-entropy: binary (Keras' shape rule would say categorical).
    let multi = t(&[0.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[2, 3]);
    assert!((score(Loss::BinaryCrossentropy { from_logits: false }, &multi, &p).unwrap() - 5.0 / 6.0).abs() < 1e-6);
    // One output unit: binary.
    let p1 = t(&[0.8, 0.3], &[2, 1]);
    assert_eq!(score(Loss::MeanSquaredError, &t(&[1.0, 1.0], &[2, 1]), &p1).unwrap(), 0.5);
}

#[test]
fn metric_objects_resolve_to_fresh_copies() {
    let spec: MetricSpec = Precision::new().threshold(0.3).name("p30").into();
    let mut first = resolve_metric(&spec, &Loss::MeanSquaredError, &[2, 1], &[2, 1]).unwrap();
    first.update_state(&t(&[1.0, 0.0], &[2, 1]), &t(&[0.4, 0.4], &[2, 1]), None, None).unwrap();
    assert_eq!((first.name(), first.result()), ("p30", 0.5));
    let second = resolve_metric(&spec, &Loss::MeanSquaredError, &[2, 1], &[2, 1]).unwrap();
    assert_eq!((second.name(), second.result()), ("p30", 0.0));
    assert!(format!("{spec:?}").contains("p30"));
}

#[test]
fn bad_arguments_and_shapes_are_errors() {
    let y = t(&[1.0, 0.0], &[2, 1]);
    let p = t(&[0.4, 0.6], &[2, 1]);
    let e = Precision::new().threshold(1.5).update_state(&y, &p, None, None).unwrap_err().to_string();
    assert!(e.contains("1.5"), "{e}");
    let e = Auc::new().num_thresholds(1).update_state(&y, &p, None, None).unwrap_err().to_string();
    assert!(e.contains("num_thresholds"), "{e}");
    let e = TopKCategoricalAccuracy::new(0).update_state(&y, &p, None, None).unwrap_err().to_string();
    assert!(e.contains("k must be"), "{e}");
    let e = CategoricalAccuracy::new().update_state(&t(&[1.0, 2.0], &[2]), &t(&[0.0; 6], &[2, 3]), None, None);
    assert!(e.unwrap_err().to_string().contains("sparse_categorical_accuracy"));
    let e = Recall::new().update_state(&y, &p, Some(&t(&[1.0; 3], &[3])), None).unwrap_err().to_string();
    assert!(e.contains("recall") && e.contains("sample weight"), "{e}");
    let e = SparseCategoricalAccuracy::new().update_state(&t(&[5.0, 0.0], &[2]), &t(&[0.0; 6], &[2, 3]), None, None);
    assert!(e.is_ok(), "an out-of-range id is simply a miss, as in Keras");
    let mut top2 = SparseTopKCategoricalAccuracy::new(2);
    top2.update_state(&t(&[5.0, 0.0], &[2]), &t(&[0.1, 0.2, 0.3, 0.3, 0.2, 0.1], &[2, 3]), None, None).unwrap();
    assert_eq!(top2.result(), 0.5, "an out-of-range id is a miss, as in Keras");
}

#[test]
fn empty_metrics_report_zero() {
    assert_eq!(Auc::new().result(), 0.0);
    assert_eq!(Precision::new().result(), 0.0);
    assert_eq!(RootMeanSquaredError::new().result(), 0.0);
}
