//! Image operations shared by the upsampling, resizing, cropping and
//! augmentation layers, written with the Tensor API only (gather, narrow,
//! elementwise arithmetic) so that autodiff differentiates them and every
//! backend runs them. Images are channels-last `[batch, height, width,
//! channels]` here; the layers convert other formats first.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use strata_core::{DType, Error, Result, Tensor};

use crate::window_args::DataFormat;
use crate::{CallContext, TensorSpec};

/// How an image is sampled between pixels: Keras' `interpolation`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Interpolation {
    /// The nearest pixel.
    Nearest,
    /// Linear in each spatial axis (the default of the resizing and
    /// augmentation layers).
    #[default]
    Bilinear,
}

impl Interpolation {
    /// Keras' name: `"nearest"` or `"bilinear"`.
    pub fn name(self) -> &'static str {
        match self {
            Interpolation::Nearest => "nearest",
            Interpolation::Bilinear => "bilinear",
        }
    }
}

impl FromStr for Interpolation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" => Ok(Interpolation::Nearest),
            "bilinear" => Ok(Interpolation::Bilinear),
            _ => Err(Error::invalid(
                "interpolation",
                format!("unsupported interpolation `{s}`; expected nearest or bilinear"),
            )),
        }
    }
}

impl fmt::Display for Interpolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl crate::Resolve<Interpolation> for Interpolation {
    fn resolve(self) -> Result<Interpolation> {
        Ok(self)
    }
}

impl crate::Resolve<Interpolation> for &str {
    fn resolve(self) -> Result<Interpolation> {
        self.parse()
    }
}

/// How the augmentation layers fill points that fall outside the input:
/// Keras' `fill_mode` (with `abcd` the input row).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FillMode {
    /// `d c b a | a b c d | d c b a`: reflected about the edge of the last
    /// pixel (the default).
    #[default]
    Reflect,
    /// `k k k k | a b c d | k k k k`: the constant `fill_value`.
    Constant,
    /// `a a a a | a b c d | d d d d`: the nearest edge pixel.
    Nearest,
    /// `a b c d | a b c d | a b c d`: the input repeated.
    Wrap,
    /// `c d c b | a b c d | c b a b`: reflected about the centre of the last
    /// pixel.
    Mirror,
}

impl FillMode {
    /// Keras' name.
    pub fn name(self) -> &'static str {
        match self {
            FillMode::Reflect => "reflect",
            FillMode::Constant => "constant",
            FillMode::Nearest => "nearest",
            FillMode::Wrap => "wrap",
            FillMode::Mirror => "mirror",
        }
    }

    /// The pixel that an integer position `i` on an axis of `n` pixels reads,
    /// or `None` for the constant fill.
    fn fix(self, i: i64, n: i64) -> Option<i64> {
        match self {
            FillMode::Constant => (0..n).contains(&i).then_some(i),
            FillMode::Nearest => Some(i.clamp(0, n - 1)),
            FillMode::Wrap => Some(i.rem_euclid(n)),
            FillMode::Reflect => {
                let m = i.rem_euclid(2 * n);
                Some(if m >= n { 2 * n - 1 - m } else { m })
            }
            FillMode::Mirror => {
                if n == 1 {
                    return Some(0);
                }
                let m = i.rem_euclid(2 * n - 2);
                Some(if m >= n { 2 * n - 2 - m } else { m })
            }
        }
    }
}

impl FromStr for FillMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "reflect" => Ok(FillMode::Reflect),
            "constant" => Ok(FillMode::Constant),
            "nearest" => Ok(FillMode::Nearest),
            "wrap" => Ok(FillMode::Wrap),
            "mirror" => Ok(FillMode::Mirror),
            _ => Err(Error::invalid(
                "fill_mode",
                format!("unknown fill_mode `{s}`; expected reflect, constant, nearest, wrap or mirror"),
            )),
        }
    }
}

