//! Restormer (Zamir et al., CVPR 2022): a 4-level encoder–decoder of transformer blocks, here with
//! an optional inpainting mask as a 4th input channel and mask-aware blocks at every level.

use std::fmt;
use std::str::FromStr;

use burn::nn::conv::Conv2d;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::RestoraBackend;
use crate::layers::{
    conv, conv3x3, forward_blocks, pointwise, Downsample, LayerNormKind, LevelMask, OverlapPatchEmbed,
    OverlapPatchEmbedConfig, ResampleConfig, TransformerBlock, TransformerBlockConfig, Upsample,
};

/// The shapes Restora ships.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// The official model: dim 48, blocks [4, 6, 6, 8], refinement 4 (26,126,644 parameters).
    Base,
    /// For the browser: dim 24, blocks [2, 3, 3, 4], refinement 2 (3,813,230 parameters).
    Small,
    /// For tests: dim 8, blocks [1, 1, 1, 1], refinement 1.
    Tiny,
}

impl Preset {
    pub const ALL: [Preset; 3] = [Preset::Base, Preset::Small, Preset::Tiny];
}

impl fmt::Display for Preset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Preset::Base => "base",
            Preset::Small => "small",
            Preset::Tiny => "tiny",
        })
    }
}

impl FromStr for Preset {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "base" => Ok(Preset::Base),
            "small" => Ok(Preset::Small),
            "tiny" => Ok(Preset::Tiny),
            other => Err(format!("unknown preset '{other}' (expected base, small or tiny)")),
        }
    }
}

/// Configuration of [`Restormer`]: the official constructor's arguments plus `mask_aware`.
#[derive(Config, Debug, PartialEq)]
pub struct RestormerConfig {
    /// Feature channels at level 1 (doubled at each level down).
    #[config(default = 48)]
    pub dim: usize,
    /// Transformer blocks at levels 1–4 (level 4 is the latent).
    #[config(default = "[4, 6, 6, 8]")]
    pub num_blocks: [usize; 4],
    /// Blocks of the refinement stage at full resolution.
    #[config(default = 4)]
    pub num_refinement_blocks: usize,
    /// Attention heads at levels 1–4.
    #[config(default = "[1, 2, 4, 8]")]
    pub heads: [usize; 4],
    /// GDFN expansion factor.
    #[config(default = 2.66)]
    pub ffn_expansion_factor: f64,
    /// LayerNorm variant.
    #[config(default = "LayerNormKind::WithBias")]
    pub layer_norm: LayerNormKind,
    /// Image channels in and out.
    #[config(default = 3)]
    pub channels: usize,
    /// Takes the inpainting mask as an extra input channel (the foundation model); the
    /// mask-aware blocks work either way.
    #[config(default = false)]
    pub mask_aware: bool,
}

impl RestormerConfig {
    /// One of the shipped shapes (the official, mask-free form; see [`Self::with_mask_aware`]).
    pub fn preset(preset: Preset) -> Self {
        match preset {
            Preset::Base => Self::new(),
            Preset::Small => Self::new().with_dim(24).with_num_blocks([2, 3, 3, 4]).with_num_refinement_blocks(2),
            Preset::Tiny => Self::new().with_dim(8).with_num_blocks([1, 1, 1, 1]).with_num_refinement_blocks(1),
        }
    }

    /// Channels the patch embedding takes.
    pub fn input_channels(&self) -> usize {
        self.channels + usize::from(self.mask_aware)
    }

    /// Checks the shape makes sense before anything is allocated.
    pub fn validate(&self) -> Result<(), String> {
        if self.dim == 0 || self.channels == 0 {
            return Err("dim and channels must be positive".into());
        }
        for (level, &heads) in self.heads.iter().enumerate() {
            let dim = self.dim << level;
            if heads == 0 || dim % heads != 0 {
                return Err(format!("level {} has {dim} channels, not divisible by {heads} heads", level + 1));
            }
        }
        // Decoder levels 1 and refinement run at 2·dim with heads[0].
        if (2 * self.dim) % self.heads[0] != 0 {
            return Err(format!("{} channels not divisible by {} heads", 2 * self.dim, self.heads[0]));
        }
        if !(self.ffn_expansion_factor > 0.0) {
            return Err("ffn_expansion_factor must be positive".into());
        }
        Ok(())
    }

