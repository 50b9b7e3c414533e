//! Portable kernels in run.c's exact order of operations (no FMA contraction,
//! sums left to right): the kernel set the reference transcripts are checked with.

/// `out[i] = Σ_j w[i*n + j] * x[j]` with `n = x.len()`, `rows = out.len()`.
pub fn matmul(out: &mut [f32], x: &[f32], w: &[f32]) {
    let n = x.len();
    for (o, row) in out.iter_mut().zip(w.chunks_exact(n)) {
        *o = dot(row, x);
    }
}

/// `Σ a[i] * b[i]`, left to right.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut s = 0.0f32;
    for (x, y) in a.iter().zip(b) {
        s += x * y;
    }
    s
}

/// `out[i] += a * v[i]`.
pub fn axpy(out: &mut [f32], a: f32, v: &[f32]) {
    for (o, x) in out.iter_mut().zip(v) {
        *o += a * x;
    }
}

/// run.c's `rmsnorm`: `o = w * (x / sqrt(mean(x²) + 1e-5))`. `o` may not alias `x`
/// in Rust, so the in-place variant is [`rmsnorm_in_place`].
pub fn rmsnorm(o: &mut [f32], x: &[f32], w: &[f32]) {
    let ss = rms_scale(x);
    for ((o, x), w) in o.iter_mut().zip(x).zip(w) {
        *o = w * (ss * x);
    }
}

/// [`rmsnorm`] with `o == x`.
pub fn rmsnorm_in_place(x: &mut [f32], w: &[f32]) {
    let ss = rms_scale(x);
    for (x, w) in x.iter_mut().zip(w) {
        *x = w * (ss * *x);
    }
}

fn rms_scale(x: &[f32]) -> f32 {
    let mut ss = 0.0f32;
    for v in x {
        ss += v * v;
    }
    ss /= x.len() as f32;
    ss += 1e-5;
    1.0 / libm::sqrtf(ss)
}

/// run.c's `softmax`, in place.
pub fn softmax(x: &mut [f32]) {
    let Some(&first) = x.first() else { return };
    let mut max = first;
    for &v in &x[1..] {
        if v > max {
            max = v;
        }
    }
    let mut sum = 0.0f32;
    for v in x.iter_mut() {
        *v = libm::expf(*v - max);
        sum += *v;
    }
    for v in x.iter_mut() {
        *v /= sum;
    }
}

/// SwiGLU: `hb[i] = silu(hb[i]) * hb2[i]`, run.c's order.
pub fn swiglu(hb: &mut [f32], hb2: &[f32]) {
    for (h, g) in hb.iter_mut().zip(hb2) {
        let mut v = *h;
        v *= 1.0 / (1.0 + libm::expf(-v));
        v *= g;
        *h = v;
    }
}

/// RoPE on adjacent pairs with a precomputed `[cos, sin]` per pair index
/// inside a head (`cs.len() == head_size / 2`).
pub fn rope(v: &mut [f32], cs: &[[f32; 2]]) {
    let head = cs.len() * 2;
    if head == 0 {
        return;
    }
    for chunk in v.chunks_exact_mut(head) {
        for (pair, &[fcr, fci]) in chunk.chunks_exact_mut(2).zip(cs) {
            let (v0, v1) = (pair[0], pair[1]);
            pair[0] = v0 * fcr - v1 * fci;
            pair[1] = v0 * fci + v1 * fcr;
        }
    }
}

/// Int8 dot of one quantized row with a quantized vector: `Σ_g sw[g]*sx[g]*Σ qw*qx`.
pub fn q8_dot(qw: &[i8], sw: &[f32], qx: &[i8], sx: &[f32]) -> f32 {
    let mut acc = 0.0f32;
    for (g, (wg, xg)) in qw.chunks_exact(crate::quant::GROUP).zip(qx.chunks_exact(crate::quant::GROUP)).enumerate() {
        let mut s = 0i32;
        for (a, b) in wg.iter().zip(xg) {
            s += *a as i32 * *b as i32;
        }
        acc += s as f32 * sw[g] * sx[g];
    }
    acc
}
