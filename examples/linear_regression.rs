//! Fits `y = 3x₁ − 2x₂ + 0.5` by gradient descent on raw tensors: the
//! foundation (tensors, autodiff, in-place updates) end to end.
//!
//! ```text
//! cargo run --release --example linear_regression
//! STRATA_BACKEND=candle cargo run --release --example linear_regression
//! ```

use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let mut rng = Rng::seed(0);
    let n = 256;
    let x = Tensor::rand_normal([n, 2], 0.0, 1.0, &mut rng, &dev)?;
    let true_w = Tensor::new(vec![3.0f32, -2.0], [2, 1], &dev)?;
    let noise = Tensor::rand_normal([n, 1], 0.0, 0.01, &mut rng, &dev)?;
    let y = x.matmul(&true_w)?.add_scalar(0.5)?.add(&noise)?;

    let w = Tensor::zeros([2, 1], DType::F32, &dev)?.to_variable()?;
    let b = Tensor::zeros([1], DType::F32, &dev)?.to_variable()?;
    let lr = 0.1;
    println!("backend: {}", dev.name());
    for step in 0..=100 {
        let loss = x.matmul(&w)?.add(&b)?.sub(&y)?.square()?.mean_all()?;
        let grads = loss.backward()?;
        no_grad(|| -> Result<()> {
            for p in [&w, &b] {
                let g = grads.get(p).expect("the loss depends on every parameter");
                p.assign(&p.sub(&g.mul_scalar(lr)?)?)?;
            }
            Ok(())
        })?;
        if step % 20 == 0 {
            println!("step {step:3}  loss {:.6}", loss.to_scalar::<f32>()?);
        }
    }
    let w = w.to_vec::<f32>()?;
    let b = b.to_scalar::<f32>()?;
    println!("learned w = [{:.3}, {:.3}], b = {:.3}  (true: [3, -2], 0.5)", w[0], w[1], b);
    anyhow::ensure!(
        (w[0] - 3.0).abs() < 0.01 && (w[1] + 2.0).abs() < 0.01 && (b - 0.5).abs() < 0.01,
        "did not converge"
    );
    Ok(())
}
