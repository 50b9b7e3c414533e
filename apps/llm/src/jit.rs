//! `--jit off|on|only`: the engine's profiling hooks and the JIT, placed in
//! W^X code pages from `bareflow-hal` (the kernel's pages in the image,
//! `mmap`/`mprotect` hosted), and the stats dump.
extern crate alloc;

#[allow(unused_imports)] // hosted, std's prelude already has these
use bareflow_sys::prelude::*;

use bareflow_jit::engine::LlmJit;
use bareflow_llm::Transformer;
use bareflow_llm::profile::Hooks;

/// Forward calls profiled before the JIT is asked (with `on`).
const WARMUP: usize = 8;
/// Matmul shapes specialised with `on` (the hottest ones).
const MAX_KERNELS: usize = 4;
/// Forward calls after the swap in which `on` times the ahead-of-time and the
/// generated kernels in place, alternated, and then drops generated kernels
/// that were slower (`Hooks::with_trial`).
const TRIAL: usize = 8;

/// What `--jit` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Ahead-of-time kernels only, no profiling.
    Off,
    /// Profile a warm-up, then generate kernels for the hottest shapes,
    /// time them in place against the ahead-of-time ones and keep the faster.
    On,
    /// Generate kernels for every shape before the first token.
    Only,
}

impl Mode {
    pub fn parse(s: &str) -> Option<Mode> {
        match s {
            "off" => Some(Mode::Off),
            "on" => Some(Mode::On),
            "only" => Some(Mode::Only),
            _ => None,
        }
    }
}

fn now_ns() -> u64 {
    bareflow_sys::time::Instant::now().as_nanos()
}

/// The hooks for `mode`.
pub fn hooks(mode: Mode) -> Hooks {
    let (warmup, all) = match mode {
        Mode::Off => return Hooks::off(),
        Mode::On => (WARMUP, false),
        Mode::Only => (0, true),
    };
    let jit = LlmJit::new(now_ns, MAX_KERNELS, all);
    let trial = if mode == Mode::On { TRIAL } else { 0 };
    Hooks::new(cycles, warmup, Some(Box::new(jit))).with_trial(trial)
}

/// After generation: prints the profile and what the JIT generated (with
/// `stats`, on stderr), and with `only` fails unless every matrix shape ran
/// on a generated kernel.
pub fn finish(mode: Mode, stats: bool, model: &Transformer<'_>) -> Result<(), String> {
    if stats {
        let mut s = String::new();
        match model.hooks().write_stats(&mut s) {
            Ok(()) => eprint!("{s}"),
            Err(_) => eprintln!("jit_profile: could not format the stats"),
        }
    }
    if mode == Mode::Only {
        let c = model.config();
        let q8 = model.mode() == bareflow_llm::WeightMode::Q8;
        let missing: Vec<usize> = [c.dim, c.hidden_dim]
            .into_iter()
            .filter(|&cols| {
                !model.hooks().specialiser().is_some_and(|j| if q8 { j.has_q8_matmul(cols) } else { j.has_matmul(cols) })
            })
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "--jit only: no checked generated kernel for {missing:?} columns (see --jit-stats for why; use --jit on to fall back)"
            ));
        }
    }
    Ok(())
}

use bareflow_jit::platform::cycles;
