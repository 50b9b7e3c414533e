//! Placing generated code in executable memory, and calling it safely.
//!
//! The memory is `bareflow-hal`'s, through [`crate::platform::Code`]: W^X
//! (the bytes are written while the pages are writable, then the pages are
//! flipped to read-execute and never written again) and a System V call with
//! six integer arguments. This module packs kernels into
//! one buffer ([`Program`]) and wraps each entry in a typed handle whose
//! [`MatvecKernel::run`] checks the slice lengths the code relies on.
use alloc::sync::Arc;
use alloc::vec::Vec;
use core::fmt;

use crate::platform::Code;
use crate::{Isa, JitError};
use crate::matmat::{self, MatmatSpec};
use crate::matvec::{self, MatvecSpec};
use crate::pointwise::{self, PointwiseSpec};
use crate::q8::{self, Q8BatchSpec, Q8Spec};

/// Why executable memory could not be set up or called.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExecError {
    /// Writable and executable at once was asked for (W^X forbids it).
    WriteAndExecute,
    /// The pages do not have the rights the operation needs (writing after
    /// the flip to read-execute, calling before it, an offset outside).
    AccessDenied,
    /// No memory for the pages.
    OutOfMemory,
    /// Zero bytes, or a size that overflows.
    BadSize,
    /// The host OS refused (`errno`).
    Os(i32),
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WriteAndExecute => write!(f, "pages may not be writable and executable at once (W^X)"),
            Self::AccessDenied => {
                write!(f, "the code pages do not allow this (write only before the flip to read-execute, call only after)")
            }
            Self::OutOfMemory => write!(f, "no memory left for code pages"),
            Self::BadSize => write!(f, "code size is zero or too large"),
            Self::Os(e) => write!(f, "the OS refused the code mapping (errno {e})"),
        }
    }
}

/// One kind of generated kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelSpec {
    /// f32 matrix-vector product.
    Matvec(MatvecSpec),
    /// Int8 (groups of 32) matrix-vector product.
    Q8(Q8Spec),
    /// Batched int8 product (VNNI), several tokens per weight load.
    Q8Batch(Q8BatchSpec),
    /// f32 matrix-matrix product for a batch of tokens.
    Matmat(MatmatSpec),
    /// RMSNorm, SwiGLU, RoPE or softmax, for an instruction set (AVX2 or AVX-512).
    Pointwise(PointwiseSpec, Isa),
}

/// Kernels packed into one code buffer, each entry 64-byte aligned.
#[derive(Debug, Default, Clone)]
pub struct Program {
    code: Vec<u8>,
    entries: Vec<(KernelSpec, usize, usize)>,
}

/// The handles of a placed [`Program`], by kind, in order of addition.
#[derive(Debug, Default)]
pub struct Placed {
    pub matvec: Vec<MatvecKernel>,
    pub q8: Vec<Q8Kernel>,
    pub q8_batch: Vec<Q8BatchKernel>,
    pub pointwise: Vec<PointwiseKernel>,
    pub matmat: Vec<MatmatKernel>,
}

impl Program {
    /// An empty program.
    pub fn new() -> Self {
        Self::default()
    }

