//! Multi-Dconv Head Transposed Attention (MDTA), and its mask-aware form for inpainting.
//!
//! # MDTA (Zamir et al., CVPR 2022, Fig. 2a)
//! A 1×1 convolution makes q, k, v; a 3×3 depth-wise convolution adds local context. Attention is
//! taken across *channels*, not pixels: per head, q and k are `[C/heads, H·W]`, L2-normalised over
//! the pixels, and the `C/heads × C/heads` map `softmax(q·kᵀ · temperature)` (one learnable
//! temperature per head) mixes the channels of v. Cost is linear in the number of pixels.
//!
//! # Mask-aware attention (the report's change for inpainting)
//! Each entry of `q·kᵀ` is a sum over pixels. Pixels inside a hole hold no information, so they
//! must not vote on how channels relate: before the L2 normalisation, q and k are multiplied by
//! the valid weight of each pixel (`1 − mask`, fractional at coarse levels where a pooled pixel is
//! partly missing). The attention map is thus computed from valid pixels only, and the map is then
//! applied to v at *every* pixel, holes included, which is how hole features get filled. This adds
//! no parameter: with no mask, or an all-zero mask (weights exactly 1), the block computes exactly
//! the plain Restormer block, so official checkpoints load and behave unchanged, and one set of
//! weights serves denoising, deblurring, anti-aliasing (mask all zero) and inpainting.
//! The feed-forward's counterpart is in `feed_forward.rs`.

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::{conv, LevelMask};
use crate::kernels::{self, RestoraBackend};

/// Configuration of [`Attention`].
#[derive(Config, Debug)]
pub struct AttentionConfig {
    /// Channels of the input and output.
    pub dim: usize,
    /// Number of heads; must divide `dim`.
    pub heads: usize,
}

/// MDTA, mask-aware. Parameter names are the official ones.
#[derive(Module, Debug)]
pub struct Attention<B: Backend> {
    /// One temperature per head, `[heads, 1, 1]`.
    pub temperature: Param<Tensor<B, 3>>,
    /// 1×1, `[3C, C, 1, 1]`.
    pub qkv: Conv2d<B>,
    /// 3×3 depth-wise, `[3C, 1, 3, 3]`.
    pub qkv_dwconv: Conv2d<B>,
    /// 1×1, `[C, C, 1, 1]`.
    pub project_out: Conv2d<B>,
    pub heads: usize,
}

/// Smallest norm F.normalize divides by.
const NORM_EPSILON: f32 = 1e-12;

impl AttentionConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> Attention<B> {
        let dim = self.dim;
        Attention {
            temperature: Param::from_tensor(Tensor::ones([self.heads, 1, 1], device)),
            qkv: conv(dim, dim * 3, 1, 1, device),
            qkv_dwconv: conv(dim * 3, dim * 3, 3, dim * 3, device),
            project_out: conv(dim, dim, 1, 1, device),
            heads: self.heads,
        }
    }
}

