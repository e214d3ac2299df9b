//! Noise: additive Gaussian, Poisson (shot) and salt-and-pepper, each channel of each pixel
//! drawn independently except salt-and-pepper, which hits whole pixels.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::error::{check_range, DegradationError};
use super::math::{below, poisson, seeded, Normals};
use crate::image::Image;

/// Additive white Gaussian noise, the denoising benchmark's degradation (BasicSR `add_gaussian_noise`).
///
/// `out = clamp(x + sigma / 255 · N(0, 1), 0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianNoise {
    /// Standard deviation in 8-bit units (`/255`, as papers quote it: 15, 25, 50), in
    /// [`GaussianNoise::SIGMA_RANGE`].
    pub sigma: f32,
}

impl GaussianNoise {
    /// Allowed `sigma`, in `/255` units.
    pub const SIGMA_RANGE: RangeInclusive<f32> = 5.0..=50.0;

    /// Checks the parameter against its range.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("gaussian_noise.sigma", self.sigma, Self::SIGMA_RANGE, "/255")
    }

    /// Adds the noise; the same seed gives the same bytes on every platform.
    pub fn apply(&self, image: &Image, seed: u64) -> Result<Image, DegradationError> {
        self.validate()?;
        let mut rng = seeded(seed);
        let mut normals = Normals::new();
        let sigma = self.sigma as f64 / 255.0;
        let mut out = image.clone();
        for v in out.data_mut() {
            *v = (*v as f64 + sigma * normals.next(&mut rng)).clamp(0.0, 1.0) as f32;
        }
        Ok(out)
    }
}

/// Poisson (shot) noise of a sensor that counts `peak` photons at white.
///
/// `out = clamp(Poisson(x · peak) / peak, 0, 1)`: the variance is `x / peak`, so dark regions
/// are relatively noisier, as in low light.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoissonNoise {
    /// Photon count at white (dimensionless), in [`PoissonNoise::PEAK_RANGE`]; smaller is noisier.
    pub peak: f32,
}

impl PoissonNoise {
    /// Allowed `peak`, in photons.
    pub const PEAK_RANGE: RangeInclusive<f32> = 10.0..=100.0;

    /// Checks the parameter against its range.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("poisson_noise.peak", self.peak, Self::PEAK_RANGE, "photons")
    }

    /// Draws the noisy image; values are clamped to `[0, 1]` before and after.
    pub fn apply(&self, image: &Image, seed: u64) -> Result<Image, DegradationError> {
        self.validate()?;
        let mut rng = seeded(seed);
        let peak = self.peak as f64;
        let mut out = image.clone();
        for v in out.data_mut() {
            let lambda = (*v as f64).clamp(0.0, 1.0) * peak;
            *v = (poisson(&mut rng, lambda) as f64 / peak).clamp(0.0, 1.0) as f32;
        }
        Ok(out)
    }
}

/// Salt-and-pepper (impulse) noise: a fixed fraction of pixels set to white or black, all three
/// channels together (dead and hot pixels, dust).
///
/// Exactly `round(ratio · width · height)` distinct pixels are hit, half of them (rounded down)
/// salt (white) and the rest pepper (black).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SaltAndPepper {
    /// Fraction of pixels hit, in [`SaltAndPepper::RATIO_RANGE`].
    pub ratio: f32,
}

impl SaltAndPepper {
    /// Allowed `ratio` (fraction of pixels).
    pub const RATIO_RANGE: RangeInclusive<f32> = 0.01..=0.10;

