//! Saving to one `.safetensors` file, and [`load_model`].
//!
//! The file holds the weights as `f32` tensors (or `f16` / `bf16`, see
//! [`SaveDType`]) named `"{layer}.{weight}"`,
//! the optimizer's slot variables as `"optimizer.{weight}.{slot}"`, and in
//! the header's `__metadata__`: `format` (`"strata"`), `format_version`
//! (`"1"`), `strata_version`, `model_config` (the architecture,
//! [`Model::get_config`] as JSON), `compile_config` (optimizer, losses,
//! metrics, as JSON) and `optimizer_iterations` (the optimizer's step
//! count).
//!
//! Writes go to a temporary file in the same directory which is then
//! renamed over the target, so a failed save never destroys an earlier file.
//! Reading checks everything before building anything: a file that is not
//! valid safetensors, of another format or version, with a config that
//! cannot be rebuilt, or with missing, extra or misshapen tensors, is an
//! error naming the file and the problem.

use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use serde_json::Value;
use strata_core::{Device, Error, Result, Tensor};

use crate::models::{ConfigLimits, ModelConfig, TextError};
use crate::optimizers::Optimizer;
use crate::{BuildOptions, Model};

mod codec;
mod load_weights;

pub(crate) use codec::write_atomic;
use codec::{base_metadata, encode, read, Loaded, OPTIMIZER_PREFIX};
pub use codec::{FORMAT, FORMAT_VERSION};
pub use load_weights::{LoadReport, LoadWeightsOptions, SkipReason, Skipped, Transform};

/// The dtype [`Model::save_with`] and [`Model::save_weights_with`] store
/// the weights (and the optimizer's slots) in. Loading converts any of them
/// back to `f32`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum SaveDType {
    /// 32-bit floats: exact (the default).
    #[default]
    F32,
    /// IEEE half precision: half the size, 11 significant bits (relative
    /// error at most 2^-11), range ±65504 (a weight beyond it is an error
    /// when saving) and values below 2^-14 lose precision. Adam's second
    /// moments can be that small: to resume training, prefer `BF16`.
    F16,
    /// bfloat16: half the size, 8 significant bits (relative error at most
    /// 2^-8) and `f32`'s range.
    BF16,
}

/// How [`Model::save_with`] and [`Model::save_weights_with`] write a model.
#[derive(Clone, Debug)]
pub struct SaveOptions {
    include_optimizer: bool,
    dtype: SaveDType,
}

impl Default for SaveOptions {
    fn default() -> Self {
        SaveOptions { include_optimizer: true, dtype: SaveDType::F32 }
    }
}

impl SaveOptions {
    /// Defaults: the optimizer state is saved (when the model is compiled),
    /// in `f32`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to save the optimizer's state (its step count and slot
    /// variables), so that training resumes exactly where it stopped
    /// (default true). Without it, a loaded model starts a fresh optimizer.
    /// Weights-only files never hold it.
    pub fn include_optimizer(mut self, include: bool) -> Self {
        self.include_optimizer = include;
        self
    }

    /// The dtype of the saved weights and optimizer slots (default
    /// [`SaveDType::F32`]); `F16` and `BF16` halve the file.
    pub fn dtype(mut self, dtype: SaveDType) -> Self {
        self.dtype = dtype;
        self
    }
}

impl Loaded<'_> {
    /// Compiles `model` as `compile_config` says, and restores the
    /// optimizer's state when the file has it.
    fn compile(&self, model: &mut Model, config: &Value) -> Result<()> {
        let slots: Vec<&str> = self.file.names().into_iter().filter(|n| n.starts_with(OPTIMIZER_PREFIX)).collect();
        let state = match self.metadata.get("optimizer_iterations") {
            Some(it) => {
                let iterations: u64 = it
                    .parse()
                    .map_err(|_| self.error(format!("`optimizer_iterations` must be a count, received `{it}`")))?;
                let variables = slots
                    .iter()
                    .map(|n| Ok((n[OPTIMIZER_PREFIX.len()..].to_string(), self.tensor(n, None, model.device())?)))
                    .collect::<Result<Vec<_>>>()?;
                Some((iterations, variables))
            }
            None if !slots.is_empty() => {
                return Err(self.error("optimizer tensors without `optimizer_iterations` metadata"));
            }
            None => None,
        };
        model.compile_from_config(config, state).map_err(|e| self.error(e))
    }
}

