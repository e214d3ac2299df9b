//! Random draws of degradations: per task, uniformly over the documented ranges, or across
//! tasks with the per-kind weights of a training mix ([`Composition`]).
//!
//! The draw only picks parameters; apply the result with its own seed to get the pixels. Given
//! a seeded generator (e.g. `ChaCha8Rng::seed_from_u64`), draws are reproducible.

use rand::Rng;
use serde::{Deserialize, Serialize};

use super::aliasing::{Aliasing, Downsampling, Upsampling};
use super::blur::{GaussianBlur, MotionBlur, MotionKernel};
use super::degradation::Degradation;
use super::error::DegradationError;
use super::noise::{GaussianNoise, PoissonNoise, SaltAndPepper};
use super::scratches::{ScratchFill, Scratches};
use super::task::Task;

/// A random degradation for `task`, every parameter uniform over its range:
/// - denoise: Gaussian, Poisson or salt-and-pepper noise, one third each;
/// - deblur: Gaussian or motion blur, half each; motion is a line or a trajectory, half each,
///   with a uniform angle in `[0, 360)` degrees;
/// - dealias: factor uniform in `[0.25, 0.5]`, down- and upsampling filters half each;
/// - inpaint: scratches, 1–10 strokes, thickness 2–6 px, random or white fill, half each.
pub fn sample(task: Task, rng: &mut impl Rng) -> Degradation {
    match task {
        Task::Denoise => match rng.random_range(0..3u32) {
            0 => gaussian_noise(rng),
            1 => poisson_noise(rng),
            _ => salt_and_pepper(rng),
        },
        Task::Deblur => {
            if rng.random_bool(0.5) {
                gaussian_blur(rng)
            } else {
                motion_blur(rng)
            }
        }
        Task::Dealias => aliasing(rng),
        Task::Inpaint => scratches(rng),
    }
}

/// A random degradation of a kind drawn with the weights of `composition` (then parameters as
/// in [`sample`]). Fails only if every weight is zero.
pub fn sample_weighted(composition: &Composition, rng: &mut impl Rng) -> Result<Degradation, DegradationError> {
    composition.sample(rng)
}

/// Relative weights of each degradation kind in a training mix. The defaults are the report's
/// foundation mix (numbers of images per kind); only ratios matter. Missing fields in JSON take
/// these defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Composition {
    /// Weight of Gaussian noise (default 400).
    pub gaussian_noise: u32,
    /// Weight of salt-and-pepper noise (default 400).
    pub salt_and_pepper: u32,
    /// Weight of Poisson noise (default 400).
    pub poisson_noise: u32,
    /// Weight of motion blur, line or trajectory (default 200).
    pub motion_blur: u32,
    /// Weight of Gaussian blur (default 200).
    pub gaussian_blur: u32,
    /// Weight of aliasing (default 900).
    pub aliasing: u32,
    /// Weight of inpainting, i.e. scratches (default 500).
    pub inpainting: u32,
}

impl Default for Composition {
    fn default() -> Self {
        Self {
            gaussian_noise: 400,
            salt_and_pepper: 400,
            poisson_noise: 400,
            motion_blur: 200,
            gaussian_blur: 200,
            aliasing: 900,
            inpainting: 500,
        }
    }
}

/// A parameter drawer for one kind.
type Draw<R> = fn(&mut R) -> Degradation;

impl Composition {
    /// Sum of the weights.
    pub fn total(&self) -> u64 {
        self.weights().iter().map(|&w| w as u64).sum()
    }

    /// Fails if every weight is zero.
    pub fn validate(&self) -> Result<(), DegradationError> {
        if self.total() == 0 {
            return Err(DegradationError::ZeroWeights);
        }
        Ok(())
    }

    /// See [`sample_weighted`].
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Result<Degradation, DegradationError> {
        self.validate()?;
        let draws: [Draw<R>; 7] = [
            gaussian_noise::<R>,
            salt_and_pepper::<R>,
            poisson_noise::<R>,
            motion_blur::<R>,
            gaussian_blur::<R>,
            aliasing::<R>,
            scratches::<R>,
        ];
        let mut pick = rng.random_range(0..self.total());
        for (weight, draw) in self.weights().into_iter().zip(draws) {
            if pick < weight as u64 {
                return Ok(draw(rng));
            }
            pick -= weight as u64;
        }
        unreachable!("pick < total")
    }

    /// The weights in the order of the drawers in [`Composition::sample`].
    fn weights(&self) -> [u32; 7] {
        [
            self.gaussian_noise,
            self.salt_and_pepper,
            self.poisson_noise,
            self.motion_blur,
            self.gaussian_blur,
            self.aliasing,
            self.inpainting,
        ]
    }
}

fn gaussian_noise<R: Rng>(rng: &mut R) -> Degradation {
    Degradation::GaussianNoise(GaussianNoise { sigma: rng.random_range(GaussianNoise::SIGMA_RANGE) })
}

fn poisson_noise<R: Rng>(rng: &mut R) -> Degradation {
    Degradation::PoissonNoise(PoissonNoise { peak: rng.random_range(PoissonNoise::PEAK_RANGE) })
}

fn salt_and_pepper<R: Rng>(rng: &mut R) -> Degradation {
    Degradation::SaltAndPepper(SaltAndPepper { ratio: rng.random_range(SaltAndPepper::RATIO_RANGE) })
}

fn gaussian_blur<R: Rng>(rng: &mut R) -> Degradation {
    Degradation::GaussianBlur(GaussianBlur { sigma: rng.random_range(GaussianBlur::SIGMA_RANGE) })
}

