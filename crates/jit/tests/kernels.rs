//! Generated kernels against the engine's kernels over many random shapes,
//! placed in real hosted W^X pages; refusals of impossible shapes.

use bareflow_jit::engine::{LlmJit, Rng, check_matvec, check_q8};
use bareflow_jit::{Isa, JitError, MatvecSpec, Program, Q8Spec};
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::profile::{Op, OpStats, Specialiser};
use bareflow_llm::KernelKind;

fn sets() -> Vec<(KernelSet, Isa)> {
    [(KernelKind::Avx2, Isa::Avx2Fma), (KernelKind::Sse2, Isa::Sse2)]
        .into_iter()
        .filter_map(|(k, i)| KernelSet::new(k).ok().map(|s| (s, i)))
        .collect()
}

#[test]
fn generated_matvec_is_bit_exact_with_the_aot_kernel_over_random_shapes() {
    let sets = sets();
    assert!(!sets.is_empty(), "no SIMD kernel set on this CPU");
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for (ks, isa) in sets {
        // Every column count up to 80 (all tails), then random ones, and the model shapes.
        let mut cols: Vec<usize> = (1..=80).collect();
        cols.extend((0..40).map(|_| 1 + (rng.next_u64() % 3000) as usize));
        cols.extend([172, 288, 768, 2048]);
        for &c in &cols {
            let blocks = 1..=MatvecSpec::max_block_rows(isa);
            for block_rows in blocks {
                let prefetch = [0, 256, 512][(rng.next_u64() % 3) as usize];
                let spec = MatvecSpec { cols: c, isa, block_rows, prefetch };
                let mut prog = Program::new();
                prog.add_matvec(spec).expect("generate");
                let k = prog.place().expect("place").matvec.pop().expect("one kernel");
                if let Err(e) = check_matvec(&k, ks, &mut rng) {
                    panic!("{spec:?}: {e}");
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200);
}

#[test]
fn every_row_is_written_and_nothing_past_the_end() {
    for (ks, isa) in sets() {
        let mut rng = Rng::new(11);
        for block_rows in 1..=MatvecSpec::max_block_rows(isa) {
            let spec = MatvecSpec { cols: 45, isa, block_rows, prefetch: 0 };
            let mut prog = Program::new();
            prog.add_matvec(spec).unwrap();
            let k = prog.place().unwrap().matvec.pop().unwrap();
            for rows in 0..20 {
                let x = rng.vec(45);
                let w = rng.vec(rows * 45 + 45); // one spare row that must not be read into out
                let mut out = vec![f32::NAN; rows + 3];
                k.run(&mut out[..rows], &x, &w).unwrap();
                let mut want = vec![0.0; rows];
                ks.matmul(&mut want, &x, &w);
                assert_eq!(&out[..rows], &want[..], "{spec:?} rows {rows}");
                assert!(out[rows..].iter().all(|v| v.is_nan()), "{spec:?}: wrote past {rows} rows");
            }
        }
    }
}

#[test]
fn impossible_shapes_are_refused() {
    let p = |cols, isa, block_rows, prefetch| Program::new().add_matvec(MatvecSpec { cols, isa, block_rows, prefetch });
    assert_eq!(p(0, Isa::Avx2Fma, 2, 0), Err(JitError::ZeroColumns));
    assert!(matches!(p(1 << 20, Isa::Avx2Fma, 2, 0), Err(JitError::TooManyColumns { .. })));
    assert!(matches!(p(64, Isa::Avx2Fma, 4, 0), Err(JitError::BadBlockRows { rows: 4, max: 3, .. })));
    assert!(matches!(p(64, Isa::Sse2, 0, 0), Err(JitError::BadBlockRows { rows: 0, .. })));
    assert_eq!(p(64, Isa::Sse2, 2, 100), Err(JitError::BadPrefetch(100)));
    // Messages say what to do.
    let msg = p(64, Isa::Avx2Fma, 9, 0).unwrap_err().to_string();
    assert!(msg.contains("use 1 to 3"), "{msg}");
}

#[test]
#[should_panic(expected = "made for 16 columns")]
fn a_call_with_the_wrong_dims_is_stopped_before_the_code_runs() {
    let mut prog = Program::new();
    prog.add_matvec(MatvecSpec::tuned(16, Isa::Sse2)).unwrap();
    let k = prog.place().unwrap().matvec.pop().unwrap();
    let mut out = [0.0; 2];
    let _ = k.run(&mut out, &[0.0; 15], &[0.0; 32]);
}

#[test]
#[should_panic(expected = "weights shorter")]
fn short_weights_are_stopped_before_the_code_runs() {
    let mut prog = Program::new();
    prog.add_matvec(MatvecSpec::tuned(16, Isa::Sse2)).unwrap();
    let k = prog.place().unwrap().matvec.pop().unwrap();
    let mut out = [0.0; 3];
    let _ = k.run(&mut out, &[0.0; 16], &[0.0; 47]);
}

#[test]
fn the_engine_jit_installs_the_hottest_shapes_and_runs_them() {
    let Some((ks, _)) = sets().into_iter().next() else { return };
    let mut jit = LlmJit::new(|| 0, 2, false);
    let hot = [
        OpStats { op: Op::Matmul { rows: 100, cols: 64 }, calls: 5, cycles: 900 },
        OpStats { op: Op::Attention { seq_len: 64 }, calls: 5, cycles: 500 },
        OpStats { op: Op::Matmul { rows: 64, cols: 172 }, calls: 5, cycles: 400 },
        OpStats { op: Op::Matmul { rows: 64, cols: 64 }, calls: 5, cycles: 300 }, // same cols as the first
        OpStats { op: Op::Matmul { rows: 8, cols: 8 }, calls: 5, cycles: 1 }, // beyond max_kernels
    ];
    jit.specialise(&hot, ks);
    let cols: Vec<usize> = jit.installed().iter().map(|k| k.spec().cols).collect();
    assert_eq!(cols, [64, 172], "log: {:?}", jit.log());
    let mut rng = Rng::new(3);
    let (x, w) = (rng.vec(172), rng.vec(172 * 10));
    let (mut a, mut b) = (vec![0.0; 10], vec![0.0; 10]);
    assert!(jit.matmul(&mut a, &x, &w));
    ks.matmul(&mut b, &x, &w);
    assert_eq!(a, b);
    assert!(!jit.matmul(&mut a, &x[..8], &w), "no kernel for 8 columns");
    let mut report = String::new();
    jit.report(&mut report).unwrap();
    assert!(report.contains("2 installed"), "{report}");
}

#[test]
fn the_scalar_set_is_left_alone() {
    let mut jit = LlmJit::new(|| 0, 4, true);
    jit.specialise(&[OpStats { op: Op::Matmul { rows: 4, cols: 64 }, calls: 1, cycles: 1 }], KernelSet::scalar());
    assert!(jit.installed().is_empty());
    assert!(jit.log()[0].contains("the scalar kernels are in use"), "{:?}", jit.log());
}

#[test]
fn generated_int8_matvec_is_bit_exact_with_the_aot_kernel() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut rng = Rng::new(5);
    let mut cols: Vec<usize> = (1..=12).map(|g| g * 32).collect();
    cols.extend([192, 288, 768, 2048]);
    cols.extend((0..10).map(|_| 32 * (1 + (rng.next_u64() % 96) as usize)));
    let vnni = bareflow_jit::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect());
    if !vnni {
        eprintln!("this CPU has no AVX-512 VNNI: the VNNI int8 kernels are not run here");
    }
    for &c in &cols {
        let blocks = (1..=6).map(|b| (b, false)).chain([(2, true)]);
        for ((block_rows, split), vnni) in blocks.flat_map(|b| [(b, false), (b, true)]).filter(|&(_, v)| !v || vnni) {
            // With and without prefetch: the hint must not change a bit.
            let prefetch = if block_rows % 2 == 0 && !split { 0 } else { 64 * block_rows as u32 * 7 };
            let spec = Q8Spec { cols: c, block_rows, prefetch, vnni, split, nta: split || block_rows == 3 };
            let mut prog = Program::new();
            prog.add_q8(spec).expect("generate");
            let k = prog.place().expect("place").q8.pop().expect("one kernel");
            if let Err(e) = check_q8(&k, ks, &mut rng) {
                panic!("{spec:?}: {e}");
            }
        }
    }
}

/// VNNI's `vpdpbusd` and AVX2's `vpmaddubsw`+`vpmaddwd` agree on every
/// byte, -128 included (which the quantizer never makes): no pair sum reaches
/// i16 saturation, so both give the same i32 lanes and the same bits.
#[test]
fn vnni_int8_gives_the_avx2_bits_over_the_whole_byte_range() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    if !bareflow_jit::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect()) {
        eprintln!("this CPU has no AVX-512 VNNI: nothing to compare");
        return;
    }
    let mut rng = Rng::new(77);
    for (cols, rows) in [(32, 1), (288, 7), (768, 5)] {
        let groups = cols / 32;
        let bytes = |rng: &mut Rng, n: usize, edge: bool| -> Vec<i8> {
            (0..n).map(|_| if edge { [-128i8, 127, -127][(rng.next_u64() % 3) as usize] } else { rng.next_u64() as i8 }).collect()
        };
        for edge in [false, true] {
            let (qw, qx) = (bytes(&mut rng, rows * cols, edge), bytes(&mut rng, cols, edge));
            let sw: Vec<f32> = (0..rows * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
            let sx: Vec<f32> = (0..groups).map(|_| rng.next_f32().abs() / 127.0).collect();
            let mut want = vec![0.0; rows];
            ks.q8_matmul(&mut want, &qw, &sw, &qx, &sx);
            for block_rows in [1, 2, 3] {
                let mut p = Program::new();
                p.add_q8(Q8Spec { cols, block_rows, prefetch: 0, vnni: true, split: false, nta: false }).expect("generate");
                let k = p.place().expect("place").q8.pop().expect("one kernel");
                let mut got = vec![f32::NAN; rows];
                k.run(&mut got, &qw, &sw, &qx, &sx).expect("run");
                let (g, w): (Vec<u32>, Vec<u32>) = (got.iter().map(|v| v.to_bits()).collect(), want.iter().map(|v| v.to_bits()).collect());
                assert_eq!(g, w, "{cols} columns, {rows} rows, blocks of {block_rows}, edge bytes {edge}");
            }
        }
    }
}

