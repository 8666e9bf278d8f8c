//! `BatchNormalization`: normalizes each channel with the batch's
//! statistics in training and with moving averages of them in inference.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// Keras' `BatchNormalization`: `(x − mean) / sqrt(var + epsilon) · gamma + beta`
/// per feature along `axis` (default the last: the channels of an image).
///
/// - **Training** (`fit`): `mean` and `var` are the batch's, over every axis
///   but `axis` (`var` biased), and the non-trainable weights `moving_mean`
///   and `moving_variance` move towards them:
///   `moving = moving · momentum + batch · (1 − momentum)`.
/// - **Inference** (`evaluate`, `predict`): the moving statistics, which
///   are saved and loaded with the other weights. The statistics change only
///   in [`Layer::call`] with `training = true`, so a caller that runs the
///   layer with `training = false` (as Keras does for a frozen
///   `BatchNormalization`) keeps them fixed.
///
/// Weights, in Keras' order and names: `gamma` `[features]` (left out with
/// `scale(false)`), `beta` (left out with `center(false)`), `moving_mean`,
/// `moving_variance`. Arguments: `axis` (-1), `momentum` (0.99), `epsilon`
/// (1e-3), `center`, `scale`, the four initializers, `beta_regularizer`,
/// `gamma_regularizer`.
///
/// # Shapes
/// - input: `(batch, ...)`, `f32`, the size along `axis` known
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through; in training, masked steps are left out
/// of the batch statistics (a mask shaped like the input without its last
/// axis).
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BatchNormalization, BuildContext, CallContext, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut bn = BatchNormalization::new().momentum(0.5);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(1)], strata_core::DType::F32);
/// bn.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// let names: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
/// assert_eq!(names, ["gamma", "beta", "moving_mean", "moving_variance"]);
/// // A training step on the batch [1, 3]: mean 2, variance 1.
/// let x = Tensor::new(vec![1.0f32, 3.0], [2, 1], &dev)?;
/// let y = bn.call(&[x], &mut CallContext::new(true, &[None], &weights, &mut rng))?;
/// let eps = 1e-3f32;
/// assert!((y.to_vec::<f32>()?[0] + 1.0 / (1.0 + eps).sqrt()).abs() < 1e-6);
/// assert_eq!(weights[2].value.to_vec::<f32>()?, vec![1.0]); // 0·0.5 + 2·0.5
/// assert_eq!(weights[3].value.to_vec::<f32>()?, vec![1.0]); // 1·0.5 + 1·0.5
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchNormalization {
    #[serde(default = "last")]
    axis: isize,
    #[serde(default = "default_momentum")]
    momentum: f32,
    #[serde(default = "default_epsilon")]
    epsilon: f32,
    #[serde(default = "yes")]
    center: bool,
    #[serde(default = "yes")]
    scale: bool,
    #[serde(default = "zeros")]
    beta_initializer: Initializer,
    #[serde(default = "ones")]
    gamma_initializer: Initializer,
    #[serde(default = "zeros")]
    moving_mean_initializer: Initializer,
    #[serde(default = "ones")]
    moving_variance_initializer: Initializer,
    #[serde(default)]
    beta_regularizer: Option<Regularizer>,
    #[serde(default)]
    gamma_regularizer: Option<Regularizer>,
    #[serde(skip)]
    meta: Meta,
}

fn last() -> isize {
    -1
}
fn default_momentum() -> f32 {
    0.99
}
fn default_epsilon() -> f32 {
    1e-3
}
fn yes() -> bool {
    true
}
fn zeros() -> Initializer {
    Initializer::Zeros
}
fn ones() -> Initializer {
    Initializer::Ones
}

named!(BatchNormalization);

impl Default for BatchNormalization {
    fn default() -> Self {
        BatchNormalization {
            axis: -1,
            momentum: default_momentum(),
            epsilon: default_epsilon(),
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            moving_mean_initializer: Initializer::Zeros,
            moving_variance_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
            meta: Meta::default(),
        }
    }
}

impl BatchNormalization {
    /// Normalization of the last axis, momentum 0.99, epsilon 1e-3.
    pub fn new() -> Self {
        BatchNormalization::default()
    }

