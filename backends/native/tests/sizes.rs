//! Allocations larger than the machine can make are errors, not aborts.

use strata_conformance::allocation::{expect_overflow, too_large_for_this_machine, LARGE_SHAPE as SHAPE};
use strata_core::{DType, Rng, Tensor};

#[test]
fn a_weight_larger_than_memory_is_an_error() {
    if !too_large_for_this_machine() {
        return;
    }
    let dev = strata_native::device();
    expect_overflow("zeros", Tensor::zeros(SHAPE, DType::F32, &dev), "native full");
    expect_overflow("uniform init", Tensor::rand_uniform(SHAPE, -0.01, 0.01, &mut Rng::seed(0), &dev), "rand_uniform");
    expect_overflow("normal init", Tensor::rand_normal(SHAPE, 0.0, 0.01, &mut Rng::seed(0), &dev), "rand_normal");
    // The failed requests left nothing behind: ordinary allocations work.
    let small = Tensor::ones([512, 512], DType::F32, &dev).unwrap();
    assert_eq!(small.sum_all().unwrap().to_scalar::<f32>().unwrap(), 262144.0);
}

/// Kernels whose output is much larger than their inputs check the output's
/// allocation first: a broadcast, a broadcasting binary op and a matrix
/// product of modest inputs with a 96 GB result.
#[test]
fn a_kernel_output_larger_than_memory_is_an_error() {
    if !too_large_for_this_machine() {
        return;
    }
    let dev = strata_native::device();
    let one = Tensor::ones([1, 1], DType::F32, &dev).unwrap();
    expect_overflow("broadcast_to", one.broadcast_to(SHAPE), "broadcast_to");
    let col = Tensor::ones([SHAPE[0], 1], DType::F32, &dev).unwrap();
    let row = Tensor::ones([1, SHAPE[1]], DType::F32, &dev).unwrap();
    expect_overflow("add", col.add(&row), "add");
    expect_overflow("matmul", col.matmul(&row), "matmul");
}
