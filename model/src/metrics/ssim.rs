//! Structural similarity (Wang, Bovik, Sheikh and Simoncelli, "Image quality assessment: from
//! error visibility to structural similarity", IEEE TIP 2004).
//!
//! # Conventions
//!
//! As BasicSR's `calculate_ssim` / `_ssim` (`basicsr/metrics/psnr_ssim.py`), which matches the
//! authors' original MATLAB `ssim_index.m` (no automatic downsampling):
//!
//! - values on the 0–255 scale in `f64`, after `crop_border` and, with `y_channel`, after the
//!   conversion to BT.601 luma (see [`psnr`](super::psnr) for both);
//! - an 11×11 Gaussian window, σ = 1.5, normalised to sum 1 (`cv2.getGaussianKernel(11, 1.5)`
//!   times its transpose);
//! - local statistics by 'valid' filtering: the window never leaves the image, so an image of
//!   `w×h` gives an SSIM map of `(w − 10)×(h − 10)` (BasicSR filters with `cv2.filter2D` and
//!   crops `[5:-5, 5:-5]`, which is the same thing);
//! - population (biased) variances, `σ² = E[x²] − μ²`;
//! - `C1 = (0.01·255)²`, `C2 = (0.03·255)²`;
//! - the SSIM of a channel is the mean of its map; that of an RGB image is the mean of its three
//!   channels' SSIM (with `y_channel`, the SSIM of Y).
//!
//! Note that scikit-image's defaults differ (7×7 uniform window, sample covariance);
//! `structural_similarity(gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
//! data_range=255)` agrees with this one.
//!
//! The implementation filters separably and streams over rows, keeping only 11 filtered rows, so
//! its memory use is proportional to the image width.

use super::psnr::Measured;
use super::{MetricError, MetricOptions};
use crate::image::Image;

/// Side of the Gaussian window, in pixels.
pub const SSIM_WINDOW: usize = 11;
/// Standard deviation of the Gaussian window, in pixels.
pub const SSIM_SIGMA: f64 = 1.5;
/// `C1 = (K1 · 255)²`.
pub const SSIM_K1: f64 = 0.01;
/// `C2 = (K2 · 255)²`.
pub const SSIM_K2: f64 = 0.03;

/// SSIM between two images of the same size, in `[-1, 1]` (1 for identical images), BasicSR's
/// `calculate_ssim` (see the module documentation for the conventions). Symmetric.
///
/// # Errors
/// [`MetricError::SizeMismatch`] when the sizes differ, [`MetricError::CropTooLarge`] when the
/// crop leaves no pixel, [`MetricError::TooSmall`] when less than 11×11 pixels are left.
pub fn ssim(a: &Image, b: &Image, opts: &MetricOptions) -> Result<f64, MetricError> {
    let (a, b) = Measured::pair(a, b, opts)?;
    if a.width < SSIM_WINDOW || a.height < SSIM_WINDOW {
        return Err(MetricError::TooSmall { width: a.width as u32, height: a.height as u32, min: SSIM_WINDOW as u32 });
    }
    let channels = a.channels();
    let total: f64 = (0..channels).map(|c| channel_ssim(&a, &b, c)).sum();
    Ok(total / channels as f64)
}

