//! `STRATA_BACKEND` picks the default device; a bad value is an error.
//! (One test in its own binary: it sets a process-wide variable.)

#[test]
fn strata_backend_variable_selects_the_device() {
    std::env::remove_var(strata::backend::ENV_VAR);
    assert_eq!(strata::backend::from_env().unwrap().name(), strata::backend::DEFAULT_BACKEND);
    std::env::set_var(strata::backend::ENV_VAR, "native");
    assert_eq!(strata::backend::from_env().unwrap().name(), "native");
    #[cfg(feature = "candle")]
    {
        std::env::set_var(strata::backend::ENV_VAR, "candle");
        assert_eq!(strata::backend::from_env().unwrap().name(), "candle-cpu");
    }
    std::env::set_var(strata::backend::ENV_VAR, "vulkan");
    let msg = strata::backend::from_env().unwrap_err().to_string();
    assert!(msg.contains("vulkan") && msg.contains("available: native"), "{msg}");
    // The infallible form falls back to the default instead.
    assert_eq!(strata::backend::default_device().name(), strata::backend::DEFAULT_BACKEND);
    std::env::remove_var(strata::backend::ENV_VAR);
}
