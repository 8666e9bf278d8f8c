//! Text and sequence input outside the model (tensors hold numbers):
//! [`pad_sequences`], Keras' `keras.utils.pad_sequences`, and
//! [`TextVectorization`], Keras' `TextVectorization` in `int` mode.

mod vectorization;

pub use vectorization::{Split, Standardize, TextVectorization, OOV_TOKEN, PADDING_TOKEN};

use strata_core::{DType, Device, Error, Result, Tensor};

/// Which end of a sequence padding goes to, or truncation cuts from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Side {
    /// The start (Keras' `"pre"`, the default for both).
    #[default]
    Pre,
    /// The end (Keras' `"post"`).
    Post,
}

/// The options of [`pad_sequences`], with Keras' defaults: every sequence
/// as long as the longest, padded and truncated at the start, padding 0.
#[derive(Clone, Debug, Default)]
pub struct PadSequences {
    maxlen: Option<usize>,
    padding: Side,
    truncating: Side,
    value: i64,
    device: Option<Device>,
}

impl PadSequences {
    /// Keras' defaults.
    pub fn new() -> Self {
        PadSequences::default()
    }

    /// The length of every row (default: the longest sequence's).
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Where shorter sequences are padded (default [`Side::Pre`]).
    pub fn padding(mut self, side: Side) -> Self {
        self.padding = side;
        self
    }

    /// Where longer sequences are cut (default [`Side::Pre`]: the start, so
    /// the last `maxlen` ids are kept).
    pub fn truncating(mut self, side: Side) -> Self {
        self.truncating = side;
        self
    }

    /// The padding id (default 0, what `Embedding(mask_zero)` masks).
    pub fn value(mut self, value: i64) -> Self {
        self.value = value;
        self
    }

    /// The device of the result (default: the one `STRATA_BACKEND` names).
    pub fn device(mut self, device: &Device) -> Self {
        self.device = Some(device.clone());
        self
    }
}

/// Token-id sequences of any lengths as one `i64` tensor `[sequences,
/// maxlen]`, padded and truncated as Keras' `pad_sequences` does.
///
/// ```
/// use strata::text::{pad_sequences, PadSequences, Side};
/// # fn main() -> strata::Result<()> {
/// let ids = [vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9, 10]];
/// let x = pad_sequences(&ids, &PadSequences::new().maxlen(4).padding(Side::Post))?;
/// assert_eq!(x.dims(), [3, 4]);
/// assert_eq!(x.to_vec::<i64>()?, [1, 2, 3, 0, 4, 5, 0, 0, 7, 8, 9, 10]);
/// # Ok(()) }
/// ```
pub fn pad_sequences<S: AsRef<[i64]>>(sequences: &[S], options: &PadSequences) -> Result<Tensor> {
    let maxlen = options.maxlen.unwrap_or_else(|| sequences.iter().map(|s| s.as_ref().len()).max().unwrap_or(0));
    let n = sequences.len().checked_mul(maxlen).ok_or_else(|| Error::SizeOverflow {
        op: "pad_sequences".into(),
        message: format!("{} sequences of length {maxlen} do not fit in usize", sequences.len()),
    })?;
    let mut out = Vec::new();
    out.try_reserve_exact(n).map_err(|_| Error::SizeOverflow {
        op: "pad_sequences".into(),
        message: format!("cannot allocate {} sequences of length {maxlen}", sequences.len()),
    })?;
    for s in sequences {
        let s = s.as_ref();
        let kept = match options.truncating {
            _ if s.len() <= maxlen => s,
            Side::Pre => &s[s.len() - maxlen..],
            Side::Post => &s[..maxlen],
        };
        let pad = std::iter::repeat_n(options.value, maxlen - kept.len());
        match options.padding {
            Side::Pre => out.extend(pad.chain(kept.iter().copied())),
            Side::Post => out.extend(kept.iter().copied().chain(pad)),
        }
    }
    let device = match &options.device {
        Some(d) => d.clone(),
        None => crate::backend::from_env()?,
    };
    let t = Tensor::new(out, [sequences.len(), maxlen], &device)?;
    debug_assert_eq!(t.dtype(), DType::I64);
    Ok(t)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Keras 3.15.1 gives for the same calls:
    ///
    /// ```text
    /// s = [[1,2,3],[4,5],[6,7,8,9,10],[]]
    /// keras.utils.pad_sequences(s, **kw).tolist()
    /// ```
    #[test]
    fn pads_and_truncates_as_keras() {
        let s: Vec<Vec<i64>> = vec![vec![1, 2, 3], vec![4, 5], vec![6, 7, 8, 9, 10], vec![]];
        let dev = strata_native::device();
        let run = |o: PadSequences| pad_sequences(&s, &o.device(&dev)).unwrap().to_vec::<i64>().unwrap();
        assert_eq!(run(PadSequences::new()), [0, 0, 1, 2, 3, 0, 0, 0, 4, 5, 6, 7, 8, 9, 10, 0, 0, 0, 0, 0]);
        assert_eq!(run(PadSequences::new().maxlen(4)), [0, 1, 2, 3, 0, 0, 4, 5, 7, 8, 9, 10, 0, 0, 0, 0]);
        assert_eq!(
            run(PadSequences::new().maxlen(4).padding(Side::Post)),
            [1, 2, 3, 0, 4, 5, 0, 0, 7, 8, 9, 10, 0, 0, 0, 0]
        );
        assert_eq!(
            run(PadSequences::new().maxlen(4).truncating(Side::Post)),
            [0, 1, 2, 3, 0, 0, 4, 5, 6, 7, 8, 9, 0, 0, 0, 0]
        );
        assert_eq!(
            run(PadSequences::new().maxlen(4).padding(Side::Post).truncating(Side::Post).value(-1)),
            [1, 2, 3, -1, 4, 5, -1, -1, 6, 7, 8, 9, -1, -1, -1, -1]
        );
        let none: Vec<Vec<i64>> = Vec::new();
        assert_eq!(pad_sequences(&none, &PadSequences::new().device(&dev)).unwrap().dims(), [0, 0]);
        let e = pad_sequences(&[[1i64]; 3], &PadSequences::new().maxlen(usize::MAX).device(&dev)).unwrap_err();
        assert!(e.to_string().contains("pad_sequences"), "{e}");
    }
}
