//! The recurrent layers' gradients against finite differences, and
//! properties of masks, `go_backwards`, dropout and their errors.

use strata_core::{DType, Rng, Tensor};

use super::*;
use crate::testutil::*;
use crate::{BuildContext, CallContext, Layer, LayerClass, TensorSpec, Weight};

fn seq_spec(steps: usize, features: usize) -> TensorSpec {
    spec(&[None, Some(steps), Some(features)])
}

/// Every output of `layer` on `inputs`, with the weights replaced by `values`.
fn outputs(
    layer: &dyn Layer,
    like: &[Weight],
    values: &[Tensor],
    inputs: &[Tensor],
    mask: Option<&Tensor>,
) -> Vec<Tensor> {
    let weights: Vec<Weight> = like.iter().zip(values).map(|(w, v)| Weight { value: v.clone(), ..w.clone() }).collect();
    let mut masks = vec![None; inputs.len()];
    masks[0] = mask.cloned();
    layer.call_multi(inputs, &mut CallContext::new(false, &masks, &weights, &mut Rng::seed(1))).unwrap()
}

fn built(layer: &mut dyn Layer, specs: &[TensorSpec]) -> Vec<Weight> {
    let mut weights = Vec::new();
    layer.build_multi(specs, &mut BuildContext::new(&mut weights, &mut Rng::seed(3), &dev())).unwrap();
    weights
}

fn values_of(t: &Tensor) -> (Vec<f32>, strata_core::Shape) {
    (vals(t), t.shape().clone())
}

/// The gradients to the sequence, every weight and the initial states,
/// through every output (the sequence and the final states) of a masked
/// call, against central finite differences.
#[test]
fn gradients_match_finite_differences() {
    let layers: Vec<(&str, Box<dyn Layer>, usize)> = vec![
        ("SimpleRNN", Box::new(SimpleRNN::new(3).return_sequences(true).return_state(true)), 1),
        ("LSTM", Box::new(LSTM::new(3).return_sequences(true).return_state(true)), 2),
        ("GRU", Box::new(GRU::new(3).return_sequences(true).return_state(true)), 1),
        ("GRU reset before", Box::new(GRU::new(3).reset_after(false).return_sequences(true).return_state(true)), 1),
        ("LSTM backwards", Box::new(LSTM::new(2).go_backwards(true).return_state(true)), 2),
    ];
    let mask = t(&[1., 1., 1., 0., 0., 0., 1., 1., 0., 1.], &[2, 5]);
    for (what, mut layer, states) in layers {
        let units = if what == "LSTM backwards" { 2 } else { 3 };
        let mut specs = vec![seq_spec(5, 2)];
        specs.extend((0..states).map(|_| spec(&[None, Some(units)])));
        let weights = built(layer.as_mut(), &specs);
        let x = Tensor::rand_normal([2, 5, 2], 0.0, 1.0, &mut Rng::seed(9), &dev()).unwrap();
        let mut inputs = vec![values_of(&x)];
        for w in &weights {
            // Small random weights (not the unit forget bias) so no gate saturates.
            let v = Tensor::rand_normal(w.value.shape().clone(), 0.0, 0.5, &mut Rng::seed(11), &dev()).unwrap();
            inputs.push(values_of(&v));
        }
        for k in 0..states {
            let s = Tensor::rand_normal([2, units], 0.0, 0.5, &mut Rng::seed(20 + k as u64), &dev()).unwrap();
            inputs.push(values_of(&s));
        }
        let n = weights.len();
        strata_conformance::check_grad(what, &dev(), &inputs, 1e-2, |v| {
            let mut call_inputs = vec![v[0].clone()];
            call_inputs.extend(v[1 + n..].iter().cloned());
            let outs = outputs(layer.as_ref(), &weights, &v[1..1 + n], &call_inputs, Some(&mask));
            let flat: Vec<Tensor> = outs.iter().map(|o| o.reshape([o.numel()])).collect::<strata_core::Result<_>>()?;
            Tensor::concat(&flat.iter().collect::<Vec<_>>(), 0)
        })
        .unwrap();
    }
}

