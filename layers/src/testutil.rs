//! Helpers shared by the layers' unit tests: build and call a layer directly
//! with a [`BuildContext`] and a [`CallContext`], on the native device.

use strata_core::{DType, Device, Result, Rng, Shape, Tensor};

use crate::{BuildContext, CallContext, Layer, TensorSpec, Weight};

/// The native device.
pub(crate) fn dev() -> Device {
    strata_native::device()
}

/// An `f32` tensor.
pub(crate) fn t(data: &[f32], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, Shape::from(shape), &dev()).expect("test tensor")
}

/// An `i64` tensor.
pub(crate) fn ti(data: &[i64], shape: &[usize]) -> Tensor {
    Tensor::from_slice(data, Shape::from(shape), &dev()).expect("test tensor")
}

/// An `f32` spec.
pub(crate) fn spec(dims: &[Option<usize>]) -> TensorSpec {
    TensorSpec::new(dims.to_vec(), DType::F32)
}

/// The values of an `f32` tensor.
pub(crate) fn vals(x: &Tensor) -> Vec<f32> {
    x.to_vec::<f32>().expect("f32 values")
}

/// Builds `layer` on `inputs` with a fresh weight list and `Rng::seed(0)`.
pub(crate) fn build(layer: &mut dyn Layer, inputs: &[TensorSpec]) -> Result<(TensorSpec, Vec<Weight>)> {
    let mut weights = Vec::new();
    let dev = dev();
    let mut rng = Rng::seed(0);
    let out = layer.build(inputs, &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
    Ok((out, weights))
}

/// Calls `layer` with `masks` (none when empty) and `Rng::seed(1)`.
pub(crate) fn call(
    layer: &dyn Layer,
    inputs: &[Tensor],
    masks: &[Option<Tensor>],
    weights: &[Weight],
    training: bool,
) -> Result<Tensor> {
    let masks = if masks.is_empty() { vec![None; inputs.len()] } else { masks.to_vec() };
    let mut rng = Rng::seed(1);
    layer.call(inputs, &mut CallContext::new(training, &masks, weights, &mut rng))
}

/// The error message of a result that must be an error.
pub(crate) fn err<T>(r: Result<T>) -> String {
    match r {
        Ok(_) => panic!("expected an error, got Ok"),
        Err(e) => e.to_string(),
    }
}

/// Asserts that `got` is within `tol` of `want` elementwise.
pub(crate) fn close(got: &[f32], want: &[f32], tol: f32) {
    assert_eq!(got.len(), want.len(), "got {got:?}, want {want:?}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= tol, "element {i}: got {g}, want {w} (got {got:?}, want {want:?})");
    }
}
