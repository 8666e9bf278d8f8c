//! Weight initializers with Keras' names, defaults and formulas.
//!
//! Values are drawn on the host from a seeded [`Rng`], so the same seed gives
//! the same weights on every backend.
//!
//! ```
//! use strata_core::{Rng, Shape};
//! use strata_layers::Initializer;
//! # let dev = strata_native::device();
//! let init: Initializer = "glorot_uniform".parse().unwrap();
//! let w = init.init(&Shape::from([784, 256]), &mut Rng::seed(0), &dev).unwrap();
//! let limit = (6.0f32 / (784.0 + 256.0)).sqrt();
//! assert!(w.to_vec::<f32>().unwrap().iter().all(|v| v.abs() <= limit));
//! assert!("glorot".parse::<Initializer>().unwrap_err().to_string().contains("glorot_uniform"));
//! ```

use std::str::FromStr;

use strata_core::{DType, Device, Error, Result, Rng, Shape, Tensor};

/// Which fan a variance-scaling initializer divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// Number of input units.
    FanIn,
    /// Number of output units.
    FanOut,
    /// Their mean.
    FanAvg,
}

/// The distribution a variance-scaling initializer draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// Normal truncated at two standard deviations, rescaled to keep the variance.
    TruncatedNormal,
    /// Plain normal.
    UntruncatedNormal,
    /// Uniform in `[-limit, limit]`.
    Uniform,
}

/// How a weight tensor's initial values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Initializer {
    /// All zeros.
    Zeros,
    /// All ones.
    Ones,
    /// A constant.
    Constant(f32),
    /// Uniform in `[minval, maxval)` (Keras default ±0.05).
    RandomUniform {
        /// Lower bound.
        minval: f32,
        /// Upper bound.
        maxval: f32,
    },
    /// Normal (Keras default mean 0, stddev 0.05).
    RandomNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation.
        stddev: f32,
    },
    /// Normal redrawn beyond two standard deviations (Keras default 0, 0.05).
    TruncatedNormal {
        /// Mean.
        mean: f32,
        /// Standard deviation before truncation.
        stddev: f32,
    },
    /// `scale / fan` variance with the given distribution.
    VarianceScaling {
        /// Variance scale.
        scale: f32,
        /// Which fan to divide by.
        mode: FanMode,
        /// Distribution.
        distribution: Distribution,
    },
    /// Glorot (Xavier) uniform: limit `sqrt(6 / (fan_in + fan_out))`.
    GlorotUniform,
    /// Glorot normal: truncated normal, stddev `sqrt(2 / (fan_in + fan_out))`.
    GlorotNormal,
    /// He uniform: limit `sqrt(6 / fan_in)`.
    HeUniform,
    /// He normal: truncated normal, stddev `sqrt(2 / fan_in)`.
    HeNormal,
    /// LeCun uniform: limit `sqrt(3 / fan_in)`.
    LecunUniform,
    /// LeCun normal: truncated normal, stddev `sqrt(1 / fan_in)`.
    LecunNormal,
    /// A random orthogonal matrix times `gain` (Keras' `Orthogonal`, the
    /// default recurrent kernel of `LSTM`, `GRU` and `SimpleRNN`): the
    /// weight flattened to `[rows, last axis]` has orthonormal rows or
    /// columns, whichever are fewer.
    Orthogonal {
        /// Multiplies the orthogonal matrix (Keras default 1).
        gain: f32,
    },
}

/// The names [`Initializer::from_str`] accepts.
pub const NAMES: &[&str] = &[
    "zeros",
    "ones",
    "random_uniform",
    "random_normal",
    "truncated_normal",
    "glorot_uniform",
    "glorot_normal",
    "he_uniform",
    "he_normal",
    "lecun_uniform",
    "lecun_normal",
    "orthogonal",
];

/// Standard deviation of a unit normal truncated to `[-2, 2]`.
const TRUNCATED_STD: f32 = 0.879_625_7;

