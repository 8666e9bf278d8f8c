//! Layers by class name, for rebuilding models from their config: the
//! built-in layers plus any custom layer registered with [`register_layer`].
//!
//! ```
//! use serde_json::json;
//! use strata_layers::{layer_from_config, Layer};
//! let layer = layer_from_config("Dense", &json!({"units": 4, "activation": "relu"})).unwrap();
//! assert_eq!(layer.config()["units"], 4);
//! let e = layer_from_config("Dens", &json!({})).err().unwrap();
//! assert!(e.to_string().contains("Dense"));
//! ```

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock, RwLock};

use serde_json::Value;
use strata_core::{Error, Result};

use crate::{Layer, LayerClass};

/// Rebuilds a layer from its config.
pub type LayerFactory = Arc<dyn Fn(&Value) -> Result<Box<dyn Layer>> + Send + Sync>;

type Builtin = fn(&Value) -> Result<Box<dyn Layer>>;

fn rebuild<L: LayerClass>(config: &Value) -> Result<Box<dyn Layer>> {
    L::from_config(config).map(|l| Box::new(l) as Box<dyn Layer>)
}

fn entry<L: LayerClass>() -> (&'static str, Builtin) {
    (L::CLASS_NAME, rebuild::<L>)
}

/// The built-in layers, by class name.
fn builtins() -> &'static [(&'static str, Builtin)] {
    use crate::*;
    static BUILTINS: OnceLock<Vec<(&'static str, Builtin)>> = OnceLock::new();
    BUILTINS.get_or_init(|| {
        vec![
            entry::<ActivationLayer>(),
            entry::<Add>(),
            entry::<AdditiveAttention>(),
            entry::<Attention>(),
            entry::<Average>(),
            entry::<AveragePooling1D>(),
            entry::<AveragePooling2D>(),
            entry::<BatchNormalization>(),
            entry::<Bidirectional>(),
            entry::<CenterCrop>(),
            entry::<Concatenate>(),
            entry::<Conv1D>(),
            entry::<Conv1DTranspose>(),
            entry::<Conv2D>(),
            entry::<Conv2DTranspose>(),
            entry::<Cropping1D>(),
            entry::<Cropping2D>(),
            entry::<Dense>(),
            entry::<DepthwiseConv2D>(),
            entry::<Dot>(),
            entry::<Dropout>(),
            entry::<Embedding>(),
            entry::<Flatten>(),
            entry::<GlobalAveragePooling1D>(),
            entry::<GlobalAveragePooling2D>(),
            entry::<GlobalMaxPooling1D>(),
            entry::<GlobalMaxPooling2D>(),
            entry::<GroupNormalization>(),
            entry::<GRU>(),
            entry::<Lambda>(),
            entry::<LayerNormalization>(),
            entry::<LSTM>(),
            entry::<Masking>(),
            entry::<Maximum>(),
            entry::<MaxPooling1D>(),
            entry::<MaxPooling2D>(),
            entry::<Minimum>(),
            entry::<MultiHeadAttention>(),
            entry::<Multiply>(),
            entry::<Normalization>(),
            entry::<Permute>(),
            entry::<RandomContrast>(),
            entry::<RandomFlip>(),
            entry::<RandomRotation>(),
            entry::<RandomTranslation>(),
            entry::<RandomZoom>(),
            entry::<RepeatVector>(),
            entry::<Rescaling>(),
            entry::<Resizing>(),
            entry::<Reshape>(),
            entry::<SeparableConv2D>(),
            entry::<SimpleRNN>(),
            entry::<SpatialDropout1D>(),
            entry::<SpatialDropout2D>(),
            entry::<Subtract>(),
            entry::<TimeDistributed>(),
            entry::<UpSampling1D>(),
            entry::<UpSampling2D>(),
            entry::<ZeroPadding1D>(),
            entry::<ZeroPadding2D>(),
        ]
    })
}

fn custom() -> &'static RwLock<BTreeMap<String, LayerFactory>> {
    static CUSTOM: OnceLock<RwLock<BTreeMap<String, LayerFactory>>> = OnceLock::new();
    CUSTOM.get_or_init(Default::default)
}

