//! Keras 3's own files: [`load_model`] reads a `.keras` file,
//! [`load_weights`] a `.weights.h5` file, and [`Model::save_keras`] writes
//! a `.keras` file that Keras 3 loads with `keras.saving.load_model`
//! (cargo feature `keras`).
//!
//! A `.keras` file is a zip of `config.json` (the architecture),
//! `metadata.json` and `model.weights.h5` (the weights, HDF5). The config
//! maps onto strata's layers class by class: every built-in layer class
//! but `Lambda` reads and writes, Sequential and Functional models, shared
//! layers and models nested as layers included. The weights are matched by
//! Keras' own layout (`layers/<snake_case class>[_n]/vars/<i>`), every
//! dataset checked against its weight's shape.
//!
//! What is refused, with an error naming the layer: a class strata does not
//! have (the error lists those it has), a Keras `Lambda` (its Python
//! bytecode is never run), an argument strata does not implement at a
//! value other than Keras' default (a kernel constraint, `channels_first`),
//! a dtype policy other than `float32`. A malformed file (not a zip, a
//! missing entry, a config that is not JSON, HDF5 data the reader cannot
//! parse, a dataset whose declared size exceeds the file) is an error too,
//! never a panic; the HDF5 reader is the pure-Rust `hdf5-pure`, run under
//! `catch_unwind`, so no C library parses untrusted files.
//!
//! ```
//! use strata::prelude::*;
//! # fn main() -> strata::Result<()> {
//! let dev = backend::native();
//! let model = Sequential::new()
//!     .add(Input::new([4]))
//!     .add(Dense::new(8).activation("relu"))
//!     .add(Dense::new(2).activation("softmax"))
//!     .build_on(&dev)?;
//! let path = std::env::temp_dir().join("strata_doc_keras.keras");
//! model.save_keras(&path)?;                       // keras.saving.load_model reads this
//!
//! let again = strata::keras::load_model_on(&path, &dev)?;
//! let x = Tensor::ones([3, 4], DType::F32, &dev)?;
//! assert_eq!(again.predict(&x)?.to_vec::<f32>()?, model.predict(&x)?.to_vec::<f32>()?);
//! # std::fs::remove_file(&path).ok();
//! # Ok(()) }
//! ```

mod config;
mod h5;
mod weights;

use std::collections::{BTreeMap, HashMap};
use std::io::{Cursor, Read, Write};
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use serde_json::{json, Value};
use strata_core::{Device, Error, Result, Tensor};

use crate::models::ConfigLimits;
use crate::{BuildOptions, Model};
use config::{export_model, import_model, WeightGroups};
use h5::{H5Reader, H5Tree};
use weights::{slots, Slot};

/// The Keras version written into `metadata.json`: the release whose files
/// strata's tests read and whose loader they check strata's files with.
const KERAS_VERSION: &str = "3.15.1";

/// The most bytes a `.keras` entry may expand to beyond its compressed
/// size, as a factor (a zip bomb is refused before it is inflated).
const MAX_EXPANSION: u64 = 1000;

/// Loads a Keras 3 `.keras` file onto the default device
/// ([`backend::from_env`](crate::backend::from_env)). See
/// [`load_model_on`].
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    load_model_on(path, &crate::backend::from_env()?)
}

