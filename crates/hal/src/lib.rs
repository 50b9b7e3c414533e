//! `bareflow-hal`: the hardware layer of BareFlow, and the one crate where
//! `unsafe` lives.
//!
//! It boots the machine (PVH and Multiboot2 entries, long mode, GDT/IDT/TSS,
//! SSE/AVX), owns physical memory (frames from the firmware memory map, the
//! kernel's page tables with W^X, the heap), time (TSC, PIT, LAPIC timer), the
//! serial port and the exit path, and hands all of it to the kernel above as
//! safe types and functions. Principles:
//! - every `unsafe` block says why it is sound in a `// SAFETY:` comment;
//! - no page is ever writable and executable at once: [`mm::Prot`] cannot say so;
//! - pure logic (memory-map carving) is plain Rust tested on the host; the
//!   rest only builds for the image's target (`target_os = "none"`).
#![cfg_attr(not(test), no_std)]

#[cfg(target_os = "none")]
extern crate alloc;

pub mod acpi;
#[cfg(not(target_os = "none"))]
pub mod hosted_exec;
pub mod memmap;

#[cfg(target_os = "none")]
mod arch;
#[cfg(target_os = "none")]
pub use arch::*;
