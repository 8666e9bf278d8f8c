//! The attention layers', `Bidirectional`'s and `Dot`'s gradients against
//! finite differences, and properties of their masks, dropout and errors.

use strata_core::{Rng, Tensor};

use super::*;
use crate::testutil::*;
use crate::{Bidirectional, BuildContext, CallContext, Dot, Layer, LayerClass, TensorSpec, Weight, LSTM};

fn seq(steps: usize, dim: usize) -> TensorSpec {
    spec(&[None, Some(steps), Some(dim)])
}

fn built(layer: &mut dyn Layer, specs: &[TensorSpec]) -> Vec<Weight> {
    let mut weights = Vec::new();
    layer.build_multi(specs, &mut BuildContext::new(&mut weights, &mut Rng::seed(3), &dev())).unwrap();
    weights
}

fn normal(shape: &[usize], seed: u64) -> Tensor {
    Tensor::rand_normal(shape.to_vec(), 0.0, 0.7, &mut Rng::seed(seed), &dev()).unwrap()
}

/// Every output of `layer`, flattened and joined, with the weights
/// replaced by `values`.
fn flat_outputs(
    layer: &dyn Layer,
    like: &[Weight],
    values: &[Tensor],
    inputs: &[Tensor],
    masks: &[Option<Tensor>],
) -> strata_core::Result<Tensor> {
    let weights: Vec<Weight> = like.iter().zip(values).map(|(w, v)| Weight { value: v.clone(), ..w.clone() }).collect();
    let outs = layer.call_multi(inputs, &mut CallContext::new(false, masks, &weights, &mut Rng::seed(1)))?;
    let flat: Vec<Tensor> = outs.iter().map(|o| o.reshape([o.numel()])).collect::<strata_core::Result<_>>()?;
    Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)
}

