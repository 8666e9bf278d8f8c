//! Allocations larger than the machine can make are errors, not aborts.

use strata_core::{DType, Error, Rng, Tensor};

/// A Dense(512) kernel on 60000·784 input features: 96,337,920,000 bytes,
/// far beyond this machine's memory (and beyond what Linux's default
/// overcommit heuristic grants in one request on any machine with less
/// RAM plus swap than that).
const SHAPE: [usize; 2] = [60000 * 784, 512];

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
    let dev = strata_native::device();
    let one = Tensor::ones([1, 1], DType::F32, &dev).unwrap();
    expect_overflow("broadcast_to", one.broadcast_to(SHAPE), "broadcast_to");
    let col = Tensor::ones([SHAPE[0], 1], DType::F32, &dev).unwrap();
    let row = Tensor::ones([1, SHAPE[1]], DType::F32, &dev).unwrap();
    expect_overflow("add", col.add(&row), "add");
    expect_overflow("matmul", col.matmul(&row), "matmul");
}
