//! Int8 weights (Q8_0-style): each row is cut into groups of [`GROUP`] values,
//! each group stored as i8 in -127..=127 with one f32 scale (`max|w| / 127`).
//! Rows are zero-padded to a whole number of groups. Activations are quantized
//! the same way at run time, just before each int8 matmul.
use alloc::vec;
use alloc::vec::Vec;

/// Values per group.
pub const GROUP: usize = 32;

/// A quantized matrix `[rows][cols]`.
#[derive(Debug, Clone)]
pub struct QMatrix {
    pub rows: usize,
    pub cols: usize,
    /// `rows * padded_cols` values.
    pub q: Vec<i8>,
    /// `rows * groups` scales.
    pub scales: Vec<f32>,
}

impl QMatrix {
    /// Groups per row.
    pub fn groups(&self) -> usize {
        self.cols.div_ceil(GROUP)
    }

    /// Quantizes `w` (`rows * cols` values, row-major).
    pub fn quantize(w: &[f32], rows: usize, cols: usize) -> Self {
        let groups = cols.div_ceil(GROUP);
        let mut q = vec![0i8; rows * groups * GROUP];
        let mut scales = vec![0f32; rows * groups];
        for r in 0..rows {
            let row = &w[r * cols..(r + 1) * cols];
            let qrow = &mut q[r * groups * GROUP..(r + 1) * groups * GROUP];
            quantize_row(row, qrow, &mut scales[r * groups..(r + 1) * groups]);
        }
        QMatrix { rows, cols, q, scales }
    }

    /// Row `r` dequantized (for tests and error measurement).
    pub fn dequantize_row(&self, r: usize) -> Vec<f32> {
        let g = self.groups();
        (0..self.cols)
            .map(|c| self.q[r * g * GROUP + c] as f32 * self.scales[r * g + c / GROUP])
            .collect()
    }
}

/// Quantizes `x` into `q` (length a multiple of [`GROUP`], at least `x.len()`,
/// zero-padded) and one scale per group.
pub fn quantize_row(x: &[f32], q: &mut [i8], scales: &mut [f32]) {
    for (g, (qg, s)) in q.chunks_exact_mut(GROUP).zip(scales.iter_mut()).enumerate() {
        let start = (g * GROUP).min(x.len());
        let xg = &x[start..(start + GROUP).min(x.len())];
        let amax = xg.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let scale = amax / 127.0;
        let inv = if scale > 0.0 { 1.0 / scale } else { 0.0 };
        for (i, qv) in qg.iter_mut().enumerate() {
            *qv = match xg.get(i) {
                Some(v) => libm::roundf(v * inv).clamp(-127.0, 127.0) as i8,
                None => 0,
            };
        }
        *s = scale;
    }
}

/// Run-time quantized activations of one or more tokens: for each, its values
/// in groups of [`GROUP`] (zero-padded) and one scale per group.
#[derive(Debug, Clone)]
pub struct QBatch {
    /// `tokens * groups * GROUP` values.
    pub q: Vec<i8>,
    /// `tokens * groups` scales.
    pub scales: Vec<f32>,
    /// Groups per token.
    pub groups: usize,
}

impl QBatch {
    /// Room for `tokens` vectors of `n` values.
    pub fn new(tokens: usize, n: usize) -> Self {
        let groups = n.div_ceil(GROUP);
        QBatch { q: vec![0; tokens * groups * GROUP], scales: vec![0.0; tokens * groups], groups }
    }

    /// Quantizes the `t` vectors of `x` (`t` rows of `n` values, `n` as given
    /// to [`QBatch::new`]), each with [`quantize_row`].
    pub fn set(&mut self, x: &[f32], t: usize) {
        let (n, padded) = (x.len() / t.max(1), self.groups * GROUP);
        for k in 0..t {
            let (q, s) = (&mut self.q[k * padded..(k + 1) * padded], &mut self.scales[k * self.groups..(k + 1) * self.groups]);
            quantize_row(&x[k * n..(k + 1) * n], q, s);
        }
    }

    /// The first `t` quantized vectors and their scales.
    pub fn tokens(&self, t: usize) -> (&[i8], &[f32]) {
        (&self.q[..t * self.groups * GROUP], &self.scales[..t * self.groups])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_error_is_within_half_a_step() {
        let w: Vec<f32> = (0..3 * 70).map(|i| libm::sinf(i as f32 * 0.37) * (1.0 + (i % 7) as f32)).collect();
        let m = QMatrix::quantize(&w, 3, 70);
        for r in 0..3 {
            let d = m.dequantize_row(r);
            for c in 0..70 {
                let step = m.scales[r * m.groups() + c / GROUP];
                assert!((d[c] - w[r * 70 + c]).abs() <= step * 0.5 + 1e-6, "r {r} c {c}");
            }
        }
        // Padding is zero.
        assert!(m.q[70..96].iter().all(|&v| v == 0));
    }
}
