//! Blur: Gaussian (defocus-like) and motion (camera shake) kernels, and the convolution that
//! applies them with a reflected border.
//!
//! Kernels are square, of odd size, centred on their middle tap and normalised to sum 1, so
//! blurring keeps the mean brightness and a constant image stays constant.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::error::{check_range, DegradationError};
use super::math::{exp, seeded, sin_cos, uniform, Normals};
use crate::image::Image;

/// A square blur kernel of odd size, row-major, weights summing to 1.
#[derive(Debug, Clone, PartialEq)]
pub struct Kernel {
    size: u32,
    weights: Vec<f32>,
}

impl Kernel {
    /// Side in taps (odd).
    pub fn size(&self) -> u32 {
        self.size
    }
    /// Taps from the centre to an edge: `(size - 1) / 2`.
    pub fn radius(&self) -> u32 {
        self.size / 2
    }
    /// Row-major weights, `size · size` of them.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }
    /// Weight at column `x`, row `y` (`(radius, radius)` is the centre).
    pub fn at(&self, x: u32, y: u32) -> f32 {
        self.weights[(y * self.size + x) as usize]
    }
    /// Sum of the weights (1 up to rounding).
    pub fn sum(&self) -> f32 {
        self.weights.iter().map(|&w| w as f64).sum::<f64>() as f32
    }

    /// Normalises accumulated `f64` weights into a kernel.
    fn from_accumulated(size: u32, weights: Vec<f64>) -> Self {
        let total: f64 = weights.iter().sum();
        Self { size, weights: weights.iter().map(|w| (w / total) as f32).collect() }
    }
}

/// Gaussian blur (out-of-focus lens, soft optics).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GaussianBlur {
    /// Standard deviation of the kernel in pixels, in [`GaussianBlur::SIGMA_RANGE`].
    pub sigma: f32,
}

impl GaussianBlur {
    /// Allowed `sigma`, in pixels.
    pub const SIGMA_RANGE: RangeInclusive<f32> = 0.5..=3.0;

    /// Checks the parameter against its range.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("gaussian_blur.sigma", self.sigma, Self::SIGMA_RANGE, "px")
    }

    /// The normalised 1-D kernel, `2 · ceil(3 sigma) + 1` taps; the 2-D kernel is its outer
    /// product, and blurring uses it separably.
    pub fn kernel_1d(&self) -> Result<Vec<f32>, DegradationError> {
        self.validate()?;
        let sigma = self.sigma as f64;
        let radius = (3.0 * sigma).ceil() as i32;
        let weights: Vec<f64> = (-radius..=radius).map(|i| exp(-((i * i) as f64) / (2.0 * sigma * sigma))).collect();
        let total: f64 = weights.iter().sum();
        Ok(weights.iter().map(|w| (w / total) as f32).collect())
    }

    /// The 2-D kernel (for inspection and tests).
    pub fn kernel(&self) -> Result<Kernel, DegradationError> {
        let k1 = self.kernel_1d()?;
        let size = k1.len() as u32;
        let weights = k1.iter().flat_map(|&a| k1.iter().map(move |&b| a as f64 * b as f64)).collect();
        Ok(Kernel::from_accumulated(size, weights))
    }

    /// Blurs the image (reflected border). Deterministic: no randomness is involved.
    pub fn apply(&self, image: &Image) -> Result<Image, DegradationError> {
        let k1 = self.kernel_1d()?;
        Ok(convolve_separable(image, &k1))
    }
}

/// Shape of a motion-blur kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MotionKernel {
    /// A straight, anti-aliased line: uniform linear motion during the exposure.
    Line,
    /// A smooth random trajectory of the same path length (camera shake, after Boracchi and
    /// Foi, simplified: a walk whose turning rate itself drifts smoothly).
    Trajectory,
}

/// Motion blur: the image integrated along a path of `length` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MotionBlur {
    /// Path length in pixels, in [`MotionBlur::LENGTH_RANGE`].
    pub length: f32,
    /// Direction in degrees (0 = along +x, 90 = along +y, image rows go down), in
    /// [`MotionBlur::ANGLE_RANGE`]; for a trajectory, its starting direction. `None` draws it
    /// from the seed.
    #[serde(default)]
    pub angle: Option<f32>,
    /// Line or random trajectory.
    pub kernel: MotionKernel,
}