/// Registers a custom layer type under its class name, so that models using
/// it can be rebuilt from their config. Registering a name again replaces
/// the factory; a built-in name is an error.
pub fn register_layer(
    class_name: &str,
    factory: impl Fn(&Value) -> Result<Box<dyn Layer>> + Send + Sync + 'static,
) -> Result<()> {
    if builtins().iter().any(|(n, _)| *n == class_name) {
        return Err(Error::invalid("register_layer", format!("`{class_name}` is a built-in layer")));
    }
    let mut map = custom().write().unwrap_or_else(|e| e.into_inner());
    map.insert(class_name.to_string(), Arc::new(factory));
    Ok(())
}

/// Registers a custom layer type that implements [`LayerClass`] under its
/// [`CLASS_NAME`](LayerClass::CLASS_NAME): short for
/// `register_layer(L::CLASS_NAME, |c| Ok(Box::new(L::from_config(c)?)))`.
pub fn register_layer_class<L: LayerClass>() -> Result<()> {
    register_layer(L::CLASS_NAME, rebuild::<L>)
}

/// Every class name [`layer_from_config`] knows: built-in, then registered.
pub fn registered_layers() -> Vec<String> {
    let mut names: Vec<String> = builtins().iter().map(|(n, _)| n.to_string()).collect();
    names.extend(custom().read().unwrap_or_else(|e| e.into_inner()).keys().cloned());
    names
}

