//! Generated RMSNorm, SwiGLU and RoPE against the engine's kernels, bit for
//! bit, over many lengths, in hosted W^X pages; refusals; the engine's use.

use bareflow_jit::engine::{LlmJit, Rng, check_pointwise, pointwise_generated_for};
use bareflow_jit::platform::CodeAlloc as HostAlloc;
use bareflow_jit::{JitError, PointwiseSpec, Program};
use bareflow_llm::KernelKind;
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::profile::{Op, OpStats, Specialiser};

fn place(spec: PointwiseSpec) -> bareflow_jit::PointwiseKernel {
    let mut p = Program::new();
    p.add_pointwise(spec).expect("generate");
    p.place(&HostAlloc).expect("place").pointwise.pop().expect("one kernel")
}

#[test]
fn generated_vector_ops_are_bit_exact_with_the_aot_kernels_over_lengths() {
    let mut rng = Rng::new(11);
    let mut lens: Vec<usize> = (1..=40).map(|k| 8 * k).collect();
    lens.extend([288, 768, 2048, 5632]);
    lens.extend((0..12).map(|_| 8 * (1 + (rng.next_u64() % 500) as usize)));
    let mut checked = 0;
    for kind in [KernelKind::Avx2, KernelKind::Avx512] {
        let Ok(ks) = KernelSet::new(kind) else {
            eprintln!("no {} here: skipped", kind.name());
            continue;
        };
        for &n in &lens {
            // SwiGLU also over lengths with a partial last vector (stories260K's 172).
            let odd = [PointwiseSpec::SwiGlu { n: n - 3 }, PointwiseSpec::SwiGlu { n: n + 4 - (n / 8) % 4 }];
            for spec in [PointwiseSpec::RmsNorm { dim: n }, PointwiseSpec::SwiGlu { n }, PointwiseSpec::Rope { head: n }].into_iter().chain(odd) {
                if !pointwise_generated_for(kind, &spec) {
                    continue;
                }
                let k = place(spec);
                if let Err(e) = check_pointwise(&k, ks, &mut rng) {
                    panic!("{spec:?} against {}: {e}", kind.name());
                }
                checked += 1;
            }
        }
    }
    assert!(checked > 0, "no AVX2 on this CPU: nothing checked");
}

#[test]
fn vector_ops_write_exactly_their_slices() {
    if KernelSet::new(KernelKind::Avx2).is_err() {
        return;
    }
    let mut rng = Rng::new(2);
    // 64 values inside a larger buffer: the neighbours must stay untouched.
    let mut buf = vec![7.0f32; 64 + 32];
    let (x, w) = (rng.vec(64), rng.vec(64));
    place(PointwiseSpec::RmsNorm { dim: 64 }).rmsnorm(&mut buf[16..80], &x, &w).expect("call");
    assert!(buf[..16].iter().chain(&buf[80..]).all(|&v| v == 7.0));
    assert!(buf[16..80].iter().all(|v| v.is_finite() && *v != 7.0));
    let mut buf = vec![7.0f32; 2 * 48 + 16];
    let cs = rng.vec(48);
    place(PointwiseSpec::Rope { head: 48 }).rope(&mut buf[8..8 + 96], &cs).expect("call");
    assert!(buf[..8].iter().chain(&buf[104..]).all(|&v| v == 7.0));
    // SwiGLU's partial last vector: the masked store stops at the slice's end.
    let mut buf = vec![7.0f32; 13 + 16];
    let g = rng.vec(13);
    place(PointwiseSpec::SwiGlu { n: 13 }).swiglu(&mut buf[8..21], &g).expect("call");
    assert!(buf[..8].iter().chain(&buf[21..]).all(|&v| v == 7.0), "{buf:?}");
    assert!(buf[8..21].iter().all(|&v| v != 7.0));
}

#[test]
fn impossible_vector_lengths_are_refused() {
    let p = |spec| Program::new().add_pointwise(spec);
    assert_eq!(p(PointwiseSpec::RmsNorm { dim: 0 }), Err(JitError::ZeroColumns));
    assert_eq!(p(PointwiseSpec::RmsNorm { dim: 100 }), Err(JitError::NotWholeVectors(100)));
    assert!(p(PointwiseSpec::SwiGlu { n: 100 }).is_ok(), "SwiGLU takes a partial last vector");
    assert_eq!(p(PointwiseSpec::Rope { head: 6 }), Err(JitError::NotWholeVectors(6)));
    assert!(matches!(p(PointwiseSpec::SwiGlu { n: 1 << 20 }), Err(JitError::TooManyColumns { .. })));
}

#[test]
#[should_panic(expected = "JIT rmsnorm made for 64 values")]
fn a_vector_op_with_the_wrong_length_is_stopped_before_the_code_runs() {
    let k = place(PointwiseSpec::RmsNorm { dim: 64 });
    let mut o = vec![0.0; 64];
    let _ = k.rmsnorm(&mut o, &[1.0; 64], &[1.0; 32]);
}

#[test]
fn the_engine_generates_the_vector_ops_it_profiled_and_uses_them() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx2) else { return };
    let mut jit = LlmJit::new(Box::new(HostAlloc), || 0, 1, false);
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
    let mut rng = Rng::new(5);
    let (x, w) = (rng.vec(64), rng.vec(64));
    let (mut a, mut b) = (vec![0.0; 64], vec![0.0; 64]);
    assert!(jit.rmsnorm(&mut a, &x, &w));
    ks.rmsnorm(&mut b, &x, &w);
    assert_eq!(a, b);
    assert!(!jit.rmsnorm(&mut a[..32], &x[..32], &w[..32]), "no kernel for 32 values");
    let mut v = rng.vec(8 * 3);
    assert!(jit.rope(&mut v, &rng.vec(8)));
    assert!(!jit.rope(&mut v, &rng.vec(16)), "no kernel for heads of 16");
}

#[test]
fn vector_ops_are_left_to_the_avx512_set() {
    let Ok(ks) = KernelSet::new(KernelKind::Avx512) else {
        eprintln!("no AVX-512 here: skipped");
        return;
    };
    let mut jit = LlmJit::new(Box::new(HostAlloc), || 0, 4, true);
    let hot = [OpStats { op: Op::RmsNorm { dim: 64 }, calls: 1, cycles: 1 }, OpStats { op: Op::SwiGlu { n: 64 }, calls: 1, cycles: 1 }];
    jit.specialise(&hot, ks);
    assert!(jit.installed_pointwise().is_empty(), "{:?}", jit.log());
    assert!(jit.log().iter().any(|l| l.contains("rmsnorm 64") && l.contains("another order")), "{:?}", jit.log());
    assert!(jit.log().iter().any(|l| l.contains("swiglu 64") && l.contains("measured faster")), "{:?}", jit.log());
}
