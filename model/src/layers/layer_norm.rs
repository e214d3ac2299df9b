use burn::module::Param;
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use crate::kernels::{self, RestoraBackend};

/// Which LayerNorm Restormer uses: the official deraining/deblurring models use `WithBias`,
/// the denoising models `BiasFree`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LayerNormKind {
    #[default]
    WithBias,
    BiasFree,
}

/// Configuration of [`ChannelLayerNorm`].
#[derive(Config, Debug)]
pub struct ChannelLayerNormConfig {
    /// Number of channels normalised.
    pub channels: usize,
    /// With or without a bias (and mean subtraction).
    #[config(default = "LayerNormKind::WithBias")]
    pub kind: LayerNormKind,
}

/// LayerNorm over the channels of a `[B, C, H, W]` map (burn's `LayerNorm` normalises the
/// last dimension instead).
///
/// The parameters sit under `body` so the key names are the official ones
/// (`norm1.body.weight`, `norm1.body.bias`).
#[derive(Module, Debug)]
pub struct ChannelLayerNorm<B: Backend> {
    pub body: LayerNormBody<B>,
}

/// Parameters of a [`ChannelLayerNorm`]: `weight` `[C]`, and `bias` `[C]` for `WithBias`.
#[derive(Module, Debug)]
pub struct LayerNormBody<B: Backend> {
    pub weight: Param<Tensor<B, 1>>,
    pub bias: Option<Param<Tensor<B, 1>>>,
}

/// The official epsilon.
const EPSILON: f64 = 1e-5;

impl ChannelLayerNormConfig {
    pub fn init<B: Backend>(&self, device: &B::Device) -> ChannelLayerNorm<B> {
        let weight = Param::from_tensor(Tensor::ones([self.channels], device));
        let bias = match self.kind {
            LayerNormKind::WithBias => Some(Param::from_tensor(Tensor::zeros([self.channels], device))),
            LayerNormKind::BiasFree => None,
        };
        ChannelLayerNorm { body: LayerNormBody { weight, bias } }
    }
}

impl<B: RestoraBackend> ChannelLayerNorm<B> {
    /// # Shapes
    /// - input: `[B, C, H, W]`
    /// - output: `[B, C, H, W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        // BiasFree (no bias) keeps the mean in the numerator, as the official code does.
        kernels::channel_layer_norm(x, self.body.weight.val(), self.body.bias.as_ref().map(|b| b.val()), EPSILON)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn with_bias_normalises_each_pixel_over_channels() {
        let device = Default::default();
        let norm = ChannelLayerNormConfig::new(4).init::<TestBackend>(&device);
        let x = Tensor::<TestBackend, 4>::random([2, 4, 3, 5], burn::tensor::Distribution::Normal(2.0, 3.0), &device);
        let y = norm.forward(x);
        let (var, mean) = y.var_mean_bias(1);
        assert!(mean.abs().max().into_scalar() < 1e-5);
        assert!((var - 1.0).abs().max().into_scalar() < 1e-3);
    }

    #[test]
    fn bias_free_keeps_the_mean() {
        let device = Default::default();
        let norm = ChannelLayerNormConfig::new(2).with_kind(LayerNormKind::BiasFree).init::<TestBackend>(&device);
        // Channels (1, 3): mean 2, biased variance 1 → output (1, 3) / sqrt(1 + eps).
        let x = Tensor::<TestBackend, 1>::from_floats([1.0, 3.0], &device).reshape([1, 2, 1, 1]);
        let y: Vec<f32> = norm.forward(x).into_data().to_vec().unwrap();
        assert!((y[0] - 1.0).abs() < 1e-4 && (y[1] - 3.0).abs() < 1e-4);
        assert!(norm.body.bias.is_none());
    }
}
