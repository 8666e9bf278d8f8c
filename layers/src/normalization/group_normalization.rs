//! `GroupNormalization`: normalizes each sample over groups of channels.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use strata_core::{Error, Result, Tensor};

use crate::meta::{config_from_serde, from_json, named, Meta};
use crate::{BuildContext, CallContext, Initializer, Layer, LayerClass, Regularizer, Resolve, TensorSpec};

/// Keras' `GroupNormalization`: the channels along `axis` are split into
/// `groups` consecutive groups, and each sample is normalized over each
/// group (its channels and every other non-batch axis):
/// `(x − mean) / sqrt(var + epsilon) · gamma + beta` with the biased
/// variance. It uses no batch statistics, so training and inference agree.
/// `groups = 1` normalizes over everything but the batch (like
/// `LayerNormalization` over all axes); `groups = -1` (or the channel
/// count) is instance normalization.
///
/// Weights, in Keras' order and names: `gamma` `[channels]` (left out with
/// `scale(false)`) and `beta` (left out with `center(false)`). Arguments:
/// `groups` (32), `axis` (-1), `epsilon` (1e-3), `center`, `scale`,
/// `beta_initializer` (`zeros`), `gamma_initializer` (`ones`),
/// `beta_regularizer`, `gamma_regularizer`.
///
/// # Shapes
/// - input: `(batch, ...)` of rank ≥ 2, `f32`, the size along `axis` known
///   and a multiple of `groups`
/// - output: the input's shape
///
/// # Masks
/// Passes an incoming mask through (the statistics include masked steps, as
/// in Keras).
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, GroupNormalization, Layer, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let mut gn = GroupNormalization::new().groups(2);
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// let spec = TensorSpec::new(vec![None, Some(4), Some(4), Some(6)], strata_core::DType::F32);
/// assert_eq!(gn.build(&[spec], &mut BuildContext::new(&mut weights, &mut rng, &dev))?.to_string(), "(None, 4, 4, 6)");
/// let names: Vec<&str> = weights.iter().map(|w| w.name.as_str()).collect();
/// assert_eq!(names, ["gamma", "beta"]);
/// let x = Tensor::rand_uniform([2, 4, 4, 6], 0.0, 5.0, &mut rng, &dev)?;
/// let y = gn.call(&[x], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// // Each sample's first group (channels 0..3) has mean 0.
/// let m = y.narrow(3, 0, 3)?.narrow(0, 0, 1)?.mean_all()?.to_scalar::<f32>()?;
/// assert!(m.abs() < 1e-5);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupNormalization {
    #[serde(default = "default_groups")]
    groups: i64,
    #[serde(default = "last")]
    axis: isize,
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
    #[serde(default)]
    beta_regularizer: Option<Regularizer>,
    #[serde(default)]
    gamma_regularizer: Option<Regularizer>,
    #[serde(skip)]
    meta: Meta,
}