impl Model {
    /// Saves the weights only, named `"{layer}.{weight}"`, to a
    /// `.safetensors` file (atomically: an existing file is replaced only
    /// once the new one is complete).
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).seed(1).build_on(&dev)?;
    /// let path = std::env::temp_dir().join("strata_doc_weights.safetensors");
    /// model.save_weights(&path)?;
    /// let other = Sequential::new().add(Input::new([3])).add(Dense::new(2)).seed(2).build_on(&dev)?;
    /// other.load_weights(&path)?;
    /// assert_eq!(other.weight("dense.kernel")?.to_vec::<f32>()?, model.weight("dense.kernel")?.to_vec::<f32>()?);
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_weights_with(path, SaveOptions::default())
    }

    /// [`save_weights`](Self::save_weights) in another dtype:
    /// `SaveOptions::new().dtype(SaveDType::BF16)` writes half the bytes.
    /// [`load_weights`](Self::load_weights) reads any of them back into
    /// `f32`. (`include_optimizer` does not apply: weights-only files never
    /// hold the optimizer.)
    ///
    /// ```
    /// use strata::prelude::*;
    /// use strata::{SaveDType, SaveOptions};
    /// # fn main() -> strata::Result<()> {
    /// let dev = backend::native();
    /// let model = Sequential::new().add(Input::new([3])).add(Dense::new(2)).seed(1).build_on(&dev)?;
    /// let path = std::env::temp_dir().join("strata_doc_weights_f16.safetensors");
    /// model.save_weights_with(&path, SaveOptions::new().dtype(SaveDType::F16))?;
    /// let other = Sequential::new().add(Input::new([3])).add(Dense::new(2)).seed(2).build_on(&dev)?;
    /// other.load_weights(&path)?;
    /// let (a, b) = (model.weight("dense.kernel")?.to_vec::<f32>()?, other.weight("dense.kernel")?.to_vec::<f32>()?);
    /// for (x, y) in a.iter().zip(&b) {
    ///     assert!((x - y).abs() <= x.abs() * 2f32.powi(-11)); // f16 keeps 11 significant bits
    /// }
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(()) }
    /// ```
    pub fn save_weights_with(&self, path: impl AsRef<Path>, options: SaveOptions) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self.weights().into_iter().map(|w| (w.name, w.value)).collect();
        let bytes = encode(&tensors, base_metadata(), options.dtype)?;
        write_atomic(path.as_ref(), &bytes)
    }

    /// Saves the whole model to one `.safetensors` file: the weights, the
    /// architecture, the compile configuration and the optimizer's state
    /// (see [`load_model`](crate::load_model) for the layout).
    /// [`load_model`](crate::load_model) reads it back.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with(path, SaveOptions::default())
    }

    /// [`save`](Self::save) with options: leaving the optimizer state out,
    /// or storing the weights and slots as `F16` / `BF16`
    /// ([`SaveOptions::dtype`]).
    pub fn save_with(&self, path: impl AsRef<Path>, options: SaveOptions) -> Result<()> {
        let guard = self.compiled.lock().map_err(|_| Error::msg("model lock poisoned"))?;
        let compiled = guard.as_ref().map(|c| (c.config(&self.output_names()).to_value(), &*c.optimizer));
        let optimizer = compiled.as_ref().and_then(|(_, o)| options.include_optimizer.then_some(*o));
        self.save_parts(path.as_ref(), compiled.as_ref().map(|(c, _)| c), optimizer, options.dtype)
    }

    /// Writes the weights, the architecture, `compile` (if any) and the
    /// optimizer's state (if given), in `dtype`. Used by `save` and by
    /// ModelCheckpoint, which runs while the compiled state is out of the
    /// model.
    pub(crate) fn save_parts(
        &self,
        path: &Path,
        compile: Option<&Value>,
        optimizer: Option<&dyn Optimizer>,
        dtype: SaveDType,
    ) -> Result<()> {
        let mut tensors: Vec<(String, Tensor)> = self.weights().into_iter().map(|w| (w.name, w.value)).collect();
        let mut metadata = base_metadata();
        metadata.insert("model_config".into(), self.get_config().to_string());
        if let Some(c) = compile {
            metadata.insert("compile_config".into(), c.to_string());
            if let Some(opt) = optimizer {
                metadata.insert("optimizer_iterations".into(), opt.iterations().to_string());
                tensors.extend(opt.variables().into_iter().map(|(n, t)| (format!("{OPTIMIZER_PREFIX}{n}"), t)));
            }
        }
        let bytes = encode(&tensors, metadata, dtype)?;
        write_atomic(path, &bytes)
    }
}

