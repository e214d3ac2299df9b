//! MDTA's channel attention in one pass per head, forward and backward, on the q/k/v map in place.
//!
//! Per image and head, with `q`, `k`, `v` the head's `[d, N]` rows of the `[3C, N]` map and `w`
//! the valid weight of each pixel (1 without a mask):
//!
//! ```text
//! q̃ = q·w, k̃ = k·w          (holes do not vote)
//! G = q̃·k̃ᵀ                   d×d, one GEMM
//! Ĝ = G / (n_q n_kᵀ)          n = max(‖row‖₂, ε): F.normalize of q̃ and k̃, applied to G
//! A = softmax(t·Ĝ)            row-wise
//! out = A·v                   one GEMM
//! ```
//!
//! Burn's ops make the same out of a dozen passes: the q/k/v channel slices are strided when
//! the batch is above 1 and get copied, `kᵀ` is copied for the product, each normalisation and
//! the softmax allocate. Here the only `[d, N]` temporaries are q̃ and k̃ when there is a mask.
//!
//! Backward, from `∂out`: `∂v = Aᵀ·∂out`, `∂A = ∂out·vᵀ`, the softmax's `∂S = A ⊙ (∂A − Σ_j ∂A⊙A)`,
//! `∂t = Σ ∂S ⊙ Ĝ`, `∂Ĝ = t·∂S`. Through the normalisation in closed form: `q̂ᵢ·∂q̂ᵢ` is the row sum
//! of `∂Ĝ ⊙ Ĝ`, so `∂q̃ = M·k̃ − diag(cᵢ / n_qᵢ²)·q̃` with `M = ∂Ĝ / (n_q n_kᵀ)` and `cᵢ` that row
//! sum (0 for a row whose norm is clamped at ε, where the norm is a constant); `∂k̃` likewise with
//! `Mᵀ·q̃` and column sums; then `∂q = ∂q̃·w`. The valid weights get no gradient (they are data).
//! The d×d maps are recomputed in the backward rather than saved: one small GEMM per head.

use super::{dot, for_each_chunk, gemm};

/// The sizes of one call: `qkv` is `[batch, 3·channels, pixels]`, row-major.
#[derive(Debug, Clone, Copy)]
pub(super) struct Layout {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
    pub heads: usize,
    pub epsilon: f32,
}

impl Layout {
    fn per_head(&self) -> usize {
        self.channels / self.heads
    }
}

/// One head of one image: its q, k (weighted by the valid pixels) and v rows, and the d×d maps.
struct Head<'a> {
    q: RowsOf<'a>,
    k: RowsOf<'a>,
    v: &'a [f32],
    /// `max(‖q̃ᵢ‖, ε)`, `max(‖k̃ⱼ‖, ε)`, and whether the norm was above ε.
    q_norm: Vec<(f32, bool)>,
    k_norm: Vec<(f32, bool)>,
    /// `Ĝ`, then the attention `A = softmax(t·Ĝ)`, both d×d row-major.
    gram: Vec<f32>,
    attention: Vec<f32>,
}

/// Rows of q or k: the map itself without a mask, else its copy times the valid weights.
enum RowsOf<'a> {
    Map(&'a [f32]),
    Weighted(Vec<f32>),
}

impl RowsOf<'_> {
    fn new<'a>(rows: &'a [f32], valid: Option<&[f32]>, pixels: usize) -> RowsOf<'a> {
        match valid {
            None => RowsOf::Map(rows),
            Some(w) => {
                let mut weighted = rows.to_vec();
                for row in weighted.chunks_exact_mut(pixels) {
                    row.iter_mut().zip(w).for_each(|(x, w)| *x *= w);
                }
                RowsOf::Weighted(weighted)
            }
        }
    }

    fn as_slice(&self) -> &[f32] {
        match self {
            RowsOf::Map(rows) => rows,
            RowsOf::Weighted(rows) => rows,
        }
    }
}