#[test]
fn impossible_int8_shapes_are_refused() {
    let p = |cols, block_rows| Program::new().add_q8(Q8Spec { cols, block_rows, prefetch: 0, vnni: false, split: false, nta: false });
    assert_eq!(p(0, 4), Err(JitError::ZeroColumns));
    assert_eq!(p(100, 4), Err(JitError::NotWholeGroups(100)));
    assert!(matches!(p(32 * 4096, 4), Err(JitError::TooManyColumns { .. })));
    assert!(matches!(p(64, 7), Err(JitError::BadBlockRows { rows: 7, max: 6, .. })));
    let pf = |prefetch| Program::new().add_q8(Q8Spec { cols: 64, block_rows: 1, prefetch, vnni: false, split: false, nta: false });
    assert_eq!(pf(100), Err(JitError::BadPrefetch(100)));
    assert_eq!(pf(65536 + 64), Err(JitError::BadPrefetch(65536 + 64)));
    assert!(pf(65536).is_ok());
    let split = |block_rows| Program::new().add_q8(Q8Spec { cols: 64, block_rows, prefetch: 0, vnni: false, split: true, nta: false });
    assert!(matches!(split(3), Err(JitError::BadBlockRows { rows: 3, max: 2, .. })));
    assert!(split(2).is_ok());
}

