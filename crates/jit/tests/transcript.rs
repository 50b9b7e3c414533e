//! With the JIT on, the engine still reproduces run.c's stories260K
//! transcripts token for token (models/reference), for every SIMD kernel set,
//! with the swap after a warm-up and with generated kernels from the start.

use bareflow_jit::platform::cycles as rdtsc;
use bareflow_jit::engine::LlmJit;
use bareflow_llm::checkpoint::aligned;
use bareflow_llm::kernels::{KernelKind, KernelSet};
use bareflow_llm::profile::{Hooks, Op};
use bareflow_llm::{Checkpoint, Sampler, Sequential, Tokenizer, Transformer, WeightMode, generate};

fn models() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn stream_ids(case: &str) -> Vec<u32> {
    let ids = std::fs::read_to_string(models().join(format!("reference/{case}.ids"))).expect("reference ids");
    let line = ids.lines().find(|l| l.starts_with("stream_ids:")).expect("stream_ids line");
    line["stream_ids:".len()..].split_whitespace().map(|t| t.parse().expect("an id")).collect()
}

fn run(kind: KernelKind, warmup: usize, all: bool, temp: f32, seed: u64) -> (Vec<u32>, String, usize) {
    run_mode(kind, WeightMode::F32, warmup, all, temp, seed)
}

fn run_mode(kind: KernelKind, mode: WeightMode, warmup: usize, all: bool, temp: f32, seed: u64) -> (Vec<u32>, String, usize) {
    run_trial(kind, mode, warmup, 0, all, temp, seed)
}

/// With `trial` tokens of in-place trial after the swap (`--jit on`).
fn run_trial(kind: KernelKind, mode: WeightMode, warmup: usize, trial: usize, all: bool, temp: f32, seed: u64) -> (Vec<u32>, String, usize) {
    let bytes = std::fs::read(models().join("stories260K.bin")).expect("model");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let tok = Tokenizer::parse(&std::fs::read(models().join("tok512.bin")).expect("tokenizer"), ckpt.config.vocab_size)
        .expect("tokenizer");
    let ks = KernelSet::new(kind).expect("kernel set");
    let mut model = Transformer::new(&ckpt, ks, mode);
    if warmup != usize::MAX {
        let jit = LlmJit::new(|| 0, 4, all).with_min_q8_cols(0);
        model.set_hooks(Hooks::new(rdtsc, warmup, Some(Box::new(jit))).with_trial(trial));
    }
    let mut sampler = Sampler::new(temp, 0.9, seed);
    let g = generate(&mut model, &tok, &mut sampler, "", 256, &Sequential, &mut |_, _| {}).expect("generate");
    let mut stats = String::new();
    model.hooks().write_stats(&mut stats).expect("stats");
    let c = ckpt.config;
    let installed = [c.dim, c.hidden_dim]
        .into_iter()
        .filter(|&cols| {
            model.hooks().specialiser().is_some_and(|j| if mode == WeightMode::Q8 { j.has_q8_matmul(cols) } else { j.has_matmul(cols) })
        })
        .count();
    // The profile saw the classifier's product after the swap.
    let cls = if mode == WeightMode::Q8 { Op::Q8Matmul { rows: c.vocab_size, cols: c.dim } } else { Op::Matmul { rows: c.vocab_size, cols: c.dim } };
    assert!(warmup == usize::MAX || model.hooks().profile().get(cls).is_some(), "{stats}");
    (g.tokens, stats, installed)
}

#[test]
fn greedy_and_sampled_transcripts_are_unchanged_with_the_jit() {
    let greedy = stream_ids("greedy_no_prompt_n256");
    let sampled = stream_ids("sample_t1.0_p0.9_s133742_no_prompt_n256");
    let mut sets = 0;
    for kind in [KernelKind::Avx2, KernelKind::Avx512, KernelKind::Sse2] {
        if KernelSet::new(kind).is_err() {
            eprintln!("no {} here: skipped", kind.name());
            continue;
        }
        sets += 1;
        for (warmup, all) in [(8, false), (0, true)] {
            let (ids, stats, installed) = run(kind, warmup, all, 0.0, 0);
            assert_eq!(installed, 2, "{}: kernels for both widths: {stats}", kind.name());
            // RMSNorm, SwiGLU and RoPE at the set's own width (AVX-512: 16
            // lanes, opmasks for 172 and 8), and with AVX-512 attention's softmax.
            let vector_ops = match kind {
                KernelKind::Avx512 => 4,
                KernelKind::Avx2 => 3,
                _ => 0,
            };
            // With every shape asked for, the prefill's matrix-matrix products
            // too (64 and 172 columns; AVX2 order only), though no prompt runs.
            let matmat = if all && kind != KernelKind::Sse2 { 2 } else { 0 };
            assert!(stats.contains(&format!("{} installed", 2 + vector_ops + matmat)), "{stats}");
            assert_eq!(ids, greedy, "{} warm-up {warmup}: greedy ids differ\n{stats}", kind.name());
        }
        let (ids, stats, _) = run(kind, 8, false, 1.0, 133742);
        assert_eq!(ids, sampled, "{}: sampled ids differ\n{stats}", kind.name());
    }
    assert!(sets > 0, "no SIMD kernel set on this CPU");
}

