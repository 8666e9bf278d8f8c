//! `Conv1DTranspose` and `Conv2DTranspose`: Keras' transposed convolutions,
//! as one matrix product into patches and `fold` (col2im) onto the output.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor, Window};

use crate::meta::{from_json, Meta};
use crate::window_args::{window_input, window_output, DataFormat, Dims, Padding};
use crate::{Activation, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// A transposed convolution over `N` spatial axes (the gradient of a
/// convolution with respect to its input, sometimes called
/// "deconvolution"); use it as [`Conv1DTranspose`] or [`Conv2DTranspose`].
///
/// Every input position `i` adds `x[i] · kernel[j]ᵀ` at output position
/// `i·stride + j·dilation − crop` (the kernel is not flipped), then the bias
/// and the activation follow — Keras' `Conv*DTranspose` exactly, with the
/// `kernel` in Keras' layout `[k_1, .., k_N, filters, channels]` and `bias`
/// `[filters]`. It is computed as one matrix product of the input with the
/// kernel into patches and [`Tensor::fold`] (col2im) onto the output.
///
/// Arguments (Keras' names and defaults): `filters`, `kernel_size`,
/// `strides` (1), `padding` (`"valid"` or `"same"`), `output_padding`
/// (none; each entry must be below its stride), `data_format`
/// (`"channels_last"`), `dilation_rate` (1; strides and dilation cannot both
/// exceed 1), `activation`, `use_bias` (true), `kernel_initializer`
/// (`glorot_uniform`), `bias_initializer` (`zeros`), `kernel_regularizer`,
/// `bias_regularizer`.
///
/// # Shapes
/// - input: `(batch, s_1, .., s_N, channels)` (channels first with
///   `data_format("channels_first")`), `f32`, channels known
/// - output: `(batch, o_1, .., o_N, filters)`, where, with
///   `k' = dilation·(k − 1) + 1` and `p` the output padding:
///   - `"valid"`: `o = (s − 1)·stride + max(k', stride)`, or
///     `(s − 1)·stride + k' + p` with an output padding;
///   - `"same"`: `o = s·stride`, or `(s − 1)·stride + k' mod 2 + p` with an
///     output padding (as in Keras, the first `k' − 1 − ⌈P/2⌉` cells are
///     cropped, `P` being JAX's total padding, at most `k' − 1`).
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Conv2DTranspose, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut up = Conv2DTranspose::new(8, 3).strides(2).padding("same").activation("relu");
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(7), Some(7), Some(4)], strata_core::DType::F32);
/// let out = up.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// assert_eq!(out.to_string(), "(None, 14, 14, 8)");
/// assert_eq!(weights[0].value.dims(), &[3, 3, 8, 4]); // Keras' kernel layout
/// let x = Tensor::ones([2, 7, 7, 4], strata_core::DType::F32, &dev)?;
/// let y = up.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.dims(), &[2, 14, 14, 8]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConvTranspose<const N: usize> {
    filters: usize,
    kernel_size: Dims<N>,
    #[serde(default = "ones")]
    strides: Dims<N>,
    #[serde(default)]
    padding: Padding,
    #[serde(default)]
    output_padding: Option<Dims<N>>,
    #[serde(default)]
    data_format: DataFormat,
    #[serde(default = "ones")]
    dilation_rate: Dims<N>,
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

/// A 1-D transposed convolution over `(batch, steps, channels)`: Keras'
/// `Conv1DTranspose`. See [`ConvTranspose`] for the arguments.
///
/// ```
/// use strata_layers::{Conv1DTranspose, Layer};
/// let up = Conv1DTranspose::new(4, 3).strides(2).output_padding(1);
/// assert_eq!(up.config()["output_padding"], serde_json::json!([1]));
/// assert_eq!(up.config()["kernel_size"], serde_json::json!([3]));
/// ```
pub type Conv1DTranspose = ConvTranspose<1>;

/// A 2-D transposed convolution over `(batch, height, width, channels)`
/// images: Keras' `Conv2DTranspose`. See [`ConvTranspose`] for the
/// arguments and an example.
pub type Conv2DTranspose = ConvTranspose<2>;

fn ones<const N: usize>() -> Dims<N> {
    Dims([1; N])
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

/// One axis of a transposed convolution, resolved as Keras (JAX) does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct AxisGeometry {
    /// The output size.
    output: usize,
    /// Cells cropped from the start of the full scatter result.
    crop: usize,
    /// Padding after the output so that the fold window has `input` positions.
    pad_after: usize,
}

