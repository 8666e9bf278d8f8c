//! [`TextVectorization`]: Keras' `TextVectorization` in `int` mode, outside
//! the model (strings are not tensors): standardize, split, learn a
//! vocabulary with `adapt`, map texts to padded token-id rows.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use strata_core::{Device, Error, Result, Tensor};

/// The padding token, id 0 (what `Embedding(mask_zero)` masks).
pub const PADDING_TOKEN: &str = "";
/// The out-of-vocabulary token, id 1.
pub const OOV_TOKEN: &str = "[UNK]";

/// How [`TextVectorization`] cleans a text before splitting it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Standardize {
    /// ASCII lowercase, then remove ASCII punctuation (Keras' default
    /// `"lower_and_strip_punctuation"`).
    #[default]
    LowerAndStripPunctuation,
    /// ASCII lowercase only (`"lower"`).
    Lower,
    /// Remove ASCII punctuation only (`"strip_punctuation"`).
    StripPunctuation,
    /// Leave the text as it is (`None`).
    None,
}

/// How [`TextVectorization`] cuts a text into tokens.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Split {
    /// On runs of whitespace, ignoring leading and trailing whitespace
    /// (Keras' default `"whitespace"`).
    #[default]
    Whitespace,
    /// Every character is a token (`"character"`).
    Character,
    /// The whole text is one token (`None`).
    None,
}

/// Maps texts to rows of token ids as Keras' `TextVectorization` does with
/// `output_mode="int"`: id 0 is padding (`""`), id 1 the out-of-vocabulary
/// token (`"[UNK]"`), then the vocabulary [`adapt`](Self::adapt) learned,
/// most frequent first (ties in reverse byte order, as Keras).
///
/// Rows are as long as [`output_sequence_length`](Self::output_sequence_length),
/// truncated or padded with 0 at the end, or else as long as the longest
/// text of the call. The vocabulary and the settings are saved to and
/// loaded from one JSON file.
///
/// ```
/// use strata::text::TextVectorization;
/// # fn main() -> strata::Result<()> {
/// let mut tv = TextVectorization::new().max_tokens(6).output_sequence_length(4);
/// tv.adapt(&["The cat sat.", "The dog sat!", "A cat, a dog, a bird"])?;
/// assert_eq!(tv.vocabulary(), ["", "[UNK]", "a", "the", "sat", "dog"]);
/// let ids = tv.call_on(&["the bird sat", "A dog"], &strata::backend::native())?;
/// assert_eq!(ids.dims(), [2, 4]);
/// assert_eq!(ids.to_vec::<i64>()?, [3, 1, 4, 0, 2, 5, 0, 0]);
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextVectorization {
    #[serde(default)]
    max_tokens: Option<usize>,
    #[serde(default)]
    standardize: Standardize,
    #[serde(default)]
    split: Split,
    #[serde(default)]
    output_sequence_length: Option<usize>,
    /// Every token by id, the padding and OOV tokens first.
    #[serde(default = "special_tokens")]
    vocabulary: Vec<String>,
    #[serde(skip)]
    index: HashMap<String, i64>,
}

fn special_tokens() -> Vec<String> {
    vec![PADDING_TOKEN.to_string(), OOV_TOKEN.to_string()]
}

impl Default for TextVectorization {
    fn default() -> Self {
        TextVectorization {
            max_tokens: None,
            standardize: Standardize::default(),
            split: Split::default(),
            output_sequence_length: None,
            vocabulary: special_tokens(),
            index: HashMap::new(),
        }
    }
}

impl TextVectorization {
    /// Keras' defaults: no size limit, lowercase and strip punctuation,
    /// split on whitespace, rows as long as the longest text; an empty
    /// vocabulary (every token is out of vocabulary) until
    /// [`adapt`](Self::adapt) or [`set_vocabulary`](Self::set_vocabulary).
    pub fn new() -> Self {
        Self::default()
    }

    /// At most `max_tokens` tokens in the vocabulary, counting the padding
    /// and OOV tokens (Keras' meaning); must be at least 2.
    pub fn max_tokens(mut self, max_tokens: usize) -> Self {
        self.max_tokens = Some(max_tokens);
        self
    }

    /// How texts are cleaned (default [`Standardize::LowerAndStripPunctuation`]).
    pub fn standardize(mut self, standardize: Standardize) -> Self {
        self.standardize = standardize;
        self
    }

