//! Allocations larger than the machine can make must be errors, not aborts:
//! the shape, the machine check and the assertion each backend's
//! `tests/sizes.rs` uses (they depend on the machine's memory, so they are
//! not conformance cases).

use strata_core::{Error, Result, Tensor};

/// A Dense(512) kernel on 60000·784 input features: 96,337,920,000 bytes,
/// more than Linux's default overcommit heuristic grants in one request on
/// a machine with less RAM plus swap than that (24 GiB where this was
/// written).
pub const LARGE_SHAPE: [usize; 2] = [60000 * 784, 512];

/// Whether this machine's RAM plus swap is smaller than the 96 GB asked
/// for, so Linux's overcommit heuristic refuses the request; `true` where
/// `/proc/meminfo` cannot be read. On a larger machine the request could
/// succeed, and the tests below say so and check nothing.
pub fn too_large_for_this_machine() -> bool {
    let Ok(info) = std::fs::read_to_string("/proc/meminfo") else { return true };
    let kib = |key: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    let total = (kib("MemTotal:") + kib("SwapTotal:")) * 1024;
    if total >= 96_337_920_000 {
        eprintln!("skipped: {total} bytes of RAM and swap could hold the 96 GB tensor");
        return false;
    }
    true
}

/// Asserts that `r` (the allocation of a [`LARGE_SHAPE`] tensor by `op`)
/// is an [`Error::SizeOverflow`] naming `op`, the byte count and the shape.
///
/// # Panics
/// When it is not: this is a test assertion.
pub fn expect_overflow(what: &str, r: Result<Tensor>, op: &str) {
    match r {
        Err(e @ Error::SizeOverflow { .. }) => {
            let msg = e.to_string();
            assert!(msg.contains(op), "{what}: `{msg}` does not name {op}");
            assert!(msg.contains("96337920000 bytes"), "{what}: `{msg}` does not give the byte count");
            assert!(msg.contains("[47040000, 512]"), "{what}: `{msg}` does not name the shape");
        }
        Err(e) => panic!("{what}: expected a SizeOverflow, got `{e}`"),
        Ok(t) => panic!("{what}: allocated {:?} ({} elements)", t.shape(), t.numel()),
    }
}