/// The check catches code that does not give the AOT kernel's bits: AVX2 code
/// checked against the SSE2 set (another summation order) is refused, with a
/// message naming the row and both values; the same code passes against AVX2.
#[test]
fn a_kernel_that_differs_from_the_aot_bits_is_refused_by_the_check() {
    let (Ok(avx2), Ok(sse2)) = (KernelSet::new(KernelKind::Avx2), KernelSet::new(KernelKind::Sse2)) else { return };
    let mut p = Program::new();
    p.add_matvec(MatvecSpec::tuned(288, Isa::Avx2Fma)).expect("generate");
    let k = p.place().expect("place").matvec.pop().expect("one kernel");
    let mut rng = Rng::new(21);
    assert!(check_matvec(&k, avx2, &mut rng).is_ok());
    match check_matvec(&k, sse2, &mut rng) {
        Err(e @ bareflow_jit::engine::CheckError::NotBitExact { .. }) => {
            let m = e.to_string();
            assert!(m.contains("ahead-of-time kernel gives") && m.contains("summation order"), "{m}");
        }
        other => panic!("AVX2 code passed as SSE2's bits: {other:?}"),
    }
}

/// The in-place trial races the int8 variants op by op: each op keeps its
/// fastest variant if it beat the ahead-of-time kernel, else the AOT kernel;
/// a kernel no op chose is removed.
#[test]
fn the_trial_picks_an_int8_variant_per_op_or_the_aot_kernel() {
    use bareflow_llm::profile::Trial;
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut jit = LlmJit::new(|| 0, 4, false);
    let (a, b, c) = (Op::Q8Matmul { rows: 64, cols: 64 }, Op::Q8Matmul { rows: 8, cols: 64 }, Op::Q8Matmul { rows: 16, cols: 96 });
    let hot: Vec<OpStats> = [a, b, c].into_iter().map(|op| OpStats { op, calls: 1, cycles: 10 }).collect();
    jit.specialise(&hot, ks);
    assert_eq!(jit.variants(), 2, "{:?}", jit.log());
    assert_eq!(jit.installed_q8().len(), 4, "two widths, two variants each");
    // Cycles per call: a AOT 100, one row 80, two rows 50; b 100, 70, 90; c 50, 60, 70.
    let mut t = Trial { variants: 2, tokens: 4, ..Trial::default() };
    for (op, cycles) in [(a, [100, 80, 50]), (b, [100, 70, 90]), (c, [50, 60, 70])] {
        for _ in 0..3 {
            t.add(op, None, cycles[0]);
            for v in 0..2 {
                t.add(op, Some(v), cycles[1 + v]);
            }
        }
        // One call an interrupt stretched moves the mean, not the median.
        t.add(op, Some(0), 100_000);
    }
    jit.review(&t);
    let chosen: Vec<(Op, Option<usize>)> = jit.choices().iter().map(|c| (c.op, c.variant)).collect();
    assert!(chosen.contains(&(a, Some(1))) && chosen.contains(&(b, Some(0))) && chosen.contains(&(c, None)), "{chosen:?}");
    assert!(!jit.has_q8_matmul(96), "no op chose a 96-column kernel: removed");
    assert_eq!(jit.installed_q8().len(), 2);
    // After the trial each op runs what it chose: a generated kernel for a and b, none for c.
    let mut rng = Rng::new(3);
    let q = |rng: &mut Rng, n: usize| -> Vec<i8> { (0..n).map(|_| rng.next_u64() as i8 / 2).collect() };
    for (op, rows, cols, ran) in [(a, 64, 64, true), (b, 8, 64, true), (c, 16, 96, false)] {
        let (qw, qx) = (q(&mut rng, rows * cols), q(&mut rng, cols));
        let (sw, sx) = (vec![0.01f32; rows * cols / 32], vec![0.02f32; cols / 32]);
        let mut out = vec![f32::NAN; rows];
        jit.select(op, None);
        assert_eq!(jit.q8_matmul(&mut out, &qw, &sw, &qx, &sx), ran, "{op}");
        if ran {
            let mut want = vec![0.0; rows];
            ks.q8_matmul(&mut want, &qw, &sw, &qx, &sx);
            assert_eq!(out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
    }
    let mut report = String::new();
    jit.report(&mut report).unwrap();
    assert!(report.contains("q8 matmul 64x64: 2 row(s) (halves), 4+ rows/3072 B ahead, nta") && report.contains("q8 matmul 16x96: the ahead-of-time kernel"), "{report}");
    // The first variant is the engine's tuned spec (what `--jit only` runs).
    use bareflow_jit::engine::Q8_VARIANTS;
    assert_eq!(Q8_VARIANTS[0].spec(288, false), Q8Spec::tuned(288));
    assert_eq!(Q8_VARIANTS[0].spec(768, true), Q8Spec::tuned_vnni(768));
}

/// The batched int8 product (a prompt's prefill) on the generated int8
/// kernel gives `KernelSet::q8_matmat`'s bits; a call whose shapes do not
/// fit is declined (false), for the AOT product to run.
#[test]
fn the_batched_int8_product_runs_on_the_generated_kernel_with_the_aot_bits() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut jit = LlmJit::new(|| 0, 4, true);
    jit.specialise(&[OpStats { op: Op::Q8Matmul { rows: 8, cols: 96 }, calls: 1, cycles: 1 }], ks);
    assert_eq!(jit.installed_q8().len(), 1, "{:?}", jit.log());
    let mut rng = Rng::new(9);
    let (cols, groups) = (96, 3);
    for (rows, t) in [(1, 1), (13, 5), (70, 16), (4, 3)] {
        let qw: Vec<i8> = (0..rows * cols).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
        let qx: Vec<i8> = (0..t * cols).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
        let sw: Vec<f32> = (0..rows * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let sx: Vec<f32> = (0..t * groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let mut got = vec![f32::NAN; rows * t];
        assert!(jit.q8_matmat(&mut got, &qw, &sw, &qx, &sx, groups), "{rows} rows, {t} tokens");
        let mut want = vec![0.0; rows * t];
        ks.q8_matmat(&mut want, &qw, &sw, &qx, &sx, groups);
        let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{rows} rows, {t} tokens");
        // Scales for one token too few: declined, nothing asserted of `got`.
        assert!(!jit.q8_matmat(&mut got, &qw, &sw, &qx, &sx[..sx.len() - groups], groups));
    }
    // No kernel for 64 columns.
    assert!(!jit.q8_matmat(&mut [0.0; 2], &[0; 128], &[1.0; 4], &[0; 64], &[1.0; 2], 2));
}

/// The batched int8 kernel (VNNI: each weight group loaded once for up to 4
/// tokens) gives `KernelSet::q8_matmat`'s bits over shapes and token counts;
/// impossible shapes are refused.
#[test]
fn batched_int8_kernels_are_bit_exact_with_the_aot_batched_product() {
    use bareflow_jit::Q8BatchSpec;
    use bareflow_jit::engine::check_q8_batch;
    let p = |cols, tokens| Program::new().add_q8_batch(Q8BatchSpec { cols, tokens });
    assert!(matches!(p(64, 5), Err(JitError::BadBlockRows { rows: 5, max: 4, .. })));
    assert!(matches!(p(64, 0), Err(JitError::BadBlockRows { rows: 0, .. })));
    assert_eq!(p(100, 2), Err(JitError::NotWholeGroups(100)));
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    if !bareflow_jit::q8::vnni_usable(&bareflow_llm::kernels::CpuFeatures::detect()) {
        eprintln!("this CPU has no AVX-512 VNNI: the batched int8 kernels are not run here");
        return;
    }
    let mut rng = Rng::new(31);
    for cols in [32, 64, 96, 192, 288, 768, 2048] {
        for tokens in 1..=4 {
            let spec = Q8BatchSpec { cols, tokens };
            let mut prog = Program::new();
            prog.add_q8_batch(spec).expect("generate");
            let k = prog.place().expect("place").q8_batch.pop().expect("one kernel");
            if let Err(e) = check_q8_batch(&k, ks, &mut rng) {
                panic!("{spec:?}: {e}");
            }
        }
    }
}
