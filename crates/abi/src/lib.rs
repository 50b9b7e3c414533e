//! Formats shared by the host CLI and the kernel: the boot-time file archive,
//! the signed initfs, detached signatures and trusted-key lists, the kernel
//! command line, exit codes.
//!
//! Principles: pure `no_std` + `alloc` logic with no hardware knowledge, so every
//! format is tested on the host; parsers take untrusted bytes, check every length
//! and offset once up front, and report typed errors instead of panicking.
#![no_std]
#![forbid(unsafe_code)]

extern crate alloc;

pub mod archive;
pub mod cmdline;
pub mod exit;
pub mod initfs;
pub mod payload;
pub mod signature;
