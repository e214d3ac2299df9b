//! Peak signal-to-noise ratio, and what every full-reference metric here shares:
//! [`MetricOptions`], [`MetricError`] and the BT.601 luma [`rgb_to_y`].
//!
//! # Conventions
//!
//! These follow BasicSR's `basicsr/metrics/psnr_ssim.py` (`calculate_psnr`, `calculate_ssim`),
//! so numbers can be set beside published tables:
//!
//! - values are measured on the 0–255 scale in `f64`: `v * 255` for `v` in `[0, 1]`, with no
//!   rounding to integers (BasicSR is given 8-bit images; Restora's are `f32`);
//! - `crop_border` pixels are dropped from each of the four edges first (`img[c:-c, c:-c]`);
//! - with `y_channel`, each pixel is replaced by the Y of BT.601 studio-swing YCbCr,
//!   `Y = 16 + 65.481 R + 128.553 G + 24.966 B` for `R, G, B` in `[0, 1]`, so `Y ∈ [16, 235]`
//!   (BasicSR's `to_y_channel`, i.e. `bgr2ycbcr(y_only=True)`);
//! - the peak is 255 in both cases (also on Y, as BasicSR does), and PSNR is computed from the
//!   mean squared error over every measured value (all pixels and channels together);
//! - identical images give `f64::INFINITY`.

use crate::image::Image;

/// Options shared by [`psnr`] and [`ssim`](super::ssim): BasicSR's `crop_border` and
/// `test_y_channel`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct MetricOptions {
    /// Pixels dropped from each edge before measuring (BasicSR uses the upscaling factor for
    /// super-resolution, 0 for denoising, deblurring and inpainting).
    pub crop_border: u32,
    /// Measure on BT.601 luma (Y of YCbCr, 16–235) instead of on R, G and B.
    pub y_channel: bool,
}

impl MetricOptions {
    /// No crop, RGB: the same as `MetricOptions::default()`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Drops `crop_border` pixels from each edge before measuring.
    #[must_use]
    pub fn with_crop_border(mut self, crop_border: u32) -> Self {
        self.crop_border = crop_border;
        self
    }

    /// Measures on BT.601 luma instead of R, G and B.
    #[must_use]
    pub fn with_y_channel(mut self, y_channel: bool) -> Self {
        self.y_channel = y_channel;
        self
    }
}

/// What can go wrong measuring a pair of images.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum MetricError {
    /// The two images must have the same size.
    #[error("the images differ in size: {a_width}×{a_height} and {b_width}×{b_height}")]
    SizeMismatch { a_width: u32, a_height: u32, b_width: u32, b_height: u32 },
    /// Cropping would leave no pixel.
    #[error("a crop border of {crop_border} px on each edge leaves nothing of a {width}×{height} image")]
    CropTooLarge { crop_border: u32, width: u32, height: u32 },
    /// The (cropped) images are smaller than the metric's window.
    #[error("the metric needs at least {min}×{min} pixels after cropping, got {width}×{height}")]
    TooSmall { width: u32, height: u32, min: u32 },
    /// An error-map scale that is not a positive finite number.
    #[error("the error-map scale must be a positive finite number, got {0}")]
    InvalidScale(f32),
}

/// BT.601 luma on the 0–255 scale, `16 + 65.481 R + 128.553 G + 24.966 B` for RGB in `[0, 1]`:
/// BasicSR's `rgb2ycbcr(img, y_only=True)` times 255.
pub fn rgb_to_y(rgb: [f32; 3]) -> f64 {
    16.0 + 65.481 * f64::from(rgb[0]) + 128.553 * f64::from(rgb[1]) + 24.966 * f64::from(rgb[2])
}

