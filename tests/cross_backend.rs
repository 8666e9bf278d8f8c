//! The same random op chains on native and candle give the same values and
//! gradients.
//!
//! Tolerance: |a − b| ≤ 1e-4 + 1e-4·|b|. Both backends compute in f32 but
//! sum in different orders (gemm blocking, reduction trees), so results agree
//! to a few ulps times the chain's depth, not bit for bit.
#![cfg(feature = "candle")]

use strata::prelude::*;

const ATOL: f32 = 1e-4;
const RTOL: f32 = 1e-4;

fn close(what: &str, a: &[f32], b: &[f32]) {
    assert_eq!(a.len(), b.len(), "{what}: lengths differ");
    for (i, (x, y)) in a.iter().zip(b).enumerate() {
        assert!((x - y).abs() <= ATOL + RTOL * y.abs(), "{what}: element {i}: native {x} vs candle {y}");
    }
}

/// A chain's output, the gradients for its two inputs, and the ops it picked.
struct Run {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
    trace: String,
}

/// Runs a chain of ops picked by `seed` and returns its output and the
/// gradients of its (weighted) sum with respect to the two inputs.
fn chain(dev: &Device, seed: u64) -> Result<Run> {
    let mut rng = Rng::seed(seed);
    let (b, d) = (4 + rng.below(5)?, 3 + rng.below(6)?);
    let x = Tensor::rand_normal([b, d], 0.0, 1.0, &mut rng, dev)?.to_variable()?;
    let w = Tensor::rand_uniform([d, d], -0.5, 0.5, &mut rng, dev)?.to_variable()?;
    let mut h = x.clone();
    let mut trace = Vec::new();
    for _ in 0..8 {
        let pick = rng.below(14)?;
        trace.push(pick.to_string());
        h = match pick {
            0 => h.matmul(&w)?,
            1 => h.matmul_t(&w, false, true)?,
            2 => h.tanh()?,
            3 => h.sigmoid()?,
            4 => h.gelu()?,
            5 => h.softplus()?,
            6 => h.softmax(-1)?,
            7 => h.log_softmax(-1)?.mul_scalar(0.1)?,
            8 => h.add(&w.narrow(0, 0, 1)?)?,
            9 => h.mul(&h.sum(&[0], true)?.mul_scalar(0.1)?)?,
            10 => h.t()?.matmul(&h)?.narrow(0, 0, 1)?.broadcast_to(h.dims())?.add(&h)?,
            11 => Tensor::concat(&[&h, &h.relu()?], 0)?.narrow(0, 1, h.dims()[0])?,
            12 => {
                let idx = Tensor::new((0..b as i64).map(|i| (i * 7 + 3) % b as i64).collect::<Vec<_>>(), [b], dev)?;
                h.gather(0, &idx)?
            }
            _ => h.maximum(&h.mul_scalar(0.3)?)?.sub(&h.max(1, true)?)?,
        };
    }
    let weights = Tensor::rand_uniform(h.dims(), 0.5, 1.5, &mut rng, dev)?;
    let grads = h.mul(&weights)?.sum_all()?.backward()?;
    let grad = |v: &Tensor| grads.get(v).map(|g| g.to_vec::<f32>()).transpose().map(Option::unwrap_or_default);
    Ok(Run { y: h.to_vec::<f32>()?, dx: grad(&x)?, dw: grad(&w)?, trace: trace.join(",") })
}

#[test]
fn random_op_chains_agree_across_backends() -> anyhow::Result<()> {
    let native = backend::native();
    let candle = backend::candle_cpu();
    for seed in 0..60 {
        let (n, c) = (chain(&native, seed)?, chain(&candle, seed)?);
        assert_eq!(n.trace, c.trace);
        let what = format!("seed {seed} [ops {}]", n.trace);
        close(&format!("{what} output"), &n.y, &c.y);
        close(&format!("{what} dx"), &n.dx, &c.dx);
        close(&format!("{what} dw"), &n.dw, &c.dw);
    }
    Ok(())
}

#[test]
fn mixing_devices_is_an_error_naming_both() -> anyhow::Result<()> {
    let a = Tensor::ones([2], DType::F32, &backend::native())?;
    let b = Tensor::ones([2], DType::F32, &backend::candle_cpu())?;
    let msg = a.add(&b).unwrap_err().to_string();
    assert!(msg.contains("native") && msg.contains("candle-cpu"), "{msg}");
    Ok(())
}

#[test]
fn same_seed_gives_the_same_random_tensors_on_every_backend() -> anyhow::Result<()> {
    let a = Tensor::rand_normal([64], 0.0, 1.0, &mut Rng::seed(9), &backend::native())?;
    let b = Tensor::rand_normal([64], 0.0, 1.0, &mut Rng::seed(9), &backend::candle_cpu())?;
    assert_eq!(a.to_vec::<f32>()?, b.to_vec::<f32>()?);
    Ok(())
}

#[test]
fn to_device_copies_values_and_dtype_between_backends() -> anyhow::Result<()> {
    let (native, candle) = (backend::native(), backend::candle_cpu());
    let x = Tensor::new(vec![1.5f32, -2.0, 3.25], [3, 1], &native)?;
    let on_candle = x.to_device(&candle)?;
    assert_eq!(on_candle.device().name(), "candle-cpu");
    assert_eq!(on_candle.dims(), &[3, 1]);
    assert_eq!(on_candle.to_vec::<f32>()?, vec![1.5, -2.0, 3.25]);
    let ids = Tensor::new(vec![7i64, -1], [2], &candle)?.to_device(&native)?;
    assert_eq!((ids.dtype(), ids.to_vec::<i64>()?), (DType::I64, vec![7, -1]));
    // Same device: the same tensor, no copy.
    assert_eq!(x.to_device(&native)?.id(), x.id());
    Ok(())
}
