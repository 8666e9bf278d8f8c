//! The catalogue of MNIST-style data sets ([`mnist`](super::mnist),
//! [`fashion_mnist`](super::fashion_mnist)): where their four IDX files are
//! looked for, the download policy when they are nowhere, and turning the
//! files into a train/test [`Split`].

use std::path::{Path, PathBuf};

use strata_core::{Error, Result, Tensor};

use super::idx::{bad, parse, read_images, read_maybe_gz};
use super::{Dataset, Split};

/// The four standard file names, without `.gz`, in the order
/// train images, train labels, test images, test labels.
pub(crate) const FILES: [&str; 4] =
    ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"];

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
    match super::download::download(spec.name, &FILES, &spec.sha256, &url, &dir) {
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
