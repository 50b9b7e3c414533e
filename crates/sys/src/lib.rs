//! `bareflow-sys`: the portable system API that BareFlow apps are written against.
//!
//! One source, two backends: built for the image's target (`target_os = "none"`)
//! every call goes to the BareFlow kernel linked into the same image; built for
//! the host it goes to `std`, so an app runs under Linux for development and tests.
//!
//! An app opts in with three lines:
//! ```ignore
//! #![cfg_attr(target_os = "none", no_std, no_main)]
//! use bareflow_sys::prelude::*;
//! bareflow_sys::main!(app); // fn app() -> i32 (or `()`, or `Result<(), E: Debug>`)
//! ```
#![cfg_attr(target_os = "none", no_std)]
#![forbid(unsafe_code)]

extern crate alloc;

#[cfg(target_os = "none")]
#[path = "kernel.rs"]
mod backend;
#[cfg(not(target_os = "none"))]
#[path = "hosted.rs"]
mod backend;

pub mod env;
pub mod fs;
pub mod io;
pub mod net;
pub mod payload;
pub mod process;
pub mod random;
pub mod sync;
pub mod thread;
pub mod time;

#[doc(hidden)]
pub mod rt;

/// What most apps want in scope: `alloc`'s owned types and the print macros.
pub mod prelude {
    // Hosted, std's prelude already has these macros (and they behave the same).
    #[cfg(target_os = "none")]
    pub use crate::{eprint, eprintln, print, println};
    pub use alloc::boxed::Box;
    pub use alloc::format;
    pub use alloc::string::{String, ToString};
    pub use alloc::vec;
    pub use alloc::vec::Vec;
}

/// Declares the app's entry function, which runs hosted (as `main`) and in the image.
///
/// The function returns `i32` (the exit code), `()` (exit code 0), or
/// `Result<(), E: Debug>` (an error is printed and the exit code is 1).
#[macro_export]
macro_rules! main {
    ($entry:path) => {
        #[cfg(not(target_os = "none"))]
        fn main() {
            $crate::rt::run_hosted(|| $crate::process::Termination::report($entry()))
        }

        #[cfg(target_os = "none")]
        #[unsafe(export_name = "bareflow_app_main")]
        fn __bareflow_app_main() -> i32 {
            $crate::rt::run_image(|| $crate::process::Termination::report($entry()))
        }
    };
}

/// Prints to the console (the serial port in the image, stdout hosted).
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => { $crate::io::_print(format_args!($($arg)*)) };
}

/// Prints a line to the console.
#[macro_export]
macro_rules! println {
    () => { $crate::io::_print(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::_print(format_args!("{}\n", format_args!($($arg)*))) };
}

/// Prints to the error console (the serial port in the image, stderr hosted).
#[macro_export]
macro_rules! eprint {
    ($($arg:tt)*) => { $crate::io::_eprint(format_args!($($arg)*)) };
}

/// Prints a line to the error console.
#[macro_export]
macro_rules! eprintln {
    () => { $crate::io::_eprint(format_args!("\n")) };
    ($($arg:tt)*) => { $crate::io::_eprint(format_args!("{}\n", format_args!($($arg)*))) };
}
