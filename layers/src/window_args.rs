//! Arguments shared by the layers that slide a window over images and
//! sequences (convolution, pooling): sizes per spatial axis, the padding
//! mode and the data format — each read and written as Keras configs write
//! them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use strata_core::{Error, Result, Tensor, Window};

/// One size per spatial axis (`kernel_size`, `strides`, `pool_size`,
/// `dilation_rate`): given as one number for every axis (`3`), an array
/// (`[3, 3]`) or a tuple (`(3, 1)`); written to configs as a list, read from
/// either form, as Keras does.
///
/// ```
/// use strata_layers::Dims;
/// assert_eq!(Dims::<2>::from(3).0, [3, 3]);
/// assert_eq!(Dims::<2>::from((2, 5)).0, [2, 5]);
/// assert_eq!(Dims::<1>::from([4]).0, [4]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Dims<const N: usize>(pub [usize; N]);

impl<const N: usize> Dims<N> {
    /// The sizes as a slice.
    pub fn as_slice(&self) -> &[usize] {
        &self.0
    }

    /// Whether every size is at least 1; else the message names `what`.
    pub(crate) fn positive(&self, what: &str) -> std::result::Result<(), String> {
        if self.0.contains(&0) {
            return Err(format!("{what} must be positive, received {:?}", self.0));
        }
        Ok(())
    }
}

impl<const N: usize> From<usize> for Dims<N> {
    fn from(v: usize) -> Self {
        Dims([v; N])
    }
}

impl<const N: usize> From<[usize; N]> for Dims<N> {
    fn from(v: [usize; N]) -> Self {
        Dims(v)
    }
}

impl From<(usize, usize)> for Dims<2> {
    fn from((a, b): (usize, usize)) -> Self {
        Dims([a, b])
    }
}

impl From<(usize, usize, usize)> for Dims<3> {
    fn from((a, b, c): (usize, usize, usize)) -> Self {
        Dims([a, b, c])
    }
}

impl<const N: usize> Serialize for Dims<N> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.0.as_slice().serialize(s)
    }
}

impl<'de, const N: usize> Deserialize<'de> for Dims<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(usize),
            Many(Vec<usize>),
        }
        match Form::deserialize(d)? {
            Form::One(v) => Ok(Dims([v; N])),
            Form::Many(v) => <[usize; N]>::try_from(v.as_slice()).map(Dims).map_err(|_| {
                serde::de::Error::custom(format!("expected {N} sizes (one per spatial axis), received {v:?}"))
            }),
        }
    }
}

/// Amounts `(before, after)` per spatial axis: the `padding` of
/// `ZeroPadding1D/2D` and the `cropping` of `Cropping1D/2D`.
///
/// Read as Keras reads them: one number for both sides of every axis (`2`),
/// for 1D a pair `(before, after)` (`[1, 2]`), for 2D a pair of symmetric
/// amounts `(height, width)` (`[1, 2]`) or two pairs `((top, bottom), (left,
/// right))` (`[[1, 2], [0, 3]]`). Written to configs as Keras writes them:
/// `[before, after]` for 1D, `[[top, bottom], [left, right]]` for 2D.
///
/// ```
/// use strata_layers::Margins;
/// assert_eq!(Margins::<1>::from(2).0, [(2, 2)]);
/// assert_eq!(Margins::<1>::from((1, 3)).0, [(1, 3)]);
/// assert_eq!(Margins::<2>::from((1, 2)).0, [(1, 1), (2, 2)]);
/// assert_eq!(Margins::<2>::from(((1, 2), (0, 3))).0, [(1, 2), (0, 3)]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Margins<const N: usize>(pub [(usize, usize); N]);

impl<const N: usize> From<usize> for Margins<N> {
    fn from(v: usize) -> Self {
        Margins([(v, v); N])
    }
}

impl From<(usize, usize)> for Margins<1> {
    fn from(p: (usize, usize)) -> Self {
        Margins([p])
    }
}

impl From<(usize, usize)> for Margins<2> {
    fn from((h, w): (usize, usize)) -> Self {
        Margins([(h, h), (w, w)])
    }
}

impl From<((usize, usize), (usize, usize))> for Margins<2> {
    fn from((h, w): ((usize, usize), (usize, usize))) -> Self {
        Margins([h, w])
    }
}

impl<const N: usize> From<[(usize, usize); N]> for Margins<N> {
    fn from(v: [(usize, usize); N]) -> Self {
        Margins(v)
    }
}

