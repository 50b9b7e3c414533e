//! The kernel command line as the app's arguments and configuration
//! (format: `bareflow_abi::cmdline`): `KEY=VALUE` options, `--`, arguments.
//! Options whose key starts with `bareflow.` are the kernel's own.
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use bareflow_abi::cmdline::Cmdline;
use spin::Once;

static CMDLINE: Once<Cmdline> = Once::new();

pub(crate) fn init() {
    CMDLINE.call_once(|| Cmdline::parse(bareflow_hal::boot::boot_info().cmdline()));
}

fn cmdline() -> &'static Cmdline {
    CMDLINE.call_once(|| Cmdline::parse(bareflow_hal::boot::boot_info().cmdline()))
}

/// A kernel option (`bareflow.*`).
pub fn kernel_option(key: &str) -> Option<&'static str> {
    cmdline().get(key)
}

/// The app's arguments, its name (`bareflow.app`, default `app`) first.
pub fn args() -> Vec<String> {
    let c = cmdline();
    let mut v = Vec::with_capacity(c.args.len() + 1);
    v.push(c.get("bareflow.app").unwrap_or("app").to_string());
    v.extend(c.args.iter().cloned());
    v
}

/// The app's arguments (counted from 0, without the app's name) whose escapes
/// decode to bytes that are not UTF-8, with those bytes.
pub fn non_utf8_args() -> &'static [(usize, Vec<u8>)] {
    &cmdline().non_utf8_args
}

/// A configuration variable (any option but the kernel's own).
pub fn var(key: &str) -> Option<String> {
    if key.starts_with("bareflow.") {
        return None;
    }
    cmdline().get(key).map(ToString::to_string)
}

/// Every configuration variable.
pub fn vars() -> Vec<(String, String)> {
    cmdline().options.iter().filter(|(k, _)| !k.starts_with("bareflow.")).cloned().collect()
}

/// A configuration variable borrowed for the whole boot.
pub fn var_static(key: &str) -> Option<&'static str> {
    if key.starts_with("bareflow.") {
        return None;
    }
    cmdline().get(key)
}
