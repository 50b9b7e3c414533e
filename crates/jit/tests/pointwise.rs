//! Generated RMSNorm, SwiGLU and RoPE against the engine's kernels, bit for
//! bit, over many lengths, in hosted W^X pages; refusals; the engine's use.

use bareflow_jit::engine::{LlmJit, Rng, check_pointwise, pointwise_isa_for};
use bareflow_jit::{Isa, JitError, PointwiseSpec, Program};
use bareflow_llm::KernelKind;
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::profile::{Op, OpStats, Specialiser};

fn place(spec: PointwiseSpec, isa: Isa) -> bareflow_jit::PointwiseKernel {
    let mut p = Program::new();
    p.add_pointwise(spec, isa).expect("generate");
    p.place().expect("place").pointwise.pop().expect("one kernel")
}

/// The sets whose vector kernels can be generated on this CPU, with their ISA.
fn sets() -> Vec<(KernelSet, Isa)> {
    [KernelKind::Avx2, KernelKind::Avx512]
        .into_iter()
        .filter_map(|kind| match KernelSet::new(kind) {
            Ok(ks) => pointwise_isa_for(kind).map(|isa| (ks, isa)),
            Err(_) => {
                eprintln!("no {} here: skipped", kind.name());
                None
            }
        })
        .collect()
}

#[test]
fn generated_vector_ops_are_bit_exact_with_the_aot_kernels_over_lengths() {
    let mut rng = Rng::new(11);
    let mut lens: Vec<usize> = (1..=40).map(|k| 8 * k).collect();
    lens.extend([288, 768, 2048, 5632]);
    lens.extend((0..12).map(|_| 8 * (1 + (rng.next_u64() % 500) as usize)));
    // Partial last vectors: SwiGLU in both ISAs (stories260K's 172), all three with AVX-512's opmasks.
    lens.extend([1, 2, 3, 5, 6, 14, 18, 30, 34, 50, 98, 172, 770]);
    let mut checked = [0, 0];
    for (ks, isa) in sets() {
        for &n in &lens {
            for spec in [PointwiseSpec::RmsNorm { dim: n }, PointwiseSpec::SwiGlu { n }, PointwiseSpec::Rope { head: n }] {
                if spec.validate(isa).is_err() {
                    continue;
                }
                let k = place(spec, isa);
                assert_eq!(k.isa(), isa);
                if let Err(e) = check_pointwise(&k, ks, &mut rng) {
                    panic!("{spec:?} {} against {}: {e}", isa.name(), ks.kind().name());
                }
                checked[(isa == Isa::Avx512) as usize] += 1;
            }
        }
    }
    assert!(checked[0] > 0, "no AVX2 on this CPU: nothing checked");
    if KernelSet::new(KernelKind::Avx512).is_ok() {
        assert!(checked[1] >= 3 * lens.len() - 20, "AVX-512 takes (nearly) every length: {checked:?}");
    }
}

#[test]
fn vector_ops_write_exactly_their_slices() {
    for (_, isa) in sets() {
        let mut rng = Rng::new(2);
        // Inside a larger buffer: the neighbours must stay untouched (AVX-512
        // also with partial last vectors: its masked stores stop at the end).
        for dim in [64usize, 72, 40].into_iter().filter(|&d| PointwiseSpec::RmsNorm { dim: d }.validate(isa).is_ok()) {
            let mut buf = vec![7.0f32; dim + 32];
            let (x, w) = (rng.vec(dim), rng.vec(dim));
            place(PointwiseSpec::RmsNorm { dim }, isa).rmsnorm(&mut buf[16..16 + dim], &x, &w).expect("call");
            assert!(buf[..16].iter().chain(&buf[16 + dim..]).all(|&v| v == 7.0), "{isa:?} {dim}");
            assert!(buf[16..16 + dim].iter().all(|v| v.is_finite() && *v != 7.0));
        }
        for head in [48usize, 56, 6].into_iter().filter(|&h| PointwiseSpec::Rope { head: h }.validate(isa).is_ok()) {
            let mut buf = vec![7.0f32; 2 * head + 16];
            let cs = rng.vec(head);
            place(PointwiseSpec::Rope { head }, isa).rope(&mut buf[8..8 + 2 * head], &cs).expect("call");
            assert!(buf[..8].iter().chain(&buf[8 + 2 * head..]).all(|&v| v == 7.0), "{isa:?} {head}");
        }
        // SwiGLU's partial last vector: the masked store stops at the slice's end.
        let mut buf = vec![7.0f32; 13 + 16];
        let g = rng.vec(13);
        place(PointwiseSpec::SwiGlu { n: 13 }, isa).swiglu(&mut buf[8..21], &g).expect("call");
        assert!(buf[..8].iter().chain(&buf[21..]).all(|&v| v == 7.0), "{buf:?}");
        assert!(buf[8..21].iter().all(|&v| v != 7.0));
    }
}

