//! Unit tests of the optimizers' shared machinery: names, configs, state,
//! argument checking. The update rules themselves are checked against Keras
//! in `tests/golden_optimizers.rs`.

use serde_json::json;
use strata_core::{Device, Result, Tensor};

use super::*;

fn dev() -> Device {
    strata_native::device()
}

/// A kernel, a bias and a deterministic gradient per step for them.
struct Problem {
    kernel: Tensor,
    bias: Tensor,
}

impl Problem {
    fn new(dev: &Device) -> Result<Self> {
        Ok(Problem {
            kernel: Tensor::new(vec![0.5f32, -1.0, 0.25, 2.0, -0.75, 1.5], [3, 2], dev)?.to_variable()?,
            bias: Tensor::new(vec![0.1f32, -0.2], [2], dev)?.to_variable()?,
        })
    }

    fn grads(&self, step: usize) -> Result<(Tensor, Tensor)> {
        let s = step as f32 + 1.0;
        let k: Vec<f32> = (0..6).map(|i| ((i as f32 * 1.7 + s).sin()) * s).collect();
        let b: Vec<f32> = (0..2).map(|i| ((i as f32 * 0.9 - s).cos()) / s).collect();
        Ok((Tensor::new(k, [3, 2], self.kernel.device())?, Tensor::new(b, [2], self.bias.device())?))
    }

    fn step(&self, opt: &mut dyn Optimizer, step: usize) -> Result<()> {
        let (gk, gb) = self.grads(step)?;
        opt.apply_gradients(&[("dense.kernel", &self.kernel, &gk), ("dense.bias", &self.bias, &gb)])
    }

    fn values(&self) -> Result<Vec<f32>> {
        let mut v = self.kernel.to_vec::<f32>()?;
        v.extend(self.bias.to_vec::<f32>()?);
        Ok(v)
    }

    fn set(&self, values: &[f32]) -> Result<()> {
        self.kernel.assign(&Tensor::new(values[..6].to_vec(), [3, 2], self.kernel.device())?)?;
        self.bias.assign(&Tensor::new(values[6..].to_vec(), [2], self.bias.device())?)
    }
}

/// One optimizer of every kind, with non-default settings everywhere.
fn all_kinds() -> Vec<Box<dyn Optimizer>> {
    vec![
        Box::new(SGD::new(0.05).momentum(0.8).nesterov(true).clipvalue(0.7)),
        Box::new(Adam::new(ExponentialDecay::new(0.02, 3, 0.5).staircase(true)).amsgrad(true).beta_1(0.85)),
        Box::new(AdamW::new(0.01).weight_decay(0.1).epsilon(1e-5).clipnorm(1.0)),
        Box::new(RMSprop::new(0.01).rho(0.8).momentum(0.5).centered(true).global_clipnorm(2.0)),
        Box::new(
            Adagrad::new(CosineDecay::new(0.1, 4).alpha(0.2).warmup(0.2, 2))
                .initial_accumulator_value(0.2)
                .weight_decay(0.01),
        ),
        Box::new(SGD::new(PiecewiseConstantDecay::new(vec![2], vec![0.1, 0.01]).unwrap())),
    ]
}

#[test]
fn names_give_keras_defaults_and_unknown_names_list_the_valid_ones() {
    for (name, class, lr) in
        [("sgd", "SGD", 0.01), ("Adam", "Adam", 0.001), ("ADAMW", "AdamW", 0.001), ("rmsprop", "RMSprop", 0.001)]
    {
        let opt = optimizer_from_name(name).unwrap();
        assert_eq!((opt.class_name(), opt.learning_rate()), (class, lr));
    }
    assert_eq!(optimizer_from_name("adamw").unwrap().get_config()["config"]["weight_decay"], 0.004);
    assert_eq!(optimizer_from_name("adagrad").unwrap().get_config()["config"]["initial_accumulator_value"], 0.1);
    let err = optimizer_from_name("adamax").err().unwrap().to_string();
    assert!(err.contains("`adamax`"), "{err}");
    for valid in OPTIMIZER_NAMES {
        assert!(err.contains(valid), "{err}");
    }
    assert!(String::from("sgd").into_optimizer().is_ok());
    assert!(Box::new(Adam::default()).into_optimizer().is_ok());
    let boxed: Box<dyn Optimizer> = Box::new(SGD::new(-1.0));
    assert!(boxed.into_optimizer().is_err());
}

