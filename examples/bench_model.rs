//! What the model layer costs over the raw tensor ops it runs: the MNIST MLP
//! (784-256-128-10) as a `Sequential` model vs the same ops written by hand
//! with the same weights, forward and forward+backward, side by side in one
//! run, on each CPU backend.
//!
//! ```text
//! cargo run --release --example bench_model [batch] [runs]
//! ```
//!
//! Prints one JSON line per backend and case with the median milliseconds of
//! each path and their ratio (`model / hand`; 1.00 means no overhead).

use std::time::Instant;

use strata::prelude::*;

fn median(t: &mut [f64]) -> f64 {
    t.sort_by(f64::total_cmp);
    t[t.len() / 2]
}

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let batch: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(128);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(50).max(1);
    let mut devices = vec![backend::native()];
    #[cfg(feature = "candle")]
    devices.push(backend::candle_cpu());

    for dev in &devices {
        let model = Sequential::new()
            .add(Input::new([784]))
            .add(Dense::new(256).activation("relu"))
            .add(Dense::new(128).activation("relu"))
            .add(Dense::new(10).activation("softmax"))
            .seed(0)
            .build_on(dev)?;
        let w: Vec<Tensor> = model.weights().into_iter().map(|w| w.value).collect();
        let hand = |x: &Tensor| -> Result<Tensor> {
            let h = x.matmul(&w[0])?.add(&w[1])?.relu()?;
            let h = h.matmul(&w[2])?.add(&w[3])?.relu()?;
            h.matmul(&w[4])?.add(&w[5])?.softmax(-1)
        };
        let x = Tensor::rand_uniform([batch, 784], 0.0, 1.0, &mut Rng::seed(1), dev)?;
        let y0 = &model.forward(&x, false)?[0];
        anyhow::ensure!(y0.to_vec::<f32>()? == hand(&x)?.to_vec::<f32>()?, "the two paths disagree");

        let (mut tm, mut th, mut tmb, mut thb) = (vec![], vec![], vec![], vec![]);
        for _ in 0..runs {
            let s = Instant::now();
            no_grad(|| model.forward(&x, false))?;
            tm.push(s.elapsed().as_secs_f64());
            let s = Instant::now();
            no_grad(|| hand(&x))?;
            th.push(s.elapsed().as_secs_f64());
            let s = Instant::now();
            model.forward(&x, true)?[0].mean_all()?.backward()?;
            tmb.push(s.elapsed().as_secs_f64());
            let s = Instant::now();
            hand(&x)?.mean_all()?.backward()?;
            thb.push(s.elapsed().as_secs_f64());
        }
        for (case, m, h) in [("forward", &mut tm, &mut th), ("forward_backward", &mut tmb, &mut thb)] {
            let (m, h) = (median(m), median(h));
            println!(
                "{{\"case\":\"mlp_{case}_b{batch}\",\"backend\":\"{}\",\"model_ms\":{:.3},\"hand_ms\":{:.3},\"ratio\":{:.2}}}",
                dev.name(),
                m * 1e3,
                h * 1e3,
                m / h
            );
        }
    }
    Ok(())
}
