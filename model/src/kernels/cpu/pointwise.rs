//! 1×1 convolution (with an optional bias) and its gradients as matrix products, per image:
//! - forward: `y[b] = W · x[b] + bias`, `W` `[O, C]`, `x[b]` `[C, H·W]`;
//! - input gradient: `dx[b] = Wᵀ · dy[b]`;
//! - weight gradient: `dW = Σ_b dy[b] · x[b]ᵀ`, accumulated image after image in one output;
//! - bias gradient: `db[o] = Σ_b Σ_p dy[b, o, p]`.
//!
//! Burn's matmul of `[1, O, C] × [B, C, H·W]` reshapes its operands (a copy of every transposed
//! one in the backward) and computes the weight gradient as one product per image and a sum;
//! here every operand is read in place through GEMM strides. Work is split in blocks of output
//! rows whose size depends on the shapes only, so results do not depend on the thread count.

use super::{for_each_row_block, gemm};

/// Sizes of one 1×1 convolution.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub batch: usize,
    pub channels: usize,
    pub out_channels: usize,
    /// `H·W`.
    pub plane: usize,
}

pub(super) fn forward(s: Shape, x: &[f32], weight: &[f32], bias: Option<&[f32]>) -> Vec<f32> {
    let Shape { batch, channels, out_channels, plane } = s;
    let mut out = vec![0.0f32; batch * out_channels * plane];
    for_each_row_block(&mut out, out_channels, plane, |b, first, block| {
        let rows = block.len() / plane;
        if let Some(bias) = bias {
            for (row, &value) in block.chunks_exact_mut(plane).zip(&bias[first..first + rows]) {
                row.fill(value);
            }
        }
        // SAFETY: A is rows `first..` of the [O, C] weight, B the image's [C, H·W] input, C this
        // block of the image's output rows; all inside their buffers.
        unsafe {
            gemm(
                rows,
                channels,
                plane,
                weight[first * channels..].as_ptr(),
                [channels, 1],
                x[b * channels * plane..].as_ptr(),
                [plane, 1],
                if bias.is_some() { 1.0 } else { 0.0 },
                block,
                [plane, 1],
            );
        }
    });
    out
}

pub(super) fn input_grad(s: Shape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let Shape { batch, channels, out_channels, plane } = s;
    let mut out = vec![0.0f32; batch * channels * plane];
    for_each_row_block(&mut out, channels, plane, |b, first, block| {
        // SAFETY: A is rows `first..` of Wᵀ (the [O, C] weight read column-wise), B the image's
        // [O, H·W] gradient, C this block of the image's input-gradient rows.
        unsafe {
            gemm(
                block.len() / plane,
                out_channels,
                plane,
                weight[first..].as_ptr(),
                [1, channels],
                grad[b * out_channels * plane..].as_ptr(),
                [plane, 1],
                0.0,
                block,
                [plane, 1],
            );
        }
    });
    out
}

pub(super) fn weight_grad(s: Shape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let Shape { batch, channels, out_channels, plane } = s;
    let mut out = vec![0.0f32; out_channels * channels];
    for_each_row_block(&mut out, out_channels, channels, |_, first, block| {
        for b in 0..batch {
            // SAFETY: A is rows `first..` of the image's [O, H·W] gradient, B x[b]ᵀ (the [C, H·W]
            // input read column-wise), C this block of the [O, C] weight gradient (β = 1 sums
            // the images in order).
            unsafe {
                gemm(
                    block.len() / channels,
                    plane,
                    channels,
                    grad[(b * out_channels + first) * plane..].as_ptr(),
                    [plane, 1],
                    x[b * channels * plane..].as_ptr(),
                    [1, plane],
                    1.0,
                    block,
                    [channels, 1],
                );
            }
        }
    });
    out
}

pub(super) fn bias_grad(s: Shape, grad: &[f32]) -> Vec<f32> {
    let Shape { batch, out_channels, plane, .. } = s;
    (0..out_channels)
        .map(|o| (0..batch).map(|b| super::sum(&grad[(b * out_channels + o) * plane..][..plane])).sum())
        .collect()
}
