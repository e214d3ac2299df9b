//! LayerNorm over the channels of each pixel of `[B, C, H·W]` data, and its gradients.
//!
//! With a bias (`WithBias`): `y = (x − μ)·r·w + b`, `r = 1/√(σ² + ε)`, and
//! `∂x = r·(ĝ − mean(ĝ) − x̂·mean(ĝ·x̂))` with `x̂ = (x − μ)·r`, `ĝ = ∂y·w`.
//! Without (`BiasFree`, the mean stays in the numerator): `y = x·r·w`, and
//! `∂x = r·ĝ − r³·(x − μ)·mean(ĝ·x)`. Means over the channels, per pixel.

use super::for_each_chunk;

/// Pixels per parallel piece of a per-pixel reduction.
const PIXELS_PER_PIECE: usize = 2048;

/// Sizes: `x` is `[batch, channels, plane]`.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    pub batch: usize,
    pub channels: usize,
    pub plane: usize,
}

impl Layout {
    fn pixels(&self) -> usize {
        self.batch * self.plane
    }

    /// Channel `c` of image `b`, pixels `range`.
    fn row<'a>(&self, data: &'a [f32], b: usize, c: usize, range: &std::ops::Range<usize>) -> &'a [f32] {
        let start = (b * self.channels + c) * self.plane;
        &data[start + range.start..start + range.end]
    }
}

/// Per-pixel `[B·plane]` values `out[b, p] = f(b, pixels)` for pieces of pixels, in parallel:
/// `fill(b, range, out)` writes pixels `range` of image `b`.
fn per_pixel(layout: Layout, fill: impl Fn(usize, std::ops::Range<usize>, &mut [f32]) + Send + Sync) -> Vec<f32> {
    let mut out = vec![0.0f32; layout.pixels()];
    for_each_chunk(&mut out, PIXELS_PER_PIECE, |piece, out| {
        // A piece may span two images: split it at their boundary.
        let mut q = piece * PIXELS_PER_PIECE;
        let mut out = out;
        while !out.is_empty() {
            let (b, p) = (q / layout.plane, q % layout.plane);
            let n = out.len().min(layout.plane - p);
            let (head, rest) = out.split_at_mut(n);
            fill(b, p..p + n, head);
            out = rest;
            q += n;
        }
    });
    out
}

/// Per-pixel mean and `1/√(σ² + ε)` over the channels (biased variance, two passes).
fn statistics(x: &[f32], layout: Layout, epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let inv_c = 1.0 / layout.channels as f32;
    let mean = per_pixel(layout, |b, range, out| {
        for c in 0..layout.channels {
            for (o, v) in out.iter_mut().zip(layout.row(x, b, c, &range)) {
                *o += v;
            }
        }
        out.iter_mut().for_each(|o| *o *= inv_c);
    });
    let rstd = per_pixel(layout, |b, range, out| {
        let mean = &mean[b * layout.plane + range.start..b * layout.plane + range.end];
        for c in 0..layout.channels {
            for ((o, v), m) in out.iter_mut().zip(layout.row(x, b, c, &range)).zip(mean) {
                *o += (v - m) * (v - m);
            }
        }
        out.iter_mut().for_each(|o| *o = 1.0 / ((*o * inv_c) as f64 + epsilon).sqrt() as f32);
    });
    (mean, rstd)
}

pub(super) fn forward(x: &[f32], weight: &[f32], bias: Option<&[f32]>, layout: Layout, epsilon: f64) -> Vec<f32> {
    let (mean, rstd) = statistics(x, layout, epsilon);
    let plane = layout.plane;
    let mut out = vec![0.0f32; x.len()];
    for_each_chunk(&mut out, plane, |bc, out| {
        let (b, c) = (bc / layout.channels, bc % layout.channels);
        let x = &x[bc * plane..(bc + 1) * plane];
        let (mean, rstd) = (&mean[b * plane..(b + 1) * plane], &rstd[b * plane..(b + 1) * plane]);
        let w = weight[c];
        match bias {
            Some(bias) => {
                let shift = bias[c];
                for (((o, v), m), r) in out.iter_mut().zip(x).zip(mean).zip(rstd) {
                    *o = (v - m) * r * w + shift;
                }
            }
            None => {
                for ((o, v), r) in out.iter_mut().zip(x).zip(rstd) {
                    *o = v * r * w;
                }
            }
        }
    });
    out
}