/// Keras' `(fan_in, fan_out)` for a weight shape: the last two axes, times the
/// receptive field (the product of the leading axes) for rank > 2.
pub fn compute_fans(shape: &Shape) -> (f32, f32) {
    let d = shape.dims();
    match d.len() {
        0 => (1.0, 1.0),
        1 => (d[0] as f32, d[0] as f32),
        2 => (d[0] as f32, d[1] as f32),
        n => {
            let rf: usize = d[..n - 2].iter().product();
            ((d[n - 2] * rf) as f32, (d[n - 1] * rf) as f32)
        }
    }
}

impl Initializer {
    /// The Keras name (`"glorot_uniform"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            Initializer::Zeros => "zeros",
            Initializer::Ones => "ones",
            Initializer::Constant(_) => "constant",
            Initializer::RandomUniform { .. } => "random_uniform",
            Initializer::RandomNormal { .. } => "random_normal",
            Initializer::TruncatedNormal { .. } => "truncated_normal",
            Initializer::VarianceScaling { .. } => "variance_scaling",
            Initializer::GlorotUniform => "glorot_uniform",
            Initializer::GlorotNormal => "glorot_normal",
            Initializer::HeUniform => "he_uniform",
            Initializer::HeNormal => "he_normal",
            Initializer::LecunUniform => "lecun_uniform",
            Initializer::LecunNormal => "lecun_normal",
            Initializer::Orthogonal { .. } => "orthogonal",
        }
    }

    /// The equivalent explicit variance-scaling form, for the named schemes.
    fn variance_scaling(&self) -> Option<(f32, FanMode, Distribution)> {
        use Distribution::*;
        use FanMode::*;
        Some(match *self {
            Initializer::VarianceScaling { scale, mode, distribution } => (scale, mode, distribution),
            Initializer::GlorotUniform => (1.0, FanAvg, Uniform),
            Initializer::GlorotNormal => (1.0, FanAvg, TruncatedNormal),
            Initializer::HeUniform => (2.0, FanIn, Uniform),
            Initializer::HeNormal => (2.0, FanIn, TruncatedNormal),
            Initializer::LecunUniform => (1.0, FanIn, Uniform),
            Initializer::LecunNormal => (1.0, FanIn, TruncatedNormal),
            _ => return None,
        })
    }

    /// A weight tensor of `shape` on `device`, drawn from `rng`.
    pub fn init(&self, shape: &Shape, rng: &mut Rng, device: &Device) -> Result<Tensor> {
        let n = shape.checked_numel("initializer")?;
        // Drawn on the host: reserve fallibly, so a weight the machine cannot
        // hold is an error, not an abort.
        let truncated = |rng: &mut Rng, mean: f32, std: f32| -> Result<Vec<f32>> {
            let mut values = Vec::new();
            values.try_reserve_exact(n).map_err(|_| Error::SizeOverflow {
                op: "initializer".into(),
                message: format!("cannot allocate {} bytes for a weight of shape {shape}", n.saturating_mul(4)),
            })?;
            values.extend((0..n).map(|_| loop {
                let z = rng.normal();
                if z.abs() <= 2.0 {
                    break mean + std * z;
                }
            }));
            Ok(values)
        };
        let data = match *self {
            Initializer::Zeros => return Tensor::zeros(shape.clone(), DType::F32, device),
            Initializer::Ones => return Tensor::ones(shape.clone(), DType::F32, device),
            Initializer::Constant(v) => return Tensor::full(v as f64, shape.clone(), DType::F32, device),
            Initializer::RandomUniform { minval, maxval } => {
                return Tensor::rand_uniform(shape.clone(), minval, maxval, rng, device)
            }
            Initializer::RandomNormal { mean, stddev } => {
                return Tensor::rand_normal(shape.clone(), mean, stddev, rng, device)
            }
            Initializer::Orthogonal { gain } => orthogonal(shape, gain, n, rng)?,
            Initializer::TruncatedNormal { mean, stddev } => {
                if !(stddev >= 0.0 && stddev.is_finite() && mean.is_finite()) {
                    return Err(Error::invalid(
                        "truncated_normal",
                        format!("needs finite mean and stddev >= 0, received {mean}, {stddev}"),
                    ));
                }
                truncated(rng, mean, stddev)?
            }
            _ => {
                let (scale, mode, distribution) = self.variance_scaling().expect("named variance-scaling scheme");
                if !(scale > 0.0 && scale.is_finite()) {
                    return Err(Error::invalid(
                        "variance_scaling",
                        format!("scale must be positive, received {scale}"),
                    ));
                }
                let (fan_in, fan_out) = compute_fans(shape);
                let fan = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                    FanMode::FanAvg => (fan_in + fan_out) / 2.0,
                };
                let scale = scale / fan.max(1.0);
                match distribution {
                    Distribution::Uniform => {
                        let limit = (3.0 * scale).sqrt();
                        return Tensor::rand_uniform(shape.clone(), -limit, limit, rng, device);
                    }
                    Distribution::UntruncatedNormal => {
                        return Tensor::rand_normal(shape.clone(), 0.0, scale.sqrt(), rng, device)
                    }
                    Distribution::TruncatedNormal => truncated(rng, 0.0, scale.sqrt() / TRUNCATED_STD)?,
                }
            }
        };
        Tensor::new(data, shape.clone(), device)
    }
}

