//! The reshaping and preprocessing layers inside a model: an image model
//! with augmentation trains (gradients flow through resizing, cropping,
//! padding and bilinear upsampling), is deterministic in inference, and saves
//! and loads with an adapted `Normalization`'s statistics.

use anyhow::{ensure, Result};
use strata::layers::{
    CenterCrop, Conv2D, Cropping2D, Normalization, RandomContrast, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, Rescaling, Resizing, UpSampling2D, ZeroPadding2D,
};
use strata::prelude::*;

fn devices() -> Vec<Device> {
    strata::backend::available()
        .into_iter()
        .filter(|n| *n != "candle-cpu")
        .map(|n| strata::backend::by_name(n).expect("backend"))
        .collect()
}

fn images(n: usize, seed: u64, dev: &Device) -> Result<Tensor> {
    Ok(Tensor::rand_uniform(vec![n, 8, 8, 2], 0.0, 255.0, &mut Rng::seed(seed), dev)?)
}

fn model(adapt: &Tensor, dev: &Device) -> Result<Model> {
    Ok(Sequential::new()
        .add(Input::new([8, 8, 2]))
        .add(RandomContrast::new(0.2))
        .add(RandomFlip::new("horizontal"))
        .add(RandomRotation::new(0.05))
        .add(RandomZoom::new(0.1))
        .add(RandomTranslation::new(0.1, 0.1).fill_mode("nearest"))
        .add(Rescaling::new(1.0 / 255.0))
        .add(Normalization::new().adapt(&adapt.mul_scalar(1.0 / 255.0)?)?)
        .add(Resizing::new(6, 6))
        .add(Conv2D::new(3, 3).padding("same").activation("relu"))
        .add(Cropping2D::new(1))
        .add(UpSampling2D::new(2).interpolation("bilinear"))
        .add(ZeroPadding2D::new(1))
        .add(CenterCrop::new(8, 8))
        .add(Flatten::new())
        .add(Dense::new(3).activation("softmax"))
        .seed(5)
        .build_on(dev)?)
}

#[test]
fn an_augmented_image_model_trains_saves_and_loads() -> Result<()> {
    for dev in devices() {
        let x = images(24, 1, &dev)?;
        let labels: Vec<i64> = (0..24).map(|i| (i % 3) as i64).collect();
        let y = Tensor::new(labels, [24], &dev)?;
        let mut m = model(&x, &dev)?;
        let stats: Vec<String> =
            m.weights().iter().map(|w| w.name.clone()).filter(|n| n.contains("normalization")).collect();
        ensure!(stats.len() == 3, "normalization weights {stats:?}");
        m.compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
        let before = m.forward(std::slice::from_ref(&x), false)?[0].to_vec::<f32>()?;
        ensure!(
            before == m.forward(std::slice::from_ref(&x), false)?[0].to_vec::<f32>()?,
            "inference is not deterministic"
        );
        m.fit(&x, &y, FitOptions::default().epochs(2).batch_size(8).verbose(0))?;
        let after = m.forward(std::slice::from_ref(&x), false)?[0].to_vec::<f32>()?;
        ensure!(before != after, "{}: training changed nothing", dev.name());
        let path = std::env::temp_dir().join(format!(
            "strata_preprocessing_{}_{}.safetensors",
            std::process::id(),
            dev.name()
        ));
        m.save(&path)?;
        let again = strata::load_model_on(&path, &dev)?;
        std::fs::remove_file(&path).ok();
        ensure!(again.get_config() == m.get_config());
        for (a, b) in m.weights().iter().zip(again.weights()) {
            ensure!(a.name == b.name && a.value.to_vec::<f32>()? == b.value.to_vec::<f32>()?, "{} differs", a.name);
        }
        ensure!(
            again.forward(std::slice::from_ref(&x), false)?[0].to_vec::<f32>()? == after,
            "loaded model predicts differently"
        );
    }
    Ok(())
}
