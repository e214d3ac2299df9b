//! Full 3×3 convolution (zero padding 1, no bias) and its gradients as matrix products.
//!
//! For one image and a band of rows, im2col lays the 3×3 neighbourhood of every pixel out as a
//! column: `col` is `[9C, n]` with row `c·9 + dy·3 + dx`, matching the weight `[O, C, 3, 3]` read
//! as `[O, 9C]`. Then
//! - forward: `out[:, band] = W · col`;
//! - input gradient: `dcol = Wᵀ · grad[:, band]`, then col2im adds each entry back to the pixel
//!   it was copied from;
//! - weight gradient: `dW += grad[:, band] · colᵀ`, over every band of every image.
//!
//! Bands bound the scratch memory (about [`BAND_ELEMENTS`] floats) whatever the image size.

use super::{for_each_chunk, gemm};

/// Scratch size of one band's columns, in floats (16 MiB).
pub(super) const BAND_ELEMENTS: usize = 1 << 22;

/// Sizes of one convolution.
pub(super) struct Geometry {
    pub batch: usize,
    pub channels: usize,
    pub out_channels: usize,
    pub height: usize,
    pub width: usize,
    /// Scratch size of one band (normally [`BAND_ELEMENTS`]).
    pub band_elements: usize,
}

impl Geometry {
    fn plane(&self) -> usize {
        self.height * self.width
    }

    /// Rows of the im2col matrix.
    fn taps(&self) -> usize {
        9 * self.channels
    }

    /// The bands of rows, `(first, end)`, each at most `band_elements` floats of columns.
    fn bands(&self) -> impl Iterator<Item = (usize, usize)> {
        let rows = (self.band_elements / (self.taps() * self.width).max(1)).clamp(1, self.height.max(1));
        let height = self.height;
        (0..height).step_by(rows).map(move |first| (first, (first + rows).min(height)))
    }
}

pub(super) fn forward(g: &Geometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    let (plane, taps) = (g.plane(), g.taps());
    let mut out = vec![0.0f32; g.batch * g.out_channels * plane];
    if plane == 0 {
        return out;
    }
    let mut col = Vec::new();
    for b in 0..g.batch {
        let image = &x[b * g.channels * plane..(b + 1) * g.channels * plane];
        for (first, end) in g.bands() {
            let n = (end - first) * g.width;
            im2col(g, image, first, end, &mut col);
            let out_band = &mut out[b * g.out_channels * plane + first * g.width..];
            // SAFETY: A is the [O, 9C] weight, B the [9C, n] columns, C the band of the image's
            // [O, H·W] output (row stride H·W); all lie inside their buffers.
            unsafe {
                gemm(
                    g.out_channels,
                    taps,
                    n,
                    weight.as_ptr(),
                    [taps, 1],
                    col.as_ptr(),
                    [n, 1],
                    0.0,
                    out_band,
                    [plane, 1],
                );
            }
        }
    }
    out
}

pub(super) fn input_grad(g: &Geometry, grad: &[f32], weight: &[f32]) -> Vec<f32> {
    let (plane, taps) = (g.plane(), g.taps());
    let mut out = vec![0.0f32; g.batch * g.channels * plane];
    if plane == 0 {
        return out;
    }
    let mut col = Vec::new();
    for b in 0..g.batch {
        let grad_image = &grad[b * g.out_channels * plane..];
        let out_image = &mut out[b * g.channels * plane..(b + 1) * g.channels * plane];
        for (first, end) in g.bands() {
            let n = (end - first) * g.width;
            col.clear();
            col.resize(taps * n, 0.0);
            // SAFETY: A is Wᵀ (the [O, 9C] weight read column-wise), B the band of the image's
            // [O, H·W] gradient, C the [9C, n] columns.
            unsafe {
                gemm(
                    taps,
                    g.out_channels,
                    n,
                    weight.as_ptr(),
                    [1, taps],
                    grad_image[first * g.width..].as_ptr(),
                    [plane, 1],
                    0.0,
                    &mut col,
                    [n, 1],
                );
            }
            col2im(g, &col, first, end, out_image);
        }
    }
    out
}

pub(super) fn weight_grad(g: &Geometry, x: &[f32], grad: &[f32]) -> Vec<f32> {
    let (plane, taps) = (g.plane(), g.taps());
    let mut out = vec![0.0f32; g.out_channels * taps];
    if plane == 0 {
        return out;
    }
    let mut col = Vec::new();
    for b in 0..g.batch {
        let image = &x[b * g.channels * plane..(b + 1) * g.channels * plane];
        let grad_image = &grad[b * g.out_channels * plane..];
        for (first, end) in g.bands() {
            let n = (end - first) * g.width;
            im2col(g, image, first, end, &mut col);
            // SAFETY: A is the band of the [O, H·W] gradient, B colᵀ (the [9C, n] columns read
            // column-wise), C the [O, 9C] weight gradient, accumulated (β = 1).
            unsafe {
                gemm(
                    g.out_channels,
                    n,
                    taps,
                    grad_image[first * g.width..].as_ptr(),
                    [plane, 1],
                    col.as_ptr(),
                    [1, n],
                    1.0,
                    &mut out,
                    [taps, 1],
                );
            }
        }
    }
    out
}

/// Fills `col` (`[9C, n]`) with the 3×3 neighbourhoods of rows `first..end` of one image.
fn im2col(g: &Geometry, image: &[f32], first: usize, end: usize, col: &mut Vec<f32>) {
    let (w, plane) = (g.width, g.plane());
    let n = (end - first) * w;
    col.clear();
    col.resize(g.taps() * n, 0.0);
    for_each_chunk(col, 9 * n, |c, rows| {
        let channel = &image[c * plane..(c + 1) * plane];
        for (tap, dest) in rows.chunks_exact_mut(n).enumerate() {
            let (dy, dx) = (tap / 3, tap % 3);
            for y in first..end {
                let Some(source) = (y + dy).checked_sub(1).filter(|&s| s < g.height) else { continue };
                let row = &channel[source * w..(source + 1) * w];
                let dest = &mut dest[(y - first) * w..(y - first + 1) * w];
                // The zero-filled buffer already holds the padding.
                match dx {
                    0 => dest[1..].copy_from_slice(&row[..w - 1]),
                    1 => dest.copy_from_slice(row),
                    _ => dest[..w - 1].copy_from_slice(&row[1..]),
                }
            }
        }
    });
}

/// Adds every entry of `col` (`[9C, n]`, rows `first..end`) to the pixel im2col copied it from.
fn col2im(g: &Geometry, col: &[f32], first: usize, end: usize, image: &mut [f32]) {
    let (w, plane) = (g.width, g.plane());
    let n = (end - first) * w;
    for_each_chunk(image, plane, |c, channel| {
        for (tap, source) in col[c * 9 * n..(c + 1) * 9 * n].chunks_exact(n).enumerate() {
            let (dy, dx) = (tap / 3, tap % 3);
            for y in first..end {
                let Some(target) = (y + dy).checked_sub(1).filter(|&s| s < g.height) else { continue };
                let row = &mut channel[target * w..(target + 1) * w];
                let source = &source[(y - first) * w..(y - first + 1) * w];
                let (row, source) = match dx {
                    0 => (&mut row[..w - 1], &source[1..]),
                    1 => (&mut row[..], source),
                    _ => (&mut row[1..], &source[..w - 1]),
                };
                for (r, s) in row.iter_mut().zip(source) {
                    *r += s;
                }
            }
        }
    });
}
