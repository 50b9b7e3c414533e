//! Process lifetime: exit codes.
use core::fmt::Debug;

/// Ends the app with `code` (0 is success). In the image the code becomes the
/// exit status of the VMM process (see `bareflow_abi::exit`).
pub fn exit(code: i32) -> ! {
    crate::io::flush();
    crate::backend::exit(code)
}

/// What an app's entry function may return.
pub trait Termination {
    /// The exit code this value stands for.
    fn report(self) -> i32;
}

impl Termination for i32 {
    fn report(self) -> i32 {
        self
    }
}

impl Termination for () {
    fn report(self) -> i32 {
        0
    }
}

impl<E: Debug> Termination for Result<(), E> {
    fn report(self) -> i32 {
        match self {
            Ok(()) => 0,
            Err(e) => {
                crate::eprintln!("error: {e:?}");
                1
            }
        }
    }
}
