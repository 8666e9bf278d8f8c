//! Fetching the IDX files of MNIST-style sets into a folder: every file is
//! downloaded to a temporary name beside its final one, its uncompressed
//! content checked against a SHA-256, and only when all four pass are they
//! renamed into place. A failure removes what this call wrote.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use sha2::{Digest, Sha256};
use strata_core::{Error, Result};

use super::idx;

/// No single file of these sets is larger (the biggest, Fashion-MNIST's
/// training images, is 26 MB gzipped, 47 MB plain).
const MAX_FILE_BYTES: u64 = 128 << 20;

/// Downloads `files` of the set `name` from `base_url` (the folder URL; each
/// file is `<base_url>/<file>.gz`) into `dir`, each verified against its
/// entry in `sha256` (of the uncompressed content).
pub(crate) fn download(name: &str, files: &[&str], sha256: &[&str], base_url: &str, dir: &Path) -> Result<()> {
    // The folders this call creates (`dir` and any missing parents), to
    // remove again on failure.
    let created: Vec<&Path> = dir.ancestors().take_while(|d| !d.as_os_str().is_empty() && !d.exists()).collect();
    std::fs::create_dir_all(dir).map_err(|e| Error::msg(format!("{}: cannot create {}: {e}", name, dir.display())))?;
    let mut temps: Vec<PathBuf> = Vec::new();
    let result = fetch_all(name, files, sha256, base_url, dir, &mut temps);
    if result.is_err() {
        for temp in &temps {
            let _ = std::fs::remove_file(temp);
        }
        for folder in created {
            // Only removes a folder that is empty, innermost first.
            let _ = std::fs::remove_dir(folder);
        }
    }
    result
}

fn fetch_all(
    name: &str,
    files: &[&str],
    sha256: &[&str],
    base_url: &str,
    dir: &Path,
    temps: &mut Vec<PathBuf>,
) -> Result<()> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(Duration::from_secs(15)))
        .timeout_recv_response(Some(Duration::from_secs(30)))
        .timeout_recv_body(Some(Duration::from_secs(600)))
        .build()
        .into();
    let base = base_url.trim_end_matches('/');
    for (file, want) in files.iter().zip(sha256) {
        let url = format!("{base}/{file}.gz");
        let temp = dir.join(format!(".{file}.gz.part-{}", std::process::id()));
        temps.push(temp.clone());
        fetch_one(&agent, &url, &temp).map_err(|e| Error::msg(format!("{}: downloading {url}: {e}", name)))?;
        let content = idx::read_maybe_gz(&temp)
            .map_err(|e| Error::msg(format!("{}: the file downloaded from {url} is unreadable: {e}", name)))?;
        let got = hex(&Sha256::digest(&content));
        if got != *want {
            return Err(Error::msg(format!(
                "{}: checksum mismatch for {url}: the SHA-256 of its uncompressed content is {got}, expected \
                 {want}; nothing was stored",
                name
            )));
        }
    }
    for (temp, file) in temps.iter().zip(files) {
        let target = dir.join(format!("{file}.gz"));
        std::fs::rename(temp, &target).map_err(|e| {
            Error::msg(format!("{}: cannot move {} to {}: {e}", name, temp.display(), target.display()))
        })?;
    }
    temps.clear();
    Ok(())
}

fn fetch_one(agent: &ureq::Agent, url: &str, temp: &Path) -> std::result::Result<(), String> {
    let response = agent.get(url).call().map_err(|e| e.to_string())?;
    let mut body = response.into_body().into_reader().take(MAX_FILE_BYTES + 1);
    let mut out = std::fs::File::create(temp).map_err(|e| format!("cannot create {}: {e}", temp.display()))?;
    let copied = std::io::copy(&mut body, &mut out).map_err(|e| e.to_string())?;
    if copied > MAX_FILE_BYTES {
        return Err(format!("the response is larger than {MAX_FILE_BYTES} bytes"));
    }
    out.flush().and_then(|()| out.sync_all()).map_err(|e| format!("cannot write {}: {e}", temp.display()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