/// The gradients to every input and weight, through every output of a
/// masked call, against central finite differences.
#[test]
fn gradients_match_finite_differences() {
    let qmask = t(&[1., 1., 0., 1., 0., 0.], &[2, 3]);
    let vmask = t(&[1., 1., 1., 0., 1., 1., 0., 1.], &[2, 4]);
    /// A name, the layer, its inputs' shapes and their masks.
    type Case = (&'static str, Box<dyn Layer>, Vec<Vec<usize>>, Vec<Option<Tensor>>);
    let cases: Vec<Case> = vec![
        (
            "MultiHeadAttention",
            Box::new(MultiHeadAttention::new(2, 2).value_dim(3).return_attention_scores(true)),
            vec![vec![2, 3, 3], vec![2, 4, 2], vec![2, 4, 4]],
            vec![Some(qmask.clone()), Some(vmask.clone()), None],
        ),
        (
            "MultiHeadAttention causal",
            Box::new(MultiHeadAttention::new(1, 2).use_causal_mask(true).use_bias(false)),
            vec![vec![2, 4, 3], vec![2, 4, 3]],
            vec![None, Some(vmask.clone())],
        ),
        (
            "Attention",
            Box::new(Attention::new().use_scale(true).return_attention_scores(true)),
            vec![vec![2, 3, 2], vec![2, 4, 3], vec![2, 4, 2]],
            vec![Some(qmask.clone()), Some(vmask.clone()), None],
        ),
        (
            "Attention concat causal",
            Box::new(Attention::new().score_mode("concat").use_scale(true).use_causal_mask(true)),
            vec![vec![2, 3, 2], vec![2, 4, 2]],
            vec![None, Some(vmask.clone())],
        ),
        (
            "AdditiveAttention",
            Box::new(AdditiveAttention::new()),
            vec![vec![2, 3, 2], vec![2, 4, 2]],
            vec![Some(qmask.clone()), Some(vmask.clone())],
        ),
        (
            "Bidirectional",
            Box::new(Bidirectional::new(LSTM::new(2).return_sequences(true).return_state(true))),
            vec![vec![2, 4, 2]],
            vec![Some(vmask.clone())],
        ),
        ("Dot", Box::new(Dot::new((1, 2)).normalize(true)), vec![vec![2, 3, 4], vec![2, 2, 3]], vec![None, None]),
    ];
    for (what, mut layer, shapes, masks) in cases {
        let specs: Vec<TensorSpec> = shapes
            .iter()
            .map(|s| spec(&std::iter::once(None).chain(s[1..].iter().map(|&d| Some(d))).collect::<Vec<_>>()))
            .collect();
        let weights = built(layer.as_mut(), &specs);
        let mut values: Vec<(Vec<f32>, strata_core::Shape)> = Vec::new();
        for (k, s) in shapes.iter().enumerate() {
            let x = normal(s, 40 + k as u64);
            values.push((vals(&x), x.shape().clone()));
        }
        for (k, w) in weights.iter().enumerate() {
            let v = normal(w.value.dims(), 60 + k as u64).mul_scalar(0.7).unwrap();
            values.push((vals(&v), v.shape().clone()));
        }
        let n = shapes.len();
        strata_conformance::check_grad(what, &dev(), &values, 1e-2, |v| {
            flat_outputs(layer.as_ref(), &weights, &v[n..], &v[..n], &masks)
        })
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    }
}

/// Masked value steps get no weight, masked query steps zero weights (and,
/// for `Attention`, a zero output); the causal mask hides later steps.
#[test]
fn masks_decide_what_is_attended() {
    let q = normal(&[2, 3, 4], 1);
    let v = normal(&[2, 5, 4], 2);
    let vmask = t(&[1., 1., 0., 1., 0., 1., 1., 1., 1., 1.], &[2, 5]);
    let qmask = t(&[1., 1., 0., 1., 1., 1.], &[2, 3]);
    let mut mha = MultiHeadAttention::new(2, 2).return_attention_scores(true).use_causal_mask(true);
    let w = built(&mut mha, &[seq(3, 4), seq(5, 4)]);
    let masks = [Some(qmask.clone()), Some(vmask.clone())];
    let out =
        mha.call_multi(&[q.clone(), v.clone()], &mut CallContext::new(false, &masks, &w, &mut Rng::seed(0))).unwrap();
    let scores = vals(&out[1]); // [2, heads 2, 3, 5]
    for b in 0..2 {
        for h in 0..2 {
            for i in 0..3 {
                let row = &scores[((b * 2 + h) * 3 + i) * 5..][..5];
                let q_on = vals(&qmask)[b * 3 + i] > 0.5;
                for (j, &p) in row.iter().enumerate() {
                    let seen = q_on && vals(&vmask)[b * 5 + j] > 0.5 && j <= i;
                    assert!(seen || p == 0.0, "b{b} h{h} i{i} j{j}: weight {p} on a hidden step");
                }
                let sum: f32 = row.iter().sum();
                assert!(!q_on || (sum - 1.0).abs() < 1e-5, "b{b} h{h} i{i}: weights sum to {sum}");
            }
        }
    }
    // The output mask is the query's; the scores have none.
    let m = mha.compute_masks(&[q.clone(), v.clone()], &masks).unwrap();
    assert_eq!(vals(m[0].as_ref().unwrap()), vals(&qmask));
    assert!(m[1].is_none());

    let att = Attention::new();
    let y = call(&att, &[q.clone(), v.clone()], &masks, &[], false).unwrap();
    let y = vals(&y);
    assert!(y[2 * 4..3 * 4].iter().all(|&x| x == 0.0), "a masked query step outputs zeros");
    // Changing a masked value step changes nothing.
    let v2 = v.add(&t(&[0.0; 40], &[2, 5, 4]).add_scalar(0.0).unwrap()).unwrap();
    let mut data = vals(&v2);
    for d in 0..4 {
        data[2 * 4 + d] += 5.0;
    }
    let y2 = call(&att, &[q, t(&data, &[2, 5, 4])], &masks, &[], false).unwrap();
    close(&vals(&y2), &y, 1e-6);
}

/// The attention mask given as an input, a 0/1 `(batch, T, S)` tensor.
#[test]
fn an_attention_mask_input_hides_steps() {
    let q = normal(&[1, 2, 3], 5);
    let mut mha = MultiHeadAttention::new(1, 2).attention_mask_input(true).return_attention_scores(true);
    let w = built(&mut mha, &[seq(2, 3), seq(3, 3), seq(2, 3)]);
    let am = t(&[1., 0., 1., 0., 1., 0.], &[1, 2, 3]);
    let v = normal(&[1, 3, 3], 6);
    let out =
        mha.call_multi(&[q, v, am], &mut CallContext::new(false, &[None, None, None], &w, &mut Rng::seed(0))).unwrap();
    let s = vals(&out[1]);
    assert_eq!(s[1], 0.0);
    assert_eq!(s[3], 0.0);
    assert_eq!(s[5], 0.0);
    assert!((s[0] + s[2] - 1.0).abs() < 1e-6 && (s[4] - 1.0).abs() < 1e-6, "{s:?}");
}

/// Dropout on the attention weights only in training, from the layer's own
/// generator when seeded.
#[test]
fn dropout_applies_only_in_training() {
    let q = normal(&[2, 3, 4], 7);
    let mut mha = MultiHeadAttention::new(2, 2).dropout(0.5).seed(3);
    let w = built(&mut mha, &[seq(3, 4), seq(3, 4)]);
    let run = |layer: &MultiHeadAttention, training: bool| {
        vals(
            &layer
                .call(&[q.clone(), q.clone()], &mut CallContext::new(training, &[None, None], &w, &mut Rng::seed(0)))
                .unwrap(),
        )
    };
    let plain = MultiHeadAttention::new(2, 2);
    assert_eq!(run(&mha, false), run(&plain, false));
    assert_ne!(run(&mha, true), run(&plain, false));
    // Same seed, same noise: a copy continues from the same generator state.
    let fresh = MultiHeadAttention::new(2, 2).dropout(0.5).seed(3);
    let copy = fresh.clone();
    assert_eq!(run(&fresh, true), run(&copy, true));
}

#[test]
fn bad_arguments_and_inputs_are_errors() {
    let e = err(MultiHeadAttention::new(0, 2)
        .build(&[seq(3, 4), seq(3, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("num_heads"), "{e}");
    let e = err(MultiHeadAttention::from_config(&serde_json::json!({"num_heads": 2, "key_dim": 2, "use_gate": true})));
    assert!(e.contains("use_gate"), "{e}");
    let e = err(MultiHeadAttention::from_config(&serde_json::json!({"num_heads": 2, "key_dim": 2, "value_dim": 0})));
    assert!(e.contains("value_dim must be > 0"), "{e}");
    let e = err(MultiHeadAttention::from_config(&serde_json::json!({"num_heads": 2, "key_dim": 2, "dropout": 1.5})));
    assert!(e.contains("dropout"), "{e}");
    let e = err(MultiHeadAttention::new(2, 2)
        .build(&[seq(3, 4), seq(5, 4), seq(4, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("value and the key"), "{e}");
    let e = err(Attention::new()
        .score_mode("general")
        .build(&[seq(3, 4), seq(5, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("score_mode"), "{e}");
    // With a key, the value's last axis may differ from the query's: it is the output's.
    let (out, _) = build(&mut Attention::new(), &[seq(3, 4), seq(5, 3), seq(5, 4)]).unwrap();
    assert_eq!(out.to_string(), "(None, 3, 3)");
    let e = err(Attention::new()
        .build(&[seq(3, 4), seq(5, 3), seq(5, 2)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("one last axis"), "{e}");
    let e = err(AdditiveAttention::new()
        .dropout(1.0)
        .build(&[seq(3, 4), seq(5, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("dropout"), "{e}");
    let e =
        err(Dot::new(0)
            .build(&[seq(3, 4), seq(3, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("non-batch"), "{e}");
    let e =
        err(Dot::new(2)
            .build(&[seq(3, 4), seq(3, 5)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("differ"), "{e}");
    let e = err(Bidirectional::new(crate::Dense::new(3))
        .build(&[seq(3, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("recurrent layer") && e.contains("Dense"), "{e}");
    let e = err(Bidirectional::new(LSTM::new(3).go_backwards(true))
        .build(&[seq(3, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("go_backwards"), "{e}");
    let e = err(Bidirectional::new(LSTM::new(3))
        .backward_layer(LSTM::new(3).go_backwards(true).return_sequences(true))
        .build(&[seq(3, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())));
    assert!(e.contains("return_sequences"), "{e}");
    // A mask of the wrong shape names the expected one.
    let mut att = Attention::new();
    att.build(&[seq(3, 4), seq(5, 4)], &mut BuildContext::new(&mut Vec::new(), &mut Rng::seed(0), &dev())).unwrap();
    let e = err(call(
        &att,
        &[normal(&[2, 3, 4], 1), normal(&[2, 5, 4], 2)],
        &[None, Some(t(&[1.0; 6], &[2, 3]))],
        &[],
        false,
    ));
    assert!(e.contains("(2, 5)"), "{e}");
}

/// Called directly (outside a model) with tensors of the wrong rank, the
/// layers return errors rather than panicking.
#[test]
fn wrong_ranks_outside_a_model_are_errors() {
    let flat = normal(&[2, 4], 1);
    let seq3 = normal(&[2, 3, 4], 2);
    let mut mha = MultiHeadAttention::new(1, 2);
    let w = built(&mut mha, &[seq(3, 4), seq(3, 4)]);
    let mut rng = Rng::seed(0);
    let e = err(mha.call(&[flat.clone(), seq3.clone()], &mut CallContext::new(false, &[None, None], &w, &mut rng)));
    assert!(e.contains("query") && e.contains("[2, 4]"), "{e}");
    let e = err(call(&Attention::new(), &[seq3.clone(), flat.clone()], &[], &[], false));
    assert!(e.contains("value"), "{e}");
    let e = err(call(
        &AdditiveAttention::new().use_scale(false),
        &[seq3.clone(), seq3.clone(), seq3.clone(), seq3.clone()],
        &[],
        &[],
        false,
    ));
    assert!(e.contains("4 inputs"), "{e}");
    let mut td = crate::TimeDistributed::new(crate::Dense::new(2));
    let (_, w) = build(&mut td, &[seq(3, 4)]).unwrap();
    let e = err(call(&td, &[flat], &[], &w, false));
    assert!(e.contains("at least 3 axes"), "{e}");
}