/// `--jit on`'s in-place trial races the int8 variants op by op, then each op
/// runs what it chose: the ids stay those of the AOT int8 kernels, greedy and
/// sampled, and the stats name a choice for every int8 product.
#[test]
fn int8_generation_is_unchanged_through_the_variant_race() {
    if KernelSet::new(KernelKind::Avx2).is_err() {
        return;
    }
    for (temp, seed) in [(0.0, 0), (1.0, 133742)] {
        let (aot, _, _) = run_mode(KernelKind::Avx2, WeightMode::Q8, usize::MAX, false, temp, seed);
        let (ids, stats, _) = run_trial(KernelKind::Avx2, WeightMode::Q8, 8, 8, false, temp, seed);
        assert_eq!(ids, aot, "int8 ids differ from the AOT int8 kernels after the race\n{stats}");
        assert!(stats.contains("(2 variants)"), "{stats}");
        let choices = stats.lines().filter(|l| l.contains("note: q8 matmul") && l.contains("(in place, AOT/JIT:")).count();
        assert_eq!(choices, 5, "a choice per int8 shape (wq/wo 64x64, wk/wv 32x64, w1/w3 172x64, w2 64x172, the classifier 512x64):\n{stats}");
    }
}

#[test]
fn int8_generation_is_unchanged_with_the_jit() {
    if KernelSet::new(KernelKind::Avx2).is_err() {
        return;
    }
    // No hooks at all: the ahead-of-time int8 kernels.
    let (aot, _, _) = run_mode(KernelKind::Avx2, WeightMode::Q8, usize::MAX, false, 0.0, 0);
    for (warmup, all) in [(8, false), (0, true)] {
        let (ids, stats, installed) = run_mode(KernelKind::Avx2, WeightMode::Q8, warmup, all, 0.0, 0);
        assert_eq!(installed, 2, "int8 kernels for both widths (64 and 172 padded to 192): {stats}");
        assert_eq!(ids, aot, "warm-up {warmup}: int8 ids differ from the AOT int8 kernels\n{stats}");
    }
}

/// The AVX-512 set's int8 matmul is the AVX2 one, so generated int8 kernels
/// are installed under it too (f32 products stay ahead-of-time) and the ids
/// do not change.
#[test]
fn int8_generation_with_the_avx512_set_uses_generated_kernels_and_is_unchanged() {
    if KernelSet::new(KernelKind::Avx512).is_err() {
        eprintln!("no AVX-512 here: skipped");
        return;
    }
    let (aot, _, _) = run_mode(KernelKind::Avx512, WeightMode::Q8, usize::MAX, false, 0.0, 0);
    for (warmup, all) in [(0, true), (3, false)] {
        let (ids, stats, installed) = run_mode(KernelKind::Avx512, WeightMode::Q8, warmup, all, 0.0, 0);
        assert_eq!(installed, 2, "int8 kernels for both widths: {stats}");
        assert_eq!(ids, aot, "warm-up {warmup}: int8 ids differ from the AOT int8 kernels\n{stats}");
    }
}

#[test]
fn short_int8_rows_stay_on_the_aot_kernel_unless_every_shape_is_asked_for() {
    if KernelSet::new(KernelKind::Avx2).is_err() {
        return;
    }
    let bytes = std::fs::read(models().join("stories260K.bin")).expect("model");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let tok = Tokenizer::parse(&std::fs::read(models().join("tok512.bin")).expect("tokenizer"), ckpt.config.vocab_size)
        .expect("tokenizer");
    for (all, want) in [(false, false), (true, true)] {
        let mut model = Transformer::new(&ckpt, KernelSet::new(KernelKind::Avx2).expect("avx2"), WeightMode::Q8);
        // A threshold above the model's 64 columns (the default, 0, generates every shape).
        let jit = LlmJit::new(|| 0, 4, all).with_min_q8_cols(512);
        model.set_hooks(Hooks::new(rdtsc, if all { 0 } else { 2 }, Some(Box::new(jit))));
        let mut sampler = Sampler::new(0.0, 0.9, 0);
        generate(&mut model, &tok, &mut sampler, "", 8, &Sequential, &mut |_, _| {}).expect("generate");
        let has = model.hooks().specialiser().is_some_and(|j| j.has_q8_matmul(64));
        assert_eq!(has, want, "all = {all}");
    }
}

