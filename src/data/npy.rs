//! NumPy `.npy` and `.npz` files: read row by row, written once.
//!
//! [`NpyArray::open`] opens a file reading only its header; [`NpySource`]
//! gathers batches of rows from one or more such arrays with positional
//! reads, so a training set larger than memory streams from disk (through
//! the kernel's page cache, which is not the process' memory) while the
//! model trains: the process holds the batches, not the file. (Why not a
//! memory mapping: see [`NpyArray::open_mapped`].) [`write()`] saves a
//! tensor; [`NpyWriter`] appends chunk by chunk, for converting data that
//! does not fit in memory.
//!
//! dtypes: `f2`, `f4`, `f8` are read as `f32`; `i1`..`i8`, `u1`..`u8` and
//! `b1` (bool) as `i64` (labels, token ids), or as `f32` with
//! [`NpyArray::as_f32`] (`uint8` images scaled by `1/255`). Both byte
//! orders are read. Fortran-ordered arrays, structured and object dtypes
//! are errors that say so.
//!
//! ```
//! use strata::prelude::*;
//! use strata::data::{npy, Dataset, Source};
//! # fn main() -> strata::Result<()> {
//! let dir = std::env::temp_dir().join(format!("strata-npy-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, "create", e))?;
//! let dev = backend::native();
//! let x = Tensor::new((0..12).map(|v| v as f32).collect::<Vec<_>>(), [6, 2], &dev)?;
//! let y = Tensor::new(vec![0i64, 1, 0, 1, 0, 1], [6], &dev)?;
//! npy::write(dir.join("x.npy"), &x)?;
//! npy::write(dir.join("y.npy"), &y)?;
//!
//! let source = npy::NpySource::open(dir.join("x.npy"), dir.join("y.npy"))?.on(&dev);
//! let batch = source.gather(&[4, 1])?;
//! assert_eq!(batch.x[0].to_vec::<f32>()?, vec![8.0, 9.0, 2.0, 3.0]);
//! assert_eq!(batch.y[0].to_vec::<i64>()?, vec![0, 1]);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok(()) }
//! ```

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_core::{DType, Device, Error, Result, Tensor};

use super::{Batch, Bytes, Source, CHUNK};

const MAGIC: &[u8] = b"\x93NUMPY";

/// The element type of a `.npy` file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Float,
    Int,
    Uint,
    Bool,
}

/// Files up to this size are read into memory by [`NpyArray::open`].
const SMALL_FILE: u64 = 16 << 20;

/// `<f4`.
const F32_LE: Descr = Descr { kind: Kind::Float, size: 4, big_endian: false };

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Descr {
    kind: Kind,
    size: usize,
    big_endian: bool,
}

impl Descr {
    fn parse(s: &str) -> std::result::Result<Descr, String> {
        let b = s.as_bytes();
        if b.len() < 3 {
            return Err(format!("unsupported dtype `{s}`"));
        }
        let big_endian = match b[0] {
            b'<' | b'|' | b'=' => false,
            b'>' => true,
            _ => return Err(format!("unsupported dtype `{s}` (expected a byte-order mark first)")),
        };
        let size: usize = s[2..].parse().map_err(|_| format!("unsupported dtype `{s}`"))?;
        let kind = match (b[1], size) {
            (b'f', 2 | 4 | 8) => Kind::Float,
            (b'i', 1 | 2 | 4 | 8) => Kind::Int,
            (b'u', 1 | 2 | 4 | 8) => Kind::Uint,
            (b'b', 1) => Kind::Bool,
            _ => {
                return Err(format!(
                    "unsupported dtype `{s}`; strata reads float (f2, f4, f8), integer (i1-i8, u1-u8) and bool arrays"
                ))
            }
        };
        Ok(Descr { kind, size, big_endian })
    }

