//! The building blocks of Restormer, one file per concept.

mod attention;
mod block;
mod feed_forward;
mod layer_norm;
mod mask;
mod patch_embed;
mod resample;

pub use attention::*;
pub use block::*;
pub use feed_forward::*;
pub use layer_norm::*;
pub use mask::*;
pub use patch_embed::*;
pub use resample::*;

use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::prelude::*;

/// A bias-free convolution with "same" padding, as every convolution of the official model is
/// (`bias=False`); `groups == channels_in` makes it depth-wise.
pub(crate) fn conv<B: Backend>(
    channels_in: usize,
    channels_out: usize,
    kernel: usize,
    groups: usize,
    device: &B::Device,
) -> Conv2d<B> {
    Conv2dConfig::new([channels_in, channels_out], [kernel, kernel])
        .with_groups(groups)
        .with_padding(PaddingConfig2d::Explicit(kernel / 2, kernel / 2))
        .with_bias(false)
        .init(device)
}
