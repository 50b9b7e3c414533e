//! `llm`: llama2.c's `run` as a BareFlow app. Same arguments as run.c
//! (`<checkpoint> [-z tokenizer] [-t temp] [-p topp] [-s seed] [-n steps]
//! [-i prompt] [-m generate]`) plus `--threads N`, `--int8` and
//! `--kernels scalar|sse2|avx2|avx512`. With no checkpoint it tells a story with the
//! stories260K model embedded in the binary (so the image is self-contained).
//! Prints tokens as they come, and `achieved tok/s: X` on stderr as run.c does.
#![cfg_attr(target_os = "none", no_std, no_main)]
#![forbid(unsafe_code)]

#[allow(unused_imports)] // hosted, std's prelude already has these
use bareflow_sys::prelude::*;
use bareflow_sys::{env, fs, time::Instant};

use bareflow_llm::checkpoint::aligned;
use bareflow_llm::{
    Checkpoint, KernelKind, KernelSet, Parallel, Sampler, Sequential, Tokenizer, Transformer, WeightMode, generate,
};

bareflow_sys::main!(app);

mod jit;

/// Bytes with 4-byte alignment, so the embedded checkpoint is borrowed in place.
#[repr(C, align(4))]
struct Aligned<B: ?Sized>(B);

static MODEL: &Aligned<[u8]> = &Aligned(*include_bytes!("../../../models/stories260K.bin"));
static TOKENIZER: &[u8] = include_bytes!("../../../models/tok512.bin");

struct Options {
    checkpoint: Option<String>,
    tokenizer: Option<String>,
    temperature: f32,
    topp: f32,
    seed: u64,
    steps: usize,
    prompt: String,
    threads: usize,
    int8: bool,
    kernels: Option<KernelKind>,
    jit: jit::Mode,
    jit_stats: bool,
    prefill: usize,
}

const USAGE: &str = "usage: llm [checkpoint] [options]
  -t <float>  temperature in [0,inf], default 1.0
  -p <float>  p value in top-p (nucleus) sampling in [0,1], default 0.9
  -s <int>    random seed, default: the monotonic clock
  -n <int>    number of steps to run for, default 256. 0 = max_seq_len
  -i <string> input prompt
  -z <string> tokenizer path (default tokenizer.bin; the embedded one without a checkpoint)
  -m <string> mode: generate (chat is not supported)
  --threads N threads for matmuls and attention heads (default: every CPU)
  --int8      int8 weights (groups of 32), converted at load
  --kernels K scalar|sse2|avx2|avx512 (default: the best this CPU has)
  --jit M     off|on|only: generated kernels after a warm-up of 8 tokens, each kept only
              if it beat the ahead-of-time one over the next 8, timed in place (on); or
              for every shape before the first token, failing if one is missing (only)
  --jit-stats print the jit_profile counters and what the JIT generated (stderr)
  --prefill N prompt tokens run per batch, each weight matrix read once per batch
              (default 16; 1 runs them one by one, as run.c; same output either way)
with no checkpoint: the embedded stories260K model and tok512 tokenizer";

fn parse_args(args: &[String]) -> Result<Options, String> {
    let mut o = Options {
        checkpoint: None,
        tokenizer: None,
        temperature: 1.0,
        topp: 0.9,
        seed: 0,
        steps: 256,
        prompt: String::new(),
        threads: default_threads(),
        int8: false,
        kernels: None,
        jit: jit::Mode::Off,
        jit_stats: false,
        prefill: bareflow_llm::model::PREFILL_BATCH,
    };
    let mut i = 0;
    if let Some(first) = args.first()
        && !first.starts_with('-')
    {
        o.checkpoint = Some(first.clone());
        i = 1;
    }
    while i < args.len() {
        let flag = args[i].as_str();
        match flag {
            "--int8" => {
                o.int8 = true;
                i += 1;
                continue;
            }
            "--jit-stats" => {
                o.jit_stats = true;
                i += 1;
                continue;
            }
            "-h" | "--help" => return Err(String::new()),
            _ => {}
        }
        let value = args.get(i + 1).ok_or_else(|| format!("{flag} needs a value"))?;
        let num = |what: &str| format!("{flag}: {value:?} is not {what}");
        match flag {
            "-t" => o.temperature = value.parse().map_err(|_| num("a number"))?,
            "-p" => o.topp = value.parse().map_err(|_| num("a number"))?,
            // run.c: atoi, and a seed <= 0 means "use the clock".
            "-s" => o.seed = value.parse::<i64>().map_err(|_| num("an integer"))?.max(0) as u64,
            "-n" => o.steps = value.parse::<i64>().map_err(|_| num("an integer"))?.max(0) as usize,
            "-i" => o.prompt = value.clone(),
            "-z" => o.tokenizer = Some(value.clone()),
            "-m" => match value.as_str() {
                "generate" => {}
                "chat" => return Err("chat mode is not supported; use -m generate".into()),
                m => return Err(format!("unknown mode {m:?}; use -m generate")),
            },
            "-y" => return Err("-y (system prompt) is for chat mode, which is not supported".into()),
            "--threads" => o.threads = value.parse::<usize>().map_err(|_| num("a count"))?.max(1),
            "--prefill" => {
                o.prefill = value.parse::<usize>().ok().filter(|&n| n >= 1).ok_or_else(|| num("a count of at least 1"))?
            }
            "--kernels" => {
                o.kernels = Some(KernelKind::parse(value).ok_or_else(|| num("scalar, sse2, avx2 or avx512"))?)
            }
            "--jit" => o.jit = jit::Mode::parse(value).ok_or_else(|| num("off, on or only"))?,
            _ => return Err(format!("unknown option {flag}")),
        }
        i += 2;
    }
    if o.seed == 0 {
        o.seed = Instant::now().as_nanos().max(1);
    }
    Ok(o)
}

