//! Every optimizer and learning-rate schedule, step by step, on every backend,
//! against trajectories computed by Keras 3 (JAX backend).
//!
//! The values in `tests/golden/keras_optimizers.json` were produced by
//! `tests/golden/keras_optimizers.py` (Keras 3.15.1, JAX 0.10.2):
//!
//! ```text
//! KERAS_BACKEND=jax /work/keras-venv/bin/python tests/golden/keras_optimizers.py
//! ```
//!
//! Each case starts two weights (`dense.kernel` [3, 2], `dense.bias` [2])
//! from the same values, applies the same 5 gradient sets, and checks after
//! every step the weights, every slot variable (by name) and the learning
//! rate. The optimizer is rebuilt from the config Keras serialized, so this
//! also tests reading Keras' optimizer and schedule configs.

use anyhow::{ensure, Context, Result};
use serde_json::Value;
use strata::prelude::*;
use strata::{optimizer_from_config, Optimizer};

const GOLDEN: &str = include_str!("golden/keras_optimizers.json");

/// `|got − want| <= ATOL + RTOL·|want|`. Keras and strata both compute in
/// f32, in the same order of operations, so most values are bit-identical;
/// what differs is the summation order of a gradient's norm (`clipnorm`)
/// and the cosine schedules, which strata evaluates in f64 and Keras in f32.
///
/// Checked once that the comparison is real: with `ATOL = RTOL = 0` the test
/// fails (native backend, case `adam_clipnorm`, step 1, `dense.kernel[0]` =
/// 0.22569850087165833, Keras 0.22569848597049713: one f32 ulp). Run with
/// `--nocapture`, the test prints how many values were bit-identical
/// (5724 of 5800 at the time of writing) and the largest deviation as a
/// fraction of the tolerance (0.008).
const ATOL: f64 = 1e-6;
const RTOL: f64 = 1e-5;

fn floats(v: &Value) -> Result<Vec<f32>> {
    Ok(serde_json::from_value(v.clone())?)
}

/// What the comparisons saw: the largest `|got − want| / (ATOL + RTOL·|want|)`
/// (1.0 = at the tolerance), and how many values were bit-identical to Keras.
#[derive(Default)]
struct Stats {
    worst: f64,
    identical: usize,
    total: usize,
}

fn compare(what: &str, got: &[f32], want: &[f32], stats: &mut Stats) -> Result<()> {
    ensure!(got.len() == want.len(), "{what}: {} values, Keras {}", got.len(), want.len());
    for (i, (&a, &b)) in got.iter().zip(want).enumerate() {
        stats.total += 1;
        stats.identical += usize::from(a.to_bits() == b.to_bits());
        let (a, b) = (a as f64, b as f64);
        stats.worst = stats.worst.max((a - b).abs() / (ATOL + RTOL * b.abs()));
        ensure!((a - b).abs() <= ATOL + RTOL * b.abs(), "{what}[{i}] = {a}, Keras {b}");
    }
    Ok(())
}

fn run_case(golden: &Value, case: &Value, dev: &Device, stats: &mut Stats) -> Result<()> {
    let mut opt: Box<dyn Optimizer> = optimizer_from_config(&case["config"])?;
    // Our own config reads back to the same thing.
    let again = optimizer_from_config(&opt.get_config())?;
    ensure!(again.get_config() == opt.get_config(), "config round trip: {}", opt.get_config());

    let weights = golden["weights"].as_array().context("weights")?;
    let mut vars = Vec::new();
    for w in weights {
        let shape: Vec<usize> = serde_json::from_value(w["shape"].clone())?;
        let name = w["name"].as_str().context("weight name")?.to_string();
        vars.push((name, Tensor::new(floats(&w["data"])?, shape, dev)?.to_variable()?));
    }
    let rates = case["learning_rates"].as_array().context("learning_rates")?;
    let lr0 = rates[0].as_f64().context("rate")?;
    compare("learning_rate before step 1", &[opt.learning_rate() as f32], &[lr0 as f32], stats)?;

    let grad_sets = golden["grads"].as_array().context("grads")?;
    let steps = case["steps"].as_array().context("steps")?;
    for (k, (grads, want)) in grad_sets.iter().zip(steps).enumerate() {
        let grads = grads.as_array().context("grad set")?;
        let grads: Vec<Tensor> = vars
            .iter()
            .zip(grads)
            .map(|((_, v), g)| Ok(Tensor::new(floats(g)?, v.shape().clone(), dev)?))
            .collect::<Result<_>>()?;
        let params: Vec<(&str, &Tensor, &Tensor)> =
            vars.iter().zip(&grads).map(|((n, v), g)| (n.as_str(), v, g)).collect();
        opt.apply_gradients(&params)?;
        ensure!(opt.iterations() == k as u64 + 1, "iterations after step {}", k + 1);

        for (name, v) in &vars {
            let what = format!("step {}: {name}", k + 1);
            compare(&what, &v.to_vec::<f32>()?, &floats(&want["weights"][name])?, stats)?;
        }
        let want_slots = want["slots"].as_object().context("slots")?;
        let got_slots = opt.variables();
        let mut got_names: Vec<&str> = got_slots.iter().map(|(n, _)| n.as_str()).collect();
        let mut want_names: Vec<&str> = want_slots.keys().map(String::as_str).collect();
        got_names.sort_unstable();
        want_names.sort_unstable();
        ensure!(got_names == want_names, "step {}: slots {got_names:?}, Keras {want_names:?}", k + 1);
        for (name, t) in &got_slots {
            ensure!(t.device().same(dev), "slot {name} lives on {}, not {}", t.device(), dev);
            compare(&format!("step {}: slot {name}", k + 1), &t.to_vec::<f32>()?, &floats(&want_slots[name])?, stats)?;
        }
        let rate = rates[k + 1].as_f64().context("rate")?;
        compare(&format!("learning_rate after step {}", k + 1), &[opt.learning_rate() as f32], &[rate as f32], stats)?;
    }
    Ok(())
}

#[test]
fn every_optimizer_matches_keras_on_every_backend() -> Result<()> {
    let golden: Value = serde_json::from_str(GOLDEN)?;
    let cases = golden["cases"].as_array().context("cases")?;
    ensure!(cases.len() >= 25, "the golden file has {} cases", cases.len());
    let mut classes = std::collections::BTreeSet::new();
    #[allow(unused_mut)]
    let mut devices = vec![strata::backend::native()];
    #[cfg(feature = "candle")]
    devices.push(strata::backend::candle_cpu());
    let mut stats = Stats::default();
    for dev in &devices {
        for case in cases {
            let name = case["name"].as_str().unwrap_or("?");
            run_case(&golden, case, dev, &mut stats).with_context(|| format!("{}: case {name}", dev.name()))?;
            classes.insert(case["config"]["class_name"].as_str().unwrap_or_default().to_string());
        }
    }
    println!(
        "{} of {} values bit-identical to Keras; largest deviation {:.3} of the tolerance",
        stats.identical, stats.total, stats.worst
    );
    for class in ["SGD", "Adam", "AdamW", "RMSprop", "Adagrad"] {
        ensure!(classes.contains(class), "no golden case for {class}");
    }
    Ok(())
}