/// PSNR in dB between two images of the same size, BasicSR's `calculate_psnr` (see the module
/// documentation for the conventions). Symmetric; `f64::INFINITY` when the measured values are
/// identical.
///
/// # Errors
/// [`MetricError::SizeMismatch`] when the sizes differ, [`MetricError::CropTooLarge`] when the
/// crop leaves no pixel.
pub fn psnr(a: &Image, b: &Image, opts: &MetricOptions) -> Result<f64, MetricError> {
    let (va, vb) = Measured::pair(a, b, opts)?;
    let mut sum = 0.0;
    for c in 0..va.channels() {
        for y in 0..va.height {
            for x in 0..va.width {
                let d = va.value(x, y, c) - vb.value(x, y, c);
                sum += d * d;
            }
        }
    }
    let count = va.width * va.height * va.channels();
    let mse = sum / count as f64;
    if mse == 0.0 {
        return Ok(f64::INFINITY);
    }
    Ok(10.0 * (255.0 * 255.0 / mse).log10())
}

/// Checks that two images have the same size.
pub(crate) fn check_same_size(a: &Image, b: &Image) -> Result<(), MetricError> {
    if a.width() != b.width() || a.height() != b.height() {
        return Err(MetricError::SizeMismatch {
            a_width: a.width(),
            a_height: a.height(),
            b_width: b.width(),
            b_height: b.height(),
        });
    }
    Ok(())
}

/// The values a metric measures: the cropped image, as R, G, B or as Y, on the 0–255 scale.
/// Values are computed on access, so nothing is copied.
pub(crate) struct Measured<'a> {
    image: &'a Image,
    crop: usize,
    y_channel: bool,
    /// Width after cropping.
    pub width: usize,
    /// Height after cropping.
    pub height: usize,
}

impl<'a> Measured<'a> {
    /// Both images of a pair, after checking their sizes and the crop.
    pub fn pair(a: &'a Image, b: &'a Image, opts: &MetricOptions) -> Result<(Self, Self), MetricError> {
        check_same_size(a, b)?;
        Ok((Self::new(a, opts)?, Self::new(b, opts)?))
    }

    fn new(image: &'a Image, opts: &MetricOptions) -> Result<Self, MetricError> {
        let (width, height) = (image.width(), image.height());
        let twice = 2 * u64::from(opts.crop_border);
        if twice >= u64::from(width) || twice >= u64::from(height) {
            return Err(MetricError::CropTooLarge { crop_border: opts.crop_border, width, height });
        }
        let crop = opts.crop_border as usize;
        Ok(Self {
            image,
            crop,
            y_channel: opts.y_channel,
            width: width as usize - 2 * crop,
            height: height as usize - 2 * crop,
        })
    }

    /// 1 (Y) or 3 (R, G, B).
    pub fn channels(&self) -> usize {
        if self.y_channel {
            1
        } else {
            3
        }
    }

    /// Value of channel `c` at `(x, y)` of the cropped image, on the 0–255 scale.
    #[inline]
    pub fn value(&self, x: usize, y: usize, c: usize) -> f64 {
        let i = ((y + self.crop) * self.image.width() as usize + x + self.crop) * 3;
        let data = self.image.data();
        if self.y_channel {
            rgb_to_y([data[i], data[i + 1], data[i + 2]])
        } else {
            f64::from(data[i + c]) * 255.0
        }
    }

