//! Activation functions with Keras' names and defaults, built from tensor
//! primitives so that every backend runs them and autodiff differentiates
//! them.
//!
//! ```
//! use strata_core::Tensor;
//! use strata_layers::Activation;
//! # let dev = strata_native::device();
//! let x = Tensor::new(vec![-2.0f32, 0.0, 3.0, 8.0], [4], &dev).unwrap();
//! let y = "relu6".parse::<Activation>().unwrap().apply(&x).unwrap();
//! assert_eq!(y.to_vec::<f32>().unwrap(), vec![0.0, 0.0, 3.0, 6.0]);
//! assert!("rleu".parse::<Activation>().unwrap_err().to_string().contains("relu6"));
//! ```

use std::{fmt, str::FromStr};

use strata_core::{Error, LinearActivation, Result, Tensor};

/// Keras' `selu` constants.
const SELU_ALPHA: f64 = 1.673_263_242_354_377_3;
const SELU_SCALE: f64 = 1.050_700_987_355_480_5;

macro_rules! activations {
    ($($(#[$doc:meta])* $variant:ident => $name:literal),* $(,)?) => {
        /// An activation function (Keras' defaults for any parameter).
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        pub enum Activation {
            $($(#[$doc])* $variant,)*
        }

        /// Every activation's name, as accepted by `"...".parse()`.
        pub const NAMES: &[&str] = &[$($name),*];

        impl Activation {
            /// The Keras name (`"relu"`).
            pub fn name(self) -> &'static str {
                match self { $(Activation::$variant => $name,)* }
            }
        }

        impl FromStr for Activation {
            type Err = Error;
            fn from_str(name: &str) -> Result<Self> {
                match name {
                    $($name => Ok(Activation::$variant),)*
                    "swish" => Ok(Activation::Silu),
                    "gelu_approximate" => Ok(Activation::GeluApproximate),
                    other => Err(Error::invalid(
                        "activation",
                        format!("unknown activation `{other}`; valid names: {}, swish", NAMES.join(", ")),
                    )),
                }
            }
        }
    };
}

activations! {
    /// `x` unchanged (also what `None` means in Keras).
    Linear => "linear",
    /// `max(x, 0)`
    Relu => "relu",
    /// `min(max(x, 0), 6)`
    Relu6 => "relu6",
    /// `x` for `x > 0`, else `0.2·x` (Keras 3's default `negative_slope`).
    LeakyRelu => "leaky_relu",
    /// `x` for `x > 0`, else `e^x − 1`.
    Elu => "elu",
    /// Scaled ELU with Keras' constants.
    Selu => "selu",
    /// Exact GELU, `x·Φ(x)` (Keras' `approximate=False` default).
    Gelu => "gelu",
    /// The tanh approximation of GELU.
    GeluApproximate => "gelu_tanh",
    /// `1 / (1 + e^−x)`
    Sigmoid => "sigmoid",
    /// `relu6(x + 3) / 6`, Keras 3's piecewise-linear sigmoid.
    HardSigmoid => "hard_sigmoid",
    /// `tanh(x)`
    Tanh => "tanh",
    /// Softmax over the last axis.
    Softmax => "softmax",
    /// Log-softmax over the last axis.
    LogSoftmax => "log_softmax",
    /// `ln(1 + e^x)`
    Softplus => "softplus",
    /// `x / (1 + |x|)`
    Softsign => "softsign",
    /// `x · sigmoid(x)` (also `"swish"`).
    Silu => "silu",
    /// `x · tanh(softplus(x))`
    Mish => "mish",
    /// `e^x`
    Exponential => "exponential",
}

impl Activation {
    /// The activation as one that [`Tensor::linear`] fuses into the matrix
    /// product (linear, relu, sigmoid, tanh), if it is one.
    pub fn fused(self) -> Option<LinearActivation> {
        match self {
            Activation::Linear => Some(LinearActivation::Identity),
            Activation::Relu => Some(LinearActivation::Relu),
            Activation::Sigmoid => Some(LinearActivation::Sigmoid),
            Activation::Tanh => Some(LinearActivation::Tanh),
            _ => None,
        }
    }

    /// Applies the function elementwise (softmax and log-softmax: over the
    /// last axis).
    pub fn apply(self, x: &Tensor) -> Result<Tensor> {
        match self {
            Activation::Linear => Ok(x.clone()),
            Activation::Relu => x.relu(),
            Activation::Relu6 => x.relu()?.minimum_scalar(6.0),
            Activation::LeakyRelu => x.maximum(&x.mul_scalar(0.2)?),
            Activation::Elu => elu(x, 1.0),
            Activation::Selu => elu(x, SELU_ALPHA)?.mul_scalar(SELU_SCALE),
            Activation::Gelu => x.gelu(),
            Activation::GeluApproximate => {
                // 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
                let inner = x
                    .add(&x.square()?.mul(x)?.mul_scalar(0.044_715)?)?
                    .mul_scalar((2.0 / std::f64::consts::PI).sqrt())?;
                x.mul(&inner.tanh()?.add_scalar(1.0)?)?.mul_scalar(0.5)
            }
            Activation::Sigmoid => x.sigmoid(),
            Activation::HardSigmoid => x.add_scalar(3.0)?.relu()?.minimum_scalar(6.0)?.mul_scalar(1.0 / 6.0),
            Activation::Tanh => x.tanh(),
            Activation::Softmax => x.softmax(-1),
            Activation::LogSoftmax => x.log_softmax(-1),
            Activation::Softplus => x.softplus(),
            Activation::Softsign => x.div(&x.abs()?.add_scalar(1.0)?),
            Activation::Silu => x.mul(&x.sigmoid()?),
            Activation::Mish => x.mul(&x.softplus()?.tanh()?),
            Activation::Exponential => x.exp(),
        }
    }
}

/// `x` for `x > 0`, else `alpha·(e^x − 1)`; the exponent is clamped at 0 so
/// that large positive inputs give no `inf · 0` in the gradient.
fn elu(x: &Tensor, alpha: f64) -> Result<Tensor> {
    let neg = x.minimum_scalar(0.0)?.exp()?.sub_scalar(1.0)?.mul_scalar(alpha)?;
    Tensor::where_cond(&x.gt_scalar(0.0)?, x, &neg)
}

impl fmt::Display for Activation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for Activation {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> serde::Deserialize<'de> for Activation {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let name = <Option<String> as serde::Deserialize>::deserialize(d)?;
        match name {
            None => Ok(Activation::Linear),
            Some(name) => name.parse().map_err(serde::de::Error::custom),
        }
    }
}
