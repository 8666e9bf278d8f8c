//! Every built-in layer through the public layer harness
//! ([`strata::testing::run_layer_test`], Keras' `run_layer_test`) on every
//! backend: config round trip, output spec from shape inference, weight
//! names and shapes, the output's concrete shape, mask in and out, and — for
//! layers with weights — one gradient step that lowers a loss.

use anyhow::Result;
use strata::layers::*;
use strata::prelude::*;
use strata::testing::{run_layer_test, LayerTest, MaskBehavior::*};

fn cases() -> Vec<LayerTest> {
    vec![
        LayerTest::new(|| Dense::new(4).activation("relu"))
            .input([3])
            .output("(None, 4)")
            .weights([("kernel", &[3, 4][..]), ("bias", &[4][..])])
            .masks(Passes),
        LayerTest::new(|| Dense::new(2).use_bias(false).kernel_regularizer(Regularizer::l2(0.01)))
            .input([5, 3])
            .output("(None, 5, 2)")
            .weights([("kernel", &[3, 2][..])])
            .masks(Passes),
        LayerTest::new(|| ActivationLayer::new("gelu")).input([4, 3]).output("(None, 4, 3)").weights([]).masks(Passes),
        LayerTest::new(|| Embedding::new(7, 3))
            .input_of([5], DType::I64)
            .output("(None, 5, 3)")
            .weights([("embeddings", &[7, 3][..])])
            .masks(MakesNone),
        LayerTest::new(|| Embedding::new(7, 3).mask_zero(true))
            .input_of([5], DType::I64)
            .output("(None, 5, 3)")
            .weights([("embeddings", &[7, 3][..])])
            .masks(Creates),
        LayerTest::new(|| Masking::new(0.0)).input([4, 3]).output("(None, 4, 3)").weights([]).masks(Creates),
        LayerTest::new(|| Lambda::new("harness_double", |x| x.mul_scalar(2.0)))
            .input([4, 3])
            .output("(None, 4, 3)")
            .weights([])
            .masks(Passes),
        LayerTest::new(Flatten::new).input([4, 3]).output("(None, 12)").weights([]).masks(Rejects),
        LayerTest::new(|| Reshape::new([-1, 2])).input([4, 3]).output("(None, 6, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| Dropout::new(0.5)).input([4, 3]).output("(None, 4, 3)").weights([]).masks(Passes),
        LayerTest::new(Concatenate::new).input([4, 3]).input([4, 2]).output("(None, 4, 5)").weights([]).masks(Passes),
        LayerTest::new(Add::new)
            .input([4, 3])
            .input([4, 3])
            .input([4, 3])
            .output("(None, 4, 3)")
            .weights([])
            .masks(Passes),
        LayerTest::new(GlobalAveragePooling1D::new).input([4, 3]).output("(None, 3)").weights([]).masks(Consumes),
        LayerTest::new(GlobalMaxPooling1D::new).input([4, 3]).output("(None, 3)").weights([]).masks(Consumes),
        LayerTest::new(LayerNormalization::new)
            .input([4, 3])
            .output("(None, 4, 3)")
            .weights([("gamma", &[3][..]), ("beta", &[3][..])])
            .masks(Passes),
        LayerTest::new(|| Conv1D::new(3, 2).padding("causal").dilation_rate(2))
            .input([6, 2])
            .output("(None, 6, 3)")
            .weights([("kernel", &[2, 2, 3][..]), ("bias", &[3][..])])
            .masks(Rejects),
        LayerTest::new(|| Conv2D::new(4, 3).strides(2).padding("same").groups(2).activation("relu"))
            .input([5, 6, 2])
            .output("(None, 3, 3, 4)")
            .weights([("kernel", &[3, 3, 1, 4][..]), ("bias", &[4][..])])
            .masks(Rejects),
        LayerTest::new(|| MaxPooling1D::new(2)).input([5, 3]).output("(None, 2, 3)").weights([]).masks(Rejects),
        LayerTest::new(|| MaxPooling2D::new(3).strides(2).padding("same"))
            .input([5, 4, 2])
            .output("(None, 3, 2, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| AveragePooling1D::new(3).strides(1).padding("same"))
            .input([5, 3])
            .output("(None, 5, 3)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| AveragePooling2D::new(2))
            .input([4, 5, 2])
            .output("(None, 2, 2, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(GlobalAveragePooling2D::new).input([3, 4, 2]).output("(None, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| GlobalMaxPooling2D::new().keepdims(true))
            .input([3, 4, 2])
            .output("(None, 1, 1, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| BatchNormalization::new().momentum(0.5))
            .input([4, 3])
            .output("(None, 4, 3)")
            .weights([
                ("gamma", &[3][..]),
                ("beta", &[3][..]),
                ("moving_mean", &[3][..]),
                ("moving_variance", &[3][..]),
            ])
            .masks(Passes),
        LayerTest::new(|| DepthwiseConv2D::new(3).depth_multiplier(2).padding("same"))
            .input([5, 5, 3])
            .output("(None, 5, 5, 6)")
            .weights([("kernel", &[3, 3, 3, 2][..]), ("bias", &[6][..])])
            .masks(Rejects),
        LayerTest::new(|| SeparableConv2D::new(4, 3).activation("relu"))
            .input([5, 5, 2])
            .output("(None, 3, 3, 4)")
            .weights([
                ("depthwise_kernel", &[3, 3, 2, 1][..]),
                ("pointwise_kernel", &[1, 1, 2, 4][..]),
                ("bias", &[4][..]),
            ])
            .masks(Rejects),
        LayerTest::new(|| Conv1DTranspose::new(2, 3).strides(2).padding("same"))
            .input([4, 3])
            .output("(None, 8, 2)")
            .weights([("kernel", &[3, 2, 3][..]), ("bias", &[2][..])])
            .masks(Rejects),
        LayerTest::new(|| Conv2DTranspose::new(3, (2, 3)).strides((2, 1)).output_padding((1, 0)))
            .input([3, 4, 2])
            .output("(None, 7, 6, 3)")
            .weights([("kernel", &[2, 3, 3, 2][..]), ("bias", &[3][..])])
            .masks(Rejects),
        LayerTest::new(|| GroupNormalization::new().groups(2))
            .input([3, 4])
            .output("(None, 3, 4)")
            .weights([("gamma", &[4][..]), ("beta", &[4][..])])
            .masks(Passes),
        LayerTest::new(|| SpatialDropout1D::new(0.5)).input([4, 3]).output("(None, 4, 3)").weights([]).masks(Passes),
        LayerTest::new(|| SpatialDropout2D::new(0.5))
            .input([3, 3, 2])
            .output("(None, 3, 3, 2)")
            .weights([])
            .masks(Passes),
        // Reshaping.
        LayerTest::new(|| ZeroPadding1D::new((1, 2))).input([4, 3]).output("(None, 7, 3)").weights([]).masks(Rejects),
        LayerTest::new(|| ZeroPadding2D::new(1)).input([3, 4, 2]).output("(None, 5, 6, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| Cropping1D::new((1, 2))).input([6, 3]).output("(None, 3, 3)").weights([]).masks(Rejects),
        LayerTest::new(|| Cropping2D::new(((1, 0), (2, 1))))
            .input([5, 6, 2])
            .output("(None, 4, 3, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| UpSampling1D::new(2)).input([4, 3]).output("(None, 8, 3)").weights([]).masks(Rejects),
        LayerTest::new(|| UpSampling2D::new(2).interpolation("bilinear"))
            .input([3, 4, 2])
            .output("(None, 6, 8, 2)")
            .weights([])
            .masks(Rejects),
        // Preprocessing.
        LayerTest::new(|| Rescaling::new(1.0 / 255.0).offset(-0.5))
            .input([4, 4, 3])
            .output("(None, 4, 4, 3)")
            .weights([])
            .masks(Passes),
        LayerTest::new(|| Normalization::new().mean([0.5, -1.0, 2.0]).variance([4.0, 0.25, 1.0]))
            .input([4, 3])
            .output("(None, 4, 3)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| {
            let data = Tensor::new((0..12).map(|i| i as f32).collect::<Vec<_>>(), [4, 3], &strata::backend::native());
            Normalization::new().adapt(&data.expect("adapt data")).expect("adapt")
        })
        .input([4, 3])
        .output("(None, 4, 3)")
        .weights([("mean", &[3][..]), ("variance", &[3][..]), ("count", &[][..])])
        .masks(Rejects),
        LayerTest::new(|| Resizing::new(3, 5)).input([4, 4, 2]).output("(None, 3, 5, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| CenterCrop::new(2, 3)).input([4, 4, 2]).output("(None, 2, 3, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| RandomFlip::new("horizontal"))
            .input([4, 4, 2])
            .output("(None, 4, 4, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| RandomTranslation::new(0.2, 0.2))
            .input([4, 4, 2])
            .output("(None, 4, 4, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| RandomRotation::new(0.1))
            .input([4, 4, 2])
            .output("(None, 4, 4, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(|| RandomZoom::new(0.2)).input([4, 4, 2]).output("(None, 4, 4, 2)").weights([]).masks(Rejects),
        LayerTest::new(|| RandomContrast::new(0.3))
            .input([4, 4, 2])
            .output("(None, 4, 4, 2)")
            .weights([])
            .masks(Rejects),
        LayerTest::new(Subtract::new).input([5, 3]).input([5, 3]).output("(None, 5, 3)").weights([]).masks(Passes),
        LayerTest::new(Average::new).input([4]).input([4]).input([4]).output("(None, 4)").weights([]),
        LayerTest::new(Maximum::new).input([2, 3]).input([2, 3]).output("(None, 2, 3)").masks(Passes),
        LayerTest::new(Minimum::new).input([3]).input([3]).output("(None, 3)").masks(Passes),
        LayerTest::new(Multiply::new).input([3]).input([3]).input([3]).output("(None, 3)").masks(Passes),
        LayerTest::new(|| RepeatVector::new(3)).input([4]).output("(None, 3, 4)").weights([]).masks(Rejects),
        LayerTest::new(|| Permute::new([2, 1])).input([5, 3]).output("(None, 3, 5)").weights([]).masks(Rejects),
        LayerTest::new(|| SimpleRNN::new(4))
            .input([5, 3])
            .output("(None, 4)")
            .weights([("kernel", &[3, 4][..]), ("recurrent_kernel", &[4, 4][..]), ("bias", &[4][..])])
            .masks(Consumes),
        LayerTest::new(|| SimpleRNN::new(2).return_sequences(true).go_backwards(true))
            .input([5, 3])
            .output("(None, 5, 2)")
            .masks(Passes),
        LayerTest::new(|| LSTM::new(4).return_sequences(true))
            .input([5, 3])
            .output("(None, 5, 4)")
            .weights([("kernel", &[3, 16][..]), ("recurrent_kernel", &[4, 16][..]), ("bias", &[16][..])])
            .masks(Passes),
        LayerTest::new(|| LSTM::new(2).return_state(true))
            .input([5, 3])
            .output("[(None, 2), (None, 2), (None, 2)]")
            .masks(Consumes),
        LayerTest::new(|| GRU::new(4))
            .input([5, 3])
            .output("(None, 4)")
            .weights([("kernel", &[3, 12][..]), ("recurrent_kernel", &[4, 12][..]), ("bias", &[2, 12][..])])
            .masks(Consumes),
        LayerTest::new(|| GRU::new(3).reset_after(false).return_sequences(true).return_state(true))
            .input([5, 2])
            .output("[(None, 5, 3), (None, 3)]")
            .weights([("kernel", &[2, 9][..]), ("recurrent_kernel", &[3, 9][..]), ("bias", &[9][..])])
            .masks(Passes),
        LayerTest::new(|| Bidirectional::new(LSTM::new(2).return_sequences(true)))
            .input([5, 3])
            .output("(None, 5, 4)")
            .weights([
                ("forward_lstm.kernel", &[3, 8][..]),
                ("forward_lstm.recurrent_kernel", &[2, 8][..]),
                ("forward_lstm.bias", &[8][..]),
                ("backward_lstm.kernel", &[3, 8][..]),
                ("backward_lstm.recurrent_kernel", &[2, 8][..]),
                ("backward_lstm.bias", &[8][..]),
            ])
            .masks(Passes),
        LayerTest::new(|| Bidirectional::new(GRU::new(3).return_state(true)).merge_mode(Some(MergeMode::Sum)))
            .input([4, 2])
            .output("[(None, 3), (None, 3), (None, 3)]")
            .masks(Consumes),
        LayerTest::new(|| TimeDistributed::new(Dense::new(3)))
            .input([5, 2])
            .output("(None, 5, 3)")
            .weights([("kernel", &[2, 3][..]), ("bias", &[3][..])])
            .masks(Passes),
        LayerTest::new(|| Dot::new(-1)).input([4, 3]).input([5, 3]).output("(None, 4, 5)").weights([]).masks(Consumes),
        LayerTest::new(|| Dot::new(1).normalize(true)).input([3]).input([3]).output("(None, 1)").masks(Consumes),
        LayerTest::new(|| Attention::new().use_scale(true))
            .input([4, 3])
            .input([5, 3])
            .output("(None, 4, 3)")
            .weights([("scale", &[][..])])
            .masks(Passes),
        LayerTest::new(|| Attention::new().score_mode("concat").return_attention_scores(true))
            .input([4, 3])
            .input([5, 2])
            .input([5, 3])
            .output("[(None, 4, 2), (None, 4, 5)]")
            .weights([("concat_score_weight", &[][..])])
            .masks(Passes),
        LayerTest::new(AdditiveAttention::new)
            .input([4, 3])
            .input([5, 3])
            .output("(None, 4, 3)")
            .weights([("scale", &[3][..])])
            .masks(Passes),
        LayerTest::new(|| MultiHeadAttention::new(2, 3))
            .input([4, 5])
            .input([6, 7])
            .output("(None, 4, 5)")
            .weights([
                ("query.kernel", &[5, 2, 3][..]),
                ("query.bias", &[2, 3][..]),
                ("key.kernel", &[7, 2, 3][..]),
                ("key.bias", &[2, 3][..]),
                ("value.kernel", &[7, 2, 3][..]),
                ("value.bias", &[2, 3][..]),
                ("attention_output.kernel", &[2, 3, 5][..]),
                ("attention_output.bias", &[5][..]),
            ])
            .masks(Passes),
        LayerTest::new(|| MultiHeadAttention::new(1, 2).value_dim(3).use_bias(false).return_attention_scores(true))
            .input([4, 5])
            .input([6, 7])
            .input([6, 2])
            .output("[(None, 4, 5), (None, 1, 4, 6)]")
            .masks(Passes),
    ]
}

#[test]
fn every_built_in_layer_passes_the_harness_on_every_backend() -> Result<()> {
    register_lambda(&Lambda::new("harness_double", |x| x.mul_scalar(2.0)));
    let cases = cases();
    let mut covered = std::collections::BTreeSet::new();
    for backend in strata::backend::available() {
        let dev = strata::backend::by_name(backend)?;
        for case in &cases {
            run_layer_test(case, &dev).map_err(|e| anyhow::anyhow!("backend {backend}: {e}"))?;
            covered.insert(case.class_name());
        }
    }
    for class in registered_layers() {
        assert!(covered.contains(&class), "the harness has no case for {class}");
    }
    Ok(())
}

#[test]
fn the_harness_catches_what_a_broken_layer_gets_wrong() -> Result<()> {
    let dev = strata::backend::native();
    // Wrong weights and wrong mask behaviour are each reported.
    let e = run_layer_test(&LayerTest::new(|| Dense::new(2)).input([3]).weights([("kernel", &[3, 2][..])]), &dev)
        .unwrap_err()
        .to_string();
    assert!(e.contains("weights") && e.contains("bias"), "{e}");
    let e = run_layer_test(&LayerTest::new(Flatten::new).input([4, 3]).masks(Passes), &dev).unwrap_err().to_string();
    assert!(e.contains("expected Passes") && e.contains("mask"), "{e}");
    // A layer that is not registered cannot round-trip its config.
    struct Unregistered;
    impl Layer for Unregistered {
        fn class_name(&self) -> &str {
            "HarnessUnregistered"
        }
        fn build(&mut self, inputs: &[TensorSpec], _ctx: &mut BuildContext<'_>) -> strata::Result<TensorSpec> {
            Ok(inputs[0].clone())
        }
        fn call(&self, inputs: &[Tensor], _ctx: &mut CallContext<'_>) -> strata::Result<Tensor> {
            Ok(inputs[0].clone())
        }
    }
    let e = run_layer_test(&LayerTest::new(|| Unregistered).input([2]), &dev).unwrap_err().to_string();
    assert!(e.contains("HarnessUnregistered") && e.contains("register"), "{e}");
    Ok(())
}
