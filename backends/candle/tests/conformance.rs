//! The backend conformance suite, instantiated for candle's CPU backend.

strata_core::conformance_suite!(strata_candle::cpu());