    /// The element as `f64` (exact for every supported integer up to 2^53).
    #[inline]
    fn get_f64(&self, b: &[u8]) -> f64 {
        macro_rules! num {
            ($t:ty, $n:expr) => {{
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                if self.big_endian {
                    <$t>::from_be_bytes(a) as f64
                } else {
                    <$t>::from_le_bytes(a) as f64
                }
            }};
        }
        match (self.kind, self.size) {
            (Kind::Float, 2) => {
                let bits =
                    if self.big_endian { u16::from_be_bytes([b[0], b[1]]) } else { u16::from_le_bytes([b[0], b[1]]) };
                f64::from(half::f16::from_bits(bits).to_f32())
            }
            (Kind::Float, 4) => num!(f32, 4),
            (Kind::Float, _) => num!(f64, 8),
            (Kind::Int, 1) => f64::from(b[0] as i8),
            (Kind::Int, 2) => num!(i16, 2),
            (Kind::Int, 4) => num!(i32, 4),
            (Kind::Int, _) => num!(i64, 8),
            (Kind::Uint, 1) | (Kind::Bool, _) => f64::from(b[0]),
            (Kind::Uint, 2) => num!(u16, 2),
            (Kind::Uint, 4) => num!(u32, 4),
            (Kind::Uint, _) => num!(u64, 8),
        }
    }

    /// The integer element as `i64`, `None` when it does not fit.
    #[inline]
    fn get_i64(&self, b: &[u8]) -> Option<i64> {
        macro_rules! int {
            ($t:ty, $n:expr) => {{
                let mut a = [0u8; $n];
                a.copy_from_slice(&b[..$n]);
                if self.big_endian {
                    <$t>::from_be_bytes(a)
                } else {
                    <$t>::from_le_bytes(a)
                }
            }};
        }
        Some(match (self.kind, self.size) {
            (Kind::Int, 1) => i64::from(b[0] as i8),
            (Kind::Int, 2) => i64::from(int!(i16, 2)),
            (Kind::Int, 4) => i64::from(int!(i32, 4)),
            (Kind::Int, _) => int!(i64, 8),
            (Kind::Uint, 1) | (Kind::Bool, _) => i64::from(b[0]),
            (Kind::Uint, 2) => i64::from(int!(u16, 2)),
            (Kind::Uint, 4) => i64::from(int!(u32, 4)),
            (Kind::Uint, _) => i64::try_from(int!(u64, 8)).ok()?,
            (Kind::Float, _) => return None,
        })
    }
}

/// One array of a `.npy` file (or a `.npz` member), read row by row from
/// the file.
#[derive(Clone)]
pub struct NpyArray {
    name: Arc<str>,
    bytes: Arc<Bytes>,
    offset: u64,
    descr: Descr,
    shape: Vec<usize>,
    row_bytes: usize,
    as_f32: Option<f32>,
}

impl std::fmt::Debug for NpyArray {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NpyArray").field("name", &self.name).field("shape", &self.shape).finish_non_exhaustive()
    }
}

fn format_err(name: &str, message: impl Into<String>) -> Error {
    Error::format(name, message, None)
}

/// The header's dictionary: `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
fn parse_header(name: &str, header: &str) -> Result<(Descr, bool, Vec<usize>)> {
    let bad = |what: &str| format_err(name, format!("not a valid .npy header ({what}): {}", header.trim_end()));
    let value_after = |key: &str| -> Result<&str> {
        let at = header.find(&format!("'{key}'")).or_else(|| header.find(&format!("\"{key}\"")));
        let at = at.ok_or_else(|| bad(&format!("no `{key}`")))?;
        let rest = &header[at + key.len() + 2..];
        let rest = rest.trim_start().strip_prefix(':').ok_or_else(|| bad(&format!("no `:` after `{key}`")))?;
        Ok(rest.trim_start())
    };
    let d = value_after("descr")?;
    let quote = d.chars().next().filter(|c| *c == '\'' || *c == '"').ok_or_else(|| {
        format_err(name, format!("structured dtypes are not supported (descr: {})", d.split('}').next().unwrap_or(d)))
    })?;
    let d = &d[1..];
    let end = d.find(quote).ok_or_else(|| bad("unterminated descr"))?;
    let descr = Descr::parse(&d[..end]).map_err(|m| format_err(name, m))?;
    let f = value_after("fortran_order")?;
    let fortran = if f.starts_with("True") {
        true
    } else if f.starts_with("False") {
        false
    } else {
        return Err(bad("fortran_order is neither True nor False"));
    };
    let s = value_after("shape")?;
    let s = s.strip_prefix('(').ok_or_else(|| bad("shape is not a tuple"))?;
    let end = s.find(')').ok_or_else(|| bad("unterminated shape"))?;
    let shape = s[..end]
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.trim_end_matches('L').parse::<usize>().map_err(|_| bad(&format!("shape entry `{p}`"))))
        .collect::<Result<Vec<_>>>()?;
    Ok((descr, fortran, shape))
}