/// Room in a safetensors header, beside the model config, for the tensor
/// index and the other metadata (16 MiB: ~100,000 tensors).
const HEADER_SLACK: u64 = 16 << 20;

/// Loads a model saved by [`Model::save`] onto the default device
/// ([`backend::from_env`](crate::backend::from_env)): rebuilds the
/// architecture (custom layers and `Lambda` functions must be registered
/// first), loads the weights and, if the model was compiled, compiles it
/// again with the saved optimizer, losses and metrics and restores the
/// optimizer's state, so `fit` resumes where it stopped.
/// [`load_model_with`] picks the device and can leave the compile state
/// out (for a custom metric or loss object, which is saved by name only).
///
/// Every problem with the file is an error naming it: not safetensors
/// (empty, truncated, a bad header, offsets out of range, a tensor whose
/// size does not match its shape), not written by strata or by a newer
/// format version, a config that cannot be rebuilt (an unregistered
/// layer), missing, extra or misshapen tensors.
///
/// # File format
/// One safetensors file. Tensors: every weight as `f32` (or `f16` / `bf16`
/// when saved with [`SaveOptions::dtype`]; the header records each tensor's
/// dtype), named
/// `"{layer}.{weight}"` in Keras' layout (`dense.kernel` is `[in, units]`);
/// the optimizer's slots as `"optimizer.{layer}.{weight}.{slot}"`.
/// `__metadata__` (all strings): `format` = `"strata"`, `format_version` =
/// `"1"`, `strata_version`, `model_config` (JSON of
/// [`Model::get_config`]), and for a compiled model `compile_config` (JSON:
/// `optimizer`, `loss` and `metrics` by output name, `loss_weights`,
/// `weighted_metrics`) and `optimizer_iterations`.
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let mut model = Sequential::new()
///     .add(Input::new([4]))
///     .add(Dense::new(3).activation("softmax"))
///     .build_on(&dev)?;
/// model.compile(Adam::new(1e-3), "sparse_categorical_crossentropy", &["accuracy"])?;
/// let path = std::env::temp_dir().join("strata_doc_load_model.safetensors");
/// model.save(&path)?;
///
/// let again = strata::load_model_on(&path, &dev)?;
/// assert_eq!(again.get_config(), model.get_config());
/// assert_eq!(again.compile_config(), model.compile_config());
/// let x = Tensor::ones([2, 4], DType::F32, &dev)?;
/// assert_eq!(again.predict(&x)?.to_vec::<f32>()?, model.predict(&x)?.to_vec::<f32>()?);
///
/// std::fs::write(&path, b"not a model").unwrap();
/// assert!(strata::load_model(&path).is_err());
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    load_model_with(path, LoadOptions::new())
}

/// [`load_model`] onto `device` (a model saved on one backend loads on any
/// other); short for `load_model_with(path, LoadOptions::new().device(device))`.
pub fn load_model_on(path: impl AsRef<Path>, device: &Device) -> Result<Model> {
    load_model_with(path, LoadOptions::new().device(device))
}

/// How [`load_model_with`] loads a model.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    device: Option<Device>,
    compile: bool,
    config_limits: ConfigLimits,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions { device: None, compile: true, config_limits: ConfigLimits::default() }
    }
}

impl LoadOptions {
    /// Defaults: the default device, compiled as saved.
    pub fn new() -> Self {
        Self::default()
    }

    /// The device to load onto (default:
    /// [`backend::from_env`](crate::backend::from_env)).
    pub fn device(mut self, device: &Device) -> Self {
        self.device = Some(device.clone());
        self
    }

