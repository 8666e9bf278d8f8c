//! `Conv1D` and `Conv2D`: Keras' convolutions, as one fused
//! [`Tensor::conv`] (or, with groups, `unfold` + one matrix product per
//! group) with the kernel in Keras' layout.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, LinearActivation, Result, Tensor, Window};

use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims, Padding};
use crate::{Activation, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// A convolution over `N` spatial axes; use it as [`Conv1D`] or [`Conv2D`].
///
/// `y = activation(conv(x, kernel) + bias)` with `kernel`
/// `[k_1, .., k_N, in / groups, filters]` and `bias` `[filters]`, exactly as
/// in Keras, so Keras weights load unchanged. It is computed as one
/// [`Tensor::conv`]: the zero-padded patches times the kernel reshaped to
/// `[k_1·..·k_N·in, filters]`, fused with the bias and a relu/sigmoid/tanh
/// activation; the native backend unfolds a band of rows at a time into a
/// cache-sized buffer instead of materialising every patch. With
/// `groups > 1` it is [`Tensor::unfold`] and one product per group. A `1×1`
/// convolution with stride 1 is a [`Tensor::linear`].
///
/// Arguments (Keras' names and defaults): `filters`, `kernel_size`,
/// `strides` (1), `padding` (`"valid"`; `"same"`; `"causal"` for `Conv1D`),
/// `data_format` (`"channels_last"`), `dilation_rate` (1; strides and
/// dilation cannot both exceed 1), `groups` (1; must divide both the input
/// channels and `filters`), `activation`, `use_bias` (true),
/// `kernel_initializer` (`glorot_uniform`), `bias_initializer` (`zeros`),
/// `kernel_regularizer`, `bias_regularizer`.
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (channels first with
///   `data_format("channels_first")`), `f32`, channels known
/// - output: `(batch, o_1, .., o_N, filters)`, where `o_i` is
///   `ceil(s_i / stride)` for `"same"` (and `"causal"`: `s_i`) and
///   `floor((s_i − dilation·(k_i − 1) − 1) / stride) + 1` for `"valid"`
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Conv2D, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut conv = Conv2D::new(8, 3).padding("same").strides(2).activation("relu");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(28), Some(28), Some(1)], strata_core::DType::F32);
/// let out = conv.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// assert_eq!(out.to_string(), "(None, 14, 14, 8)");
/// assert_eq!(weights[0].value.dims(), &[3, 3, 1, 8]); // Keras' kernel layout
/// let x = Tensor::ones([2, 28, 28, 1], strata_core::DType::F32, &dev)?;
/// let y = conv.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.dims(), &[2, 14, 14, 8]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Conv<const N: usize> {
    filters: usize,
    kernel_size: Dims<N>,
    #[serde(default = "ones")]
    strides: Dims<N>,
    #[serde(default)]
    padding: Padding,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default = "ones")]
    dilation_rate: Dims<N>,
    #[serde(default = "one")]
    groups: usize,
    #[serde(default = "linear")]
    activation: Activation,
    #[serde(default = "yes")]
    use_bias: bool,
    #[serde(default = "glorot")]
    kernel_initializer: Initializer,
    #[serde(default = "zeros")]
    bias_initializer: Initializer,
    #[serde(default)]
    kernel_regularizer: Option<Regularizer>,
    #[serde(default)]
    bias_regularizer: Option<Regularizer>,
    #[serde(skip)]
    meta: Meta,
}

/// A 1-D convolution over the steps of `(batch, steps, channels)`: Keras'
/// `Conv1D`, with `padding("causal")` for causal (WaveNet-style) models.
/// See [`Conv`] for the arguments.
///
/// ```
/// use strata_layers::{Conv1D, Layer};
/// let conv = Conv1D::new(16, 5).padding("causal").dilation_rate(2);
/// assert_eq!(conv.config()["kernel_size"], serde_json::json!([5]));
/// assert_eq!(conv.config()["padding"], "causal");
/// ```
pub type Conv1D = Conv<1>;

/// A 2-D convolution over `(batch, height, width, channels)` images: Keras'
/// `Conv2D`. See [`Conv`] for the arguments and an example.
pub type Conv2D = Conv<2>;

