//! `x / max(‖x‖₂, ε)` over rows (PyTorch's `F.normalize(x, dim=-1)`), and its gradient
//! `∂x = ∂y/n − x·(x·∂y)/n³` where the norm `n` exceeds ε (below it, `n` is the constant ε and
//! `∂x = ∂y/ε`). MDTA normalises every row of q and k over the pixels.

use super::{dot, for_each_chunk};

fn norm(row: &[f32], epsilon: f32) -> f32 {
    dot(row, row).sqrt().max(epsilon)
}

pub(super) fn forward(x: &[f32], row_length: usize, epsilon: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for_each_chunk(&mut out, row_length, |r, out| {
        let row = &x[r * row_length..(r + 1) * row_length];
        let inv = 1.0 / norm(row, epsilon);
        for (o, v) in out.iter_mut().zip(row) {
            *o = v * inv;
        }
    });
    out
}

pub(super) fn backward(x: &[f32], grad: &[f32], row_length: usize, epsilon: f32) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    for_each_chunk(&mut out, row_length, |r, out| {
        let (row, grad) = (&x[r * row_length..(r + 1) * row_length], &grad[r * row_length..(r + 1) * row_length]);
        let n = norm(row, epsilon);
        let inv = 1.0 / n;
        // Below ε the norm is clamped: a constant, with no gradient of its own.
        let along = if n > epsilon { dot(row, grad) * inv * inv * inv } else { 0.0 };
        for ((o, g), v) in out.iter_mut().zip(grad).zip(row) {
            *o = g * inv - v * along;
        }
    });
    out
}