fn motion_blur<R: Rng>(rng: &mut R) -> Degradation {
    let kernel = if rng.random_bool(0.5) { MotionKernel::Line } else { MotionKernel::Trajectory };
    Degradation::MotionBlur(MotionBlur {
        length: rng.random_range(MotionBlur::LENGTH_RANGE),
        angle: Some(rng.random_range(0.0..360.0)),
        kernel,
    })
}

fn aliasing<R: Rng>(rng: &mut R) -> Degradation {
    Degradation::Aliasing(Aliasing {
        factor: rng.random_range(Aliasing::FACTOR_RANGE),
        down: if rng.random_bool(0.5) { Downsampling::Nearest } else { Downsampling::Area },
        up: if rng.random_bool(0.5) { Upsampling::Bilinear } else { Upsampling::Bicubic },
    })
}

fn scratches<R: Rng>(rng: &mut R) -> Degradation {
    let fill = if rng.random_bool(0.5) { ScratchFill::Random } else { ScratchFill::Constant { rgb: [1.0; 3] } };
    Degradation::Scratches(Scratches {
        strokes: rng.random_range(Scratches::STROKES_RANGE),
        min_thickness: *Scratches::THICKNESS_RANGE.start(),
        max_thickness: *Scratches::THICKNESS_RANGE.end(),
        fill,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    use super::*;

    #[test]
    fn draws_stay_in_range_and_match_their_task() {
        let mut rng = ChaCha8Rng::seed_from_u64(0);
        for task in Task::ALL {
            let mut kinds = BTreeMap::new();
            for _ in 0..1000 {
                let degradation = sample(task, &mut rng);
                degradation.validate().unwrap_or_else(|e| panic!("{degradation:?}: {e}"));
                assert_eq!(degradation.task(), task);
                *kinds.entry(degradation.kind()).or_insert(0u32) += 1;
                if let Degradation::MotionBlur(m) = degradation {
                    assert!(m.angle.is_some_and(|a| (0.0..360.0).contains(&a)));
                }
            }
            let expected = match task {
                Task::Denoise => 3,
                Task::Deblur => 2,
                Task::Dealias | Task::Inpaint => 1,
            };
            assert_eq!(kinds.len(), expected, "{task}: {kinds:?}");
            for (kind, count) in &kinds {
                let share = *count as f64 / 1000.0;
                assert!((share - 1.0 / expected as f64).abs() < 0.06, "{task}/{kind}: {share}");
            }
        }
    }

    #[test]
    fn draws_cover_their_ranges() {
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let (mut lo, mut hi) = (f32::MAX, f32::MIN);
        let mut strokes = [0u32; 11];
        for _ in 0..1000 {
            if let Degradation::Aliasing(a) = sample(Task::Dealias, &mut rng) {
                lo = lo.min(a.factor);
                hi = hi.max(a.factor);
            }
            if let Degradation::Scratches(s) = sample(Task::Inpaint, &mut rng) {
                strokes[s.strokes as usize] += 1;
            }
        }
        assert!(lo < 0.26 && hi > 0.49, "{lo}..{hi}");
        assert_eq!(strokes[0], 0);
        assert!(strokes[1..].iter().all(|&n| n > 50), "{strokes:?}");
    }

    #[test]
    fn weighted_draws_follow_the_composition() {
        let composition = Composition::default();
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        let n = 10_000;
        let mut counts = BTreeMap::new();
        for _ in 0..n {
            let degradation = sample_weighted(&composition, &mut rng).unwrap();
            degradation.validate().unwrap();
            *counts.entry(degradation.kind()).or_insert(0u32) += 1;
        }
        let expected = [
            ("gaussian_noise", 400),
            ("salt_and_pepper", 400),
            ("poisson_noise", 400),
            ("motion_blur", 200),
            ("gaussian_blur", 200),
            ("aliasing", 900),
            ("scratches", 500),
        ];
        for (kind, weight) in expected {
            let share = counts.get(kind).copied().unwrap_or(0) as f64 / n as f64;
            let wanted = weight as f64 / 3000.0;
            assert!((share - wanted).abs() < 0.02, "{kind}: {share} vs {wanted}");
        }
        // A zero weight is never drawn.
        let only_blur = Composition { gaussian_blur: 1, ..zero() };
        for _ in 0..100 {
            assert_eq!(only_blur.sample(&mut rng).unwrap().kind(), "gaussian_blur");
        }
    }

    fn zero() -> Composition {
        Composition {
            gaussian_noise: 0,
            salt_and_pepper: 0,
            poisson_noise: 0,
            motion_blur: 0,
            gaussian_blur: 0,
            aliasing: 0,
            inpainting: 0,
        }
    }

    #[test]
    fn all_zero_weights_are_an_error() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        assert_eq!(sample_weighted(&zero(), &mut rng), Err(DegradationError::ZeroWeights));
    }

    #[test]
    fn composition_json_defaults_and_round_trip() {
        let default = Composition::default();
        assert_eq!(default.total(), 3000);
        let json = serde_json::to_string(&default).unwrap();
        assert_eq!(serde_json::from_str::<Composition>(&json).unwrap(), default);
        let partial: Composition = serde_json::from_str(r#"{"aliasing": 0}"#).unwrap();
        assert_eq!(partial, Composition { aliasing: 0, ..default });
    }

    #[test]
    fn draws_are_reproducible_from_a_seed() {
        let draw = |seed| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            (0..20).map(|_| Composition::default().sample(&mut rng).unwrap()).collect::<Vec<_>>()
        };
        assert_eq!(draw(9), draw(9));
        assert_ne!(draw(9), draw(10));
    }
}
