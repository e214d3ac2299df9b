use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::conv;
use crate::kernels::RestoraBackend;

/// Configuration of [`OverlapPatchEmbed`].
#[derive(Config, Debug)]
pub struct OverlapPatchEmbedConfig {
    /// Input channels (3 for RGB, 4 for RGB + mask).
    pub channels_in: usize,
    /// Feature channels.
    pub dim: usize,
}

/// Overlapped patch embedding: one 3×3 convolution from pixels to features (`patch_embed.proj`).
#[derive(Module, Debug)]
pub struct OverlapPatchEmbed<B: Backend> {
    /// `[dim, channels_in, 3, 3]`
    pub proj: Conv2d<B>,
}

impl OverlapPatchEmbedConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> OverlapPatchEmbed<B> {
        OverlapPatchEmbed { proj: conv(self.channels_in, self.dim, 3, 1, device) }
    }
}

impl<B: RestoraBackend> OverlapPatchEmbed<B> {
    /// # Shapes
    /// - input: `[B, channels_in, H, W]`
    /// - output: `[B, dim, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        super::conv3x3(&self.proj, x)
    }
}
