//! Per-operation profiling counters, and the hook through which a JIT swaps
//! generated kernels into the forward pass.
//!
//! The engine reads no clock of its own: the caller hands in a cycle counter
//! (`rdtsc` from `bareflow-hal`), so profiling costs nothing when it is off
//! and tests can pass a fake clock. After `warmup` tokens, [`Hooks`] gives the
//! hottest operations (most cycles first) to the [`Specialiser`], which may
//! install generated kernels; the counters then start again so that the stats
//! show the cycles per call before and after the swap, measured in place.
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

use crate::kernels::KernelSet;

/// One engine operation, as the profiler counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Op {
    /// `out[rows] = W[rows][cols] · x[cols]` with f32 weights.
    Matmul { rows: usize, cols: usize },
    /// The same product with int8 weights.
    Q8Matmul { rows: usize, cols: usize },
    /// `W[rows][cols]` times a batch of token vectors (the prompt, fed in
    /// batches by [`crate::Transformer::prefill`]), f32 weights.
    Matmat { rows: usize, cols: usize },
    /// The same batched product with int8 weights.
    Q8Matmat { rows: usize, cols: usize },
    /// RMSNorm over `dim` values, before attention and before the feed-forward block.
    RmsNorm { dim: usize },
    /// RoPE on q and k, heads of `head` values.
    Rope { head: usize },
    /// Scores, softmax and weighted sum over every head, over at most
    /// `seq_len` positions (the longest softmax).
    Attention { seq_len: usize },
    /// `silu(hb) * hb2` over `n` values.
    SwiGlu { n: usize },
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Matmul { rows, cols } => write!(f, "matmul {rows}x{cols}"),
            Op::Q8Matmul { rows, cols } => write!(f, "q8 matmul {rows}x{cols}"),
            Op::Matmat { rows, cols } => write!(f, "matmat {rows}x{cols}"),
            Op::Q8Matmat { rows, cols } => write!(f, "q8 matmat {rows}x{cols}"),
            Op::RmsNorm { dim } => write!(f, "rmsnorm {dim}"),
            Op::Rope { head } => write!(f, "rope head {head}"),
            Op::Attention { .. } => write!(f, "attention"),
            Op::SwiGlu { n } => write!(f, "swiglu {n}"),
        }
    }
}

/// Counters of one operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpStats {
    pub op: Op,
    pub calls: u64,
    pub cycles: u64,
}

impl OpStats {
    /// Mean cycles per call (0 without calls).
    pub fn cycles_per_call(&self) -> u64 {
        self.cycles.checked_div(self.calls).unwrap_or(0)
    }
}

/// Counters per operation (a handful of entries: a linear search is fastest).
#[derive(Debug, Clone, Default)]
pub struct Profile {
    entries: Vec<OpStats>,
}

impl Profile {
    /// Adds one call of `op` that took `cycles`.
    pub fn add(&mut self, op: Op, cycles: u64) {
        self.add_stats(OpStats { op, calls: 1, cycles });
    }

    /// Adds `s.calls` calls of `s.op` that took `s.cycles` in all.
    fn add_stats(&mut self, s: OpStats) {
        match self.entries.iter_mut().find(|e| e.op == s.op) {
            Some(e) => {
                e.calls += s.calls;
                e.cycles = e.cycles.wrapping_add(s.cycles);
            }
            None => self.entries.push(s),
        }
    }

    /// Every operation seen, in order of first call.
    pub fn stats(&self) -> &[OpStats] {
        &self.entries
    }

    /// Every operation seen, most cycles first.
    pub fn hottest(&self) -> Vec<OpStats> {
        let mut v = self.entries.clone();
        v.sort_by(|a, b| b.cycles.cmp(&a.cycles).then(a.op.cmp(&b.op)));
        v
    }

    /// The counters of `op`, if it ran.
    pub fn get(&self, op: Op) -> Option<OpStats> {
        self.entries.iter().find(|e| e.op == op).copied()
    }

