//! The IDX format of MNIST-style data sets, gzipped or not.
//!
//! An IDX file is a 4-byte magic (`0, 0, type, ndims`), `ndims` big-endian
//! `u32` sizes, then the values in row-major order. MNIST uses type `0x08`
//! (unsigned bytes): images are `0x00000803` (`N, 28, 28`), labels
//! `0x00000801` (`N`).

use std::io::Read;
use std::path::{Path, PathBuf};

use strata_core::{Error, Result, Tensor};

use super::{Dataset, Split};

/// The four standard file names, without `.gz`, in the order
/// train images, train labels, test images, test labels.
pub(crate) const FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

/// Never allocate more than this up front from a gzip size field (a corrupt
/// field must not cost gigabytes); larger outputs still decode, growing.
const MAX_PREALLOC: usize = 256 << 20;

/// Labels and image sides of an MNIST-style set.
pub(crate) struct Spec {
    /// `"mnist"`, for messages.
    pub name: &'static str,
    /// The folder under a data root (`"mnist"`, `"fashion-mnist"`).
    pub folder: &'static str,
    /// Public loader path, for messages (`"strata::datasets::mnist"`).
    pub module: &'static str,
    /// Where users typically have these files already.
    pub hint: &'static str,
    /// The canonical folder URL of the four `.gz` files.
    #[cfg_attr(not(feature = "download"), allow(dead_code))]
    pub url: &'static str,
    /// SHA-256 of each file's uncompressed content, in [`FILES`] order.
    #[cfg_attr(not(feature = "download"), allow(dead_code))]
    pub sha256: [&'static str; 4],
}

/// The four files from the first standard search place that has them all,
/// or an error listing every place and what it lacked.
fn find(spec: &Spec) -> Result<Vec<PathBuf>> {
    let candidates: Vec<(String, Option<PathBuf>)> =
        super::search_roots().into_iter().map(|(label, root)| (label, root.map(|r| r.join(spec.folder)))).collect();
    super::find_files(spec.name, &candidates, &FILES, &how_to(spec))
}

/// Loads a train/test pair from the standard search places.
pub(crate) fn load(spec: &Spec) -> Result<Split> {
    match find(spec) {
        Ok(paths) => read_split(spec, &paths),
        Err(not_found) => download_into_cache(spec, not_found),
    }
}

/// The folder [`load`] reads from, without downloading anything.
pub(crate) fn locate(spec: &Spec) -> Result<PathBuf> {
    let paths = find(spec)?;
    Ok(paths[0].parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The files were not found anywhere: download them into the cache folder
/// and load them from there; on failure, `not_found` followed by why.
#[cfg(feature = "download")]
fn download_into_cache(spec: &Spec, not_found: Error) -> Result<Split> {
    let url_override = std::env::var(super::DATASETS_URL_ENV_VAR).ok();
    download_and_load(spec, not_found, super::cache_dir(), url_override.as_deref())
}

/// [`download_into_cache`] with the cache folder and `$STRATA_DATASETS_URL`
/// given.
#[cfg(feature = "download")]
fn download_and_load(
    spec: &Spec,
    not_found: Error,
    cache: Option<PathBuf>,
    url_override: Option<&str>,
) -> Result<Split> {
    let Some(cache) = cache else { return Err(not_found) };
    let dir = cache.join(spec.folder);
    let url = mirror_url(spec, url_override);
    match super::download::download(spec, &url, &dir) {
        Ok(()) => load_from(spec, &dir),
        Err(e) => Err(Error::msg(format!("{not_found}\nDownloading them into {} failed too: {e}", dir.display()))),
    }
}

/// The folder URL to download `spec` from: `<override>/<folder>/`, else the
/// canonical mirror.
#[cfg(feature = "download")]
fn mirror_url(spec: &Spec, url_override: Option<&str>) -> String {
    match url_override.filter(|v| !v.is_empty()) {
        Some(base) => format!("{}/{}/", base.trim_end_matches('/'), spec.folder),
        None => spec.url.to_string(),
    }
}

#[cfg(not(feature = "download"))]
fn download_into_cache(_spec: &Spec, not_found: Error) -> Result<Split> {
    Err(not_found)
}

/// Loads a train/test pair from `dir` (or `dir/<folder>`) only.
pub(crate) fn load_from(spec: &Spec, dir: &Path) -> Result<Split> {
    let candidates = [("given".to_string(), Some(dir.to_path_buf())), ("given".into(), Some(dir.join(spec.folder)))];
    let paths = super::find_files(spec.name, &candidates, &FILES, &how_to(spec))?;
    read_split(spec, &paths)
}

fn how_to(spec: &Spec) -> String {
    let cache = super::cache_dir().map(|d| format!(" or {}", d.display())).unwrap_or_default();
    format!(
        "Put the four standard files {} (gzipped or not) in a folder `{}/` under \
         ${}{cache}, or pass their folder to `{m}::load_from(dir)`; `{m}::download_to(dir, {m}::URL)` downloads \
         them (cargo feature `download`). {}",
        FILES.map(|f| format!("{f}.gz")).join(", "),
        spec.folder,
        super::DATA_DIR_ENV_VAR,
        spec.hint,
        m = spec.module,
    )
    .trim_end()
    .to_string()
}

fn read_split(spec: &Spec, paths: &[PathBuf]) -> Result<Split> {
    let dev = crate::backend::from_env()?;
    // The two image files are most of the work: decode them side by side.
    let (train, test) = std::thread::scope(|s| {
        let train = s.spawn(|| read_pair(spec, &paths[0], &paths[1]));
        let test = read_pair(spec, &paths[2], &paths[3]);
        let train = train.join().unwrap_or_else(|_| Err(Error::msg(format!("{}: reader thread panicked", spec.name))));
        (train, test)
    });
    let (train, test) = (train?, test?);
    let to_dataset = |(images, labels, n): (Vec<f32>, Vec<i64>, usize)| -> Result<Dataset> {
        Dataset::new(Tensor::new(images, [n, 28, 28], &dev)?, Tensor::new(labels, [n], &dev)?)
    };
    Ok(Split { train: to_dataset(train)?, test: to_dataset(test)? })
}

/// One images file and its labels file: pixels scaled to `[0, 1]`, labels
/// checked to be digits `0..=9`, counts checked to agree.
fn read_pair(spec: &Spec, images: &Path, labels: &Path) -> Result<(Vec<f32>, Vec<i64>, usize)> {
    let mut scale = [0f32; 256];
    for (v, s) in scale.iter_mut().enumerate() {
        *s = v as f32 / 255.0;
    }
    let (pixels, dims) = read_images(images, &scale)?;
    let label_bytes = read_maybe_gz(labels)?;
    let label_dims = parse(&label_bytes, 0x0801, labels)?;
    let n = dims[0];
    if label_dims[0] != n {
        return Err(bad(labels, format!("{} labels for the {n} images of {}", label_dims[0], images.display())));
    }
    let header = |dims: &[usize]| 4 + 4 * dims.len();
    let mut ys = Vec::with_capacity(n);
    for (i, &b) in label_bytes[header(&label_dims)..].iter().enumerate() {
        if b > 9 {
            return Err(bad(labels, format!("label {b} at index {i} is not a class of {} (0..=9)", spec.name)));
        }
        ys.push(i64::from(b));
    }
    Ok((pixels, ys, n))
}

fn bad(path: &Path, reason: impl std::fmt::Display) -> Error {
    Error::msg(format!("{}: {reason}", path.display()))
}

/// The file's bytes, gunzipped when they start with the gzip magic.
pub(crate) fn read_maybe_gz(path: &Path) -> Result<Vec<u8>> {
    let raw = std::fs::read(path).map_err(|e| bad(path, format!("cannot read: {e}")))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    gunzip(&raw).map_err(|e| bad(path, format!("corrupt or truncated gzip data: {e}")))
}

/// Reads an images file (`0x0803`, N×28×28 bytes; gzipped or not) straight
/// into pixels mapped through `scale`, decoding chunk by chunk, so the file's
/// bytes are never held whole beside the floats (for MNIST's training set
/// that is 47 MB less at the peak). Errors are those of [`parse`].
fn read_images(path: &Path, scale: &[f32; 256]) -> Result<(Vec<f32>, Vec<usize>)> {
    use std::io::BufRead;
    let io = |e: std::io::Error| bad(path, format!("cannot read: {e}"));
    let gz_err = |e: std::io::Error| bad(path, format!("corrupt or truncated gzip data: {e}"));
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An IDX file of u8 with `dims`, values `0, 1, 2, ...` (mod 10).
    fn idx(dims: &[u32]) -> Vec<u8> {
        let mut out = vec![0, 0, 8, dims.len() as u8];
        for d in dims {
            out.extend_from_slice(&d.to_be_bytes());
        }
        let n: u32 = dims.iter().product();
        out.extend((0..n).map(|i| (i % 10) as u8));
        out
    }

    fn half(mut bytes: Vec<u8>) -> Vec<u8> {
        bytes.truncate(bytes.len() / 2);
        bytes
    }

    fn gz(bytes: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    /// A fresh temporary folder holding the four files.
    fn write_set(tag: &str, files: [Vec<u8>; 4]) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-idx-test-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for (name, bytes) in FILES.iter().zip(files) {
            std::fs::write(dir.join(format!("{name}.gz")), bytes).unwrap();
        }
        dir
    }

    const SPEC: Spec =
        Spec { name: "mnist", folder: "mnist", module: "strata::datasets::mnist", hint: "", url: "", sha256: [""; 4] };

    fn good() -> [Vec<u8>; 4] {
        [gz(&idx(&[3, 28, 28])), gz(&idx(&[3])), gz(&idx(&[2, 28, 28])), gz(&idx(&[2]))]
    }

    #[test]
    fn reads_a_small_well_formed_set() {
        let dir = write_set("good", good());
        let split = load_from(&SPEC, &dir).unwrap();
        assert_eq!(split.train.x.dims(), &[3, 28, 28]);
        assert_eq!(split.test.y.to_vec::<i64>().unwrap(), vec![0, 1]);
        let px = split.train.x.to_vec::<f32>().unwrap();
        assert_eq!(&px[..3], &[0.0, 1.0 / 255.0, 2.0 / 255.0]);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn uncompressed_files_and_the_dataset_subfolder_are_accepted() {
        let root = write_set("plain", good());
        let dir = root.join("mnist");
        std::fs::create_dir_all(&dir).unwrap();
        for name in FILES {
            let bytes = read_maybe_gz(&root.join(format!("{name}.gz"))).unwrap();
            std::fs::remove_file(root.join(format!("{name}.gz"))).unwrap();
            std::fs::write(dir.join(name), bytes).unwrap();
        }
        assert_eq!(load_from(&SPEC, &root).unwrap().train.len(), 3);
        std::fs::remove_dir_all(root).unwrap();
    }

    #[test]
    fn truncated_and_corrupt_files_are_errors_naming_the_file() {
        let cases: [(&str, usize, Vec<u8>, &str); 8] = [
            // The gzip stream cut in the middle.
            ("cut-gzip", 0, half(gz(&idx(&[3, 28, 28]))), "truncated gzip"),
            // A complete gzip of an IDX file missing its last pixel.
            (
                "short-idx",
                0,
                gz(&idx(&[3, 28, 28])[..4 + 12 + 3 * 784 - 1]),
                "truncated: dims [3, 28, 28] need 2368 bytes, the file has 2367",
            ),
            // One byte too many, gzipped and not.
            ("long-idx", 0, gz(&[idx(&[3, 28, 28]), vec![7]].concat()), "need 2368 bytes, the file has 2369 (1 extra)"),
            ("long-raw", 2, [idx(&[2, 28, 28]), vec![7, 7]].concat(), "the file has 1586 (2 extra)"),
            ("bad-magic", 0, gz(&[&[0u8, 0, 8, 1][..], &idx(&[3, 28, 28])[4..]].concat()), "expected magic 0x00000803"),
            ("labels-as-images", 0, gz(&idx(&[3])), "found 0x00000801"),
            ("wrong-size", 2, gz(&idx(&[2, 32, 32])), "28x28, found 32x32"),
            ("count-mismatch", 3, gz(&idx(&[5])), "5 labels for the 2 images"),
        ];
        for (tag, which, bytes, expect) in cases {
            let mut files = good();
            files[which] = bytes;
            let dir = write_set(tag, files);
            let msg = load_from(&SPEC, &dir).map(|_| ()).unwrap_err().to_string();
            assert!(msg.contains(expect), "{tag}: {msg}");
            assert!(msg.contains(FILES[which]), "{tag}: the message names the file: {msg}");
            std::fs::remove_dir_all(dir).unwrap();
        }
    }

    #[test]
    fn labels_outside_0_to_9_are_errors() {
        let mut labels = idx(&[3]);
        labels[4 + 4 + 1] = 10;
        let mut files = good();
        files[1] = gz(&labels);
        let dir = write_set("label-10", files);
        let msg = load_from(&SPEC, &dir).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains("label 10 at index 1"), "{msg}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn extra_bytes_and_short_headers_are_errors() {
        let path = Path::new("x");
        let mut long = idx(&[2]);
        long.push(0);
        assert!(parse(&long, 0x0801, path).unwrap_err().to_string().contains("(1 extra)"));
        assert!(parse(&[0, 0, 8], 0x0801, path).unwrap_err().to_string().contains("too short"));
        assert!(parse(&[0, 0, 8, 3, 0, 0], 0x0803, path).unwrap_err().to_string().contains("header alone"));
        let huge = [0, 0, 8, 3, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255];
        assert!(parse(&huge, 0x0803, path).is_err());
    }

    #[test]
    fn missing_files_list_every_place_and_how_to_fix_it() {
        let dir = std::env::temp_dir().join(format!("strata-idx-test-{}-missing", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("train-images-idx3-ubyte.gz"), gz(&idx(&[1, 28, 28]))).unwrap();
        let msg = load_from(&SPEC, &dir).map(|_| ()).unwrap_err().to_string();
        assert!(msg.contains(&format!("{} (given): missing train-labels-idx1-ubyte.gz", dir.display())), "{msg}");
        assert!(msg.contains(&format!("{} (given): no such folder", dir.join("mnist").display())), "{msg}");
        assert!(
            msg.contains("download_to(dir, strata::datasets::mnist::URL)") && msg.contains("load_from(dir)"),
            "{msg}"
        );
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[cfg(feature = "download")]
    #[test]
    fn a_failed_download_keeps_the_not_found_report_and_leaves_nothing() {
        let spec = Spec { url: "https://example.invalid/mnist/", ..SPEC };
        assert_eq!(mirror_url(&spec, None), "https://example.invalid/mnist/");
        assert_eq!(mirror_url(&spec, Some("")), "https://example.invalid/mnist/");
        assert_eq!(mirror_url(&spec, Some("http://127.0.0.1:8000/data/")), "http://127.0.0.1:8000/data/mnist/");

        let cache = std::env::temp_dir().join(format!("strata-idx-test-{}-cache", std::process::id()));
        let _ = std::fs::remove_dir_all(&cache);
        // Port 1 on the loopback: refused at once, no outside network.
        let not_found = Error::msg("mnist: data files not found. Looked in: ...");
        let msg = download_and_load(&spec, not_found, Some(cache.clone()), Some("http://127.0.0.1:1"))
            .map(|_| ())
            .unwrap_err()
            .to_string();
        assert!(msg.starts_with("mnist: data files not found"), "{msg}");
        assert!(msg.contains("Downloading them into") && msg.contains("http://127.0.0.1:1/mnist/"), "{msg}");
        assert!(!cache.exists(), "the cache folder this call created is removed again");
        let msg = download_and_load(&spec, Error::msg("not found"), None, None).map(|_| ()).unwrap_err();
        assert_eq!(msg.to_string(), "not found");
    }
}