    pub fn init<B: Backend>(&self, device: &B::Device) -> Restormer<B> {
        let dim = self.dim;
        let block = |dim: usize, heads: usize| {
            TransformerBlockConfig::new(dim, heads)
                .with_ffn_expansion(self.ffn_expansion_factor)
                .with_layer_norm(self.layer_norm)
        };
        let [n1, n2, n3, n4] = self.num_blocks;
        let [h1, h2, h3, h4] = self.heads;
        Restormer {
            patch_embed: OverlapPatchEmbedConfig::new(self.input_channels(), dim).init(device),
            encoder_level1: block(dim, h1).init_many(n1, device),
            down1_2: ResampleConfig::new(dim).init_down(device),
            encoder_level2: block(dim * 2, h2).init_many(n2, device),
            down2_3: ResampleConfig::new(dim * 2).init_down(device),
            encoder_level3: block(dim * 4, h3).init_many(n3, device),
            down3_4: ResampleConfig::new(dim * 4).init_down(device),
            latent: block(dim * 8, h4).init_many(n4, device),
            up4_3: ResampleConfig::new(dim * 8).init_up(device),
            reduce_chan_level3: conv(dim * 8, dim * 4, 1, 1, device),
            decoder_level3: block(dim * 4, h3).init_many(n3, device),
            up3_2: ResampleConfig::new(dim * 4).init_up(device),
            reduce_chan_level2: conv(dim * 4, dim * 2, 1, 1, device),
            decoder_level2: block(dim * 2, h2).init_many(n2, device),
            up2_1: ResampleConfig::new(dim * 2).init_up(device),
            decoder_level1: block(dim * 2, h1).init_many(n1, device),
            refinement: block(dim * 2, h1).init_many(self.num_refinement_blocks, device),
            output: conv(dim * 2, self.channels, 3, 1, device),
            channels: self.channels,
            mask_aware: self.mask_aware,
        }
    }

    /// Number of parameters, computed from the shape alone.
    pub fn num_params(&self) -> usize {
        let dim = self.dim;
        let hidden = |d: usize| (d as f64 * self.ffn_expansion_factor) as usize;
        let norm = |d: usize| match self.layer_norm {
            LayerNormKind::WithBias => 2 * d,
            LayerNormKind::BiasFree => d,
        };
        let block = |d: usize, heads: usize| {
            let h = hidden(d);
            2 * norm(d) + heads + 3 * d * d + 3 * d * 9 + d * d + 2 * h * d + 2 * h * 9 + h * d
        };
        let [n1, n2, n3, n4] = self.num_blocks;
        let [h1, h2, h3, h4] = self.heads;
        self.input_channels() * dim * 9
            + n1 * block(dim, h1)
            + dim * dim / 2 * 9
            + n2 * block(dim * 2, h2)
            + dim * 2 * dim * 9
            + n3 * block(dim * 4, h3)
            + dim * 4 * dim * 2 * 9
            + n4 * block(dim * 8, h4)
            + dim * 8 * dim * 16 * 9
            + dim * 8 * dim * 4
            + n3 * block(dim * 4, h3)
            + dim * 4 * dim * 8 * 9
            + dim * 4 * dim * 2
            + n2 * block(dim * 2, h2)
            + dim * 2 * dim * 4 * 9
            + (n1 + self.num_refinement_blocks) * block(dim * 2, h1)
            + dim * 2 * self.channels * 9
    }

    /// Multiply–accumulate operations of one forward pass on a `height × width` image.
    pub fn macs(&self, height: usize, width: usize) -> Macs {
        let dim = self.dim as u64;
        let pixels = |level: u32| (height as u64 >> level) * (width as u64 >> level);
        let hidden = |d: u64| (d as f64 * self.ffn_expansion_factor) as u64;
        let block_convs = |d: u64| {
            let h = hidden(d);
            3 * d * d + 3 * d * 9 + d * d + 2 * h * d + 2 * h * 9 + h * d
        };
        // q·kᵀ and attention·v: two (C/heads)² × HW products per head.
        let block_attention = |d: u64, heads: u64| 2 * heads * (d / heads) * (d / heads);
        let [n1, n2, n3, n4] = self.num_blocks.map(|n| n as u64);
        let [h1, h2, h3, h4] = self.heads.map(|h| h as u64);
        let n_full = n1 + self.num_refinement_blocks as u64;
        let convolutions = pixels(0) * (self.input_channels() as u64 * dim * 9)
            + pixels(0) * (n1 * block_convs(dim) + dim * dim / 2 * 9)
            + pixels(1)
                * (2 * n2 * block_convs(dim * 2) + dim * 2 * dim * 9 + dim * 4 * dim * 2 + dim * 2 * dim * 4 * 9)
            + pixels(2)
                * (2 * n3 * block_convs(dim * 4) + dim * 4 * dim * 2 * 9 + dim * 8 * dim * 4 + dim * 4 * dim * 8 * 9)
            + pixels(3) * (n4 * block_convs(dim * 8) + dim * 8 * dim * 16 * 9)
            + pixels(0) * (n_full * block_convs(dim * 2) + dim * 2 * self.channels as u64 * 9);
        let attention = pixels(0) * (n1 * block_attention(dim, h1) + n_full * block_attention(dim * 2, h1))
            + pixels(1) * 2 * n2 * block_attention(dim * 2, h2)
            + pixels(2) * 2 * n3 * block_attention(dim * 4, h3)
            + pixels(3) * n4 * block_attention(dim * 8, h4);
        Macs { convolutions, attention }
    }
}