    /// Adds every counter of `other` to this profile.
    pub fn merge(&mut self, other: &Profile) {
        for &o in &other.entries {
            self.add_stats(o);
        }
    }
}

/// Which kernels the `k`-th call of an op runs in the in-place trial, with
/// `variants` generated variants: `None` for the ahead-of-time kernel,
/// `Some(v)` for variant `v`. Rounds of one call per side, every other round
/// reversed (with one variant: AOT, JIT, JIT, AOT — ABBA), so that a cost
/// that grows from call to call (attention, with the position) favours no side.
fn trial_side(k: usize, variants: usize) -> Option<usize> {
    let sides = 1 + variants.max(1);
    let (round, p) = (k / sides, k % sides);
    let side = if round % 2 == 0 { p } else { sides - 1 - p };
    side.checked_sub(1)
}

/// The in-place trial after the swap: the counters of the op calls run on the
/// ahead-of-time kernels and of those run on the generated ones (each op
/// alternates between them, call by call).
#[derive(Debug, Clone, Default)]
pub struct Trial {
    pub aot: Profile,
    /// Every call run on generated code, whichever variant.
    pub jit: Profile,
    /// The generated variants raced (see [`Specialiser::variants`]); 0 or 1:
    /// the generated code alone.
    pub variants: usize,
    /// Every call's cycles, by op and side (`None`: ahead-of-time; `Some(v)`:
    /// variant `v`), for [`Trial::median`].
    pub samples: Vec<(Op, Option<usize>, Vec<u64>)>,
    /// Trial tokens run so far.
    pub tokens: usize,
}

impl Trial {
    /// Which side the next call of `op` runs (see [`trial_side`]): by the
    /// calls of `op` both sides have counted so far (op calls do not nest,
    /// so each is counted before the next starts).
    fn next_side(&self, op: Op) -> Option<usize> {
        let calls = |p: &Profile| p.get(op).map_or(0, |s| s.calls);
        trial_side((calls(&self.aot) + calls(&self.jit)) as usize, self.variants)
    }

    /// Counts one call of `op` on `side` that took `cycles`.
    pub fn add(&mut self, op: Op, side: Option<usize>, cycles: u64) {
        match side {
            None => self.aot.add(op, cycles),
            Some(_) => self.jit.add(op, cycles),
        }
        match self.samples.iter_mut().find(|s| s.0 == op && s.1 == side) {
            Some(s) => s.2.push(cycles),
            None => self.samples.push((op, side, alloc::vec![cycles])),
        }
    }

    /// How many calls of `op` ran on `side` (as for [`Trial::median`]).
    pub fn calls(&self, op: Op, side: Option<usize>) -> usize {
        self.samples.iter().find(|s| s.0 == op && s.1 == side).map_or(0, |s| s.2.len())
    }

    /// The median cycles of `op`'s calls on `side` (`None`: ahead-of-time;
    /// `Some(v)`: variant `v`, or with one variant the generated code, 0):
    /// what the trial's verdicts compare. A call that an interrupt or
    /// another process stretched moves a mean, not the median.
    pub fn median(&self, op: Op, side: Option<usize>) -> Option<u64> {
        self.median_where(op, |s| s == side)
    }

    /// The median cycles of `op`'s calls on generated code, any variant.
    pub fn median_generated(&self, op: Op) -> Option<u64> {
        self.median_where(op, |s| s.is_some())
    }

    fn median_where(&self, op: Op, side: impl Fn(Option<usize>) -> bool) -> Option<u64> {
        let mut v: Vec<u64> = self.samples.iter().filter(|s| s.0 == op && side(s.1)).flat_map(|s| s.2.iter().copied()).collect();
        v.sort_unstable();
        let n = v.len();
        if n == 0 {
            return None;
        }
        Some(if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2 })
    }

    /// For `op`: the generated variant with the lowest median cycles per
    /// call in the trial, and that median.
    pub fn best_variant(&self, op: Op) -> Option<(usize, u64)> {
        (0..self.variants.max(1)).filter_map(|v| Some((v, self.median(op, Some(v))?))).min_by_key(|&(v, c)| (c, v))
    }
}