#[test]
fn impossible_vector_lengths_are_refused() {
    let p = |spec, isa| Program::new().add_pointwise(spec, isa);
    for isa in [Isa::Avx2Fma, Isa::Avx512] {
        assert_eq!(p(PointwiseSpec::RmsNorm { dim: 0 }, isa), Err(JitError::ZeroColumns));
        assert!(p(PointwiseSpec::SwiGlu { n: 100 }, isa).is_ok(), "SwiGLU takes a partial last vector");
        assert!(matches!(p(PointwiseSpec::SwiGlu { n: 1 << 20 }, isa), Err(JitError::TooManyColumns { .. })));
    }
    assert_eq!(p(PointwiseSpec::RmsNorm { dim: 100 }, Isa::Avx2Fma), Err(JitError::NotWholeVectors(100)));
    assert_eq!(p(PointwiseSpec::Rope { head: 6 }, Isa::Avx2Fma), Err(JitError::NotWholeVectors(6)));
    assert!(p(PointwiseSpec::RmsNorm { dim: 100 }, Isa::Avx512).is_ok(), "AVX-512 masks the last vector");
    assert_eq!(p(PointwiseSpec::Rope { head: 7 }, Isa::Avx512), Err(JitError::NotWholeVectors(7)));
    assert!(matches!(p(PointwiseSpec::Rope { head: 8 }, Isa::Sse2), Err(JitError::UnsupportedIsa { .. })));
}

#[test]
#[should_panic(expected = "JIT rmsnorm made for 64 values")]
fn a_vector_op_with_the_wrong_length_is_stopped_before_the_code_runs() {
    let k = place(PointwiseSpec::RmsNorm { dim: 64 }, Isa::Avx2Fma);
    let mut o = vec![0.0; 64];
    let _ = k.rmsnorm(&mut o, &[1.0; 64], &[1.0; 32]);
}

#[test]
fn the_engine_generates_the_vector_ops_it_profiled_and_uses_them() {
    for (ks, isa) in sets() {
        let mut jit = LlmJit::new(|| 0, 1, false);
        let hot = [
            OpStats { op: Op::Matmul { rows: 64, cols: 64 }, calls: 5, cycles: 900 },
            OpStats { op: Op::SwiGlu { n: 176 }, calls: 5, cycles: 50 },
            OpStats { op: Op::RmsNorm { dim: 64 }, calls: 10, cycles: 40 },
            OpStats { op: Op::Rope { head: 8 }, calls: 5, cycles: 20 },
            OpStats { op: Op::Rope { head: 16 }, calls: 0, cycles: 0 }, // never ran: not generated
        ];
        jit.specialise(&hot, ks);
        let specs: Vec<PointwiseSpec> = jit.installed_pointwise().iter().map(|k| *k.spec()).collect();
        assert_eq!(
            specs,
            [PointwiseSpec::SwiGlu { n: 176 }, PointwiseSpec::RmsNorm { dim: 64 }, PointwiseSpec::Rope { head: 8 }],
            "log: {:?}",
            jit.log()
        );
        assert!(jit.installed_pointwise().iter().all(|k| k.isa() == isa), "the set's own width");
        let mut rng = Rng::new(5);
        let (x, w) = (rng.vec(64), rng.vec(64));
        let (mut a, mut b) = (vec![0.0; 64], vec![0.0; 64]);
        assert!(jit.rmsnorm(&mut a, &x, &w));
        ks.rmsnorm(&mut b, &x, &w);
        assert_eq!(a.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), b.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        assert!(!jit.rmsnorm(&mut a[..32], &x[..32], &w[..32]), "no kernel for 32 values");
        let mut v = rng.vec(8 * 3);
        assert!(jit.rope(&mut v, &rng.vec(8)));
        assert!(!jit.rope(&mut v, &rng.vec(16)), "no kernel for heads of 16");
    }
}