    /// Generates an f32 matrix-vector kernel and appends it; returns its index.
    pub fn add_matvec(&mut self, spec: MatvecSpec) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = matvec::generate(&spec, offset as u64)?;
        Ok(self.push(KernelSpec::Matvec(spec), offset, &bytes))
    }

    /// Compiles the SSE2-order f32 matrix-vector kernel for `cols` columns
    /// with Cranelift and appends it; returns its index. Its handle is a
    /// [`MatvecKernel`] for `MatvecSpec { isa: Sse2, block_rows: 1, prefetch: 0 }`,
    /// whose bits it gives (see [`crate::cranelift`]).
    #[cfg(feature = "cranelift")]
    pub fn add_cranelift_matvec(&mut self, target: &crate::cranelift::Target, cols: usize) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = target.matvec(cols)?;
        let spec = MatvecSpec { cols, isa: Isa::Sse2, block_rows: 1, prefetch: 0 };
        Ok(self.push(KernelSpec::Matvec(spec), offset, &bytes))
    }

    /// Generates an f32 matrix-matrix kernel and appends it; returns its index.
    pub fn add_matmat(&mut self, spec: MatmatSpec) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = matmat::generate(&spec, offset as u64)?;
        Ok(self.push(KernelSpec::Matmat(spec), offset, &bytes))
    }

    /// Generates an int8 matrix-vector kernel (AVX2, or AVX-512 VNNI) and appends it; returns its index.
    /// Code for [`Q8Spec::vnni`] must only run where [`q8::vnni_usable`].
    pub fn add_q8(&mut self, spec: Q8Spec) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = q8::generate(&spec, offset as u64)?;
        Ok(self.push(KernelSpec::Q8(spec), offset, &bytes))
    }

    /// Generates a batched int8 kernel (VNNI) and appends it; returns its
    /// index. Its code must only run where [`q8::vnni_usable`].
    pub fn add_q8_batch(&mut self, spec: Q8BatchSpec) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = q8::generate_batch(&spec, offset as u64)?;
        Ok(self.push(KernelSpec::Q8Batch(spec), offset, &bytes))
    }

    /// Generates an RMSNorm, SwiGLU, RoPE or softmax kernel for `isa` (AVX2
    /// or AVX-512) and appends it; returns its index.
    pub fn add_pointwise(&mut self, spec: PointwiseSpec, isa: Isa) -> Result<usize, JitError> {
        let offset = self.pad();
        let bytes = pointwise::generate(&spec, isa, offset as u64)?;
        Ok(self.push(KernelSpec::Pointwise(spec, isa), offset, &bytes))
    }

    /// int3 padding to the next 64-byte boundary (a stray jump traps); returns it.
    fn pad(&mut self) -> usize {
        while !self.code.len().is_multiple_of(64) {
            self.code.push(0xCC);
        }
        self.code.len()
    }

    fn push(&mut self, spec: KernelSpec, offset: usize, bytes: &[u8]) -> usize {
        self.code.extend_from_slice(bytes);
        self.entries.push((spec, offset, bytes.len()));
        self.entries.len() - 1
    }

    /// The machine code of every entry.
    pub fn code(&self) -> &[u8] {
        &self.code
    }

    /// `(spec, offset, size)` of every entry, in order of addition.
    pub fn entries(&self) -> &[(KernelSpec, usize, usize)] {
        &self.entries
    }

    /// Places the code in fresh W^X pages ([`crate::platform::Code`]: one
    /// mapping, written, then flipped to read-execute) and returns one handle per entry.
    pub fn place(&self) -> Result<Placed, JitError> {
        let mut placed = Placed::default();
        if self.entries.is_empty() {
            return Ok(placed);
        }
        let mem = Arc::new(Code::place(&self.code)?);
        for &(spec, offset, size) in &self.entries {
            match spec {
                KernelSpec::Matvec(spec) => placed.matvec.push(Kernel { mem: mem.clone(), offset, spec, isa: spec.isa, size }),
                KernelSpec::Q8Batch(spec) => {
                    placed.q8_batch.push(Kernel { mem: mem.clone(), offset, spec, isa: Isa::Avx512, size })
                }
                KernelSpec::Q8(spec) => placed.q8.push(Kernel { mem: mem.clone(), offset, spec, isa: if spec.vnni { Isa::Avx512 } else { Isa::Avx2Fma }, size }),
                KernelSpec::Pointwise(spec, isa) => {
                    placed.pointwise.push(Kernel { mem: mem.clone(), offset, spec, isa, size })
                }
                KernelSpec::Matmat(spec) => placed.matmat.push(Kernel { mem: mem.clone(), offset, spec, isa: spec.isa, size }),
            }
        }
        Ok(placed)
    }
}

/// A placed kernel: its code in shared W^X pages, at `offset`, generated for `spec`.
#[derive(Clone)]
pub struct Kernel<S> {
    mem: Arc<Code>,
    offset: usize,
    spec: S,
    isa: Isa,
    size: usize,
}

/// A placed matrix-vector kernel for a fixed number of columns.
pub type MatvecKernel = Kernel<MatvecSpec>;
/// A placed int8 matrix-vector kernel for a fixed number of columns.
pub type Q8Kernel = Kernel<Q8Spec>;
/// A placed batched int8 kernel for a fixed number of columns and tokens.
pub type Q8BatchKernel = Kernel<Q8BatchSpec>;
/// A placed matrix-matrix kernel for a fixed number of columns.
pub type MatmatKernel = Kernel<MatmatSpec>;
/// A placed RMSNorm, SwiGLU, RoPE or softmax kernel for a fixed length (softmax: up to one).
pub type PointwiseKernel = Kernel<PointwiseSpec>;