impl<'a> Head<'a> {
    /// The forward's d×d maps for head `head` of `image` (the `[3C, N]` map of one image).
    fn new(image: &'a [f32], valid: Option<&[f32]>, temperature: f32, head: usize, layout: &Layout) -> Self {
        let (d, n, c) = (layout.per_head(), layout.pixels, layout.channels);
        let rows = |part: usize| &image[(part * c + head * d) * n..(part * c + head * d + d) * n];
        let (q, k) = (RowsOf::new(rows(0), valid, n), RowsOf::new(rows(1), valid, n));
        let norms = |rows: &RowsOf| -> Vec<(f32, bool)> {
            rows.as_slice()
                .chunks_exact(n)
                .map(|row| {
                    let norm = dot(row, row).sqrt();
                    (norm.max(layout.epsilon), norm > layout.epsilon)
                })
                .collect()
        };
        let (q_norm, k_norm) = (norms(&q), norms(&k));

        let mut gram = vec![0.0f32; d * d];
        // SAFETY: q̃ is [d, N] row-major, k̃ᵀ reads k̃ [d, N] as [N, d]; gram is [d, d].
        unsafe { gemm(d, n, d, q.as_slice().as_ptr(), [n, 1], k.as_slice().as_ptr(), [1, n], 0.0, &mut gram, [d, 1]) };
        for (i, row) in gram.chunks_exact_mut(d).enumerate() {
            for (j, g) in row.iter_mut().enumerate() {
                *g /= q_norm[i].0 * k_norm[j].0;
            }
        }
        let mut attention: Vec<f32> = gram.iter().map(|g| g * temperature).collect();
        for row in attention.chunks_exact_mut(d) {
            let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut total = 0.0;
            for a in row.iter_mut() {
                *a = (*a - max).exp();
                total += *a;
            }
            row.iter_mut().for_each(|a| *a /= total);
        }
        Self { q, k, v: rows(2), q_norm, k_norm, gram, attention }
    }
}

/// `out` `[batch, C, N]` from `qkv` `[batch, 3C, N]`, `temperature` `[heads]` and the valid
/// weights `[batch, N]`.
pub(super) fn forward(qkv: &[f32], temperature: &[f32], valid: Option<&[f32]>, layout: Layout) -> Vec<f32> {
    let (d, n, c) = (layout.per_head(), layout.pixels, layout.channels);
    let mut out = vec![0.0f32; layout.batch * c * n];
    // One piece per image and head: the head's d output rows are contiguous.
    for_each_chunk(&mut out, d * n, |piece, out| {
        let (image, head) = (piece / layout.heads, piece % layout.heads);
        let qkv = &qkv[image * 3 * c * n..(image + 1) * 3 * c * n];
        let valid = valid.map(|w| &w[image * n..(image + 1) * n]);
        let maps = Head::new(qkv, valid, temperature[head], head, &layout);
        // SAFETY: A is [d, d], v [d, N] and out [d, N], all row-major.
        unsafe { gemm(d, d, n, maps.attention.as_ptr(), [d, 1], maps.v.as_ptr(), [n, 1], 0.0, out, [n, 1]) };
    });
    out
}

