//! A custom layer with its own trainable weights, used in a Sequential and a
//! Functional model and trained — on any backend, unchanged — then checked
//! with the same harness every built-in layer passes
//! (`strata::testing::run_layer_test`).
//!
//! ```text
//! cargo run --release --example custom_layer
//! STRATA_BACKEND=candle cargo run --release --example custom_layer
//! ```

use serde_json::{json, Value};
use strata::prelude::*;
#[allow(unused_imports)]
use strata::testing::{run_layer_test, LayerTest, MaskBehavior};

/// `y = (x·a)² + x·b + c`: a quadratic form Dense cannot express.
pub struct Quadratic {
    /// Number of outputs.
    pub units: usize,
}

/// Its class name, written once, and how to rebuild it from its config (so
/// saved models that use it load once it is registered).
impl LayerClass for Quadratic {
    const CLASS_NAME: &'static str = "Quadratic";

    fn from_config(config: &Value) -> Result<Self> {
        let units =
            config["units"].as_u64().ok_or_else(|| Error::Config(format!("Quadratic needs units, got {config}")))?;
        Ok(Quadratic { units: units as usize })
    }
}

impl Layer for Quadratic {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext) -> Result<TensorSpec> {
        let features =
            inputs[0].last().ok_or_else(|| Error::msg(format!("needs known features, got {}", inputs[0])))?;
        ctx.add_weight("a", [features, self.units], "glorot_uniform")?;
        ctx.add_weight("b", [features, self.units], "glorot_uniform")?;
        ctx.add_weight("c", [self.units], "zeros")?;
        Ok(inputs[0].with_last(self.units))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext) -> Result<Tensor> {
        let x = &inputs[0];
        x.matmul(&ctx.weight("a")?)?.square()?.add(&x.matmul(&ctx.weight("b")?)?)?.add(&ctx.weight("c")?)
    }

    fn config(&self) -> Value {
        json!({ "units": self.units })
    }
}

/// Fits `y = (x₁ − x₂)² + 2x₁ − 1` with plain SGD; returns the final loss.
pub fn train(dev: &Device, verbose: bool) -> Result<f32> {
    let model =
        Sequential::new().add(Input::new([2])).add(Quadratic { units: 4 }).add(Dense::new(1)).seed(7).build_on(dev)?;
    if verbose {
        model.summary();
    }
    let mut rng = Rng::seed(0);
    let x = Tensor::rand_normal([256, 2], 0.0, 1.0, &mut rng, dev)?;
    let (x1, x2) = (x.narrow(1, 0, 1)?, x.narrow(1, 1, 1)?);
    let y = x1.sub(&x2)?.square()?.add(&x1.mul_scalar(2.0)?)?.sub_scalar(1.0)?;
    let params = model.trainable_weights();
    let mut loss_value = f32::NAN;
    for step in 0..=200 {
        let loss = model.forward(&x, true)?[0].sub(&y)?.square()?.mean_all()?;
        let grads = loss.backward()?;
        no_grad(|| -> Result<()> {
            for p in &params {
                if let Some(g) = grads.get(&p.value) {
                    p.value.assign(&p.value.sub(&g.mul_scalar(0.02)?)?)?;
                }
            }
            Ok(())
        })?;
        loss_value = loss.to_scalar::<f32>()?;
        if verbose && step % 50 == 0 {
            println!("step {step:3}  mse {loss_value:.6}");
        }
    }
    Ok(loss_value)
}

#[allow(dead_code)]
fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    println!("backend: {}", dev.name());
    let loss = train(&dev, true)?;
    anyhow::ensure!(loss < 1e-3, "did not converge: mse {loss}");

    // The same layer in a Functional model, called on two inputs (shared weights).
    let (a, b) = (Input::new([2]).name("a"), Input::new([2]).name("b"));
    let shared = Quadratic { units: 3 }.shared();
    let (ya, yb) = (shared.call(&a)?, shared.call(&b)?);
    let model = Model::new_with(&[a, b], &[ya, yb], BuildOptions::new().device(&dev))?;
    model.summary();

    // The layer harness: config round trip (after registering the class),
    // shape inference, weights, masks, and one gradient step lowering a loss.
    strata::layers::register_layer_class::<Quadratic>()?;
    let test = LayerTest::new(|| Quadratic { units: 3 })
        .input([2])
        .output("(None, 3)")
        .weights([("a", &[2, 3][..]), ("b", &[2, 3][..]), ("c", &[3][..])])
        .masks(MaskBehavior::Rejects);
    run_layer_test(&test, &dev)?;
    println!("run_layer_test: Quadratic passes");
    Ok(())
}
