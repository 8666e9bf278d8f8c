//! Masks through whole models: created by Embedding(mask_zero) or Masking,
//! carried by the layers that support them, consumed by pooling; a layer
//! that cannot handle a mask is an error naming it.

use anyhow::Result;
use strata::prelude::*;

fn dev() -> Device {
    strata::backend::native()
}

/// Token ids with trailing padding (0).
fn ids() -> Result<Tensor> {
    Ok(Tensor::new(vec![3i64, 1, 4, 0, 0, 2, 5, 1, 3, 0], [2, 5], &dev())?)
}

#[test]
fn padding_does_not_change_the_pooled_result() -> Result<()> {
    let tokens = Input::new([None]).dtype(DType::I64).name("tokens");
    let x = Embedding::new(6, 4).mask_zero(true).call(&tokens)?;
    let x = Dense::new(3).activation("tanh").call(&x)?;
    let x = Dropout::new(0.3).call(&x)?;
    let x = LayerNormalization::new().call(&x)?;
    let out = GlobalAveragePooling1D::new().call(&x)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()).seed(3))?;
    assert_eq!(model.output_specs()[0].to_string(), "(None, 3)");

    let (y, masks) = model.forward_masked(&[ids()?], false)?;
    assert!(masks[0].is_none(), "pooling consumes the mask");
    // The first row without its padding gives the same pooled vector.
    let short = Tensor::new(vec![3i64, 1, 4], [1, 3], &dev())?;
    let y_short = &model.forward(&short, false)?[0];
    let row0: Vec<f32> = y[0].narrow(0, 0, 1)?.to_vec()?;
    for (a, b) in row0.iter().zip(y_short.to_vec::<f32>()?) {
        assert!((a - b).abs() < 1e-6, "{a} vs {b}");
    }
    Ok(())
}

#[test]
fn masked_max_pooling_ignores_padded_steps() -> Result<()> {
    // With Masking(0): padded steps are zeros; the max must come from real steps only,
    // all of which are negative here.
    let x = Input::new([3, 2]);
    let y = Masking::new(0.0).call(&x)?;
    let y = GlobalMaxPooling1D::new().call(&y)?;
    let model = Model::new_with(&[x], &[y], BuildOptions::new().device(&dev()))?;
    let data = Tensor::new(vec![-1.0f32, -2.0, 0.0, 0.0, -3.0, -0.5], [1, 3, 2], &dev())?;
    assert_eq!(model.forward(&data, false)?[0].to_vec::<f32>()?, vec![-1.0, -0.5]);
    Ok(())
}

#[test]
fn the_mask_reaches_the_output_for_losses() -> Result<()> {
    let tokens = Input::new([5]).dtype(DType::I64);
    let x = Embedding::new(6, 4).mask_zero(true).call(&tokens)?;
    let out = Dense::new(2).activation("softmax").call(&x)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()))?;
    let (_, masks) = model.forward_masked(&[ids()?], false)?;
    let m = masks[0].as_ref().expect("Dense passes the mask on");
    assert_eq!(m.to_vec::<f32>()?, vec![1.0, 1.0, 1.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0]);
    Ok(())
}

#[test]
fn a_layer_that_cannot_take_a_mask_says_so() -> Result<()> {
    let tokens = Input::new([5]).dtype(DType::I64);
    let x = Embedding::new(6, 4).mask_zero(true).call(&tokens)?;
    let out = Flatten::new().call(&x)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()))?;
    let e = model.forward(&[ids()?], false).unwrap_err().to_string();
    assert!(e.contains("flatten (Flatten)") && e.contains("does not support masking"), "{e}");
    Ok(())
}

#[test]
fn out_of_range_ids_are_errors_naming_the_layer() -> Result<()> {
    let tokens = Input::new([5]).dtype(DType::I64);
    let out = Embedding::new(6, 4).call(&tokens)?;
    let model = Model::new_with(&[tokens], &[out], BuildOptions::new().device(&dev()))?;
    let bad = Tensor::new(vec![1i64, 2, 6, 0, 0], [1, 5], &dev())?;
    let e = model.forward(&bad, false).unwrap_err().to_string();
    assert!(e.contains("embedding (Embedding)") && e.contains('6') && e.contains("input_dim"), "{e}");
    let neg = Tensor::new(vec![1i64, -1, 0, 0, 0], [1, 5], &dev())?;
    let e = model.forward(&neg, false).unwrap_err().to_string();
    assert!(e.contains("-1"), "{e}");
    // Float ids where the model declared int64 are refused up front.
    let e = model.forward(&[Tensor::zeros([1, 5], DType::F32, &dev())?], false).unwrap_err().to_string();
    assert!(e.contains("int64") || e.contains("i64"), "{e}");
    Ok(())
}

#[test]
fn dropout_is_active_only_in_training_and_seeded() -> Result<()> {
    let build = || -> Result<Model> {
        Ok(Sequential::new().add(Input::new([1000])).add(Dropout::new(0.5)).seed(11).build_on(&dev())?)
    };
    let x = Tensor::ones([1, 1000], DType::F32, &dev())?;
    let m = build()?;
    assert_eq!(m.forward(&x, false)?[0].to_vec::<f32>()?, vec![1.0; 1000]);
    let y = m.forward(&x, true)?[0].to_vec::<f32>()?;
    let zeros = y.iter().filter(|&&v| v == 0.0).count();
    assert!((400..600).contains(&zeros), "{zeros} of 1000 dropped at rate 0.5");
    assert!(y.iter().all(|&v| v == 0.0 || v == 2.0));
    // The same seed gives the same masks, whatever inference ran in between;
    // the next training step draws a new mask.
    let again = build()?;
    assert_eq!(again.forward(&x, true)?[0].to_vec::<f32>()?, y);
    assert_ne!(again.forward(&x, true)?[0].to_vec::<f32>()?, y);
    Ok(())
}
