//! Demo mode's degradations: one strength slider (0–100) mapped onto each degradation's
//! documented parameter range in the model crate, so the browser damages images exactly as
//! training and `train-native degrade` do (same code, same seed, same bytes).

use restora_model::degradations::{
    Aliasing, Degradation, GaussianBlur, GaussianNoise, MotionBlur, MotionKernel, PoissonNoise, SaltAndPepper,
    Scratches,
};

/// The seed demo mode degrades with (shown in the UI, so the CLI can replay it).
pub const DEMO_SEED: u64 = 1;

/// The degradations offered in demo mode, in the selector's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DemoKind {
    GaussianNoise,
    PoissonNoise,
    SaltAndPepper,
    GaussianBlur,
    MotionBlur,
    Aliasing,
    Scratches,
}

impl DemoKind {
    pub const ALL: [DemoKind; 7] = [
        DemoKind::GaussianNoise,
        DemoKind::PoissonNoise,
        DemoKind::SaltAndPepper,
        DemoKind::GaussianBlur,
        DemoKind::MotionBlur,
        DemoKind::Aliasing,
        DemoKind::Scratches,
    ];

    /// The option value: the degradation's `kind` tag in the model crate's JSON.
    pub fn name(self) -> &'static str {
        match self {
            DemoKind::GaussianNoise => "gaussian_noise",
            DemoKind::PoissonNoise => "poisson_noise",
            DemoKind::SaltAndPepper => "salt_and_pepper",
            DemoKind::GaussianBlur => "gaussian_blur",
            DemoKind::MotionBlur => "motion_blur",
            DemoKind::Aliasing => "aliasing",
            DemoKind::Scratches => "scratches",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            DemoKind::GaussianNoise => "Gaussian noise",
            DemoKind::PoissonNoise => "Poisson (shot) noise",
            DemoKind::SaltAndPepper => "Salt-and-pepper noise",
            DemoKind::GaussianBlur => "Gaussian blur",
            DemoKind::MotionBlur => "Motion blur (camera shake)",
            DemoKind::Aliasing => "Aliasing (shrunk and enlarged)",
            DemoKind::Scratches => "Scratches (inpainting)",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// The degradation at `strength` in `[0, 100]` (clamped): 0 is the mildest value of the
    /// parameter's documented range, 100 the strongest.
    pub fn degradation(self, strength: f32) -> Degradation {
        let s = (strength / 100.0).clamp(0.0, 1.0);
        let lerp = |range: std::ops::RangeInclusive<f32>, t: f32| range.start() + (range.end() - range.start()) * t;
        match self {
            DemoKind::GaussianNoise => {
                Degradation::GaussianNoise(GaussianNoise { sigma: lerp(GaussianNoise::SIGMA_RANGE, s) })
            }
            // Fewer photons is noisier.
            DemoKind::PoissonNoise => {
                Degradation::PoissonNoise(PoissonNoise { peak: lerp(PoissonNoise::PEAK_RANGE, 1.0 - s) })
            }
            DemoKind::SaltAndPepper => {
                Degradation::SaltAndPepper(SaltAndPepper { ratio: lerp(SaltAndPepper::RATIO_RANGE, s) })
            }
            DemoKind::GaussianBlur => {
                Degradation::GaussianBlur(GaussianBlur { sigma: lerp(GaussianBlur::SIGMA_RANGE, s) })
            }
            DemoKind::MotionBlur => Degradation::MotionBlur(MotionBlur {
                length: lerp(MotionBlur::LENGTH_RANGE, s),
                angle: None,
                kernel: MotionKernel::Trajectory,
            }),
            // A smaller factor loses more.
            DemoKind::Aliasing => {
                Degradation::Aliasing(Aliasing { factor: lerp(Aliasing::FACTOR_RANGE, 1.0 - s), ..Aliasing::default() })
            }
            DemoKind::Scratches => {
                let (lo, hi) = (*Scratches::STROKES_RANGE.start(), *Scratches::STROKES_RANGE.end());
                Degradation::Scratches(Scratches {
                    strokes: lo + ((hi - lo) as f32 * s).round() as u32,
                    ..Scratches::default()
                })
            }
        }
    }

    /// The parameter at this strength, in words (`σ = 27.5/255`).
    pub fn describe(self, strength: f32) -> String {
        match self.degradation(strength) {
            Degradation::GaussianNoise(d) => format!("σ = {:.1}/255", d.sigma),
            Degradation::PoissonNoise(d) => format!("peak = {:.0} photons", d.peak),
            Degradation::SaltAndPepper(d) => format!("{:.1} % of pixels", d.ratio * 100.0),
            Degradation::GaussianBlur(d) => format!("σ = {:.2} px", d.sigma),
            Degradation::MotionBlur(d) => format!("path of {:.1} px", d.length),
            Degradation::Aliasing(d) => format!("shrunk to {:.0} %", d.factor * 100.0),
            Degradation::Scratches(d) => format!("{} strokes", d.strokes),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use restora_model::degradations::Task;

    #[test]
    fn every_strength_is_valid_and_the_ends_are_the_range_ends() {
        for kind in DemoKind::ALL {
            for strength in [-10.0, 0.0, 33.3, 50.0, 100.0, 150.0] {
                kind.degradation(strength).validate().unwrap_or_else(|e| panic!("{kind:?} at {strength}: {e}"));
            }
            assert_eq!(DemoKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.degradation(50.0).kind(), kind.name());
        }
        assert_eq!(
            DemoKind::GaussianNoise.degradation(100.0),
            Degradation::GaussianNoise(GaussianNoise { sigma: 50.0 })
        );
        assert_eq!(DemoKind::PoissonNoise.degradation(0.0), Degradation::PoissonNoise(PoissonNoise { peak: 100.0 }));
        assert_eq!(DemoKind::Scratches.degradation(100.0).task(), Task::Inpaint);
        assert_eq!(DemoKind::Aliasing.describe(100.0), "shrunk to 25 %");
    }
}
