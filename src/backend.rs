//! Choosing a backend at run time.
//!
//! Three ways, in order of precedence for [`default_device`]:
//! 1. explicitly: [`by_name`]`("native")`, [`native`], [`candle_cpu`];
//! 2. the `STRATA_BACKEND` environment variable (`native`, `candle`,
//!    `candle-cpu`, `candle-cuda`, `candle-cuda:1`);
//! 3. the built-in default, [`DEFAULT_BACKEND`].
//!
//! ```
//! let dev = strata::backend::by_name("native").unwrap();
//! assert_eq!(dev.name(), "native");
//! let err = strata::backend::by_name("tpu").unwrap_err().to_string();
//! assert!(err.contains("tpu") && err.contains("native"));
//! ```

use strata_core::{Device, Error, Result};

/// The environment variable that picks the default backend.
pub const ENV_VAR: &str = "STRATA_BACKEND";

/// The backend used when nothing else is asked for.
///
/// `native`: it is the fastest on CPU in our benchmarks (see the README) and
/// always built.
pub const DEFAULT_BACKEND: &str = "native";

/// The backend names this build accepts.
pub fn available() -> Vec<&'static str> {
    let mut names = vec!["native"];
    if cfg!(feature = "candle") {
        names.extend(["candle", "candle-cpu"]);
    }
    if cfg!(feature = "cuda") {
        names.extend(["candle-cuda", "candle-cuda:N"]);
    }
    names
}

fn unknown(name: &str) -> Error {
    let mut available = available().join(", ");
    if !cfg!(feature = "candle") && name.starts_with("candle") {
        available.push_str(" (strata was built without the `candle` feature)");
    } else if !cfg!(feature = "cuda") && name.starts_with("candle-cuda") {
        available.push_str(" (strata was built without the `cuda` feature)");
    }
    Error::UnknownBackend { name: name.to_string(), available }
}

/// The pure-Rust CPU backend (always available).
pub fn native() -> Device {
    strata_native::device()
}

/// candle's CPU backend.
#[cfg(feature = "candle")]
pub fn candle_cpu() -> Device {
    strata_candle::cpu()
}

/// A device by name; an unknown or unavailable name is an
/// [`Error::UnknownBackend`] listing the names that work.
pub fn by_name(name: &str) -> Result<Device> {
    let trimmed = name.trim();
    match trimmed.to_ascii_lowercase().as_str() {
        "native" => Ok(native()),
        #[cfg(feature = "candle")]
        "candle" | "candle-cpu" => Ok(candle_cpu()),
        #[cfg(feature = "cuda")]
        "candle-cuda" | "cuda" => strata_candle::cuda(0),
        #[cfg(feature = "cuda")]
        other if other.starts_with("candle-cuda:") => {
            let ordinal = other["candle-cuda:".len()..].parse::<usize>().map_err(|_| unknown(trimmed))?;
            strata_candle::cuda(ordinal)
        }
        _ => Err(unknown(trimmed)),
    }
}

/// The device named by `STRATA_BACKEND`, or [`DEFAULT_BACKEND`] when it is
/// unset or empty. A set but unknown name is an error, not a silent fallback.
pub fn from_env() -> Result<Device> {
    match std::env::var(ENV_VAR) {
        Ok(name) if !name.trim().is_empty() => by_name(&name),
        _ => by_name(DEFAULT_BACKEND),
    }
}

/// [`from_env`], for programs that want one device and no error handling: an
/// invalid `STRATA_BACKEND` is reported on stderr and the default is used.
pub fn default_device() -> Device {
    from_env().unwrap_or_else(|e| {
        eprintln!("strata: {e}; using `{DEFAULT_BACKEND}`");
        native()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_and_unknown_names_list_the_available_ones() {
        assert_eq!(by_name("native").unwrap().name(), "native");
        assert_eq!(by_name(" Native ").unwrap().name(), "native");
        #[cfg(feature = "candle")]
        assert_eq!(by_name("candle").unwrap().name(), "candle-cpu");
        let msg = by_name("metal").unwrap_err().to_string();
        assert!(msg.contains("`metal`") && msg.contains("native"), "{msg}");
        #[cfg(not(feature = "cuda"))]
        {
            let msg = by_name("candle-cuda").unwrap_err().to_string();
            assert!(msg.contains("without the `cuda` feature"), "{msg}");
        }
    }
}