fn ones<const N: usize>() -> Dims<N> {
    Dims([1; N])
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

impl<const N: usize> Conv<N> {
    /// A convolution with `filters` output channels and this kernel size
    /// (one number for every axis, or one per axis: `3`, `(3, 5)`).
    pub fn new(filters: usize, kernel_size: impl Into<Dims<N>>) -> Self {
        Conv {
            filters,
            kernel_size: kernel_size.into(),
            strides: ones(),
            padding: Padding::Valid,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: ones(),
            groups: 1,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            meta: Meta::default(),
        }
    }

    /// Names the layer (default: `conv2d`, `conv2d_1`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }

    /// The step between window positions (default 1).
    pub fn strides(mut self, strides: impl Into<Dims<N>>) -> Self {
        self.strides = strides.into();
        self
    }

    /// `"valid"` (default), `"same"` or, for `Conv1D`, `"causal"`.
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
    pub fn dilation_rate(mut self, rate: impl Into<Dims<N>>) -> Self {
        self.dilation_rate = rate.into();
        self
    }

    /// Splits the channels into this many independent groups (default 1).
    pub fn groups(mut self, groups: usize) -> Self {
        self.groups = groups;
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
    pub fn kernel_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.kernel_initializer = i;
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
    pub fn kernel_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.kernel_regularizer = Some(reg);
        self
    }

    /// A penalty on the bias, added to the training loss.
    pub fn bias_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.bias_regularizer = Some(reg);
        self
    }

    /// The argument checks that do not need the input.
    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        let fail = |m: String| Err(Error::msg(m));
        if self.filters == 0 {
            return fail("filters must be positive, received 0".into());
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
        if self.groups == 0 || self.filters % self.groups != 0 {
            return fail(format!(
                "groups must be positive and divide filters = {}, received {}",
                self.filters, self.groups
            ));
        }
        if self.padding == Padding::Causal && N != 1 {
            return fail("padding \"causal\" is only for Conv1D".into());
        }
        Ok(())
    }

    /// The window over an input with these spatial sizes.
    fn window(&self, spatial: &[usize]) -> Window {
        let pads: Vec<(usize, usize)> = (0..N)
            .map(|a| {
                self.padding.amounts(spatial[a], self.kernel_size.0[a], self.strides.0[a], self.dilation_rate.0[a])
            })
            .collect();
        Window::new(&self.kernel_size.0).strides(&self.strides.0).dilation(&self.dilation_rate.0).padding(&pads)
    }
}

