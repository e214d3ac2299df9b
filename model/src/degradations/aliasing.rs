//! Aliasing: the image shrunk without (nearest) or with a box (area) prefilter, then enlarged
//! back to its exact original size; what a low-resolution capture or a careless resize leaves.
//!
//! Pixel centres sit at `i + 0.5` (PyTorch's `align_corners = false`, OpenCV, PIL), so a
//! resize neither shifts nor crops the image.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::error::{check_range, DegradationError};
use crate::image::Image;

/// How the image is shrunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Downsampling {
    /// Keep the source pixel nearest to each new centre: no prefilter, strongest aliasing.
    #[default]
    Nearest,
    /// Average the source area each new pixel covers (exact fractional box).
    Area,
}

/// How the small image is enlarged back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Upsampling {
    /// Bilinear interpolation (2×2 taps).
    Bilinear,
    /// Bicubic interpolation (4×4 taps, Keys with a = -0.5 as PIL and OpenCV), clamped to `[0, 1]`.
    #[default]
    Bicubic,
}

/// Downscale by `factor`, then upscale back to the original size.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Aliasing {
    /// Scale of the intermediate image (new side = `round(side · factor)`, at least 1 px), in
    /// [`Aliasing::FACTOR_RANGE`].
    pub factor: f32,
    /// Downscaling filter.
    #[serde(default)]
    pub down: Downsampling,
    /// Upscaling filter.
    #[serde(default)]
    pub up: Upsampling,
}

impl Default for Aliasing {
    /// The report's setting: factor 0.3, nearest down, bicubic up.
    fn default() -> Self {
        Self { factor: 0.3, down: Downsampling::Nearest, up: Upsampling::Bicubic }
    }
}

impl Aliasing {
    /// Allowed `factor` (ratio of sides).
    pub const FACTOR_RANGE: RangeInclusive<f32> = 0.25..=0.5;

    /// Checks the parameter against its range.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("aliasing.factor", self.factor, Self::FACTOR_RANGE, "(ratio of sides)")
    }

    /// Size of the intermediate image for an image of `width × height`.
    pub fn small_size(&self, width: u32, height: u32) -> (u32, u32) {
        let scale = |side: u32| ((side as f64 * self.factor as f64).round() as u32).max(1);
        (scale(width), scale(height))
    }

    /// Down then up; the output has exactly the input's size. Deterministic: no randomness.
    pub fn apply(&self, image: &Image) -> Result<Image, DegradationError> {
        self.validate()?;
        let (w, h) = (image.width(), image.height());
        let (sw, sh) = self.small_size(w, h);
        let small = resize(image, sw, sh, |n, m| down_taps(self.down, n, m));
        let big = resize(&small, w, h, |n, m| up_taps(self.up, n, m));
        Ok(big.clamp())
    }
}

/// For each output index, the source indices and weights (summing to 1).
type Taps = Vec<Vec<(u32, f32)>>;

/// Taps to shrink `n` samples to `m <= n`.
fn down_taps(mode: Downsampling, n: u32, m: u32) -> Taps {
    let (n64, m64) = (n as u64, m as u64);
    match mode {
        // Centre of output i is at (i + 0.5) · n / m; integer arithmetic keeps it exact.
        Downsampling::Nearest => {
            (0..m64).map(|i| vec![((((2 * i + 1) * n64) / (2 * m64)).min(n64 - 1) as u32, 1.0)]).collect()
        }
        Downsampling::Area => {
            let scale = n as f64 / m as f64;
            (0..m)
                .map(|i| {
                    let (start, end) = (i as f64 * scale, (i + 1) as f64 * scale);
                    let first = start.floor() as u32;
                    let last = (end.ceil() as u32).min(n);
                    (first..last)
                        .filter_map(|j| {
                            let overlap = end.min(j as f64 + 1.0) - start.max(j as f64);
                            (overlap > 0.0).then_some((j, (overlap / scale) as f32))
                        })
                        .collect()
                })
                .collect()
        }
    }
}

/// Taps to enlarge `n` samples to `m >= n`, with edge samples repeated past the border.
fn up_taps(mode: Upsampling, n: u32, m: u32) -> Taps {
    let scale = n as f64 / m as f64;
    let clamp = |i: i64| i.clamp(0, n as i64 - 1) as u32;
    (0..m)
        .map(|i| {
            let u = (i as f64 + 0.5) * scale - 0.5;
            let i0 = u.floor();
            let f = u - i0;
            let i0 = i0 as i64;
            match mode {
                Upsampling::Bilinear => {
                    vec![(clamp(i0), (1.0 - f) as f32), (clamp(i0 + 1), f as f32)]
                }
                Upsampling::Bicubic => {
                    let weights = [keys(1.0 + f), keys(f), keys(1.0 - f), keys(2.0 - f)];
                    let total: f64 = weights.iter().sum();
                    (0..4).map(|k| (clamp(i0 - 1 + k as i64), (weights[k] / total) as f32)).collect()
                }
            }
        })
        .collect()
}

