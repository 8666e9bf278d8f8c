//! [`Model::load_weights`] and [`Model::load_weights_with`]: a file's
//! tensors matched to the model's weights by name (or through a
//! [mapping](LoadWeightsOptions::mapping), for files written by other
//! tools) and shape, every mismatch an error or, with
//! [`LoadWeightsOptions::skip_mismatch`], a line in the returned
//! [`LoadReport`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use strata_core::{Result, Tensor};

use super::codec::{float_values, read, Loaded, FORMAT, OPTIMIZER_PREFIX};
use crate::Model;

/// What a [mapping](LoadWeightsOptions::mapping) does to a file's tensor
/// before it is loaded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Transform {
    /// Loads the tensor as it is.
    #[default]
    Keep,
    /// Swaps the axes of a 2-D tensor: PyTorch's `nn.Linear.weight` is
    /// `[out, in]`, a [`Dense`](crate::layers::Dense) kernel `[in, out]`.
    /// On a tensor of another rank it is an error.
    Transpose,
}

/// A mapping from a file's tensor (name and shape) to the model's weight
/// it loads into, or `None` to leave the tensor out.
type Mapping<'f> = Box<dyn Fn(&str, &[usize]) -> Option<(String, Transform)> + 'f>;

/// How [`Model::load_weights_with`] matches a file's tensors to the
/// model's weights.
#[derive(Default)]
pub struct LoadWeightsOptions<'f> {
    skip_mismatch: bool,
    mapping: Option<Mapping<'f>>,
}

impl fmt::Debug for LoadWeightsOptions<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadWeightsOptions")
            .field("skip_mismatch", &self.skip_mismatch)
            .field("mapping", &self.mapping.as_ref().map(|_| "Fn(&str, &[usize])"))
            .finish()
    }
}

impl<'f> LoadWeightsOptions<'f> {
    /// Defaults: tensors are looked up by the model's weight names
    /// (`"{layer}.{weight}"`), every weight must be in the file with its
    /// shape, and every tensor of the file must be a weight.
    pub fn new() -> Self {
        Self::default()
    }

    /// Loads the weights that match by name and shape and skips the rest
    /// (Keras' `skip_mismatch`): weights missing from the file keep their
    /// values, tensors of another shape or dtype and tensors the model does
    /// not have are left out. The [`LoadReport`] lists each, with why.
    /// Default false: any mismatch is an error and nothing is loaded.
    pub fn skip_mismatch(mut self, skip: bool) -> Self {
        self.skip_mismatch = skip;
        self
    }

    /// Reads a file written by another tool: `f` gets each tensor's name
    /// and shape in the file and returns the model's weight it loads into
    /// and the [`Transform`] to apply on the way, or `None` to leave the
    /// tensor out (listed in [`LoadReport::ignored`]). Two tensors mapped
    /// to one weight, or a `Transpose` of a tensor that is not 2-D, is an
    /// error. Shapes are checked after the transform.
    ///
    /// Keras 3 names variables by path (`sequential/dense/kernel`, in
    /// strata's layout already); PyTorch by module (`0.weight`, `[out,
    /// in]`, to transpose):
    ///
    /// ```
    /// use strata::prelude::*;
    /// use strata::{LoadWeightsOptions, Transform};
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new()
    ///     .add(Input::new([4]))
    ///     .add(Dense::new(8).activation("relu"))
    ///     .add(Dense::new(3))
    ///     .build_on(&dev)?;
    ///
    /// // torch.nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3)):
    /// // `0.weight` [8, 4], `0.bias` [8], `2.weight` [3, 8], `2.bias` [3].
    /// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/torch_mlp.safetensors");
    /// let torch = |name: &str, _shape: &[usize]| {
    ///     let (module, param) = name.split_once('.')?;
    ///     let layer = match module {
    ///         "0" => "dense",
    ///         "2" => "dense_1",
    ///         _ => return None,
    ///     };
    ///     match param {
    ///         "weight" => Some((format!("{layer}.kernel"), Transform::Transpose)),
    ///         "bias" => Some((format!("{layer}.bias"), Transform::Keep)),
    ///         _ => None,
    ///     }
    /// };
    /// let report = model.load_weights_with(path, LoadWeightsOptions::new().mapping(torch))?;
    /// assert!(report.is_complete());
    /// assert_eq!(model.weight("dense.kernel")?.dims(), [4, 8]);
    ///
    /// // Keras 3: `sequential/dense/kernel` -> `dense.kernel`.
    /// let keras = |name: &str, _shape: &[usize]| {
    ///     Some((name.strip_prefix("sequential/")?.replace('/', "."), Transform::Keep))
    /// };
    /// # let _ = keras;
    /// # Ok(()) }
    /// ```
    pub fn mapping(mut self, f: impl Fn(&str, &[usize]) -> Option<(String, Transform)> + 'f) -> Self {
        self.mapping = Some(Box::new(f));
        self
    }
}

