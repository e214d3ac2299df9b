//! Scratches: smooth strokes painted over the image, returned with the mask of what they hide,
//! the inpainting task's input.
//!
//! Each stroke is a cubic Bézier whose control points are evenly spaced along its chord and
//! pushed sideways by at most 15 % of its length: the curve is then a graph over its chord, so it
//! never loops or crosses itself, and it bends gently (radius of curvature ≥ length / 2.7). A
//! pixel belongs to a stroke when its centre lies within `thickness / 2` of the curve.

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use super::error::{check_ordered, check_range, DegradationError};
use super::math::{seeded, sin_cos, uniform, uniform_in};
use crate::image::{Image, Mask};

/// Colour of the strokes.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScratchFill {
    /// Each stroke gets its own colour, uniform in the RGB cube, drawn from the seed.
    #[default]
    Random,
    /// Every stroke has this colour (e.g. white for scratches on a print).
    Constant {
        /// RGB in `[0, 1]`.
        rgb: [f32; 3],
    },
}

/// Random scratches: `strokes` smooth strokes of random position, direction, bend and thickness.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scratches {
    /// Number of strokes, in [`Scratches::STROKES_RANGE`].
    pub strokes: u32,
    /// Thinnest stroke in pixels, in [`Scratches::THICKNESS_RANGE`].
    pub min_thickness: f32,
    /// Thickest stroke in pixels, in [`Scratches::THICKNESS_RANGE`] and ≥ `min_thickness`; each
    /// stroke's thickness is uniform between the two.
    pub max_thickness: f32,
    /// Colour of the strokes.
    #[serde(default)]
    pub fill: ScratchFill,
}

impl Default for Scratches {
    /// Five strokes of 2 to 6 px, random colours.
    fn default() -> Self {
        Self { strokes: 5, min_thickness: 2.0, max_thickness: 6.0, fill: ScratchFill::Random }
    }
}

/// One stroke, in pixel coordinates (pixel `(x, y)` covers `[x, x+1) × [y, y+1)`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Stroke {
    /// Control points of the cubic Bézier, `[x, y]` in pixels; may lie outside the image.
    pub control: [[f32; 2]; 4],
    /// Width in pixels.
    pub thickness: f32,
    /// RGB in `[0, 1]`.
    pub rgb: [f32; 3],
}

impl Stroke {
    /// Point of the curve at `t ∈ [0, 1]`.
    pub fn point(&self, t: f32) -> [f32; 2] {
        let s = 1.0 - t;
        let b = [s * s * s, 3.0 * s * s * t, 3.0 * s * t * t, t * t * t];
        let c = &self.control;
        [
            b[0] * c[0][0] + b[1] * c[1][0] + b[2] * c[2][0] + b[3] * c[3][0],
            b[0] * c[0][1] + b[1] * c[1][1] + b[2] * c[2][1] + b[3] * c[3][1],
        ]
    }

    /// Derivative of the curve at `t` (pixels per unit of `t`).
    pub fn tangent(&self, t: f32) -> [f32; 2] {
        let s = 1.0 - t;
        let b = [3.0 * s * s, 6.0 * s * t, 3.0 * t * t];
        let c = &self.control;
        let d = |k: usize, a: usize| c[k + 1][a] - c[k][a];
        [b[0] * d(0, 0) + b[1] * d(1, 0) + b[2] * d(2, 0), b[0] * d(0, 1) + b[1] * d(1, 1) + b[2] * d(2, 1)]
    }

    /// Calls `visit(x, y)` for every pixel of a `width × height` image whose centre is within
    /// `thickness / 2` of the curve (some pixels more than once).
    pub fn for_each_pixel(&self, width: u32, height: u32, mut visit: impl FnMut(u32, u32)) {
        let radius = self.thickness / 2.0;
        // The control polygon is at least as long as the curve: segments of ≤ 0.5 px.
        let c = &self.control;
        let polygon: f32 = (0..3).map(|k| distance(c[k], c[k + 1])).sum();
        let segments = ((polygon * 2.0).ceil() as u32).max(1);
        let mut previous = self.point(0.0);
        for k in 1..=segments {
            let current = self.point(k as f32 / segments as f32);
            let lo_x = (previous[0].min(current[0]) - radius - 1.0).floor().max(0.0);
            let hi_x = (previous[0].max(current[0]) + radius + 1.0).ceil().min(width as f32 - 1.0);
            let lo_y = (previous[1].min(current[1]) - radius - 1.0).floor().max(0.0);
            let hi_y = (previous[1].max(current[1]) + radius + 1.0).ceil().min(height as f32 - 1.0);
            if lo_x <= hi_x && lo_y <= hi_y {
                for y in lo_y as u32..=hi_y as u32 {
                    for x in lo_x as u32..=hi_x as u32 {
                        let centre = [x as f32 + 0.5, y as f32 + 0.5];
                        if segment_distance_squared(centre, previous, current) <= radius * radius {
                            visit(x, y);
                        }
                    }
                }
            }
            previous = current;
        }
    }

