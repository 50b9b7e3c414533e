use bareflow_jit::engine::Rng;
use bareflow_jit::platform::CodeAlloc;
use bareflow_jit::{Program, Q8Spec};
use bareflow_llm::kernels::KernelSet;
use bareflow_llm::KernelKind;
use std::time::Instant;

fn main() {
    let ks = KernelSet::new(KernelKind::Avx512).unwrap();
    for &(rows, cols, mib) in &[(768usize, 288usize, 14usize), (288, 768, 14), (2048, 768, 24), (32000, 288, 24)] {
        let groups = cols / 32;
        let per = rows * cols;
        let copies = if mib == 0 { 1 } else { ((mib << 20) / per).max(2) };
        let mut rng = Rng::new(5);
        let qw: Vec<i8> = (0..per * copies).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
        let sw: Vec<f32> = (0..rows * groups * copies).map(|_| rng.next_f32().abs() / 127.0).collect();
        let qx: Vec<i8> = (0..cols).map(|_| ((rng.next_u64() % 255) as i32 - 127) as i8).collect();
        let sx: Vec<f32> = (0..groups).map(|_| rng.next_f32().abs() / 127.0).collect();
        let mut out = vec![0f32; rows];
        let calls = if mib == 0 { 4000 } else { copies * 2 };
        let time = |f: &mut dyn FnMut(usize)| {
            let mut best = f64::INFINITY;
            for _ in 0..5 {
                let t = Instant::now();
                for i in 0..calls { f(i); }
                best = best.min(t.elapsed().as_secs_f64() * 1e9 / calls as f64);
            }
            best
        };
        let sper = rows * groups;
        let a = time(&mut |i| { let c = i % copies; ks.q8_matmul(&mut out, &qw[c*per..(c+1)*per], &sw[c*sper..(c+1)*sper], &qx, &sx); });
        println!("{rows}x{cols} {}: AOT {:.0} ns {:.1} GB/s", if mib==0 {"L2"} else {"DRAM"}, a, per as f64 / a);
        for vnni in [false, true] {
        for br in [1usize, 2] {
            for pf in [4u32, 8, 16, 32] {
                let mut s = Q8Spec::tuned(cols);
                s.block_rows = br;
                s.prefetch = (pf as usize * cols).min(65536) as u32 / 64 * 64;
                s.vnni = vnni;
                let mut p = Program::new();
                if p.add_q8(s).is_err() { continue; }
                let k = p.place(&CodeAlloc).unwrap().q8.pop().unwrap();
                let j = time(&mut |i| { let c = i % copies; k.run(&mut out, &qw[c*per..(c+1)*per], &sw[c*sper..(c+1)*sper], &qx, &sx).unwrap(); });
                println!("  vnni {vnni} rows {br} pf {pf}: {:.0} ns {:.1} GB/s  AOT/JIT {:.2}", j, per as f64 / j, a / j);
            }
        }
        }
    }
}