/// Cost of one forward pass, in multiply–accumulates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Macs {
    /// Every convolution: what the paper's 140.99 G (`base`, 256²) counts.
    pub convolutions: u64,
    /// The attention matrix products, which convolution-only counters leave out.
    pub attention: u64,
}

impl Macs {
    pub fn total(&self) -> u64 {
        self.convolutions + self.attention
    }
}

/// Restormer with mask-aware blocks. Field names are the official state-dict keys.
#[derive(Module, Debug)]
pub struct Restormer<B: Backend> {
    pub patch_embed: OverlapPatchEmbed<B>,
    pub encoder_level1: Vec<TransformerBlock<B>>,
    pub down1_2: Downsample<B>,
    pub encoder_level2: Vec<TransformerBlock<B>>,
    pub down2_3: Downsample<B>,
    pub encoder_level3: Vec<TransformerBlock<B>>,
    pub down3_4: Downsample<B>,
    pub latent: Vec<TransformerBlock<B>>,
    pub up4_3: Upsample<B>,
    pub reduce_chan_level3: Conv2d<B>,
    pub decoder_level3: Vec<TransformerBlock<B>>,
    pub up3_2: Upsample<B>,
    pub reduce_chan_level2: Conv2d<B>,
    pub decoder_level2: Vec<TransformerBlock<B>>,
    pub up2_1: Upsample<B>,
    pub decoder_level1: Vec<TransformerBlock<B>>,
    pub refinement: Vec<TransformerBlock<B>>,
    pub output: Conv2d<B>,
    pub channels: usize,
    pub mask_aware: bool,
}

