//! 1×1 convolution (with an optional bias) and its gradients as matrix products, per image:
//! - forward: `y[b] = W · x[b] + bias`, `W` `[O, C]`, `x[b]` `[C, H·W]`;
//! - input gradient: `dx[b] = Wᵀ · dy[b]`;
//! - weight gradient: `dW = Σ_b dy[b] · x[b]ᵀ`, accumulated image after image in one output;
//! - bias gradient: `db[o] = Σ_b Σ_p dy[b, o, p]`.
//!
//! Burn's matmul of `[1, O, C] × [B, C, H·W]` reshapes its operands (a copy of every transposed
//! one in the backward) and computes the weight gradient as one product per image and a sum;
//! here every operand is read in place through GEMM strides, and [`gemm`] spreads each product
//! over the threads.

use super::gemm;

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
    if plane == 0 {
        return out;
    }
    for (b, image) in out.chunks_exact_mut(out_channels * plane).enumerate() {
        if let Some(bias) = bias {
            for (row, &value) in image.chunks_exact_mut(plane).zip(bias) {
                row.fill(value);
            }
        }
        // SAFETY: A is the [O, C] weight, B the image's [C, H·W] input, C the image's [O, H·W]
        // output; all inside their buffers.
        unsafe {
            gemm(
                out_channels,
                channels,
                plane,
                weight.as_ptr(),
                [channels, 1],
                x[b * channels * plane..].as_ptr(),
                [plane, 1],
                if bias.is_some() { 1.0 } else { 0.0 },
                image,
                [plane, 1],
            );
        }
    }
    out
}

pub(super) fn input_grad(s: Shape, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let Shape { batch, channels, out_channels, plane } = s;
    let mut out = vec![0.0f32; batch * channels * plane];
    if plane == 0 {
        return out;
    }
    for (b, image) in out.chunks_exact_mut(channels * plane).enumerate() {
        // SAFETY: A is Wᵀ (the [O, C] weight read column-wise), B the image's [O, H·W]
        // gradient, C the image's [C, H·W] input gradient.
        unsafe {
            gemm(
                channels,
                out_channels,
                plane,
                weight.as_ptr(),
                [1, channels],
                grad[b * out_channels * plane..].as_ptr(),
                [plane, 1],
                0.0,
                image,
                [plane, 1],
            );
        }
    }
    out
}

pub(super) fn weight_grad(s: Shape, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let Shape { batch, channels, out_channels, plane } = s;
    let mut out = vec![0.0f32; out_channels * channels];
    for b in 0..batch {
        // SAFETY: A is the image's [O, H·W] gradient, B x[b]ᵀ (the [C, H·W] input read
        // column-wise), C the [O, C] weight gradient (β = 1 sums the images in order).
        unsafe {
            gemm(
                out_channels,
                plane,
                channels,
                grad[b * out_channels * plane..].as_ptr(),
                [plane, 1],
                x[b * channels * plane..].as_ptr(),
                [1, plane],
                1.0,
                &mut out,
                [channels, 1],
            );
        }
    }
    out
}

pub(super) fn bias_grad(s: Shape, grad: &[f32]) -> Vec<f32> {
    let Shape { batch, out_channels, plane, .. } = s;
    (0..out_channels)
        .map(|o| (0..batch).map(|b| super::sum(&grad[(b * out_channels + o) * plane..][..plane])).sum())
        .collect()
}