impl fmt::Display for FillMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl crate::Resolve<FillMode> for FillMode {
    fn resolve(self) -> Result<FillMode> {
        Ok(self)
    }
}

impl crate::Resolve<FillMode> for &str {
    fn resolve(self) -> Result<FillMode> {
        self.parse()
    }
}

/// An empty vector with room for `len` values, or an error (instead of an
/// aborted allocation) for a size no memory holds.
pub(crate) fn host_vec<T>(op: &str, len: usize) -> Result<Vec<T>> {
    let mut v = Vec::new();
    v.try_reserve_exact(len).map_err(|_| Error::SizeOverflow {
        op: op.to_string(),
        message: format!("{len} positions do not fit in memory"),
    })?;
    Ok(v)
}

/// An `i64` index tensor.
fn indices(v: Vec<i64>, x: &Tensor) -> Result<Tensor> {
    let n = v.len();
    Tensor::new(v, [n], x.device())
}

/// Per-position factors along `axis` of `x`, shaped to broadcast against
/// the result.
fn along(v: Vec<f32>, x: &Tensor, axis: usize) -> Result<Tensor> {
    let mut shape = vec![1; x.rank()];
    shape[axis] = v.len();
    Tensor::new(v, shape, x.device())
}

/// `x` resized to `out` positions along `axis` by linear interpolation, as
/// `jax.image.resize` does it without antialiasing: output `i` samples input
/// position `(i + 0.5) · n / out − 0.5`, clamped to the first and last pixel.
pub(crate) fn resize_linear(x: &Tensor, axis: usize, out: usize) -> Result<Tensor> {
    let n = x.dims()[axis];
    if n == out {
        return Ok(x.clone());
    }
    if n == 0 || out == 0 {
        return Err(Error::msg(format!("cannot resize an axis of {n} pixels to {out}")));
    }
    let inv = 1.0 / (out as f32 / n as f32);
    let (mut lo, mut hi) = (host_vec("resize", out)?, host_vec("resize", out)?);
    let (mut w0, mut w1) = (host_vec("resize", out)?, host_vec("resize", out)?);
    for i in 0..out {
        let s = ((i as f32 + 0.5) * inv - 0.5).clamp(0.0, (n - 1) as f32);
        let f = s.floor();
        let l = f as usize;
        lo.push(l as i64);
        hi.push((l + 1).min(n - 1) as i64);
        w0.push(1.0 - (s - f));
        w1.push(s - f);
    }
    let a = x.gather(axis as isize, &indices(lo, x)?)?.mul(&along(w0, x, axis)?)?;
    let b = x.gather(axis as isize, &indices(hi, x)?)?.mul(&along(w1, x, axis)?)?;
    a.add(&b)
}

/// `x` resized to `out` positions along `axis` by picking the nearest pixel:
/// output `i` reads input `floor((i + 0.5) · n / out)` (`jax.image.resize`).
pub(crate) fn resize_nearest(x: &Tensor, axis: usize, out: usize) -> Result<Tensor> {
    let n = x.dims()[axis];
    if n == out {
        return Ok(x.clone());
    }
    if n == 0 || out == 0 {
        return Err(Error::msg(format!("cannot resize an axis of {n} pixels to {out}")));
    }
    let mut idx = host_vec("resize", out)?;
    idx.extend((0..out).map(|i| (((i as f32 + 0.5) * n as f32 / out as f32).floor() as usize).min(n - 1) as i64));
    x.gather(axis as isize, &indices(idx, x)?)
}

/// A channels-last batch of images resized to `(height, width)`.
pub(crate) fn resize(x: &Tensor, height: usize, width: usize, interpolation: Interpolation) -> Result<Tensor> {
    match interpolation {
        Interpolation::Bilinear => resize_linear(&resize_linear(x, 1, height)?, 2, width),
        Interpolation::Nearest => resize_nearest(&resize_nearest(x, 1, height)?, 2, width),
    }
}

