//! `Normalization`: `(x − mean) / sqrt(variance)` per feature, with the
//! statistics given or learned from data by [`Normalization::adapt`].

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor};

use crate::meta::{from_json, named, Meta};
use crate::{BuildContext, CallContext, Initializer, Layer, LayerClass, TensorSpec};

/// Keras' `backend.epsilon()`: the smallest standard deviation divided by.
const EPSILON: f64 = 1e-7;

/// A mean or variance argument: one number for every feature, or one per
/// feature (row-major over the kept axes).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Stat {
    /// The same value for every feature.
    One(f32),
    /// One value per feature.
    Many(Vec<f32>),
}

impl Stat {
    fn values(&self) -> &[f32] {
        match self {
            Stat::One(v) => std::slice::from_ref(v),
            Stat::Many(v) => v,
        }
    }
}

impl From<f32> for Stat {
    fn from(v: f32) -> Self {
        Stat::One(v)
    }
}

impl From<Vec<f32>> for Stat {
    fn from(v: Vec<f32>) -> Self {
        Stat::Many(v)
    }
}

impl From<&[f32]> for Stat {
    fn from(v: &[f32]) -> Self {
        Stat::Many(v.to_vec())
    }
}

impl<const K: usize> From<[f32; K]> for Stat {
    fn from(v: [f32; K]) -> Self {
        Stat::Many(v.to_vec())
    }
}

fn default_axis() -> Vec<i64> {
    vec![-1]
}

/// Keras writes `axis` as a list, or `null` for one statistic over everything.
fn write_axis<S: Serializer>(axis: &[i64], s: S) -> std::result::Result<S::Ok, S::Error> {
    if axis.is_empty() {
        s.serialize_none()
    } else {
        axis.serialize(s)
    }
}

fn read_axis<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Form {
        One(i64),
        Many(Vec<i64>),
    }
    Ok(match Option::<Form>::deserialize(d)? {
        None => Vec::new(),
        Some(Form::One(a)) => vec![a],
        Some(Form::Many(v)) => v,
    })
}

/// What `build` resolved: the shape the statistics broadcast to, and the
/// adapted weights (when the layer has weights).
#[derive(Clone, Debug)]
struct Built {
    broadcast: Vec<usize>,
    weights: Option<(Tensor, Tensor)>,
}

/// Normalizes each feature to zero mean and unit variance — Keras'
/// `Normalization`: `y = (x − mean) / max(sqrt(variance), 1e-7)` (with
/// `invert`, `y = mean + x · max(sqrt(variance), 1e-7)`).
///
/// Arguments (Keras' names and defaults): `axis` (`-1`: one statistic per
/// index of the last axis; several axes, or none for one statistic over
/// everything), `mean` and `variance` (given together, or neither), `invert`
/// (`false`).
///
/// The statistics come either from the `mean` / `variance` arguments — then
/// the layer has no weights and they are part of its config, as in Keras — or
/// from [`adapt`](Normalization::adapt), which computes the mean and the
/// population (`1/N`) variance of sample data over every axis but the kept
/// ones. Without arguments the layer has three non-trainable weights, saved
/// with the model under Keras' names: `mean` and `variance` (shaped like the
/// kept axes) and `count`, a scalar that Keras keeps for old files and never
/// updates (it stays 0; strata stores it as an `f32` weight). Adapting before
/// the build makes the adapted values the weights' initial values; adapting a
/// built layer ([`adapt_in_place`](Normalization::adapt_in_place)) assigns
/// them to its weights.
///
/// # Shapes
/// - input: `(batch, ..)`, `f32`; the kept axes must be known
/// - output: the input's shape
///
/// # Masks
/// Does not accept a mask.
///
/// ```
/// use strata_core::{Rng, Tensor};
/// use strata_layers::{BuildContext, CallContext, Layer, Normalization, TensorSpec};
/// # fn main() -> strata_core::Result<()> {
/// let dev = strata_native::device();
/// let data = Tensor::new(vec![1.0f32, 10.0, 3.0, 30.0], [2, 2], &dev)?;
/// let mut norm = Normalization::new().adapt(&data)?;
/// let (mut weights, mut rng) = (Vec::new(), Rng::seed(0));
/// norm.build(&[TensorSpec::batched(&[2], strata_core::DType::F32)], &mut BuildContext::new(&mut weights, &mut rng, &dev))?;
/// assert_eq!(weights[0].value.to_vec::<f32>()?, vec![2.0, 20.0]);
/// let y = norm.call(&[data], &mut CallContext::new(false, &[None], &weights, &mut rng))?;
/// assert_eq!(y.to_vec::<f32>()?, vec![-1.0, -1.0, 1.0, 1.0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    #[serde(default = "default_axis", serialize_with = "write_axis", deserialize_with = "read_axis")]
    axis: Vec<i64>,
    #[serde(default)]
    invert: bool,
    #[serde(default)]
    mean: Option<Stat>,
    #[serde(default)]
    variance: Option<Stat>,
    #[serde(skip)]
    adapted: Option<(Vec<f32>, Vec<f32>)>,
    #[serde(skip)]
    built: Option<Built>,
    #[serde(skip)]
    meta: Meta,
}