impl<S: fmt::Debug> fmt::Debug for Kernel<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Kernel")
            .field("spec", &self.spec)
            .field("isa", &self.isa)
            .field("offset", &self.offset)
            .field("size", &self.size)
            .finish()
    }
}

impl<S> Kernel<S> {
    /// What the kernel was generated for.
    pub fn spec(&self) -> &S {
        &self.spec
    }

    /// The instruction set of its code.
    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Size of its machine code (and constants) in bytes.
    pub fn code_size(&self) -> usize {
        self.size
    }

    /// Enters the code with `args`.
    ///
    /// # Safety
    /// `args` must meet the contract of the code generated for `self.spec`
    /// (the pointers valid for everything that code reads and writes); each
    /// kind's safe methods below check it before calling.
    #[allow(unsafe_code)] // the contract is stated here and discharged by the callers below
    unsafe fn enter(&self, args: [u64; 6]) -> Result<(), ExecError> {
        // SAFETY: a `Kernel` is only made by `Program::place`, which copied
        // code this crate generated for `self.spec` to `self.offset` of
        // `self.mem` (read-execute and unchanging while `mem` lives); the
        // caller promises the arguments meet that code's contract.
        unsafe { self.mem.call(self.offset, args) }.map(|_| ())
    }
}

impl MatvecKernel {
    /// `out[i] = Σ_j w[i*cols + j] * x[j]` for every `i < out.len()`.
    ///
    /// # Panics
    /// If `x.len()` is not the kernel's column count or `w` holds fewer than
    /// `out.len() * cols` values: the code reads exactly that much, so these
    /// are checked before every call (a programming error of the caller).
    pub fn run(&self, out: &mut [f32], x: &[f32], w: &[f32]) -> Result<(), ExecError> {
        let cols = self.spec.cols;
        assert_eq!(x.len(), cols, "JIT matvec made for {cols} columns called with x of {}", x.len());
        let need = out.len().checked_mul(cols);
        assert!(need.is_some_and(|n| w.len() >= n), "JIT matvec: weights shorter than {} rows of {cols}", out.len());
        if out.is_empty() {
            return Ok(());
        }
        let args = [out.as_mut_ptr() as u64, x.as_ptr() as u64, w.as_ptr() as u64, out.len() as u64, 0, 0];
        // SAFETY: the code `matvec::generate` (or, with the `cranelift`
        // feature, `cranelift::Target::matvec`) emitted for `self.spec` reads
        // `cols` floats of `x`, `rows * cols` of `w`, writes `rows` of `out`,
        // touches nothing else and returns (no calls out, no stack). The
        // lengths were asserted above.
        #[allow(unsafe_code)]
        unsafe {
            self.enter(args)
        }
    }
}

impl core::error::Error for ExecError {}

/// Weight bytes per block of rows in [`MatmatKernel::run`]: the block stays
/// in L2 while every tile of tokens goes over it.
pub(crate) const MATMAT_BLOCK_BYTES: usize = 128 * 1024;