    /// How texts are cut into tokens (default [`Split::Whitespace`]).
    pub fn split(mut self, split: Split) -> Self {
        self.split = split;
        self
    }

    /// Every row has exactly `length` ids (truncated or padded at the end).
    pub fn output_sequence_length(mut self, length: usize) -> Self {
        self.output_sequence_length = Some(length);
        self
    }

    /// The vocabulary by id: `""`, `"[UNK]"`, then the learned tokens.
    pub fn vocabulary(&self) -> &[String] {
        &self.vocabulary
    }

    /// How many ids the rows use: the `input_dim` of the `Embedding` after it.
    pub fn vocabulary_size(&self) -> usize {
        self.vocabulary.len()
    }

    fn check(&self) -> Result<()> {
        if let Some(n) = self.max_tokens {
            if n < 2 {
                return Err(Error::invalid(
                    "TextVectorization",
                    format!("max_tokens must be at least 2 (the padding and OOV tokens), received {n}"),
                ));
            }
        }
        Ok(())
    }

    /// The tokens of one text, after standardizing and splitting.
    pub fn tokens(&self, text: &str) -> Vec<String> {
        let lower = matches!(self.standardize, Standardize::Lower | Standardize::LowerAndStripPunctuation);
        let strip = matches!(self.standardize, Standardize::StripPunctuation | Standardize::LowerAndStripPunctuation);
        let clean: String = text
            .chars()
            .filter(|c| !(strip && c.is_ascii_punctuation()))
            .map(|c| if lower { c.to_ascii_lowercase() } else { c })
            .collect();
        match self.split {
            Split::Whitespace => clean.split_whitespace().map(str::to_string).collect(),
            Split::Character => clean.chars().map(String::from).collect(),
            Split::None => vec![clean],
        }
    }

    /// Learns the vocabulary from `corpus`: every token counted, the most
    /// frequent kept (up to `max_tokens` with the two special tokens), ties
    /// broken as Keras does (reverse byte order). Replaces any earlier
    /// vocabulary.
    pub fn adapt<S: AsRef<str>>(&mut self, corpus: &[S]) -> Result<()> {
        self.check()?;
        let mut counts: HashMap<String, u64> = HashMap::new();
        for text in corpus {
            for t in self.tokens(text.as_ref()) {
                *counts.entry(t).or_default() += 1;
            }
        }
        counts.remove(PADDING_TOKEN);
        counts.remove(OOV_TOKEN);
        let mut sorted: Vec<(String, u64)> = counts.into_iter().collect();
        sorted.sort_by(|(ta, ca), (tb, cb)| cb.cmp(ca).then_with(|| tb.as_bytes().cmp(ta.as_bytes())));
        if let Some(n) = self.max_tokens {
            sorted.truncate(n - 2);
        }
        self.set_vocabulary(sorted.into_iter().map(|(t, _)| t).collect())
    }

    /// Sets the vocabulary: the tokens in id order, with or without the
    /// leading `""` and `"[UNK]"` (as Keras' `set_vocabulary`). A repeated
    /// token, or a special token elsewhere, is an error.
    pub fn set_vocabulary(&mut self, tokens: Vec<String>) -> Result<()> {
        self.check()?;
        let learned: Vec<String> = if tokens.len() >= 2 && tokens[0] == PADDING_TOKEN && tokens[1] == OOV_TOKEN {
            tokens[2..].to_vec()
        } else {
            tokens
        };
        let mut vocabulary = special_tokens();
        let mut index = HashMap::with_capacity(learned.len());
        for (k, t) in learned.into_iter().enumerate() {
            if t == PADDING_TOKEN || t == OOV_TOKEN {
                return Err(Error::invalid(
                    "TextVectorization",
                    format!("the special token {t:?} may only lead the vocabulary, found at position {k}"),
                ));
            }
            if index.insert(t.clone(), (k + 2) as i64).is_some() {
                return Err(Error::invalid("TextVectorization", format!("the token {t:?} is in the vocabulary twice")));
            }
            vocabulary.push(t);
        }
        if let Some(n) = self.max_tokens {
            if vocabulary.len() > n {
                return Err(Error::invalid(
                    "TextVectorization",
                    format!("a vocabulary of {} tokens exceeds max_tokens = {n}", vocabulary.len()),
                ));
            }
        }
        self.vocabulary = vocabulary;
        self.index = index;
        Ok(())
    }

