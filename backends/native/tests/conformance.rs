//! The backend conformance suite, instantiated for the native backend.

strata_conformance::conformance_suite!(strata_native::device());
