//! The Functional API with two inputs and two outputs, on the digits that
//! ship with strata: the top and bottom halves of each 8x8 image come in as
//! separate inputs, pass through one shared encoder (the same weights for
//! both halves), are concatenated, and feed two heads — the digit (10
//! classes) and whether it is odd. Prints the summary and the graph as
//! Graphviz DOT, trains, and fails below 90% test accuracy on either head.
//!
//! ```text
//! cargo run --release --example functional_two_inputs
//! cargo run --release --example functional_two_inputs > /dev/null; dot -Tsvg model.dot -o model.svg
//! STRATA_BACKEND=candle cargo run --release --example functional_two_inputs
//! ```
//!
//! With Graphviz installed, `model.plot("model.svg")` draws the picture
//! directly.

use strata::datasets::digits;
use strata::prelude::*;

/// The top and bottom halves of `[N, 64]` images (rows 0–3 and 4–7),
/// the digit labels, and the "is odd" labels as `[N, 1]` floats.
fn halves(x: &Tensor, y: &Tensor) -> Result<([Tensor; 2], [Tensor; 2])> {
    let odd: Vec<f32> = y.to_vec::<i64>()?.iter().map(|&d| (d % 2) as f32).collect();
    let odd = Tensor::new(odd, [y.dims()[0], 1], y.device())?;
    Ok(([x.narrow(1, 0, 32)?, x.narrow(1, 32, 32)?], [y.clone(), odd]))
}

fn main() -> anyhow::Result<()> {
    let dev = backend::from_env()?;
    let data = digits::load_scaled()?.train_test_split(0.25, 0)?.to_device(&dev)?;
    let (x_train, y_train) = halves(&data.train.x, &data.train.y)?;
    let (x_test, y_test) = halves(&data.test.x, &data.test.y)?;

    let top = Input::new([32]).name("top");
    let bottom = Input::new([32]).name("bottom");
    let encoder = Dense::new(32).activation("relu").name("encoder").shared();
    let features = Concatenate::new().call(&[&encoder.call(&top)?, &encoder.call(&bottom)?])?;
    let hidden = Dense::new(64).activation("relu").call(&features)?;
    let digit = Dense::new(10).activation("softmax").name("digit").call(&hidden)?;
    let odd = Dense::new(1).activation("sigmoid").name("odd").call(&hidden)?;
    let mut model = Model::new_with(&[top, bottom], &[digit, odd], BuildOptions::new().device(&dev).seed(0))?;

    model.summary();
    println!("{}", model.to_dot());
    model.plot("model.dot")?;

    model.compile(
        Adam::new(3e-3),
        Losses::named([("digit", "sparse_categorical_crossentropy"), ("odd", "binary_crossentropy")])?,
        &["accuracy"],
    )?;
    let options = FitOptions::default().epochs(30).batch_size(32).validation_split(0.2).verbose(0);
    let history = model.fit(&x_train, &y_train, options)?;
    let report = model.evaluate_with(&x_test, &y_test, EvaluateOptions::default().verbose(0))?;
    let (digit_acc, odd_acc) = (report["digit_accuracy"], report["odd_accuracy"]);
    println!(
        "{}: after {} epochs, test accuracy: digit {digit_acc:.4}, odd {odd_acc:.4} (loss {:.4}); wrote model.dot",
        dev.name(),
        history.len(),
        report["loss"]
    );
    anyhow::ensure!(digit_acc >= 0.9, "digit accuracy {digit_acc:.4} is below 90%");
    anyhow::ensure!(odd_acc >= 0.9, "odd accuracy {odd_acc:.4} is below 90%");
    Ok(())
}