    /// Checks the parameter against its range.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("salt_and_pepper.ratio", self.ratio, Self::RATIO_RANGE, "(fraction of pixels)")
    }

    /// Sets the chosen pixels to 0 or 1.
    pub fn apply(&self, image: &Image, seed: u64) -> Result<Image, DegradationError> {
        self.validate()?;
        let mut rng = seeded(seed);
        let n = image.width() * image.height();
        let hits = ((self.ratio as f64 * n as f64).round() as u32).min(n);
        // Partial Fisher–Yates: the first `hits` entries become a uniform random subset.
        let mut order: Vec<u32> = (0..n).collect();
        for i in 0..hits {
            let j = i + below(&mut rng, n - i);
            order.swap(i as usize, j as usize);
        }
        let mut out = image.clone();
        let data = out.data_mut();
        for (k, &pixel) in order[..hits as usize].iter().enumerate() {
            let value = if (k as u32) < hits / 2 { 1.0 } else { 0.0 };
            let i = pixel as usize * 3;
            data[i..i + 3].fill(value);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grey(side: u32, value: f32) -> Image {
        Image::from_fn(side, side, |_, _| [value; 3])
    }

    fn mean_var(values: impl Iterator<Item = f32>) -> (f64, f64) {
        let values: Vec<f64> = values.map(|v| v as f64).collect();
        let n = values.len() as f64;
        let mean = values.iter().sum::<f64>() / n;
        let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0);
        (mean, var)
    }

    #[test]
    fn gaussian_noise_has_the_requested_sigma() {
        // Mid-grey: at sigma 25/255 clipping sits 5 sigma away and does not bias the estimate.
        for (sigma, seed) in [(5.0, 1), (15.0, 2), (25.0, 3)] {
            let noisy = GaussianNoise { sigma }.apply(&grey(128, 0.5), seed).unwrap();
            let (mean, var) = mean_var(noisy.data().iter().copied());
            let measured = var.sqrt() * 255.0;
            assert!((measured / sigma as f64 - 1.0).abs() < 0.05, "sigma {sigma}: measured {measured}");
            assert!((mean - 0.5).abs() < 0.01, "mean {mean}");
        }
    }

    #[test]
    fn gaussian_noise_is_clipped_to_unit_range() {
        let noisy = GaussianNoise { sigma: 50.0 }.apply(&grey(64, 0.95), 4).unwrap();
        assert!(noisy.data().iter().all(|v| (0.0..=1.0).contains(v)));
        assert!(noisy.data().contains(&1.0));
    }

    #[test]
    fn poisson_noise_variance_is_x_over_peak() {
        // x = 0.3 keeps Poisson(x · peak) / peak well below 1, so clipping does not bias it.
        for (peak, seed) in [(10.0, 1), (40.0, 2), (100.0, 3)] {
            let noisy = PoissonNoise { peak }.apply(&grey(128, 0.3), seed).unwrap();
            let (mean, var) = mean_var(noisy.data().iter().copied());
            let expected = 0.3 / peak as f64;
            assert!((var / expected - 1.0).abs() < 0.05, "peak {peak}: var {var} vs {expected}");
            assert!((mean - 0.3).abs() < 0.01, "mean {mean}");
        }
    }

    #[test]
    fn poisson_noise_keeps_black_black() {
        let noisy = PoissonNoise { peak: 10.0 }.apply(&grey(16, 0.0), 1).unwrap();
        assert!(noisy.data().iter().all(|&v| v == 0.0));
    }

    #[test]
    fn salt_and_pepper_hits_the_requested_fraction_of_whole_pixels() {
        for (ratio, seed) in [(0.01, 1), (0.05, 2), (0.10, 3)] {
            let image = grey(128, 0.5);
            let noisy = SaltAndPepper { ratio }.apply(&image, seed).unwrap();
            let (mut salt, mut pepper) = (0usize, 0usize);
            for px in noisy.data().chunks_exact(3) {
                match px {
                    [1.0, 1.0, 1.0] => salt += 1,
                    [0.0, 0.0, 0.0] => pepper += 1,
                    [a, b, c] => assert!(*a == 0.5 && *b == 0.5 && *c == 0.5, "mixed pixel {px:?}"),
                    _ => unreachable!(),
                }
            }
            let measured = (salt + pepper) as f64 / (128.0 * 128.0);
            assert!((measured / ratio as f64 - 1.0).abs() < 0.10, "ratio {ratio}: {measured}");
            assert!(salt.abs_diff(pepper) <= 1, "salt {salt} pepper {pepper}");
        }
    }

    #[test]
    fn noise_is_deterministic_per_seed() {
        let image = Image::from_fn(32, 32, |x, y| [x as f32 / 31.0, y as f32 / 31.0, 0.5]);
        let gaussian = GaussianNoise { sigma: 25.0 };
        let poisson = PoissonNoise { peak: 30.0 };
        let impulse = SaltAndPepper { ratio: 0.05 };
        let runs: [&dyn Fn(u64) -> Image; 3] =
            [&|s| gaussian.apply(&image, s).unwrap(), &|s| poisson.apply(&image, s).unwrap(), &|s| {
                impulse.apply(&image, s).unwrap()
            }];
        for run in runs {
            assert_eq!(run(7).data(), run(7).data());
            assert_ne!(run(7).data(), run(8).data());
        }
    }

    #[test]
    fn out_of_range_noise_parameters_are_refused() {
        let image = grey(8, 0.5);
        for sigma in [4.9, 50.1, f32::NAN] {
            let err = GaussianNoise { sigma }.apply(&image, 0).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "gaussian_noise.sigma", .. }));
        }
        for peak in [9.0, 101.0] {
            let err = PoissonNoise { peak }.apply(&image, 0).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "poisson_noise.peak", .. }));
        }
        for ratio in [0.0, 0.2, -0.05] {
            let err = SaltAndPepper { ratio }.apply(&image, 0).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "salt_and_pepper.ratio", .. }));
        }
    }
}