/// The central window of `(h, w)` with the aspect ratio of `(th, tw)`, as
/// Keras' `crop_to_aspect_ratio` takes it: `(top, left, height, width)`.
pub(crate) fn aspect_crop(h: usize, w: usize, th: usize, tw: usize) -> (usize, usize, usize, usize) {
    let ch = ((w as f64 * th as f64 / tw as f64) as usize).clamp(1, h.max(1)).min(h);
    let cw = ((h as f64 * tw as f64 / th as f64) as usize).clamp(1, w.max(1)).min(w);
    ((h - ch) / 2, (w - cw) / 2, ch, cw)
}

/// A channels-last batch centre-cropped to the aspect ratio of `(th, tw)`.
pub(crate) fn crop_to_aspect(x: &Tensor, th: usize, tw: usize) -> Result<Tensor> {
    let (h, w) = (x.dims()[1], x.dims()[2]);
    let (top, left, ch, cw) = aspect_crop(h, w, th, tw);
    let mut y = x.clone();
    if ch != h {
        y = y.narrow(1, top, ch)?;
    }
    if cw != w {
        y = y.narrow(2, left, cw)?;
    }
    Ok(y)
}

/// A channels-last batch `[b, h, w, c]` transformed per image: output pixel
/// `(x, y)` of image `i` samples the input at `(t[0]·x + t[1]·y + t[2],
/// t[3]·x + t[4]·y + t[5])` with `t = transforms[i]` (the convention of
/// Keras' `affine_transform`), interpolating and filling as asked.
pub(crate) fn affine_transform(
    x: &Tensor,
    transforms: &[[f32; 6]],
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f32,
) -> Result<Tensor> {
    let dims = x.dims().to_vec();
    let (b, h, w, c) = (dims[0], dims[1], dims[2], dims[3]);
    if transforms.len() != b {
        return Err(Error::msg(format!("{} transforms for a batch of {b} images", transforms.len())));
    }
    let pixels = b * h * w;
    if pixels == 0 {
        return Ok(x.clone());
    }
    let taps = match interpolation {
        Interpolation::Nearest => 1,
        Interpolation::Bilinear => 4,
    };
    let mut idx = vec![vec![0i64; pixels]; taps];
    let mut wts = vec![vec![0f32; pixels]; taps];
    let mut fill = vec![0f32; pixels];
    let (hi, wi) = (h as i64, w as i64);
    for (img, t) in transforms.iter().enumerate() {
        for py in 0..h {
            for px in 0..w {
                let p = (img * h + py) * w + px;
                let (fx, fy) = (px as f32, py as f32);
                let sx = t[0] * fx + t[1] * fy + t[2];
                let sy = t[3] * fx + t[4] * fy + t[5];
                let mut put =
                    |k: usize, iy: i64, ix: i64, weight: f32| match (fill_mode.fix(iy, hi), fill_mode.fix(ix, wi)) {
                        (Some(yy), Some(xx)) => {
                            idx[k][p] = (img * h * w) as i64 + yy * wi + xx;
                            wts[k][p] = weight;
                        }
                        _ => fill[p] += weight,
                    };
                if !(sx.is_finite() && sy.is_finite()) {
                    fill[p] = 1.0;
                    continue;
                }
                match interpolation {
                    Interpolation::Nearest => put(0, sy.round_ties_even() as i64, sx.round_ties_even() as i64, 1.0),
                    Interpolation::Bilinear => {
                        let (y0, x0) = (sy.floor(), sx.floor());
                        let (ty, tx) = (sy - y0, sx - x0);
                        let (y0, x0) = (y0 as i64, x0 as i64);
                        put(0, y0, x0, (1.0 - ty) * (1.0 - tx));
                        put(1, y0, x0 + 1, (1.0 - ty) * tx);
                        put(2, y0 + 1, x0, ty * (1.0 - tx));
                        put(3, y0 + 1, x0 + 1, ty * tx);
                    }
                }
            }
        }
    }
    let flat = x.reshape([pixels, c])?;
    let column = |v: Vec<f32>| Tensor::new(v, [pixels, 1], x.device());
    let mut y: Option<Tensor> = None;
    for (i, wt) in idx.into_iter().zip(wts) {
        let term = flat.gather(0, &Tensor::new(i, [pixels], x.device())?)?.mul(&column(wt)?)?;
        y = Some(match y {
            Some(acc) => acc.add(&term)?,
            None => term,
        });
    }
    let mut y = y.ok_or_else(|| Error::msg("no interpolation taps"))?;
    if fill_value != 0.0 && fill.iter().any(|&f| f != 0.0) {
        y = y.add(&column(fill.iter().map(|f| f * fill_value).collect())?)?;
    }
    y.reshape(dims)
}