/// A source of generated kernels (implemented by `bareflow-jit`).
pub trait Specialiser: Send + Sync {
    /// Called once after the warm-up with the operations, hottest first, and
    /// the kernel set in use: generate, check and install what pays.
    fn specialise(&mut self, hot: &[OpStats], kernels: KernelSet);
    /// Runs an installed f32 matrix-vector kernel for `x.len()` columns over
    /// `out.len()` rows; returns false (having done nothing) when there is none.
    fn matmul(&self, out: &mut [f32], x: &[f32], w: &[f32]) -> bool;
    /// Whether a checked kernel for `cols` columns is installed.
    fn has_matmul(&self, cols: usize) -> bool;
    /// Runs an installed int8 kernel (see [`KernelSet::q8_matmul`] for the
    /// shapes); returns false (having done nothing) when there is none.
    fn q8_matmul(&self, _out: &mut [f32], _qw: &[i8], _sw: &[f32], _qx: &[i8], _sx: &[f32]) -> bool {
        false
    }
    /// Whether a checked int8 kernel for `cols` (padded) columns is installed.
    fn has_q8_matmul(&self, _cols: usize) -> bool {
        false
    }
    /// Runs an installed f32 matrix-matrix kernel (see [`KernelSet::matmat`]
    /// for the shapes); returns false (having done nothing) when there is none.
    fn matmat(&self, _out: &mut [f32], _x: &[f32], _w: &[f32], _cols: usize) -> bool {
        false
    }
    /// Runs an installed int8 matrix-matrix kernel (see
    /// [`KernelSet::q8_matmat`]); returns false (having done nothing) when none.
    fn q8_matmat(&self, _out: &mut [f32], _qw: &[i8], _sw: &[f32], _qx: &[i8], _sx: &[f32], _groups: usize) -> bool {
        false
    }
    /// Runs an installed RMSNorm kernel (see [`KernelSet::rmsnorm`]); false
    /// (having done nothing) when there is none for `x.len()`.
    fn rmsnorm(&self, _o: &mut [f32], _x: &[f32], _w: &[f32]) -> bool {
        false
    }
    /// Runs an installed SwiGLU kernel (see [`KernelSet::swiglu`]); false when none.
    fn swiglu(&self, _hb: &mut [f32], _hb2: &[f32]) -> bool {
        false
    }
    /// Runs an installed RoPE kernel (see [`KernelSet::rope`], `cs` flattened);
    /// false when none.
    fn rope(&self, _v: &mut [f32], _cs: &[f32]) -> bool {
        false
    }
    /// Runs an installed softmax kernel on `x` (see [`KernelSet::softmax`]);
    /// false (having done nothing) when none covers `x.len()`.
    fn softmax(&self, _x: &mut [f32]) -> bool {
        false
    }
    /// After the in-place trial: the same operations timed on the
    /// ahead-of-time kernels and on the generated ones, token for token;
    /// remove the generated kernels that were slower.
    fn review(&mut self, _trial: &Trial) {}
    /// How many variants of generated code the in-place trial races, op by op,
    /// besides the ahead-of-time kernels (asked once, after
    /// [`Specialiser::specialise`]). With more than one, [`Specialiser::select`]
    /// is called before every op call.
    fn variants(&self) -> usize {
        1
    }
    /// Before a call of `op` (with more than one variant): during the trial,
    /// the variant to run (`Some`); after it, `None`: the JIT's own choice
    /// for `op`, made in [`Specialiser::review`].
    fn select(&mut self, _op: Op, _variant: Option<usize>) {}
    /// Writes what was generated (kernels, sizes, time to generate, checks).
    fn report(&self, out: &mut dyn fmt::Write) -> fmt::Result;
}