/// Keys' cubic convolution kernel with `a = -0.5`.
fn keys(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x <= 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

/// Separable resize: rows with `taps(width, new_width)`, then columns.
fn resize(image: &Image, new_w: u32, new_h: u32, taps: impl Fn(u32, u32) -> Taps) -> Image {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (tx, ty) = (taps(w as u32, new_w), taps(h as u32, new_h));
    let (nw, nh) = (new_w as usize, new_h as usize);
    let src = image.data();
    let mut rows = vec![0.0f32; nw * h * 3];
    for y in 0..h {
        for (x, list) in tx.iter().enumerate() {
            let mut acc = [0.0f32; 3];
            for &(sx, weight) in list {
                let i = (y * w + sx as usize) * 3;
                for c in 0..3 {
                    acc[c] += weight * src[i + c];
                }
            }
            rows[(y * nw + x) * 3..(y * nw + x) * 3 + 3].copy_from_slice(&acc);
        }
    }
    let mut out = vec![0.0f32; nw * nh * 3];
    for (y, list) in ty.iter().enumerate() {
        for x in 0..nw {
            let mut acc = [0.0f32; 3];
            for &(sy, weight) in list {
                let i = (sy as usize * nw + x) * 3;
                for c in 0..3 {
                    acc[c] += weight * rows[i + c];
                }
            }
            out[(y * nw + x) * 3..(y * nw + x) * 3 + 3].copy_from_slice(&acc);
        }
    }
    Image::new(new_w, new_h, out).expect("sizes come from a valid image")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_modes() -> Vec<Aliasing> {
        let mut modes = Vec::new();
        for factor in [0.25, 0.3, 0.5] {
            for down in [Downsampling::Nearest, Downsampling::Area] {
                for up in [Upsampling::Bilinear, Upsampling::Bicubic] {
                    modes.push(Aliasing { factor, down, up });
                }
            }
        }
        modes
    }

    #[test]
    fn aliasing_keeps_the_size() {
        for (w, h) in [(64, 48), (33, 7), (1, 1), (3, 100)] {
            let image = Image::from_fn(w, h, |x, y| [(x % 3) as f32 / 2.0, (y % 2) as f32, 0.5]);
            for aliasing in all_modes() {
                let out = aliasing.apply(&image).unwrap();
                assert_eq!((out.width(), out.height()), (w, h));
                assert!(out.data().iter().all(|v| (0.0..=1.0).contains(v)));
            }
        }
    }

    #[test]
    fn a_constant_image_stays_constant() {
        let image = Image::from_fn(50, 37, |_, _| [0.1, 0.6, 0.8]);
        for aliasing in all_modes() {
            let out = aliasing.apply(&image).unwrap();
            for (a, b) in out.data().iter().zip(image.data()) {
                assert!((a - b).abs() < 1e-5, "{aliasing:?}: {a} vs {b}");
            }
        }
    }

    /// Mean squared difference between horizontal and vertical neighbours.
    fn high_frequency_energy(image: &Image) -> f64 {
        let (w, h) = (image.width(), image.height());
        let mut sum = 0.0;
        for y in 0..h - 1 {
            for x in 0..w - 1 {
                let (p, r, d) = (image.pixel(x, y), image.pixel(x + 1, y), image.pixel(x, y + 1));
                for c in 0..3 {
                    sum += ((p[c] - r[c]) as f64).powi(2) + ((p[c] - d[c]) as f64).powi(2);
                }
            }
        }
        sum / ((w - 1) * (h - 1) * 3) as f64
    }

    #[test]
    fn a_checkerboard_loses_its_high_frequencies() {
        let board = Image::from_fn(64, 64, |x, y| [((x + y) % 2) as f32; 3]);
        let before = high_frequency_energy(&board);
        for aliasing in all_modes() {
            let after = high_frequency_energy(&aliasing.apply(&board).unwrap());
            assert!(after < 0.25 * before, "{aliasing:?}: {after} vs {before}");
        }
    }

    #[test]
    fn a_smooth_image_survives_roughly() {
        // Low frequencies pass: a gentle ramp comes back close to itself.
        let ramp = Image::from_fn(64, 64, |x, y| [x as f32 / 63.0, y as f32 / 63.0, 0.5]);
        for aliasing in all_modes() {
            let out = aliasing.apply(&ramp).unwrap();
            let mse: f64 = out.data().iter().zip(ramp.data()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>()
                / ramp.data().len() as f64;
            assert!(mse < 1e-3, "{aliasing:?}: mse {mse}");
        }
    }

    #[test]
    fn resampling_taps_sum_to_one() {
        for (n, m) in [(64, 16), (64, 19), (7, 2), (5, 1)] {
            for mode in [Downsampling::Nearest, Downsampling::Area] {
                for list in down_taps(mode, n, m) {
                    let total: f32 = list.iter().map(|t| t.1).sum();
                    assert!((total - 1.0).abs() < 1e-5 && list.iter().all(|t| t.0 < n));
                }
            }
            for mode in [Upsampling::Bilinear, Upsampling::Bicubic] {
                for list in up_taps(mode, m, n) {
                    let total: f32 = list.iter().map(|t| t.1).sum();
                    assert!((total - 1.0).abs() < 1e-5 && list.iter().all(|t| t.0 < m));
                }
            }
        }
    }

    #[test]
    fn out_of_range_factor_is_refused() {
        for factor in [0.2, 0.6, f32::NAN] {
            let err = Aliasing { factor, ..Aliasing::default() }.apply(&Image::zeros(8, 8)).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "aliasing.factor", .. }));
        }
    }
}
