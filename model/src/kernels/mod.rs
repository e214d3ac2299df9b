//! Restora's backend extension: the hot operations of Restormer as backend operations, so that
//! a backend can bring its own kernels (Burn's backend-extension pattern, `examples/custom-*`).
//!
//! Why: on the CPU, burn-ndarray computes a convolution's gradients as a transposed convolution
//! (input) and, for a grouped convolution, one sliced convolution per channel (weights): 10–25×
//! the forward's time, most of a training step; and a layer norm or the GDFN's `GELU(x₁)·x₂`
//! made of Burn ops is a dozen passes over memory, each with a fresh allocation, forward and
//! backward. [`cpu`] implements them for `NdArray<f32>`: 9-tap stencils (depth-wise), im2col +
//! GEMM (full 3×3), and one-pass fused layer norm, gate and channel attention, each with its
//! backward. GPU backends keep Burn's own ops through the default methods, except for the
//! depth-wise gradients ([`depthwise`]), and `Autodiff<B>` records one node per operation whose
//! backward calls `B`'s gradient kernels ([`autodiff`]).

mod autodiff;
#[cfg(feature = "ndarray")]
pub mod cpu;
mod depthwise;

use burn::prelude::*;
use burn::tensor::ops::{ConvOptions, FloatTensor};
use burn::tensor::TensorPrimitive;

/// A Burn backend that runs Restormer: Burn's operations plus the 3×3 convolutions
/// (zero padding 1, stride 1, no bias, as in every 3×3 convolution of the official model).
///
/// Every method has a default that calls Burn's own convolution ops, so a backend without
/// kernels of its own implements it with an empty `impl`.
pub trait RestoraBackend: Backend {
    /// Whether [`Self::channel_layer_norm`], [`Self::channel_attention`] and [`Self::gelu_gate`]
    /// are kernels of this backend with backward passes of their own. When false (the default), `Autodiff<Self>` builds them
    /// from Burn ops and lets Burn differentiate those, and their `_backward` methods are never
    /// called.
    const FUSED_KERNELS: bool = false;

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
        depthwise::depthwise_conv3x3_backward::<Self>(x, weight, grad, wanted)
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

    /// 1×1 convolution: `x` `[B, C, H, W]`, `weight` `[O, C, 1, 1]`, `bias` `[O]` → `[B, O, H, W]`.
    fn pointwise_conv(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
    ) -> FloatTensor<Self> {
        pointwise_with_burn::<Self>(x, weight, bias)
    }

    /// Gradients of [`Self::pointwise_conv`]: `(x, weight, bias)`, each when asked for (the bias's
    /// when `bias`). Called only when [`Self::FUSED_KERNELS`].
    fn pointwise_conv_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _grad: FloatTensor<Self>,
        _wanted: Wanted,
        _bias: bool,
    ) -> (Option<FloatTensor<Self>>, Option<FloatTensor<Self>>, Option<FloatTensor<Self>>) {
        unreachable!("pointwise_conv_backward runs only on backends with FUSED_KERNELS")
    }

    /// LayerNorm over the channels of each pixel: `x` `[B, C, H, W]`, `weight` and `bias` `[C]`.
    /// Without a bias it is Restormer's BiasFree form, `x / √(var + ε) · weight` (the mean stays).
    fn channel_layer_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: Option<FloatTensor<Self>>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        layer_norm_with_burn::<Self>(x, weight, bias, epsilon)
    }

    /// Gradients of [`Self::channel_layer_norm`]: `(x, weight, bias)`, the bias's when it has one.
    /// Called only when [`Self::FUSED_KERNELS`].
    fn channel_layer_norm_backward(
        _x: FloatTensor<Self>,
        _weight: FloatTensor<Self>,
        _has_bias: bool,
        _epsilon: f64,
        _grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, Option<FloatTensor<Self>>) {
        unreachable!("channel_layer_norm_backward runs only on backends with FUSED_KERNELS")
    }

    /// MDTA's channel attention (Zamir et al., Fig. 2a) after the q/k/v convolutions: `qkv`
    /// `[B, 3C, H, W]` splits into q, k, v; per head (`C/heads` rows of `H·W` pixels), q and k are
    /// weighted by `valid` `[B, 1, H, W]` (the mask-aware form; none: all 1), L2-normalised over
    /// the pixels (`max(‖·‖₂, epsilon)`, PyTorch's `F.normalize`), and
    /// `softmax(q·kᵀ · temperature[head])·v` is the head's output. `temperature` is `[heads]`;
    /// the output `[B, C, H, W]`.
    fn channel_attention(
        qkv: FloatTensor<Self>,
        temperature: FloatTensor<Self>,
        valid: Option<FloatTensor<Self>>,
        heads: usize,
        epsilon: f32,
    ) -> FloatTensor<Self> {
        channel_attention_with_burn::<Self>(qkv, temperature, valid, heads, epsilon)
    }

    /// Gradients of [`Self::channel_attention`] with respect to `qkv` and `temperature` (the
    /// valid weights are data: no gradient). Called only when [`Self::FUSED_KERNELS`].
    fn channel_attention_backward(
        _qkv: FloatTensor<Self>,
        _temperature: FloatTensor<Self>,
        _valid: Option<FloatTensor<Self>>,
        _heads: usize,
        _epsilon: f32,
        _grad: FloatTensor<Self>,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        unreachable!("channel_attention_backward runs only on backends with FUSED_KERNELS")
    }

    /// The GDFN gate: `x` `[B, 2h, H, W]` split into halves `x₁, x₂` along the channels →
    /// `GELU(x₁) · x₂` `[B, h, H, W]` (exact GELU, with erf).
    fn gelu_gate(x: FloatTensor<Self>) -> FloatTensor<Self> {
        gelu_gate_with_burn::<Self>(x)
    }

    /// Gradient of [`Self::gelu_gate`] with respect to `x`. Called only when [`Self::FUSED_KERNELS`].
    fn gelu_gate_backward(_x: FloatTensor<Self>, _grad: FloatTensor<Self>) -> FloatTensor<Self> {
        unreachable!("gelu_gate_backward runs only on backends with FUSED_KERNELS")
    }
}