/// The checked spatial sizes of an image input: rank 4 `(batch, height,
/// width, channels)` or rank 3 `(height, width, channels)` (one image), in
/// `format`, `f32`. Returns `(height, width)`.
pub(crate) fn image_input(x: &TensorSpec, format: DataFormat) -> Result<(Option<usize>, Option<usize>)> {
    crate::layer::expect_float(x)?;
    let r = x.rank();
    if r != 3 && r != 4 {
        let what = match format {
            DataFormat::ChannelsLast => "(batch, height, width, channels) or (height, width, channels)",
            DataFormat::ChannelsFirst => "(batch, channels, height, width) or (channels, height, width)",
        };
        return Err(Error::msg(format!("expects rank 4 or 3 input {what}, received {x}")));
    }
    let first = match format {
        DataFormat::ChannelsLast => r - 3,
        DataFormat::ChannelsFirst => r - 2,
    };
    Ok((x.dims[first], x.dims[first + 1]))
}

/// `x`'s spec with its spatial sizes replaced.
pub(crate) fn image_output(x: &TensorSpec, format: DataFormat, h: Option<usize>, w: Option<usize>) -> TensorSpec {
    let r = x.rank();
    let first = match format {
        DataFormat::ChannelsLast => r - 3,
        DataFormat::ChannelsFirst => r - 2,
    };
    let mut dims = x.dims.clone();
    dims[first] = h;
    dims[first + 1] = w;
    TensorSpec::new(dims, x.dtype)
}

/// An image input as a channels-last batch, and whether it was one image.
pub(crate) fn to_nhwc(x: &Tensor, format: DataFormat) -> Result<(Tensor, bool)> {
    if x.dtype() != DType::F32 || (x.rank() != 3 && x.rank() != 4) {
        return Err(Error::msg(format!(
            "expects an f32 image batch of rank 4 or 3, received {} {:?}",
            x.dtype(),
            x.dims()
        )));
    }
    let single = x.rank() == 3;
    let x = if single { x.unsqueeze(0)? } else { x.clone() };
    Ok((format.to_channels_last(&x)?, single))
}

/// A channels-last batch back in `format` (and rank 3 for one image).
pub(crate) fn from_nhwc(y: &Tensor, format: DataFormat, single: bool) -> Result<Tensor> {
    let y = format.from_channels_last(y)?;
    if single {
        y.squeeze(0)
    } else {
        Ok(y)
    }
}

pub(crate) use crate::meta::LayerRng;

impl LayerRng {
    /// `n` uniform values in `[low, high)`.
    pub(crate) fn uniform(&self, ctx: &mut CallContext<'_>, n: usize, low: f32, high: f32) -> Vec<f32> {
        self.with(ctx.rng(), |rng| (0..n).map(|_| low + (high - low) * rng.uniform()).collect())
    }
}

/// A Keras factor given as one number `f` (the range `[-f, f]`, or `[0, f]`
/// style handled by the caller) or as a pair `(lower, upper)`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Factor {
    /// One number: the range `[-f, f]` (RandomContrast: `[1 - f, 1 + f]`).
    One(f32),
    /// `(lower, upper)`.
    Range(f32, f32),
}

