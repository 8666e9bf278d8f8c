//! A small residual convnet on Fashion-MNIST, written with the Functional
//! API: augmentation inside the model (`RandomFlip`, `RandomTranslation`:
//! active only in training, so a saved model carries them and `predict`
//! ignores them), a stem convolution, two residual blocks at 14×14 and 7×7
//! (Conv2D → BatchNormalization → relu → Conv2D → BatchNormalization, added
//! to the block's input by `Add`), `GlobalAveragePooling2D` and a softmax.
//! Adam with a cosine-decayed learning rate, batch 128, 10 % held out for
//! validation. Writes the model graph to `fashion_convnet.dot`
//! (`model.plot`; the skip connections are the edges into the `add` nodes)
//! and `.svg` when Graphviz is installed; prints the test accuracy; fails
//! below 92 % after 20 epochs (the default), below 75 % when run for fewer.
//!
//! Measured on native (2-core Xeon with AVX-512, 49.5 s/epoch including
//! validation): 92.51 % test accuracy after 20 epochs (validation 93.03 %);
//! 15 epochs gave 91.85 %, short of the bar, hence the 20.
//!
//! ```text
//! cargo run --release --example fashion_convnet                 # 20 epochs
//! cargo run --release --example fashion_convnet -- 1            # 1 epoch
//! cargo run --release --example fashion_convnet -- 2 path/to/fashion-mnist
//! STRATA_BACKEND=candle cargo run --release --example fashion_convnet
//! ```

use std::time::Instant;

use strata::datasets::{fashion_mnist, Dataset};
use strata::optimizers::Adam;
use strata::prelude::*;

/// BatchNormalization's momentum. Keras' default, 0.99, averages the batch
/// statistics over ~100 steps and lags them by as much: measured here, one
/// epoch (422 steps) with 0.99 validated at 53 % while training at 78 %
/// (106 steps: 10 % against 71 %), because inference normalises with
/// statistics of earlier weights. With 0.9 the two agree from the first
/// epoch.
const BN_MOMENTUM: f32 = 0.9;

/// `[N, 28, 28]` images as `[N, 28, 28, 1]`.
fn with_channel(d: &Dataset) -> anyhow::Result<Dataset> {
    let n = d.len();
    Ok(Dataset::new(d.x.reshape([n, 28, 28, 1])?, d.y.clone())?)
}

/// Conv2D → BatchNormalization → relu → Conv2D → BatchNormalization, plus
/// the input (the skip connection), then relu.
fn residual_block(x: &SymbolicTensor, filters: usize) -> Result<SymbolicTensor> {
    let y = Conv2D::new(filters, 3).padding("same").use_bias(false).call(x)?;
    let y = BatchNormalization::new().momentum(BN_MOMENTUM).call(&y)?;
    let y = ActivationLayer::new("relu").call(&y)?;
    let y = Conv2D::new(filters, 3).padding("same").use_bias(false).call(&y)?;
    let y = BatchNormalization::new().momentum(BN_MOMENTUM).call(&y)?;
    let sum = Add::new().call(&[x, &y])?;
    ActivationLayer::new("relu").call(&sum)
}

fn main() -> anyhow::Result<()> {
    let mut epochs = 20;
    let mut dir = None;
    for arg in std::env::args().skip(1) {
        match arg.parse::<usize>() {
            Ok(0) => anyhow::bail!("the epoch count must be at least 1"),
            Ok(n) => epochs = n,
            Err(_) => dir = Some(arg),
        }
    }
    let dev = backend::from_env()?;
    let data = match dir {
        Some(dir) => fashion_mnist::load_from(dir)?,
        None => fashion_mnist::load()?,
    }
    .to_device(&dev)?;
    let (train, test) = (with_channel(&data.train)?, with_channel(&data.test)?);
    println!("backend: {}, {} training and {} test images", dev.name(), train.len(), test.len());

    let inputs = Input::new([28, 28, 1]).name("image");
    let x = RandomFlip::new("horizontal").call(&inputs)?;
    let x = RandomTranslation::new(0.05, 0.05).fill_mode("constant").call(&x)?;
    let x = Conv2D::new(32, 3).padding("same").use_bias(false).call(&x)?;
    let x = BatchNormalization::new().momentum(BN_MOMENTUM).call(&x)?;
    let x = ActivationLayer::new("relu").call(&x)?;
    let x = MaxPooling2D::new(2).call(&x)?; // 14 × 14
    let x = residual_block(&x, 32)?;
    let x = MaxPooling2D::new(2).call(&x)?; // 7 × 7
    let x = Conv2D::new(64, 1).use_bias(false).call(&x)?; // widen for the second block
    let x = residual_block(&x, 64)?;
    let x = GlobalAveragePooling2D::new().call(&x)?;
    let outputs = Dense::new(10).activation("softmax").call(&x)?;
    let mut model = Model::new_with(&inputs, &outputs, BuildOptions::new().device(&dev).seed(7))?;
    model.summary();
    model.plot("fashion_convnet.dot")?;
    if model.plot("fashion_convnet.svg").is_ok() {
        println!("wrote fashion_convnet.dot and fashion_convnet.svg");
    } else {
        println!("wrote fashion_convnet.dot (install Graphviz for the .svg)");
    }
    // A cosine decay from 2e-3 to 0 over the whole run: the last epochs
    // settle instead of jumping around the minimum (with a constant 1e-3,
    // 12 epochs ended at 87.3 % with the validation accuracy swinging by 4 %; with it, 91.6 %).
    let steps = (epochs * (train.len() * 9 / 10).div_ceil(128)) as u64;
    model.compile(Adam::new(CosineDecay::new(2e-3, steps)), "sparse_categorical_crossentropy", &["accuracy"])?;

    let start = Instant::now();
    model.fit(&train.x, &train.y, FitOptions::default().epochs(epochs).batch_size(128).validation_split(0.1))?;
    let per_epoch = start.elapsed().as_secs_f64() / epochs as f64;
    let report = model.evaluate(&test.x, &test.y)?;
    let acc = report["accuracy"];
    println!(
        "{}: test accuracy {:.4}, test loss {:.4}, {:.1} s/epoch (incl. validation)",
        dev.name(),
        acc,
        report["loss"],
        per_epoch
    );
    let bar = if epochs >= 20 { 0.92 } else { 0.75 };
    anyhow::ensure!(acc >= bar, "test accuracy {acc:.4} is below {:.0}%", bar * 100.0);
    Ok(())
}