/// What [`Model::load_weights_with`] loaded and what it left out.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// The weights loaded, by the model's names, in the model's order.
    pub loaded: Vec<String>,
    /// What was not loaded: the model's weights missing from the file, in
    /// the model's order, then the file's tensors that did not fit, by name.
    pub skipped: Vec<Skipped>,
    /// The file's tensors the [mapping](LoadWeightsOptions::mapping) left
    /// out (returned `None` for), by name.
    pub ignored: Vec<String>,
}

impl LoadReport {
    /// Whether every weight was loaded, and every tensor used or ignored
    /// by the mapping.
    pub fn is_complete(&self) -> bool {
        self.skipped.is_empty()
    }
}

impl fmt::Display for LoadReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "loaded {} weight(s)", self.loaded.len())?;
        if !self.ignored.is_empty() {
            write!(f, "; ignored {} tensor(s) of the file", self.ignored.len())?;
        }
        if !self.skipped.is_empty() {
            write!(f, "; skipped {}:", self.skipped.len())?;
            for s in &self.skipped {
                write!(f, "\n  {s}")?;
            }
        }
        Ok(())
    }
}

/// One weight or tensor that [`Model::load_weights_with`] did not load.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The model's weight name (for a tensor that is no weight, the name it
    /// was looked up by).
    pub name: String,
    /// The tensor's name in the file, when a mapping chose `name` for it.
    pub file_name: Option<String>,
    /// Why it was not loaded.
    pub reason: SkipReason,
}

/// Why a weight or tensor was not loaded.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SkipReason {
    /// The model has this weight, the file no tensor for it.
    MissingInFile {
        /// The weight's shape in the model.
        model: Vec<usize>,
    },
    /// The file's tensor has another shape than the model's weight.
    ShapeDiffers {
        /// The weight's shape in the model.
        model: Vec<usize>,
        /// The tensor's shape in the file (after the mapping's transform).
        file: Vec<usize>,
    },
    /// The file has this tensor, the model no weight of that name.
    UnexpectedInFile,
    /// The file's tensor is not floating point (F32, F16, BF16 or F64).
    UnsupportedDType {
        /// Its dtype in the file, as safetensors names it (`"I32"`).
        dtype: String,
    },
}

impl fmt::Display for Skipped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match &self.file_name {
            Some(file) => format!("`{}` (`{file}` in the file)", self.name),
            None => format!("`{}`", self.name),
        };
        let file = if self.file_name.is_some() { "from the file, as mapped," } else { "in the file" };
        match &self.reason {
            SkipReason::MissingInFile { model } => {
                write!(f, "no tensor named {name} in the file (the model's weight is {model:?})")
            }
            SkipReason::ShapeDiffers { model, file: shape } => {
                write!(f, "{name} is {shape:?} {file} but {model:?} in the model")
            }
            SkipReason::UnexpectedInFile => write!(f, "{name} is in the file, but the model does not have it"),
            SkipReason::UnsupportedDType { dtype } => {
                write!(f, "{name} is {dtype} in the file; F32, F16, BF16 and F64 tensors load")
            }
        }
    }
}

