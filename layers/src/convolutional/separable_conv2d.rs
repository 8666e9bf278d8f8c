//! `SeparableConv2D`: a depthwise convolution followed by a pointwise
//! (`1×1`) one, as in Keras.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, LinearActivation, Result, Tensor};

use super::depthwise_conv2d::Depthwise;
use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims, Padding};
use crate::{Activation, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// A depthwise-separable 2-D convolution — Keras' `SeparableConv2D`: a
/// depthwise convolution (each input channel with its own
/// `depth_multiplier` filters, with the strides, padding and dilation), then
/// a pointwise `1×1` convolution mixing the `channels · depth_multiplier`
/// results into `filters` outputs, then the bias and the activation.
///
/// Weights, in Keras' order, names and layouts: `depthwise_kernel`
/// `[kh, kw, channels, depth_multiplier]`, `pointwise_kernel`
/// `[1, 1, channels · depth_multiplier, filters]`, `bias` `[filters]`.
///
/// Arguments (Keras' names and defaults): `filters`, `kernel_size`,
/// `strides` (1), `padding` (`"valid"` or `"same"`), `data_format`
/// (`"channels_last"`), `dilation_rate` (1; strides and dilation cannot both
/// exceed 1), `depth_multiplier` (1), `activation`, `use_bias` (true),
/// `depthwise_initializer`, `pointwise_initializer` (both
/// `glorot_uniform`), `bias_initializer` (`zeros`), `depthwise_regularizer`,
/// `pointwise_regularizer`, `bias_regularizer`.
///
/// # Shapes
/// - input: `(batch, height, width, channels)` (channels first with
///   `data_format("channels_first")`), `f32`, channels known
/// - output: `(batch, o_h, o_w, filters)`, with the sizes of
///   [`DepthwiseConv2D`](crate::DepthwiseConv2D)
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, SeparableConv2D, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut conv = SeparableConv2D::new(16, 3).depth_multiplier(2).activation("relu");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(10), Some(10), Some(3)], strata_core::DType::F32);
/// let out = conv.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// assert_eq!(out.to_string(), "(None, 8, 8, 16)");
/// assert_eq!(weights[0].value.dims(), &[3, 3, 3, 2]);
/// assert_eq!(weights[1].value.dims(), &[1, 1, 6, 16]);
/// let x = Tensor::ones([2, 10, 10, 3], strata_core::DType::F32, &dev)?;
/// let y = conv.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.dims(), &[2, 8, 8, 16]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeparableConv2D {
    filters: usize,
    kernel_size: Dims<2>,
    #[serde(default = "ones")]
    strides: Dims<2>,
    #[serde(default)]
    padding: Padding,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default = "ones")]
    dilation_rate: Dims<2>,
    #[serde(default = "one")]
    depth_multiplier: usize,
    #[serde(default = "linear")]
    activation: Activation,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default = "glorot")]
    depthwise_initializer: Initializer,
    #[serde(default = "glorot")]
    pointwise_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default)]
    depthwise_regularizer: Option<Regularizer>,
    #[serde(default)]
    pointwise_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
    #[serde(skip)]
    meta: Meta,
}

fn ones() -> Dims<2> {
    Dims([1; 2])
}
fn one() -> usize {
    1
}
fn linear() -> Activation {
    Activation::Linear
}
fn yes() -> bool {
    true
}
fn glorot() -> Initializer {
    Initializer::GlorotUniform
}
fn zeros() -> Initializer {
    Initializer::Zeros
}

named!(SeparableConv2D);

impl SeparableConv2D {
    /// A separable convolution with `filters` outputs and this kernel size
    /// (`3` or `(3, 5)`).
    pub fn new(filters: usize, kernel_size: impl Into<Dims<2>>) -> Self {
        SeparableConv2D {
            filters,
            kernel_size: kernel_size.into(),
            strides: ones(),
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: ones(),
            depth_multiplier: 1,
            activation: Activation::Linear,
            use_bias: true,
            depthwise_initializer: Initializer::GlorotUniform,
            pointwise_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            depthwise_regularizer: None,
            pointwise_regularizer: None,
            bias_regularizer: None,
            meta: Meta::default(),
        }
    }

    /// The step between window positions of the depthwise step (default 1).
    pub fn strides(mut self, strides: impl Into<Dims<2>>) -> Self {
        self.strides = strides.into();
        self
    }

    /// `"valid"` (default) or `"same"`.
    pub fn padding(mut self, padding: impl Resolve<Padding>) -> Self {
        if let Some(p) = self.meta.keep(padding.resolve()) {
            self.padding = p;
        }
        self
    }

    /// `"channels_last"` (default) or `"channels_first"`.
    pub fn data_format(mut self, format: impl Resolve<DataFormat>) -> Self {
        if let Some(f) = self.meta.keep(format.resolve()) {
            self.data_format = f;
        }
        self
    }

    /// The step between kernel taps (default 1: an undilated kernel).
    pub fn dilation_rate(mut self, rate: impl Into<Dims<2>>) -> Self {
        self.dilation_rate = rate.into();
        self
    }

    /// Depthwise filters per input channel (default 1).
    pub fn depth_multiplier(mut self, depth_multiplier: usize) -> Self {
        self.depth_multiplier = depth_multiplier;
        self
    }

    /// The activation, typed or by name (`"relu"`).
    pub fn activation(mut self, activation: impl Resolve<Activation>) -> Self {
        if let Some(a) = self.meta.keep(activation.resolve()) {
            self.activation = a;
        }
        self
    }