/// The output size and crop of one axis, `None` when they overflow or the
/// output would be empty.
fn axis_geometry(
    input: usize,
    kernel: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output_padding: Option<usize>,
) -> Option<AxisGeometry> {
    let ke = kernel.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    let (left, right) = match padding {
        Padding::Same => {
            let total = match output_padding {
                None => stride.checked_add(ke)? - 2,
                Some(p) => (ke + ke % 2 - 2).checked_add(p)?,
            };
            let left = total.div_ceil(2).min(ke - 1);
            (left, total - left)
        }
        _ => {
            let p = output_padding.unwrap_or(ke.max(stride) - ke);
            (ke - 1, (ke - 1).checked_add(p)?)
        }
    };
    // (n − 1)·s + 1 + left + right − (k' − 1)
    let full = input.checked_sub(1)?.checked_mul(stride)?.checked_add(1)?.checked_add(left)?.checked_add(right)?;
    let output = full.checked_sub(ke - 1).filter(|&o| o > 0)?;
    let crop = ke - 1 - left;
    // The scatter covers (n − 1)·s + k' cells; the window needs that many.
    let scatter = (input - 1) * stride + ke;
    Some(AxisGeometry { output, crop, pad_after: scatter.saturating_sub(crop + output) })
}

impl<const N: usize> ConvTranspose<N> {
    /// A transposed convolution with `filters` output channels and this
    /// kernel size (one number for every axis, or one per axis).
    pub fn new(filters: usize, kernel_size: impl Into<Dims<N>>) -> Self {
        ConvTranspose {
            filters,
            kernel_size: kernel_size.into(),
            strides: ones(),
            padding: Padding::Valid,
            output_padding: None,
            data_format: DataFormat::ChannelsLast,
            dilation_rate: ones(),
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            meta: Meta::default(),
        }
    }

    /// Names the layer (default: `conv2d_transpose`, `conv2d_transpose_1`, ...).
    pub fn name(mut self, name: &str) -> Self {
        self.meta.name = Some(name.to_string());
        self
    }

