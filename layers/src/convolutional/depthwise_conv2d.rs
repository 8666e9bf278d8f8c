//! `DepthwiseConv2D`: Keras' depthwise convolution, one small filter bank
//! per input channel, as `unfold` + one batched matrix product.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor, Window};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims, Padding};
use crate::{Activation, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// A 2-D depthwise convolution: every input channel `c` is convolved with
/// its own `depth_multiplier` filters, giving output channel
/// `c · depth_multiplier + m` — Keras' `DepthwiseConv2D`.
///
/// `y = activation(depthwise(x, kernel) + bias)` with the weight `kernel`
/// `[kh, kw, channels, depth_multiplier]` (Keras names it `kernel`, not
/// `depthwise_kernel`) and `bias` `[channels · depth_multiplier]`, so Keras
/// weights load unchanged. It is computed as [`Tensor::unfold`] and one
/// matrix product per channel (a batched matmul).
///
/// Arguments (Keras' names and defaults): `kernel_size`, `strides` (1),
/// `padding` (`"valid"` or `"same"`), `depth_multiplier` (1), `data_format`
/// (`"channels_last"`), `dilation_rate` (1; strides and dilation cannot both
/// exceed 1), `activation`, `use_bias` (true), `depthwise_initializer`
/// (`glorot_uniform`), `bias_initializer` (`zeros`),
/// `depthwise_regularizer`, `bias_regularizer`.
///
/// # Shapes
/// - input: `(batch, height, width, channels)` (channels first with
///   `data_format("channels_first")`), `f32`, channels known
/// - output: `(batch, o_h, o_w, channels · depth_multiplier)`, where `o` is
///   `ceil(s / stride)` for `"same"` and
///   `floor((s − dilation·(k − 1) − 1) / stride) + 1` for `"valid"`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, DepthwiseConv2D, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut conv = DepthwiseConv2D::new(3).depth_multiplier(2).padding("same");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(8), Some(8), Some(4)], strata_core::DType::F32);
/// let out = conv.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// assert_eq!(out.to_string(), "(None, 8, 8, 8)");
/// assert_eq!(weights[0].name, "kernel");
/// assert_eq!(weights[0].value.dims(), &[3, 3, 4, 2]); // Keras' layout
/// let x = Tensor::ones([2, 8, 8, 4], strata_core::DType::F32, &dev)?;
/// let y = conv.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.dims(), &[2, 8, 8, 8]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DepthwiseConv2D {
    kernel_size: Dims<2>,
    #[serde(default = "ones")]
    strides: Dims<2>,
    #[serde(default)]
    padding: Padding,
    #[serde(default = "one")]
    depth_multiplier: usize,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default = "ones")]
    dilation_rate: Dims<2>,
    #[serde(default = "linear")]
    activation: Activation,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default = "glorot")]
    depthwise_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default)]
    depthwise_regularizer: Option<Regularizer>,
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

named!(DepthwiseConv2D);

impl DepthwiseConv2D {
    /// A depthwise convolution with this kernel size (`3` or `(3, 5)`) and
    /// one filter per input channel.
    pub fn new(kernel_size: impl Into<Dims<2>>) -> Self {
        DepthwiseConv2D {
            kernel_size: kernel_size.into(),
            strides: ones(),
            padding: Padding::Valid,
            depth_multiplier: 1,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: ones(),
            activation: Activation::Linear,
            use_bias: true,
            depthwise_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            depthwise_regularizer: None,
            bias_regularizer: None,
            meta: Meta::default(),
        }
    }

    /// The step between window positions (default 1).
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

    /// Filters per input channel (default 1).
    pub fn depth_multiplier(mut self, depth_multiplier: usize) -> Self {
        self.depth_multiplier = depth_multiplier;
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

    /// The kernel's initializer (default `glorot_uniform`).
    pub fn depthwise_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.depthwise_initializer = i;
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

    /// A penalty on the kernel, added to the training loss.
    pub fn depthwise_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.depthwise_regularizer = Some(reg);
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

/// The geometry of a depthwise convolution, shared with `SeparableConv2D`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Depthwise {
    pub(crate) kernel_size: Dims<2>,
    pub(crate) strides: Dims<2>,
    pub(crate) padding: Padding,
    pub(crate) dilation_rate: Dims<2>,
    pub(crate) depth_multiplier: usize,
}

impl Depthwise {
    /// The argument checks that do not need the input.
    pub(crate) fn check_args(&self) -> Result<()> {
        let fail = |m: String| Err(Error::msg(m));
        if self.depth_multiplier == 0 {
            return fail("depth_multiplier must be positive, received 0".into());
        }
        for (what, d) in
            [("kernel_size", &self.kernel_size), ("strides", &self.strides), ("dilation_rate", &self.dilation_rate)]
        {
            d.positive(what).or_else(fail)?;
        }
        if self.strides.0.iter().any(|&s| s > 1) && self.dilation_rate.0.iter().any(|&d| d > 1) {
            return fail(format!(
                "strides {:?} and dilation_rate {:?} cannot both exceed 1 (as in Keras)",
                self.strides.0, self.dilation_rate.0
            ));
        }
        if self.padding == Padding::Causal {
            return fail("padding must be \"valid\" or \"same\", received \"causal\"".into());
        }
        Ok(())
    }

