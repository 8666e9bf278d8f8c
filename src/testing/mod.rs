//! Test helpers for layer authors: [`run_layer_test`], the checks every
//! built-in layer passes (Keras' `run_layer_test`), for a custom layer.
//!
//! One [`LayerTest`] describes a layer and what it should do: the inputs it
//! is called on, the output spec shape inference must give, its weights,
//! and what it does with a mask. [`run_layer_test`] then checks, on one
//! device:
//!
//! 1. the config round trip: [`layer_from_config`] on the layer's class
//!    name and [`Layer::config`] gives a layer with the same config (register
//!    a custom layer first, with
//!    [`register_layer_class`](strata_layers::register_layer_class));
//! 2. shape inference: the output spec, as Keras prints it (`(None, 4)`);
//! 3. the weights: names and shapes, in order;
//! 4. a forward pass on random inputs: the output fits the spec and is
//!    finite;
//! 5. masks: a mask is created, passed on, consumed or rejected with an
//!    error naming the layer, as declared;
//! 6. for a layer with trainable weights, one gradient-descent step lowers a
//!    loss (so gradients reach every weight).
//!
//! ```
//! use strata::prelude::*;
//! use strata::testing::{run_layer_test, LayerTest, MaskBehavior};
//!
//! # fn main() -> strata::Result<()> {
//! let test = LayerTest::new(|| Dense::new(4).activation("relu"))
//!     .input([3])
//!     .output("(None, 4)")
//!     .weights([("kernel", &[3, 4][..]), ("bias", &[4][..])])
//!     .masks(MaskBehavior::Passes);
//! run_layer_test(&test, &backend::native())?;
//!
//! // A wrong expectation is an error saying what was found.
//! let wrong = LayerTest::new(|| Dense::new(4)).input([3]).output("(None, 5)");
//! let e = run_layer_test(&wrong, &backend::native()).unwrap_err().to_string();
//! assert!(e.contains("(None, 4)") && e.contains("(None, 5)"), "{e}");
//! # Ok(()) }
//! ```

use strata_core::{no_grad, DType, Device, Error, Result, Rng, Tensor};
use strata_layers::{layer_from_config, snake_case, Layer, Masking};

use crate::{BuildOptions, Input, LayerExt, Model, SharedLayer, SymbolicTensor};

/// What a layer does with masks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MaskBehavior {
    /// Makes one from its input (`Embedding(mask_zero)`, `Masking`).
    Creates,
    /// Makes none, and is not given one (`Embedding` without `mask_zero`).
    MakesNone,
    /// Carries an incoming mask to its output (element-wise layers).
    Passes,
    /// Uses an incoming mask and returns none (pooling).
    Consumes,
    /// Refuses an incoming mask with an error naming itself (`Flatten`).
    Rejects,
}

type Factory = Box<dyn Fn() -> Box<dyn Layer>>;

/// A layer and what [`run_layer_test`] should find it doing.
pub struct LayerTest {
    make: Factory,
    inputs: Vec<(Vec<usize>, DType)>,
    output: Option<String>,
    weights: Option<Vec<(String, Vec<usize>)>>,
    masks: Option<MaskBehavior>,
    seed: u64,
}

impl LayerTest {
    /// A test of the layers `make` returns (each check builds a fresh one).
    pub fn new<L: Layer>(make: impl Fn() -> L + 'static) -> Self {
        LayerTest {
            make: Box::new(move || Box::new(make()) as Box<dyn Layer>),
            inputs: Vec::new(),
            output: None,
            weights: None,
            masks: None,
            seed: 0,
        }
    }

    /// Adds an `f32` input of shape `dims` (without the batch axis).
    pub fn input(self, dims: impl Into<Vec<usize>>) -> Self {
        self.input_of(dims, DType::F32)
    }

    /// Adds an input of shape `dims` (without the batch axis) and `dtype`;
    /// `i64` inputs get ids in `[0, 5)`, zeros included.
    pub fn input_of(mut self, dims: impl Into<Vec<usize>>, dtype: DType) -> Self {
        self.inputs.push((dims.into(), dtype));
        self
    }