/// Keras' orthogonal initializer: a normal `[max(r, c), min(r, c)]` matrix
/// (`r` the product of the leading axes, `c` the last), orthonormalised
/// column by column (Gram–Schmidt in f64, twice for accuracy, which gives
/// the Q of a QR decomposition with a positive diagonal, as Keras' sign
/// correction does), transposed when `r < c`, times `gain`.
fn orthogonal(shape: &Shape, gain: f32, n: usize, rng: &mut Rng) -> Result<Vec<f32>> {
    let dims = shape.dims();
    if dims.len() < 2 {
        return Err(Error::invalid("orthogonal", format!("needs a weight of rank >= 2, received shape {shape}")));
    }
    if !gain.is_finite() {
        return Err(Error::invalid("orthogonal", format!("gain must be finite, received {gain}")));
    }
    let cols = dims[dims.len() - 1];
    let rows = n / cols.max(1);
    let (tall, short) = (rows.max(cols), rows.min(cols));
    // q is stored column by column: column j is q[j * tall..(j + 1) * tall].
    let mut q: Vec<f64> = Vec::new();
    q.try_reserve_exact(n).map_err(|_| Error::SizeOverflow {
        op: "initializer".into(),
        message: format!("cannot allocate {} bytes for a weight of shape {shape}", n.saturating_mul(8)),
    })?;
    q.extend((0..n).map(|_| rng.normal() as f64));
    for j in 0..short {
        let (done, rest) = q.split_at_mut(j * tall);
        let col = &mut rest[..tall];
        for _ in 0..2 {
            for k in 0..j {
                let prev = &done[k * tall..(k + 1) * tall];
                let dot: f64 = prev.iter().zip(col.iter()).map(|(a, b)| a * b).sum();
                col.iter_mut().zip(prev).for_each(|(c, p)| *c -= dot * p);
            }
        }
        let norm = col.iter().map(|v| v * v).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        col.iter_mut().for_each(|v| *v /= norm);
    }
    // Element (i, j) of the [rows, cols] result.
    let value = |i: usize, j: usize| if rows >= cols { q[j * tall + i] } else { q[i * tall + j] };
    Ok((0..rows)
        .flat_map(|i| (0..cols).map(move |j| (i, j)))
        .map(|(i, j)| (gain as f64 * value(i, j)) as f32)
        .collect())
}

impl FromStr for Initializer {
    type Err = Error;

    /// Parses a Keras initializer name with Keras' default arguments.
    fn from_str(name: &str) -> Result<Self> {
        Ok(match name {
            "zeros" => Initializer::Zeros,
            "ones" => Initializer::Ones,
            "random_uniform" => Initializer::RandomUniform { minval: -0.05, maxval: 0.05 },
            "random_normal" => Initializer::RandomNormal { mean: 0.0, stddev: 0.05 },
            "truncated_normal" => Initializer::TruncatedNormal { mean: 0.0, stddev: 0.05 },
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_uniform" => Initializer::HeUniform,
            "he_normal" => Initializer::HeNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "lecun_normal" => Initializer::LecunNormal,
            "orthogonal" => Initializer::Orthogonal { gain: 1.0 },
            other => {
                return Err(Error::invalid(
                    "initializer",
                    format!("unknown initializer `{other}`; valid names: {}", NAMES.join(", ")),
                ))
            }
        })
    }
}

