use burn::prelude::*;
use burn::tensor::module::avg_pool2d;

/// The inpainting mask as the blocks of one U-Net level see it.
///
/// Built once per level from the full-resolution mask (1 = missing), average-pooled to the
/// level's resolution, so a coarse pixel that is half missing has valid weight 0.5.
#[derive(Debug, Clone)]
pub struct LevelMask<B: Backend> {
    /// `1 − mask`, `[B, 1, H, W]`: how much each pixel counts in the attention statistics.
    pub valid: Tensor<B, 4>,
    /// `9 / valid pixels in the 3×3 window`, `[B, 1, H, W]`: the partial-convolution rescaling.
    pub partial_scale: Tensor<B, 4>,
}

impl<B: Backend> LevelMask<B> {
    /// From a mask at this level's resolution, `[B, 1, H, W]`, 1 = missing.
    pub fn new(mask: Tensor<B, 4>) -> Self {
        // Outside the image counts as valid, as zero padding does in the plain convolution;
        // so an all-zero mask gives exactly 9 / 9 = 1 everywhere.
        let missing_in_window = avg_pool2d(mask.clone(), [3, 3], [1, 1], [1, 1], true, false) * 9.0;
        let valid_in_window = missing_in_window.neg().add_scalar(9.0).clamp_min(1.0);
        // Division, not `9 · (1/n)`, so n = 9 gives exactly 1.
        let nine = valid_in_window.ones_like() * 9.0;
        Self { valid: mask.neg().add_scalar(1.0), partial_scale: nine / valid_in_window }
    }

    /// The mask of level `level` (0 = full resolution) from the full-resolution mask, whose
    /// sides must be multiples of `2^level`.
    pub fn at_level(full: &Tensor<B, 4>, level: usize) -> Self {
        let factor = 1 << level;
        if factor == 1 {
            return Self::new(full.clone());
        }
        Self::new(avg_pool2d(full.clone(), [factor, factor], [factor, factor], [0, 0], true, false))
    }
}