/// Every stage's output, named as the official modules (for tests against the reference).
pub type Stages<B> = Vec<(&'static str, Tensor<B, 4>)>;

impl<B: RestoraBackend> Restormer<B> {
    /// Restores an image.
    ///
    /// # Shapes
    /// - image: `[B, channels, H, W]`, H and W multiples of 8 (see `inference` for any size)
    /// - mask: `[B, 1, H, W]`, 1 = missing pixel; `None` means nothing is missing
    /// - output: `[B, channels, H, W]`
    pub fn forward(&self, image: Tensor<B, 4>, mask: Option<Tensor<B, 4>>) -> Tensor<B, 4> {
        self.forward_stages(image, mask, None)
    }

    /// [`Self::forward`], recording every stage's output into `stages` when given.
    pub fn forward_stages(
        &self,
        image: Tensor<B, 4>,
        mask: Option<Tensor<B, 4>>,
        mut stages: Option<&mut Stages<B>>,
    ) -> Tensor<B, 4> {
        let [b, _, h, w] = image.dims();
        let mut record = |name: &'static str, x: &Tensor<B, 4>| {
            if let Some(stages) = stages.as_deref_mut() {
                stages.push((name, x.clone()));
            }
        };
        let masks: Option<[LevelMask<B>; 4]> =
            mask.as_ref().map(|m| [0, 1, 2, 3].map(|level| LevelMask::at_level(m, level)));
        let level = |l: usize| masks.as_ref().map(|m| &m[l]);

        let input = if self.mask_aware {
            let mask = mask.unwrap_or_else(|| Tensor::zeros([b, 1, h, w], &image.device()));
            Tensor::cat(vec![image.clone(), mask], 1)
        } else {
            image.clone()
        };

        let x = self.patch_embed.forward(input);
        record("patch_embed", &x);
        let enc1 = forward_blocks(&self.encoder_level1, x, level(0));
        record("encoder_level1", &enc1);
        let x = self.down1_2.forward(enc1.clone());
        record("down1_2", &x);
        let enc2 = forward_blocks(&self.encoder_level2, x, level(1));
        record("encoder_level2", &enc2);
        let x = self.down2_3.forward(enc2.clone());
        record("down2_3", &x);
        let enc3 = forward_blocks(&self.encoder_level3, x, level(2));
        record("encoder_level3", &enc3);
        let x = self.down3_4.forward(enc3.clone());
        record("down3_4", &x);
        let latent = forward_blocks(&self.latent, x, level(3));
        record("latent", &latent);

        let x = self.up4_3.forward(latent);
        record("up4_3", &x);
        let x = pointwise(&self.reduce_chan_level3, Tensor::cat(vec![x, enc3], 1));
        record("reduce_chan_level3", &x);
        let x = forward_blocks(&self.decoder_level3, x, level(2));
        record("decoder_level3", &x);
        let x = self.up3_2.forward(x);
        record("up3_2", &x);
        let x = pointwise(&self.reduce_chan_level2, Tensor::cat(vec![x, enc2], 1));
        record("reduce_chan_level2", &x);
        let x = forward_blocks(&self.decoder_level2, x, level(1));
        record("decoder_level2", &x);
        let x = self.up2_1.forward(x);
        record("up2_1", &x);
        // Level 1 has no channel reduction: the decoder runs at 2·dim.
        let x = forward_blocks(&self.decoder_level1, Tensor::cat(vec![x, enc1], 1), level(0));
        record("decoder_level1", &x);
        let x = forward_blocks(&self.refinement, x, level(0));
        record("refinement", &x);
        let x = conv3x3(&self.output, x);
        record("output", &x);
        x + image
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn parameter_counts_match_the_official_models() {
        assert_eq!(RestormerConfig::preset(Preset::Base).num_params(), 26_126_644);
        assert_eq!(RestormerConfig::preset(Preset::Small).num_params(), 3_813_230);
        let biasfree = RestormerConfig::preset(Preset::Base).with_layer_norm(LayerNormKind::BiasFree);
        assert_eq!(biasfree.num_params(), 26_111_668);
    }

    #[test]
    fn base_convolutions_cost_what_the_paper_reports() {
        // Restormer's paper: 140.99 G MACs at 256×256, counted over convolutions.
        let macs = RestormerConfig::preset(Preset::Base).macs(256, 256);
        assert_eq!((macs.convolutions as f64 / 1e7).round() / 100.0, 140.99);
        assert!(macs.attention > 0 && macs.attention < macs.convolutions / 5);
    }

    #[test]
    fn instantiated_base_has_the_official_parameter_count() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Base).init::<TestBackend>(&device);
        assert_eq!(model.num_params(), 26_126_644);
        let tiny = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
        assert_eq!(tiny.init::<TestBackend>(&device).num_params(), tiny.num_params());
    }

    #[test]
    fn every_stage_has_the_expected_shape() {
        let device = Default::default();
        let config = RestormerConfig::preset(Preset::Tiny);
        let model = config.init::<TestBackend>(&device);
        let mut stages = Vec::new();
        let out = model.forward_stages(Tensor::zeros([2, 3, 16, 24], &device), None, Some(&mut stages));
        assert_eq!(out.dims(), [2, 3, 16, 24]);
        let shapes: Vec<(&str, [usize; 4])> = stages.iter().map(|(n, t)| (*n, t.dims())).collect();
        let d = config.dim;
        assert_eq!(
            shapes,
            vec![
                ("patch_embed", [2, d, 16, 24]),
                ("encoder_level1", [2, d, 16, 24]),
                ("down1_2", [2, 2 * d, 8, 12]),
                ("encoder_level2", [2, 2 * d, 8, 12]),
                ("down2_3", [2, 4 * d, 4, 6]),
                ("encoder_level3", [2, 4 * d, 4, 6]),
                ("down3_4", [2, 8 * d, 2, 3]),
                ("latent", [2, 8 * d, 2, 3]),
                ("up4_3", [2, 4 * d, 4, 6]),
                ("reduce_chan_level3", [2, 4 * d, 4, 6]),
                ("decoder_level3", [2, 4 * d, 4, 6]),
                ("up3_2", [2, 2 * d, 8, 12]),
                ("reduce_chan_level2", [2, 2 * d, 8, 12]),
                ("decoder_level2", [2, 2 * d, 8, 12]),
                ("up2_1", [2, d, 16, 24]),
                ("decoder_level1", [2, 2 * d, 16, 24]),
                ("refinement", [2, 2 * d, 16, 24]),
                ("output", [2, 3, 16, 24]),
            ]
        );
    }

    #[test]
    fn zero_mask_equals_no_mask_for_the_whole_network() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true).init::<TestBackend>(&device);
        let image = Tensor::<TestBackend, 4>::random([1, 3, 16, 16], burn::tensor::Distribution::Default, &device);
        let plain = model.forward(image.clone(), None);
        let zeros = model.forward(image, Some(Tensor::zeros([1, 1, 16, 16], &device)));
        plain.into_data().assert_eq(&zeros.into_data(), true);
    }
}