    /// Whether to compile the model as saved and restore the optimizer's
    /// state (default true, Keras' `compile=True`). With false the
    /// `compile_config` and the optimizer's tensors are not read and the
    /// model comes back uncompiled, with its architecture and weights: for
    /// inference, or when the compile state cannot be restored (a custom
    /// metric or loss object, saved by its name only).
    pub fn compile(mut self, compile: bool) -> Self {
        self.compile = compile;
        self
    }

    /// Bounds on the saved architecture (default [`ConfigLimits::default`],
    /// far above any real model): a file whose `model_config` goes beyond
    /// one is refused, naming the limit, before the model is built.
    pub fn config_limits(mut self, limits: ConfigLimits) -> Self {
        self.config_limits = limits;
        self
    }
}

/// [`load_model`] with options: the device, and whether to compile.
///
/// ```
/// use strata::prelude::*;
/// use strata::LoadOptions;
/// # fn main() -> strata::Result<()> {
/// let dev = backend::native();
/// let mut model = Sequential::new().add(Input::new([4])).add(Dense::new(1)).build_on(&dev)?;
/// model.compile(Adam::new(1e-3), "mse", ())?;
/// let path = std::env::temp_dir().join("strata_doc_load_model_with.safetensors");
/// model.save(&path)?;
///
/// let bare = strata::load_model_with(&path, LoadOptions::new().device(&dev).compile(false))?;
/// assert!(!bare.is_compiled());
/// assert_eq!(bare.get_config(), model.get_config());
/// # std::fs::remove_file(&path).ok();
/// # Ok(()) }
/// ```
pub fn load_model_with(path: impl AsRef<Path>, options: LoadOptions) -> Result<Model> {
    let device = match options.device {
        Some(d) => d,
        None => crate::backend::from_env()?,
    };
    let path = path.as_ref();
    let bytes = read(path)?;
    // The safetensors header holds the config: one far beyond the config
    // limit is refused before it is parsed.
    let limit = options.config_limits.max_json_bytes;
    if let Some(len) = bytes.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default())) {
        // (A length beyond the file is the safetensors reader's to report.)
        let in_file = len <= bytes.len().saturating_sub(8) as u64;
        if in_file && len > (limit as u64).saturating_add(HEADER_SLACK) {
            return Err(Error::format(
                path,
                format!(
                    "config: model: the file's header of {len} bytes exceeds the limit of {limit} bytes of config \
                     plus {HEADER_SLACK} of tensor index (ConfigLimits::max_json_bytes; raise it with \
                     LoadOptions::config_limits)"
                ),
                None,
            ));
        }
    }
    let loaded = Loaded::parse(path, &bytes)?;
    loaded.check_format()?;
    let text = loaded.metadata.get("model_config").ok_or_else(|| {
        loaded.error("no `model_config` metadata (saved with save_weights?); build the model and call load_weights")
    })?;
    // Read straight into the config type, after a streaming check of the
    // text against the limits: a crafted config is refused before it costs
    // memory or graph work.
    let config = ModelConfig::from_json_text(text, &options.config_limits).map_err(|e| match e {
        TextError::NotJson(e) => loaded.error(format!("the `model_config` metadata is not JSON: {e}")),
        TextError::Invalid(e) => loaded.error(e),
    })?;
    // The weights may hold what the file holds, plus some slack so that a
    // missing tensor is reported by name rather than as an exceeded budget;
    // a config asking for more fails before anything is allocated.
    let budget = loaded.weight_scalars().saturating_add(1 << 20);
    let build = BuildOptions {
        limit: Some(Arc::new(AtomicUsize::new(budget))),
        ..BuildOptions::new().device(&device).config_limits(options.config_limits)
    };
    let mut model = Model::from_model_config(config, build).map_err(|e| loaded.error(e))?;
    let compiled = loaded.metadata.contains_key("compile_config");
    loaded.load_weights_into(&model, compiled, &LoadWeightsOptions::new(), "")?;
    if options.compile {
        if let Some(compile) = loaded.json("compile_config")? {
            loaded.compile(&mut model, &compile).map_err(|e| {
                Error::msg(format!("{e} (LoadOptions::new().compile(false) loads the model uncompiled)"))
            })?;
        }
    }
    Ok(model)
}
