//! Generated matrix-matrix kernels (the prefill's batched products) against
//! the engine's `KernelSet::matmat` over many random shapes and batch sizes,
//! placed in real hosted W^X pages; the engine picks them for a prompt and the
//! batched prefill keeps its bits; refusals of impossible shapes.
use bareflow_jit::engine::{LlmJit, Rng, check_matmat};
use bareflow_jit::{Isa, JitError, MatmatSpec, Program};
use bareflow_llm::KernelKind;
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::profile::{Op, OpStats, Specialiser};

/// The kernel sets whose products the generated code must match (both use
/// the AVX2 product), with each ISA the code is made for: AVX2, and where the
/// CPU has AVX-512 the row-pair zmm kernel too (the same bits).
fn cases() -> Vec<(KernelSet, Isa)> {
    let avx512 = KernelSet::new(KernelKind::Avx512).is_ok();
    if !avx512 {
        eprintln!("no AVX-512 here: the zmm matmat kernels are not run");
    }
    let isas: &[Isa] = if avx512 { &[Isa::Avx2Fma, Isa::Avx512] } else { &[Isa::Avx2Fma] };
    [KernelKind::Avx2, KernelKind::Avx512]
        .into_iter()
        .filter_map(|k| KernelSet::new(k).ok())
        .flat_map(|ks| isas.iter().map(move |&i| (ks, i)))
        .collect()
}

fn place(spec: MatmatSpec) -> bareflow_jit::MatmatKernel {
    let mut prog = Program::new();
    prog.add_matmat(spec).unwrap_or_else(|e| panic!("{spec:?}: {e}"));
    prog.place().expect("place").matmat.pop().expect("one kernel")
}

#[test]
fn generated_matmat_is_bit_exact_with_the_aot_product_over_random_shapes() {
    let cases = cases();
    assert!(!cases.is_empty(), "no AVX2 on this CPU");
    let mut rng = Rng::new(23);
    let mut checked = 0;
    for (ks, isa) in cases {
        let mut cols: Vec<usize> = (1..=72).collect();
        cols.extend((0..20).map(|_| 1 + (rng.next_u64() % 3000) as usize));
        cols.extend([288, 768, 2048]);
        for &c in &cols {
            for tile in 1..=MatmatSpec::max_tile(isa) {
                let spec = MatmatSpec { cols: c, isa, tile };
                if let Err(e) = check_matmat(&place(spec), ks, &mut rng) {
                    panic!("{spec:?} against the {} set: {e}", ks.kind().name());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 200);
}

#[test]
fn every_value_is_written_and_nothing_past_the_end() {
    let mut rng = Rng::new(5);
    for (ks, isa) in cases() {
        let spec = MatmatSpec::tuned(45, isa);
        let k = place(spec);
        for t in 1..=17 {
            for rows in 0..6 {
                let x = rng.vec(t * 45);
                let w = rng.vec(rows * 45 + 45);
                let mut out = vec![f32::NAN; rows * t + 5];
                k.run(&mut out[..rows * t], &x, &w).expect("run");
                let mut want = vec![0.0; rows * t];
                if rows > 0 {
                    ks.matmat(&mut want, &x, &w[..rows * 45], 45);
                }
                assert_eq!(
                    out[..rows * t].iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                    "{spec:?}: {t} tokens, {rows} rows"
                );
                assert!(out[rows * t..].iter().all(|v| v.is_nan()), "{spec:?}: wrote past {rows} rows of {t}");
            }
        }
    }
}

#[test]
fn impossible_shapes_are_refused() {
    let mut prog = Program::new();
    assert_eq!(prog.add_matmat(MatmatSpec { cols: 0, isa: Isa::Avx2Fma, tile: 3 }), Err(JitError::ZeroColumns));
    assert!(matches!(
        prog.add_matmat(MatmatSpec { cols: 64, isa: Isa::Avx2Fma, tile: 4 }),
        Err(JitError::BadBlockRows { rows: 4, max: 3, .. })
    ));
    assert!(matches!(
        prog.add_matmat(MatmatSpec { cols: 64, isa: Isa::Avx512, tile: 5 }),
        Err(JitError::BadBlockRows { rows: 5, max: 4, .. })
    ));
    assert!(matches!(
        prog.add_matmat(MatmatSpec { cols: 64, isa: Isa::Sse2, tile: 1 }),
        Err(JitError::UnsupportedIsa { .. })
    ));
    assert!(matches!(
        prog.add_matmat(MatmatSpec { cols: 1 << 20, isa: Isa::Avx2Fma, tile: 1 }),
        Err(JitError::TooManyColumns { .. })
    ));
    assert!(prog.entries().is_empty());
}

#[test]
#[should_panic(expected = "not whole rows")]
fn a_call_with_a_ragged_batch_is_refused() {
    let Some(&(_, isa)) = cases().first() else { panic!("not whole rows (no AVX2 here)") };
    let k = place(MatmatSpec::tuned(16, isa));
    let (x, w) = (vec![0.0; 3 * 16], vec![0.0; 2 * 16]);
    let mut out = vec![0.0; 5];
    let _ = k.run(&mut out, &x, &w);
}

#[test]
fn the_engine_generates_matmat_only_for_batches_that_ran() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut jit = LlmJit::new(|| 0, 4, false);
    let hot = [
        OpStats { op: Op::Matmat { rows: 96, cols: 64 }, calls: 3, cycles: 900 },
        OpStats { op: Op::Matmat { rows: 64, cols: 96 }, calls: 0, cycles: 0 },
        OpStats { op: Op::Matmul { rows: 96, cols: 64 }, calls: 5, cycles: 500 },
    ];
    jit.specialise(&hot, ks);
    let cols: Vec<usize> = jit.installed_matmat().iter().map(|k| k.spec().cols).collect();
    assert_eq!(cols, [64], "{:?}", jit.log());
    // And the installed kernel serves the engine's call.
    let mut rng = Rng::new(3);
    let (x, w) = (rng.vec(5 * 64), rng.vec(8 * 64));
    let (mut got, mut want) = (vec![0.0; 8 * 5], vec![0.0; 8 * 5]);
    assert!(jit.matmat(&mut got, &x, &w, 64));
    ks.matmat(&mut want, &x, &w, 64);
    assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    assert!(!jit.matmat(&mut got, &x[..96], &w, 96), "no kernel for 96 columns");
}
