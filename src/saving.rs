//! Saving to one `.safetensors` file: the weights as tensors named
//! `"{layer}.{weight}"`, and in the header's metadata the format version,
//! the architecture (`Model::get_config`) and the compile configuration.
//!
//! Writes go to a temporary file in the same directory which is then
//! renamed over the target, so a failed save never destroys an earlier file.

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;
use strata_core::{DType, Error, Result, Tensor};

use crate::Model;

/// The `format` metadata key's value in every file strata writes.
pub const FORMAT: &str = "strata";
/// The version of the file layout (`format_version` metadata key).
pub const FORMAT_VERSION: &str = "1";

fn io_error(path: &Path, what: &str, e: impl std::fmt::Display) -> Error {
    Error::msg(format!("cannot {what} {}: {e}", path.display()))
}

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| io_error(path, "save to", "not a file name"))?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_error(path, "save to", e));
    }
    Ok(())
}

/// The safetensors bytes for these tensors and metadata.
pub(crate) fn encode(tensors: &[(String, Tensor)], metadata: HashMap<String, String>) -> Result<Vec<u8>> {
    let mut data: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (bytes, dtype) = match t.dtype() {
            DType::F32 => (t.to_vec::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), Dtype::F32),
            DType::I64 => (t.to_vec::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect(), Dtype::I64),
        };
        data.push((name.clone(), bytes, dtype, t.dims().to_vec()));
    }
    let views = data
        .iter()
        .map(|(n, b, d, s)| Ok((n.as_str(), TensorView::new(*d, s.clone(), b).map_err(|e| Error::msg(e.to_string()))?)))
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata)).map_err(|e| Error::msg(format!("cannot encode safetensors: {e}")))
}

fn base_metadata() -> HashMap<String, String> {
    HashMap::from([("format".into(), FORMAT.into()), ("format_version".into(), FORMAT_VERSION.into())])
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
        let tensors: Vec<(String, Tensor)> = self.weights().into_iter().map(|w| (w.name, w.value)).collect();
        let bytes = encode(&tensors, base_metadata())?;
        write_atomic(path.as_ref(), &bytes)
    }

    /// Saves the weights with the architecture and the compile
    /// configuration in the file's metadata.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        self.save_with_compile_config(path.as_ref(), self.compile_config().as_ref())
    }

    pub(crate) fn save_with_compile_config(&self, path: &Path, compile: Option<&Value>) -> Result<()> {
        let tensors: Vec<(String, Tensor)> = self.weights().into_iter().map(|w| (w.name, w.value)).collect();
        let mut metadata = base_metadata();
        metadata.insert("model_config".into(), self.get_config().to_string());
        if let Some(c) = compile {
            metadata.insert("compile_config".into(), c.to_string());
        }
        let bytes = encode(&tensors, metadata)?;
        write_atomic(path, &bytes)
    }

    /// Loads weights saved by [`save_weights`](Self::save_weights) or
    /// [`save`](Self::save) into this model, on any backend. Every weight of
    /// the model must be in the file with the same shape; a missing,
    /// misshapen or unexpected tensor, or a file that is not valid
    /// safetensors, is an error and leaves the model unchanged.
    pub fn load_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| io_error(path, "read", e))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::msg(format!("{} is not a valid safetensors file: {e}", path.display())))?;
        let weights = self.weights();
        let mut values = Vec::with_capacity(weights.len());
        for w in &weights {
            let view = file.tensor(&w.name).map_err(|_| {
                Error::msg(format!("{}: no tensor named `{}` (expected {:?})", path.display(), w.name, w.value.dims()))
            })?;
            if view.shape() != w.value.dims() || view.dtype() != Dtype::F32 {
                return Err(Error::msg(format!(
                    "{}: `{}` is {:?} {:?} in the file but {:?} F32 in the model",
                    path.display(),
                    w.name,
                    view.shape(),
                    view.dtype(),
                    w.value.dims()
                )));
            }
            let data: Vec<f32> =
                view.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
            values.push(Tensor::new(data, view.shape().to_vec(), self.device())?);
        }
        let known: std::collections::HashSet<&str> = weights.iter().map(|w| w.name.as_str()).collect();
        let extra: Vec<&str> =
            file.names().into_iter().filter(|n| !known.contains(n) && !n.starts_with("optimizer.")).collect();
        if !extra.is_empty() {
            return Err(Error::msg(format!(
                "{}: tensors the model does not have: [{}]",
                path.display(),
                extra.join(", ")
            )));
        }
        self.set_weights(weights.iter().map(|w| w.name.as_str()).zip(values.iter()))
    }
}
