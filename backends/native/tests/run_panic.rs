//! A step that panics inside `FastPaths::run` (`Device::run`) must not hang the pool's
//! spinning helper threads: the panic reaches the caller and the pool keeps
//! working. In a file of its own because it sizes rayon's global pool.

use std::sync::mpsc;
use std::time::{Duration, Instant};

use strata_core::{DType, Tensor};

#[test]
fn a_panicking_step_reaches_the_caller_and_the_pool_survives() {
    // Three threads, so `run` takes the path with spinning helpers.
    rayon::ThreadPoolBuilder::new().num_threads(3).build_global().expect("the global pool is built once");
    assert_eq!(rayon::current_num_threads(), 3);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let dev = strata_native::device();
        let start = Instant::now();
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            dev.run(|| -> f32 { panic!("a custom layer failed") })
        }));
        let elapsed = start.elapsed();
        let message = match caught {
            Ok(v) => format!("no panic, returned {v}"),
            Err(p) => p.downcast_ref::<&str>().map(|s| s.to_string()).unwrap_or_else(|| "another payload".into()),
        };
        // The pool still runs steps afterwards.
        let sum = dev
            .run(|| Tensor::ones([1000], DType::F32, &dev)?.sum_all()?.to_scalar::<f32>())
            .expect("a step after the panic");
        tx.send((message, elapsed, sum)).unwrap();
    });
    let (message, elapsed, sum) =
        rx.recv_timeout(Duration::from_secs(5)).expect("Device::run hung after a panic inside the step");
    assert_eq!(message, "a custom layer failed");
    assert!(elapsed < Duration::from_secs(1), "the panic took {elapsed:?} to reach the caller");
    assert_eq!(sum, 1000.0);
}