impl NpyArray {
    /// Opens the `.npy` file at `path`; nothing is read but its header.
    /// Rows are read with positional reads when batches ask for them, so
    /// the process holds only the batches, whatever the file's size (see
    /// [`open_mapped`](Self::open_mapped) for the alternative).
    ///
    /// A file of at most 16 MiB (labels, sample weights) is read into
    /// memory whole instead: one read at open saves a system call per row.
    pub fn open(path: impl AsRef<Path>) -> Result<NpyArray> {
        let path = path.as_ref();
        let bytes = Bytes::file(path)?;
        let bytes = if bytes.len() <= SMALL_FILE {
            let mut all = vec![0u8; bytes.len() as usize];
            bytes.read_at(0, &mut all).map_err(|e| Error::io(path, "read", e))?;
            Bytes::Owned(all)
        } else {
            bytes
        };
        Self::from_bytes(path.display().to_string(), Arc::new(bytes), 0)
    }

    /// Opens the `.npy` file at `path` memory-mapped: rows are copied from
    /// the mapping without a system call each (about 2× faster per row
    /// here), but every page read stays resident until the array is
    /// dropped, so a pass over the file makes the process' resident size
    /// the file's (the pages are clean file pages the kernel may reclaim).
    /// Changing the file while it is mapped is not supported.
    pub fn open_mapped(path: impl AsRef<Path>) -> Result<NpyArray> {
        let path = path.as_ref();
        Self::from_bytes(path.display().to_string(), Arc::new(Bytes::mapped(path)?), 0)
    }

    /// Parses the array starting at byte `start` of `bytes`.
    fn from_bytes(name: String, bytes: Arc<Bytes>, start: u64) -> Result<NpyArray> {
        let available = bytes.len().saturating_sub(start);
        let read = |at: u64, n: usize| -> Result<Vec<u8>> {
            let mut buf = vec![0u8; n];
            bytes
                .read_at(start + at, &mut buf)
                .map_err(|e| format_err(&name, format!("cannot read the header: {e}")))?;
            Ok(buf)
        };
        let prefix = read(0, available.min(12) as usize)?;
        let b = &prefix[..];
        if b.len() < 10 || &b[..6] != MAGIC {
            return Err(format_err(&name, "not a .npy file (no \\x93NUMPY magic)"));
        }
        let (major, minor) = (b[6], b[7]);
        let (header_len, header_start) = match major {
            1 => (u64::from(u16::from_le_bytes([b[8], b[9]])), 10u64),
            2 | 3 if b.len() >= 12 => (u64::from(u32::from_le_bytes([b[8], b[9], b[10], b[11]])), 12),
            _ => return Err(format_err(&name, format!("unsupported .npy version {major}.{minor}"))),
        };
        let data_start = header_start + header_len;
        if data_start > available {
            return Err(format_err(&name, format!("truncated: the header needs {header_len} bytes")));
        }
        let header_bytes = read(header_start, header_len as usize)?;
        let header =
            std::str::from_utf8(&header_bytes).map_err(|_| format_err(&name, "the .npy header is not text"))?;
        let (descr, fortran, shape) = parse_header(&name, header)?;
        if fortran && shape.iter().filter(|&&d| d > 1).count() > 1 {
            return Err(format_err(
                &name,
                "Fortran-ordered arrays are not supported; save it with np.ascontiguousarray(a) first",
            ));
        }
        if shape.is_empty() {
            return Err(format_err(&name, "a 0-d array has no sample axis; expected at least one dimension"));
        }
        let overflow = || Error::SizeOverflow { op: name.clone(), message: format!("shape {shape:?} overflows") };
        let row_elems = shape[1..].iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(overflow)?;
        let row_bytes = row_elems.checked_mul(descr.size).ok_or_else(overflow)?;
        let need = row_bytes.checked_mul(shape[0]).ok_or_else(overflow)?;
        let have = available - data_start;
        if have < need as u64 {
            return Err(format_err(
                &name,
                format!(
                    "truncated: shape {} of {}-byte elements needs {need} data bytes, the file has {have}",
                    crate::utils::shape_tuple(&shape),
                    descr.size
                ),
            ));
        }
        Ok(NpyArray { name: name.into(), bytes, offset: start + data_start, descr, shape, row_bytes, as_f32: None })
    }

    /// The array's shape (samples first).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The number of rows (samples).
    pub fn len(&self) -> usize {
        self.shape[0]
    }