    /// The output spec shape inference must give, as Keras prints it
    /// (`"(None, 4)"`; for a layer with several outputs, all of them as the
    /// summary prints them: `"[(None, 4), (None, 4)]"`).
    pub fn output(mut self, spec: &str) -> Self {
        self.output = Some(spec.to_string());
        self
    }

    /// The layer's weights, by name and shape, in order (default: not
    /// checked).
    pub fn weights<'a>(mut self, weights: impl IntoIterator<Item = (&'a str, &'a [usize])>) -> Self {
        self.weights = Some(weights.into_iter().map(|(n, d)| (n.to_string(), d.to_vec())).collect());
        self
    }

    /// What the layer does with masks (default: not checked).
    pub fn masks(mut self, behavior: MaskBehavior) -> Self {
        self.masks = Some(behavior);
        self
    }

    /// Seeds the weights and the random inputs (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The class name of the layer under test.
    pub fn class_name(&self) -> String {
        (self.make)().class_name().to_string()
    }

    fn symbols(&self) -> Vec<SymbolicTensor> {
        self.inputs.iter().map(|(dims, dtype)| Input::new(dims.clone()).dtype(*dtype)).collect()
    }

    /// A batch of 3 for every input.
    fn data(&self, dev: &Device) -> Result<Vec<Tensor>> {
        let mut rng = Rng::seed(self.seed.wrapping_add(1));
        self.inputs
            .iter()
            .map(|(dims, dtype)| {
                let mut shape = vec![3];
                shape.extend(dims);
                match dtype {
                    DType::F32 => Tensor::rand_normal(shape, 0.0, 1.0, &mut rng, dev),
                    DType::I64 => {
                        let n: usize = shape.iter().product();
                        Tensor::new((0..n).map(|i| (i * 7 % 5) as i64).collect::<Vec<_>>(), shape, dev)
                    }
                }
            })
            .collect()
    }
}

fn ensure(ok: bool, message: impl FnOnce() -> String) -> Result<()> {
    if ok {
        Ok(())
    } else {
        Err(Error::msg(message()))
    }
}

