//! The other code generator the issue names, for measurement only
//! (feature `cranelift`, off by default): the same f32 matrix-vector kernel
//! as [`crate::matvec`]'s SSE2 one, written as Cranelift IR and compiled by
//! `cranelift-codegen` 0.135. `bench jit-backends` times its generation and
//! its code beside iced-x86's SSE2 and AVX2 kernels, which is how the JIT's
//! encoder was chosen (see that bench's verdict line).
//!
//! Cranelift's x86 back end has 128-bit vectors only, so the IR follows the
//! SSE2 set's order of operations (`matmul_sse2`/`dot_sse2`) and gives its
//! bits: per row one 4-lane chain `acc + w·x` (multiply, then add) over the
//! blocks of 4 columns, the horizontal sum `(l0 + l2) + (l1 + l3)`, then the
//! last `cols % 4` columns one by one. Columns are fixed (every load has an
//! immediate offset, the column loop is unrolled); rows go by blocks of four
//! (four chains, each x vector loaded once per block, as `matmul_sse2` and
//! iced's tuned SSE2 kernel do), then one at a time. The
//! function has the ABI of [`crate::MatvecKernel`] (`out, x, w, rows`) and
//! touches exactly what that kernel's contract allows: `cols` values of `x`,
//! `rows * cols` of `w`, `rows` of `out`; it makes no calls, and compiled code
//! with any relocation is refused.
use alloc::boxed::Box;
use alloc::format;
use alloc::vec::Vec;

use cranelift_codegen::Context;
use cranelift_codegen::control::ControlPlane;
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{AbiParam, Function, InstBuilder, MemFlagsData, Signature, UserFuncName, types};
use cranelift_codegen::isa::{self, CallConv, OwnedTargetIsa};
use cranelift_codegen::settings::{self, Configurable};
use cranelift_frontend::{FunctionBuilder, FunctionBuilderContext};

use crate::JitError;
use crate::matvec::MAX_COLS;

/// A Cranelift x86-64 target, made once (its settings parse is not free).
pub struct Target {
    isa: OwnedTargetIsa,
}

impl core::fmt::Debug for Target {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("cranelift::Target(x86_64)")
    }
}

fn err(what: &str, e: impl core::fmt::Display) -> JitError {
    JitError::Encoder(format!("cranelift {what}: {e}"))
}

impl Target {
    /// x86-64, optimising for speed; with `avx` Cranelift may use VEX
    /// encodings and the SSE4/AVX/AVX2/FMA instructions it knows (its
    /// vectors stay 128 bits).
    pub fn new(avx: bool) -> Result<Self, JitError> {
        let mut flags = settings::builder();
        flags.set("opt_level", "speed").map_err(|e| err("settings", e))?;
        let mut b = isa::lookup_by_name("x86_64").map_err(|e| err("x86_64 target", e))?;
        if avx {
            for f in ["has_sse3", "has_ssse3", "has_sse41", "has_sse42", "has_popcnt", "has_avx", "has_avx2", "has_fma"] {
                b.enable(f).map_err(|e| err(f, e))?;
            }
        }
        let isa = b.finish(settings::Flags::new(flags)).map_err(|e| err("target", e))?;
        Ok(Target { isa })
    }

    /// Compiles the matrix-vector kernel for `cols` columns (see the module
    /// documentation) and returns its machine code, position independent.
    pub fn matvec(&self, cols: usize) -> Result<Vec<u8>, JitError> {
        if cols == 0 {
            return Err(JitError::ZeroColumns);
        }
        if cols > MAX_COLS {
            return Err(JitError::TooManyColumns { cols, max: MAX_COLS });
        }
        let func = matvec_ir(cols, self.isa.frontend_config());
        let mut ctx = Context::for_function(func);
        let code = ctx.compile(&*self.isa, &mut ControlPlane::default()).map_err(|e| err("compile", format!("{:?}", e.inner)))?;
        if !code.buffer.relocs().is_empty() {
            return Err(JitError::Encoder(format!("cranelift left {} relocations in the kernel", code.buffer.relocs().len())));
        }
        Ok(code.code_buffer().to_vec())
    }
}