named!(Normalization);

impl Default for Normalization {
    fn default() -> Self {
        Normalization::new()
    }
}

impl Normalization {
    /// A normalization over the last axis, to be adapted (or given `mean`
    /// and `variance`).
    pub fn new() -> Self {
        Normalization {
            axis: default_axis(),
            invert: false,
            mean: None,
            variance: None,
            adapted: None,
            built: None,
            meta: Meta::default(),
        }
    }

    /// Keeps one statistic per index of `axis` (default `-1`).
    pub fn axis(self, axis: i64) -> Self {
        self.axes(vec![axis])
    }

    /// Keeps one statistic per index of these axes together; no axes means
    /// one statistic over everything (Keras' `axis=None`).
    pub fn axes(mut self, axes: impl Into<Vec<i64>>) -> Self {
        self.axis = axes.into();
        self
    }

    /// The mean, fixed (give [`variance`](Self::variance) too).
    pub fn mean(mut self, mean: impl Into<Stat>) -> Self {
        self.mean = Some(mean.into());
        self
    }

    /// The variance, fixed (give [`mean`](Self::mean) too).
    pub fn variance(mut self, variance: impl Into<Stat>) -> Self {
        self.variance = Some(variance.into());
        self
    }

    /// Undoes the normalization instead: `mean + x · sqrt(variance)`.
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// Learns the mean and population variance of `data` (samples along
    /// the first axes, features along the kept ones), before the layer is
    /// built: they become its weights' initial values. See
    /// [`adapt_in_place`](Self::adapt_in_place) for a built layer.
    pub fn adapt(mut self, data: &Tensor) -> Result<Self> {
        self.adapt_in_place(data)?;
        Ok(self)
    }