fn default_threads() -> usize {
    bareflow_sys::thread::available_parallelism()
}

fn app() -> i32 {
    let args = match env::try_args() {
        Ok(a) => a,
        Err(e) => {
            // run.c would tokenize the bytes; BareFlow's arguments are text, so say which one is not.
            let what = match e.index.checked_sub(1).and_then(|i| env::args().get(i).cloned()) {
                Some(f) if f == "-i" => "the prompt (-i): ",
                _ => "",
            };
            eprintln!("llm: error: {what}{e}");
            return 2;
        }
    };
    let o = match parse_args(args.get(1..).unwrap_or(&[])) {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("llm: {e}");
            }
            eprintln!("{USAGE}");
            return 2;
        }
    };
    match run(&o) {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("llm: error: {e}");
            1
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    let file;
    let mut store = None;
    let ckpt_bytes: &[u8] = match &o.checkpoint {
        // In the image a boot-time file is the boot module's memory, borrowed in
        // place; `aligned` copies only if the bytes are not 4-aligned after the header.
        Some(path) => {
            file = fs::File::open(path).map_err(|e| format!("cannot read checkpoint: {e}"))?;
            aligned(file.as_bytes(), &mut store)
        }
        None => &MODEL.0,
    };
    let ckpt = Checkpoint::parse(ckpt_bytes).map_err(|e| e.to_string())?;
    let tok_file;
    let tok_bytes: &[u8] = match (&o.tokenizer, &o.checkpoint) {
        (Some(path), _) => {
            tok_file = fs::read(path).map_err(|e| format!("cannot read tokenizer: {e}"))?;
            &tok_file
        }
        (None, Some(_)) => {
            tok_file = fs::read("tokenizer.bin").map_err(|e| format!("cannot read tokenizer (give one with -z): {e}"))?;
            &tok_file
        }
        (None, None) => TOKENIZER,
    };
    let tokenizer = Tokenizer::parse(tok_bytes, ckpt.config.vocab_size).map_err(|e| e.to_string())?;
    let kernels = match o.kernels {
        Some(k) => KernelSet::new(k).map_err(|e| e.to_string())?,
        None => KernelSet::best(),
    };
    let mode = if o.int8 { WeightMode::Q8 } else { WeightMode::F32 };
    let mut model = Transformer::try_new(&ckpt, kernels, mode).map_err(|e| e.to_string())?;
    model.set_hooks(jit::hooks(o.jit));
    let mut sampler = Sampler::new(o.temperature, o.topp, o.seed);
    model.set_prefill_batch(o.prefill);
    with_parallel(o.threads, &mut |par| {
        // When each piece came out: the prompt's pieces all come right after
        // the prefill, then one per forward call.
        let begin = Instant::now();
        let mut stamps: Vec<Instant> = Vec::new();
        let g = generate(&mut model, &tokenizer, &mut sampler, &o.prompt, o.steps, par, &mut |_, piece| {
            // Raw bytes, as run.c's printf("%s"): byte pieces need not be UTF-8.
            bareflow_sys::io::write_stdout(piece);
            stamps.push(Instant::now());
        })
        .map_err(|e| e.to_string())?;
        println!();
        if g.prefilled > 0
            && let Some(&first) = stamps.first()
        {
            let secs = first.duration_since(begin).as_secs_f64();
            eprintln!(
                "prompt: {} tokens in {:.3} ms, {:.1} tok/s (batches of {})",
                g.prefilled,
                secs * 1e3,
                g.prefilled as f64 / secs,
                model.prefill_batch()
            );
        }
        // run.c times from the end of the first forward call and counts the
        // positions after it; here the first forward call after the prefill.
        if let Some(&start) = stamps.get(g.prefilled)
            && g.positions > g.prefilled + 1
        {
            let secs = start.elapsed().as_secs_f64();
            eprintln!("achieved tok/s: {:.6}", (g.positions - g.prefilled - 1) as f64 / secs);
        }
        jit::finish(o.jit, o.jit_stats, &model)?;
        Ok(())
    })
}

/// Runs `f` with `threads` matmul threads: a worker pool on scoped threads
/// (std threads hosted, the kernel's threads on every CPU in the image).
fn with_parallel(threads: usize, f: &mut dyn FnMut(&dyn Parallel) -> Result<(), String>) -> Result<(), String> {
    use bareflow_sys::thread;
    if threads <= 1 {
        return f(&Sequential);
    }
    let (pool, workers) = bareflow_llm::kernels::pool::WorkerPool::new(threads);
    thread::scope(|s| {
        for w in &workers {
            s.spawn(|| w.run(&thread::yield_now));
        }
        let r = f(&pool);
        pool.stop();
        r
    })
}