/// The IR of `fn(out, x, w, rows) -> 0` for `cols` columns.
fn matvec_ir(cols: usize, frontend: cranelift_codegen::isa::TargetFrontendConfig) -> Function {
    let p = types::I64;
    let mut sig = Signature::new(CallConv::SystemV);
    sig.params.extend([AbiParam::new(p), AbiParam::new(p), AbiParam::new(p), AbiParam::new(p)]);
    sig.returns.push(AbiParam::new(p));
    let mut func = Function::with_name_signature(UserFuncName::default(), sig);
    let mut fctx = Box::new(FunctionBuilderContext::new());
    let mut b = FunctionBuilder::new(&mut func, &mut fctx);
    // Loads and stores of the caller's slices: never trap (the lengths are
    // asserted by `MatvecKernel::run`), unaligned allowed.
    let mem = MemFlagsData::new().with_notrap();

    // Blocks of four rows (four independent chains, the x vector loaded once
    // per block, as `matmul_sse2`), then the rows left one at a time.
    let (entry, head4, body4, head1, body1, exit) =
        (b.create_block(), b.create_block(), b.create_block(), b.create_block(), b.create_block(), b.create_block());
    b.append_block_params_for_function_params(entry);
    b.switch_to_block(entry);
    let args = b.block_params(entry).to_vec();
    let (out_v, x, w_v, rows_v) = (args[0], args[1], args[2], args[3]);
    let (o, w, n) = (b.declare_var(p), b.declare_var(p), b.declare_var(p));
    b.def_var(o, out_v);
    b.def_var(w, w_v);
    b.def_var(n, rows_v);
    b.ins().jump(head4, &[]);

    for (head, body, k, next) in [(head4, body4, 4usize, head1), (head1, body1, 1, exit)] {
        // head: while at least k rows remain
        b.switch_to_block(head);
        let nv = b.use_var(n);
        let enough = b.ins().icmp_imm_u(IntCC::UnsignedGreaterThanOrEqual, nv, k as i64);
        b.ins().brif(enough, body, &[], next, &[]);

        // body: k rows
        b.switch_to_block(body);
        let (ov, wv) = (b.use_var(o), b.use_var(w));
        let z = b.ins().f32const(0.0);
        let zv = b.ins().splat(types::F32X4, z);
        let mut acc = alloc::vec![zv; k];
        let n4 = cols & !3;
        for j in (0..n4).step_by(4) {
            let v = b.ins().load(types::F32X4, mem, x, (4 * j) as i32);
            for (r, acc) in acc.iter_mut().enumerate() {
                let a = b.ins().load(types::F32X4, mem, wv, (4 * (r * cols + j)) as i32);
                let m = b.ins().fmul(a, v);
                *acc = b.ins().fadd(*acc, m);
            }
        }
        for (r, &acc) in acc.iter().enumerate() {
            let l: Vec<_> = (0..4u8).map(|i| b.ins().extractlane(acc, i)).collect();
            let s02 = b.ins().fadd(l[0], l[2]);
            let s13 = b.ins().fadd(l[1], l[3]);
            let mut s = b.ins().fadd(s02, s13);
            for j in n4..cols {
                let a = b.ins().load(types::F32, mem, wv, (4 * (r * cols + j)) as i32);
                let v = b.ins().load(types::F32, mem, x, (4 * j) as i32);
                let m = b.ins().fmul(a, v);
                s = b.ins().fadd(s, m);
            }
            b.ins().store(mem, s, ov, (4 * r) as i32);
        }
        let o2 = b.ins().iadd_imm_u(ov, 4 * k as i64);
        let w2 = b.ins().iadd_imm_u(wv, (4 * k * cols) as i64);
        let nv = b.use_var(n);
        let n2 = b.ins().iadd_imm_s(nv, -(k as i64));
        b.def_var(o, o2);
        b.def_var(w, w2);
        b.def_var(n, n2);
        b.ins().jump(head, &[]);
    }

    b.switch_to_block(exit);
    let zero = b.ins().iconst(p, 0);
    b.ins().return_(&[zero]);
    b.seal_all_blocks();
    b.finalize(frontend);
    func
}