fn default_groups() -> i64 {
    32
}
fn last() -> isize {
    -1
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

named!(GroupNormalization);

impl Default for GroupNormalization {
    fn default() -> Self {
        GroupNormalization {
            groups: default_groups(),
            axis: -1,
            epsilon: default_epsilon(),
            center: true,
            scale: true,
            beta_initializer: Initializer::Zeros,
            gamma_initializer: Initializer::Ones,
            beta_regularizer: None,
            gamma_regularizer: None,
            meta: Meta::default(),
        }
    }
}

impl GroupNormalization {
    /// Group normalization with Keras' defaults: 32 groups of the last axis,
    /// epsilon 1e-3, a learned scale and a learned shift.
    pub fn new() -> Self {
        GroupNormalization::default()
    }

    /// The number of groups (default 32); it must divide the channels.
    /// `-1` means one group per channel (instance normalization).
    pub fn groups(mut self, groups: i64) -> Self {
        self.groups = groups;
        self
    }

    /// The channel axis (default -1; 1 for channels-first data).
    pub fn axis(mut self, axis: isize) -> Self {
        self.axis = axis;
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

    /// The channel axis of a rank-`rank` input.
    fn channel_axis(&self, rank: usize) -> Result<usize> {
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

    /// The number of groups for this many channels, checked.
    fn group_count(&self, channels: usize) -> Result<usize> {
        let g = match self.groups {
            -1 => channels,
            g if g >= 1 => usize::try_from(g).unwrap_or(usize::MAX),
            g => return Err(Error::msg(format!("groups must be positive or -1, received {g}"))),
        };
        if channels == 0 {
            return Err(Error::msg("needs at least one channel, received 0"));
        }
        if g > channels {
            return Err(Error::msg(format!(
                "groups = {g} cannot exceed the number of channels, received {channels} channels"
            )));
        }
        if channels % g != 0 {
            return Err(Error::msg(format!("groups = {g} must divide the number of channels, received {channels}")));
        }
        Ok(g)
    }
}

impl LayerClass for GroupNormalization {
    const CLASS_NAME: &'static str = "GroupNormalization";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for GroupNormalization {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.meta.check()?;
        if !(self.epsilon > 0.0 && self.epsilon.is_finite()) {
            return Err(Error::msg(format!("epsilon must be finite and > 0, received {}", self.epsilon)));
        }
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        if x.rank() < 2 {
            return Err(Error::msg(format!("expects input of rank >= 2 (batch, ..., channels), received {x}")));
        }
        let axis = self.channel_axis(x.rank())?;
        let Some(channels) = x.dims[axis] else {
            return Err(Error::msg(format!("needs a known size along axis {}, received {x}", self.axis)));
        };
        self.group_count(channels)?;
        if self.scale {
            ctx.add_weight_with("gamma", [channels], self.gamma_initializer, true, self.gamma_regularizer)?;
        }
        if self.center {
            ctx.add_weight_with("beta", [channels], self.beta_initializer, true, self.beta_regularizer)?;
        }
        Ok(x.clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let rank = x.rank();
        let axis = self.channel_axis(rank)?;
        let channels = x.dims()[axis];
        let g = self.group_count(channels)?;
        // [.., channels, ..] → [.., g, channels / g, ..]; reduce all but the batch and the group.
        let mut grouped = x.dims().to_vec();
        grouped.splice(axis..=axis, [g, channels / g]);
        let axes: Vec<isize> = (1..=rank).filter(|&a| a != axis).map(|a| a as isize).collect();
        let xg = x.reshape(grouped)?;
        let mean = xg.mean(&axes, true)?;
        let centered = xg.sub(&mean)?;
        let var = centered.square()?.mean(&axes, true)?;
        let mut y = centered.div(&var.add_scalar(self.epsilon as f64)?.sqrt()?)?.reshape(x.shape().clone())?;
        let mut per_channel = vec![1usize; rank];
        per_channel[axis] = channels;
        if self.scale {
            y = y.mul(&ctx.weight("gamma")?.reshape(per_channel.clone())?)?;
        }
        if self.center {
            y = y.add(&ctx.weight("beta")?.reshape(per_channel)?)?;
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
    use crate::Weight;

    fn weight(name: &str, value: Tensor) -> Weight {
        Weight { name: name.into(), value, trainable: true, regularizer: None }
    }

    /// Each group of each sample has mean 0 and (biased) variance
    /// `var / (var + eps)`, whatever the channel axis.
    #[test]
    fn normalizes_each_group_of_each_sample() {
        let data: Vec<f32> = (0..2 * 3 * 6).map(|i| (i as f32 * 0.9).sin() * 3.0 + i as f32 * 0.1).collect();
        for (axis, dims) in [(-1isize, [2usize, 3, 6]), (1, [2, 6, 3])] {
            let mut gn = GroupNormalization::new().groups(3).axis(axis).epsilon(1e-6);
            let (_, w) = build(&mut gn, &[spec(&[None, Some(dims[1]), Some(dims[2])])]).unwrap();
            let x = t(&data, &dims);
            let y = call(&gn, std::slice::from_ref(&x), &[], &w, false).unwrap();
            let y = if axis == 1 { y.permute(&[0, 2, 1]).unwrap() } else { y };
            let y = vals(&y.reshape([2, 3, 3, 2]).unwrap().permute(&[0, 2, 1, 3]).unwrap());
            for group in y.chunks(6) {
                let mean = group.iter().sum::<f32>() / 6.0;
                let var = group.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 6.0;
                assert!(mean.abs() < 1e-5 && (var - 1.0).abs() < 1e-3, "mean {mean}, var {var}");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let gn = GroupNormalization::new().groups(2);
        let x: Vec<f32> = (0..2 * 3 * 4).map(|i| (i as f32 * 0.7).sin()).collect();
        let inputs =
            [(x, [2, 3, 4].into()), (vec![1.5, -0.5, 1.0, 0.7], [4].into()), (vec![0.1, -0.2, 0.3, 0.0], [4].into())];
        strata_conformance::check_grad("group norm", &dev(), &inputs, 1e-2, |v| {
            let w = vec![weight("gamma", v[1].clone()), weight("beta", v[2].clone())];
            call(&gn, &v[..1], &[], &w, true)?.square()
        })
        .unwrap();
    }

    #[test]
    fn bad_arguments_are_errors_naming_them() {
        let s = [spec(&[None, Some(3), Some(6)])];
        assert!(err(build(&mut GroupNormalization::new(), &s)).contains("groups = 32 cannot exceed"));
        assert!(err(build(&mut GroupNormalization::new().groups(4), &s)).contains("groups = 4 must divide"));
        assert!(err(build(&mut GroupNormalization::new().groups(0), &s)).contains("received 0"));
        assert!(err(build(&mut GroupNormalization::new().groups(2).axis(0), &s)).contains("non-batch axis"));
        assert!(err(build(&mut GroupNormalization::new().groups(2).epsilon(0.0), &s)).contains("epsilon"));
        let msg = err(build(&mut GroupNormalization::new().groups(2), &[spec(&[None, Some(3), None])]));
        assert!(msg.contains("known size"), "{msg}");
        let msg = err(build(&mut GroupNormalization::new().groups(-1), &[spec(&[None, Some(3), Some(0)])]));
        assert!(msg.contains("received 0"), "{msg}");
        let (_, w) = build(&mut GroupNormalization::new().groups(-1).center(false), &s).unwrap();
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].name, "gamma");
    }
}
