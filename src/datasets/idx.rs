//! The IDX format of MNIST-style data sets, gzipped or not.
//!
//! An IDX file is a 4-byte magic (`0, 0, type, ndims`), `ndims` big-endian
//! `u32` sizes, then the values in row-major order. MNIST uses type `0x08`
//! (unsigned bytes): images are `0x00000803` (`N, 28, 28`), labels
//! `0x00000801` (`N`).

use std::io::Read;
use std::path::Path;

use strata_core::{Error, Result};

/// Never allocate more than this up front from a gzip size field (a corrupt
/// field must not cost gigabytes); larger outputs still decode, growing.
const MAX_PREALLOC: usize = 256 << 20;

pub(crate) fn bad(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::format(path, reason.to_string(), None)
}

/// A gzip stream that does not decode: [`Error::Format`] keeping the
/// decoder's error.
fn corrupt_gzip(path: &Path, e: std::io::Error) -> Error {
    Error::format(path, format!("corrupt or truncated gzip data: {e}"), Some(Box::new(e)))
}

/// The file's bytes, gunzipped when they start with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| Error::io(path, "read", e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    gunzip(&raw).map_err(|e| corrupt_gzip(path, e))
}

/// Reads an images file (`0x0803`, N×28×28 bytes; gzipped or not) straight
/// into pixels mapped through `scale`, decoding chunk by chunk, so the file's
/// bytes are never held whole beside the floats (for MNIST's training set
/// that is 47 MB less at the peak). Errors are those of [`parse`].
pub(crate) fn read_images(path: &Path, scale: &[f32; 256]) -> Result<(Vec<f32>, Vec<usize>)> {
    use std::io::BufRead;
    let io = |e: std::io::Error| Error::io(path, "read", e);
    let gz_err = |e: std::io::Error| corrupt_gzip(path, e);
    let mut file = std::io::BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gz = file.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let (mut src, err): (Box<dyn Read>, &dyn Fn(std::io::Error) -> Error) =
        if gz { (Box::new(flate2::bufread::GzDecoder::new(file)), &gz_err) } else { (Box::new(file), &io) };
    // Reads as much of `buf` as the stream holds; returns how much that was.
    let mut fill = |buf: &mut [u8]| -> Result<usize> {
        let mut got = 0;
        while got < buf.len() {
            match src.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(err(e)),
            }
        }
        Ok(got)
    };
    let mut header = [0u8; 16];
    let got = fill(&mut header)?;
    let (dims, want) = parse_header(&header[..got], 0x0803, path)?;
    if want > isize::MAX as usize / 4 {
        return Err(bad(path, format!("dims {dims:?} overflow")));
    }
    if dims[1..] != [28, 28] {
        return Err(bad(path, format!("expected images of 28x28, found {}x{}", dims[1], dims[2])));
    }
    let payload = want - header.len();
    let mut pixels = Vec::with_capacity(payload.min(MAX_PREALLOC));
    let mut chunk = vec![0u8; 1 << 16];
    while pixels.len() < payload {
        let take = chunk.len().min(payload - pixels.len());
        let n = fill(&mut chunk[..take])?;
        pixels.extend(chunk[..n].iter().map(|&b| scale[usize::from(b)]));
        if n < take {
            check_len(path, &dims, want, header.len() + pixels.len())?;
        }
    }
    let mut extra = 0;
    loop {
        let n = fill(&mut chunk)?;
        if n == 0 {
            break;
        }
        extra += n;
    }
    check_len(path, &dims, want, want + extra)?;
    Ok((pixels, dims))
}

/// Gunzips `raw` (one gzip member), checking its CRC and size.
pub(crate) fn gunzip(raw: &[u8]) -> std::io::Result<Vec<u8>> {
    // The last 4 bytes hold the uncompressed size mod 2^32: a capacity hint.
    let hint = raw.len().checked_sub(4).map_or(0, |at| {
        let size = u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        (size as usize).min(MAX_PREALLOC)
    });
    let mut out = Vec::with_capacity(hint);
    flate2::read::GzDecoder::new(raw).read_to_end(&mut out)?;
    Ok(out)
}

/// Checks an IDX header against `magic` (`0x0803`: u8, 3 dims) and the
/// payload length against the dims; returns the dims.
pub(crate) fn parse(bytes: &[u8], magic: u32, path: &Path) -> Result<Vec<usize>> {
    let (dims, want) = parse_header(bytes, magic, path)?;
    check_len(path, &dims, want, bytes.len())?;
    Ok(dims)
}

/// Checks the header at the start of `bytes` against `magic`; returns the
/// dims and the whole file's length in bytes that they call for.
fn parse_header(bytes: &[u8], magic: u32, path: &Path) -> Result<(Vec<usize>, usize)> {
    let ndims = (magic & 0xff) as usize;
    let header_len = 4 + 4 * ndims;
    if bytes.len() < 4 {
        return Err(bad(path, format!("{} bytes is too short for an IDX file", bytes.len())));
    }
    let found = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    if found != magic {
        return Err(bad(
            path,
            format!(
                "not an IDX file of unsigned bytes with {ndims} dimension(s): expected magic 0x{magic:08x}, found \
                 0x{found:08x}"
            ),
        ));
    }
    if bytes.len() < header_len {
        return Err(bad(path, format!("truncated: {} bytes, the IDX header alone needs {header_len}", bytes.len())));
    }
    let dims: Vec<usize> =
        bytes[4..header_len].chunks_exact(4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]) as usize).collect();
    let payload = dims.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d));
    match payload.and_then(|p| p.checked_add(header_len)) {
        Some(want) => Ok((dims, want)),
        None => Err(bad(path, format!("dims {dims:?} overflow"))),
    }
}

/// A file of `have` bytes whose dims call for `want` is truncated or has
/// extra bytes unless the two agree.
fn check_len(path: &Path, dims: &[usize], want: usize, have: usize) -> Result<()> {
    if have < want {
        return Err(bad(path, format!("truncated: dims {dims:?} need {want} bytes, the file has {have}")));
    }
    if have > want {
        return Err(bad(path, format!("dims {dims:?} need {want} bytes, the file has {have} ({} extra)", have - want)));
    }
    Ok(())
}
