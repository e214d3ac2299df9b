use burn::nn::conv::Conv2d;
use burn::prelude::*;

use super::conv;
use crate::kernels::RestoraBackend;

/// Configuration of [`Downsample`] and [`Upsample`].
#[derive(Config, Debug)]
pub struct ResampleConfig {
    /// Channels of the input.
    pub channels: usize,
}

/// Halves the resolution and doubles the channels: 3×3 conv to C/2, then PixelUnshuffle(2).
///
/// The convolution sits in a one-element `body` so the key is the official `down1_2.body.0.weight`.
#[derive(Module, Debug)]
pub struct Downsample<B: Backend> {
    /// `[Conv2d [C/2, C, 3, 3]]`
    pub body: Vec<Conv2d<B>>,
}

/// Doubles the resolution and halves the channels: 3×3 conv to 2C, then PixelShuffle(2).
///
/// Keyed `up4_3.body.0.weight` like the official model.
#[derive(Module, Debug)]
pub struct Upsample<B: Backend> {
    /// `[Conv2d [2C, C, 3, 3]]`
    pub body: Vec<Conv2d<B>>,
}

impl ResampleConfig {
    pub fn init_down<B: Backend>(&self, device: &B::Device) -> Downsample<B> {
        Downsample { body: vec![conv(self.channels, self.channels / 2, 3, 1, device)] }
    }

    pub fn init_up<B: Backend>(&self, device: &B::Device) -> Upsample<B> {
        Upsample { body: vec![conv(self.channels, self.channels * 2, 3, 1, device)] }
    }
}

impl<B: RestoraBackend> Downsample<B> {
    /// # Shapes
    /// - input: `[B, C, H, W]` (H, W even)
    /// - output: `[B, 2C, H/2, W/2]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        pixel_unshuffle(super::conv3x3(&self.body[0], x))
    }
}

impl<B: RestoraBackend> Upsample<B> {
    /// # Shapes
    /// - input: `[B, C, H, W]`
    /// - output: `[B, C/2, 2H, 2W]`
    pub fn forward(&self, x: Tensor<B, 4>) -> Tensor<B, 4> {
        pixel_shuffle(super::conv3x3(&self.body[0], x))
    }
}

/// PyTorch's `PixelUnshuffle(2)`: output channel `c·4 + i·2 + j` holds pixel offset `(i, j)`.
///
/// `[B, C, H, W]` → `[B, 4C, H/2, W/2]`
pub fn pixel_unshuffle<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c, h / 2, 2, w / 2, 2]).permute([0, 1, 3, 5, 2, 4]).reshape([b, c * 4, h / 2, w / 2])
}

/// PyTorch's `PixelShuffle(2)`, the inverse of [`pixel_unshuffle`].
///
/// `[B, 4C, H, W]` → `[B, C, 2H, 2W]`
pub fn pixel_shuffle<B: Backend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [b, c, h, w] = x.dims();
    x.reshape([b, c / 4, 2, 2, h, w]).permute([0, 1, 4, 2, 5, 3]).reshape([b, c / 4, h * 2, w * 2])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn unshuffle_matches_pytorch_layout_and_shuffle_inverts_it() {
        let device = Default::default();
        // One channel, 2×4: values 0..8.
        let x = Tensor::<TestBackend, 1>::from_floats([0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0], &device)
            .reshape([1, 1, 2, 4]);
        let y = pixel_unshuffle(x.clone());
        assert_eq!(y.dims(), [1, 4, 1, 2]);
        // Channel (i, j) holds x[2h + i, 2w + j]: channel 0 = [0, 2], 1 = [1, 3], 2 = [4, 6], 3 = [5, 7].
        let values: Vec<f32> = y.clone().into_data().to_vec().unwrap();
        assert_eq!(values, vec![0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]);
        pixel_shuffle(y).into_data().assert_eq(&x.into_data(), true);
    }

    #[test]
    fn resample_shapes() {
        let device = Default::default();
        let config = ResampleConfig::new(8);
        let x = Tensor::<TestBackend, 4>::zeros([2, 8, 6, 4], &device);
        assert_eq!(config.init_down(&device).forward(x.clone()).dims(), [2, 16, 3, 2]);
        assert_eq!(config.init_up(&device).forward(x).dims(), [2, 4, 12, 8]);
    }
}