/// [`RestoraBackend::pointwise_conv`] made of Burn ops: one matrix product per image,
/// `[O, C] × [C, H·W]` (burn-ndarray's direct convolution walks the image row by row, far slower
/// at training patch sizes; the product is a GEMM on every backend).
pub(crate) fn pointwise_with_burn<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
) -> FloatTensor<B> {
    let x = float::<B, 4>(x);
    let [batch, channels, height, width] = x.dims();
    let weight = float::<B, 4>(weight);
    let [out, weight_in, kh, kw] = weight.dims();
    assert_eq!((weight_in, kh, kw), (channels, 1, 1), "pointwise needs a [O, C, 1, 1] weight");
    let y = weight.reshape([1, out, channels]).matmul(x.reshape([batch, channels, height * width]));
    let y = match bias {
        Some(bias) => y + float::<B, 1>(bias).reshape([1, out, 1]),
        None => y,
    };
    y.reshape([batch, out, height, width]).into_primitive().tensor()
}

/// [`RestoraBackend::channel_layer_norm`] made of Burn ops.
pub(crate) fn layer_norm_with_burn<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    bias: Option<FloatTensor<B>>,
    epsilon: f64,
) -> FloatTensor<B> {
    let x = float::<B, 4>(x);
    let channels = x.dims()[1];
    let weight = float::<B, 1>(weight).reshape([1, channels, 1, 1]);
    let (var, mean) = x.clone().var_mean_bias(1);
    let inv_std = (var + epsilon).sqrt().recip();
    let y = match bias {
        Some(bias) => (x - mean) * inv_std * weight + float::<B, 1>(bias).reshape([1, channels, 1, 1]),
        None => x * inv_std * weight,
    };
    y.into_primitive().tensor()
}

/// [`RestoraBackend::channel_attention`] made of Burn ops.
pub(crate) fn channel_attention_with_burn<B: Backend>(
    qkv: FloatTensor<B>,
    temperature: FloatTensor<B>,
    valid: Option<FloatTensor<B>>,
    heads: usize,
    epsilon: f32,
) -> FloatTensor<B> {
    let qkv = float::<B, 4>(qkv);
    let [b, three_c, h, w] = qkv.dims();
    let c = three_c / 3;
    let per_head = [b, heads, c / heads, h * w];
    let mut parts = qkv.chunk(3, 1).into_iter();
    let (Some(q), Some(k), Some(v)) = (parts.next(), parts.next(), parts.next()) else {
        unreachable!("chunk(3) of 3C channels gives three parts")
    };
    let (mut q, mut k, v) = (q.reshape(per_head), k.reshape(per_head), v.reshape(per_head));
    if let Some(valid) = valid {
        let valid = float::<B, 4>(valid).reshape([b, 1, 1, h * w]);
        q = q * valid.clone();
        k = k * valid;
    }
    // `√max(Σx², ε²)`, not `max(√Σx², ε)`: the same value, but a row of zeros (every pixel of
    // a coarse level missing) gets PyTorch's zero gradient instead of NaN (0·∞ through the sqrt).
    let normalize = |x: Tensor<B, 4>| {
        let norm = x.clone().powi_scalar(2).sum_dim(3).clamp_min(epsilon * epsilon).sqrt();
        x / norm
    };
    let (q, k) = (normalize(q), normalize(k));
    let temperature = float::<B, 1>(temperature).reshape([1, heads, 1, 1]);
    let attention = burn::tensor::activation::softmax(q.matmul(k.swap_dims(2, 3)) * temperature, 3);
    attention.matmul(v).reshape([b, c, h, w]).into_primitive().tensor()
}

