//! The engine against llama2.c run.c's transcripts for stories260K (models/reference).
use bareflow_llm::checkpoint::aligned;
use bareflow_llm::generate::Generation;
use bareflow_llm::kernels::{KernelKind, KernelSet};
use bareflow_llm::kernels::pool::WorkerPool;
use bareflow_llm::{Checkpoint, Parallel, Sampler, Sequential, Tokenizer, Transformer, WeightMode, generate};

fn models() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models")
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(models().join(name)).unwrap_or_else(|e| panic!("models/{name}: {e}"))
}

struct Transcript {
    prompt_ids: Vec<u32>,
    stream_ids: Vec<u32>,
    stdout: Vec<u8>,
}

fn transcript(case: &str) -> Transcript {
    let ids = String::from_utf8(read(&format!("reference/{case}.ids"))).unwrap();
    let field = |name: &str| -> Vec<u32> {
        let line = ids.lines().find(|l| l.starts_with(name)).unwrap();
        line[name.len()..].split_whitespace().map(|t| t.parse().unwrap()).collect()
    };
    let txt = read(&format!("reference/{case}.txt"));
    let first_nl = txt.iter().position(|&b| b == b'\n').unwrap();
    Transcript { prompt_ids: field("prompt_ids:"), stream_ids: field("stream_ids:"), stdout: txt[first_nl + 1..].to_vec() }
}

fn run(kind: KernelKind, mode: WeightMode, temp: f32, topp: f32, seed: u64, steps: usize, par: &dyn Parallel) -> Generation {
    run_prompt(kind, mode, temp, topp, seed, steps, par, "")
}

#[allow(clippy::too_many_arguments)]
fn run_prompt(
    kind: KernelKind,
    mode: WeightMode,
    temp: f32,
    topp: f32,
    seed: u64,
    steps: usize,
    par: &dyn Parallel,
    prompt: &str,
) -> Generation {
    let bytes = read("stories260K.bin");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).unwrap();
    let tok = Tokenizer::parse(&read("tok512.bin"), ckpt.config.vocab_size).unwrap();
    let mut model = Transformer::new(&ckpt, KernelSet::new(kind).unwrap(), mode);
    let mut sampler = Sampler::new(temp, topp, seed);
    generate(&mut model, &tok, &mut sampler, prompt, steps, par, &mut |_, _| {}).unwrap()
}

/// The start of the greedy transcript fed back as a prompt: its first `k`
/// pieces, as text, encode to its first `k` ids (checked), so run.c's greedy
/// run with that prompt is the same run. The prompt goes through the batched
/// prefill, so this checks it against the reference.
#[test]
fn greedy_transcript_with_its_own_start_as_the_prompt() {
    let t = transcript("greedy_no_prompt_n256");
    let tok = Tokenizer::parse(&read("tok512.bin"), 512).unwrap();
    for k in [1, 4, 16, 17, 40, 100] {
        let mut text = Vec::new();
        let mut prev = 1;
        for &id in &t.stream_ids[..k] {
            text.extend_from_slice(tok.decode_printable(prev, id));
            prev = id;
        }
        let prompt = String::from_utf8(text).unwrap();
        let ids = tok.encode(&prompt, true, false).unwrap();
        assert_eq!(ids[1..], t.stream_ids[..k], "the first {k} pieces do not encode back to the transcript's ids");
        for kind in [KernelKind::Scalar, KernelKind::Sse2, KernelKind::Avx2, KernelKind::Avx512] {
            if !available(kind) {
                continue;
            }
            let g = run_prompt(kind, WeightMode::F32, 0.0, 0.9, 0, 256, &Sequential, &prompt);
            assert_eq!(g.prefilled, k, "{} kernels", kind.name());
            assert_eq!(g.tokens, t.stream_ids, "{} kernels, prompt of {k} tokens: ids differ", kind.name());
            assert_eq!(g.text, t.stdout, "{} kernels, prompt of {k} tokens: stdout differs", kind.name());
        }
    }
}

fn check(g: &Generation, t: &Transcript) {
    assert_eq!(g.prompt_tokens, t.prompt_ids);
    assert_eq!(g.tokens, t.stream_ids, "token ids differ");
    assert_eq!(String::from_utf8_lossy(&g.text), String::from_utf8_lossy(&t.stdout));
    assert_eq!(g.text, t.stdout, "stdout differs");
}

fn available(kind: KernelKind) -> bool {
    KernelSet::new(kind).is_ok()
}

/// The greedy (temperature 0) and seeded-sampling transcripts with `kind`'s
/// kernels, one thread; a set this CPU lacks says so and passes.
fn greedy_matches(kind: KernelKind) {
    if !available(kind) {
        eprintln!("no {} kernels here: skipped", kind.name());
        return;
    }
    let t = transcript("greedy_no_prompt_n256");
    check(&run(kind, WeightMode::F32, 0.0, 0.9, 0, 256, &Sequential), &t);
}

fn sampled_matches(kind: KernelKind) {
    if !available(kind) {
        eprintln!("no {} kernels here: skipped", kind.name());
        return;
    }
    let t = transcript("sample_t1.0_p0.9_s133742_no_prompt_n256");
    check(&run(kind, WeightMode::F32, 1.0, 0.9, 133742, 256, &Sequential), &t);
}

