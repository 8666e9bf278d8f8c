//! A model that diverges on purpose, and the tools that say why.
//!
//! House prices from the floor area in square feet and the number of rooms,
//! fed unscaled (areas around 2,000) to a small MLP trained with SGD at a
//! learning rate that suits scaled data. It blows up within a few steps.
//!
//! 1. `Model::inspect` on one batch, before training: one step's
//!    activations, gradients and update-to-weight ratios.
//! 2. `fit` with `check_numerics(true)`: the error names where the first
//!    NaN or infinity appeared, and the weights stay as they were; then a
//!    second mistake (the log of a value that goes negative) traced to its
//!    layer.
//! 3. The fix (a `Normalization` layer adapted on the data), inspected and
//!    trained again, with a `TensorBoard` log of the run.
//!
//! ```text
//! cargo run --example debugging
//! tensorboard --logdir <the printed folder>
//! ```

use anyhow::{ensure, Result};
use strata::callbacks::TensorBoard;
use strata::prelude::*;
use strata::Error;

/// `rows` houses: area (500-3,500 sq ft), rooms (1-6), price in $100,000s.
fn houses(rows: usize, dev: &Device) -> Result<(Tensor, Tensor)> {
    let mut rng = Rng::seed(17);
    let mut x = Vec::with_capacity(rows * 2);
    let mut y = Vec::with_capacity(rows);
    for _ in 0..rows {
        let area = 500.0 + 3000.0 * rng.uniform();
        let rooms = (1.0 + 5.0 * rng.uniform()).floor();
        x.extend([area, rooms]);
        y.push((0.15 * area + 12.0 * rooms + 20.0 * (rng.uniform() - 0.5)) / 100.0);
    }
    Ok((Tensor::new(x, [rows, 2], dev)?, Tensor::new(y, [rows, 1], dev)?))
}

fn mlp(first: Option<Normalization>, dev: &Device) -> Result<Model> {
    let mut s = Sequential::new().add(Input::new([2]).name("features"));
    if let Some(norm) = first {
        s = s.add(norm.name("scale"));
    }
    let mut model = s
        .add(Dense::new(16).activation("leaky_relu").name("hidden"))
        .add(Dense::new(1).name("price"))
        .seed(3)
        .build_on(dev)?;
    model.compile(SGD::new(0.01), "mse", &["mae"])?;
    Ok(model)
}

fn main() -> Result<()> {
    let dev = backend::from_env()?;
    let (x, y) = houses(512, &dev)?;
    let (xb, yb) = (x.narrow(0, 0, 32)?, y.narrow(0, 0, 32)?);

    println!("== 1. One step looked at from inside (unscaled inputs)");
    let model = mlp(None, &dev)?;
    let report = model.inspect(&xb, &yb)?;
    println!("{report}");
    let worst = report.weights.iter().filter_map(|w| w.update_ratio).fold(0.0, f64::max);
    println!("largest update/weight ratio: {worst:.3e} (around 1e-3 is healthy)\n");
    ensure!(worst > 1.0, "the unscaled model's first update should dwarf its weights");

    println!("== 2. Training with check_numerics");
    let mut model = model;
    let before = model.get_weights()?[0].to_vec::<f32>()?;
    let options = FitOptions::default().epochs(5).batch_size(32).verbose(0).check_numerics(true);
    match model.fit(&x, &y, options) {
        Err(Error::NonFinite(where_)) => println!("fit stopped: {where_}"),
        Err(e) => return Err(e.into()),
        Ok(h) => anyhow::bail!("expected the unscaled model to diverge; losses {:?}", h.get("loss")),
    }
    let after = model.get_weights()?[0].to_vec::<f32>()?;
    println!("the weights are those before the failing step (changed by the steps before it: {})", after != before);

    // A second mistake: a log taken of a value that can go negative.
    let mut logged = Sequential::new()
        .add(Input::new([2]))
        .add(Normalization::new().adapt(&x)?)
        .add(Dense::new(1).name("raw_price"))
        .add(Lambda::new("log", |t: &Tensor| t.log()).name("log_price"))
        .seed(3)
        .build_on(&dev)?;
    logged.compile(SGD::new(0.01), "mse", &[])?;
    match logged.fit(&x, &y.log()?, FitOptions::default().epochs(1).verbose(0).check_numerics(true)) {
        Err(Error::NonFinite(where_)) => println!("fit stopped: {where_}\n"),
        other => anyhow::bail!(
            "expected the log of a negative value to be found, got {:?}",
            other.map(|h| h.get("loss").map(<[f64]>::to_vec))
        ),
    }

    println!("== 3. Scaled inputs: a Normalization layer adapted on the data");
    let norm = Normalization::new().adapt(&x)?;
    let mut model = mlp(Some(norm), &dev)?;
    let report = model.inspect(&xb, &yb)?;
    println!("{report}");
    let logs = std::env::temp_dir().join(format!("strata-debugging-{}", std::process::id()));
    let history = model.fit(
        &x,
        &y,
        FitOptions::default()
            .epochs(40)
            .batch_size(32)
            .verbose(0)
            .validation_split(0.2)
            .check_numerics(true)
            .callback(TensorBoard::new(&logs).histogram_freq(5)),
    )?;
    let mae = history.last("val_mae").unwrap_or(f64::NAN);
    println!("after 40 epochs: val_mae = ${:.1}k; TensorBoard logs in {}", 100.0 * mae, logs.display());
    ensure!(mae < 0.15, "the scaled model should fit the prices to within $15k, got {mae}");
    Ok(())
}