/// The 1-D Gaussian window, `exp(−x² / 2σ²)` for `x = −5..=5`, normalised to sum 1; the 2-D
/// window is its outer product with itself.
pub fn gaussian_window() -> [f64; SSIM_WINDOW] {
    let half = (SSIM_WINDOW / 2) as f64;
    let mut window = [0.0; SSIM_WINDOW];
    for (i, w) in window.iter_mut().enumerate() {
        let x = i as f64 - half;
        *w = (-x * x / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp();
    }
    let sum: f64 = window.iter().sum();
    window.iter_mut().for_each(|w| *w /= sum);
    window
}

/// Local statistics filtered by the window: `[μa, μb, E[a²], E[b²], E[ab]]`.
type Moments = [f64; 5];

/// Mean SSIM map of channel `c`.
fn channel_ssim(a: &Measured, b: &Measured, c: usize) -> f64 {
    const N: usize = SSIM_WINDOW;
    let c1 = (SSIM_K1 * 255.0).powi(2);
    let c2 = (SSIM_K2 * 255.0).powi(2);
    let window = gaussian_window();
    let (width, height) = (a.width, a.height);
    let (out_width, out_height) = (width - (N - 1), height - (N - 1));

    // The last N input rows, filtered horizontally ('valid'), in a ring indexed by row % N.
    let mut ring: Vec<Moments> = vec![[0.0; 5]; N * out_width];
    let mut row_a = vec![0.0; width];
    let mut row_b = vec![0.0; width];
    let mut sum = 0.0;
    for y in 0..height {
        a.row(y, c, &mut row_a);
        b.row(y, c, &mut row_b);
        let slot = &mut ring[(y % N) * out_width..][..out_width];
        for (x, moments) in slot.iter_mut().enumerate() {
            let mut m = [0.0; 5];
            for (k, w) in window.iter().enumerate() {
                let (p, q) = (row_a[x + k], row_b[x + k]);
                m[0] += w * p;
                m[1] += w * q;
                m[2] += w * (p * p);
                m[3] += w * (q * q);
                m[4] += w * (p * q);
            }
            *moments = m;
        }
        if y + 1 < N {
            continue;
        }
        // Output row `top` needs input rows top..top + N, all in the ring now.
        let top = y + 1 - N;
        let mut row_sum = 0.0;
        for x in 0..out_width {
            let mut m = [0.0; 5];
            for (k, w) in window.iter().enumerate() {
                let s = &ring[((top + k) % N) * out_width + x];
                for j in 0..5 {
                    m[j] += w * s[j];
                }
            }
            let (mu_a, mu_b) = (m[0], m[1]);
            let var_a = m[2] - mu_a * mu_a;
            let var_b = m[3] - mu_b * mu_b;
            let cov = m[4] - mu_a * mu_b;
            row_sum += ((2.0 * mu_a * mu_b + c1) * (2.0 * cov + c2))
                / ((mu_a * mu_a + mu_b * mu_b + c1) * (var_a + var_b + c2));
        }
        sum += row_sum;
    }
    sum / (out_width * out_height) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn random(width: u32, height: u32, seed: u64) -> Image {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Image::from_fn(width, height, |_, _| [rng.random(), rng.random(), rng.random()])
    }

    fn noisy(image: &Image, amplitude: f32, seed: u64) -> Image {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        Image::from_fn(image.width(), image.height(), |x, y| {
            image.pixel(x, y).map(|v| (v + amplitude * (rng.random::<f32>() - 0.5)).clamp(0.0, 1.0))
        })
    }

    fn smooth(width: u32, height: u32) -> Image {
        Image::from_fn(width, height, |x, y| {
            let (fx, fy) = (x as f32 / width as f32, y as f32 / height as f32);
            [fx, 0.5 + 0.4 * (6.0 * fy).sin(), (fx + fy) / 2.0]
        })
    }

    /// Direct 2-D 'valid' filtering, as `cv2.filter2D(..)[5:-5, 5:-5]`, on one plane.
    fn brute_force(a: &[f64], b: &[f64], width: usize, height: usize) -> f64 {
        let w1 = gaussian_window();
        let c1 = (0.01f64 * 255.0).powi(2);
        let c2 = (0.03f64 * 255.0).powi(2);
        let mut sum = 0.0;
        for oy in 0..height - 10 {
            for ox in 0..width - 10 {
                let mut m = [0.0; 5];
                for ky in 0..11 {
                    for kx in 0..11 {
                        let w = w1[ky] * w1[kx];
                        let i = (oy + ky) * width + ox + kx;
                        m[0] += w * a[i];
                        m[1] += w * b[i];
                        m[2] += w * a[i] * a[i];
                        m[3] += w * b[i] * b[i];
                        m[4] += w * a[i] * b[i];
                    }
                }
                let (va, vb, cov) = (m[2] - m[0] * m[0], m[3] - m[1] * m[1], m[4] - m[0] * m[1]);
                sum +=
                    ((2.0 * m[0] * m[1] + c1) * (2.0 * cov + c2)) / ((m[0] * m[0] + m[1] * m[1] + c1) * (va + vb + c2));
            }
        }
        sum / ((width - 10) * (height - 10)) as f64
    }

    #[test]
    fn identical_images_give_one() {
        let image = random(17, 14, 1);
        for opts in
            [MetricOptions::new(), MetricOptions::new().with_y_channel(true), MetricOptions::new().with_crop_border(1)]
        {
            let got = ssim(&image, &image, &opts).unwrap();
            assert!((got - 1.0).abs() < 1e-12, "{opts:?}: {got}");
        }
    }

    #[test]
    fn matches_direct_two_dimensional_filtering() {
        let (a, b) = (random(19, 15, 2), random(19, 15, 3));
        let plane = |image: &Image, c: usize| -> Vec<f64> {
            image.data().chunks_exact(3).map(|p| f64::from(p[c]) * 255.0).collect()
        };
        let expected = (0..3).map(|c| brute_force(&plane(&a, c), &plane(&b, c), 19, 15)).sum::<f64>() / 3.0;
        let got = ssim(&a, &b, &MetricOptions::default()).unwrap();
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn constant_images_give_the_luminance_term() {
        let a = Image::from_fn(12, 12, |_, _| [0.25; 3]);
        let b = Image::from_fn(12, 12, |_, _| [0.5; 3]);
        let (p, q) = (0.25 * 255.0, 0.5 * 255.0);
        let c1 = (0.01f64 * 255.0).powi(2);
        let expected = (2.0 * p * q + c1) / (p * p + q * q + c1);
        let got = ssim(&a, &b, &MetricOptions::default()).unwrap();
        assert!((got - expected).abs() < 1e-9, "{got} vs {expected}");
    }

    #[test]
    fn ssim_is_symmetric_and_falls_with_noise() {
        let clean = smooth(24, 20);
        let light = noisy(&clean, 0.1, 4);
        let heavy = noisy(&clean, 0.6, 5);
        let opts = MetricOptions::default();
        let s_light = ssim(&clean, &light, &opts).unwrap();
        let s_heavy = ssim(&clean, &heavy, &opts).unwrap();
        assert_eq!(s_light, ssim(&light, &clean, &opts).unwrap());
        assert!(s_light < 1.0 && s_heavy < s_light && s_heavy > -1.0, "{s_light} {s_heavy}");
    }

    #[test]
    fn window_is_a_normalised_gaussian() {
        let w = gaussian_window();
        assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-15);
        for i in 0..SSIM_WINDOW {
            assert_eq!(w[i], w[SSIM_WINDOW - 1 - i]);
        }
        assert!((w[5] / w[6] - (1.0f64 / (2.0 * 1.5 * 1.5)).exp()).abs() < 1e-12);
    }

    #[test]
    fn too_small_images_are_refused() {
        let opts = MetricOptions::default();
        let small = Image::zeros(10, 12);
        assert_eq!(ssim(&small, &small, &opts), Err(MetricError::TooSmall { width: 10, height: 12, min: 11 }));
        let exact = Image::zeros(11, 11);
        assert!(ssim(&exact, &exact, &opts).is_ok());
        let cropped = Image::zeros(20, 20);
        assert_eq!(
            ssim(&cropped, &cropped, &opts.with_crop_border(5)),
            Err(MetricError::TooSmall { width: 10, height: 10, min: 11 })
        );
    }

    #[test]
    fn mismatched_sizes_are_refused() {
        let err = ssim(&Image::zeros(12, 12), &Image::zeros(12, 13), &MetricOptions::default());
        assert_eq!(err, Err(MetricError::SizeMismatch { a_width: 12, a_height: 12, b_width: 12, b_height: 13 }));
    }
}