impl<const N: usize> Serialize for Margins<N> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        if N == 1 {
            [self.0[0].0, self.0[0].1].serialize(s)
        } else {
            let pairs: Vec<[usize; 2]> = self.0.iter().map(|&(a, b)| [a, b]).collect();
            pairs.serialize(s)
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for Margins<N> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Item {
            One(usize),
            Pair(Vec<usize>),
        }
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            One(usize),
            Many(Vec<Item>),
        }
        let bad = |v: String| {
            serde::de::Error::custom(format!(
                "expected one amount, {} or {N} pairs (before, after), received {v}",
                if N == 1 { "a pair (before, after)".to_string() } else { format!("{N} amounts") }
            ))
        };
        let pair = |v: &[usize]| -> Option<(usize, usize)> {
            match v {
                [a, b] => Some((*a, *b)),
                _ => None,
            }
        };
        let mut out = [(0, 0); N];
        match Form::deserialize(d)? {
            Form::One(v) => out = [(v, v); N],
            Form::Many(items) => {
                let nums: Option<Vec<usize>> =
                    items.iter().map(|i| if let Item::One(v) = i { Some(*v) } else { None }).collect();
                match nums {
                    Some(v) if N == 1 => out[0] = pair(&v).ok_or_else(|| bad(format!("{v:?}")))?,
                    Some(v) if v.len() == N => {
                        for (o, &a) in out.iter_mut().zip(&v) {
                            *o = (a, a);
                        }
                    }
                    Some(v) => return Err(bad(format!("{v:?}"))),
                    None => {
                        if items.len() != N {
                            return Err(bad(format!("{} items", items.len())));
                        }
                        for (o, item) in out.iter_mut().zip(&items) {
                            *o = match item {
                                Item::One(v) => (*v, *v),
                                Item::Pair(v) => pair(v).ok_or_else(|| bad(format!("{v:?}")))?,
                            };
                        }
                    }
                }
            }
        }
        Ok(Margins(out))
    }
}

/// How a window treats the borders: Keras' `padding` argument.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Padding {
    /// No padding: only windows that fit inside the input (the default).
    #[default]
    Valid,
    /// Zero padding so that the output has `ceil(input / stride)` positions,
    /// the extra cell of an odd total going after (TensorFlow's rule).
    Same,
    /// `Conv1D` only: `dilation · (kernel − 1)` cells of padding before the
    /// sequence, so that output step `t` sees only inputs up to `t`.
    Causal,
}

impl Padding {
    /// Keras' name: `"valid"`, `"same"` or `"causal"`.
    pub fn name(self) -> &'static str {
        match self {
            Padding::Valid => "valid",
            Padding::Same => "same",
            Padding::Causal => "causal",
        }
    }

    /// The `(before, after)` padding of one axis.
    pub fn amounts(self, input: usize, kernel: usize, stride: usize, dilation: usize) -> (usize, usize) {
        match self {
            Padding::Valid => (0, 0),
            Padding::Same => Window::same_padding(input, kernel, stride, dilation),
            Padding::Causal => (dilation.saturating_mul(kernel.saturating_sub(1)), 0),
        }
    }

    /// The output size along one axis, or `None` when the window does not
    /// fit (a valid window larger than the input).
    pub fn output_size(self, input: usize, kernel: usize, stride: usize, dilation: usize) -> Option<usize> {
        let (b, a) = self.amounts(input, kernel, stride, dilation);
        strata_core::WindowAxis::new(input, kernel, stride, dilation, b, a).ok().map(|w| w.output)
    }
}

impl FromStr for Padding {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "valid" => Ok(Padding::Valid),
            "same" => Ok(Padding::Same),
            "causal" => Ok(Padding::Causal),
            _ => Err(Error::invalid("padding", format!("unknown padding `{s}`; expected valid, same or causal"))),
        }
    }
}

impl fmt::Display for Padding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl crate::Resolve<Padding> for Padding {
    fn resolve(self) -> Result<Padding> {
        Ok(self)
    }
}

impl crate::Resolve<Padding> for &str {
    fn resolve(self) -> Result<Padding> {
        self.parse()
    }
}

/// Where the channels are: Keras' `data_format`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DataFormat {
    /// `(batch, spatial.., channels)` (the default).
    #[default]
    ChannelsLast,
    /// `(batch, channels, spatial..)`.
    ChannelsFirst,
}