#[test]
fn configs_round_trip_through_optimizer_from_config() {
    for opt in all_kinds() {
        let config = opt.get_config();
        let back = optimizer_from_config(&config).unwrap();
        assert_eq!(back.class_name(), opt.class_name());
        assert_eq!(back.get_config(), config);
    }
    assert_eq!(SGD::new(0.1).get_config()["config"]["clipnorm"], Value::Null);
}

#[test]
fn keras_configs_are_read_and_unsupported_options_rejected() {
    let keras = json!({"module": "keras.optimizers", "class_name": "Adam", "registered_name": null, "config": {
        "name": "adam", "learning_rate": 0.0010000000474974513, "weight_decay": null, "clipnorm": null,
        "global_clipnorm": null, "clipvalue": null, "use_ema": false, "ema_momentum": 0.99,
        "ema_overwrite_frequency": null, "loss_scale_factor": null, "gradient_accumulation_steps": null,
        "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-07, "amsgrad": false}});
    let opt = optimizer_from_config(&keras).unwrap();
    assert_eq!(opt.class_name(), "Adam");
    let mut ema = keras.clone();
    ema["config"]["use_ema"] = json!(true);
    assert!(optimizer_from_config(&ema).err().unwrap().to_string().contains("use_ema"));
    let mut unknown = keras.clone();
    unknown["config"]["betas"] = json!(0.9);
    assert!(optimizer_from_config(&unknown).err().unwrap().to_string().contains("betas"));
    let mut invalid = keras.clone();
    invalid["config"]["beta_1"] = json!(1.5);
    assert!(optimizer_from_config(&invalid).err().unwrap().to_string().contains("beta_1"));
    let no_decay = json!({"class_name": "AdamW", "config": {"weight_decay": null}});
    assert!(optimizer_from_config(&no_decay).is_err());
    let class = json!({"class_name": "Nadam", "config": {}});
    let err = optimizer_from_config(&class).err().unwrap().to_string();
    assert!(err.contains("Nadam") && err.contains("RMSprop"), "{err}");
    assert!(optimizer_from_config(&json!({"config": {}})).is_err());
}

#[test]
fn set_learning_rate_works_for_constants_and_errors_with_a_schedule() {
    let mut sgd = SGD::new(0.1);
    sgd.set_learning_rate(0.05).unwrap();
    assert_eq!(sgd.learning_rate(), 0.05);
    assert_eq!(sgd.get_config()["config"]["learning_rate"], 0.05);
    assert!(sgd.set_learning_rate(-1.0).is_err());
    assert!(sgd.set_learning_rate(f64::NAN).is_err());
    assert_eq!(sgd.learning_rate(), 0.05);

    let mut scheduled = Adam::new(ExponentialDecay::new(0.1, 10, 0.5));
    let err = scheduled.set_learning_rate(0.01).unwrap_err().to_string();
    assert!(err.contains("schedule") && err.contains("ExponentialDecay"), "{err}");
    assert_eq!(scheduled.learning_rate(), 0.1);
}

#[test]
fn the_schedule_is_evaluated_at_iterations_before_each_step() -> Result<()> {
    let p = Problem::new(&dev())?;
    let mut opt = SGD::new(PiecewiseConstantDecay::new(vec![0, 1], vec![1.0, 0.5, 0.25])?);
    let mut rates = vec![opt.learning_rate()];
    for step in 0..3 {
        let before = p.values()?;
        p.step(&mut opt, step)?;
        let (gk, _) = p.grads(step)?;
        let moved = before[0] - p.values()?[0];
        assert!((moved - rates[step] as f32 * gk.to_vec::<f32>()?[0]).abs() < 1e-6);
        rates.push(opt.learning_rate());
    }
    assert_eq!(rates, [1.0, 0.5, 0.25, 0.25]);
    Ok(())
}

#[test]
fn saved_state_continues_the_same_trajectory() -> Result<()> {
    let dev = dev();
    for mut a in all_kinds() {
        let p = Problem::new(&dev)?;
        for step in 0..2 {
            p.step(a.as_mut(), step)?;
        }
        let (iterations, saved, weights, rate) = (a.iterations(), a.variables(), p.values()?, a.learning_rate());
        for step in 2..5 {
            p.step(a.as_mut(), step)?;
        }
        let want = p.values()?;

        // A fresh optimizer from the config, given the saved state.
        let mut b = optimizer_from_config(&a.get_config())?;
        b.set_state(iterations, &saved)?;
        assert_eq!(b.iterations(), 2);
        assert_eq!(b.learning_rate(), rate);
        let names: Vec<String> = b.variables().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, saved.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>());
        p.set(&weights)?;
        for step in 2..5 {
            p.step(b.as_mut(), step)?;
        }
        assert_eq!(p.values()?, want, "{}", a.class_name());
        assert_eq!(b.iterations(), 5);
    }
    Ok(())
}

#[test]
fn set_state_rejects_unknown_missing_and_misshapen_slots() -> Result<()> {
    let dev = dev();
    let p = Problem::new(&dev)?;
    let mut adam = Adam::new(0.01);
    p.step(&mut adam, 0)?;
    let saved = adam.variables();
    assert_eq!(saved.len(), 4);
    assert!(saved.iter().any(|(n, _)| n == "dense.kernel.momentum"));

    let mut unknown = saved.clone();
    unknown[0].0 = "dense.kernel.m".into();
    let err = adam.set_state(1, &unknown).unwrap_err().to_string();
    assert!(err.contains("dense.kernel.m") && err.contains("velocity"), "{err}");
    let missing: Vec<_> = saved.iter().filter(|(n, _)| n != "dense.bias.velocity").cloned().collect();
    assert!(adam.set_state(1, &missing).unwrap_err().to_string().contains("dense.bias.velocity"));
    // Failed calls changed nothing.
    assert_eq!(adam.iterations(), 1);
    assert_eq!(adam.variables().len(), 4);

    let wrong: Vec<(String, Tensor)> = saved
        .iter()
        .map(|(n, t)| {
            Ok((n.clone(), if n.starts_with("dense.bias") { Tensor::zeros([3], DType::F32, &dev)? } else { t.clone() }))
        })
        .collect::<Result<_>>()?;
    adam.set_state(1, &wrong)?;
    let before = p.values()?;
    let err = p.step(&mut adam, 1).unwrap_err().to_string();
    assert!(err.contains("dense.bias") && err.contains("[3]"), "{err}");
    assert_eq!(p.values()?, before, "no weight changes when the state does not fit");
    assert_eq!(adam.iterations(), 1);
    Ok(())
}

#[test]
fn invalid_arguments_are_errors_and_change_nothing() -> Result<()> {
    let invalid: Vec<(Box<dyn Optimizer>, &str)> = vec![
        (Box::new(SGD::new(-0.1)), "learning_rate"),
        (Box::new(SGD::new(f64::NAN)), "learning_rate"),
        (Box::new(SGD::new(0.1).momentum(1.5)), "momentum"),
        (Box::new(SGD::new(0.1).momentum(-0.1)), "momentum"),
        (Box::new(SGD::new(0.1).clipnorm(0.0)), "clipnorm"),
        (Box::new(SGD::new(0.1).clipvalue(-1.0)), "clipvalue"),
        (Box::new(SGD::new(0.1).global_clipnorm(f64::INFINITY)), "global_clipnorm"),
        (Box::new(SGD::new(0.1).clipnorm(1.0).global_clipnorm(1.0)), "only one of"),
        (Box::new(SGD::new(0.1).weight_decay(-0.1)), "weight_decay"),
        (Box::new(Adam::new(0.1).beta_1(1.0)), "beta_1"),
        (Box::new(Adam::new(0.1).beta_2(-0.5)), "beta_2"),
        (Box::new(AdamW::new(0.1).epsilon(-1e-7)), "epsilon"),
        (Box::new(RMSprop::new(0.1).rho(1.0)), "rho"),
        (Box::new(RMSprop::new(0.1).momentum(2.0)), "momentum"),
        (Box::new(Adagrad::new(0.1).initial_accumulator_value(-0.1)), "initial_accumulator_value"),
        (Box::new(SGD::new(ExponentialDecay::new(0.1, 0, 0.5))), "decay_steps"),
        (Box::new(Adam::new(CosineDecay::new(0.1, 10).alpha(2.0))), "alpha"),
    ];
    let p = Problem::new(&dev())?;
    let before = p.values()?;
    for (mut opt, key) in invalid {
        let class = opt.class_name();
        let err = opt.validate().unwrap_err().to_string();
        assert!(err.contains(key) && err.contains(class), "{class}: {err}");
        assert!(p.step(opt.as_mut(), 0).is_err());
        assert_eq!(opt.iterations(), 0);
        assert!(opt.into_optimizer().is_err());
    }
    assert_eq!(p.values()?, before);
    Ok(())
}

#[test]
fn mismatched_gradients_are_errors_before_any_weight_changes() -> Result<()> {
    let dev = dev();
    let p = Problem::new(&dev)?;
    let before = p.values()?;
    let mut opt = SGD::new(0.1);
    let (gk, gb) = p.grads(0)?;
    let wrong = Tensor::zeros([3], DType::F32, &dev)?;
    let err = opt.apply_gradients(&[("k", &p.kernel, &gk), ("b", &p.bias, &wrong)]).unwrap_err().to_string();
    assert!(err.contains("`b`") && err.contains("[3]") && err.contains("[2]"), "{err}");
    let err = opt.apply_gradients(&[("k", &p.kernel, &gk), ("k", &p.bias, &gb)]).unwrap_err().to_string();
    assert!(err.contains("twice"), "{err}");
    let ids = Tensor::zeros([2], DType::I64, &dev)?;
    assert!(opt.apply_gradients(&[("b", &p.bias, &ids)]).is_err());
    assert_eq!(p.values()?, before);
    assert_eq!(opt.iterations(), 0);
    // An empty step is a no-op, as in Keras.
    opt.apply_gradients(&[])?;
    assert_eq!(opt.iterations(), 0);
    Ok(())
}

#[test]
fn updates_record_no_graph_and_state_lives_on_the_weight_device() -> Result<()> {
    let dev = dev();
    let p = Problem::new(&dev)?;
    let mut opt = RMSprop::new(0.01).momentum(0.9).centered(true);
    p.step(&mut opt, 0)?;
    assert!(p.kernel.is_variable());
    for (name, t) in opt.variables() {
        assert!(!t.requires_grad(), "{name} records a graph");
        assert!(t.device().same(&dev));
    }
    assert_eq!(
        opt.variables().iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>(),
        [
            "dense.kernel.velocity",
            "dense.kernel.momentum",
            "dense.kernel.average_gradient",
            "dense.bias.velocity",
            "dense.bias.momentum",
            "dense.bias.average_gradient"
        ]
    );
    assert!(SGD::new(0.1).variables().is_empty());
    Ok(())
}

#[cfg(feature = "candle")]
#[test]
fn state_saved_on_one_backend_resumes_on_another() -> Result<()> {
    let (native, candle) = (dev(), strata_candle::cpu());
    let (p, q) = (Problem::new(&candle)?, Problem::new(&native)?);
    let mut a = Adam::new(0.05).amsgrad(true);
    p.step(&mut a, 0)?;
    let mut b = a.clone();
    b.set_state(a.iterations(), &a.variables())?;
    q.set(&p.values()?)?;
    p.step(&mut a, 1)?;
    q.step(&mut b, 1)?;
    assert!(b.variables().iter().all(|(_, t)| t.device().same(&native)));
    for (x, y) in p.values()?.iter().zip(q.values()?) {
        assert!((x - y).abs() <= 1e-6, "{x} vs {y}");
    }
    Ok(())
}
