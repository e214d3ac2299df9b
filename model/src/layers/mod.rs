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

use crate::kernels::{self, RestoraBackend};

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

/// A 3×3 convolution with "same" padding through the backend's [`RestoraBackend::conv3x3`]
/// (depth-wise when the layer has one group per channel): same weights and result as
/// `conv.forward(x)`, with the backend's own kernels where it has them.
///
/// # Shapes
/// - `x`: `[B, C, H, W]`
/// - output: `[B, O, H, W]`
pub(crate) fn conv3x3<B: RestoraBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    let [out, _, kh, kw] = conv.weight.dims();
    debug_assert_eq!((kh, kw), (3, 3), "conv3x3 needs a 3×3 convolution");
    let y = if conv.groups > 1 {
        debug_assert_eq!(conv.groups, out, "grouped 3×3 convolutions must be depth-wise");
        kernels::depthwise_conv3x3(x, conv.weight.val())
    } else {
        kernels::conv3x3(x, conv.weight.val())
    };
    match &conv.bias {
        Some(bias) => y + bias.val().reshape([1, out, 1, 1]),
        None => y,
    }
}

/// A 1×1 convolution through [`kernels::pointwise_conv`]: the same weights and result as
/// `conv.forward(x)`, as matrix products (see there for why).
///
/// # Shapes
/// - `x`: `[B, C, H, W]`
/// - output: `[B, O, H, W]`
pub(crate) fn pointwise<B: RestoraBackend>(conv: &Conv2d<B>, x: Tensor<B, 4>) -> Tensor<B, 4> {
    kernels::pointwise_conv(x, conv.weight.val(), conv.bias.as_ref().map(|b| b.val()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;

    #[test]
    fn pointwise_equals_the_convolution() {
        let device = Default::default();
        TestBackend::seed(&device, 3);
        for bias in [false, true] {
            let conv: Conv2d<TestBackend> = Conv2dConfig::new([6, 10], [1, 1]).with_bias(bias).init(&device);
            let x = Tensor::<TestBackend, 4>::random([2, 6, 5, 7], burn::tensor::Distribution::Default, &device);
            let expected = conv.forward(x.clone());
            let got = pointwise(&conv, x);
            assert_eq!(got.dims(), [2, 10, 5, 7]);
            let diff: f32 = (got - expected).abs().max().into_scalar();
            assert!(diff < 1e-5, "{diff}");
        }
    }
}