impl MatmatKernel {
    /// `out[i*t + k] = Σ_j w[i*cols + j] * x[k*cols + j]` for the `t = x.len() / cols`
    /// tokens of `x` and the `out.len() / t` rows of `out`.
    ///
    /// The rows go by blocks of about 128 KiB of weights and, within a
    /// block, the tokens by tiles of the kernel's tile: one call of the code
    /// per block and tile, so that the tile's x stays in L1 and the block's
    /// weights in L2 (the weights come from memory once per block).
    ///
    /// # Panics
    /// If `x` is not whole tokens of the kernel's column count, `out` not
    /// whole rows of `t`, or `w` holds fewer than `rows * cols` values: the
    /// code reads and writes exactly that much (a programming error of the caller).
    pub fn run(&self, out: &mut [f32], x: &[f32], w: &[f32]) -> Result<(), ExecError> {
        let cols = self.spec.cols;
        assert!(!x.is_empty() && x.len().is_multiple_of(cols), "JIT matmat made for {cols} columns called with x of {}", x.len());
        let t = x.len() / cols;
        assert!(out.len().is_multiple_of(t), "JIT matmat: out of {} is not whole rows of {t} tokens", out.len());
        let rows = out.len() / t;
        let need = rows.checked_mul(cols);
        assert!(need.is_some_and(|n| w.len() >= n), "JIT matmat: weights shorter than {rows} rows of {cols}");
        let block = (MATMAT_BLOCK_BYTES / (cols * 4)).max(1);
        let tile = self.spec.tile;
        for r0 in (0..rows).step_by(block) {
            let nr = block.min(rows - r0);
            for k0 in (0..t).step_by(tile) {
                let nt = tile.min(t - k0);
                let args = [
                    out[r0 * t + k0..].as_mut_ptr() as u64,
                    x[k0 * cols..].as_ptr() as u64,
                    w[r0 * cols..].as_ptr() as u64,
                    nr as u64,
                    nt as u64,
                    t as u64,
                ];
                // SAFETY: the code `matmat::generate` emitted for `self.spec`
                // reads `nr * cols` floats of `w` from row r0 (r0 + nr <= rows,
                // and w holds rows * cols), `nt * cols` of `x` from token k0
                // (k0 + nt <= t), and writes out[(r0 + i) * t + k0 + j] for
                // i < nr, j < nt, all below rows * t = out.len(); it touches
                // nothing else and returns (no calls out, no stack).
                #[allow(unsafe_code)]
                unsafe {
                    self.enter(args)?
                }
            }
        }
        Ok(())
    }
}

/// Whether `qw` and `sw` hold `rows` int8 rows of `cols` values and their
/// scales (one per group of 32).
fn q8_rows_fit(rows: usize, cols: usize, qw: &[i8], sw: &[f32]) -> bool {
    let groups = cols / crate::q8::GROUP;
    rows.checked_mul(cols).is_some_and(|n| qw.len() >= n) && rows.checked_mul(groups).is_some_and(|n| sw.len() >= n)
}

impl Q8Kernel {
    /// `out[i] = Σ_g f32(Σ_j qw[i][g][j]·qx[g][j]) · (sw[i][g]·sx[g])` for every `i < out.len()`.
    ///
    /// # Panics
    /// If `qx` is not `cols` long, `sx` not `cols / 32`, or `qw`/`sw` hold
    /// fewer than `out.len()` rows: the code reads exactly that much.
    pub fn run(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32]) -> Result<(), ExecError> {
        let cols = self.spec.cols;
        let groups = cols / crate::q8::GROUP;
        assert!(qx.len() == cols && sx.len() == groups, "JIT q8 matvec made for {cols} columns called with {} values and {} scales", qx.len(), sx.len());
        let rows = out.len();
        assert!(q8_rows_fit(rows, cols, qw, sw), "JIT q8 matvec: weights or scales shorter than {rows} rows of {cols}");
        if rows == 0 {
            return Ok(());
        }
        let args = [out.as_mut_ptr() as u64, qw.as_ptr() as u64, sw.as_ptr() as u64, qx.as_ptr() as u64, sx.as_ptr() as u64, rows as u64];
        // SAFETY: as for `MatvecKernel::run`: code `q8::generate` emitted for
        // `self.spec`, reading `rows * cols` of `qw`, `rows * groups` of `sw`,
        // `cols` of `qx`, `groups` of `sx`, writing `rows` of `out` (all
        // asserted above).
        #[allow(unsafe_code)]
        unsafe {
            self.enter(args)
        }
    }
}

impl Q8BatchKernel {
    /// `out[i * tokens + t] = Σ_g f32(Σ_j qw[i][g][j]·x_t[g][j]) · (sw[i][g]·sx[t][g])`
    /// for every row `i < out.len() / tokens`, with `qxa` holding each token's
    /// `cols` values then their `wrapping_abs` (see [`Q8BatchSpec`]).
    ///
    /// # Panics
    /// If `qxa` is not `tokens * 2 * cols` long, `sx` not `tokens * groups`,
    /// `out` not whole rows of `tokens`, or `qw`/`sw` hold fewer rows.
    pub fn run(&self, out: &mut [f32], qw: &[i8], sw: &[f32], qxa: &[i8], sx: &[f32]) -> Result<(), ExecError> {
        let (cols, tk) = (self.spec.cols, self.spec.tokens);
        let groups = cols / crate::q8::GROUP;
        assert!(qxa.len() == tk * 2 * cols && sx.len() == tk * groups, "JIT batched q8 made for {tk} tokens of {cols} columns called with {} bytes and {} scales", qxa.len(), sx.len());
        assert!(out.len().is_multiple_of(tk), "JIT batched q8: out of {} is not whole rows of {tk} tokens", out.len());
        let rows = out.len() / tk;
        assert!(q8_rows_fit(rows, cols, qw, sw), "JIT batched q8: weights or scales shorter than {rows} rows of {cols}");
        if rows == 0 {
            return Ok(());
        }
        let args = [out.as_mut_ptr() as u64, qw.as_ptr() as u64, sw.as_ptr() as u64, qxa.as_ptr() as u64, sx.as_ptr() as u64, rows as u64];
        // SAFETY: code `q8::generate_batch` emitted for `self.spec` reads
        // `rows * cols` of `qw`, `rows * groups` of `sw`, `tokens * 2 * cols`
        // of `qxa`, `tokens * groups` of `sx` and writes `rows * tokens` of
        // `out` (all asserted above), and nothing else.
        #[allow(unsafe_code)]
        unsafe {
            self.enter(args)
        }
    }
}