    /// [`adapt`](Self::adapt) in place; on a built layer it also assigns
    /// the statistics to the `mean` and `variance` weights. A second call
    /// replaces the statistics (it does not merge them), as in Keras.
    pub fn adapt_in_place(&mut self, data: &Tensor) -> Result<()> {
        self.meta.check()?;
        if self.mean.is_some() || self.variance.is_some() {
            return Err(Error::msg("cannot adapt: mean and variance were given as arguments"));
        }
        let dims = data.dims().to_vec();
        let kept = resolve_axes(&self.axis, dims.len(), || format!("adapt data of shape {dims:?}"))?;
        let features: usize = kept.iter().map(|&a| dims[a]).product();
        let n = data.numel() / features.max(1);
        if n == 0 {
            return Err(Error::msg(format!("cannot adapt on empty data of shape {dims:?}")));
        }
        let values =
            if data.dtype() == DType::F32 { data.to_vec::<f32>()? } else { data.cast(DType::F32)?.to_vec::<f32>()? };
        // Row-major strides of the data and of the kept axes.
        let mut strides = vec![1usize; dims.len()];
        for a in (0..dims.len().saturating_sub(1)).rev() {
            strides[a] = strides[a + 1] * dims[a + 1];
        }
        let mut kstride = vec![1usize; kept.len()];
        for k in (0..kept.len().saturating_sub(1)).rev() {
            kstride[k] = kstride[k + 1] * dims[kept[k + 1]];
        }
        let feature =
            |i: usize| kept.iter().zip(&kstride).map(|(&a, &s)| (i / strides[a]) % dims[a] * s).sum::<usize>();
        let mut sum = vec![0f64; features];
        for (i, &v) in values.iter().enumerate() {
            sum[feature(i)] += v as f64;
        }
        let mean: Vec<f64> = sum.iter().map(|s| s / n as f64).collect();
        let mut sq = vec![0f64; features];
        for (i, &v) in values.iter().enumerate() {
            let f = feature(i);
            sq[f] += (v as f64 - mean[f]).powi(2);
        }
        let mean: Vec<f32> = mean.iter().map(|&m| m as f32).collect();
        let var: Vec<f32> = sq.iter().map(|s| (s / n as f64) as f32).collect();
        if let Some(Built { weights: Some((m, v)), .. }) = &self.built {
            if m.numel() != features {
                return Err(Error::msg(format!(
                    "adapt data of shape {dims:?} has {features} features, the built layer {}",
                    m.numel()
                )));
            }
            m.assign(&Tensor::new(mean.clone(), m.shape().clone(), m.device())?)?;
            v.assign(&Tensor::new(var.clone(), v.shape().clone(), v.device())?)?;
        }
        self.adapted = Some((mean, var));
        Ok(())
    }

    /// The adapted `(mean, variance)`, if [`adapt`](Self::adapt) ran.
    pub fn adapted(&self) -> Option<(&[f32], &[f32])> {
        self.adapted.as_ref().map(|(m, v)| (m.as_slice(), v.as_slice()))
    }

