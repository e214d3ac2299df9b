//! Restora's backend extension: the convolutions of Restormer as backend operations, so that a
//! backend can bring its own kernels (Burn's backend-extension pattern, `examples/custom-*`).
//!
//! Why: on the CPU, burn-ndarray computes a convolution's gradients as a transposed convolution
//! (input) and, for a grouped convolution, one sliced convolution per channel (weights): 10–25×
//! the forward's time, most of a training step. [`cpu`] implements them for `NdArray<f32>` as
//! 9-tap stencils (depth-wise) and im2col + GEMM (full 3×3). GPU backends keep Burn's own
//! convolutions through the default methods, and `Autodiff<B>` records one node per operation
//! whose backward calls `B`'s gradient kernels ([`autodiff`]).

mod autodiff;
#[cfg(feature = "ndarray")]
pub mod cpu;

use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::TensorPrimitive;

/// A Burn backend that runs Restormer: Burn's operations plus the 3×3 convolutions
/// (zero padding 1, stride 1, no bias, as in every 3×3 convolution of the official model).
///
/// Every method has a default that calls Burn's own convolution ops, so a backend without
/// kernels of its own implements it with an empty `impl`.
pub trait RestoraBackend: Backend {
    /// Depth-wise 3×3 convolution: `x` `[B, C, H, W]`, `weight` `[C, 1, 3, 3]` → `[B, C, H, W]`.
    fn depthwise_conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        let groups = weight_channels::<Self>(&weight);
        Self::conv2d(x, weight, None, same_padding(groups))
    }

    /// Gradients of [`Self::depthwise_conv3x3`] with respect to `x` and `weight`, each computed
    /// only when asked for.
    fn depthwise_conv3x3_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wanted: Wanted,
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>) {
        let options = same_padding(weight_channels::<Self>(&weight));
        conv_backward_with_burn::<Self>(x, weight, grad, options, wanted)
    }

    /// Full 3×3 convolution: `x` `[B, C, H, W]`, `weight` `[O, C, 3, 3]` → `[B, O, H, W]`.
    fn conv3x3(x: FloatTensor<Self>, weight: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::conv2d(x, weight, None, same_padding(1))
    }

    /// Gradients of [`Self::conv3x3`] with respect to `x` and `weight`.
    fn conv3x3_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        grad: FloatTensor<Self>,
        wanted: Wanted,
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>) {
        conv_backward_with_burn::<Self>(x, weight, grad, same_padding(1), wanted)
    }
}

/// Which gradients a backward pass must compute (a frozen weight or a constant input needs none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wanted {
    pub x: bool,
    pub weight: bool,
}

fn same_padding(groups: usize) -> ConvOptions<2> {
    ConvOptions::new([1, 1], [1, 1], [1, 1], groups)
}

fn weight_channels<B: Backend>(weight: &FloatTensor<B>) -> usize {
    use burn::tensor::TensorMetadata;
    weight.shape().dims[0]
}

fn conv_backward_with_burn<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    options: ConvOptions<2>,
    wanted: Wanted,
) -> (Option<FloatTensor<B>>, Option<FloatTensor<B>>) {
    let gx = wanted.x.then(|| B::conv2d_x_backward(x.clone(), weight.clone(), grad.clone(), options.clone()));
    let gw = wanted.weight.then(|| B::conv2d_weight_backward(x, weight, grad, options));
    (gx, gw)
}

/// [`RestoraBackend::depthwise_conv3x3`] on tensors.
///
/// # Shapes
/// - x: `[B, C, H, W]`, weight: `[C, 1, 3, 3]`
/// - output: `[B, C, H, W]`
pub fn depthwise_conv3x3<B: RestoraBackend>(x: Tensor<B, 4>, weight: Tensor<B, 4>) -> Tensor<B, 4> {
    let out = B::depthwise_conv3x3(x.into_primitive().tensor(), weight.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

/// [`RestoraBackend::conv3x3`] on tensors.
///
/// # Shapes
/// - x: `[B, C, H, W]`, weight: `[O, C, 3, 3]`
/// - output: `[B, O, H, W]`
pub fn conv3x3<B: RestoraBackend>(x: Tensor<B, 4>, weight: Tensor<B, 4>) -> Tensor<B, 4> {
    let out = B::conv3x3(x.into_primitive().tensor(), weight.into_primitive().tensor());
    Tensor::from_primitive(TensorPrimitive::Float(out))
}

// GPU backends: Burn's own convolutions.
#[cfg(feature = "wgpu")]
impl RestoraBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl RestoraBackend for burn::backend::Cuda {}