impl MotionBlur {
    /// Allowed `length`, in pixels.
    pub const LENGTH_RANGE: RangeInclusive<f32> = 5.0..=25.0;
    /// Allowed `angle`, in degrees.
    pub const ANGLE_RANGE: RangeInclusive<f32> = 0.0..=360.0;

    /// Checks the parameters against their ranges.
    pub fn validate(&self) -> Result<(), DegradationError> {
        check_range("motion_blur.length", self.length, Self::LENGTH_RANGE, "px")?;
        if let Some(angle) = self.angle {
            check_range("motion_blur.angle", angle, Self::ANGLE_RANGE, "degrees")?;
        }
        Ok(())
    }

    /// The kernel this seed gives: the angle (if not fixed) and the trajectory are drawn from it.
    /// The path is centred on the kernel's middle (by its centroid) so blurring does not shift
    /// the image.
    pub fn kernel(&self, seed: u64) -> Result<Kernel, DegradationError> {
        self.validate()?;
        let mut rng = seeded(seed);
        let length = self.length as f64;
        let angle = match self.angle {
            Some(degrees) => (degrees as f64).to_radians(),
            None => std::f64::consts::TAU * uniform(&mut rng),
        };
        // Sub-pixel steps: 8 samples per pixel of path, each weighted equally.
        let steps = (8.0 * length).ceil() as usize;
        let step = length / steps as f64;
        let mut points = Vec::with_capacity(steps);
        match self.kernel {
            MotionKernel::Line => {
                let (sin, cos) = sin_cos(angle);
                for i in 0..steps {
                    let t = (i as f64 + 0.5) * step - 0.5 * length;
                    points.push((t * cos, t * sin));
                }
            }
            MotionKernel::Trajectory => {
                let mut normals = Normals::new();
                // The turning rate is an AR(1) process whose correlation spans a third of the
                // path, so the curve's shape does not depend on its length or on the sampling;
                // `TRAJECTORY_DRIVE` sets how much it bends.
                let memory = 1.0 - 3.0 / steps as f64;
                let drive = TRAJECTORY_DRIVE / (steps as f64 * (steps as f64).sqrt());
                let (mut x, mut y, mut direction, mut turn) = (0.0, 0.0, angle, 0.0);
                for _ in 0..steps {
                    turn = memory * turn + drive * normals.next(&mut rng);
                    direction += turn;
                    let (sin, cos) = sin_cos(direction);
                    // The sample sits in the middle of its step.
                    points.push((x + 0.5 * step * cos, y + 0.5 * step * sin));
                    x += step * cos;
                    y += step * sin;
                }
            }
        }
        Ok(splat(&points))
    }

    /// Blurs the image with [`MotionBlur::kernel`] (reflected border).
    pub fn apply(&self, image: &Image, seed: u64) -> Result<Image, DegradationError> {
        let kernel = self.kernel(seed)?;
        Ok(convolve(image, &kernel))
    }
}

/// Scale of the trajectory's turning-rate noise (see [`MotionBlur::kernel`]).
const TRAJECTORY_DRIVE: f64 = 6.0;

/// Rasterises equally weighted path samples into a kernel by bilinear splatting (anti-aliased),
/// after moving their centroid to the kernel's centre.
fn splat(points: &[(f64, f64)]) -> Kernel {
    let n = points.len() as f64;
    let cx = points.iter().map(|p| p.0).sum::<f64>() / n;
    let cy = points.iter().map(|p| p.1).sum::<f64>() / n;
    let reach = points.iter().fold(0.0f64, |m, p| m.max((p.0 - cx).abs()).max((p.1 - cy).abs()));
    let radius = reach.ceil() as i64 + 1;
    let size = (2 * radius + 1) as usize;
    let mut weights = vec![0.0f64; size * size];
    for &(px, py) in points {
        let (x, y) = (px - cx + radius as f64, py - cy + radius as f64);
        let (x0, y0) = (x.floor(), y.floor());
        let (fx, fy) = (x - x0, y - y0);
        let (x0, y0) = (x0 as usize, y0 as usize);
        weights[y0 * size + x0] += (1.0 - fx) * (1.0 - fy);
        weights[y0 * size + x0 + 1] += fx * (1.0 - fy);
        weights[(y0 + 1) * size + x0] += (1.0 - fx) * fy;
        weights[(y0 + 1) * size + x0 + 1] += fx * fy;
    }
    Kernel::from_accumulated(size as u32, weights)
}