    /// The stroke alone as a mask (1 on the stroke).
    pub fn mask(&self, width: u32, height: u32) -> Mask {
        let mut mask = Mask::zeros(width, height);
        self.for_each_pixel(width, height, |x, y| mask.set(x, y, 1.0));
        mask
    }
}

fn distance(a: [f32; 2], b: [f32; 2]) -> f32 {
    ((a[0] - b[0]) * (a[0] - b[0]) + (a[1] - b[1]) * (a[1] - b[1])).sqrt()
}

/// Squared distance from `p` to the segment `ab`.
fn segment_distance_squared(p: [f32; 2], a: [f32; 2], b: [f32; 2]) -> f32 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length2).clamp(0.0, 1.0) } else { 0.0 };
    let (ex, ey) = (a[0] + t * dx - p[0], a[1] + t * dy - p[1]);
    ex * ex + ey * ey
}

impl Scratches {
    /// Allowed stroke count.
    pub const STROKES_RANGE: RangeInclusive<u32> = 1..=10;
    /// Allowed thicknesses, in pixels.
    pub const THICKNESS_RANGE: RangeInclusive<f32> = 2.0..=6.0;

    /// Checks the parameters against their ranges.
    pub fn validate(&self) -> Result<(), DegradationError> {
        let (lo, hi) = (*Self::STROKES_RANGE.start(), *Self::STROKES_RANGE.end());
        check_range("scratches.strokes", self.strokes as f32, lo as f32..=hi as f32, "strokes")?;
        check_range("scratches.min_thickness", self.min_thickness, Self::THICKNESS_RANGE, "px")?;
        check_range("scratches.max_thickness", self.max_thickness, Self::THICKNESS_RANGE, "px")?;
        check_ordered("scratches.min_thickness", self.min_thickness, "scratches.max_thickness", self.max_thickness)?;
        if let ScratchFill::Constant { rgb } = self.fill {
            for value in rgb {
                check_range("scratches.fill.rgb", value, 0.0..=1.0, "(per channel)")?;
            }
        }
        Ok(())
    }

    /// The strokes this seed gives on a `width × height` image. Each starts inside the image (so
    /// each paints at least one pixel) and is 30–90 % of the diagonal long (at least 16 px).
    pub fn strokes(&self, width: u32, height: u32, seed: u64) -> Result<Vec<Stroke>, DegradationError> {
        self.validate()?;
        let mut rng = seeded(seed);
        let (w, h) = (width as f64, height as f64);
        let diagonal = (w * w + h * h).sqrt();
        let strokes = (0..self.strokes)
            .map(|_| {
                let start = [uniform_in(&mut rng, 0.0, w), uniform_in(&mut rng, 0.0, h)];
                let (sin, cos) = sin_cos(std::f64::consts::TAU * uniform(&mut rng));
                let length = (uniform_in(&mut rng, 0.3, 0.9) * diagonal).max(16.0);
                let bends = [uniform_in(&mut rng, -0.15, 0.15) * length, uniform_in(&mut rng, -0.15, 0.15) * length];
                let thickness = uniform_in(&mut rng, self.min_thickness as f64, self.max_thickness as f64) as f32;
                let rgb = match self.fill {
                    ScratchFill::Random => [0; 3].map(|_| uniform(&mut rng) as f32),
                    ScratchFill::Constant { rgb } => rgb,
                };
                let along = |t: f64, side: f64| {
                    [
                        (start[0] + t * length * cos - side * sin) as f32,
                        (start[1] + t * length * sin + side * cos) as f32,
                    ]
                };
                Stroke {
                    control: [along(0.0, 0.0), along(1.0 / 3.0, bends[0]), along(2.0 / 3.0, bends[1]), along(1.0, 0.0)],
                    thickness,
                    rgb,
                }
            })
            .collect();
        Ok(strokes)
    }

