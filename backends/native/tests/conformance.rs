//! The backend conformance suite, instantiated for the native backend.

strata_core::conformance_suite!(strata_native::device());
