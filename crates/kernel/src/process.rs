//! Ending the app.

/// Ends the VM with `code` as the exit status (see `bareflow_abi::exit`).
pub fn exit(code: i32) -> ! {
    bareflow_hal::exit::exit(code)
}
