//! Gated-Dconv Feed-forward Network (GDFN), and its mask-aware form.
//!
//! GDFN (Zamir et al., Fig. 2b): 1×1 conv to 2×hidden, 3×3 depth-wise conv, split in two,
//! `GELU(x1) · x2`, 1×1 conv back; hidden = ⌊dim · expansion⌋.
//!
//! Mask-aware form: the depth-wise 3×3 conv becomes a *partial* convolution (Liu et al., 2018):
//! features at missing pixels are zeroed before it and each output is rescaled by
//! `9 / (number of valid pixels in its window)`, so holes neither leak into nor dilute their
//! neighbours' gates. With an all-zero mask both factors are exactly 1: the plain GDFN.

use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::{conv, LevelMask};
use crate::kernels::{self, RestoraBackend};

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Channels of the input and output.
    pub dim: usize,
    /// Hidden channels = ⌊dim · expansion⌋ (2.66 in the paper).
    #[config(default = 2.66)]
    pub expansion: f64,
}

/// GDFN, mask-aware. Parameter names are the official ones.
#[derive(Module, Debug)]
pub struct FeedForward<B: Backend> {
    /// 1×1, `[2·hidden, C, 1, 1]`.
    pub project_in: Conv2d<B>,
    /// 3×3 depth-wise, `[2·hidden, 1, 3, 3]`.
    pub dwconv: Conv2d<B>,
    /// 1×1, `[C, hidden, 1, 1]`.
    pub project_out: Conv2d<B>,
}

impl FeedForwardConfig {
    /// ⌊dim · expansion⌋, as Python's `int(dim * ffn_expansion_factor)`.
    pub fn hidden(&self) -> usize {
        (self.dim as f64 * self.expansion) as usize
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> FeedForward<B> {
        let hidden = self.hidden();
        FeedForward {
            project_in: conv(self.dim, hidden * 2, 1, 1, device),
            dwconv: conv(hidden * 2, hidden * 2, 3, hidden * 2, device),
            project_out: conv(hidden, self.dim, 1, 1, device),
        }
    }
}

impl<B: RestoraBackend> FeedForward<B> {
    /// # Shapes
    /// - x: `[B, C, H, W]`
    /// - mask: the level's mask, `[B, 1, H, W]`
    /// - output: `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, mask: Option<&LevelMask<B>>) -> Tensor<B, 4> {
        let x = super::pointwise(&self.project_in, x);
        let x = match mask {
            Some(mask) => super::conv3x3(&self.dwconv, x * mask.valid.clone()) * mask.partial_scale.clone(),
            None => super::conv3x3(&self.dwconv, x),
        };
        // GELU(x₁) · x₂ over the two halves of the channels.
        super::pointwise(&self.project_out, kernels::gelu_gate(x))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;
    use burn::tensor::Distribution;

    #[test]
    fn hidden_width_truncates_like_python() {
        assert_eq!(FeedForwardConfig::new(48).hidden(), 127);
        assert_eq!(FeedForwardConfig::new(24).hidden(), 63);
        assert_eq!(FeedForwardConfig::new(96).hidden(), 255);
    }

    #[test]
    fn masked_pixels_do_not_leak_into_valid_neighbours() {
        let device = Default::default();
        let ffn = FeedForwardConfig::new(4).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::random([1, 4, 6, 6], Distribution::Normal(0.0, 1.0), &device);
        let mut hole = vec![0.0f32; 36];
        hole[2 * 6 + 2] = 1.0;
        let mask =
            LevelMask::new(Tensor::<TestBackend, 1>::from_floats(hole.as_slice(), &device).reshape([1, 1, 6, 6]));
        let bump = Tensor::<TestBackend, 4>::zeros([1, 4, 6, 6], &device)
            .slice_assign([0..1, 0..4, 2..3, 2..3], Tensor::ones([1, 4, 1, 1], &device) * 50.0);
        let a = ffn.forward(x.clone(), Some(&mask)).slice([0..1, 0..4, 1..4, 1..4]);
        let b = ffn.forward(x + bump, Some(&mask)).slice([0..1, 0..4, 1..4, 1..4]);
        // The bumped pixel's own output may change (it is in the hole); its neighbours must not.
        let diff = (a - b).abs().reshape([4, 9]).slice([0..4, 0..9]);
        let values: Vec<f32> = diff.into_data().to_vec().unwrap();
        for (i, v) in values.iter().enumerate() {
            if i % 9 != 4 {
                assert!(*v < 1e-5, "neighbour {i} changed by {v}");
            }
        }
    }
}