/// Loads a Keras 3 `.keras` file onto `device`: the architecture from
/// `config.json`, the weights from `model.weights.h5`. The model is not
/// compiled (compile it as in Keras); its predictions are Keras' within
/// float rounding. Every problem is an error naming the file and, for the
/// architecture, the layer.
pub fn load_model_on(path: impl AsRef<Path>, device: &Device) -> Result<Model> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let mut zip = open_zip(path, &bytes)?;
    let limits = ConfigLimits::default();
    let text = read_entry(path, &mut zip, "config.json", limits.max_json_bytes as u64)?;
    let text = String::from_utf8(text).map_err(|_| Error::format(path, "config.json is not UTF-8 text", None))?;
    limits.check_json(&text).map_err(|e| Error::format(path, format!("config.json: {e}"), None))?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::format(path, format!("config.json is not JSON: {e}"), Some(Box::new(e))))?;
    let (model_config, groups) = import_model(&value).map_err(|e| Error::format(path, e.to_string(), None))?;
    let h5_bytes = read_entry(path, &mut zip, "model.weights.h5", u64::MAX)?;
    let reader = H5Reader::parse(path, h5_bytes)?;
    // The weights may hold what the file holds (plus slack for a report by
    // name): a config asking for more fails before anything is allocated.
    let budget = (bytes.len() / 4).saturating_add(1 << 20);
    let build = BuildOptions { limit: Some(Arc::new(AtomicUsize::new(budget))), ..BuildOptions::new().device(device) };
    let model = Model::from_model_config(model_config, build).map_err(|e| Error::format(path, e.to_string(), None))?;
    assign(path, &model, &reader, &groups)?;
    Ok(model)
}

/// Loads a Keras 3 weights file (`model.save_weights("x.weights.h5")`, or
/// the `model.weights.h5` inside a `.keras` file, which is read when
/// `path` is one) into `model`, whose architecture must be the one the
/// weights were saved from: the weights are matched by Keras' layout, layer
/// by layer in the model's order, and every shape is checked before any
/// weight changes.
pub fn load_weights(model: &Model, path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    let h5_bytes = if bytes.starts_with(b"PK") {
        read_entry(path, &mut open_zip(path, &bytes)?, "model.weights.h5", u64::MAX)?
    } else {
        bytes
    };
    let reader = H5Reader::parse(path, h5_bytes)?;
    let mut groups = WeightGroups::new();
    export_model(&model.model_config(), &mut groups)?;
    assign(path, model, &reader, &groups)
}

fn open_zip<'b>(path: &Path, bytes: &'b [u8]) -> Result<zip::ZipArchive<Cursor<&'b [u8]>>> {
    if bytes.is_empty() {
        return Err(Error::format(path, "not a .keras file: the file is empty", None));
    }
    zip::ZipArchive::new(Cursor::new(bytes))
        .map_err(|e| Error::format(path, format!("not a .keras file (a zip archive): {e}"), Some(Box::new(e))))
}

fn read_entry(path: &Path, zip: &mut zip::ZipArchive<Cursor<&[u8]>>, name: &str, limit: u64) -> Result<Vec<u8>> {
    let mut entry = zip.by_name(name).map_err(|e| match e {
        zip::result::ZipError::FileNotFound => {
            Error::format(path, format!("not a Keras 3 .keras file: it has no `{name}`"), None)
        }
        e => Error::format(path, format!("{name}: {e}"), Some(Box::new(e))),
    })?;
    let size = entry.size();
    let most = limit.min(entry.compressed_size().saturating_mul(MAX_EXPANSION).saturating_add(1 << 20));
    if size > most {
        return Err(Error::format(
            path,
            format!("{name} declares {size} bytes, more than the limit of {most} for this entry"),
            None,
        ));
    }
    let mut out = Vec::with_capacity(size as usize);
    (&mut entry)
        .take(most.saturating_add(1))
        .read_to_end(&mut out)
        .map_err(|e| Error::format(path, format!("{name}: cannot be read from the archive: {e}"), Some(Box::new(e))))?;
    if out.len() as u64 != size {
        return Err(Error::format(
            path,
            format!("{name}: the archive declares {size} bytes, its data has {}", out.len()),
            None,
        ));
    }
    Ok(out)
}