    /// Paints the strokes (later ones over earlier ones) and returns the image with the mask of
    /// painted pixels: exactly the pixels whose value the strokes set.
    pub fn apply(&self, image: &Image, seed: u64) -> Result<(Image, Mask), DegradationError> {
        let (w, h) = (image.width(), image.height());
        let mut out = image.clone();
        let mut mask = Mask::zeros(w, h);
        for stroke in self.strokes(w, h, seed)? {
            stroke.for_each_pixel(w, h, |x, y| {
                out.set_pixel(x, y, stroke.rgb);
                mask.set(x, y, 1.0);
            });
        }
        Ok((out, mask))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratches(strokes: u32, fill: ScratchFill) -> Scratches {
        Scratches { strokes, fill, ..Scratches::default() }
    }

    /// Width of the stroke's mask across the curve at `t`: walk along the normal from the curve
    /// in 0.02 px steps, both ways, while the pixel under the point is masked. `None` where the
    /// cross-section would leave the image.
    fn cross_section(stroke: &Stroke, mask: &Mask, t: f32) -> Option<f32> {
        let p = stroke.point(t);
        let d = stroke.tangent(t);
        let norm = (d[0] * d[0] + d[1] * d[1]).sqrt();
        let n = [-d[1] / norm, d[0] / norm];
        let margin = 8.0;
        let (w, h) = (mask.width() as f32, mask.height() as f32);
        if p[0] < margin || p[1] < margin || p[0] > w - margin || p[1] > h - margin {
            return None;
        }
        let run = |sign: f32| {
            let mut s = 0.0f32;
            while s < 20.0 {
                let q = [p[0] + sign * (s + 0.02) * n[0], p[1] + sign * (s + 0.02) * n[1]];
                if mask.get(q[0].floor() as u32, q[1].floor() as u32) != 1.0 {
                    break;
                }
                s += 0.02;
            }
            s
        };
        Some(run(1.0) + run(-1.0))
    }

    #[test]
    fn each_stroke_is_as_thick_as_drawn_and_within_2_to_6_px() {
        // Measured on the rendered mask, independently of the renderer's distance test: pixel
        // squares along the normal differ from the ideal band by under a pixel on each side, and
        // averaging over the stroke brings the error well under one pixel. Rendering the
        // thickness as a radius (twice too wide) or as a half-width would fail.
        let mut measured_strokes = 0;
        for seed in 0..40 {
            let config = Scratches { strokes: 3, min_thickness: 2.0, max_thickness: 6.0, fill: ScratchFill::Random };
            for stroke in config.strokes(128, 128, seed).unwrap() {
                assert!((2.0..=6.0).contains(&stroke.thickness));
                let mask = stroke.mask(128, 128);
                let widths: Vec<f32> = (1..20).filter_map(|i| cross_section(&stroke, &mask, i as f32 / 20.0)).collect();
                if widths.len() < 5 {
                    continue; // mostly outside the image
                }
                measured_strokes += 1;
                let mean = widths.iter().sum::<f32>() / widths.len() as f32;
                assert!(
                    (mean - stroke.thickness).abs() <= 0.75,
                    "seed {seed}: drawn {} px, measured {mean} px ({widths:?})",
                    stroke.thickness
                );
                assert!((1.25..=6.75).contains(&mean), "measured {mean} px");
            }
        }
        assert!(measured_strokes >= 40, "only {measured_strokes} strokes measured");
    }

    #[test]
    fn mask_covers_exactly_the_changed_pixels() {
        // A ramp that never equals the fill colour: every painted pixel changes.
        let image = Image::from_fn(96, 80, |x, y| [0.1 + x as f32 / 200.0, 0.1 + y as f32 / 200.0, 0.3]);
        for (seed, fill) in [(1, ScratchFill::Constant { rgb: [1.0, 1.0, 1.0] }), (2, ScratchFill::Random)] {
            let (out, mask) = scratches(10, fill).apply(&image, seed).unwrap();
            let strokes = scratches(10, fill).strokes(96, 80, seed).unwrap();
            let mut painted = 0;
            for y in 0..80 {
                for x in 0..96 {
                    let changed = out.pixel(x, y) != image.pixel(x, y);
                    let masked = mask.get(x, y);
                    assert!(masked == 0.0 || masked == 1.0);
                    assert_eq!(changed, masked == 1.0, "pixel ({x}, {y})");
                    if masked == 1.0 {
                        painted += 1;
                        // The pixel has the colour of one of the strokes.
                        assert!(strokes.iter().any(|s| s.rgb == out.pixel(x, y)));
                    }
                }
            }
            assert!(painted > 100, "{painted}");
            let masks: Vec<Mask> = strokes.iter().map(|s| s.mask(96, 80)).collect();
            let union: Vec<f32> = (0..96 * 80).map(|i| masks.iter().any(|m| m.data()[i] == 1.0) as u8 as f32).collect();
            assert_eq!(mask.data(), &union[..], "the mask is the union of the strokes");
        }
    }

    #[test]
    fn stroke_count_is_as_requested_and_each_stroke_is_visible() {
        for strokes in 1..=10 {
            let config = scratches(strokes, ScratchFill::Random);
            let list = config.strokes(64, 48, strokes as u64).unwrap();
            assert_eq!(list.len(), strokes as usize);
            for stroke in &list {
                assert!(stroke.mask(64, 48).coverage() > 0.0);
            }
        }
    }

    #[test]
    fn strokes_are_smooth_and_do_not_fold() {
        // Curve advances monotonically along its chord: it never turns back on itself.
        for seed in 0..50 {
            for stroke in scratches(10, ScratchFill::Random).strokes(128, 128, seed).unwrap() {
                let c = stroke.control;
                let chord = [c[3][0] - c[0][0], c[3][1] - c[0][1]];
                for i in 0..=100 {
                    let d = stroke.tangent(i as f32 / 100.0);
                    assert!(d[0] * chord[0] + d[1] * chord[1] > 0.0);
                }
            }
        }
    }

    #[test]
    fn scratches_are_deterministic_per_seed() {
        let image = Image::from_fn(64, 64, |x, y| [x as f32 / 63.0, y as f32 / 63.0, 0.5]);
        let config = scratches(4, ScratchFill::Random);
        let (a, ma) = config.apply(&image, 11).unwrap();
        let (b, mb) = config.apply(&image, 11).unwrap();
        let (c, mc) = config.apply(&image, 12).unwrap();
        assert_eq!((a.data(), ma.data()), (b.data(), mb.data()));
        assert_ne!(a.data(), c.data());
        assert_ne!(ma.data(), mc.data());
    }

    #[test]
    fn tiny_images_work() {
        let (out, mask) = scratches(10, ScratchFill::Random).apply(&Image::zeros(1, 1), 0).unwrap();
        assert_eq!((out.width(), mask.width()), (1, 1));
        assert_eq!(mask.data(), &[1.0]);
    }

    #[test]
    fn out_of_range_scratch_parameters_are_refused() {
        let image = Image::zeros(8, 8);
        let cases = [
            (Scratches { strokes: 0, ..Scratches::default() }, "scratches.strokes"),
            (Scratches { strokes: 11, ..Scratches::default() }, "scratches.strokes"),
            (Scratches { min_thickness: 1.0, ..Scratches::default() }, "scratches.min_thickness"),
            (Scratches { max_thickness: 7.0, ..Scratches::default() }, "scratches.max_thickness"),
            (
                Scratches { fill: ScratchFill::Constant { rgb: [0.0, 2.0, 0.0] }, ..Scratches::default() },
                "scratches.fill.rgb",
            ),
        ];
        for (config, expected) in cases {
            match config.apply(&image, 0) {
                Err(DegradationError::OutOfRange { name, .. }) => assert_eq!(name, expected),
                other => panic!("{config:?}: {other:?}"),
            }
        }
        let inverted = Scratches { min_thickness: 5.0, max_thickness: 3.0, ..Scratches::default() };
        assert!(matches!(inverted.apply(&image, 0), Err(DegradationError::InvertedBounds { .. })));
    }
}