    /// The output's spatial sizes for these input sizes (unknown stays unknown).
    pub(crate) fn output_sizes(&self, x: &TensorSpec, spatial: &[Option<usize>]) -> Result<Vec<Option<usize>>> {
        let mut out = Vec::with_capacity(2);
        for (a, s) in spatial.iter().enumerate() {
            out.push(match *s {
                None => None,
                Some(s) => {
                    let (k, st, d) = (self.kernel_size.0[a], self.strides.0[a], self.dilation_rate.0[a]);
                    Some(self.padding.output_size(s, k, st, d).ok_or_else(|| {
                        Error::msg(format!(
                            "kernel_size {:?} with dilation_rate {:?} does not fit input {x} with padding \"{}\"",
                            self.kernel_size.0, self.dilation_rate.0, self.padding
                        ))
                    })?)
                }
            });
        }
        Ok(out)
    }

    /// `x` `[batch, h, w, c]` (channels last) convolved channel by channel
    /// with `kernel` `[kh, kw, c, dm]`: `[batch·o_h·o_w, c·dm]` (channel
    /// `c·dm + m`) and the output's spatial sizes.
    pub(crate) fn apply(&self, x: &Tensor, kernel: &Tensor) -> Result<(Tensor, Vec<usize>)> {
        if x.rank() != 4 {
            return Err(Error::msg(format!(
                "expects rank 4 input (batch, height, width, channels), received shape {}",
                x.shape()
            )));
        }
        let dims = x.dims().to_vec();
        let (batch, channels, spatial) = (dims[0], dims[3], &dims[1..3]);
        if kernel.rank() != 4 || kernel.dims()[2] != channels {
            return Err(Error::msg(format!(
                "expects {} input channels (the kernel is {}), received input of shape {} (channels last)",
                kernel.dims().get(2).copied().unwrap_or(0),
                kernel.shape(),
                x.shape()
            )));
        }
        let pads: Vec<(usize, usize)> = (0..2)
            .map(|a| {
                self.padding.amounts(spatial[a], self.kernel_size.0[a], self.strides.0[a], self.dilation_rate.0[a])
            })
            .collect();
        let window =
            Window::new(&self.kernel_size.0).strides(&self.strides.0).dilation(&self.dilation_rate.0).padding(&pads);
        let out = window.output_sizes(spatial)?;
        let taps: usize = self.kernel_size.0.iter().product();
        let rows = batch * out.iter().product::<usize>();
        let dm = self.depth_multiplier;
        // Patches [rows, taps, c] → [c, rows, taps]; kernel [taps, c, dm] → [c, taps, dm].
        let cols = x.unfold(&window, 0.0)?.reshape([rows, taps, channels])?.permute(&[2, 0, 1])?;
        let k = kernel.reshape([taps, channels, dm])?.permute(&[1, 0, 2])?;
        let y = cols.matmul(&k)?.permute(&[1, 0, 2])?.reshape([rows, channels * dm])?;
        Ok((y, out))
    }
}

impl LayerClass for DepthwiseConv2D {
    const CLASS_NAME: &'static str = "DepthwiseConv2D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for DepthwiseConv2D {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let geo = self.geometry();
        geo.check_args()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, 2, self.data_format)?;
        let out = geo.output_sizes(x, &spatial)?;
        let filters = channels.checked_mul(self.depth_multiplier).ok_or_else(|| {
            Error::msg(format!("{channels} channels times depth_multiplier {} overflow", self.depth_multiplier))
        })?;
        let mut shape = self.kernel_size.0.to_vec();
        shape.extend([channels, self.depth_multiplier]);
        ctx.add_weight_with("kernel", shape, self.depthwise_initializer, true, self.depthwise_regularizer)?;
        if self.use_bias {
            ctx.add_weight_with("bias", [filters], self.bias_initializer, true, self.bias_regularizer)?;
        }
        Ok(window_output(x.dims[0], out, filters, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = self.data_format.to_channels_last(&inputs[0])?;
        let kernel = ctx.weight("kernel")?;
        let (mut y, out) = self.geometry().apply(&x, &kernel)?;
        if self.use_bias {
            y = y.add(&ctx.weight("bias")?)?;
        }
        let y = self.activation.apply(&y)?;
        let filters = y.dims()[1];
        let shape = [x.dims()[0], out[0], out[1], filters];
        self.data_format.from_channels_last(&y.reshape(shape)?)
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;
    use crate::Conv2D;

    /// A depthwise convolution equals one `Conv2D` per input channel, its
    /// filters landing at channels `c·dm .. c·dm + dm`.
    #[test]
    fn equals_one_convolution_per_channel() {
        let mut layer = DepthwiseConv2D::new((3, 2)).depth_multiplier(2).padding("same").strides((1, 2));
        let (out, w) = build(&mut layer, &[spec(&[None, Some(5), Some(6), Some(3)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 5, 3, 6)");
        w[1].value.assign(&t(&[0.1, -0.2, 0.3, -0.4, 0.5, -0.6], &[6])).unwrap();
        let n = 2 * 5 * 6 * 3;
        let x = t(&(0..n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), &[2, 5, 6, 3]);
        let y = vals(&call(&layer, std::slice::from_ref(&x), &[], &w, false).unwrap());
        for c in 0..3 {
            let mut single = Conv2D::new(2, (3, 2)).padding("same").strides((1, 2));
            let (_, sw) = build(&mut single, &[spec(&[None, Some(5), Some(6), Some(1)])]).unwrap();
            sw[0].value.assign(&w[0].value.narrow(2, c, 1).unwrap()).unwrap();
            sw[1].value.assign(&w[1].value.narrow(0, c * 2, 2).unwrap()).unwrap();
            let ys = vals(&call(&single, &[x.narrow(3, c, 1).unwrap()], &[], &sw, false).unwrap());
            for p in 0..2 * 5 * 3 {
                for m in 0..2 {
                    let (a, b) = (y[p * 6 + c * 2 + m], ys[p * 2 + m]);
                    assert!((a - b).abs() < 1e-5, "position {p} channel {c} multiplier {m}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let layer = DepthwiseConv2D::new(2).depth_multiplier(2).use_bias(false).activation("tanh");
        let x: Vec<f32> = (0..2 * 3 * 3 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let k: Vec<f32> = (0..2 * 2 * 2 * 2).map(|i| (i as f32 * 1.3).cos() * 0.5).collect();
        strata_conformance::check_grad(
            "depthwise conv",
            &dev(),
            &[(x, [2, 3, 3, 2].into()), (k, [2, 2, 2, 2].into())],
            1e-2,
            |v| {
                let w = vec![crate::Weight {
                    name: "kernel".into(),
                    value: v[1].clone(),
                    trainable: true,
                    regularizer: None,
                }];
                call(&layer, &[v[0].clone()], &[], &w, true)
            },
        )
        .unwrap();
    }

    #[test]
    fn channels_first_matches_channels_last() {
        let mut last = DepthwiseConv2D::new(3);
        let (_, w) = build(&mut last, &[spec(&[None, Some(4), Some(4), Some(2)])]).unwrap();
        let mut first = DepthwiseConv2D::new(3).data_format("channels_first");
        let (out, wf) = build(&mut first, &[spec(&[None, Some(2), Some(4), Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2, 2, 2)");
        wf[0].value.assign(&w[0].value).unwrap();
        let x = t(&(0..32).map(|i| (i as f32 * 0.3).cos()).collect::<Vec<_>>(), &[1, 4, 4, 2]);
        let y = call(&last, std::slice::from_ref(&x), &[], &w, false).unwrap();
        let yf = call(&first, &[x.permute(&[0, 3, 1, 2]).unwrap()], &[], &wf, false).unwrap();
        close(&vals(&yf.permute(&[0, 2, 3, 1]).unwrap()), &vals(&y), 1e-6);
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(8), Some(8), Some(3)])];
        assert!(err(build(&mut DepthwiseConv2D::new(3).depth_multiplier(0), &s)).contains("depth_multiplier"));
        assert!(err(build(&mut DepthwiseConv2D::new(9), &s)).contains("does not fit"));
        assert!(err(build(&mut DepthwiseConv2D::new(3).strides(2).dilation_rate(2), &s)).contains("cannot both"));
        assert!(err(build(&mut DepthwiseConv2D::new(3).padding("causal"), &s)).contains("received \"causal\""));
        assert!(err(build(&mut DepthwiseConv2D::new((3, 0)), &s)).contains("kernel_size must be positive"));
        assert!(err(build(&mut DepthwiseConv2D::new(3), &[spec(&[None, Some(8), Some(3)])])).contains("rank 4"));
        assert!(err(build(&mut DepthwiseConv2D::new(3), &[spec(&[None, Some(8), Some(8), None])])).contains("channel"));
        // Called on a tensor that does not fit the built layer.
        let mut layer = DepthwiseConv2D::new(3);
        let (_, w) = build(&mut layer, &s).unwrap();
        assert!(err(call(&layer, &[t(&[0.0; 24], &[1, 8, 3])], &[], &w, false)).contains("rank 4"));
        let msg = err(call(&layer, &[t(&[0.0; 128], &[1, 8, 8, 2])], &[], &w, false));
        assert!(msg.contains("[1, 8, 8, 2]"), "{msg}");
        let msg = err(DepthwiseConv2D::from_config(&serde_json::json!({"kernel_size": [3, 3], "filters": 2})));
        assert!(msg.contains("filters"), "{msg}");
    }
}