    /// The step between input positions in the output (default 1): the
    /// upsampling factor.
    pub fn strides(mut self, strides: impl Into<Dims<N>>) -> Self {
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

    /// Extra cells at the end of each output axis (each below its stride),
    /// which picks among the output sizes whose convolution gives the input.
    pub fn output_padding(mut self, output_padding: impl Into<Dims<N>>) -> Self {
        self.output_padding = Some(output_padding.into());
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
        if let Some(p) = &self.output_padding {
            if p.0.iter().zip(&self.strides.0).any(|(p, s)| p >= s) {
                return fail(format!(
                    "output_padding must be below strides {:?} on every axis, received {:?}",
                    self.strides.0, p.0
                ));
            }
        }
        if self.padding == Padding::Causal {
            return fail("padding must be \"valid\" or \"same\", received \"causal\"".into());
        }
        Ok(())
    }

    /// Axis `a` resolved for an input of size `input`.
    fn axis(&self, a: usize, input: usize) -> Option<AxisGeometry> {
        let op = self.output_padding.map(|p| p.0[a]);
        axis_geometry(input, self.kernel_size.0[a], self.strides.0[a], self.dilation_rate.0[a], self.padding, op)
    }

    fn too_small(&self, spatial: impl std::fmt::Debug) -> Error {
        Error::msg(format!(
            "kernel_size {:?}, strides {:?}, dilation_rate {:?} and output_padding {:?} give no output \
             (or one too large) for spatial sizes {spatial:?}",
            self.kernel_size.0,
            self.strides.0,
            self.dilation_rate.0,
            self.output_padding.map(|p| p.0)
        ))
    }
}

impl LayerClass for ConvTranspose<1> {
    const CLASS_NAME: &'static str = "Conv1DTranspose";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl LayerClass for ConvTranspose<2> {
    const CLASS_NAME: &'static str = "Conv2DTranspose";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl<const N: usize> Layer for ConvTranspose<N>
where
    ConvTranspose<N>: LayerClass,
{
    fn class_name(&self) -> &str {
        <Self as LayerClass>::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        let (spatial, channels) = window_input(x, N, self.data_format)?;
        let mut out = Vec::with_capacity(N);
        for (a, s) in spatial.iter().enumerate() {
            out.push(match *s {
                None => None,
                Some(s) => Some(self.axis(a, s).ok_or_else(|| self.too_small(&spatial))?.output),
            });
        }
        let mut shape = self.kernel_size.0.to_vec();
        shape.extend([self.filters, channels]);
        ctx.add_weight_with("kernel", shape, self.kernel_initializer, true, self.kernel_regularizer)?;
        if self.use_bias {
            ctx.add_weight_with("bias", [self.filters], self.bias_initializer, true, self.bias_regularizer)?;
        }
        Ok(window_output(x.dims[0], out, self.filters, self.data_format, x.dtype))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        if inputs[0].rank() != N + 2 {
            return Err(Error::msg(format!(
                "expects rank {} input (batch, spatial.., channels), received shape {}",
                N + 2,
                inputs[0].shape()
            )));
        }
        let x = self.data_format.to_channels_last(&inputs[0])?;
        let kernel = ctx.weight("kernel")?;
        let dims = x.dims().to_vec();
        let (batch, channels, spatial) = (dims[0], dims[N + 1], &dims[1..N + 1]);
        if kernel.rank() != N + 2 || kernel.dims()[N + 1] != channels {
            return Err(Error::msg(format!(
                "expects {} input channels (the kernel is {}), received input of shape {} (channels last)",
                kernel.dims().last().copied().unwrap_or(0),
                kernel.shape(),
                x.shape()
            )));
        }
        let geo: Vec<AxisGeometry> =
            (0..N).map(|a| self.axis(a, spatial[a]).ok_or_else(|| self.too_small(spatial))).collect::<Result<_>>()?;
        let window = Window::new(&self.kernel_size.0)
            .strides(&self.strides.0)
            .dilation(&self.dilation_rate.0)
            .padding(&geo.iter().map(|g| (g.crop, g.pad_after)).collect::<Vec<_>>());
        let out: Vec<usize> = geo.iter().map(|g| g.output).collect();
        // The fold window must visit exactly the input's positions.
        if window.output_sizes(&out)? != spatial {
            return Err(self.too_small(spatial));
        }
        let taps: usize = self.kernel_size.0.iter().product();
        let (f, rows) = (self.filters, batch * spatial.iter().product::<usize>());
        // patches[b, i.., j.., f] = Σ_c x[b, i.., c] · kernel[j.., f, c]
        let k = kernel.reshape([taps * f, channels])?;
        let patches = x.reshape([rows, channels])?.matmul_t(&k, false, true)?;
        let mut shape = dims[..N + 1].to_vec();
        shape.extend(&self.kernel_size.0);
        shape.push(f);
        let mut y = patches.reshape(shape)?.fold(&window, &out)?;
        if self.use_bias {
            y = y.add(&ctx.weight("bias")?)?;
        }
        self.data_format.from_channels_last(&self.activation.apply(&y)?)
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
    use crate::Conv1D;

    /// The output sizes and crops of the golden script's findings.
    #[test]
    fn output_sizes_and_crops_follow_keras() {
        let g = |n, k, s, d, p, op| axis_geometry(n, k, s, d, p, op).map(|g| (g.output, g.crop));
        // valid: (n − 1)·s + max(k', s), or + k' + p with an output padding.
        assert_eq!(g(3, 3, 1, 1, Padding::Valid, None), Some((5, 0)));
        assert_eq!(g(3, 3, 2, 1, Padding::Valid, None), Some((7, 0)));
        assert_eq!(g(3, 2, 3, 1, Padding::Valid, None), Some((9, 0)));
        assert_eq!(g(3, 3, 1, 2, Padding::Valid, None), Some((7, 0)));
        assert_eq!(g(3, 3, 2, 1, Padding::Valid, Some(1)), Some((8, 0)));
        // same: n·s, or (n − 1)·s + k' mod 2 + p.
        assert_eq!(g(3, 3, 2, 1, Padding::Same, None), Some((6, 0)));
        assert_eq!(g(3, 4, 2, 1, Padding::Same, None), Some((6, 1)));
        assert_eq!(g(3, 3, 2, 1, Padding::Same, Some(0)), Some((5, 1)));
        assert_eq!(g(4, 3, 1, 1, Padding::Same, None), Some((4, 1)));
        assert_eq!(g(4, 4, 3, 1, Padding::Same, None), Some((12, 0)));
        // An empty output or an overflow is no geometry.
        assert_eq!(g(1, 2, 2, 1, Padding::Same, Some(0)), None);
        assert_eq!(g(usize::MAX, 3, 2, 1, Padding::Valid, None), None);
        assert_eq!(g(0, 3, 2, 1, Padding::Valid, None), None);
    }

    /// A transposed convolution is the adjoint of the convolution with the
    /// same kernel: <conv(x), y> = <x, conv_transpose(y)> for "valid".
    #[test]
    fn is_the_adjoint_of_the_convolution() {
        let (n, c, f) = (9, 2, 3);
        let mut conv = Conv1D::new(f, 3).strides(2).use_bias(false);
        let (_, cw) = build(&mut conv, &[spec(&[None, Some(n), Some(c)])]).unwrap();
        // Conv1D kernel [k, c, f]; the transpose maps f → c with kernel [k, c, f] too.
        let mut tr = Conv1DTranspose::new(c, 3).strides(2).use_bias(false);
        let (out, tw) = build(&mut tr, &[spec(&[None, Some(4), Some(f)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 9, 2)");
        tw[0].value.assign(&cw[0].value).unwrap();
        let x = t(&(0..n * c).map(|i| (i as f32 * 0.7).sin()).collect::<Vec<_>>(), &[1, n, c]);
        let y = t(&(0..4 * f).map(|i| (i as f32 * 1.1).cos()).collect::<Vec<_>>(), &[1, 4, f]);
        let cx = vals(&call(&conv, std::slice::from_ref(&x), &[], &cw, false).unwrap());
        let ty = vals(&call(&tr, std::slice::from_ref(&y), &[], &tw, false).unwrap());
        let lhs: f32 = cx.iter().zip(vals(&y)).map(|(a, b)| a * b).sum();
        let rhs: f32 = vals(&x).iter().zip(&ty).map(|(a, b)| a * b).sum();
        assert!((lhs - rhs).abs() < 1e-4, "{lhs} vs {rhs}");
    }

    #[test]
    fn gradients_match_finite_differences() {
        let layer = Conv2DTranspose::new(2, (2, 3)).strides((2, 1)).padding("same").use_bias(false);
        let x: Vec<f32> = (0..2 * 3 * 2 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let k: Vec<f32> = (0..2 * 3 * 2 * 2).map(|i| (i as f32 * 1.3).cos() * 0.5).collect();
        strata_conformance::check_grad(
            "conv transpose",
            &dev(),
            &[(x, [2, 3, 2, 2].into()), (k, [2, 3, 2, 2].into())],
            1e-2,
            |v| {
                let w = vec![crate::Weight {
                    name: "kernel".into(),
                    value: v[1].clone(),
                    trainable: true,
                    regularizer: None,
                }];
                call(&layer, &[v[0].clone()], &[], &w, true)?.square()
            },
        )
        .unwrap();
    }

    #[test]
    fn channels_first_matches_channels_last() {
        let mut last = Conv2DTranspose::new(3, 3).strides(2).output_padding(1);
        let (_, w) = build(&mut last, &[spec(&[None, Some(3), Some(4), Some(2)])]).unwrap();
        w[1].value.assign(&t(&[0.5, -0.5, 0.25], &[3])).unwrap();
        let mut first = Conv2DTranspose::new(3, 3).strides(2).output_padding(1).data_format("channels_first");
        let (out, wf) = build(&mut first, &[spec(&[None, Some(2), Some(3), Some(4)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 3, 8, 10)");
        wf[0].value.assign(&w[0].value).unwrap();
        wf[1].value.assign(&w[1].value).unwrap();
        let x = t(&(0..24).map(|i| (i as f32 * 0.3).cos()).collect::<Vec<_>>(), &[1, 3, 4, 2]);
        let y = call(&last, std::slice::from_ref(&x), &[], &w, false).unwrap();
        let yf = call(&first, &[x.permute(&[0, 3, 1, 2]).unwrap()], &[], &wf, false).unwrap();
        close(&vals(&yf.permute(&[0, 2, 3, 1]).unwrap()), &vals(&y), 1e-6);
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(4), Some(4), Some(3)])];
        let msg = err(build(&mut Conv2DTranspose::new(2, 3).strides(2).output_padding(2), &s));
        assert!(msg.contains("output_padding") && msg.contains("[2, 2]"), "{msg}");
        assert!(err(build(&mut Conv2DTranspose::new(2, 3).strides(2).dilation_rate(2), &s)).contains("cannot both"));
        assert!(err(build(&mut Conv2DTranspose::new(2, 3).padding("causal"), &s)).contains("received \"causal\""));
        assert!(err(build(&mut Conv2DTranspose::new(0, 3), &s)).contains("filters must be positive"));
        assert!(err(build(&mut Conv2DTranspose::new(2, (0, 3)), &s)).contains("kernel_size must be positive"));
        assert!(err(build(&mut Conv1DTranspose::new(2, 3), &s)).contains("rank 3"));
        let s1 = [spec(&[None, Some(1), Some(3)])];
        let msg = err(build(&mut Conv1DTranspose::new(2, 2).strides(2).padding("same").output_padding(0), &s1));
        assert!(msg.contains("no output") && msg.contains("[Some(1)]"), "{msg}");
        // Called on a tensor that does not fit the built layer.
        let mut layer = Conv2DTranspose::new(2, 3);
        let (_, w) = build(&mut layer, &s).unwrap();
        assert!(err(call(&layer, &[t(&[0.0; 12], &[1, 4, 3])], &[], &w, false)).contains("rank 4"));
        let msg = err(call(&layer, &[t(&[0.0; 32], &[1, 4, 4, 2])], &[], &w, false));
        assert!(msg.contains("[1, 4, 4, 2]"), "{msg}");
    }
}
