//! The file codec: safetensors bytes in and out, the `strata` metadata
//! (format and version), and the atomic write (a temporary file renamed
//! over the target, so a failed save never destroys an earlier file).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;

use half::{bf16, f16};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::Value;
use strata_core::{DType, Device, Error, Result, Tensor};

use super::SaveDType;

/// The `format` metadata key's value in every file strata writes.
pub const FORMAT: &str = "strata";
/// The version of the file layout (`format_version` metadata key).
pub const FORMAT_VERSION: &str = "1";
/// Every `format_version` this release reads.
pub(crate) const READABLE_VERSIONS: &[&str] = &["1"];
/// The prefix of the optimizer's slot variables in a saved file.
pub(crate) const OPTIMIZER_PREFIX: &str = "optimizer.";

/// Writes `bytes` to `path` through a temporary file and a rename.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let name = path.file_name().ok_or_else(|| {
        Error::io(path, "save to", std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))
    })?;
    let tmp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(Error::io(path, "save to", e));
    }
    Ok(())
}

/// The bytes of an `f32` tensor's values in `dtype`, little-endian. A
/// finite value beyond the dtype's range is an error naming the tensor (it
/// would become infinite).
fn float_bytes(name: &str, values: &[f32], dtype: SaveDType) -> Result<(Vec<u8>, Dtype)> {
    fn narrow<T: Copy>(
        name: &str,
        values: &[f32],
        dtype: SaveDType,
        convert: fn(f32) -> T,
        widen: fn(T) -> f32,
        le: fn(T) -> [u8; 2],
    ) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(values.len() * 2);
        for &v in values {
            let h = convert(v);
            if v.is_finite() && !widen(h).is_finite() {
                return Err(Error::msg(format!(
                    "cannot save `{name}` as {dtype:?}: it holds {v:e}, beyond {dtype:?}'s range (save as BF16 or F32)"
                )));
            }
            out.extend_from_slice(&le(h));
        }
        Ok(out)
    }
    Ok(match dtype {
        SaveDType::F32 => (values.iter().flat_map(|v| v.to_le_bytes()).collect(), Dtype::F32),
        SaveDType::F16 => (narrow(name, values, dtype, f16::from_f32, f16::to_f32, f16::to_le_bytes)?, Dtype::F16),
        SaveDType::BF16 => (narrow(name, values, dtype, bf16::from_f32, bf16::to_f32, bf16::to_le_bytes)?, Dtype::BF16),
    })
}

/// The values of a floating-point tensor from a file as `f32`; `None` for
/// other dtypes. `F64` values are rounded to the nearest `f32`.
pub(crate) fn float_values(view: &TensorView<'_>) -> Option<Vec<f32>> {
    let data = view.data();
    Some(match view.dtype() {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    })
}

/// The safetensors bytes for these tensors and metadata, the `f32` ones
/// stored as `dtype`.
pub(crate) fn encode(
    tensors: &[(String, Tensor)],
    metadata: HashMap<String, String>,
    dtype: SaveDType,
) -> Result<Vec<u8>> {
    let mut data: Vec<(String, Vec<u8>, Dtype, Vec<usize>)> = Vec::with_capacity(tensors.len());
    for (name, t) in tensors {
        let (bytes, dtype) = match t.dtype() {
            DType::F32 => float_bytes(name, &t.to_vec::<f32>()?, dtype)?,
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

pub(crate) fn base_metadata() -> HashMap<String, String> {
    HashMap::from([
        ("format".into(), FORMAT.into()),
        ("format_version".into(), FORMAT_VERSION.into()),
        ("strata_version".into(), env!("CARGO_PKG_VERSION").into()),
    ])
}

/// A file read into memory.
pub(crate) struct Loaded<'b> {
    pub(crate) path: &'b Path,
    pub(crate) file: SafeTensors<'b>,
    pub(crate) metadata: HashMap<String, String>,
}

pub(crate) fn read(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|e| Error::io(path, "read", e))
}

impl<'b> Loaded<'b> {
    pub(crate) fn parse(path: &'b Path, bytes: &'b [u8]) -> Result<Loaded<'b>> {
        let invalid = |e: safetensors::SafeTensorError| {
            Error::format(path, format!("not a valid safetensors file: {e}"), Some(Box::new(e)))
        };
        if bytes.is_empty() {
            return Err(Error::format(path, "not a valid safetensors file: the file is empty", None));
        }
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(invalid)?;
        let file = SafeTensors::deserialize(bytes).map_err(invalid)?;
        let metadata = header.metadata().clone().unwrap_or_default();
        Ok(Loaded { path, file, metadata })
    }

    pub(crate) fn error(&self, message: impl std::fmt::Display) -> Error {
        Error::format(self.path, message.to_string(), None)
    }

    /// Checks the `format` and `format_version` metadata.
    pub(crate) fn check_format(&self) -> Result<()> {
        match self.metadata.get("format").map(String::as_str) {
            Some(FORMAT) => {}
            Some(other) => {
                return Err(self.error(format!("format `{other}` is not a strata file (expected `{FORMAT}`)")))
            }
            None => {
                return Err(self.error(format!(
                    "no `format` metadata, so not a model saved by strata (expected `{FORMAT}`); weights from \
                     other tools load into a built model with Model::load_weights"
                )))
            }
        }
        match self.metadata.get("format_version") {
            Some(v) if READABLE_VERSIONS.contains(&v.as_str()) => Ok(()),
            Some(v) => Err(self.error(format!(
                "format_version `{v}` is not supported; this strata ({}) reads format_version {}",
                env!("CARGO_PKG_VERSION"),
                READABLE_VERSIONS.join(", ")
            ))),
            None => Err(self.error("no `format_version` metadata")),
        }
    }

    /// A JSON metadata entry, if present.
    pub(crate) fn json(&self, key: &str) -> Result<Option<Value>> {
        self.metadata
            .get(key)
            .map(|s| serde_json::from_str(s).map_err(|e| self.error(format!("the `{key}` metadata is not JSON: {e}"))))
            .transpose()
    }

    /// The tensor `name` on `device` as `f32` (converted from `F16`, `BF16`
    /// or `F64`), which must have shape `dims` when given.
    pub(crate) fn tensor(&self, name: &str, dims: Option<&[usize]>, device: &Device) -> Result<Tensor> {
        let view = self.file.tensor(name).map_err(|_| match dims {
            Some(d) => self.error(format!("no tensor named `{name}` (expected {d:?})")),
            None => self.error(format!("no tensor named `{name}`")),
        })?;
        match float_values(&view) {
            Some(values) if dims.is_none_or(|d| view.shape() == d) => {
                Tensor::new(values, view.shape().to_vec(), device)
            }
            _ => Err(self.error(format!(
                "`{name}` is {:?} {:?} in the file but {} F32 in the model (F32, F16, BF16 and F64 load)",
                view.shape(),
                view.dtype(),
                dims.map_or("f32".into(), |d| format!("{d:?}"))
            ))),
        }
    }

    /// The number of scalars in the model's (non-optimizer) tensors: the
    /// most the rebuilt model's weights may hold.
    pub(crate) fn weight_scalars(&self) -> usize {
        self.file
            .iter()
            .filter(|(n, _)| !n.starts_with(OPTIMIZER_PREFIX))
            .map(|(_, v)| v.shape().iter().product::<usize>())
            .fold(0usize, usize::saturating_add)
    }
}
