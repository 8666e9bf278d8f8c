//! Native vs candle f32 matmul, side by side in one run.
//!
//! ```text
//! cargo run --release --example bench_matmul [n] [runs]
//! ```
//!
//! Times `n × n · n × n` (default 1024) through the `Tensor` API on each CPU
//! backend, interleaving the backends run by run so both see the same machine
//! state, and prints one JSON line per backend with the median GFLOP/s
//! (`2·n³` flops per product) and the ratio to native.

use std::time::Instant;

use strata::prelude::*;

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let n: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1024);
    let runs: usize = args.next().map(|a| a.parse()).transpose()?.unwrap_or(15).max(1);
    let mut devices = vec![backend::native()];
    #[cfg(feature = "candle")]
    devices.push(backend::candle_cpu());

    let operands = devices
        .iter()
        .map(|dev| {
            let a = Tensor::rand_uniform([n, n], -0.5, 0.5, &mut Rng::seed(1), dev)?;
            let b = Tensor::rand_uniform([n, n], -0.5, 0.5, &mut Rng::seed(2), dev)?;
            for _ in 0..3 {
                a.matmul(&b)?; // warm-up
            }
            Ok((a, b))
        })
        .collect::<Result<Vec<_>>>()?;
    let mut times = vec![Vec::with_capacity(runs); devices.len()];
    for _ in 0..runs {
        for ((a, b), t) in operands.iter().zip(&mut times) {
            let start = Instant::now();
            std::hint::black_box(a.matmul(b)?);
            t.push(start.elapsed().as_secs_f64());
        }
    }
    let flops = 2.0 * (n as f64).powi(3);
    let mut native_gflops = None;
    for (dev, t) in devices.iter().zip(&mut times) {
        t.sort_by(f64::total_cmp);
        let gflops = flops / t[t.len() / 2] / 1e9;
        let base = *native_gflops.get_or_insert(gflops);
        println!(
            "{{\"case\":\"matmul_{n}\",\"backend\":\"{}\",\"median_ms\":{:.3},\"best_ms\":{:.3},\"gflops\":{:.1},\"ratio_to_native\":{:.2},\"threads\":{}}}",
            dev.name(),
            t[t.len() / 2] * 1e3,
            t[0] * 1e3,
            gflops,
            gflops / base,
            std::thread::available_parallelism().map_or(1, |p| p.get()),
        );
    }
    Ok(())
}