    /// Whether the array has no rows.
    pub fn is_empty(&self) -> bool {
        self.shape[0] == 0
    }

    /// The dtype the rows are read as: `f32` for float files (and after
    /// [`as_f32`](Self::as_f32)), `i64` for integer and bool files.
    pub fn dtype(&self) -> DType {
        if self.as_f32.is_some() || self.descr.kind == Kind::Float {
            DType::F32
        } else {
            DType::I64
        }
    }

    /// Reads the values as `f32` multiplied by `scale` (`1.0 / 255.0` for
    /// `uint8` images), whatever the file's dtype.
    pub fn as_f32(mut self, scale: f32) -> NpyArray {
        self.as_f32 = Some(scale);
        self
    }

    /// The rows at `indices`, in that order, as one tensor on `device`.
    pub fn rows(&self, indices: &[usize], device: &Device) -> Result<Tensor> {
        let n = self.len();
        if let Some(&bad) = indices.iter().find(|&&i| i >= n) {
            return Err(Error::invalid("npy", format!("{}: row {bad} is out of range for {n} rows", self.name)));
        }
        let mut shape = self.shape.clone();
        shape[0] = indices.len();
        // Little-endian f32 on a little-endian machine: read straight into
        // the tensor's buffer.
        if cfg!(target_endian = "little") && self.descr == F32_LE && self.as_f32.is_none_or(|s| s == 1.0) {
            let mut out = vec![0f32; indices.len() * (self.row_bytes / 4)];
            self.read_rows(indices, bytemuck::cast_slice_mut(&mut out))?;
            return Tensor::new(out, shape, device);
        }
        let rb = self.row_bytes;
        let total = indices.len().checked_mul(rb).ok_or_else(|| Error::SizeOverflow {
            op: self.name.to_string(),
            message: format!("{} rows of {rb} bytes", indices.len()),
        })?;
        let mut raw = vec![0u8; total];
        self.read_rows(indices, &mut raw)?;
        let size = self.descr.size;
        let d = self.descr;
        if self.dtype() == DType::F32 {
            let mut out: Vec<f32> = match (d.kind, size, d.big_endian) {
                (Kind::Float, 4, false) => {
                    raw.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
                }
                (Kind::Uint, 1, _) => raw.iter().map(|&v| f32::from(v)).collect(),
                _ => raw.chunks_exact(size).map(|c| d.get_f64(c) as f32).collect(),
            };
            if let Some(scale) = self.as_f32.filter(|&s| s != 1.0) {
                out.iter_mut().for_each(|v| *v *= scale);
            }
            Tensor::new(out, shape, device)
        } else {
            let out = raw
                .chunks_exact(size)
                .enumerate()
                .map(|(e, c)| {
                    d.get_i64(c).ok_or_else(|| {
                        let row = indices[e * size / rb.max(1)];
                        Error::invalid("npy", format!("{}: row {row} holds a value beyond the int64 range", self.name))
                    })
                })
                .collect::<Result<Vec<i64>>>()?;
            Tensor::new(out, shape, device)
        }
    }

    /// The bytes of the rows at `indices` into `out` (`indices.len()` rows
    /// long), one read per run of consecutive rows.
    fn read_rows(&self, indices: &[usize], out: &mut [u8]) -> Result<()> {
        let rb = self.row_bytes;
        let mut k = 0;
        while k < indices.len() {
            let first = indices[k];
            let mut run = 1;
            while k + run < indices.len() && indices[k + run] == first + run {
                run += 1;
            }
            let at = self.offset + (first * rb) as u64;
            self.bytes
                .read_at(at, &mut out[k * rb..(k + run) * rb])
                .map_err(|e| format_err(&self.name, format!("cannot read row {first}: {e}")))?;
            k += run;
        }
        Ok(())
    }

    /// Every row, as one tensor on `device` (reads the whole array into
    /// memory).
    pub fn to_tensor(&self, device: &Device) -> Result<Tensor> {
        self.rows(&(0..self.len()).collect::<Vec<_>>(), device)
    }
}

/// Reads the `.npy` file at `path` into a tensor on `device`.
pub fn read(path: impl AsRef<Path>, device: &Device) -> Result<Tensor> {
    NpyArray::open(path)?.to_tensor(device)
}