/// Index `i` reflected into `0..n` without repeating the edge (`… 2 1 | 0 1 2 … n-1 | n-2 …`),
/// as NumPy's and PyTorch's `reflect`; periodic, so any offset is valid.
pub(crate) fn reflect(i: i64, n: u32) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// 2-D convolution `out(p) = Σ_u k(u) · in(p - u)` with a reflected border; output clamped to
/// `[0, 1]`. Zero taps are skipped (motion kernels are mostly zero).
pub fn convolve(image: &Image, kernel: &Kernel) -> Image {
    let (w, h) = (image.width(), image.height());
    let r = kernel.radius() as i64;
    let taps: Vec<(i64, i64, f32)> = (0..kernel.size())
        .flat_map(|ky| (0..kernel.size()).map(move |kx| (kx, ky)))
        .filter_map(|(kx, ky)| {
            let weight = kernel.at(kx, ky);
            // Convolution flips the kernel: tap (kx, ky) reads the pixel at p - (k - r).
            (weight != 0.0).then_some((r - kx as i64, r - ky as i64, weight))
        })
        .collect();
    let src = image.data();
    let mut out = Image::zeros(w, h);
    let dst = out.data_mut();
    for y in 0..h as i64 {
        for x in 0..w as i64 {
            let mut acc = [0.0f32; 3];
            for &(dx, dy, weight) in &taps {
                let i = (reflect(y + dy, h) * w as usize + reflect(x + dx, w)) * 3;
                acc[0] += weight * src[i];
                acc[1] += weight * src[i + 1];
                acc[2] += weight * src[i + 2];
            }
            let o = (y as usize * w as usize + x as usize) * 3;
            for c in 0..3 {
                dst[o + c] = acc[c].clamp(0.0, 1.0);
            }
        }
    }
    out
}