impl DataFormat {
    /// Keras' name: `"channels_last"` or `"channels_first"`.
    pub fn name(self) -> &'static str {
        match self {
            DataFormat::ChannelsLast => "channels_last",
            DataFormat::ChannelsFirst => "channels_first",
        }
    }

    /// The position of the channel axis in a rank-`rank` input.
    pub fn channel_axis(self, rank: usize) -> usize {
        match self {
            DataFormat::ChannelsLast => rank - 1,
            DataFormat::ChannelsFirst => 1,
        }
    }

    /// The positions of the spatial axes in a rank-`rank` input.
    pub fn spatial_axes(self, rank: usize) -> std::ops::Range<usize> {
        match self {
            DataFormat::ChannelsLast => 1..rank - 1,
            DataFormat::ChannelsFirst => 2..rank,
        }
    }

    /// `x` with its channels moved last (a no-op for channels-last data).
    pub fn to_channels_last(self, x: &Tensor) -> Result<Tensor> {
        match self {
            DataFormat::ChannelsLast => Ok(x.clone()),
            DataFormat::ChannelsFirst => {
                let r = x.rank();
                let perm: Vec<usize> = std::iter::once(0).chain(2..r).chain(std::iter::once(1)).collect();
                x.permute(&perm)
            }
        }
    }

    /// A channels-last `y` back in this format.
    pub fn from_channels_last(self, y: &Tensor) -> Result<Tensor> {
        match self {
            DataFormat::ChannelsLast => Ok(y.clone()),
            DataFormat::ChannelsFirst => {
                let r = y.rank();
                let perm: Vec<usize> = std::iter::once(0).chain(std::iter::once(r - 1)).chain(1..r - 1).collect();
                y.permute(&perm)
            }
        }
    }
}

impl FromStr for DataFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "channels_last" => Ok(DataFormat::ChannelsLast),
            "channels_first" => Ok(DataFormat::ChannelsFirst),
            _ => Err(Error::invalid(
                "data_format",
                format!("unknown data_format `{s}`; expected channels_last or channels_first"),
            )),
        }
    }
}

impl crate::Resolve<DataFormat> for DataFormat {
    fn resolve(self) -> Result<DataFormat> {
        Ok(self)
    }
}

impl crate::Resolve<DataFormat> for &str {
    fn resolve(self) -> Result<DataFormat> {
        self.parse()
    }
}

/// A spec's spatial sizes and channels for a windowed layer of rank `n`
/// (`n` spatial axes), checked: `(batch, spatial.., channels)` in the given
/// format, `f32`, channels known.
pub(crate) fn window_input(x: &crate::TensorSpec, n: usize, format: DataFormat) -> Result<(Vec<Option<usize>>, usize)> {
    crate::layer::expect_float(x)?;
    let what = match (n, format) {
        (1, DataFormat::ChannelsLast) => "(batch, steps, channels)",
        (1, DataFormat::ChannelsFirst) => "(batch, channels, steps)",
        (2, DataFormat::ChannelsLast) => "(batch, height, width, channels)",
        (2, DataFormat::ChannelsFirst) => "(batch, channels, height, width)",
        (_, DataFormat::ChannelsLast) => "(batch, depth, height, width, channels)",
        (_, DataFormat::ChannelsFirst) => "(batch, channels, depth, height, width)",
    };
    crate::layer::expect_rank(x, n + 2, what)?;
    let Some(channels) = x.dims[format.channel_axis(n + 2)] else {
        return Err(Error::msg(format!("needs a known channel axis, received {x} in {what}")));
    };
    Ok((x.dims[format.spatial_axes(n + 2)].to_vec(), channels))
}

/// A spec in `format` from a batch size, spatial sizes and channels.
pub(crate) fn window_output(
    batch: Option<usize>,
    spatial: Vec<Option<usize>>,
    channels: usize,
    format: DataFormat,
    dtype: strata_core::DType,
) -> crate::TensorSpec {
    let dims = match format {
        DataFormat::ChannelsLast => {
            std::iter::once(batch).chain(spatial).chain(std::iter::once(Some(channels))).collect()
        }
        DataFormat::ChannelsFirst => [batch, Some(channels)].into_iter().chain(spatial).collect::<Vec<_>>(),
    };
    crate::TensorSpec::new(dims, dtype)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_read_numbers_and_lists() {
        let d: Dims<2> = serde_json::from_value(serde_json::json!(3)).unwrap();
        assert_eq!(d.0, [3, 3]);
        let d: Dims<2> = serde_json::from_value(serde_json::json!([2, 4])).unwrap();
        assert_eq!(d.0, [2, 4]);
        assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!([2, 4]));
        let e = serde_json::from_value::<Dims<2>>(serde_json::json!([1, 2, 3])).unwrap_err();
        assert!(e.to_string().contains("expected 2 sizes"), "{e}");
    }

    #[test]
    fn padding_modes() {
        assert_eq!(Padding::Same.amounts(6, 3, 2, 1), (0, 1));
        assert_eq!(Padding::Causal.amounts(6, 3, 1, 2), (4, 0));
        assert_eq!(Padding::Valid.output_size(6, 3, 2, 1), Some(2));
        assert_eq!(Padding::Same.output_size(6, 3, 2, 1), Some(3));
        assert_eq!(Padding::Causal.output_size(6, 3, 1, 2), Some(6));
        assert_eq!(Padding::Valid.output_size(2, 3, 1, 1), None);
        assert!("full".parse::<Padding>().unwrap_err().to_string().contains("valid, same or causal"));
    }
}