impl<B: RestoraBackend> Attention<B> {
    /// # Shapes
    /// - x: `[B, C, H, W]`
    /// - mask: the level's mask, `[B, 1, H, W]`
    /// - output: `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>, mask: Option<&LevelMask<B>>) -> Tensor<B, 4> {
        let qkv = super::conv3x3(&self.qkv_dwconv, super::pointwise(&self.qkv, x));
        let temperature = self.temperature.val().reshape([self.heads]);
        let valid = mask.map(|mask| mask.valid.clone());
        let out = kernels::channel_attention(qkv, temperature, valid, self.heads, NORM_EPSILON);
        super::pointwise(&self.project_out, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;
    use burn::tensor::Distribution;

    /// Straightforward MDTA on plain vectors, for one image: the reference the tensor code must match.
    fn reference(x: &[f32], c: usize, n: usize, heads: usize, temps: &[f32], valid: &[f32], qkv: &[f32]) -> Vec<f32> {
        // `qkv` is the already-computed [3C, N] q/k/v map.
        let d = c / heads;
        let mut out = vec![0.0; c * n];
        let _ = x;
        for head in 0..heads {
            let row = |part: usize, i: usize, p: usize| qkv[(part * c + head * d + i) * n + p];
            let normalised = |part: usize, i: usize| -> Vec<f32> {
                let values: Vec<f32> = (0..n).map(|p| row(part, i, p) * valid[p]).collect();
                let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt().max(NORM_EPSILON);
                values.iter().map(|v| v / norm).collect()
            };
            for i in 0..d {
                let qi = normalised(0, i);
                let logits: Vec<f32> = (0..d)
                    .map(|j| qi.iter().zip(normalised(1, j)).map(|(a, b)| a * b).sum::<f32>() * temps[head])
                    .collect();
                let max = logits.iter().cloned().fold(f32::MIN, f32::max);
                let exp: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
                let total: f32 = exp.iter().sum();
                for p in 0..n {
                    out[(head * d + i) * n + p] = (0..d).map(|j| exp[j] / total * row(2, j, p)).sum();
                }
            }
        }
        out
    }

    fn check_against_reference(mask: Option<Tensor<TestBackend, 4>>) {
        let device = Default::default();
        let (c, h, w, heads) = (4, 3, 5, 2);
        let mut attention = AttentionConfig::new(c, heads).init::<TestBackend>(&device);
        attention.temperature = Param::from_tensor(Tensor::from_floats([[[0.7]], [[1.9]]], &device));
        // Identity output projection so the test sees the attention itself.
        let eye = Tensor::<TestBackend, 2>::eye(c, &device).reshape([c, c, 1, 1]);
        attention.project_out.weight = Param::from_tensor(eye);
        let x = Tensor::<TestBackend, 4>::random([1, c, h, w], Distribution::Normal(0.0, 1.0), &device);

        let level = mask.clone().map(LevelMask::new);
        let ours: Vec<f32> = attention.forward(x.clone(), level.as_ref()).into_data().to_vec().unwrap();
        let qkv: Vec<f32> =
            attention.qkv_dwconv.forward(attention.qkv.forward(x.clone())).into_data().to_vec().unwrap();
        let valid: Vec<f32> = match mask {
            Some(m) => m.neg().add_scalar(1.0).into_data().to_vec().unwrap(),
            None => vec![1.0; h * w],
        };
        let expected = reference(&[], c, h * w, heads, &[0.7, 1.9], &valid, &qkv);
        for (a, b) in ours.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-5, "{a} vs {b}");
        }
    }

    #[test]
    fn mdta_matches_reference() {
        check_against_reference(None);
    }

    #[test]
    fn masked_attention_matches_reference() {
        let device = Default::default();
        let mask = Tensor::<TestBackend, 1>::from_floats(
            [0.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0],
            &device,
        );
        check_against_reference(Some(mask.reshape([1, 1, 3, 5])));
    }

    #[test]
    fn holes_do_not_change_the_attention_map() {
        // Changing the content of masked pixels must not change the output at valid pixels
        // beyond what the depth-wise 3×3 conv spreads: use a 1-pixel hole far from others
        // and compare outputs at pixels outside the hole's 3×3 neighbourhood's influence on v.
        let device = Default::default();
        let attention = AttentionConfig::new(4, 2).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::random([1, 4, 8, 8], Distribution::Normal(0.0, 1.0), &device);
        // Hole = 5×5 block; perturb only its centre pixel, whose 3×3 neighbourhood stays inside it.
        let mut hole = vec![0.0f32; 64];
        for y in 2..7 {
            for x in 2..7 {
                hole[y * 8 + x] = 1.0;
            }
        }
        let mask =
            LevelMask::new(Tensor::<TestBackend, 1>::from_floats(hole.as_slice(), &device).reshape([1, 1, 8, 8]));
        let bump = Tensor::<TestBackend, 4>::zeros([1, 4, 8, 8], &device)
            .slice_assign([0..1, 0..4, 4..5, 4..5], Tensor::ones([1, 4, 1, 1], &device) * 10.0);
        let a = attention.forward(x.clone(), Some(&mask));
        let b = attention.forward(x + bump, Some(&mask));
        // Outside the 3×3 around the bumped pixel, v is unchanged and so is the attention map.
        let a_corner = a.slice([0..1, 0..4, 0..2, 0..8]);
        let b_corner = b.slice([0..1, 0..4, 0..2, 0..8]);
        assert!((a_corner - b_corner).abs().max().into_scalar() < 1e-5);
    }
}