/// Rebuilds a layer of type `class_name` from its config. An unknown type is
/// an error that lists the known ones.
pub fn layer_from_config(class_name: &str, config: &Value) -> Result<Box<dyn Layer>> {
    if let Some((_, f)) = builtins().iter().find(|(n, _)| *n == class_name) {
        return f(config);
    }
    let factory = custom().read().unwrap_or_else(|e| e.into_inner()).get(class_name).cloned();
    match factory {
        Some(f) => f(config),
        None => Err(Error::Config(format!(
            "unknown layer type `{class_name}`; known: {} (register custom layers with register_layer)",
            registered_layers().join(", ")
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::*;

    #[test]
    fn every_builtin_round_trips_by_class_name() {
        register_lambda(&Lambda::new("registry_test_identity", |x| Ok(x.clone())));
        let layers: Vec<Box<dyn Layer>> = vec![
            Box::new(ActivationLayer::new("relu")),
            Box::new(Add::new()),
            Box::new(AdditiveAttention::new().use_scale(false).dropout(0.1).return_attention_scores(true)),
            Box::new(Attention::new().use_scale(true).score_mode("concat").use_causal_mask(true).seed(4)),
            Box::new(Average::new()),
            Box::new(AveragePooling1D::new(3).strides(1).padding("same")),
            Box::new(AveragePooling2D::new((2, 3))),
            Box::new(BatchNormalization::new().axis(1).momentum(0.9)),
            Box::new(Bidirectional::new(GRU::new(3).return_sequences(true)).merge_mode(None)),
            Box::new(CenterCrop::new(3, 4).data_format("channels_first")),
            Box::new(Concatenate::new().axis(1)),
            Box::new(Conv1D::new(4, 3).padding("causal").dilation_rate(2)),
            Box::new(Conv1DTranspose::new(4, 3).strides(2).output_padding(1)),
            Box::new(Conv2D::new(8, (3, 5)).strides(2).groups(2).activation("relu").data_format("channels_first")),
            Box::new(Conv2DTranspose::new(8, (3, 4)).padding("same").dilation_rate(2).use_bias(false)),
            Box::new(Cropping1D::new((1, 2))),
            Box::new(Cropping2D::new(((1, 0), (2, 1))).data_format("channels_first")),
            Box::new(Dense::new(3)),
            Box::new(DepthwiseConv2D::new(3).depth_multiplier(2).strides(2).padding("same")),
            Box::new(Dot::new((1, 2)).normalize(true)),
            Box::new(Dropout::new(0.5).seed(1)),
            Box::new(Embedding::new(10, 4).mask_zero(true)),
            Box::new(Flatten::new()),
            Box::new(GlobalAveragePooling1D::new()),
            Box::new(GlobalAveragePooling2D::new().keepdims(true)),
            Box::new(GlobalMaxPooling1D::new()),
            Box::new(GlobalMaxPooling2D::new()),
            Box::new(GroupNormalization::new().groups(4).axis(1).epsilon(1e-5).center(false)),
            Box::new(GRU::new(3).reset_after(false).return_state(true).recurrent_dropout(0.1)),
            Box::new(Lambda::new("registry_test_identity", |x| Ok(x.clone()))),
            Box::new(LayerNormalization::new().epsilon(1e-5)),
            Box::new(LSTM::new(4).return_sequences(true).go_backwards(true).dropout(0.2).seed(3)),
            Box::new(Masking::new(-1.0)),
            Box::new(Maximum::new()),
            Box::new(MaxPooling1D::new(2)),
            Box::new(MaxPooling2D::new(3).strides(2).padding("same")),
            Box::new(Minimum::new()),
            Box::new(MultiHeadAttention::new(2, 3).value_dim(4).dropout(0.1).use_causal_mask(true).output_shape(5)),
            Box::new(Multiply::new()),
            Box::new(Normalization::new().mean([0.5, -1.0]).variance([4.0, 0.25])),
            Box::new(Permute::new([3, 1, 2])),
            Box::new(RandomContrast::new((0.1, 0.3)).value_range(0.0, 1.0).seed(2)),
            Box::new(RandomFlip::new("horizontal").seed(1)),
            Box::new(RandomRotation::new(0.1).fill_mode("constant").fill_value(0.5)),
            Box::new(RandomTranslation::new((-0.1, 0.2), 0.1).interpolation("nearest")),
            Box::new(RandomZoom::new(0.2).width_factor((-0.1, 0.3)).seed(5)),
            Box::new(RepeatVector::new(4)),
            Box::new(Rescaling::new(1.0 / 255.0).offset(-0.5)),
            Box::new(Resizing::new(4, 5).interpolation("nearest").crop_to_aspect_ratio(true)),
            Box::new(Reshape::new([2, -1])),
            Box::new(SeparableConv2D::new(6, (3, 3)).depth_multiplier(3).activation("relu")),
            Box::new(SimpleRNN::new(2).activation("relu").zero_output_for_mask(true)),
            Box::new(SpatialDropout1D::new(0.3).seed(5)),
            Box::new(SpatialDropout2D::new(0.2).data_format("channels_first")),
            Box::new(Subtract::new()),
            Box::new(TimeDistributed::new(Dense::new(3).activation("relu"))),
            Box::new(UpSampling1D::new(3)),
            Box::new(UpSampling2D::new((2, 3)).interpolation("bilinear").data_format("channels_first")),
            Box::new(ZeroPadding1D::new((1, 2))),
            Box::new(ZeroPadding2D::new(((1, 2), (0, 3))).data_format("channels_first")),
        ];
        let names: Vec<&str> = builtins().iter().map(|(n, _)| *n).collect();
        assert_eq!(layers.len(), names.len());
        for layer in &layers {
            assert!(names.contains(&layer.class_name()), "{} is not registered", layer.class_name());
            let back = layer_from_config(layer.class_name(), &layer.config()).unwrap();
            assert_eq!(back.class_name(), layer.class_name());
            assert_eq!(back.config(), layer.config(), "{}", layer.class_name());
        }
        assert_eq!(snake_case(GlobalAveragePooling1D::new().class_name()), "global_average_pooling1d");
        assert!(register_layer("Masking", |_| Ok(Box::new(Masking::default()) as Box<dyn Layer>)).is_err());
    }
}