fn class_name(init: &Initializer) -> &'static str {
    match init {
        Initializer::Zeros => "Zeros",
        Initializer::Ones => "Ones",
        Initializer::Constant(_) => "Constant",
        Initializer::RandomUniform { .. } => "RandomUniform",
        Initializer::RandomNormal { .. } => "RandomNormal",
        Initializer::TruncatedNormal { .. } => "TruncatedNormal",
        Initializer::VarianceScaling { .. } => "VarianceScaling",
        Initializer::GlorotUniform => "GlorotUniform",
        Initializer::GlorotNormal => "GlorotNormal",
        Initializer::HeUniform => "HeUniform",
        Initializer::HeNormal => "HeNormal",
        Initializer::LecunUniform => "LecunUniform",
        Initializer::LecunNormal => "LecunNormal",
        Initializer::Orthogonal { .. } => "Orthogonal",
    }
}

impl Initializer {
    /// Keras' serialized form: `{"class_name": "RandomUniform", "config": {"minval": -0.05, "maxval": 0.05}}`.
    pub fn to_config(&self) -> serde_json::Value {
        use serde_json::json;
        let config = match *self {
            Initializer::Constant(value) => json!({ "value": value }),
            Initializer::Orthogonal { gain } => json!({ "gain": gain }),
            Initializer::RandomUniform { minval, maxval } => json!({ "minval": minval, "maxval": maxval }),
            Initializer::RandomNormal { mean, stddev } | Initializer::TruncatedNormal { mean, stddev } => {
                json!({ "mean": mean, "stddev": stddev })
            }
            Initializer::VarianceScaling { scale, mode, distribution } => json!({
                "scale": scale,
                "mode": match mode { FanMode::FanIn => "fan_in", FanMode::FanOut => "fan_out", FanMode::FanAvg => "fan_avg" },
                "distribution": match distribution {
                    Distribution::TruncatedNormal => "truncated_normal",
                    Distribution::UntruncatedNormal => "untruncated_normal",
                    Distribution::Uniform => "uniform",
                },
            }),
            _ => json!({}),
        };
        json!({ "class_name": class_name(self), "config": config })
    }

    /// Reads [`to_config`](Self::to_config)'s form, or a plain Keras name (`"he_normal"`).
    pub fn from_config(value: &serde_json::Value) -> Result<Self> {
        let bad = |m: String| Error::Config(format!("initializer: {m}"));
        if let Some(name) = value.as_str() {
            return name.parse();
        }
        let class = value
            .get("class_name")
            .and_then(|c| c.as_str())
            .ok_or_else(|| bad(format!("expected a name or {{\"class_name\": ...}}, received {value}")))?;
        let empty = serde_json::Value::Object(Default::default());
        let config = value.get("config").unwrap_or(&empty);
        let num = |key: &str, default: f32| -> Result<f32> {
            match config.get(key) {
                None | Some(serde_json::Value::Null) => Ok(default),
                Some(v) => v
                    .as_f64()
                    .map(|v| v as f32)
                    .ok_or_else(|| bad(format!("{class}.{key} must be a number, received {v}"))),
            }
        };
        let text = |key: &str, default: &'static str| -> String {
            config.get(key).and_then(|v| v.as_str()).unwrap_or(default).to_string()
        };
        Ok(match class {
            "Zeros" => Initializer::Zeros,
            "Ones" => Initializer::Ones,
            "Constant" => Initializer::Constant(num("value", 0.0)?),
            "RandomUniform" => {
                Initializer::RandomUniform { minval: num("minval", -0.05)?, maxval: num("maxval", 0.05)? }
            }
            "RandomNormal" => Initializer::RandomNormal { mean: num("mean", 0.0)?, stddev: num("stddev", 0.05)? },
            "TruncatedNormal" => Initializer::TruncatedNormal { mean: num("mean", 0.0)?, stddev: num("stddev", 0.05)? },
            "VarianceScaling" => Initializer::VarianceScaling {
                scale: num("scale", 1.0)?,
                mode: match text("mode", "fan_in").as_str() {
                    "fan_in" => FanMode::FanIn,
                    "fan_out" => FanMode::FanOut,
                    "fan_avg" => FanMode::FanAvg,
                    other => return Err(bad(format!("unknown mode `{other}`; valid: fan_in, fan_out, fan_avg"))),
                },
                distribution: match text("distribution", "truncated_normal").as_str() {
                    "truncated_normal" => Distribution::TruncatedNormal,
                    "untruncated_normal" | "normal" => Distribution::UntruncatedNormal,
                    "uniform" => Distribution::Uniform,
                    other => {
                        return Err(bad(format!(
                            "unknown distribution `{other}`; valid: truncated_normal, untruncated_normal, uniform"
                        )))
                    }
                },
            },
            "GlorotUniform" => Initializer::GlorotUniform,
            "GlorotNormal" => Initializer::GlorotNormal,
            "HeUniform" => Initializer::HeUniform,
            "HeNormal" => Initializer::HeNormal,
            "LecunUniform" => Initializer::LecunUniform,
            "LecunNormal" => Initializer::LecunNormal,
            "Orthogonal" | "OrthogonalInitializer" => Initializer::Orthogonal { gain: num("gain", 1.0)? },
            other => return Err(bad(format!("unknown class `{other}`"))),
        })
    }
}