/// The engine's profiling and JIT hooks; off by default.
pub struct Hooks {
    clock: Option<fn() -> u64>,
    warmup: usize,
    tokens: usize,
    profile: Profile,
    warm_profile: Option<Profile>,
    jit: Option<Box<dyn Specialiser>>,
    /// Tokens of in-place trial after the swap (0: none).
    trial_tokens: usize,
    /// The trial, running or done.
    trial: Option<Trial>,
    /// Whether the trial is running.
    in_trial: bool,
    /// False during the trial's ahead-of-time op calls: [`Hooks::specialiser`]
    /// then answers `None`, so the engine runs its own kernels.
    jit_on: bool,
    /// The JIT's variants ([`Specialiser::variants`]), once it has been asked.
    variants: usize,
    /// The variant the current op call runs in the trial.
    variant: usize,
}

impl fmt::Debug for Hooks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Hooks")
            .field("profiling", &self.clock.is_some())
            .field("warmup", &self.warmup)
            .field("tokens", &self.tokens)
            .field("jit", &self.jit.is_some())
            .finish()
    }
}

impl Default for Hooks {
    fn default() -> Self {
        Self::off()
    }
}

impl Hooks {
    /// No profiling, no JIT.
    pub fn off() -> Self {
        Hooks {
            clock: None,
            warmup: 0,
            tokens: 0,
            profile: Profile::default(),
            warm_profile: None,
            jit: None,
            trial_tokens: 0,
            trial: None,
            in_trial: false,
            jit_on: true,
            variants: 1,
            variant: 0,
        }
    }

    /// Profiling with `clock` (cycles); with a `jit`, once `warmup` tokens
    /// have run (forward calls, and the tokens of prefill batches) the
    /// hottest operations go to it (with `warmup == 0`, before the
    /// first token, with every matrix shape of the model).
    pub fn new(clock: fn() -> u64, warmup: usize, jit: Option<Box<dyn Specialiser>>) -> Self {
        Hooks { clock: Some(clock), warmup, jit, ..Self::off() }
    }

    /// After the swap, runs `tokens` tokens (forward calls, and the tokens of
    /// prefill batches; at least one call) as an in-place trial: each op's
    /// calls alternate the ahead-of-time and the generated kernel, ABBA. Then
    /// the JIT removes what was slower (see [`Specialiser::review`]). Not with
    /// a warm-up of 0 (`--jit only` wants every shape generated).
    pub fn with_trial(mut self, tokens: usize) -> Self {
        self.trial_tokens = tokens;
        self
    }

    /// The in-place trial, once started.
    pub fn trial(&self) -> Option<&Trial> {
        self.trial.as_ref()
    }

    /// Counters since the swap (or since the start, before it).
    pub fn profile(&self) -> &Profile {
        &self.profile
    }

    /// Counters of the warm-up, once the JIT has been asked.
    pub fn warmup_profile(&self) -> Option<&Profile> {
        self.warm_profile.as_ref()
    }

    /// The JIT, if one is attached and its kernels are to run now (not during
    /// the in-place trial's ahead-of-time tokens).
    pub fn specialiser(&self) -> Option<&dyn Specialiser> {
        self.jit.as_deref().filter(|_| self.jit_on)
    }

    #[inline]
    pub(crate) fn now(&self) -> u64 {
        self.clock.map_or(0, |c| c())
    }

    /// At the start of a call of `op`: during the trial, picks its side
    /// (what [`Hooks::specialiser`] answers until [`Hooks::record`]); returns
    /// the clock.
    #[inline]
    pub(crate) fn start(&mut self, op: Op) -> u64 {
        if self.in_trial
            && let Some(t) = &self.trial
        {
            let side = t.next_side(op);
            self.jit_on = side.is_some();
            self.variant = side.unwrap_or(0);
            if self.variants > 1
                && let (Some(v), Some(j)) = (side, self.jit.as_mut())
            {
                j.select(op, Some(v));
            }
        } else if self.variants > 1
            && let Some(j) = self.jit.as_mut()
        {
            j.select(op, None);
        }
        self.now()
    }

