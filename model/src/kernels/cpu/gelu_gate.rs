//! The GDFN gate `GELU(x₁)·x₂` on `[B, 2h, plane]` data (halves along the channels), and its
//! gradient, in one pass each: no split copies, no intermediate tensors.

use super::for_each_chunk;

const FRAC_1_SQRT_2: f32 = std::f32::consts::FRAC_1_SQRT_2;
/// 1/√(2π).
const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;

/// `Φ(a) = ½(1 + erf(a/√2))`, the standard normal CDF (exact GELU is `a·Φ(a)`).
#[inline]
fn normal_cdf(a: f32) -> f32 {
    0.5 * (1.0 + libm::erff(a * FRAC_1_SQRT_2))
}

/// `[B, 2h, plane]` → `[B, h, plane]`.
pub(super) fn forward(x: &[f32], batch: usize, hidden: usize, plane: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; batch * hidden * plane];
    for_each_chunk(&mut out, plane, |bc, out| {
        let (b, c) = (bc / hidden, bc % hidden);
        let first = &x[(b * 2 * hidden + c) * plane..][..plane];
        let second = &x[(b * 2 * hidden + hidden + c) * plane..][..plane];
        for ((o, &a), &v) in out.iter_mut().zip(first).zip(second) {
            *o = a * normal_cdf(a) * v;
        }
    });
    out
}

/// `∂x₁ = ∂y·x₂·GELU′(x₁)` with `GELU′(a) = Φ(a) + a·φ(a)`, and `∂x₂ = ∂y·GELU(x₁)`.
pub(super) fn backward(x: &[f32], grad: &[f32], hidden: usize, plane: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for_each_chunk(&mut out, plane, |bc, out| {
        let (b, c) = (bc / (2 * hidden), bc % (2 * hidden));
        let c = c % hidden;
        let first = &x[(b * 2 * hidden + c) * plane..][..plane];
        let second = &x[(b * 2 * hidden + hidden + c) * plane..][..plane];
        let grad = &grad[(b * hidden + c) * plane..][..plane];
        let is_first = bc % (2 * hidden) < hidden;
        for (p, o) in out.iter_mut().enumerate() {
            let a = first[p];
            *o = if is_first {
                let density = FRAC_1_SQRT_2PI * (-0.5 * a * a).exp();
                grad[p] * second[p] * (normal_cdf(a) + a * density)
            } else {
                grad[p] * a * normal_cdf(a)
            };
        }
    });
    out
}