/// A right-padded, masked sequence gives the outputs and states of the
/// unpadded sequence (the padded steps repeat the last output); a
/// left-padded one gives the same final output and states.
#[test]
fn padding_under_a_mask_changes_nothing() {
    for make in [
        || Box::new(LSTM::new(3).return_sequences(true).return_state(true)) as Box<dyn Layer>,
        || Box::new(GRU::new(3).return_sequences(true).return_state(true)) as Box<dyn Layer>,
        || Box::new(SimpleRNN::new(3).return_sequences(true).return_state(true)) as Box<dyn Layer>,
    ] {
        let mut layer = make();
        let weights = built(layer.as_mut(), &[seq_spec(5, 2)]);
        let values: Vec<Tensor> = weights.iter().map(|w| w.value.clone()).collect();
        let x = Tensor::rand_normal([1, 3, 2], 0.0, 1.0, &mut Rng::seed(5), &dev()).unwrap();
        let plain = outputs(layer.as_ref(), &weights, &values, std::slice::from_ref(&x), None);
        let pad = Tensor::full(9.0, [1, 2, 2], DType::F32, &dev()).unwrap();
        let right = Tensor::concat(&[&x, &pad], 1).unwrap();
        let left = Tensor::concat(&[&pad, &x], 1).unwrap();
        let r = outputs(layer.as_ref(), &weights, &values, &[right], Some(&t(&[1., 1., 1., 0., 0.], &[1, 5])));
        let l = outputs(layer.as_ref(), &weights, &values, &[left], Some(&t(&[0., 0., 1., 1., 1.], &[1, 5])));
        let last = vals(&plain[0].narrow(1, 2, 1).unwrap());
        let mut want_right = vals(&plain[0]);
        want_right.extend(last.iter().chain(&last));
        close(&vals(&r[0]), &want_right, 0.0);
        close(&vals(&l[0].narrow(1, 2, 3).unwrap()), &vals(&plain[0]), 0.0);
        // The leading masked steps output the initial state (zeros).
        close(&vals(&l[0].narrow(1, 0, 2).unwrap()), &[0.0; 6], 0.0);
        for k in 1..plain.len() {
            close(&vals(&r[k]), &vals(&plain[k]), 0.0);
            close(&vals(&l[k]), &vals(&plain[k]), 0.0);
        }
    }
}

/// `go_backwards` is the forward layer on the time-reversed sequence.
#[test]
fn going_backwards_is_reversing_the_input() {
    let mut fwd = LSTM::new(3).return_sequences(true);
    let weights = built(&mut fwd, &[seq_spec(4, 2)]);
    let values: Vec<Tensor> = weights.iter().map(|w| w.value.clone()).collect();
    let back = LSTM::new(3).return_sequences(true).go_backwards(true);
    let x = Tensor::rand_normal([2, 4, 2], 0.0, 1.0, &mut Rng::seed(5), &dev()).unwrap();
    let rev = Tensor::concat(
        &(0..4).rev().map(|i| x.narrow(1, i, 1).unwrap()).collect::<Vec<_>>().iter().collect::<Vec<_>>(),
        1,
    )
    .unwrap();
    let a = outputs(&back, &weights, &values, &[x], None);
    let b = outputs(&fwd, &weights, &values, &[rev], None);
    close(&vals(&a[0]), &vals(&b[0]), 0.0);
}