    /// At the end of a call of `op` that started at `since`: counts it (in
    /// the trial, on its side).
    #[inline]
    pub(crate) fn record(&mut self, op: Op, since: u64) {
        if let Some(c) = self.clock {
            let cycles = c().wrapping_sub(since);
            match self.trial.as_mut().filter(|_| self.in_trial) {
                Some(t) => t.add(op, if self.jit_on { Some(self.variant) } else { None }, cycles),
                None => self.profile.add(op, cycles),
            }
        }
        self.jit_on = true;
    }

    /// At the start of every forward call (or prefill batch) of `n` tokens:
    /// asks the JIT once the warm-up's tokens have run; ends the trial once
    /// its tokens have run.
    pub(crate) fn token(&mut self, kernels: KernelSet, shapes: &[Op], n: usize) {
        if self.tokens >= self.warmup
            && self.warm_profile.is_none()
            && let Some(jit) = self.jit.as_mut()
        {
            let mut hot = self.profile.hottest();
            for &op in shapes {
                if !hot.iter().any(|h| h.op == op) {
                    hot.push(OpStats { op, calls: 0, cycles: 0 });
                }
            }
            jit.specialise(&hot, kernels);
            self.variants = jit.variants().max(1);
            self.warm_profile = Some(core::mem::take(&mut self.profile));
            if self.trial_tokens > 0 && self.warmup > 0 {
                self.trial = Some(Trial { variants: self.variants, ..Trial::default() });
                self.in_trial = true;
            }
        } else if self.in_trial
            && let Some(t) = self.trial.as_mut()
            && t.tokens >= self.trial_tokens
        {
            self.in_trial = false;
            if let Some(jit) = self.jit.as_mut() {
                jit.review(t);
            }
        }
        if self.in_trial
            && let Some(t) = self.trial.as_mut()
        {
            t.tokens += n;
        }
        self.tokens += n;
    }