/// The greedy transcript's first 40 pieces as the prompt: its 40 positions run
/// as batched prefill (batches of 16, 16 and 8) on generated matrix-matrix
/// kernels, from the first batch (every shape generated before the first
/// token) or from the second (swap after a warm-up of 16 tokens), and the
/// story is still the reference's.
#[test]
fn the_prompt_prefill_on_generated_matmat_kernels_keeps_the_transcript() {
    let greedy = stream_ids("greedy_no_prompt_n256");
    let bytes = std::fs::read(models().join("stories260K.bin")).expect("model");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let tok = Tokenizer::parse(&std::fs::read(models().join("tok512.bin")).expect("tokenizer"), ckpt.config.vocab_size)
        .expect("tokenizer");
    let mut prompt = Vec::new();
    let mut prev = 1;
    for &id in &greedy[..40] {
        prompt.extend_from_slice(tok.decode_printable(prev, id));
        prev = id;
    }
    let prompt = String::from_utf8(prompt).expect("utf-8");
    let mut ran = 0;
    for kind in [KernelKind::Avx2, KernelKind::Avx512] {
        let Ok(ks) = KernelSet::new(kind) else { continue };
        for (warmup, all) in [(0, true), (16, false)] {
            let mut model = Transformer::new(&ckpt, ks, WeightMode::F32);
            let jit = LlmJit::new(|| 0, 4, all);
            model.set_hooks(Hooks::new(rdtsc, warmup, Some(Box::new(jit))));
            let mut sampler = Sampler::new(0.0, 0.9, 0);
            let g = generate(&mut model, &tok, &mut sampler, &prompt, 256, &Sequential, &mut |_, _| {}).expect("generate");
            let mut stats = String::new();
            model.hooks().write_stats(&mut stats).expect("stats");
            assert_eq!(g.prefilled, 40);
            assert_eq!(g.tokens, greedy, "{} set, warm-up {warmup}: tokens differ\n{stats}", kind.name());
            let matmat_kernels = stats.lines().filter(|l| l.contains("tiles of") && l.ends_with("installed")).count();
            assert_eq!(matmat_kernels, 2, "{} set, warm-up {warmup}: a generated kernel per column count (64, 172)\n{stats}", kind.name());
            // The batches after the swap ran on them (wq and wo: 64x64, 5 layers).
            let after = model.hooks().profile().get(Op::Matmat { rows: 64, cols: 64 }).map_or(0, |s| s.calls);
            assert_eq!(after, if warmup == 0 { 3 * 10 } else { 2 * 10 }, "{stats}");
            ran += 1;
        }
    }
    assert!(ran > 0 || KernelSet::new(KernelKind::Avx2).is_err());
}

/// int8 with a prompt: the prefill's batched int8 products run on the
/// generated int8 kernels (after the swap, and raced in the trial with
/// `--jit on`), and the ids stay those of the AOT int8 kernels.
#[test]
fn an_int8_prompt_prefill_on_generated_kernels_keeps_the_aot_int8_ids() {
    let bytes = std::fs::read(models().join("stories260K.bin")).expect("model");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).expect("checkpoint");
    let tok = Tokenizer::parse(&std::fs::read(models().join("tok512.bin")).expect("tokenizer"), ckpt.config.vocab_size)
        .expect("tokenizer");
    let prompt = "Once upon a time, there was a little girl named Lily. She loved to play outside in the park with her big red ball";
    let mut ran = 0;
    for kind in [KernelKind::Avx2, KernelKind::Avx512] {
        let Ok(ks) = KernelSet::new(kind) else { continue };
        let run = |hooks: Option<(usize, usize, bool)>| {
            let mut model = Transformer::new(&ckpt, ks, WeightMode::Q8);
            if let Some((warmup, trial, all)) = hooks {
                let jit = LlmJit::new(|| 0, 4, all);
                model.set_hooks(Hooks::new(rdtsc, warmup, Some(Box::new(jit))).with_trial(trial));
            }
            let mut sampler = Sampler::new(0.0, 0.9, 0);
            let g = generate(&mut model, &tok, &mut sampler, prompt, 200, &Sequential, &mut |_, _| {}).expect("generate");
            let mut stats = String::new();
            model.hooks().write_stats(&mut stats).expect("stats");
            let q8mm = model.hooks().profile().get(Op::Q8Matmat { rows: 64, cols: 64 }).map_or(0, |s| s.calls);
            (g.tokens, g.prefilled, stats, q8mm)
        };
        let (aot, prefilled, _, _) = run(None);
        assert!(prefilled > 16, "a prompt of more than one batch: {prefilled}");
        for (warmup, trial, all) in [(0, 0, true), (16, 16, false)] {
            let (ids, _, stats, after) = run(Some((warmup, trial, all)));
            assert_eq!(ids, aot, "{} set, warm-up {warmup}: int8 ids differ\n{stats}", kind.name());
            assert!(after > 0, "batched int8 products ran after the swap\n{stats}");
            if trial > 0 {
                assert!(stats.contains("note: q8 matmat 64x64:"), "a choice for the batched product\n{stats}");
            }
            if bareflow_jit::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect()) {
                // The batched VNNI kernels (4 tokens per weight load) were made for both widths.
                assert!(stats.contains("q8 matmat *x64") && stats.contains("q8 matmat *x192"), "{stats}");
            }
            ran += 1;
        }
    }
    assert!(ran > 0 || KernelSet::new(KernelKind::Avx2).is_err());
}