    /// The feature axis (default -1, the channels of channels-last data;
    /// 1 for channels-first).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
        self
    }

    /// How much of the old moving statistics each training step keeps
    /// (default 0.99); in `[0, 1]`.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Added to the variance (default 1e-3); must be > 0.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to add the learned offset `beta` (default true).
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to multiply by the learned scale `gamma` (default true).
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }

    /// `beta`'s initializer (default `zeros`).
    pub fn beta_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.beta_initializer = i;
        }
        self
    }

    /// `gamma`'s initializer (default `ones`).
    pub fn gamma_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.gamma_initializer = i;
        }
        self
    }

    /// `moving_mean`'s initializer (default `zeros`).
    pub fn moving_mean_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.moving_mean_initializer = i;
        }
        self
    }

    /// `moving_variance`'s initializer (default `ones`).
    pub fn moving_variance_initializer(mut self, init: impl Resolve<Initializer>) -> Self {
        if let Some(i) = self.meta.keep(init.resolve()) {
            self.moving_variance_initializer = i;
        }
        self
    }

    /// A penalty on `beta`, added to the training loss.
    pub fn beta_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.beta_regularizer = Some(reg);
        self
    }

    /// A penalty on `gamma`, added to the training loss.
    pub fn gamma_regularizer(mut self, reg: Regularizer) -> Self {
        self.meta.keep(reg.validate());
        self.gamma_regularizer = Some(reg);
        self
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::msg(format!("momentum must be in [0, 1], received {}", self.momentum)));
        }
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::msg(format!("epsilon must be finite and > 0, received {}", self.epsilon)));
        }
        Ok(())
    }

    /// The feature axis of a rank-`rank` input.
    fn feature_axis(&self, rank: usize) -> Result<usize> {
        let a = if self.axis < 0 { rank as isize + self.axis } else { self.axis };
        if a < 1 || a >= rank as isize {
            return Err(Error::msg(format!(
                "axis {} must name a non-batch axis of a rank {rank} input (1..{rank} or -{}..-1)",
                self.axis,
                rank - 1
            )));
        }
        Ok(a as usize)
    }

    /// The batch mean and biased variance over `axes`, kept as size 1; with a
    /// mask, over the unmasked entries only.
    fn moments(x: &Tensor, axes: &[isize], mask: Option<&Tensor>) -> Result<(Tensor, Tensor)> {
        match mask {
            None => {
                let mean = x.mean(axes, true)?;
                let var = x.sub(&mean)?.square()?.mean(axes, true)?;
                Ok((mean, var))
            }
            Some(m) => {
                if m.rank() + 1 != x.rank() || m.dims() != &x.dims()[..m.rank()] {
                    return Err(Error::msg(format!(
                        "expects a mask shaped like the input {} without its last axis, received mask {}",
                        x.shape(),
                        m.shape()
                    )));
                }
                let w = m.unsqueeze(-1)?.broadcast_to(x.shape().clone())?;
                let count = w.sum(axes, true)?.maximum_scalar(1.0)?;
                let mean = x.mul(&w)?.sum(axes, true)?.div(&count)?;
                let var = x.sub(&mean)?.square()?.mul(&w)?.sum(axes, true)?.div(&count)?;
                Ok((mean, var))
            }
        }
    }
}