    /// Row `y` of channel `c` into `out` (of length `width`).
    pub fn row(&self, y: usize, c: usize, out: &mut [f64]) {
        for (x, v) in out.iter_mut().enumerate() {
            *v = self.value(x, y, c);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, rgb: [f32; 3]) -> Image {
        Image::from_fn(width, height, |_, _| rgb)
    }

    fn pattern(width: u32, height: u32) -> Image {
        Image::from_fn(width, height, |x, y| {
            let v = ((x * 7 + y * 13) % 17) as f32 / 16.0;
            [v, 1.0 - v, (x % 3) as f32 / 2.0]
        })
    }

    #[test]
    fn identical_images_are_infinite() {
        let image = pattern(9, 7);
        for y_channel in [false, true] {
            let opts = MetricOptions::new().with_y_channel(y_channel);
            assert_eq!(psnr(&image, &image, &opts).unwrap(), f64::INFINITY);
        }
    }

    #[test]
    fn known_mse_gives_exact_psnr() {
        // One value of 48 differs by the full range: MSE = 255² / 48, PSNR = 10 log10(48).
        let a = Image::zeros(4, 4);
        let mut b = a.clone();
        b.set_pixel(2, 1, [0.0, 1.0, 0.0]);
        let got = psnr(&a, &b, &MetricOptions::default()).unwrap();
        assert!((got - 10.0 * 48f64.log10()).abs() < 1e-12, "{got}");

        // Half the range everywhere: 20 log10(2).
        let got = psnr(&a, &solid(4, 4, [0.5; 3]), &MetricOptions::default()).unwrap();
        assert!((got - 20.0 * 2f64.log10()).abs() < 1e-12, "{got}");
    }

    #[test]
    fn y_channel_uses_bt601_studio_swing() {
        assert!((rgb_to_y([0.0; 3]) - 16.0).abs() < 1e-12);
        assert!((rgb_to_y([1.0; 3]) - 235.0).abs() < 1e-12);
        // Black against white differs by 219 on Y: PSNR = 20 log10(255 / 219).
        let opts = MetricOptions::new().with_y_channel(true);
        let got = psnr(&solid(3, 3, [0.0; 3]), &solid(3, 3, [1.0; 3]), &opts).unwrap();
        assert!((got - 20.0 * (255.0f64 / 219.0).log10()).abs() < 1e-12, "{got}");
    }

    #[test]
    fn crop_border_ignores_the_edges() {
        let a = pattern(8, 6);
        let mut b = a.clone();
        b.set_pixel(0, 3, [1.0, 0.0, 0.5]);
        b.set_pixel(7, 5, [0.0, 0.0, 0.0]);
        assert!(psnr(&a, &b, &MetricOptions::default()).unwrap().is_finite());
        let cropped = MetricOptions::new().with_crop_border(1);
        assert_eq!(psnr(&a, &b, &cropped).unwrap(), f64::INFINITY);
    }

    #[test]
    fn psnr_is_symmetric() {
        let a = pattern(10, 8);
        let b = Image::from_fn(10, 8, |x, y| {
            let p = a.pixel(x, y);
            [p[0] * 0.9, (p[1] + 0.05).min(1.0), p[2]]
        });
        for opts in [MetricOptions::new(), MetricOptions::new().with_crop_border(2).with_y_channel(true)] {
            assert_eq!(psnr(&a, &b, &opts).unwrap(), psnr(&b, &a, &opts).unwrap());
        }
    }

    #[test]
    fn mismatched_sizes_name_both() {
        let err = psnr(&Image::zeros(4, 4), &Image::zeros(5, 4), &MetricOptions::default()).unwrap_err();
        assert_eq!(err, MetricError::SizeMismatch { a_width: 4, a_height: 4, b_width: 5, b_height: 4 });
        let message = err.to_string();
        assert!(message.contains("4×4") && message.contains("5×4"), "{message}");
    }

    #[test]
    fn crop_too_large_is_refused() {
        let image = Image::zeros(10, 6);
        let opts = MetricOptions::new().with_crop_border(3);
        assert!(matches!(
            psnr(&image, &image, &opts),
            Err(MetricError::CropTooLarge { crop_border: 3, width: 10, height: 6 })
        ));
        assert!(psnr(&image, &image, &MetricOptions::new().with_crop_border(2)).is_ok());
    }

    #[test]
    fn options_deserialise_with_defaults() {
        let opts: MetricOptions = serde_json::from_str(r#"{"y_channel": true}"#).unwrap();
        assert_eq!(opts, MetricOptions::new().with_y_channel(true));
    }
}
