//! `Dense`: `activation(x · kernel + bias)`, Keras' densely-connected layer.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, LinearActivation, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{Activation, BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// A densely-connected layer: `activation(x · kernel + bias)`.
///
/// `kernel` is `[in, units]` and `bias` `[units]`, as in Keras. On input of
/// rank 3 or more it applies to the last axis.
///
/// # Shapes
/// - input: `(batch, ..., in)`, `f32`
/// - output: `(batch, ..., units)`
///
/// # Masks
/// Passes an incoming mask through.
///
/// ```
/// use strata_layers::{Dense, Layer};
/// let layer = Dense::new(64).activation("relu").use_bias(false);
/// assert_eq!(layer.config()["units"], 64);
/// assert_eq!(layer.config()["activation"], "relu");
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dense {
    units: usize,
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
    #[serde(skip)]
    input_dim: Option<usize>,
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

named!(Dense);

impl Dense {
    /// A layer with `units` outputs, no activation, a bias, Glorot-uniform kernel.
    pub fn new(units: usize) -> Self {
        let mut meta = Meta::default();
        meta.require(units > 0, || format!("units must be > 0, received {units}"));
        Dense {
            units,
            activation: Activation::Linear,
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            meta,
            input_dim: None,
        }
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
}

impl LayerClass for Dense {
    const CLASS_NAME: &'static str = "Dense";

    fn from_config(config: &Value) -> Result<Self> {
        let d: Dense = from_json(Self::CLASS_NAME, config)?;
        Ok(Dense { meta: Dense::new(d.units).meta, ..d })
    }
}

impl Layer for Dense {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        if x.rank() < 2 {
            return Err(Error::msg(format!("expects input of rank >= 2 (batch, ..., features), received {x}")));
        }
        let Some(features) = x.last() else {
            return Err(Error::msg(format!("needs a known last axis, received {x}")));
        };
        if let Some(expected) = self.input_dim {
            if expected != features {
                return Err(Error::msg(format!("expects last axis {expected}, received {x}")));
            }
        }
        ctx.add_weight_with("kernel", [features, self.units], self.kernel_initializer, true, self.kernel_regularizer)?;
        if self.use_bias {
            ctx.add_weight_with("bias", [self.units], self.bias_initializer, true, self.bias_regularizer)?;
        }
        self.input_dim = Some(features);
        Ok(x.with_last(self.units))
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let kernel = ctx.weight("kernel")?;
        let bias = if self.use_bias { Some(ctx.weight("bias")?) } else { None };
        // One fused op for the product, the bias and (when it is linear,
        // relu, sigmoid or tanh) the activation; any other activation runs
        // after it (softmax stays its own op, so a cross-entropy loss can
        // read the logits under it).
        match self.activation.fused() {
            Some(act) => inputs[0].linear(&kernel, bias.as_ref(), act),
            None => self.activation.apply(&inputs[0].linear(&kernel, bias.as_ref(), LinearActivation::Identity)?),
        }
    }

    fn supports_masking(&self) -> bool {
        true
    }

    config_from_serde!();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    /// Every activation gives exactly `activation(x · kernel + bias)` written
    /// as separate ops, fused (linear, relu, sigmoid, tanh) or not, on rank-2
    /// and rank-3 inputs, with and without a bias; and so do the gradients
    /// to the input, kernel and bias.
    #[test]
    fn fused_and_unfused_activations_match_the_separate_ops() {
        for name in ["linear", "relu", "sigmoid", "tanh", "gelu", "softmax", "elu"] {
            let act: Activation = name.parse().unwrap();
            assert_eq!(act.fused().is_some(), ["linear", "relu", "sigmoid", "tanh"].contains(&name), "{name}");
            for (dims, use_bias) in [(vec![4usize, 3], true), (vec![2, 2, 3], false)] {
                let mut layer = Dense::new(5).activation(name).use_bias(use_bias);
                let input_dims: Vec<Option<usize>> =
                    std::iter::once(None).chain(dims[1..].iter().map(|&d| Some(d))).collect();
                let (_, weights) = build(&mut layer, &[spec(&input_dims)]).unwrap();
                let n: usize = dims.iter().product();
                let x = t(&(0..n).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), &dims).to_variable().unwrap();
                let y = call(&layer, std::slice::from_ref(&x), &[], &weights, true).unwrap();
                let kernel = &weights[0].value;
                let mut want = x.matmul(kernel).unwrap();
                if use_bias {
                    want = want.add(&weights[1].value).unwrap();
                }
                let want = act.apply(&want).unwrap();
                assert_eq!(vals(&y), vals(&want), "{name} {dims:?}");
                let g = y.square().unwrap().sum_all().unwrap().backward().unwrap();
                let gw = want.square().unwrap().sum_all().unwrap().backward().unwrap();
                for v in std::iter::once(&x).chain(weights.iter().map(|w| &w.value)) {
                    close(&vals(g.get(v).unwrap()), &vals(gw.get(v).unwrap()), 1e-6);
                }
            }
        }
    }
}