impl Factor {
    /// `(lower, upper)` with a single number `f` read as `(-f, f)`.
    pub(crate) fn bounds(self) -> (f32, f32) {
        match self {
            Factor::One(f) => (-f.abs(), f.abs()),
            Factor::Range(a, b) => (a, b),
        }
    }

    /// The error for a factor outside `[lo, hi]` or with lower > upper.
    pub(crate) fn check(self, what: &str, lo: f32, hi: f32) -> std::result::Result<(), String> {
        let (a, b) = self.bounds();
        let shown = match self {
            Factor::One(f) => format!("{f}"),
            Factor::Range(a, b) => format!("({a}, {b})"),
        };
        if !(a.is_finite() && b.is_finite()) || a < lo || b > hi || a > b {
            return Err(format!(
                "{what} must be a number or a pair (lower, upper) with {lo} <= lower <= upper <= {hi}, received {shown}"
            ));
        }
        Ok(())
    }
}

impl From<f32> for Factor {
    fn from(f: f32) -> Self {
        Factor::One(f)
    }
}

impl From<(f32, f32)> for Factor {
    fn from((a, b): (f32, f32)) -> Self {
        Factor::Range(a, b)
    }
}

/// The builder methods shared by the geometric augmentation layers
/// (`RandomTranslation`, `RandomRotation`, `RandomZoom`), whose structs have
/// the fields `seed`, `rng`, `fill_mode`, `interpolation`, `fill_value`,
/// `data_format` and `meta`.
macro_rules! transform_builders {
    ($t:ty) => {
        impl $t {
            /// Draws from the layer's own generator seeded with `seed`.
            pub fn seed(mut self, seed: u64) -> Self {
                self.seed = Some(seed);
                self.rng = $crate::image_ops::LayerRng::new(Some(seed));
                self
            }

            /// How points outside the input are filled: `"reflect"`
            /// (default), `"constant"`, `"nearest"`, `"wrap"` or `"mirror"`.
            pub fn fill_mode(mut self, mode: impl $crate::Resolve<$crate::FillMode>) -> Self {
                if let Some(m) = self.meta.keep(mode.resolve()) {
                    self.fill_mode = m;
                }
                self
            }

            /// `"bilinear"` (default) or `"nearest"`.
            pub fn interpolation(mut self, interpolation: impl $crate::Resolve<$crate::Interpolation>) -> Self {
                if let Some(i) = self.meta.keep(interpolation.resolve()) {
                    self.interpolation = i;
                }
                self
            }

            /// The value of the `"constant"` fill (default 0).
            pub fn fill_value(mut self, value: f32) -> Self {
                self.fill_value = value;
                self
            }

            /// `"channels_last"` (default) or `"channels_first"`.
            pub fn data_format(mut self, format: impl $crate::Resolve<$crate::DataFormat>) -> Self {
                if let Some(f) = self.meta.keep(format.resolve()) {
                    self.data_format = f;
                }
                self
            }
        }
    };
}
pub(crate) use transform_builders;