impl serde::Serialize for Initializer {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_config().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Initializer {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let v = serde_json::Value::deserialize(d)?;
        Initializer::from_config(&v).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(v: &[f32]) -> (f64, f64) {
        let n = v.len() as f64;
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / n;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / n;
        (mean, var.sqrt())
    }

    fn draw(init: Initializer, shape: &[usize]) -> Vec<f32> {
        let dev = strata_native::device();
        init.init(&Shape::from(shape), &mut Rng::seed(1), &dev).unwrap().to_vec::<f32>().unwrap()
    }

    #[test]
    fn config_round_trips_every_initializer() {
        let all = [
            Initializer::Zeros,
            Initializer::Ones,
            Initializer::Constant(0.5),
            Initializer::RandomUniform { minval: -1.0, maxval: 2.0 },
            Initializer::RandomNormal { mean: 1.0, stddev: 0.5 },
            Initializer::TruncatedNormal { mean: 0.0, stddev: 0.1 },
            Initializer::VarianceScaling { scale: 2.0, mode: FanMode::FanOut, distribution: Distribution::Uniform },
            Initializer::GlorotUniform,
            Initializer::GlorotNormal,
            Initializer::HeUniform,
            Initializer::HeNormal,
            Initializer::LecunUniform,
            Initializer::LecunNormal,
            Initializer::Orthogonal { gain: 1.5 },
        ];
        for init in all {
            assert_eq!(Initializer::from_config(&init.to_config()).unwrap(), init);
        }
        assert_eq!(Initializer::from_config(&serde_json::json!("he_normal")).unwrap(), Initializer::HeNormal);
        let e = Initializer::from_config(&serde_json::json!({"class_name": "Identityy"})).unwrap_err();
        assert!(e.to_string().contains("Identityy"), "{e}");
    }

    /// `W·Wᵀ = gain²·I` when rows <= cols and `Wᵀ·W = gain²·I` otherwise,
    /// for square, wide (an LSTM's `[units, 4·units]`), tall and rank-3 shapes.
    #[test]
    fn orthogonal_weights_are_orthogonal() {
        for (shape, gain) in [(vec![6usize, 6], 1.0f64), (vec![4, 16], 1.0), (vec![10, 3], 2.0), (vec![2, 3, 5], 1.0)] {
            let w: Vec<f64> =
                draw(Initializer::Orthogonal { gain: gain as f32 }, &shape).iter().map(|&v| v as f64).collect();
            let cols = *shape.last().unwrap();
            let rows = w.len() / cols;
            let (outer, inner) = if rows <= cols { (rows, cols) } else { (cols, rows) };
            let at = |a: usize, k: usize| if rows <= cols { w[a * cols + k] } else { w[k * cols + a] };
            for a in 0..outer {
                for b in 0..outer {
                    let dot: f64 = (0..inner).map(|k| at(a, k) * at(b, k)).sum();
                    let want = if a == b { gain * gain } else { 0.0 };
                    assert!((dot - want).abs() < 1e-5, "{shape:?}: <{a}, {b}> = {dot}");
                }
            }
        }
        let e = Initializer::Orthogonal { gain: 1.0 }
            .init(&Shape::from([5]), &mut Rng::seed(0), &strata_native::device())
            .unwrap_err();
        assert!(e.to_string().contains("rank >= 2"), "{e}");
    }

