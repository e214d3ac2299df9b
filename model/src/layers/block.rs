use burn::prelude::*;

use crate::kernels::RestoraBackend;

use super::{
    Attention, AttentionConfig, ChannelLayerNorm, ChannelLayerNormConfig, FeedForward, FeedForwardConfig,
    LayerNormKind, LevelMask,
};

/// Configuration of [`TransformerBlock`].
#[derive(Config, Debug)]
pub struct TransformerBlockConfig {
    /// Channels.
    pub dim: usize,
    /// Attention heads.
    pub heads: usize,
    /// GDFN expansion factor.
    #[config(default = 2.66)]
    pub ffn_expansion: f64,
    /// LayerNorm variant.
    #[config(default = "LayerNormKind::WithBias")]
    pub layer_norm: LayerNormKind,
}

/// One Restormer transformer block: `x + MDTA(LN(x))`, then `x + GDFN(LN(x))`.
#[derive(Module, Debug)]
pub struct TransformerBlock<B: Backend> {
    pub norm1: ChannelLayerNorm<B>,
    pub attn: Attention<B>,
    pub norm2: ChannelLayerNorm<B>,
    pub ffn: FeedForward<B>,
}

impl TransformerBlockConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> TransformerBlock<B> {
        let norm = ChannelLayerNormConfig::new(self.dim).with_kind(self.layer_norm);
        TransformerBlock {
            norm1: norm.init(device),
            attn: AttentionConfig::new(self.dim, self.heads).init(device),
            norm2: norm.init(device),
            ffn: FeedForwardConfig::new(self.dim).with_expansion(self.ffn_expansion).init(device),
        }
    }

    /// `count` blocks, as one level of the U-Net holds them.
    pub fn init_many<B: Backend>(&self, count: usize, device: &B::Device) -> Vec<TransformerBlock<B>> {
        (0..count).map(|_| self.init(device)).collect()
    }
}

impl<B: RestoraBackend> TransformerBlock<B> {
    /// # Shapes
    /// - x: `[B, C, H, W]`
    /// - mask: the level's mask, `[B, 1, H, W]`
    /// - output: `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, mask: Option<&LevelMask<B>>) -> Tensor<B, 4> {
        let x = x.clone() + self.attn.forward(self.norm1.forward(x), mask);
        x.clone() + self.ffn.forward(self.norm2.forward(x), mask)
    }
}

/// Runs a level's blocks in sequence.
pub fn forward_blocks<B: RestoraBackend>(
    blocks: &[TransformerBlock<B>],
    x: Tensor<B, 4>,
    mask: Option<&LevelMask<B>>,
) -> Tensor<B, 4> {
    blocks.iter().fold(x, |x, block| block.forward(x, mask))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;
    use burn::tensor::Distribution;

    #[test]
    fn all_zero_mask_is_exactly_the_plain_block() {
        let device = Default::default();
        let block = TransformerBlockConfig::new(8, 2).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::random([2, 8, 6, 10], Distribution::Normal(0.0, 1.0), &device);
        let zeros = LevelMask::new(Tensor::zeros([2, 1, 6, 10], &device));
        let plain = block.forward(x.clone(), None);
        let masked = block.forward(x, Some(&zeros));
        plain.into_data().assert_eq(&masked.into_data(), true);
    }

    #[test]
    fn block_keeps_shape() {
        let device = Default::default();
        let block =
            TransformerBlockConfig::new(8, 4).with_layer_norm(LayerNormKind::BiasFree).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::zeros([1, 8, 5, 7], &device);
        assert_eq!(block.forward(x, None).dims(), [1, 8, 5, 7]);
    }
}
