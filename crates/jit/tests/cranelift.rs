//! The Cranelift-made kernel of `bench jit-backends` (feature `cranelift`):
//! the SSE2 set's bits on shapes with and without column and row tails.
//! Run with `cargo test -p bareflow-jit --features cranelift`.
#![cfg(feature = "cranelift")]
#![forbid(unsafe_code)]

use bareflow_jit::cranelift::Target;
use bareflow_jit::engine::Rng;
use bareflow_jit::{JitError, Program};
use bareflow_llm::kernels::{KernelKind, KernelSet};

#[test]
fn cranelift_matvec_gives_the_sse2_sets_bits() {
    let sse2 = KernelSet::new(KernelKind::Sse2).expect("every x86-64 CPU has SSE2");
    let mut rng = Rng::new(7);
    for avx in [false, true] {
        let t = Target::new(avx).expect("cranelift's x86-64 target");
        for (rows, cols) in [(1, 1), (5, 3), (4, 4), (9, 7), (13, 33), (17, 288), (6, 770)] {
            let mut p = Program::new();
            p.add_cranelift_matvec(&t, cols).expect("compiles");
            let k = p.place().expect("placed W^X").matvec.pop().expect("one kernel");
            let (w, x) = (rng.vec(rows * cols), rng.vec(cols));
            let (mut got, mut want) = (vec![0.0f32; rows], vec![0.0f32; rows]);
            k.run(&mut got, &x, &w).expect("runs");
            sse2.matmul(&mut want, &x, &w);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got), bits(&want), "{rows}x{cols} avx settings {avx}");
        }
    }
}

#[test]
fn cranelift_refuses_impossible_shapes() {
    let t = Target::new(false).expect("cranelift's x86-64 target");
    assert!(matches!(t.matvec(0), Err(JitError::ZeroColumns)));
    assert!(matches!(t.matvec(usize::MAX), Err(JitError::TooManyColumns { .. })));
}
