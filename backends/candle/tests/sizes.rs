//! Allocations larger than the machine can make are errors, not aborts.

use strata_core::{DType, Error, Rng, Tensor};

/// A Dense(512) kernel on 60000·784 input features: 96,337,920,000 bytes,
/// more than Linux's default overcommit heuristic grants in one request on
/// a machine with less RAM plus swap than that (24 GiB where this was
/// written).
const SHAPE: [usize; 2] = [60000 * 784, 512];

/// Whether this machine's RAM plus swap is smaller than the 96 GB asked
/// for, so Linux's overcommit heuristic refuses the request; `true` where
/// `/proc/meminfo` cannot be read. On a larger machine the request could
/// succeed, and the tests below say so and check nothing.
fn too_large_for_this_machine() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else { return true };
    let kib = |key: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let total = (kib("MemTotal:") + kib("SwapTotal:")) * 1024;
    if total >= 96_337_920_000 {
        eprintln!("skipped: {total} bytes of RAM and swap could hold the 96 GB tensor");
        return false;
    }
    true
}

fn expect_overflow(what: &str, r: strata_core::Result<Tensor>, op: &str) {
    match r {
        Err(e @ Error::SizeOverflow { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(op), "{what}: `{msg}` does not name {op}");
            assert!(msg.contains("96337920000 bytes"), "{what}: `{msg}` does not give the byte count");
            assert!(msg.contains("[47040000, 512]"), "{what}: `{msg}` does not name the shape");
        }
        Err(e) => panic!("{what}: expected a SizeOverflow, got `{e}`"),
        Ok(t) => panic!("{what}: allocated {:?} ({} elements)", t.shape(), t.numel()),
    }
}

#[test]
fn a_weight_larger_than_memory_is_an_error() {
    if !too_large_for_this_machine() {
        return;
    }
    let dev = strata_candle::cpu();
    expect_overflow("zeros", Tensor::zeros(SHAPE, DType::F32, &dev), "candle-cpu full");
    expect_overflow("uniform init", Tensor::rand_uniform(SHAPE, -0.01, 0.01, &mut Rng::seed(0), &dev), "rand_uniform");
    expect_overflow("normal init", Tensor::rand_normal(SHAPE, 0.0, 0.01, &mut Rng::seed(0), &dev), "rand_normal");
    // The failed requests left nothing behind: ordinary allocations work.
    let small = Tensor::ones([512, 512], DType::F32, &dev).unwrap();
    assert_eq!(small.sum_all().unwrap().to_scalar::<f32>().unwrap(), 262144.0);
}

/// A broadcast of a one-element tensor to a 96 GB result checks the
/// allocation before candle makes it.
#[test]
fn a_broadcast_larger_than_memory_is_an_error() {
    if !too_large_for_this_machine() {
        return;
    }
    let dev = strata_candle::cpu();
    let one = Tensor::ones([1, 1], DType::F32, &dev).unwrap();
    expect_overflow("broadcast_to", one.broadcast_to(SHAPE), "broadcast_to");
}