/// A batch transformed by per-image `transforms` (see [`affine_transform`])
/// in `format`, for a geometric augmentation layer's call.
pub(crate) fn transform_images(
    x: &Tensor,
    format: DataFormat,
    transforms: impl FnOnce(usize, usize, usize) -> Vec<[f32; 6]>,
    interpolation: Interpolation,
    fill_mode: FillMode,
    fill_value: f32,
) -> Result<Tensor> {
    let (x, single) = to_nhwc(x, format)?;
    let (b, h, w) = (x.dims()[0], x.dims()[1], x.dims()[2]);
    let t = transforms(b, h, w);
    from_nhwc(&affine_transform(&x, &t, interpolation, fill_mode, fill_value)?, format, single)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::*;

    #[test]
    fn fill_modes_follow_keras() {
        let row = |m: FillMode| (-4..8).map(|i| m.fix(i, 4)).collect::<Vec<_>>();
        let s = |v: &[i64]| v.iter().map(|&i| Some(i)).collect::<Vec<_>>();
        assert_eq!(row(FillMode::Reflect), s(&[3, 2, 1, 0, 0, 1, 2, 3, 3, 2, 1, 0]));
        assert_eq!(row(FillMode::Mirror), s(&[2, 3, 2, 1, 0, 1, 2, 3, 2, 1, 0, 1]));
        assert_eq!(row(FillMode::Wrap), s(&[0, 1, 2, 3, 0, 1, 2, 3, 0, 1, 2, 3]));
        assert_eq!(row(FillMode::Nearest), s(&[0, 0, 0, 0, 0, 1, 2, 3, 3, 3, 3, 3]));
        assert_eq!(row(FillMode::Constant)[3..9], [None, Some(0), Some(1), Some(2), Some(3), None]);
    }

    #[test]
    fn linear_resize_is_half_pixel_with_clamped_edges() {
        let x = t(&[0.0, 1.0, 2.0, 3.0], &[1, 4, 1, 1]);
        // Upsampling by 2: positions -0.25, 0.25, 0.75, ..., 3.25.
        close(&vals(&resize_linear(&x, 1, 8).unwrap()), &[0.0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3.0], 1e-6);
        // Downsampling by 2: positions 0.5, 2.5.
        close(&vals(&resize_linear(&x, 1, 2).unwrap()), &[0.5, 2.5], 1e-6);
        assert_eq!(vals(&resize_nearest(&x, 1, 3).unwrap()), vec![0.0, 2.0, 3.0]);
    }

    #[test]
    fn identity_transform_is_exact() {
        let data: Vec<f32> = (0..2 * 3 * 4 * 2).map(|i| (i as f32 * 0.7).sin()).collect();
        let x = t(&data, &[2, 3, 4, 2]);
        let id = [[1.0, 0.0, 0.0, 0.0, 1.0, 0.0]; 2];
        for interp in [Interpolation::Bilinear, Interpolation::Nearest] {
            for mode in [FillMode::Reflect, FillMode::Constant, FillMode::Nearest, FillMode::Wrap, FillMode::Mirror] {
                assert_eq!(vals(&affine_transform(&x, &id, interp, mode, 0.0).unwrap()), data);
            }
        }
        // A shift by one column with a constant fill.
        let x = t(&[1.0, 2.0, 3.0], &[1, 1, 3, 1]);
        let shift = [[1.0, 0.0, -1.0, 0.0, 1.0, 0.0]];
        assert_eq!(
            vals(&affine_transform(&x, &shift, Interpolation::Bilinear, FillMode::Constant, 9.0).unwrap()),
            [9.0, 1.0, 2.0]
        );
        assert_eq!(
            vals(&affine_transform(&x, &shift, Interpolation::Bilinear, FillMode::Reflect, 0.0).unwrap()),
            [1.0, 1.0, 2.0]
        );
    }

    #[test]
    fn factors_are_checked() {
        assert!(Factor::One(0.5).check("factor", -1.0, 1.0).is_ok());
        let e = Factor::Range(0.5, 0.2).check("factor", -1.0, 1.0).unwrap_err();
        assert!(e.contains("received (0.5, 0.2)"), "{e}");
        let e = Factor::One(1.5).check("height_factor", -1.0, 1.0).unwrap_err();
        assert!(e.contains("height_factor") && e.contains("received 1.5"), "{e}");
        let f: Factor = serde_json::from_value(serde_json::json!([-0.2, 0.3])).unwrap();
        assert_eq!(f, Factor::Range(-0.2, 0.3));
        assert_eq!(serde_json::to_value(Factor::One(0.5)).unwrap(), serde_json::json!(0.5));
    }
}
