//! The backend conformance suite, instantiated for candle's CPU backend and,
//! with the `cuda` feature, for CUDA GPU 0
//! (`cargo test -p strata-candle --features cuda --test conformance`).

strata_conformance::conformance_suite!(strata_candle::cpu());

/// The same cases on candle's CUDA device 0. Opening it fails (an `Err`,
/// reported by the panic below) on a machine without a GPU or driver.
#[cfg(feature = "cuda")]
mod cuda {
    strata_conformance::conformance_suite!(strata_candle::cuda(0).unwrap_or_else(|e| panic!("no CUDA device 0: {e}")));
}