#[test]
fn generated_softmax_gives_the_avx512_sets_bits_at_every_length_up_to_its_max() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx512) else {
        eprintln!("no AVX-512 here: skipped");
        return;
    };
    let mut rng = Rng::new(21);
    for max in [1usize, 16, 70, 256, 1024] {
        let k = place(PointwiseSpec::Softmax { max }, Isa::Avx512);
        check_pointwise(&k, ks, &mut rng).unwrap_or_else(|e| panic!("max {max}: {e}"));
        for n in (1..=max.min(70)).chain([max]) {
            // Inside a larger buffer: the values past n stay untouched.
            let x: Vec<f32> = rng.vec(n).into_iter().map(|v| v * 30.0).collect();
            let mut buf = vec![7.0f32; n + 16];
            buf[..n].copy_from_slice(&x);
            k.softmax(&mut buf[..n]).expect("call");
            let mut want = x.clone();
            ks.softmax(&mut want);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&buf[..n]), bits(&want), "max {max} n {n}");
            assert!(buf[n..].iter().all(|&v| v == 7.0), "max {max} n {n}: wrote past the slice");
        }
    }
    assert!(matches!(
        Program::new().add_pointwise(PointwiseSpec::Softmax { max: 64 }, Isa::Avx2Fma),
        Err(JitError::UnsupportedIsa { .. })
    ));
}

#[test]
#[should_panic(expected = "JIT softmax made for at most 16 values")]
fn a_softmax_longer_than_its_max_is_stopped_before_the_code_runs() {
    if KernelSet::new(KernelKind::Avx512).is_err() {
        panic!("JIT softmax made for at most 16 values (no AVX-512 here: the check is the same)");
    }
    let k = place(PointwiseSpec::Softmax { max: 16 }, Isa::Avx512);
    let _ = k.softmax(&mut [0.0; 17]);
}

#[test]
fn the_review_removes_kernels_that_were_slower_in_place_and_keeps_the_others() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut jit = LlmJit::new(|| 0, 4, false);
    let (mm, rms) = (Op::Matmul { rows: 64, cols: 64 }, Op::RmsNorm { dim: 64 });
    jit.specialise(&[OpStats { op: mm, calls: 5, cycles: 900 }, OpStats { op: rms, calls: 5, cycles: 50 }], ks);
    assert_eq!((jit.installed().len(), jit.installed_pointwise().len()), (1, 1), "{:?}", jit.log());
    // In place: the matmul ran at 100 cycles per call on the AOT kernel and
    // 150 on the generated one; RMSNorm at 100 and 50.
    let mut t = bareflow_llm::profile::Trial::default();
    for _ in 0..4 {
        t.add(mm, None, 100);
        t.add(mm, Some(0), 150);
        t.add(rms, None, 100);
        t.add(rms, Some(0), 50);
    }
    // A stretched call each (an interrupt): the medians, compared, are unmoved.
    t.add(mm, None, 1_000_000);
    t.add(rms, Some(0), 1_000_000);
    t.tokens = 8;
    jit.review(&t);
    assert!(jit.installed().is_empty(), "the slower matmul kernel is removed");
    assert_eq!(jit.installed_pointwise().len(), 1, "the faster RMSNorm kernel stays");
    let mut r = String::new();
    jit.report(&mut r).expect("report");
    assert!(r.contains("removed after the trial (0.667x in place)"), "{r}");
    assert!(r.contains("kept after the trial (2.000x in place)"), "{r}");
    let mut rng = Rng::new(3);
    let (x, w) = (rng.vec(64), rng.vec(64 * 64));
    let mut out = vec![0.0; 64];
    assert!(!jit.matmul(&mut out, &x, &w), "the AOT kernel runs the matmul now");
    let mut o = vec![0.0; 64];
    assert!(jit.rmsnorm(&mut o, &x, &w[..64]));
}
