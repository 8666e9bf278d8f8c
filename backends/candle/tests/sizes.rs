//! Allocations larger than the machine can make are errors, not aborts.

use strata_conformance::allocation::{expect_overflow, too_large_for_this_machine, LARGE_SHAPE as SHAPE};
use strata_core::{DType, Rng, Tensor};

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