#[test]
fn greedy_transcript_scalar() {
    greedy_matches(KernelKind::Scalar);
}

#[test]
fn sampled_transcript_scalar() {
    sampled_matches(KernelKind::Scalar);
}

#[test]
fn greedy_transcript_sse2() {
    greedy_matches(KernelKind::Sse2);
}

#[test]
fn sampled_transcript_sse2() {
    sampled_matches(KernelKind::Sse2);
}

#[test]
fn greedy_transcript_avx2() {
    greedy_matches(KernelKind::Avx2);
}

#[test]
fn sampled_transcript_avx2() {
    sampled_matches(KernelKind::Avx2);
}

#[test]
fn greedy_transcript_avx512() {
    greedy_matches(KernelKind::Avx512);
}

#[test]
fn sampled_transcript_avx512() {
    sampled_matches(KernelKind::Avx512);
}

#[test]
fn greedy_transcript_with_worker_pool() {
    let (pool, workers) = WorkerPool::new(3);
    let t = transcript("greedy_no_prompt_n256");
    std::thread::scope(|s| {
        for w in &workers {
            s.spawn(|| w.run(&std::thread::yield_now));
        }
        let g = run(KernelSet::best().kind(), WeightMode::F32, 0.0, 0.9, 0, 256, &pool);
        pool.stop();
        check(&g, &t);
    });
}

/// Max |logit difference| of each SIMD set against the scalar set over the
/// greedy reference run (teacher-forced on the reference stream).
#[test]
fn simd_logit_error_is_small() {
    let t = transcript("greedy_no_prompt_n256");
    let bytes = read("stories260K.bin");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).unwrap();
    let mut reference = Transformer::new(&ckpt, KernelSet::scalar(), WeightMode::F32);
    for kind in [KernelKind::Sse2, KernelKind::Avx2, KernelKind::Avx512] {
        let Ok(ks) = KernelSet::new(kind) else { continue };
        let mut m = Transformer::new(&ckpt, ks, WeightMode::F32);
        let mut max_err = 0f32;
        let mut token = 1;
        for (pos, &next) in t.stream_ids.iter().enumerate() {
            let a = reference.forward(token, pos, &Sequential).unwrap().to_vec();
            let b = m.forward(token, pos, &Sequential).unwrap();
            for (x, y) in a.iter().zip(b.iter()) {
                max_err = max_err.max((x - y).abs());
            }
            token = next;
        }
        eprintln!("{}: max |logit - scalar logit| over 256 positions = {max_err:e}", kind.name());
        assert!(max_err < 1e-3, "{}: {max_err}", kind.name());
        assert!(max_err > 0.0 || kind == KernelKind::Scalar, "suspicious: bit-identical to scalar");
    }
}

/// Int8 weights against fp32: greedy agreement and logit error, teacher-forced
/// on the fp32 greedy stream so that one early difference does not cascade.
#[test]
fn int8_quality() {
    let t = transcript("greedy_no_prompt_n256");
    let bytes = read("stories260K.bin");
    let mut store = None;
    let ckpt = Checkpoint::parse(aligned(&bytes, &mut store)).unwrap();
    let ks = KernelSet::best();
    let mut fp = Transformer::new(&ckpt, KernelSet::scalar(), WeightMode::F32);
    let mut q8 = Transformer::new(&ckpt, ks, WeightMode::Q8);
    let (mut agree, mut max_err, mut sum_err, mut count) = (0usize, 0f32, 0f64, 0usize);
    let mut token = 1;
    for (pos, &next) in t.stream_ids.iter().enumerate() {
        let a = fp.forward(token, pos, &Sequential).unwrap().to_vec();
        let b = q8.forward(token, pos, &Sequential).unwrap().to_vec();
        if bareflow_llm::sampler::argmax(&a) == bareflow_llm::sampler::argmax(&b) {
            agree += 1;
        }
        for (x, y) in a.iter().zip(&b) {
            let e = (x - y).abs();
            max_err = max_err.max(e);
            sum_err += e as f64;
            count += 1;
        }
        token = next;
    }
    let rate = agree as f64 / t.stream_ids.len() as f64;
    let mean = sum_err / count as f64;
    eprintln!("int8 ({}): greedy agreement {rate:.3}, max logit error {max_err:.4}, mean {mean:.5}", ks.kind().name());
    assert!(rate >= 0.9, "agreement {rate}");
    assert!(max_err < 2.0 && mean < 0.2, "max {max_err} mean {mean}");
    assert!(max_err > 0.0, "int8 logits identical to fp32: quantization not applied?");
    // And a free-running int8 greedy generation still reads like the reference.
    let g = run(ks.kind(), WeightMode::Q8, 0.0, 0.9, 0, 256, &Sequential);
    let same = g.tokens.iter().zip(&t.stream_ids).take_while(|(a, b)| a == b).count();
    eprintln!("int8 free-running greedy: first {same} of 256 tokens identical to the reference");
}