impl LayerClass for Conv<1> {
    const CLASS_NAME: &'static str = "Conv1D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl LayerClass for Conv<2> {
    const CLASS_NAME: &'static str = "Conv2D";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl<const N: usize> Layer for Conv<N>
where
    Conv<N>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        if channels % self.groups != 0 {
            return Err(Error::msg(format!(
                "groups = {} must divide the input channels, received {channels} channels in {x}",
                self.groups
            )));
        }
        let mut out = Vec::with_capacity(N);
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
        let mut shape = self.kernel_size.0.to_vec();
        shape.extend([channels / self.groups, self.filters]);
        ctx.add_weight_with("kernel", shape, self.kernel_initializer, true, self.kernel_regularizer)?;
        if self.use_bias {
            ctx.add_weight_with("bias", [self.filters], self.bias_initializer, true, self.bias_regularizer)?;
        }
        Ok(window_output(x.dims[0], out, self.filters, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = self.data_format.to_channels_last(&inputs[0])?;
        let kernel = ctx.weight("kernel")?;
        let bias = if self.use_bias { Some(ctx.weight("bias")?) } else { None };
        let dims = x.dims().to_vec();
        let (batch, channels, spatial) = (dims[0], dims[N + 1], &dims[1..N + 1]);
        let window = self.window(spatial);
        let trivial = self.kernel_size.0 == [1; N] && self.strides.0 == [1; N];
        let taps: usize = self.kernel_size.0.iter().product();
        let (g, f) = (self.groups, self.filters);
        if g == 1 {
            // One op: the backend multiplies the patches band by band, with
            // the bias and a fusable activation applied as each band is done.
            let k = kernel.reshape([taps * channels, f])?;
            let fused = self.activation.fused();
            let act = fused.unwrap_or(LinearActivation::Identity);
            let y = if trivial { x.linear(&k, bias.as_ref(), act)? } else { x.conv(&k, bias.as_ref(), &window, act)? };
            let y = if fused.is_some() { y } else { self.activation.apply(&y)? };
            return self.data_format.from_channels_last(&y);
        }
        let (cols, out) = if trivial {
            (x.clone(), spatial.to_vec())
        } else {
            (x.unfold(&window, 0.0)?, window.output_sizes(spatial)?)
        };
        let rows = batch * out.iter().product::<usize>();
        let y = {
            let (cg, fg) = (channels / g, f / g);
            // [rows, taps, g, cg] → [g, rows, taps·cg]; kernel [taps·cg, g, fg] → [g, taps·cg, fg].
            let cols = cols.reshape([rows, taps, g, cg])?.permute(&[2, 0, 1, 3])?.reshape([g, rows, taps * cg])?;
            let k = kernel.reshape([taps * cg, g, fg])?.permute(&[1, 0, 2])?;
            let y = cols.matmul(&k)?.permute(&[1, 0, 2])?.reshape([rows, f])?;
            let y = match &bias {
                Some(b) => y.add(b)?,
                None => y,
            };
            self.activation.apply(&y)?
        };
        let mut shape = vec![batch];
        shape.extend(&out);
        shape.push(f);
        self.data_format.from_channels_last(&y.reshape(shape)?)
    }

    fn config(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    fn name_hint(&self) -> Option<&str> {
        self.meta.name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// `Conv1D` with groups equals two independent convolutions, one per
    /// half of the channels and filters.
    #[test]
    fn groups_are_independent_convolutions() {
        let mut grouped = Conv1D::new(4, 2).groups(2);
        let (_, w) = build(&mut grouped, &[spec(&[None, Some(5), Some(4)])]).unwrap();
        let n = 2 * 5 * 4;
        let x = t(&(0..n).map(|i| (i as f32 * 0.61).sin()).collect::<Vec<_>>(), &[2, 5, 4]);
        let y = vals(&call(&grouped, std::slice::from_ref(&x), &[], &w, false).unwrap());
        let kernel = w[0].value.clone(); // [2, 2, 4]
        let bias = w[1].value.clone();
        for half in 0..2 {
            let mut single = Conv1D::new(2, 2);
            let (_, sw) = build(&mut single, &[spec(&[None, Some(5), Some(2)])]).unwrap();
            sw[0].value.assign(&kernel.narrow(2, half * 2, 2).unwrap()).unwrap();
            sw[1].value.assign(&bias.narrow(0, half * 2, 2).unwrap()).unwrap();
            let xs = x.narrow(2, half * 2, 2).unwrap();
            let ys = vals(&call(&single, &[xs], &[], &sw, false).unwrap());
            for p in 0..2 * 4 {
                for c in 0..2 {
                    let (a, b) = (y[p * 4 + half * 2 + c], ys[p * 2 + c]);
                    assert!((a - b).abs() < 1e-5, "position {p} filter {c} of group {half}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(8), Some(8), Some(3)])];
        assert!(err(build(&mut Conv2D::new(4, 3).groups(3), &s)).contains("divide filters"));
        assert!(err(build(&mut Conv2D::new(4, 3).groups(2), &s)).contains("divide the input channels"));
        assert!(err(build(&mut Conv2D::new(4, 9), &s)).contains("does not fit"));
        assert!(err(build(&mut Conv2D::new(4, 3).strides(2).dilation_rate(2), &s)).contains("cannot both"));
        assert!(err(build(&mut Conv2D::new(4, 3).padding("causal"), &s)).contains("only for Conv1D"));
        assert!(err(build(&mut Conv2D::new(4, 3).padding("full"), &s)).contains("valid, same or causal"));
        assert!(err(build(&mut Conv2D::new(4, (3, 0)), &s)).contains("kernel_size must be positive"));
        assert!(err(build(&mut Conv2D::new(4, 3), &[spec(&[None, Some(8), Some(3)])])).contains("rank 4"));
        assert!(err(build(&mut Conv2D::new(0, 3), &s)).contains("filters"));
    }
}