    #[test]
    fn fans_follow_keras() {
        assert_eq!(compute_fans(&Shape::from([784, 256])), (784.0, 256.0));
        assert_eq!(compute_fans(&Shape::from([3, 3, 16, 32])), (144.0, 288.0));
        assert_eq!(compute_fans(&Shape::from([10])), (10.0, 10.0));
        assert_eq!(compute_fans(&Shape::scalar()), (1.0, 1.0));
    }

    #[test]
    fn uniform_schemes_respect_their_limits_and_variance() {
        // Uniform in [-L, L] has std L/sqrt(3).
        for (init, limit) in [
            (Initializer::GlorotUniform, (6.0f64 / (400.0 + 300.0)).sqrt()),
            (Initializer::HeUniform, (6.0f64 / 400.0).sqrt()),
            (Initializer::LecunUniform, (3.0f64 / 400.0).sqrt()),
        ] {
            let v = draw(init, &[400, 300]);
            assert!(v.iter().all(|&x| (x as f64).abs() <= limit), "{}", init.name());
            let (mean, std) = stats(&v);
            assert!(mean.abs() < 0.01 * limit, "{} mean {mean}", init.name());
            assert!((std - limit / 3f64.sqrt()).abs() < 0.02 * limit, "{} std {std}", init.name());
        }
    }

    #[test]
    fn truncated_schemes_keep_the_target_variance() {
        for (init, target) in [
            (Initializer::GlorotNormal, (2.0f64 / 700.0).sqrt()),
            (Initializer::HeNormal, (2.0f64 / 400.0).sqrt()),
            (Initializer::LecunNormal, (1.0f64 / 400.0).sqrt()),
        ] {
            let v = draw(init, &[400, 300]);
            let (_, std) = stats(&v);
            assert!((std - target).abs() < 0.02 * target, "{} std {std} vs {target}", init.name());
            let bound = 2.0 * target / TRUNCATED_STD as f64 + 1e-6;
            assert!(v.iter().all(|&x| (x as f64).abs() <= bound), "{}", init.name());
        }
        let v = draw("truncated_normal".parse().unwrap(), &[10000]);
        assert!(v.iter().all(|&x| x.abs() <= 0.1 + 1e-6));
    }

    #[test]
    fn constants_and_defaults() {
        assert!(draw(Initializer::Zeros, &[3]).iter().all(|&x| x == 0.0));
        assert!(draw(Initializer::Ones, &[3]).iter().all(|&x| x == 1.0));
        assert!(draw(Initializer::Constant(0.25), &[3]).iter().all(|&x| x == 0.25));
        let v = draw("random_uniform".parse().unwrap(), &[1000]);
        assert!(v.iter().all(|&x| (-0.05..0.05).contains(&x)));
        let (_, std) = stats(&draw("random_normal".parse().unwrap(), &[20000]));
        assert!((std - 0.05).abs() < 0.002);
    }

    #[test]
    fn same_seed_same_weights_and_names_round_trip() {
        assert_eq!(draw(Initializer::HeNormal, &[5, 5]), draw(Initializer::HeNormal, &[5, 5]));
        for name in NAMES {
            assert_eq!(name.parse::<Initializer>().unwrap().name(), *name);
        }
        let msg = "xavier".parse::<Initializer>().unwrap_err().to_string();
        assert!(msg.contains("`xavier`") && msg.contains("he_normal"), "{msg}");
        let bad =
            Initializer::VarianceScaling { scale: -1.0, mode: FanMode::FanIn, distribution: Distribution::Uniform };
        assert!(bad.init(&Shape::from([2]), &mut Rng::seed(0), &strata_native::device()).is_err());
    }
}