    /// Whether to add a bias (default true).
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// The depthwise kernel's initializer (default `glorot_uniform`).
    pub fn depthwise_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.depthwise_initializer = i;
        }
        self
    }

    /// The pointwise kernel's initializer (default `glorot_uniform`).
    pub fn pointwise_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.pointwise_initializer = i;
        }
        self
    }

    /// The bias' initializer (default `zeros`).
    pub fn bias_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.bias_initializer = i;
        }
        self
    }

    /// A penalty on the depthwise kernel, added to the training loss.
    pub fn depthwise_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.depthwise_regularizer = Some(reg);
        self
    }

    /// A penalty on the pointwise kernel, added to the training loss.
    pub fn pointwise_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.pointwise_regularizer = Some(reg);
        self
    }

    /// A penalty on the bias, added to the training loss.
    pub fn bias_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.bias_regularizer = Some(reg);
        self
    }

    fn geometry(&self) -> Depthwise {
        Depthwise {
            kernel_size: self.kernel_size,
            strides: self.strides,
            padding: self.padding,
            dilation_rate: self.dilation_rate,
            depth_multiplier: self.depth_multiplier,
        }
    }
}

impl LayerClass for SeparableConv2D {
    const CLASS_NAME: &'static str = "SeparableConv2D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for SeparableConv2D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        if self.filters == 0 {
            return Err(Error::msg("filters must be positive, received 0"));
        }
        let geo = self.geometry();
        geo.check_args()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, 2, self.data_format)?;
        let out = geo.output_sizes(x, &spatial)?;
        let mid = channels.checked_mul(self.depth_multiplier).ok_or_else(|| {
            Error::msg(format!("{channels} channels times depth_multiplier {} overflow", self.depth_multiplier))
        })?;
        let mut shape = self.kernel_size.0.to_vec();
        shape.extend([channels, self.depth_multiplier]);
        ctx.add_weight_with("depthwise_kernel", shape, self.depthwise_initializer, true, self.depthwise_regularizer)?;
        ctx.add_weight_with(
            "pointwise_kernel",
            [1, 1, mid, self.filters],
            self.pointwise_initializer,
            true,
            self.pointwise_regularizer,
        )?;
        if self.use_bias {
            ctx.add_weight_with("bias", [self.filters], self.bias_initializer, true, self.bias_regularizer)?;
        }
        Ok(window_output(x.dims[0], out, self.filters, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = self.data_format.to_channels_last(&inputs[0])?;
        let depthwise = ctx.weight("depthwise_kernel")?;
        let pointwise = ctx.weight("pointwise_kernel")?;
        let bias = if self.use_bias { Some(ctx.weight("bias")?) } else { None };
        let (mid, out) = self.geometry().apply(&x, &depthwise)?;
        let k = pointwise.reshape([mid.dims()[1], self.filters])?;
        let y = match self.activation.fused() {
            Some(act) => mid.linear(&k, bias.as_ref(), act)?,
            None => self.activation.apply(&mid.linear(&k, bias.as_ref(), LinearActivation::Identity)?)?,
        };
        let shape = [x.dims()[0], out[0], out[1], self.filters];
        self.data_format.from_channels_last(&y.reshape(shape)?)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::{Conv2D, DepthwiseConv2D};

    /// The layer equals a `DepthwiseConv2D` without bias followed by a 1×1
    /// `Conv2D` with the pointwise kernel and the bias.
    #[test]
    fn equals_depthwise_then_pointwise() {
        let mut layer = SeparableConv2D::new(4, 3).depth_multiplier(2).padding("same").activation("elu");
        let (out, w) = build(&mut layer, &[spec(&[None, Some(5), Some(5), Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 5, 5, 4)");
        let names: Vec<&str> = w.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["depthwise_kernel", "pointwise_kernel", "bias"]);
        w[2].value.assign(&t(&[0.1, -0.2, 0.3, -0.4], &[4])).unwrap();
        let x = t(&(0..2 * 25 * 3).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), &[2, 5, 5, 3]);
        let y = call(&layer, std::slice::from_ref(&x), &[], &w, false).unwrap();

        let mut dw = DepthwiseConv2D::new(3).depth_multiplier(2).padding("same").use_bias(false);
        let (_, dww) = build(&mut dw, &[spec(&[None, Some(5), Some(5), Some(3)])]).unwrap();
        dww[0].value.assign(&w[0].value).unwrap();
        let mid = call(&dw, &[x], &[], &dww, false).unwrap();
        let mut pw = Conv2D::new(4, 1).activation("elu");
        let (_, pww) = build(&mut pw, &[spec(&[None, Some(5), Some(5), Some(6)])]).unwrap();
        pww[0].value.assign(&w[1].value).unwrap();
        pww[1].value.assign(&w[2].value).unwrap();
        let want = call(&pw, &[mid], &[], &pww, false).unwrap();
        close(&vals(&y), &vals(&want), 1e-5);
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(8), Some(8), Some(3)])];
        assert!(err(build(&mut SeparableConv2D::new(0, 3), &s)).contains("filters must be positive, received 0"));
        assert!(err(build(&mut SeparableConv2D::new(2, 3).depth_multiplier(0), &s)).contains("depth_multiplier"));
        assert!(err(build(&mut SeparableConv2D::new(2, 9), &s)).contains("does not fit"));
        assert!(err(build(&mut SeparableConv2D::new(2, 3).padding("full"), &s)).contains("full"));
        assert!(err(build(&mut SeparableConv2D::new(2, 3), &[spec(&[None, Some(8), Some(3)])])).contains("rank 4"));
    }
}