/// Checks every dataset against its weight, then assigns them all.
fn assign(path: &Path, model: &Model, reader: &H5Reader, groups: &WeightGroups) -> Result<()> {
    let mut all: Vec<Slot> = Vec::new();
    slots(&model.layers(), groups, "", &mut all)?;
    let mut values: Vec<Tensor> = Vec::with_capacity(all.len());
    let mut per_group: BTreeMap<String, usize> = BTreeMap::new();
    for slot in &all {
        let Some((shape, data)) = reader.read(&slot.path)? else {
            return Err(Error::format(
                path,
                format!("model.weights.h5 has no `{}` for the weight `{}`", slot.path, slot.label),
                None,
            ));
        };
        let want = slot.value.shape().dims().to_vec();
        if shape != want {
            return Err(Error::format(
                path,
                format!(
                    "model.weights.h5: `{}` has shape {shape:?}, the weight `{}` is {want:?}",
                    slot.path, slot.label
                ),
                None,
            ));
        }
        values.push(Tensor::new(data, want, slot.value.device())?);
        if let Some((group, _)) = slot.path.rsplit_once('/') {
            *per_group.entry(group.to_string()).or_insert(0) += 1;
        }
    }
    for (group, used) in &per_group {
        let have = reader.datasets(group)?.len();
        if have != *used {
            return Err(Error::format(
                path,
                format!("model.weights.h5: `{group}` holds {have} variables, the model's layer has {used}"),
                None,
            ));
        }
    }
    for (slot, v) in all.iter().zip(&values) {
        slot.value.assign(v)?;
    }
    Ok(())
}

impl Model {
    /// Saves the model as a Keras 3 `.keras` file (cargo feature `keras`):
    /// `config.json` in Keras' layout, `metadata.json`, and the weights in
    /// `model.weights.h5`. Keras 3 loads it with
    /// `keras.saving.load_model(path)` and predicts what strata predicts;
    /// the optimizer state is not included (compile again in Keras).
    /// A `Lambda` layer (Rust code) or a custom layer class that Keras does
    /// not have cannot be written for Keras: the first is an error, the
    /// second is written by its class name and Keras reports it as unknown.
    ///
    /// The file is written to a temporary file first and renamed, so a
    /// failed save leaves an earlier file in place.
    pub fn save_keras(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let mut groups = WeightGroups::new();
        let config = export_model(&self.model_config(), &mut groups)?;
        let weights = self.keras_weights_h5(&groups)?;
        let metadata = json!({"keras_version": KERAS_VERSION, "date_saved": "", "saved_by": concat!("strata ", env!("CARGO_PKG_VERSION"))});
        let mut buf = Cursor::new(Vec::new());
        {
            let mut zip = zip::ZipWriter::new(&mut buf);
            let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
            let zerr = |e: zip::result::ZipError| Error::msg(format!("writing {}: {e}", path.display()));
            let ioerr = |e: std::io::Error| Error::io(path, "write", e);
            for (name, bytes) in [
                ("metadata.json", metadata.to_string().into_bytes()),
                ("config.json", config.to_string().into_bytes()),
                ("model.weights.h5", weights),
            ] {
                zip.start_file(name, stored).map_err(zerr)?;
                zip.write_all(&bytes).map_err(ioerr)?;
            }
            zip.finish().map_err(zerr)?;
        }
        crate::saving::write_atomic(path, &buf.into_inner())
    }

    /// Saves the weights alone as a Keras 3 weights file (Keras'
    /// `model.save_weights("x.weights.h5")`; cargo feature `keras`), which
    /// Keras' `model.load_weights` reads into the same architecture.
    pub fn save_keras_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut groups = WeightGroups::new();
        export_model(&self.model_config(), &mut groups)?;
        let bytes = self.keras_weights_h5(&groups)?;
        crate::saving::write_atomic(path.as_ref(), &bytes)
    }

    fn keras_weights_h5(&self, groups: &WeightGroups) -> Result<Vec<u8>> {
        let mut all: Vec<Slot> = Vec::new();
        slots(&self.layers(), groups, "", &mut all)?;
        let mut tree = H5Tree::default();
        let mut names: HashMap<String, String> = HashMap::new();
        for slot in all {
            let (group, dataset) = slot.path.rsplit_once('/').unwrap_or(("", &slot.path));
            names.insert(group.to_string(), slot.layer.clone());
            let shape = slot.value.shape().dims().to_vec();
            tree.group(group).dataset(dataset.to_string(), shape, slot.value.to_vec::<f32>()?);
        }
        for (group, layer) in names {
            tree.group(&group).set_name(&layer);
        }
        tree.group("vars").set_name(self.name());
        tree.encode()
    }
}
