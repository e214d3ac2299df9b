//! Depth-wise 3×3 convolution (zero padding 1) and its gradients, on planes of `H × W` floats.
//! Plane `p` of a `[B, C, H, W]` tensor belongs to channel `p % C`; kernels are `[C, 9]`.

use super::{dot, for_each_chunk};

/// `out[p] = x[p] ⋆ kernel[p % C]` (cross-correlation, as a convolution layer computes it).
pub(super) fn forward(x: &[f32], kernels: &[f32], planes: usize, channels: usize, h: usize, w: usize) -> Vec<f32> {
    stencil_planes(x, planes, channels, h, w, |c| taps(kernels, c))
}

/// Gradient with respect to the input: the output gradient correlated with the kernel turned
/// by 180° (each input pixel reached the outputs around it through the mirrored tap).
pub(super) fn input_grad(
    grad: &[f32],
    kernels: &[f32],
    planes: usize,
    channels: usize,
    h: usize,
    w: usize,
) -> Vec<f32> {
    stencil_planes(grad, planes, channels, h, w, |c| {
        let mut turned = taps(kernels, c);
        turned.reverse();
        turned
    })
}

/// Gradient with respect to the kernels, `[C, 9]`: tap `(dy, dx)` of channel `c` is the sum over
/// the batch and the pixels of `grad[y, x] · x[y + dy − 1, x + dx − 1]`.
pub(super) fn weight_grad(x: &[f32], grad: &[f32], batch: usize, channels: usize, h: usize, w: usize) -> Vec<f32> {
    let plane = h * w;
    let mut out = vec![0.0f32; channels * 9];
    if plane == 0 {
        return out;
    }
    for_each_chunk(&mut out, 9, |c, taps_out| {
        // Row sums in f32, their total in f64: the total spans up to millions of products.
        let mut total = [0.0f64; 9];
        for b in 0..batch {
            let offset = (b * channels + c) * plane;
            let (x, grad) = (&x[offset..offset + plane], &grad[offset..offset + plane]);
            for y in 0..h {
                let g = &grad[y * w..(y + 1) * w];
                for dy in 0..3 {
                    let Some(source) = (y + dy).checked_sub(1).filter(|&s| s < h) else { continue };
                    let row = &x[source * w..(source + 1) * w];
                    // dx = 0 reads one pixel to the left, dx = 2 one to the right.
                    total[dy * 3] += f64::from(dot(&g[1..], &row[..w - 1]));
                    total[dy * 3 + 1] += f64::from(dot(g, row));
                    total[dy * 3 + 2] += f64::from(dot(&g[..w - 1], &row[1..]));
                }
            }
        }
        for (out, total) in taps_out.iter_mut().zip(total) {
            *out = total as f32;
        }
    });
    out
}

fn taps(kernels: &[f32], channel: usize) -> [f32; 9] {
    let mut taps = [0.0; 9];
    taps.copy_from_slice(&kernels[channel * 9..channel * 9 + 9]);
    taps
}

/// Applies a 3×3 stencil to every plane, the kernel chosen by the plane's channel.
fn stencil_planes(
    input: &[f32],
    planes: usize,
    channels: usize,
    h: usize,
    w: usize,
    kernel_of: impl Fn(usize) -> [f32; 9] + Send + Sync,
) -> Vec<f32> {
    let plane = h * w;
    let mut out = vec![0.0f32; planes * plane];
    for_each_chunk(&mut out, plane, |p, out| {
        let kernel = kernel_of(p % channels);
        stencil(&input[p * plane..(p + 1) * plane], h, w, &kernel, out);
    });
    out
}

/// `out[y, x] += Σ kernel[dy, dx] · input[y + dy − 1, x + dx − 1]`, zero outside the plane.
fn stencil(input: &[f32], h: usize, w: usize, kernel: &[f32; 9], out: &mut [f32]) {
    for y in 0..h {
        let out_row = &mut out[y * w..(y + 1) * w];
        for dy in 0..3 {
            let Some(source) = (y + dy).checked_sub(1).filter(|&s| s < h) else { continue };
            let row = &input[source * w..(source + 1) * w];
            row_taps(out_row, row, kernel[dy * 3], kernel[dy * 3 + 1], kernel[dy * 3 + 2]);
        }
    }
}

/// `out[x] += left · row[x − 1] + centre · row[x] + right · row[x + 1]`, zero beyond the ends.
#[inline]
fn row_taps(out: &mut [f32], row: &[f32], left: f32, centre: f32, right: f32) {
    let w = out.len();
    if w == 1 {
        out[0] += centre * row[0];
        return;
    }
    out[0] += centre * row[0] + right * row[1];
    // Interior: three shifted views of the row, which the compiler turns into vector code.
    let interior = out[1..w - 1].iter_mut().zip(&row[..w - 2]).zip(&row[1..w - 1]).zip(&row[2..]);
    for (((o, &l), &c), &r) in interior {
        *o += left * l + centre * c + right * r;
    }
    out[w - 1] += left * row[w - 2] + centre * row[w - 1];
}