/// Runs every check of [`LayerTest`] on `device`; the first that fails is an
/// error naming the layer's class and what was found instead.
pub fn run_layer_test(test: &LayerTest, device: &Device) -> Result<()> {
    let layer = (test.make)();
    let class = layer.class_name().to_string();
    let fail = |e: Error| Error::msg(format!("{class}: {e}"));
    ensure(!test.inputs.is_empty(), || format!("{class}: the test gives the layer no input (LayerTest::input)"))?;

    // 1. Config round trip through the registry.
    let config = layer.config();
    let rebuilt = layer_from_config(&class, &config).map_err(fail)?;
    ensure(rebuilt.config() == config, || {
        format!("{class}: config round trip changed {config} into {}", rebuilt.config())
    })?;

    // 2–3. Shape inference and weights, through a Functional model.
    let xs = test.symbols();
    let ys = SharedLayer::from_box(layer).call_outputs(&xs).map_err(fail)?;
    let model = Model::new_with(&xs, &ys, BuildOptions::new().device(device).seed(test.seed)).map_err(fail)?;
    let specs = model.output_specs();
    if let Some(want) = &test.output {
        let got = match specs.as_slice() {
            [one] => one.to_string(),
            many => format!("[{}]", many.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ")),
        };
        ensure(got == *want, || format!("{class}: output spec {got}, expected {want}"))?;
    }
    let name = model.layer_names()[0].to_string();
    if let Some(want) = &test.weights {
        let got: Vec<(String, Vec<usize>)> =
            model.get_layer(&name)?.weights().iter().map(|w| (w.name.clone(), w.value.dims().to_vec())).collect();
        ensure(got == *want, || format!("{class}: weights {got:?}, expected {want:?}"))?;
    }

    // 4. A forward pass: the concrete shapes fit the specs, values are finite.
    let x = test.data(device)?;
    let (out, out_masks) = model.forward_masked(&x, false).map_err(fail)?;
    for (k, (o, spec)) in out.iter().zip(&specs).enumerate() {
        ensure(spec.with_dtype(o.dtype()).matches(o), || {
            format!("{class}: output {k} of shape {:?} does not fit the spec {spec}", o.dims())
        })?;
        if o.dtype() == DType::F32 {
            ensure(o.to_vec::<f32>()?.iter().all(|v| v.is_finite()), || format!("{class}: non-finite output {k}"))?;
        }
    }

    // 5. Masks.
    if let Some(behavior) = test.masks {
        check_masks(test, behavior, &class, device, &x, &out, &out_masks)?;
    }

    // 6. One gradient-descent step lowers a loss, for layers with trainable weights.
    let params = model.trainable_weights();
    if !params.is_empty() {
        let loss_of = |m: &Model| -> Result<Tensor> { m.forward(&x, true)?[0].sub_scalar(0.5)?.square()?.mean_all() };
        let before = loss_of(&model)?;
        let grads = before.backward()?;
        no_grad(|| -> Result<()> {
            for p in &params {
                let g =
                    grads.get(&p.value).ok_or_else(|| Error::msg(format!("{class}: no gradient for {}", p.name)))?;
                p.value.assign(&p.value.sub(&g.mul_scalar(0.05)?)?)?;
            }
            Ok(())
        })?;
        let after = loss_of(&model)?.to_scalar::<f32>()?;
        let before = before.to_scalar::<f32>()?;
        ensure(after < before, || format!("{class}: loss {before} → {after} after one gradient step"))?;
    }
    Ok(())
}

fn check_masks(
    test: &LayerTest,
    behavior: MaskBehavior,
    class: &str,
    device: &Device,
    x: &[Tensor],
    out: &[Tensor],
    out_masks: &[Option<Tensor>],
) -> Result<()> {
    let mask_fits = |m: &Tensor, o: &Tensor| m.dims() == &o.dims()[..o.rank() - 1];
    match behavior {
        MaskBehavior::Creates => {
            let m = out_masks[0].as_ref().ok_or_else(|| Error::msg(format!("{class}: no mask created")))?;
            ensure(mask_fits(m, &out[0]), || format!("{class}: mask of shape {:?}", m.dims()))
        }
        MaskBehavior::MakesNone => ensure(out_masks[0].is_none(), || format!("{class}: unexpected mask")),
        MaskBehavior::Passes | MaskBehavior::Consumes | MaskBehavior::Rejects => {
            // Feed a mask in: a Masking layer in front of every input.
            let xs = test.symbols();
            let masked: Vec<SymbolicTensor> = xs.iter().map(|x| Masking::new(0.0).call(x)).collect::<Result<_>>()?;
            let ys = SharedLayer::from_box((test.make)()).call_outputs(&masked)?;
            let built = Model::new_with(&xs, &ys, BuildOptions::new().device(device).seed(test.seed));
            let result = built.and_then(|m| m.forward_masked(x, false));
            match (behavior, result) {
                (MaskBehavior::Passes, Ok((o, m))) => {
                    let m = m[0].as_ref().ok_or_else(|| Error::msg(format!("{class}: mask dropped")))?;
                    ensure(mask_fits(m, &o[0]), || format!("{class}: mask of shape {:?}", m.dims()))
                }
                (MaskBehavior::Consumes, Ok((_, m))) => {
                    ensure(m[0].is_none(), || format!("{class}: mask not consumed"))
                }
                (MaskBehavior::Rejects, Err(e)) => {
                    let e = e.to_string();
                    ensure(e.contains(&snake_case(class)) && e.contains("mask"), || {
                        format!("{class}: the mask error does not name the layer: {e}")
                    })
                }
                (expected, Ok(_)) => Err(Error::msg(format!("{class}: expected {expected:?}, the call succeeded"))),
                (expected, Err(e)) => Err(Error::msg(format!("{class}: expected {expected:?}, got the error {e}"))),
            }
        }
    }
}
