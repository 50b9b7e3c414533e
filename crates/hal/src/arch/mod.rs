//! Everything that touches the machine. Built only for the image's target.

pub mod blk;
pub mod boot;
pub mod console;
pub mod cpu;
pub mod dev;
pub mod exit;
pub mod mm;
pub mod payload;
pub mod pci;
pub mod port;
pub mod selftest;
pub mod smp;
pub mod task;
pub mod time;
pub mod trap;

core::arch::global_asm!(include_str!("boot.s"));
core::arch::global_asm!(include_str!("trap_stubs.s"));
core::arch::global_asm!(include_str!("ap_trampoline.s"));

pub use boot::BootInfo;