/// `(∂x, ∂weight, ∂bias)`, the last when `has_bias`.
pub(super) fn backward(
    x: &[f32],
    weight: &[f32],
    has_bias: bool,
    grad: &[f32],
    layout: Layout,
    epsilon: f64,
) -> (Vec<f32>, Vec<f32>, Option<Vec<f32>>) {
    let (mean, rstd) = statistics(x, layout, epsilon);
    let (plane, channels) = (layout.plane, layout.channels);
    let inv_c = 1.0 / channels as f32;
    let pixel = |b: usize, range: &std::ops::Range<usize>| b * plane + range.start..b * plane + range.end;

    // Per pixel: mean over channels of ĝ (needed with a bias only), and of ĝ·x̂ (with) or ĝ·x (without).
    let mean_g = has_bias.then(|| {
        per_pixel(layout, |b, range, out| {
            for c in 0..channels {
                for (o, g) in out.iter_mut().zip(layout.row(grad, b, c, &range)) {
                    *o += g * weight[c];
                }
            }
            out.iter_mut().for_each(|o| *o *= inv_c);
        })
    });
    let mean_gx = per_pixel(layout, |b, range, out| {
        let (mean, rstd) = (&mean[pixel(b, &range)], &rstd[pixel(b, &range)]);
        for c in 0..channels {
            let rows = layout.row(grad, b, c, &range).iter().zip(layout.row(x, b, c, &range));
            let w = weight[c];
            if has_bias {
                for ((o, (g, v)), (m, r)) in out.iter_mut().zip(rows).zip(mean.iter().zip(rstd)) {
                    *o += g * w * (v - m) * r;
                }
            } else {
                for (o, (g, v)) in out.iter_mut().zip(rows) {
                    *o += g * w * v;
                }
            }
        }
        out.iter_mut().for_each(|o| *o *= inv_c);
    });

    let mut grad_x = vec![0.0f32; x.len()];
    for_each_chunk(&mut grad_x, plane, |bc, out| {
        let (b, c) = (bc / channels, bc % channels);
        let all = b * plane..(b + 1) * plane;
        let (x, grad) = (&x[bc * plane..(bc + 1) * plane], &grad[bc * plane..(bc + 1) * plane]);
        let mean_g = mean_g.as_deref().map(|m| &m[all.clone()]);
        let (mean, rstd, mean_gx) = (&mean[all.clone()], &rstd[all.clone()], &mean_gx[all]);
        let w = weight[c];
        for (p, o) in out.iter_mut().enumerate() {
            let (r, centred, g_hat) = (rstd[p], x[p] - mean[p], grad[p] * w);
            *o = match mean_g {
                Some(mean_g) => r * (g_hat - mean_g[p] - centred * r * mean_gx[p]),
                None => r * g_hat - r * r * r * centred * mean_gx[p],
            };
        }
    });

    // ∂weight[c] = Σ ∂y·x̂ (with bias) or Σ ∂y·x·r (without); ∂bias[c] = Σ ∂y. Sums in f64.
    let channel_sums = |term: &(dyn Fn(f32, f32, f32, f32) -> f32 + Sync)| {
        let mut out = vec![0.0f32; channels];
        for_each_chunk(&mut out, 1, |c, out| {
            let mut total = 0.0f64;
            for b in 0..layout.batch {
                let at = (b * channels + c) * plane;
                let (x, grad) = (&x[at..at + plane], &grad[at..at + plane]);
                let (mean, rstd) = (&mean[b * plane..(b + 1) * plane], &rstd[b * plane..(b + 1) * plane]);
                let sum: f32 = (0..plane).map(|p| term(grad[p], x[p], mean[p], rstd[p])).sum();
                total += f64::from(sum);
            }
            out[0] = total as f32;
        });
        out
    };
    let grad_weight =
        if has_bias { channel_sums(&|g, v, m, r| g * (v - m) * r) } else { channel_sums(&|g, v, _, r| g * v * r) };
    let grad_bias = has_bias.then(|| channel_sums(&|g, _, _, _| g));
    (grad_x, grad_weight, grad_bias)
}