    fn check_args(&self) -> Result<()> {
        self.meta.check()?;
        match (&self.mean, &self.variance) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(Error::msg("mean and variance must be given together (or neither, to adapt)"))
            }
            (_, Some(v)) => {
                if let Some(bad) = v.values().iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
                    return Err(Error::msg(format!("variance must be finite and >= 0, received {bad}")));
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// The axes in `0..rank` (sorted, without repeats) that `axis` names.
fn resolve_axes(axis: &[i64], rank: usize, what: impl Fn() -> String) -> Result<Vec<usize>> {
    let mut out = Vec::with_capacity(axis.len());
    for &a in axis {
        let r = rank as i64;
        let p = if a < 0 { a + r } else { a };
        if !(0..r).contains(&p) {
            return Err(Error::msg(format!("axis {a} is out of range for {}", what())));
        }
        if !out.contains(&(p as usize)) {
            out.push(p as usize);
        }
    }
    out.sort_unstable();
    Ok(out)
}

impl LayerClass for Normalization {
    const CLASS_NAME: &'static str = "Normalization";

    fn from_config(config: &Value) -> Result<Self> {
        from_json(Self::CLASS_NAME, config)
    }
}

impl Layer for Normalization {
    fn class_name(&self) -> &str {
        Self::CLASS_NAME
    }

    fn build(&mut self, inputs: &[TensorSpec], ctx: &mut BuildContext<'_>) -> Result<TensorSpec> {
        self.check_args()?;
        let x = &inputs[0];
        crate::layer::expect_float(x)?;
        let kept = resolve_axes(&self.axis, x.rank(), || format!("input {x}"))?;
        if kept.contains(&0) {
            return Err(Error::msg(format!("axis {:?} includes the batch axis of input {x}", self.axis)));
        }
        let mut kdims = Vec::with_capacity(kept.len());
        let mut broadcast = vec![1; x.rank()];
        for &a in &kept {
            let d = x.dims[a]
                .ok_or_else(|| Error::msg(format!("axis {:?} must have known sizes, received input {x}", self.axis)))?;
            kdims.push(d);
            broadcast[a] = d;
        }
        let features: usize = kdims.iter().product();
        let weights = if let (Some(m), Some(v)) = (&self.mean, &self.variance) {
            for (name, s) in [("mean", m), ("variance", v)] {
                let n = s.values().len();
                if !matches!(s, Stat::One(_)) && n != features {
                    return Err(Error::msg(format!(
                        "{name} has {n} values, but axis {:?} of input {x} has {features} features",
                        self.axis
                    )));
                }
            }
            None
        } else {
            let mean = ctx.add_weight_with("mean", kdims.clone(), Initializer::Zeros, false, None)?;
            let var = ctx.add_weight_with("variance", kdims.clone(), Initializer::Ones, false, None)?;
            ctx.add_weight_with("count", Vec::<usize>::new(), Initializer::Zeros, false, None)?;
            if let Some((m, v)) = &self.adapted {
                if m.len() != features {
                    return Err(Error::msg(format!(
                        "the layer was adapted on {} features, but axis {:?} of input {x} has {features}",
                        m.len(),
                        self.axis
                    )));
                }
                mean.assign(&Tensor::new(m.clone(), kdims.clone(), ctx.device())?)?;
                var.assign(&Tensor::new(v.clone(), kdims.clone(), ctx.device())?)?;
            }
            Some((mean, var))
        };
        self.built = Some(Built { broadcast, weights });
        Ok(x.clone())
    }

    fn call(&self, inputs: &[Tensor], ctx: &mut CallContext<'_>) -> Result<Tensor> {
        let x = &inputs[0];
        let built = self.built.as_ref().ok_or_else(|| Error::msg("Normalization was called before it was built"))?;
        let shape = if x.rank() == built.broadcast.len() {
            built.broadcast.clone()
        } else {
            return Err(Error::msg(format!("built for rank {} input, received {:?}", built.broadcast.len(), x.dims())));
        };
        let (mean, var) = match (&self.mean, &self.variance) {
            (Some(m), Some(v)) => {
                let stat = |s: &Stat| -> Result<Tensor> {
                    match s {
                        Stat::One(c) => Tensor::new(vec![*c], vec![1; shape.len()], x.device()),
                        Stat::Many(v) => Tensor::new(v.clone(), shape.clone(), x.device()),
                    }
                };
                (stat(m)?, stat(v)?)
            }
            _ => (ctx.weight("mean")?.reshape(shape.clone())?, ctx.weight("variance")?.reshape(shape)?),
        };
        let std = var.sqrt()?.maximum_scalar(EPSILON)?;
        if self.invert {
            mean.add(&x.mul(&std)?)
        } else {
            x.sub(&mean)?.div(&std)
        }
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

    #[test]
    fn explicit_statistics_have_no_weights() {
        let mut layer = Normalization::new().mean([1.0, 2.0]).variance([4.0, 0.0]);
        let (out, w) = build(&mut layer, &[spec(&[None, Some(2)])]).unwrap();
        assert_eq!(out.to_string(), "(None, 2)");
        assert!(w.is_empty());
        let y = call(&layer, &[t(&[3.0, 2.0, -1.0, 2.5], &[2, 2])], &[], &w, false).unwrap();
        // A zero variance divides by 1e-7.
        close(&vals(&y), &[1.0, 0.0, -1.0, 5e6], 1e-3);
        let mut inv = Normalization::new().mean(1.0).variance(4.0).invert(true);
        let (_, w) = build(&mut inv, &[spec(&[None, Some(3)])]).unwrap();
        assert_eq!(vals(&call(&inv, &[t(&[0.0, 1.0, -1.0], &[1, 3])], &[], &w, false).unwrap()), [1.0, 3.0, -1.0]);
    }

    #[test]
    fn adapt_before_and_after_build() {
        let data = t(&[1.0, 0.0, 3.0, 0.0, 5.0, 6.0], &[3, 2]);
        let mut layer = Normalization::new().adapt(&data).unwrap();
        assert_eq!(layer.adapted(), Some((&[3.0f32, 2.0][..], &[8.0 / 3.0, 8.0][..])));
        let (_, w) = build(&mut layer, &[spec(&[None, Some(2)])]).unwrap();
        let names: Vec<&str> = w.iter().map(|w| w.name.as_str()).collect();
        assert_eq!(names, ["mean", "variance", "count"]);
        assert!(w.iter().all(|w| !w.trainable));
        assert_eq!(vals(&w[0].value), [3.0, 2.0]);
        assert_eq!(vals(&w[2].value), [0.0]);
        // Adapting the built layer replaces the weights' values.
        layer.adapt_in_place(&t(&[2.0, 4.0], &[1, 2])).unwrap();
        assert_eq!(vals(&w[0].value), [2.0, 4.0]);
        assert_eq!(vals(&w[1].value), [0.0, 0.0]);
        let e = err(layer.adapt_in_place(&t(&[1.0; 3], &[1, 3])));
        assert!(e.contains("3 features"), "{e}");
        // Several kept axes, and one statistic over everything.
        let data = t(&[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &[2, 2, 2]);
        let l = Normalization::new().axes(vec![1, 2]).adapt(&data).unwrap();
        assert_eq!(l.adapted().unwrap().0, [2.0, 3.0, 4.0, 5.0]);
        let l = Normalization::new().axes(vec![]).adapt(&data).unwrap();
        assert_eq!(l.adapted().unwrap().0, [3.5]);
        assert_eq!(l.config()["axis"], Value::Null);
    }

    #[test]
    fn bad_arguments_are_errors() {
        let s = [spec(&[None, Some(3)])];
        assert!(err(build(&mut Normalization::new().mean(1.0), &s)).contains("together"));
        let e = err(build(&mut Normalization::new().mean([1.0, 2.0]).variance(1.0), &s));
        assert!(e.contains("mean has 2 values") && e.contains("3 features"), "{e}");
        assert!(err(build(&mut Normalization::new().mean(0.0).variance(-1.0), &s)).contains("received -1"));
        assert!(err(build(&mut Normalization::new().axis(3), &s)).contains("axis 3"));
        assert!(err(build(&mut Normalization::new().axis(0), &s)).contains("batch axis"));
        let mut adapted = Normalization::new().adapt(&t(&[1.0, 2.0], &[1, 2])).unwrap();
        assert!(err(build(&mut adapted, &s)).contains("adapted on 2 features"));
        let e = err(Normalization::new().mean(0.0).variance(1.0).adapt(&t(&[1.0], &[1, 1])));
        assert!(e.contains("given as arguments"), "{e}");
        assert!(err(Normalization::new().adapt(&t(&[], &[0, 2]))).contains("empty"));
    }

    #[test]
    fn configs_follow_keras() {
        let l = Normalization::new().mean([0.5, -1.0]).variance([4.0, 0.25]);
        assert_eq!(
            l.config(),
            serde_json::json!({"axis": [-1], "invert": false, "mean": [0.5, -1.0], "variance": [4.0, 0.25]})
        );
        assert_eq!(Normalization::from_config(&l.config()).unwrap().config(), l.config());
        let k = Normalization::from_config(&serde_json::json!({"axis": 2, "mean": null, "variance": null})).unwrap();
        assert_eq!(k.config()["axis"], serde_json::json!([2]));
    }
}