/// The arrays of a `.npz` archive (`np.savez` / `np.savez_compressed`), by
/// name without the `.npy` suffix. Members stored uncompressed (`np.savez`)
/// are read from the file row by row, as [`NpyArray::open`] reads;
/// compressed members (`np.savez_compressed`) are decompressed into memory.
pub fn read_npz(path: impl AsRef<Path>) -> Result<Vec<(String, NpyArray)>> {
    let path = path.as_ref();
    let name = path.display().to_string();
    let bytes = Arc::new(Bytes::file(path)?);
    let zip_err = |e: zip::result::ZipError| Error::format(path, format!("not a valid .npz archive: {e}"), None);
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, "open", e))?;
    let mut archive = zip::ZipArchive::new(std::io::BufReader::new(file)).map_err(zip_err)?;
    let mut out = Vec::with_capacity(archive.len());
    for i in 0..archive.len() {
        let mut member = archive.by_index(i).map_err(zip_err)?;
        let member_name = member.name().map_err(zip_err)?.to_string();
        let Some(key) = member_name.strip_suffix(".npy") else { continue };
        let full = format!("{name}[{key}]");
        let stored = member.compression() == zip::CompressionMethod::Stored;
        let array = match (stored, member.data_start()) {
            (true, Some(start)) => {
                if start > bytes.len() {
                    return Err(format_err(&full, "member offset past the end of the archive"));
                }
                NpyArray::from_bytes(full, bytes.clone(), start)?
            }
            _ => {
                let mut buf = Vec::new();
                member.read_to_end(&mut buf).map_err(|e| format_err(&full, format!("cannot decompress: {e}")))?;
                NpyArray::from_bytes(full, Arc::new(Bytes::Owned(buf)), 0)?
            }
        };
        out.push((key.to_string(), array));
    }
    Ok(out)
}