    /// Writes the counters (with cycles per call before and after the swap)
    /// and the JIT's report.
    pub fn write_stats(&self, out: &mut dyn fmt::Write) -> fmt::Result {
        writeln!(out, "jit_profile: {} tokens, warm-up {}", self.tokens, self.warmup)?;
        if let Some(t) = &self.trial {
            writeln!(
                out,
                "  in-place trial after the swap: {} tokens, each op's calls alternating ahead-of-time and generated kernels{} (ABBA); \"in place\" = AOT/JIT median cycles per call there{}",
                t.tokens,
                if t.variants > 1 { alloc::format!(" ({} variants)", t.variants) } else { alloc::string::String::new() },
                if t.variants > 1 { ", the JIT's best variant" } else { "" }
            )?;
        }
        writeln!(
            out,
            "  {:<20} {:>10} {:>14} {:>12} {:>12} {:>10}",
            "op", "calls", "cycles", "cyc/call", "warm-up", "in place"
        )?;
        for s in self.profile.hottest() {
            let before = self.warm_profile.as_ref().and_then(|p| p.get(s.op)).map(|w| w.cycles_per_call());
            let b = before.map_or_else(|| alloc::string::String::from("-"), |b| alloc::format!("{b}"));
            let trial = self.trial.as_ref().and_then(|t| Some((t.median(s.op, None)?, t.best_variant(s.op)?.1)));
            let sp = match trial {
                Some((a, j)) if j > 0 => alloc::format!("{:.2}x", a as f64 / j as f64),
                _ => alloc::string::String::from("-"),
            };
            writeln!(
                out,
                "  {:<20} {:>10} {:>14} {:>12} {:>12} {:>10}",
                alloc::format!("{}", s.op),
                s.calls,
                s.cycles,
                s.cycles_per_call(),
                b,
                sp
            )?;
        }
        if let Some(j) = &self.jit {
            j.report(out)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;

    /// A JIT that records what the hooks asked of it.
    #[derive(Default)]
    struct Recorder {
        log: std::sync::Arc<std::sync::Mutex<Vec<alloc::string::String>>>,
    }

    impl Specialiser for Recorder {
        fn specialise(&mut self, _hot: &[OpStats], _k: KernelSet) {
            self.log.lock().expect("log").push("specialise".into());
        }
        fn matmul(&self, _o: &mut [f32], _x: &[f32], _w: &[f32]) -> bool {
            false
        }
        fn has_matmul(&self, _c: usize) -> bool {
            false
        }
        fn review(&mut self, t: &Trial) {
            let (a, j) = (t.aot.get(Op::RmsNorm { dim: 1 }), t.jit.get(Op::RmsNorm { dim: 1 }));
            self.log.lock().expect("log").push(alloc::format!("review {} {:?} {:?}", t.tokens, a.map(|s| s.calls), j.map(|s| s.calls)));
        }
        fn report(&self, _out: &mut dyn fmt::Write) -> fmt::Result {
            Ok(())
        }
    }

    fn tick() -> u64 {
        7
    }

    #[test]
    fn the_trial_alternates_each_ops_calls_abba_then_asks_for_a_review() {
        let rec = Recorder::default();
        let log = rec.log.clone();
        let mut h = Hooks::new(tick, 2, Some(Box::new(rec))).with_trial(4);
        let mut jit_ran = Vec::new();
        let (norm, rope) = (Op::RmsNorm { dim: 1 }, Op::Rope { head: 2 });
        for _ in 0..8 {
            h.token(KernelSet::scalar(), &[], 1);
            // Two calls of one op and one of another per token.
            for op in [norm, rope, norm] {
                let t0 = h.start(op);
                jit_ran.push(h.specialiser().is_some());
                h.record(op, t0);
            }
        }
        // Swap at token 2; in trial tokens 2..6 the RMSNorm calls run AOT,
        // JIT, JIT, AOT, AOT, JIT, JIT, AOT and the RoPE calls AOT, JIT, JIT,
        // AOT (the engine sees no JIT on the AOT ones); then the review, and
        // the JIT stays on.
        let t = [true, true, true];
        let trial = [[false, false, true], [true, true, false], [false, true, true], [true, false, false]];
        let want: Vec<bool> = [t, t].into_iter().chain(trial).chain([t, t]).flatten().collect();
        assert_eq!(jit_ran, want);
        assert_eq!(*log.lock().expect("log"), ["specialise", "review 4 Some(4) Some(4)"]);
        let tr = h.trial().expect("a trial");
        assert_eq!((tr.aot.get(rope).map(|s| s.calls), tr.jit.get(rope).map(|s| s.calls)), (Some(2), Some(2)));
        // After the trial, the profile counts the tokens since it ended (6 and 7).
        assert_eq!(h.profile().get(norm).map(|s| s.calls), Some(4));
    }

    /// A JIT with two variants that records what it was told to select.
    struct TwoVariants {
        log: std::sync::Arc<std::sync::Mutex<Vec<alloc::string::String>>>,
    }

    impl Specialiser for TwoVariants {
        fn specialise(&mut self, _hot: &[OpStats], _k: KernelSet) {}
        fn matmul(&self, _o: &mut [f32], _x: &[f32], _w: &[f32]) -> bool {
            false
        }
        fn has_matmul(&self, _c: usize) -> bool {
            false
        }
        fn variants(&self) -> usize {
            2
        }
        fn select(&mut self, _op: Op, v: Option<usize>) {
            self.log.lock().expect("log").push(alloc::format!("{v:?}"));
        }
        fn review(&mut self, t: &Trial) {
            let n = |p: &Profile| p.get(Op::RmsNorm { dim: 1 }).map_or(0, |s| s.calls);
            let v: Vec<usize> = (0..t.variants).map(|v| t.calls(Op::RmsNorm { dim: 1 }, Some(v))).collect();
            self.log.lock().expect("log").push(alloc::format!("review aot {} jit {} variants {v:?}", n(&t.aot), n(&t.jit)));
        }
        fn report(&self, _out: &mut dyn fmt::Write) -> fmt::Result {
            Ok(())
        }
    }

    #[test]
    fn with_two_variants_the_trial_rotates_three_sides_then_the_jit_chooses() {
        let log = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut h = Hooks::new(tick, 1, Some(Box::new(TwoVariants { log: log.clone() }))).with_trial(2);
        let norm = Op::RmsNorm { dim: 1 };
        let mut jit_ran = Vec::new();
        for _ in 0..4 {
            h.token(KernelSet::scalar(), &[], 1);
            for _ in 0..3 {
                let t0 = h.start(norm);
                jit_ran.push(h.specialiser().is_some());
                h.record(norm, t0);
            }
        }
        // Token 0 before the swap: nothing selected. Trial tokens 1 and 2: AOT,
        // 0, 1 then 1, 0, AOT. Token 3: the JIT's own choice (None).
        let want = ["Some(0)", "Some(1)", "Some(1)", "Some(0)", "review aot 2 jit 4 variants [2, 2]", "None", "None", "None"];
        assert_eq!(*log.lock().expect("log"), want);
        assert_eq!(jit_ran, [true, true, true, false, true, true, true, true, false, true, true, true]);
    }

    #[test]
    fn trial_sides_rotate_and_reverse() {
        let one: Vec<Option<usize>> = (0..8).map(|k| trial_side(k, 1)).collect();
        assert_eq!(one, [None, Some(0), Some(0), None, None, Some(0), Some(0), None]);
        let two: Vec<Option<usize>> = (0..6).map(|k| trial_side(k, 2)).collect();
        assert_eq!(two, [None, Some(0), Some(1), Some(1), Some(0), None]);
    }

    #[test]
    fn a_prefill_batch_counts_its_tokens_for_the_warm_up_and_the_trial() {
        let rec = Recorder::default();
        let log = rec.log.clone();
        let mut h = Hooks::new(tick, 8, Some(Box::new(rec))).with_trial(8);
        let norm = Op::RmsNorm { dim: 1 };
        // A batch of 16 (the warm-up), a batch of 16 (the trial, both sides), then tokens.
        for n in [16, 16, 1, 1] {
            h.token(KernelSet::scalar(), &[], n);
            for _ in 0..n {
                let t0 = h.start(norm);
                h.record(norm, t0);
            }
        }
        assert_eq!(*log.lock().expect("log"), ["specialise", "review 16 Some(8) Some(8)"]);
    }

    #[test]
    fn no_trial_without_a_warm_up() {
        let rec = Recorder::default();
        let log = rec.log.clone();
        let mut h = Hooks::new(tick, 0, Some(Box::new(rec))).with_trial(4);
        for _ in 0..6 {
            h.token(KernelSet::scalar(), &[], 1);
            assert!(h.specialiser().is_some(), "the JIT is never switched off");
        }
        assert_eq!(*log.lock().expect("log"), ["specialise"]);
        assert!(h.trial().is_none());
    }

    #[test]
    fn profile_orders_by_cycles_and_counts_calls() {
        let mut p = Profile::default();
        p.add(Op::RmsNorm { dim: 8 }, 10);
        p.add(Op::Matmul { rows: 4, cols: 8 }, 100);
        p.add(Op::RmsNorm { dim: 8 }, 15);
        let h = p.hottest();
        assert_eq!(h[0].op, Op::Matmul { rows: 4, cols: 8 });
        assert_eq!(p.get(Op::RmsNorm { dim: 8 }), Some(OpStats { op: Op::RmsNorm { dim: 8 }, calls: 2, cycles: 25 }));
        assert_eq!(p.get(Op::RmsNorm { dim: 8 }).map(|s| s.cycles_per_call()), Some(12));
        assert_eq!(p.get(Op::Rope { head: 8 }), None);
    }
}