impl PointwiseKernel {
    fn call(&self, args: [u64; 6]) -> Result<(), ExecError> {
        // SAFETY: code `pointwise::generate` emitted for `self.spec` and
        // `self.isa` (the same arguments and memory for either ISA); each
        // public method below asserts, before calling, that its slices are
        // exactly the lengths that code reads and writes (see the module
        // `pointwise`), and passes them in the order it expects.
        #[allow(unsafe_code)]
        unsafe {
            self.enter(args)
        }
    }

    /// RMSNorm: `o = w * (s * x)`, `s = 1 / sqrt(Σx²/dim + 1e-5)`.
    ///
    /// # Panics
    /// If the kernel is not an RMSNorm one or a slice is not `dim` long.
    pub fn rmsnorm(&self, o: &mut [f32], x: &[f32], w: &[f32]) -> Result<(), ExecError> {
        let PointwiseSpec::RmsNorm { dim } = self.spec else { panic!("{:?} called as rmsnorm", self.spec) };
        assert!(o.len() == dim && x.len() == dim && w.len() == dim, "JIT rmsnorm made for {dim} values");
        self.call([o.as_mut_ptr() as u64, x.as_ptr() as u64, w.as_ptr() as u64, 0, 0, 0])
    }

    /// SwiGLU: `hb = hb · σ(hb) · hb2`.
    ///
    /// # Panics
    /// If the kernel is not a SwiGLU one or a slice is not `n` long.
    pub fn swiglu(&self, hb: &mut [f32], hb2: &[f32]) -> Result<(), ExecError> {
        let PointwiseSpec::SwiGlu { n } = self.spec else { panic!("{:?} called as swiglu", self.spec) };
        assert!(hb.len() == n && hb2.len() == n, "JIT swiglu made for {n} values");
        self.call([hb.as_mut_ptr() as u64, hb2.as_ptr() as u64, 0, 0, 0, 0])
    }

    /// Softmax of `x` in place, for any length from 1 to the kernel's `max`
    /// (nothing to do for an empty `x`).
    ///
    /// # Panics
    /// If the kernel is not a softmax one or `x` is longer than its `max`.
    pub fn softmax(&self, x: &mut [f32]) -> Result<(), ExecError> {
        let PointwiseSpec::Softmax { max } = self.spec else { panic!("{:?} called as softmax", self.spec) };
        assert!(x.len() <= max, "JIT softmax made for at most {max} values, called with {}", x.len());
        if x.is_empty() {
            return Ok(());
        }
        self.call([x.as_mut_ptr() as u64, x.len() as u64, 0, 0, 0, 0])
    }

    /// RoPE of every head of `v` by the `[cos, sin]` pairs `cs` (one head long).
    ///
    /// # Panics
    /// If the kernel is not a RoPE one, `cs` is not one head long or `v` is
    /// not whole heads.
    pub fn rope(&self, v: &mut [f32], cs: &[f32]) -> Result<(), ExecError> {
        let PointwiseSpec::Rope { head } = self.spec else { panic!("{:?} called as rope", self.spec) };
        assert!(cs.len() == head && v.len().is_multiple_of(head), "JIT rope made for heads of {head} values");
        self.call([v.as_mut_ptr() as u64, cs.as_ptr() as u64, (v.len() / head) as u64, 0, 0, 0])
    }
}