/// The header for `dtype` and `shape`, padded to `len` bytes in all (a
/// multiple of 64; at least what the text needs).
fn header(dtype: DType, shape: &[usize], min_len: usize) -> Vec<u8> {
    let descr = match dtype {
        DType::F32 => "<f4",
        DType::I64 => "<i8",
    };
    let dims = match shape {
        [n] => format!("{n},"),
        _ => shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", "),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': ({dims}), }}");
    let total = (10 + dict.len() + 1).max(min_len).div_ceil(64) * 64;
    let mut out = Vec::with_capacity(total);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&((total - 10) as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out.resize(total - 1, b' ');
    out.push(b'\n');
    out
}

/// Writes `tensor` (f32 as `<f4`, i64 as `<i8`) to a `.npy` file NumPy
/// reads with `np.load`. The file is written under a temporary name and
/// renamed into place, so a failed write leaves any earlier file intact.
pub fn write(path: impl AsRef<Path>, tensor: &Tensor) -> Result<()> {
    let dims = tensor.dims().to_vec();
    let (row, n) = match dims.split_first() {
        Some((&n, rest)) => (rest.to_vec(), n),
        None => return Err(Error::invalid("npy::write", "a scalar tensor has no rows; reshape it to [1]")),
    };
    let mut w = NpyWriter::create(path, tensor.dtype(), &row)?;
    if n > 0 {
        w.append(tensor)?;
    }
    w.finish()
}

/// Writes a `.npy` file row chunk by row chunk: the header's row count is
/// filled in by [`finish`](Self::finish). Until then the data goes to a
/// temporary file beside the target, removed if the writer is dropped
/// unfinished.
pub struct NpyWriter {
    path: PathBuf,
    tmp: PathBuf,
    file: Option<BufWriter<File>>,
    dtype: DType,
    row_shape: Vec<usize>,
    rows: usize,
    header_len: usize,
}

impl NpyWriter {
    /// A writer of rows of shape `row_shape` (the dims after the first).
    pub fn create(path: impl AsRef<Path>, dtype: DType, row_shape: &[usize]) -> Result<NpyWriter> {
        let path = path.as_ref().to_path_buf();
        let name = path.file_name().ok_or_else(|| {
            Error::io(&path, "write", std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a file name"))
        })?;
        let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
        let mut file = BufWriter::with_capacity(1 << 20, File::create(&tmp).map_err(|e| Error::io(&tmp, "create", e))?);
        // Room for the largest row count, so finish can rewrite in place.
        let mut shape = vec![usize::MAX];
        shape.extend_from_slice(row_shape);
        let h = header(dtype, &shape, 0);
        file.write_all(&h).map_err(|e| Error::io(&tmp, "write", e))?;
        Ok(NpyWriter {
            path,
            tmp,
            file: Some(file),
            dtype,
            row_shape: row_shape.to_vec(),
            rows: 0,
            header_len: h.len(),
        })
    }

    /// Appends the rows of `tensor` (shape `[n, ..row_shape]`, the
    /// writer's dtype).
    pub fn append(&mut self, tensor: &Tensor) -> Result<()> {
        if tensor.dtype() != self.dtype || tensor.dims().get(1..) != Some(&self.row_shape[..]) {
            return Err(Error::invalid(
                "NpyWriter::append",
                format!(
                    "expected {} rows of shape {}, received {} {}",
                    self.dtype,
                    crate::utils::shape_tuple(&self.row_shape),
                    tensor.dtype(),
                    crate::utils::shape_tuple(tensor.dims())
                ),
            ));
        }
        let file = self.file.as_mut().ok_or_else(|| Error::msg("NpyWriter: already finished"))?;
        let io = |e| Error::io(&self.tmp, "write", e);
        let bytes: Vec<u8> = match self.dtype {
            DType::F32 => tensor.to_vec::<f32>()?.into_iter().flat_map(f32::to_le_bytes).collect(),
            DType::I64 => tensor.to_vec::<i64>()?.into_iter().flat_map(i64::to_le_bytes).collect(),
        };
        file.write_all(&bytes).map_err(io)?;
        self.rows += tensor.dims()[0];
        Ok(())
    }

    /// Rows written so far.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Writes the final header and renames the file into place.
    pub fn finish(mut self) -> Result<()> {
        let mut file = self.file.take().ok_or_else(|| Error::msg("NpyWriter: already finished"))?;
        let mut shape = vec![self.rows];
        shape.extend_from_slice(&self.row_shape);
        let h = header(self.dtype, &shape, self.header_len);
        let result = (|| {
            if h.len() != self.header_len {
                return Err(std::io::Error::other("the header grew"));
            }
            file.flush()?;
            let mut f = file.into_inner().map_err(|e| e.into_error())?;
            f.seek(SeekFrom::Start(0))?;
            f.write_all(&h)?;
            f.sync_all()?;
            std::fs::rename(&self.tmp, &self.path)
        })();
        result.map_err(|e| Error::io(&self.path, "write", e))
    }
}

impl Drop for NpyWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() || self.tmp.exists() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// `.npy` arrays as a [`Source`]: inputs, targets and optional
/// sample weights with the same number of rows.
#[derive(Clone, Debug)]
pub struct NpySource {
    x: Vec<NpyArray>,
    y: Vec<NpyArray>,
    sample_weight: Option<NpyArray>,
    device: Device,
}

impl NpySource {
    /// A source of one input file and one target file.
    pub fn open(x: impl AsRef<Path>, y: impl AsRef<Path>) -> Result<NpySource> {
        NpySource::new(vec![NpyArray::open(x)?], vec![NpyArray::open(y)?])
    }

    /// A source of these input and target arrays (`y` empty for
    /// prediction), on the default device
    /// ([`backend::from_env`](crate::backend::from_env)); see
    /// [`on`](Self::on).
    pub fn new(x: Vec<NpyArray>, y: Vec<NpyArray>) -> Result<NpySource> {
        let Some(first) = x.first() else { return Err(Error::invalid("NpySource", "no input arrays given")) };
        let n = first.len();
        for a in x.iter().chain(&y) {
            if a.len() != n {
                return Err(Error::invalid(
                    "NpySource",
                    format!("{} has {n} rows but {} has {}", first.name, a.name, a.len()),
                ));
            }
        }
        Ok(NpySource { x, y, sample_weight: None, device: crate::backend::from_env()? })
    }

    /// Per-sample weights from a one-dimensional array.
    pub fn with_sample_weight(mut self, weights: NpyArray) -> Result<NpySource> {
        if weights.shape().len() != 1 || weights.len() != self.x[0].len() {
            return Err(Error::invalid(
                "NpySource",
                format!(
                    "sample weights must have shape ({},), {} has {}",
                    self.x[0].len(),
                    weights.name,
                    crate::utils::shape_tuple(weights.shape())
                ),
            ));
        }
        self.sample_weight = Some(weights.as_f32(1.0));
        Ok(self)
    }

    /// The batches' tensors are made on `device`.
    pub fn on(mut self, device: &Device) -> NpySource {
        self.device = device.clone();
        self
    }
}

impl Source for NpySource {
    fn len(&self) -> usize {
        self.x[0].len()
    }

    fn gather(&self, indices: &[usize]) -> Result<Batch> {
        let rows = |a: &NpyArray| a.rows(indices, &self.device);
        Ok(Batch {
            x: self.x.iter().map(rows).collect::<Result<_>>()?,
            y: self.y.iter().map(rows).collect::<Result<_>>()?,
            sample_weight: self.sample_weight.as_ref().map(rows).transpose()?,
        })
    }
}

/// [`Source::cache_to_disk`]: every sample written once, chunk by chunk.
pub(crate) fn cache_source<S: Source>(source: &S, dir: &Path) -> Result<NpySource> {
    let n = source.len();
    if n == 0 {
        return Err(Error::invalid("cache_to_disk", "the source holds no samples"));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, "create", e))?;
    let first = source.gather(&(0..CHUNK.min(n)).collect::<Vec<_>>())?;
    let device = first.x[0].device().clone();
    let writer = |name: String, t: &Tensor| NpyWriter::create(dir.join(name), t.dtype(), &t.dims()[1..]);
    let mut xs = first.x.iter().enumerate().map(|(i, t)| writer(format!("x{i}.npy"), t)).collect::<Result<Vec<_>>>()?;
    let mut ys = first.y.iter().enumerate().map(|(i, t)| writer(format!("y{i}.npy"), t)).collect::<Result<Vec<_>>>()?;
    let mut sw = first.sample_weight.as_ref().map(|t| writer("sample_weight.npy".into(), t)).transpose()?;
    let mut chunk = Some(first);
    let mut start = 0;
    while start < n {
        let batch = match chunk.take() {
            Some(b) => b,
            None => source.gather(&(start..(start + CHUNK).min(n)).collect::<Vec<_>>())?,
        };
        for (w, t) in xs.iter_mut().zip(&batch.x) {
            w.append(t)?;
        }
        for (w, t) in ys.iter_mut().zip(&batch.y) {
            w.append(t)?;
        }
        if let (Some(w), Some(t)) = (sw.as_mut(), &batch.sample_weight) {
            w.append(t)?;
        }
        start += CHUNK;
    }
    let nx = xs.len();
    let ny = ys.len();
    for w in xs.into_iter().chain(ys) {
        w.finish()?;
    }
    let has_sw = sw.is_some();
    if let Some(w) = sw {
        w.finish()?;
    }
    let open = |name: String| NpyArray::open(dir.join(name));
    let x = (0..nx).map(|i| open(format!("x{i}.npy"))).collect::<Result<Vec<_>>>()?;
    let y = (0..ny).map(|i| open(format!("y{i}.npy"))).collect::<Result<Vec<_>>>()?;
    let mut out = NpySource::new(x, y)?.on(&device);
    if has_sw {
        out = out.with_sample_weight(open("sample_weight.npy".into())?)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy_bytes(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        npy_raw(&format!("'{descr}'"), shape, data)
    }

    fn npy_raw(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
        let dict = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
        let mut h = dict.into_bytes();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(b' ');
        }
        h.push(b'\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(data);
        out
    }

    fn parse(bytes: Vec<u8>) -> Result<NpyArray> {
        NpyArray::from_bytes("t.npy".into(), Arc::new(Bytes::Owned(bytes)), 0)
    }

    #[test]
    fn every_supported_dtype_reads_the_same_values() {
        let dev = crate::backend::native();
        let vals = [1.0f64, -2.0, 3.5];
        let f8: Vec<u8> = vals.iter().flat_map(|v| v.to_le_bytes()).collect();
        let f4be: Vec<u8> = vals.iter().flat_map(|v| (*v as f32).to_be_bytes()).collect();
        let f2: Vec<u8> = vals.iter().flat_map(|v| half::f16::from_f64(*v).to_bits().to_le_bytes()).collect();
        for (descr, data) in [("<f8", f8), (">f4", f4be), ("<f2", f2)] {
            let a = parse(npy_bytes(descr, "(3,)", &data)).unwrap();
            assert_eq!(a.to_tensor(&dev).unwrap().to_vec::<f32>().unwrap(), vec![1.0, -2.0, 3.5], "{descr}");
        }
        let i4: Vec<u8> = [7i32, -1, 300].iter().flat_map(|v| v.to_le_bytes()).collect();
        let a = parse(npy_bytes("<i4", "(3,)", &i4)).unwrap();
        assert_eq!(a.dtype(), DType::I64);
        assert_eq!(a.to_tensor(&dev).unwrap().to_vec::<i64>().unwrap(), vec![7, -1, 300]);
        let u1 = parse(npy_bytes("|u1", "(2, 2)", &[0, 255, 51, 102])).unwrap().as_f32(1.0 / 255.0);
        let got = u1.rows(&[1, 0], &dev).unwrap();
        assert_eq!(got.dims(), &[2, 2]);
        let want = [0.2f32, 0.4, 0.0, 1.0];
        assert!(got.to_vec::<f32>().unwrap().iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-6));
        let big: Vec<u8> = u64::MAX.to_le_bytes().to_vec();
        let e = parse(npy_bytes("<u8", "(1,)", &big)).unwrap().to_tensor(&dev).unwrap_err().to_string();
        assert!(e.contains("beyond the int64 range"), "{e}");
    }

    #[test]
    fn bad_files_are_errors_that_say_what_is_wrong() {
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"PK\x03\x04 not npy".to_vec(), "no \\x93NUMPY magic"),
            (npy_bytes("<f4", "(4, 3)", &[0; 40]), "needs 48 data bytes, the file has 40"),
            (npy_bytes("<c8", "(1,)", &[0; 8]), "unsupported dtype `<c8`"),
            (npy_bytes("|O", "(1,)", &[0; 8]), "unsupported dtype `|O`"),
            (npy_bytes("<f4", "()", &[0; 4]), "0-d array"),
            (npy_bytes("<f4", "(2, x)", &[0; 8]), "shape entry `x`"),
            (npy_bytes("<f4", "(99999999999999999999, 2)", &[]), "shape entry"),
            (npy_bytes("<f4", "(4611686018427387904, 4611686018427387904)", &[]), "overflows"),
        ];
        for (bytes, want) in cases {
            let e = parse(bytes).unwrap_err().to_string();
            assert!(e.contains(want), "wanted `{want}` in: {e}");
        }
        let mut fortran = npy_bytes("<f4", "(2, 2)", &[0; 16]);
        let at = fortran.windows(5).position(|w| w == b"False").unwrap();
        fortran.splice(at..at + 5, b"True ".iter().copied());
        assert!(parse(fortran).unwrap_err().to_string().contains("Fortran-ordered"));
        let structured = npy_raw("[('a', '<f4')]", "(1,)", &[0; 4]);
        assert!(parse(structured).unwrap_err().to_string().contains("structured dtypes"));
        for cut in 0..20 {
            let full = npy_bytes("<f4", "(1,)", &[0; 4]);
            assert!(parse(full[..cut].to_vec()).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn written_files_read_back_and_a_failed_write_keeps_the_old_file() {
        let dir = std::env::temp_dir().join(format!("strata-npy-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dev = crate::backend::native();
        let x = Tensor::new((0..24).map(|v| v as f32 * 0.5).collect::<Vec<_>>(), [2, 3, 4], &dev).unwrap();
        let p = dir.join("x.npy");
        write(&p, &x).unwrap();
        let a = NpyArray::open(&p).unwrap();
        assert_eq!(a.shape(), &[2, 3, 4]);
        assert_eq!(a.to_tensor(&dev).unwrap().to_vec::<f32>().unwrap(), x.to_vec::<f32>().unwrap());
        assert_eq!((std::fs::metadata(&p).unwrap().len() - 96) % 64, 0, "the header is padded to 64 bytes");
        // Chunked writing, then an unfinished writer leaves nothing behind.
        let mut w = NpyWriter::create(&p, DType::I64, &[]).unwrap();
        for start in [0i64, 3] {
            w.append(&Tensor::new((start..start + 3).collect::<Vec<_>>(), [3], &dev).unwrap()).unwrap();
        }
        assert!(w.append(&x).is_err());
        w.finish().unwrap();
        assert_eq!(read(&p, &dev).unwrap().to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        let mut w = NpyWriter::create(&p, DType::F32, &[4]).unwrap();
        w.append(&Tensor::zeros([1, 4], DType::F32, &dev).unwrap()).unwrap();
        drop(w);
        assert_eq!(read(&p, &dev).unwrap().to_vec::<i64>().unwrap(), vec![0, 1, 2, 3, 4, 5]);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 1, "the temporary file is gone");
        std::fs::remove_dir_all(&dir).ok();
    }
}