/// Dropout is off outside training and on in training; the masks are the
/// same at every step (one draw per call), and a seeded layer repeats its
/// masks on a fresh copy.
#[test]
fn dropout_applies_only_in_training() {
    let mut layer = SimpleRNN::new(4).dropout(0.5).recurrent_dropout(0.5).seed(3);
    let weights = built(&mut layer, &[seq_spec(3, 5)]);
    let x = Tensor::ones([2, 3, 5], DType::F32, &dev()).unwrap();
    let run = |l: &SimpleRNN, training: bool| {
        let masks = [None];
        vals(
            &l.call(std::slice::from_ref(&x), &mut CallContext::new(training, &masks, &weights, &mut Rng::seed(1)))
                .unwrap(),
        )
    };
    let fresh = layer.clone();
    let (inference, trained) = (run(&layer, false), run(&layer, true));
    assert_ne!(inference, trained);
    assert_eq!(run(&SimpleRNN::from_config(&layer.config()).unwrap(), true), trained);
    assert_eq!(run(&fresh, true), trained);
}

#[test]
fn bad_arguments_and_inputs_are_errors() {
    assert!(err(build(&mut LSTM::new(0), &[seq_spec(3, 2)])).contains("units must be > 0"));
    assert!(err(build(&mut GRU::new(2).dropout(1.0), &[seq_spec(3, 2)])).contains("dropout must be in [0, 1)"));
    assert!(err(build(&mut LSTM::new(2), &[spec(&[None, Some(3)])])).contains("rank 3"));
    let e = err(build(&mut LSTM::new(2), &[seq_spec(3, 2), spec(&[None, Some(2)])]));
    assert!(e.contains("2 initial state(s)"), "{e}");
    let e = err(build(&mut GRU::new(2), &[seq_spec(3, 2), spec(&[None, Some(5)])]));
    assert!(e.contains("initial state 0") && e.contains("(batch, 2)"), "{e}");
    let e = err(LSTM::from_config(&serde_json::json!({"units": 2, "stateful": true}))
        .and_then(|mut l| build(&mut l, &[seq_spec(3, 2)])));
    assert!(e.contains("stateful"), "{e}");
    let e = err(LSTM::from_config(&serde_json::json!({"units": 2, "reset_after": true})));
    assert!(e.contains("reset_after"), "{e}");
    // No timesteps at all.
    let mut layer = GRU::new(2);
    let (_, w) = build(&mut layer, &[spec(&[None, None, Some(2)])]).unwrap();
    let x = Tensor::zeros([1, 0, 2], DType::F32, &dev()).unwrap();
    assert!(err(call(&layer, &[x], &[], &w, false)).contains("at least one timestep"));
}

#[test]
fn configs_round_trip_with_keras_keys() {
    let lstm = LSTM::new(5).return_sequences(true).go_backwards(true).dropout(0.25).unit_forget_bias(false);
    let config = lstm.config();
    assert_eq!(config["units"], 5);
    assert_eq!(config["return_sequences"], true);
    assert_eq!(config["recurrent_initializer"]["class_name"], "Orthogonal");
    assert_eq!(LSTM::from_config(&config).unwrap().config(), config);
    let gru = GRU::new(2).reset_after(false).return_state(true);
    assert_eq!(GRU::from_config(&gru.config()).unwrap().config(), gru.config());
    assert_eq!(GRU::from_config(&gru.config()).unwrap().num_outputs(), 2);
    let rnn = SimpleRNN::new(2).activation("relu");
    assert_eq!(SimpleRNN::from_config(&rnn.config()).unwrap().config(), rnn.config());
}

/// A recurrent layer with a fused path and its one-step-at-a-time reference.
trait Unrolled: Layer {
    fn unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> strata_core::Result<Vec<Tensor>>;
}

impl Unrolled for LSTM {
    fn unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> strata_core::Result<Vec<Tensor>> {
        self.call_unrolled(inputs, ctx)
    }
}