/// The most mismatches one error message lists.
const LISTED: usize = 8;

impl Loaded<'_> {
    /// Matches the file's tensors to `model`'s weights by name (through
    /// `mapping` when given) and shape: the values that fit, converted to
    /// `f32` on the model's device, and a report of the rest. The
    /// optimizer's tensors of a strata file are passed over when
    /// `skip_optimizer`.
    fn match_weights(
        &self,
        model: &Model,
        skip_optimizer: bool,
        mapping: Option<&Mapping<'_>>,
    ) -> Result<(Vec<(String, Tensor)>, LoadReport)> {
        let weights = model.weights();
        let wanted: HashMap<&str, &[usize]> = weights.iter().map(|w| (w.name.as_str(), w.value.dims())).collect();
        let strata_file = self.metadata.get("format").is_some_and(|f| f == FORMAT);
        let mut names = self.file.names();
        names.sort_unstable();

        let mut report = LoadReport::default();
        // Weight name -> (file name, value or None when it did not fit).
        let mut claimed: HashMap<String, (&str, Option<Tensor>)> = HashMap::new();
        let mut file_side = Vec::new();
        for name in names {
            if skip_optimizer && strata_file && name.starts_with(OPTIMIZER_PREFIX) {
                continue;
            }
            let view = self.file.tensor(name).map_err(|e| self.error(e))?;
            let (target, transform) = match mapping {
                None => (name.to_string(), Transform::Keep),
                Some(f) => match f(name, view.shape()) {
                    Some(m) => m,
                    None => {
                        report.ignored.push(name.to_string());
                        continue;
                    }
                },
            };
            if let Some((other, _)) = claimed.get(&target) {
                return Err(self.error(format!("the mapping sends both `{other}` and `{name}` to `{target}`")));
            }
            let shape = match (transform, view.shape()) {
                (Transform::Keep, s) => s.to_vec(),
                (Transform::Transpose, &[r, c]) => vec![c, r],
                (Transform::Transpose, s) => {
                    return Err(self.error(format!(
                        "the mapping transposes `{name}` {s:?}, but Transform::Transpose needs a 2-D tensor"
                    )))
                }
            };
            let file_name = mapping.map(|_| name.to_string());
            let skip = |reason| Skipped { name: target.clone(), file_name: file_name.clone(), reason };
            let Some(&dims) = wanted.get(target.as_str()) else {
                file_side.push(skip(SkipReason::UnexpectedInFile));
                continue;
            };
            let value = if shape != dims {
                file_side.push(skip(SkipReason::ShapeDiffers { model: dims.to_vec(), file: shape }));
                None
            } else if let Some(values) = float_values(&view) {
                let values = match (transform, view.shape()) {
                    (Transform::Transpose, &[r, c]) => transpose(&values, r, c),
                    _ => values,
                };
                Some(Tensor::new(values, shape, model.device())?)
            } else {
                file_side.push(skip(SkipReason::UnsupportedDType { dtype: format!("{:?}", view.dtype()) }));
                None
            };
            claimed.insert(target, (name, value));
        }

        let mut values = Vec::with_capacity(claimed.len());
        for w in &weights {
            match claimed.remove(w.name.as_str()) {
                Some((_, Some(t))) => {
                    report.loaded.push(w.name.clone());
                    values.push((w.name.clone(), t));
                }
                // A tensor that did not fit is reported once, as such.
                Some((_, None)) => {}
                None => report.skipped.push(Skipped {
                    name: w.name.clone(),
                    file_name: None,
                    reason: SkipReason::MissingInFile { model: w.value.dims().to_vec() },
                }),
            }
        }
        report.skipped.extend(file_side);
        Ok((values, report))
    }

    /// Loads `model`'s weights from the file as `options` say: all of them,
    /// or with `skip_mismatch` those that fit. A mismatch otherwise is an error
    /// listing every one (with `hint` after the list) and leaves the model
    /// unchanged.
    pub(super) fn load_weights_into(
        &self,
        model: &Model,
        skip_optimizer: bool,
        options: &LoadWeightsOptions<'_>,
        hint: &str,
    ) -> Result<LoadReport> {
        let (values, report) = self.match_weights(model, skip_optimizer, options.mapping.as_ref())?;
        if !options.skip_mismatch && !report.skipped.is_empty() {
            let n = report.skipped.len();
            let mut listed: Vec<String> = report.skipped.iter().take(LISTED).map(ToString::to_string).collect();
            if n > LISTED {
                listed.push(format!("and {} more", n - LISTED));
            }
            let head = if n == 1 { String::new() } else { format!("{n} mismatches: ") };
            return Err(self.error(format!("{head}{}{hint}", listed.join("; "))));
        }
        model.set_weights_by_name(values.iter().map(|(n, t)| (n.as_str(), t)))?;
        Ok(report)
    }
}