/// `(∂qkv [batch, 3C, N], ∂temperature [heads])` from the upstream gradient `grad` `[batch, C, N]`.
pub(super) fn backward(
    qkv: &[f32],
    temperature: &[f32],
    valid: Option<&[f32]>,
    grad: &[f32],
    layout: Layout,
) -> (Vec<f32>, Vec<f32>) {
    let (d, n, c, heads) = (layout.per_head(), layout.pixels, layout.channels, layout.heads);
    let mut grad_qkv = vec![0.0f32; layout.batch * 3 * c * n];
    // Per image, the temperature gradient of each head, summed over images in order below.
    let mut grad_temperature = vec![0.0f32; layout.batch * heads];
    let image_len = 3 * c * n;
    // One piece per image (its q, k and v gradient rows are three separate blocks).
    let partials = std::sync::Mutex::new(&mut grad_temperature);
    for_each_chunk(&mut grad_qkv, image_len, |image, out| {
        let qkv = &qkv[image * image_len..(image + 1) * image_len];
        let grad = &grad[image * c * n..(image + 1) * c * n];
        let valid = valid.map(|w| &w[image * n..(image + 1) * n]);
        let mut per_head = vec![0.0f32; heads];
        for (head, grad_t) in per_head.iter_mut().enumerate() {
            let t = temperature[head];
            let maps = Head::new(qkv, valid, t, head, &layout);
            let (q_block, rest) = out.split_at_mut(c * n);
            let (k_block, v_block) = rest.split_at_mut(c * n);
            let head_rows = head * d * n..(head + 1) * d * n;
            let grad_out = &grad[head_rows.clone()];
            let grad_v = &mut v_block[head_rows.clone()];
            // ∂v = Aᵀ·∂out; ∂A = ∂out·vᵀ.
            // SAFETY: Aᵀ reads A [d, d] transposed; ∂out and ∂v are [d, N]; vᵀ reads v [d, N] as [N, d].
            unsafe {
                gemm(d, d, n, maps.attention.as_ptr(), [1, d], grad_out.as_ptr(), [n, 1], 0.0, grad_v, [n, 1]);
            }
            let mut grad_gram = vec![0.0f32; d * d];
            unsafe { gemm(d, n, d, grad_out.as_ptr(), [n, 1], maps.v.as_ptr(), [1, n], 0.0, &mut grad_gram, [d, 1]) };
            // Softmax backward, then ∂t and ∂Ĝ = t·∂S.
            for (row, a) in grad_gram.chunks_exact_mut(d).zip(maps.attention.chunks_exact(d)) {
                let along = dot(row, a);
                row.iter_mut().zip(a).for_each(|(g, a)| *g = a * (*g - along));
            }
            *grad_t = dot(&grad_gram, &maps.gram);
            grad_gram.iter_mut().for_each(|g| *g *= t);
            // Closed-form normalisation backward: row and column sums of ∂Ĝ ⊙ Ĝ.
            let mut row_sums = vec![0.0f32; d];
            let mut column_sums = vec![0.0f32; d];
            for i in 0..d {
                for j in 0..d {
                    let p = grad_gram[i * d + j] * maps.gram[i * d + j];
                    row_sums[i] += p;
                    column_sums[j] += p;
                }
            }
            // M = ∂Ĝ / (n_q n_kᵀ), in place.
            for (i, row) in grad_gram.chunks_exact_mut(d).enumerate() {
                for (j, g) in row.iter_mut().enumerate() {
                    *g /= maps.q_norm[i].0 * maps.k_norm[j].0;
                }
            }
            let (q, k) = (maps.q.as_slice(), maps.k.as_slice());
            let grad_q = &mut q_block[head_rows.clone()];
            through_normalisation(grad_q, q, &maps.q_norm, &row_sums, n);
            // SAFETY: M [d, d], k̃ [d, N], ∂q̃ [d, N], row-major.
            unsafe { gemm(d, d, n, grad_gram.as_ptr(), [d, 1], k.as_ptr(), [n, 1], 1.0, grad_q, [n, 1]) };
            let grad_k = &mut k_block[head_rows];
            through_normalisation(grad_k, k, &maps.k_norm, &column_sums, n);
            // SAFETY: Mᵀ reads M [d, d] transposed; q̃ [d, N], ∂k̃ [d, N].
            unsafe { gemm(d, d, n, grad_gram.as_ptr(), [1, d], q.as_ptr(), [n, 1], 1.0, grad_k, [n, 1]) };
            if let Some(w) = valid {
                for row in grad_q.chunks_exact_mut(n).chain(grad_k.chunks_exact_mut(n)) {
                    row.iter_mut().zip(w).for_each(|(g, w)| *g *= w);
                }
            }
        }
        let mut partials = partials.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        partials[image * heads..(image + 1) * heads].copy_from_slice(&per_head);
    });
    let mut total = vec![0.0f32; heads];
    for image in grad_temperature.chunks_exact(heads) {
        total.iter_mut().zip(image).for_each(|(t, g)| *t += g);
    }
    (grad_qkv, total)
}

/// Starts `∂x̃ᵢ` at `−(sᵢ / nᵢ²)·x̃ᵢ` (the normalisation's own term; none where the norm is
/// clamped at ε); the caller adds the product term.
fn through_normalisation(out: &mut [f32], rows: &[f32], norms: &[(f32, bool)], sums: &[f32], pixels: usize) {
    for (((out, row), &(norm, above)), sum) in
        out.chunks_exact_mut(pixels).zip(rows.chunks_exact(pixels)).zip(norms).zip(sums)
    {
        let scale = if above { -sum / (norm * norm) } else { 0.0 };
        out.iter_mut().zip(row).for_each(|(o, x)| *o = scale * x);
    }
}
