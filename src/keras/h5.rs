//! The HDF5 side of Keras' weight files (`model.weights.h5`), through the
//! pure-Rust `hdf5-pure` crate.
//!
//! Keras (through h5py) writes a small, regular subset of HDF5: groups
//! `layers/<name>/vars` holding float datasets `0`, `1`, ... Reading is
//! defensive: every call into the parser runs under `catch_unwind`, so a
//! malformed file that trips the parser is an `Err`, and a dataset is read
//! only when its declared size fits in the file (no allocation from a
//! forged shape).

use std::collections::BTreeMap;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

use hdf5_pure::{AttrValue, DType as H5DType, File, FileBuilder};
use strata_core::{Error, Result};

/// A Keras weights file, opened for reading.
pub(crate) struct H5Reader {
    file: File,
    len: usize,
    path: PathBuf,
}

/// Runs `f` on the parser, turning its panics into an error about `path`.
fn guarded<T>(path: &Path, what: &str, f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(_) => Err(Error::format(path, format!("model.weights.h5: {what}: the HDF5 data is malformed"), None)),
    }
}

impl H5Reader {
    /// Parses `bytes`; `path` names the file in errors.
    pub(crate) fn parse(path: &Path, bytes: Vec<u8>) -> Result<H5Reader> {
        let len = bytes.len();
        if !hdf5_pure::is_hdf5_bytes(&bytes) {
            return Err(Error::format(path, "model.weights.h5 is not an HDF5 file (no HDF5 signature)", None));
        }
        let file = guarded(path, "opening", || {
            File::from_bytes(bytes).map_err(|e| {
                Error::format(path, format!("model.weights.h5 is not a valid HDF5 file: {e}"), Some(Box::new(e)))
            })
        })?;
        Ok(H5Reader { file, len, path: path.to_path_buf() })
    }

    /// The names of the datasets in the group at `path` (empty when there is
    /// no such group).
    pub(crate) fn datasets(&self, path: &str) -> Result<Vec<String>> {
        guarded(&self.path, path, || {
            let Ok(group) = self.file.group(path) else { return Ok(Vec::new()) };
            group.datasets().map_err(|e| self.bad(path, e))
        })
    }

    /// The dataset at `path` as `f32` values and its shape; `None` when
    /// there is none.
    pub(crate) fn read(&self, path: &str) -> Result<Option<(Vec<usize>, Vec<f32>)>> {
        guarded(&self.path, path, || {
            let Ok(ds) = self.file.dataset(path) else { return Ok(None) };
            let shape = ds.shape().map_err(|e| self.bad(path, e))?;
            let dtype = ds.dtype().map_err(|e| self.bad(path, e))?;
            let width = match dtype {
                H5DType::F32 | H5DType::I32 | H5DType::U32 => 4,
                H5DType::F64 | H5DType::I64 | H5DType::U64 => 8,
                H5DType::I8 | H5DType::U8 => 1,
                H5DType::I16 | H5DType::U16 => 2,
                other => {
                    return Err(Error::format(
                        &self.path,
                        format!("model.weights.h5: `{path}` holds {other:?} values, expected numbers"),
                        None,
                    ))
                }
            };
            let count = shape
                .iter()
                .try_fold(1u64, |acc, &d| acc.checked_mul(d))
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| n.checked_mul(width).is_some_and(|b| b <= self.len))
                .ok_or_else(|| {
                    Error::format(
                        &self.path,
                        format!(
                            "model.weights.h5: `{path}` declares shape {shape:?}, more data than the {} bytes of the \
                             file",
                            self.len
                        ),
                        None,
                    )
                })?;
            let values = match dtype {
                H5DType::F32 => ds.read_f32().map_err(|e| self.bad(path, e))?,
                _ => ds.read_f64().map_err(|e| self.bad(path, e))?.into_iter().map(|v| v as f32).collect(),
            };
            if values.len() != count {
                return Err(Error::format(
                    &self.path,
                    format!("model.weights.h5: `{path}` has {} values for shape {shape:?}", values.len()),
                    None,
                ));
            }
            let shape = shape.iter().map(|&d| d as usize).collect();
            Ok(Some((shape, values)))
        })
    }

    fn bad(&self, path: &str, e: hdf5_pure::Error) -> Error {
        Error::format(&self.path, format!("model.weights.h5: `{path}`: {e}"), Some(Box::new(e)))
    }
}

/// A tree of groups and `f32` datasets, written as Keras' weights file.
#[derive(Default)]
pub(crate) struct H5Tree {
    groups: BTreeMap<String, H5Tree>,
    datasets: Vec<(String, Vec<usize>, Vec<f32>)>,
    name_attr: Option<String>,
}

impl H5Tree {
    /// The group at `path` (`a/b/c`), created on the way.
    pub(crate) fn group(&mut self, path: &str) -> &mut H5Tree {
        path.split('/').filter(|p| !p.is_empty()).fold(self, |t, part| t.groups.entry(part.to_string()).or_default())
    }

    /// Adds the dataset `name` to this group.
    pub(crate) fn dataset(&mut self, name: String, shape: Vec<usize>, values: Vec<f32>) {
        self.datasets.push((name, shape, values));
    }

    /// Sets the `name` attribute Keras writes on each `vars` group.
    pub(crate) fn set_name(&mut self, name: &str) {
        self.name_attr = Some(name.to_string());
    }

    /// The file's bytes.
    pub(crate) fn encode(&self) -> Result<Vec<u8>> {
        let mut builder = FileBuilder::new();
        for (name, shape, values) in &self.datasets {
            let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
            builder.create_dataset(name).with_f32_data(values).with_shape(&shape);
        }
        for (name, child) in &self.groups {
            let mut g = builder.create_group(name);
            child.fill(&mut g);
            builder.add_group(g.finish());
        }
        builder.finish().map_err(|e| Error::msg(format!("writing model.weights.h5: {e}")))
    }

    fn fill(&self, g: &mut hdf5_pure::GroupBuilder) {
        if let Some(n) = &self.name_attr {
            g.set_attr("name", AttrValue::String(n.clone()));
        }
        for (name, shape, values) in &self.datasets {
            let shape: Vec<u64> = shape.iter().map(|&d| d as u64).collect();
            g.create_dataset(name).with_f32_data(values).with_shape(&shape);
        }
        for (name, child) in &self.groups {
            let mut c = g.create_group(name);
            child.fill(&mut c);
            g.add_group(c.finish());
        }
    }
}