/// [`RestoraBackend::gelu_gate`] made of Burn ops.
pub(crate) fn gelu_gate_with_burn<B: Backend>(x: FloatTensor<B>) -> FloatTensor<B> {
    let mut halves = float::<B, 4>(x).chunk(2, 1).into_iter();
    let (Some(x1), Some(x2)) = (halves.next(), halves.next()) else {
        unreachable!("chunk(2) of 2·hidden channels gives two parts")
    };
    (burn::tensor::activation::gelu(x1) * x2).into_primitive().tensor()
}

fn float<B: Backend, const D: usize>(primitive: FloatTensor<B>) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(primitive))
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
    float(B::depthwise_conv3x3(x.into_primitive().tensor(), weight.into_primitive().tensor()))
}

/// [`RestoraBackend::conv3x3`] on tensors.
///
/// # Shapes
/// - x: `[B, C, H, W]`, weight: `[O, C, 3, 3]`
/// - output: `[B, O, H, W]`
pub fn conv3x3<B: RestoraBackend>(x: Tensor<B, 4>, weight: Tensor<B, 4>) -> Tensor<B, 4> {
    float(B::conv3x3(x.into_primitive().tensor(), weight.into_primitive().tensor()))
}

/// [`RestoraBackend::pointwise_conv`] on tensors.
///
/// # Shapes
/// - x: `[B, C, H, W]`, weight: `[O, C, 1, 1]`, bias: `[O]`
/// - output: `[B, O, H, W]`
pub fn pointwise_conv<B: RestoraBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 4>,
    bias: Option<Tensor<B, 1>>,
) -> Tensor<B, 4> {
    let bias = bias.map(|b| b.into_primitive().tensor());
    float(B::pointwise_conv(x.into_primitive().tensor(), weight.into_primitive().tensor(), bias))
}

/// [`RestoraBackend::channel_layer_norm`] on tensors.
///
/// # Shapes
/// - x: `[B, C, H, W]`, weight and bias: `[C]`
/// - output: `[B, C, H, W]`
pub fn channel_layer_norm<B: RestoraBackend>(
    x: Tensor<B, 4>,
    weight: Tensor<B, 1>,
    bias: Option<Tensor<B, 1>>,
    epsilon: f64,
) -> Tensor<B, 4> {
    let bias = bias.map(|b| b.into_primitive().tensor());
    float(B::channel_layer_norm(x.into_primitive().tensor(), weight.into_primitive().tensor(), bias, epsilon))
}

/// [`RestoraBackend::channel_attention`] on tensors.
///
/// # Shapes
/// - qkv: `[B, 3C, H, W]`, temperature: `[heads]`, valid: `[B, 1, H, W]`
/// - output: `[B, C, H, W]`
pub fn channel_attention<B: RestoraBackend>(
    qkv: Tensor<B, 4>,
    temperature: Tensor<B, 1>,
    valid: Option<Tensor<B, 4>>,
    heads: usize,
    epsilon: f32,
) -> Tensor<B, 4> {
    let valid = valid.map(|v| v.into_primitive().tensor());
    float(B::channel_attention(
        qkv.into_primitive().tensor(),
        temperature.into_primitive().tensor(),
        valid,
        heads,
        epsilon,
    ))
}

/// [`RestoraBackend::gelu_gate`] on tensors.
///
/// # Shapes
/// - x: `[B, 2h, H, W]`
/// - output: `[B, h, H, W]`
pub fn gelu_gate<B: RestoraBackend>(x: Tensor<B, 4>) -> Tensor<B, 4> {
    float(B::gelu_gate(x.into_primitive().tensor()))
}

// GPU backends: Burn's own convolutions.
#[cfg(feature = "wgpu")]
impl RestoraBackend for burn::backend::Wgpu {}
#[cfg(feature = "cuda")]
impl RestoraBackend for burn::backend::Cuda {}