impl Unrolled for GRU {
    fn unrolled(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> strata_core::Result<Vec<Tensor>> {
        self.call_unrolled(inputs, ctx)
    }
}

/// The fused layer `make(go_backwards, zero_output_for_mask)` (4 units,
/// `num_states` states) gives the unrolled reference's outputs and
/// gradients (to the sequence, every weight and the initial states) with
/// masks, `go_backwards`, `zero_output_for_mask` and initial states.
fn check_fused<L: Unrolled>(make: impl Fn(bool, bool) -> L, num_states: usize) {
    let mask = t(&[1., 1., 1., 0., 0., 0., 0., 1., 1., 1., 1., 0., 1., 0., 1.], &[3, 5]);
    for (backwards, zero_out, with_state, with_mask) in
        [(false, false, false, false), (false, false, true, true), (true, false, true, true), (true, true, false, true)]
    {
        let mut layer = make(backwards, zero_out);
        let mut specs = vec![seq_spec(5, 3)];
        if with_state {
            specs.extend((0..num_states).map(|_| spec(&[None, Some(4)])));
        }
        let weights = built(&mut layer, &specs);
        let x = Tensor::rand_normal([3, 5, 3], 0.0, 1.0, &mut Rng::seed(2), &dev()).unwrap().to_variable().unwrap();
        let mut inputs = vec![x.clone()];
        if with_state {
            for k in 0..num_states as u64 {
                inputs.push(
                    Tensor::rand_normal([3, 4], 0.0, 0.5, &mut Rng::seed(30 + k), &dev())
                        .unwrap()
                        .to_variable()
                        .unwrap(),
                );
            }
        }
        let masks: Vec<Option<Tensor>> =
            (0..inputs.len()).map(|k| if k == 0 && with_mask { Some(mask.clone()) } else { None }).collect();
        let weigh = |outs: &[Tensor]| -> Tensor {
            // Σ_k Σ outs[k] · (k + 1) · sin(index): every output and element counts.
            let mut total: Option<Tensor> = None;
            for (k, o) in outs.iter().enumerate() {
                let w: Vec<f32> = (0..o.numel()).map(|i| (k as f32 + 1.0) * (i as f32).sin()).collect();
                let s = o.mul(&Tensor::new(w, o.shape().clone(), &dev()).unwrap()).unwrap().sum_all().unwrap();
                total = Some(match total {
                    Some(t) => t.add(&s).unwrap(),
                    None => s,
                });
            }
            total.unwrap()
        };
        let fused =
            layer.call_multi(&inputs, &mut CallContext::new(false, &masks, &weights, &mut Rng::seed(1))).unwrap();
        let reference =
            layer.unrolled(&inputs, &mut CallContext::new(false, &masks, &weights, &mut Rng::seed(1))).unwrap();
        assert_eq!(fused.len(), 1 + num_states);
        for (a, b) in fused.iter().zip(&reference) {
            close(&vals(a), &vals(b), 1e-6);
        }
        let (gf, gr) = (weigh(&fused).backward().unwrap(), weigh(&reference).backward().unwrap());
        let vars: Vec<Tensor> = weights.iter().map(|w| w.value.clone()).chain(inputs.iter().cloned()).collect();
        for v in &vars {
            let (a, b) = (gf.get(v).expect("fused gradient"), gr.get(v).expect("reference gradient"));
            close(&vals(a), &vals(b), 1e-5);
        }
    }
}

#[test]
fn the_fused_lstm_matches_the_unrolled_reference() {
    check_fused(
        |backwards, zero_out| {
            LSTM::new(4)
                .return_sequences(true)
                .return_state(true)
                .go_backwards(backwards)
                .zero_output_for_mask(zero_out)
        },
        2,
    );
}

/// With its bias and without (the fused op's recurrent bias is optional).
#[test]
fn the_fused_gru_matches_the_unrolled_reference() {
    for use_bias in [true, false] {
        check_fused(
            |backwards, zero_out| {
                GRU::new(4)
                    .return_sequences(true)
                    .return_state(true)
                    .go_backwards(backwards)
                    .zero_output_for_mask(zero_out)
                    .use_bias(use_bias)
                    .bias_initializer("random_normal")
            },
            1,
        );
    }
}
