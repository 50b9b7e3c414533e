//! Start-up glue used by [`main!`](crate::main). Not a public API.

/// Runs an app's entry hosted and exits with its code, flushing stdout first.
#[cfg(not(target_os = "none"))]
pub fn run_hosted(entry: impl FnOnce() -> i32) -> ! {
    let code = entry();
    crate::process::exit(code)
}

/// Runs an app's entry in the image, with the kernel's services up.
#[cfg(target_os = "none")]
pub fn run_image(entry: impl FnOnce() -> i32) -> i32 {
    bareflow_kernel::run_app(entry)
}