impl LayerClass for BatchNormalization {
    const CLASS_NAME: &'static str = "BatchNormalization";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for BatchNormalization {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        let axis = self.feature_axis(x.rank())?;
        let Some(features) = x.dims[axis] else {
            return Err(Error::msg(format!("needs a known size along axis {}, received {x}", self.axis)));
        };
        if self.scale {
            ctx.add_weight_with("gamma", [features], self.gamma_initializer, true, self.gamma_regularizer)?;
        }
        if self.center {
            ctx.add_weight_with("beta", [features], self.beta_initializer, true, self.beta_regularizer)?;
        }
        ctx.add_weight_with("moving_mean", [features], self.moving_mean_initializer, false, None)?;
        ctx.add_weight_with("moving_variance", [features], self.moving_variance_initializer, false, None)?;
        Ok(x.clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let rank = x.rank();
        let axis = self.feature_axis(rank)?;
        let mut keep = vec![1usize; rank];
        keep[axis] = x.dims()[axis];
        let as_feature = |w: Tensor| w.reshape(keep.clone());
        let moving_mean = ctx.weight("moving_mean")?;
        let moving_var = ctx.weight("moving_variance")?;
        // A frozen BatchNormalization runs in inference mode (Keras' rule
        // since 2.1.3), so fine-tuning leaves its statistics alone.
        let (mean, var) = if ctx.training() && ctx.trainable() {
            let axes: Vec<isize> = (0..rank).filter(|&a| a != axis).map(|a| a as isize).collect();
            let (mean, var) = Self::moments(x, &axes, ctx.mask())?;
            strata_core::no_grad(|| -> Result<()> {
                let m = self.momentum as f64;
                let step = |moving: &Tensor, batch: &Tensor| -> Result<()> {
                    let batch = batch.detach().reshape(moving.shape().clone())?;
                    moving.assign(&moving.mul_scalar(m)?.add(&batch.mul_scalar(1.0 - m)?)?)
                };
                step(&moving_mean, &mean)?;
                step(&moving_var, &var)
            })?;
            (mean, var)
        } else {
            (as_feature(moving_mean)?, as_feature(moving_var)?)
        };
        // (x − mean) · (gamma / sqrt(var + eps)) + beta
        let mut factor = var.add_scalar(self.epsilon as f64)?.sqrt()?.recip()?;
        if self.scale {
            factor = factor.mul(&as_feature(ctx.weight("gamma")?)?)?;
        }
        let mut y = x.sub(&mean)?.mul(&factor)?;
        if self.center {
            y = y.add(&as_feature(ctx.weight("beta")?)?)?;
        }
        Ok(y)
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

    /// Gradients through the batch statistics against finite differences.
    #[test]
    fn training_gradients_match_finite_differences() {
        let mut bn = BatchNormalization::new();
        let (_, w) = build(&mut bn, &[spec(&[None, Some(3), Some(2)])]).unwrap();
        w[0].value.assign(&t(&[1.5, -0.5], &[2])).unwrap();
        let x: Vec<f32> = (0..12).map(|i| (i as f32 * 0.7).sin()).collect();
        strata_conformance::check_grad("batch norm", &dev(), &[(x, [2, 3, 2].into())], 1e-2, |v| {
            call(&bn, &[v[0].clone()], &[], &w, true)?.square()
        })
        .unwrap();
    }

    /// Masked steps do not count in the batch statistics.
    #[test]
    fn masked_steps_are_left_out_of_the_statistics() {
        let mut bn = BatchNormalization::new().momentum(0.0);
        let (_, w) = build(&mut bn, &[spec(&[None, Some(3), Some(1)])]).unwrap();
        let x = t(&[1.0, 3.0, 100.0, 5.0, 7.0, -100.0], &[2, 3, 1]);
        let mask = t(&[1.0, 1.0, 0.0, 1.0, 1.0, 0.0], &[2, 3]);
        call(&bn, &[x], &[Some(mask)], &w, true).unwrap();
        assert_eq!(vals(&w[2].value), vec![4.0]); // mean of 1, 3, 5, 7
        assert_eq!(vals(&w[3].value), vec![5.0]); // their biased variance
    }

    #[test]
    fn bad_arguments_are_errors() {
        let s = [spec(&[None, Some(4)])];
        assert!(err(build(&mut BatchNormalization::new().axis(0), &s)).contains("non-batch axis"));
        assert!(err(build(&mut BatchNormalization::new().axis(2), &s)).contains("non-batch axis"));
        assert!(err(build(&mut BatchNormalization::new().momentum(1.5), &s)).contains("momentum"));
        assert!(err(build(&mut BatchNormalization::new().epsilon(0.0), &s)).contains("epsilon"));
        assert!(err(build(&mut BatchNormalization::new(), &[spec(&[None, None])])).contains("known size"));
    }
}
