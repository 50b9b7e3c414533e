//! A guard on boot time that the host's load cannot move: the number of
//! distinct blocks QEMU translates from `hello`'s first instruction to its
//! `main` (one boot under `-icount`, see `bench boot`). Under TCG that count,
//! not the work done, sets entry->main (about 6-9 us a block here), so a
//! change that makes boot run much more new code fails here rather than
//! showing up as noise in a timing.
use bareflow_cli::bench::translated_before_main;
use bareflow_cli::build::{self, Profile};

/// 767 on 2026-12-06 (`cargo bareflow bench boot`); raise it only for code
/// that must run before `main`, and say why.
const MAX_BLOCKS: usize = 850;

#[test]
fn hello_translates_few_blocks_before_main() {
    bareflow_cli::setup::ensure_qemu().expect("QEMU is needed for this test");
    let elf = build::build_image("hello", Profile::Release).expect("build hello");
    let t = translated_before_main(&elf).expect("count the translated blocks");
    let top: Vec<String> = t.top.iter().map(|(f, n)| format!("{f} {n}")).collect();
    assert!(t.blocks > 100, "only {} blocks before main: the count is broken ({})", t.blocks, top.join(", "));
    assert!(
        t.blocks <= MAX_BLOCKS,
        "{} blocks translated before main, more than {MAX_BLOCKS}: boot runs more new code (most in: {})",
        t.blocks,
        top.join(", ")
    );
}