impl Model {
    /// Loads weights saved by [`save_weights`](Self::save_weights) or
    /// [`save`](Self::save) (in any [`SaveDType`](crate::SaveDType); `F64`
    /// files load too, rounded) into this model as `f32`, on any backend,
    /// by name. Every weight of the model must be in the file with the same
    /// shape; a missing, misshapen or unexpected tensor is an error naming
    /// it (with both shapes) and leaves the model unchanged, as does a file
    /// that is not valid safetensors. A saved optimizer state is ignored.
    /// [`load_weights_with`](Self::load_weights_with) can skip mismatches.
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.load_weights_with(path, LoadWeightsOptions::new()).map(drop)
    }

    /// [`load_weights`](Self::load_weights) with options; returns what was
    /// loaded and what was skipped. With
    /// [`skip_mismatch`](LoadWeightsOptions::skip_mismatch), the weights
    /// that match by name and shape load and the rest are reported rather
    /// than an error — to reuse a trained body under a new head, say.
    ///
    /// ```
    /// use strata::prelude::*;
    /// use strata::{LoadWeightsOptions, SkipReason};
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let net = |classes| Sequential::new().add(Input::new([4])).add(Dense::new(8)).add(Dense::new(classes));
    /// let trained = net(10).seed(1).build_on(&dev)?;
    /// let path = std::env::temp_dir().join("strata_doc_skip_mismatch.safetensors");
    /// trained.save_weights(&path)?;
    ///
    /// let fresh = net(3).seed(2).build_on(&dev)?; // a new 3-class head
    /// let e = fresh.load_weights(&path).unwrap_err().to_string();
    /// assert!(e.contains("`dense_1.kernel` is [8, 10] in the file but [8, 3] in the model"), "{e}");
    ///
    /// let report = fresh.load_weights_with(&path, LoadWeightsOptions::new().skip_mismatch(true))?;
    /// assert_eq!(report.loaded, ["dense.kernel", "dense.bias"]);
    /// assert_eq!(report.skipped[0].name, "dense_1.bias");
    /// assert_eq!(report.skipped[1].reason, SkipReason::ShapeDiffers { model: vec![8, 3], file: vec![8, 10] });
    /// assert_eq!(fresh.weight("dense.kernel")?.to_vec::<f32>()?, trained.weight("dense.kernel")?.to_vec::<f32>()?);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    pub fn load_weights_with(&self, path: impl AsRef<Path>, options: LoadWeightsOptions<'_>) -> Result<LoadReport> {
        let path = path.as_ref();
        let bytes = read(path)?;
        let hint = " (LoadWeightsOptions::skip_mismatch loads the weights that match)";
        Loaded::parse(path, &bytes)?.load_weights_into(self, true, &options, hint)
    }
}

/// The `[c, r]` values of the row-major `[r, c]` matrix `values`.
fn transpose(values: &[f32], r: usize, c: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(values.len());
    for j in 0..c {
        out.extend((0..r).map(|i| values[i * c + j]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::transpose;

    #[test]
    fn transpose_swaps_rows_and_columns() {
        assert_eq!(transpose(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], 2, 3), [1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
        assert_eq!(transpose(&[], 0, 3), Vec::<f32>::new());
    }
}