/// Separable convolution with the same symmetric 1-D kernel along rows then columns (reflected
/// border, output clamped to `[0, 1]`).
pub fn convolve_separable(image: &Image, kernel: &[f32]) -> Image {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let r = (kernel.len() / 2) as i64;
    let pass = |src: &[f32], along_x: bool| -> Vec<f32> {
        let mut dst = vec![0.0f32; src.len()];
        for y in 0..h {
            for x in 0..w {
                let mut acc = [0.0f32; 3];
                for (k, &weight) in kernel.iter().enumerate() {
                    let offset = k as i64 - r;
                    let (sx, sy) = if along_x {
                        (reflect(x as i64 - offset, w as u32), y)
                    } else {
                        (x, reflect(y as i64 - offset, h as u32))
                    };
                    let i = (sy * w + sx) * 3;
                    acc[0] += weight * src[i];
                    acc[1] += weight * src[i + 1];
                    acc[2] += weight * src[i + 2];
                }
                dst[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&acc);
            }
        }
        dst
    };
    let rows = pass(image.data(), true);
    let mut out = pass(&rows, false);
    out.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
    Image::new(w as u32, h as u32, out).expect("same size as the input")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_kernels() -> Vec<Kernel> {
        let mut kernels = Vec::new();
        for sigma in [0.5, 1.0, 1.7, 3.0] {
            kernels.push(GaussianBlur { sigma }.kernel().unwrap());
        }
        for (i, length) in [5.0, 9.5, 17.0, 25.0].into_iter().enumerate() {
            for kind in [MotionKernel::Line, MotionKernel::Trajectory] {
                for angle in [None, Some(0.0), Some(33.0), Some(90.0), Some(225.0)] {
                    let blur = MotionBlur { length, angle, kernel: kind };
                    kernels.push(blur.kernel(i as u64).unwrap());
                }
            }
        }
        kernels
    }

    #[test]
    fn every_kernel_is_odd_and_sums_to_one() {
        for kernel in all_kernels() {
            assert_eq!(kernel.size() % 2, 1);
            assert_eq!(kernel.weights().len(), (kernel.size() * kernel.size()) as usize);
            assert!((kernel.sum() - 1.0).abs() < 1e-5, "sum {}", kernel.sum());
            assert!(kernel.weights().iter().all(|&w| w >= 0.0));
        }
    }

    #[test]
    fn gaussian_kernel_is_symmetric_with_the_expected_size_and_sigma() {
        for sigma in [0.5f32, 1.2, 3.0] {
            let kernel = GaussianBlur { sigma }.kernel().unwrap();
            let n = kernel.size();
            assert_eq!(n, 2 * (3.0 * sigma).ceil() as u32 + 1);
            for y in 0..n {
                for x in 0..n {
                    let w = kernel.at(x, y);
                    assert!((w - kernel.at(n - 1 - x, y)).abs() < 1e-7);
                    assert!((w - kernel.at(x, n - 1 - y)).abs() < 1e-7);
                    assert!((w - kernel.at(y, x)).abs() < 1e-7);
                }
            }
            // Second moment along x gives sigma back (truncation at 3 sigma loses ~1 %). Below
            // sigma 1 sampling the Gaussian at integer taps narrows it (0.46 for 0.5), as in
            // OpenCV and BasicSR, hence the looser bound there.
            let r = kernel.radius() as f64;
            let var: f64 = (0..n)
                .flat_map(|y| (0..n).map(move |x| (x, y)))
                .map(|(x, y)| kernel.at(x, y) as f64 * (x as f64 - r).powi(2))
                .sum();
            let tolerance = if sigma < 1.0 { 0.1 } else { 0.05 };
            let measured = var.sqrt();
            assert!((measured / sigma as f64 - 1.0).abs() < tolerance, "sigma {sigma}: {measured}");
        }
    }

    /// Centroid, variance along `angle` and across it.
    fn moments(kernel: &Kernel, angle_degrees: f64) -> ((f64, f64), f64, f64) {
        let (sin, cos) = (angle_degrees.to_radians().sin(), angle_degrees.to_radians().cos());
        let n = kernel.size();
        let taps: Vec<(f64, f64, f64)> = (0..n)
            .flat_map(|y| (0..n).map(move |x| (x, y)))
            .map(|(x, y)| (x as f64, y as f64, kernel.at(x, y) as f64))
            .collect();
        let cx: f64 = taps.iter().map(|t| t.0 * t.2).sum();
        let cy: f64 = taps.iter().map(|t| t.1 * t.2).sum();
        let along = taps.iter().map(|t| t.2 * ((t.0 - cx) * cos + (t.1 - cy) * sin).powi(2)).sum();
        let across = taps.iter().map(|t| t.2 * (-(t.0 - cx) * sin + (t.1 - cy) * cos).powi(2)).sum();
        ((cx, cy), along, across)
    }

    #[test]
    fn motion_line_kernel_has_the_requested_length_and_direction() {
        for length in [5.0f32, 12.5, 25.0] {
            for angle in [0.0f32, 30.0, 45.0, 90.0, 160.0, 300.0] {
                let blur = MotionBlur { length, angle: Some(angle), kernel: MotionKernel::Line };
                let kernel = blur.kernel(0).unwrap();
                let ((cx, cy), along, across) = moments(&kernel, angle as f64);
                // A uniform segment of length L has variance L² / 12 along it.
                let measured = (12.0 * along).sqrt();
                assert!((measured / length as f64 - 1.0).abs() < 0.05, "L {length} θ {angle}: {measured}");
                assert!(across < 0.25, "L {length} θ {angle}: across {across}");
                let r = kernel.radius() as f64;
                assert!((cx - r).abs() < 1e-4 && (cy - r).abs() < 1e-4, "centred");
                // Half the length, rounded up, plus one tap for the splat, each side of the centre.
                assert!(kernel.size() as f32 <= length + 5.0);
            }
        }
    }

    #[test]
    fn motion_trajectory_kernel_is_centred_curved_and_no_longer_than_its_path() {
        let mut curved = 0;
        for seed in 0..20 {
            let blur = MotionBlur { length: 20.0, angle: Some(0.0), kernel: MotionKernel::Trajectory };
            let kernel = blur.kernel(seed).unwrap();
            let r = kernel.radius() as f64;
            let ((cx, cy), along, across) = moments(&kernel, 0.0);
            assert!((cx - r).abs() < 1e-4 && (cy - r).abs() < 1e-4);
            // The path is 20 px long, so no point is farther than 20 px from the centroid.
            assert!(kernel.radius() <= 21);
            // Its spread cannot exceed that of a straight segment of the same length (+ splat).
            assert!(along + across <= 20.0f64.powi(2) / 12.0 + 0.5);
            if across > 0.5 {
                curved += 1;
            }
        }
        assert!(curved >= 5, "trajectories should usually bend: {curved}/20");
    }

    #[test]
    fn motion_kernel_is_deterministic_per_seed() {
        for kernel in [MotionKernel::Line, MotionKernel::Trajectory] {
            let blur = MotionBlur { length: 15.0, angle: None, kernel };
            assert_eq!(blur.kernel(3).unwrap(), blur.kernel(3).unwrap());
            assert_ne!(blur.kernel(3).unwrap(), blur.kernel(4).unwrap());
        }
    }

    #[test]
    fn blurring_a_constant_image_leaves_it_constant() {
        let image = Image::from_fn(20, 13, |_, _| [0.2, 0.5, 0.9]);
        let mut outputs = vec![GaussianBlur { sigma: 3.0 }.apply(&image).unwrap()];
        for kind in [MotionKernel::Line, MotionKernel::Trajectory] {
            outputs.push(MotionBlur { length: 25.0, angle: None, kernel: kind }.apply(&image, 1).unwrap());
        }
        for out in outputs {
            assert_eq!((out.width(), out.height()), (20, 13));
            for px in out.data().chunks_exact(3) {
                assert!((px[0] - 0.2).abs() < 1e-5 && (px[1] - 0.5).abs() < 1e-5 && (px[2] - 0.9).abs() < 1e-5);
            }
        }
    }

    #[test]
    fn separable_and_full_gaussian_blur_agree() {
        let image = Image::from_fn(17, 11, |x, y| [((x * 7 + y * 3) % 5) as f32 / 4.0, (x % 2) as f32, 0.3]);
        let blur = GaussianBlur { sigma: 1.3 };
        let a = blur.apply(&image).unwrap();
        let b = convolve(&image, &blur.kernel().unwrap());
        for (x, y) in a.data().iter().zip(b.data()) {
            assert!((x - y).abs() < 1e-5);
        }
    }

    #[test]
    fn convolution_moves_an_impulse_along_the_kernel() {
        // A horizontal line kernel spreads a single white pixel into a horizontal bar.
        let mut image = Image::zeros(31, 9);
        image.set_pixel(15, 4, [1.0; 3]);
        let out = MotionBlur { length: 9.0, angle: Some(0.0), kernel: MotionKernel::Line }.apply(&image, 0).unwrap();
        let row: f32 = (0..31).map(|x| out.pixel(x, 4)[0]).sum();
        assert!((row - 1.0).abs() < 1e-4, "all the energy stays on the row: {row}");
        assert!(out.pixel(11, 4)[0] > 0.05 && out.pixel(19, 4)[0] > 0.05);
        assert_eq!(out.pixel(15, 2)[0], 0.0);
    }

    #[test]
    fn reflect_border_indices() {
        let got: Vec<usize> = (-4..9).map(|i| reflect(i, 5)).collect();
        assert_eq!(got, [4, 3, 2, 1, 0, 1, 2, 3, 4, 3, 2, 1, 0]);
        assert_eq!(reflect(-7, 1), 0);
        // Kernels wider than the image still work.
        let tiny = Image::from_fn(2, 1, |x, _| [x as f32; 3]);
        let out = GaussianBlur { sigma: 3.0 }.apply(&tiny).unwrap();
        assert!(out.data().iter().all(|v| (0.0..=1.0).contains(v)));
    }

    #[test]
    fn out_of_range_blur_parameters_are_refused() {
        let image = Image::zeros(4, 4);
        for sigma in [0.4, 3.5, f32::INFINITY] {
            let err = GaussianBlur { sigma }.apply(&image).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "gaussian_blur.sigma", .. }));
        }
        for length in [4.0, 26.0] {
            let err = MotionBlur { length, angle: None, kernel: MotionKernel::Line }.apply(&image, 0).unwrap_err();
            assert!(matches!(err, DegradationError::OutOfRange { name: "motion_blur.length", .. }));
        }
        let err = MotionBlur { length: 10.0, angle: Some(-1.0), kernel: MotionKernel::Line }.kernel(0).unwrap_err();
        assert!(matches!(err, DegradationError::OutOfRange { name: "motion_blur.angle", .. }));
    }
}