    /// The ids of one text's tokens (1 for a token not in the vocabulary,
    /// 0 for the empty token an unsplit empty text is), before padding.
    pub fn ids(&self, text: &str) -> Vec<i64> {
        let id = |t: &String| match self.index.get(t) {
            Some(&k) => k,
            None if t.is_empty() => 0,
            None => 1,
        };
        self.tokens(text).iter().map(id).collect()
    }

    /// The `i64` rows `[texts, length]` of `texts` on the device
    /// `STRATA_BACKEND` names.
    pub fn call<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor> {
        self.call_on(texts, &crate::backend::from_env()?)
    }

    /// [`call`](Self::call) on `device`.
    pub fn call_on<S: AsRef<str>>(&self, texts: &[S], device: &Device) -> Result<Tensor> {
        let rows: Vec<Vec<i64>> = texts.iter().map(|t| self.ids(t.as_ref())).collect();
        let mut options = super::PadSequences::new().padding(super::Side::Post).truncating(super::Side::Post);
        if let Some(n) = self.output_sequence_length {
            options = options.maxlen(n);
        }
        super::pad_sequences(&rows, &options.device(device))
    }

    /// Writes the settings and the vocabulary to `path` as JSON (through a
    /// temporary file, so a failed save leaves an earlier file intact).
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let json = serde_json::to_vec_pretty(self).map_err(|e| Error::msg(format!("TextVectorization: {e}")))?;
        crate::saving::write_atomic(path, &json)
    }

    /// Reads what [`save`](Self::save) wrote; a file that is not one is an
    /// error naming it.
    pub fn load(path: impl AsRef<Path>) -> Result<TextVectorization> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
        let mut tv: TextVectorization = serde_json::from_slice(&bytes).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: format!("not a TextVectorization file: {e}"),
            source: Some(Box::new(e)),
        })?;
        let tokens = std::mem::take(&mut tv.vocabulary);
        tv.set_vocabulary(tokens).map_err(|e| Error::Format {
            path: path.to_path_buf(),
            message: e.to_string(),
            source: None,
        })?;
        Ok(tv)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_problem() {
        let e = TextVectorization::new().max_tokens(1).adapt(&["a"]).unwrap_err().to_string();
        assert!(e.contains("max_tokens") && e.contains("received 1"), "{e}");
        let mut tv = TextVectorization::new();
        let e = tv.set_vocabulary(vec!["a".into(), "b".into(), "a".into()]).unwrap_err().to_string();
        assert!(e.contains("\"a\"") && e.contains("twice"), "{e}");
        let e = tv.set_vocabulary(vec!["a".into(), "[UNK]".into()]).unwrap_err().to_string();
        assert!(e.contains("[UNK]") && e.contains("position 1"), "{e}");
        let e = TextVectorization::new().max_tokens(3).set_vocabulary(vec!["a".into(), "b".into()]);
        assert!(e.unwrap_err().to_string().contains("exceeds max_tokens = 3"));
        let dir = std::env::temp_dir().join(format!("strata_tv_{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let bad = dir.join("bad.json");
        std::fs::write(&bad, b"{\"vocabulary\": 3}").unwrap();
        let e = TextVectorization::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("not a TextVectorization file"), "{e}");
        std::fs::write(&bad, b"{\"vocabulary\": [\"x\", \"x\"]}").unwrap();
        let e = TextVectorization::load(&bad).unwrap_err().to_string();
        assert!(e.contains("bad.json") && e.contains("twice"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn saves_and_loads_the_vocabulary_and_settings() {
        let mut tv = TextVectorization::new().max_tokens(10).split(Split::Character).output_sequence_length(3);
        tv.adapt(&["abca", "bd"]).unwrap();
        let path = std::env::temp_dir().join(format!("strata_tv_{}.json", std::process::id()));
        tv.save(&path).unwrap();
        let back = TextVectorization::load(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(back.vocabulary(), tv.vocabulary());
        assert_eq!(back.ids("dab!"), tv.ids("dab!"));
        let dev = crate::backend::native();
        assert_eq!(
            back.call_on(&["dab"], &dev).unwrap().to_vec::<i64>().unwrap(),
            tv.call_on(&["dab"], &dev).unwrap().to_vec::<i64>().unwrap()
        );
    }
}
