//! Error maps: where a restoration differs from its target, as a jet-coloured image.
//!
//! The error of a pixel is `(|r − t|_R + |r − t|_G + |r − t|_B) / 3` on the `[0, 1]` scale. It is
//! divided by a scale ([`ErrorScale`]), clamped to `[0, 1]` and coloured with [`jet`]: no error is
//! dark blue, the scale and above dark red. Encode the result with
//! [`Image::encode_png`](crate::Image::encode_png).

use super::psnr::check_same_size;
use super::MetricError;
use crate::image::Image;

/// Which error is drawn as the top of the colour map.
#[derive(Debug, Clone, Copy, PartialEq, Default, serde::Serialize, serde::Deserialize)]
pub enum ErrorScale {
    /// The map's own largest error: shows the structure of one image's errors, but colours of
    /// different maps cannot be compared.
    #[default]
    Auto,
    /// This mean absolute error (on the `[0, 1]` scale, e.g. `0.1`) and above are dark red. Use
    /// the same value for every model so their maps can be compared.
    Fixed(f32),
}

/// Colours the per-pixel mean absolute error between `restored` and `target` with [`jet`].
///
/// Pixels whose error is not finite (a NaN or infinite value in either image) are drawn at the
/// top of the scale; with [`ErrorScale::Auto`] the scale is the largest finite error, and a pair
/// of identical images gives a map that is all `jet(0)`.
///
/// # Errors
/// [`MetricError::SizeMismatch`] when the sizes differ, [`MetricError::InvalidScale`] when a
/// fixed scale is not a positive finite number.
pub fn error_map(restored: &Image, target: &Image, scale: ErrorScale) -> Result<Image, MetricError> {
    check_same_size(restored, target)?;
    let errors: Vec<f32> = restored
        .data()
        .chunks_exact(3)
        .zip(target.data().chunks_exact(3))
        .map(|(r, t)| ((r[0] - t[0]).abs() + (r[1] - t[1]).abs() + (r[2] - t[2]).abs()) / 3.0)
        .collect();
    let max = match scale {
        ErrorScale::Fixed(max) if max.is_finite() && max > 0.0 => max,
        ErrorScale::Fixed(max) => return Err(MetricError::InvalidScale(max)),
        ErrorScale::Auto => errors.iter().copied().filter(|e| e.is_finite()).fold(0.0, f32::max),
    };
    let width = restored.width();
    Ok(Image::from_fn(width, restored.height(), |x, y| {
        let e = errors[y as usize * width as usize + x as usize];
        let t = if !e.is_finite() {
            1.0
        } else if max > 0.0 {
            e / max
        } else {
            0.0
        };
        jet(t)
    }))
}

/// The jet colour map (MATLAB's `jet`, also OpenCV's `COLORMAP_JET` up to its slightly different
/// knots): `t = 0` dark blue `(0, 0, 0.5)`, 1/8 blue, 3/8 cyan, 1/2 `(0.5, 1, 0.5)`, 5/8 yellow,
/// 7/8 red, 1 dark red `(0.5, 0, 0)`, linear in between. `t` is clamped to `[0, 1]`; NaN is 0.
pub fn jet(t: f32) -> [f32; 3] {
    let t = if t.is_nan() { 0.0 } else { t.clamp(0.0, 1.0) };
    let ramp = |centre: f32| (1.5 - (4.0 * t - centre).abs()).clamp(0.0, 1.0);
    [ramp(3.0), ramp(2.0), ramp(1.0)]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gradient(width: u32, height: u32) -> Image {
        Image::from_fn(width, height, |x, y| [x as f32 / width as f32, y as f32 / height as f32, 0.5])
    }

    #[test]
    fn jet_endpoints_midpoint_and_knots() {
        assert_eq!(jet(0.0), [0.0, 0.0, 0.5]);
        assert_eq!(jet(0.125), [0.0, 0.0, 1.0]);
        assert_eq!(jet(0.375), [0.0, 1.0, 1.0]);
        assert_eq!(jet(0.5), [0.5, 1.0, 0.5]);
        assert_eq!(jet(0.625), [1.0, 1.0, 0.0]);
        assert_eq!(jet(0.875), [1.0, 0.0, 0.0]);
        assert_eq!(jet(1.0), [0.5, 0.0, 0.0]);
        assert_eq!(jet(-3.0), jet(0.0));
        assert_eq!(jet(7.0), jet(1.0));
        assert_eq!(jet(f32::NAN), jet(0.0));
    }

    #[test]
    fn identical_images_are_all_jet_zero() {
        let image = gradient(7, 5);
        for scale in [ErrorScale::Auto, ErrorScale::Fixed(0.1)] {
            let map = error_map(&image, &image, scale).unwrap();
            assert_eq!((map.width(), map.height()), (7, 5));
            assert!(map.data().chunks_exact(3).all(|p| p == jet(0.0)), "{scale:?}");
        }
    }

    #[test]
    fn auto_scale_puts_the_largest_error_at_the_top() {
        let target = Image::zeros(4, 3);
        let mut restored = target.clone();
        restored.set_pixel(1, 1, [0.3, 0.3, 0.3]);
        restored.set_pixel(2, 0, [0.15, 0.15, 0.15]);
        let map = error_map(&restored, &target, ErrorScale::Auto).unwrap();
        assert_eq!(map.pixel(1, 1), jet(1.0));
        assert_eq!(map.pixel(2, 0), jet(0.5));
        assert_eq!(map.pixel(0, 0), jet(0.0));
    }

    #[test]
    fn fixed_scale_is_absolute_and_saturates() {
        let target = Image::zeros(3, 1);
        let restored = Image::new(3, 1, vec![0.25, 0.25, 0.25, 0.75, 0.0, 0.0, 1.0, 1.0, 1.0]).unwrap();
        let map = error_map(&restored, &target, ErrorScale::Fixed(0.5)).unwrap();
        assert_eq!(map.pixel(0, 0), jet(0.5));
        assert_eq!(map.pixel(1, 0), jet(0.5));
        assert_eq!(map.pixel(2, 0), jet(1.0));
        // Symmetric in its two images.
        assert_eq!(map, error_map(&target, &restored, ErrorScale::Fixed(0.5)).unwrap());
    }

    #[test]
    fn non_finite_errors_are_at_the_top() {
        let target = Image::zeros(2, 1);
        let restored = Image::new(2, 1, vec![f32::NAN, 0.0, 0.0, 0.3, 0.0, 0.0]).unwrap();
        let map = error_map(&restored, &target, ErrorScale::Auto).unwrap();
        assert_eq!(map.pixel(0, 0), jet(1.0));
        assert_eq!(map.pixel(1, 0), jet(1.0));
    }

    #[test]
    fn bad_scales_and_sizes_are_refused() {
        let image = gradient(4, 4);
        for bad in [0.0, -1.0, f32::NAN, f32::INFINITY] {
            assert!(matches!(error_map(&image, &image, ErrorScale::Fixed(bad)), Err(MetricError::InvalidScale(_))));
        }
        assert_eq!(
            error_map(&image, &gradient(4, 5), ErrorScale::Auto),
            Err(MetricError::SizeMismatch { a_width: 4, a_height: 4, b_width: 4, b_height: 5 })
        );
    }

    #[test]
    fn map_encodes_as_png() {
        let map = error_map(&gradient(6, 4), &Image::zeros(6, 4), ErrorScale::Auto).unwrap();
        let png = map.encode_png(crate::BitDepth::Eight).unwrap();
        assert_eq!(Image::decode(&png).unwrap().width(), 6);
    }
}
