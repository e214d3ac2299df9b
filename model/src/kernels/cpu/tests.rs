//! The CPU kernels against Burn's own convolution (forward and both gradients) on odd shapes.

use burn::backend::Autodiff;
use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::ConvOptions;
use burn::tensor::Distribution;

use super::conv3x3::{self, Geometry};
use crate::kernels::{self, depthwise_conv3x3};
use crate::TestBackend;

type Grad = Autodiff<TestBackend>;

/// Shapes `[B, C, H, W]` with one-pixel rows and columns, odd sizes and non-square planes.
const SHAPES: [[usize; 4]; 6] = [[2, 5, 7, 9], [1, 3, 1, 1], [1, 2, 1, 6], [3, 4, 6, 1], [2, 3, 2, 2], [1, 6, 13, 17]];

fn random<const D: usize>(shape: [usize; D], seed: u64) -> Tensor<Grad, D> {
    let device = Default::default();
    Grad::seed(&device, seed);
    Tensor::random(shape, Distribution::Normal(0.0, 1.0), &device)
}

fn max_diff<const D: usize>(a: Tensor<Grad, D>, b: Tensor<Grad, D>) -> f32 {
    let scale = b.clone().abs().max().into_scalar().max(1.0);
    (a - b).abs().max().into_scalar() / scale
}

/// Output, input gradient and weight gradient of `conv` for a random upstream gradient.
fn outputs_and_grads(
    conv: impl Fn(Tensor<Grad, 4>, Tensor<Grad, 4>) -> Tensor<Grad, 4>,
    x: Tensor<Grad, 4>,
    weight: Tensor<Grad, 4>,
    upstream_seed: u64,
) -> [Tensor<Grad, 4>; 3] {
    let (x, weight) = (x.require_grad(), weight.require_grad());
    let y = conv(x.clone(), weight.clone());
    let upstream = random(y.dims(), upstream_seed);
    let grads = (y.clone() * upstream).sum().backward();
    let gx = Tensor::from_inner(x.grad(&grads).expect("x has a gradient"));
    let gw = Tensor::from_inner(weight.grad(&grads).expect("weight has a gradient"));
    [y, gx, gw]
}

fn assert_matches_burn(
    ours: impl Fn(Tensor<Grad, 4>, Tensor<Grad, 4>) -> Tensor<Grad, 4>,
    groups: usize,
    x: Tensor<Grad, 4>,
    weight: Tensor<Grad, 4>,
) {
    let burn = |x, w| conv2d(x, w, None, ConvOptions::new([1, 1], [1, 1], [1, 1], groups));
    let shape = x.dims();
    let got = outputs_and_grads(ours, x.clone(), weight.clone(), 9);
    let expected = outputs_and_grads(burn, x, weight, 9);
    for (what, (a, b)) in ["output", "input gradient", "weight gradient"].iter().zip(got.into_iter().zip(expected)) {
        assert_eq!(a.dims(), b.dims(), "{what} of {shape:?}");
        let diff = max_diff(a, b);
        assert!(diff < 1e-5, "{what} of {shape:?} differs from Burn's by {diff}");
    }
}

#[test]
fn depthwise_matches_burn_forward_and_gradients() {
    for (i, shape @ [_, channels, _, _]) in SHAPES.into_iter().enumerate() {
        let x = random(shape, i as u64);
        let weight = random([channels, 1, 3, 3], 100 + i as u64);
        assert_matches_burn(depthwise_conv3x3, channels, x, weight);
    }
}

#[test]
fn full_conv_matches_burn_forward_and_gradients() {
    for (i, shape @ [_, channels, _, _]) in SHAPES.into_iter().enumerate() {
        let x = random(shape, i as u64);
        let weight = random([channels + 2, channels, 3, 3], 100 + i as u64);
        assert_matches_burn(kernels::conv3x3, 1, x, weight);
    }
}

#[test]
fn bands_of_rows_give_the_same_result_as_one_band() {
    // A band budget of one row at a time, and of a few rows, against the whole image at once.
    let (batch, channels, out_channels, height, width) = (2, 3, 4, 11, 5);
    let x: Vec<f32> = (0..batch * channels * height * width).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
    let grad: Vec<f32> =
        (0..batch * out_channels * height * width).map(|i| ((i * 11 % 17) as f32 - 8.0) / 5.0).collect();
    let weight: Vec<f32> = (0..out_channels * channels * 9).map(|i| ((i * 7 % 13) as f32 - 6.0) / 9.0).collect();
    let geometry = |band_elements| Geometry { batch, channels, out_channels, height, width, band_elements };
    let whole = geometry(usize::MAX / 2);
    for band_elements in [1, 9 * channels * width * 3] {
        let banded = geometry(band_elements);
        // GEMM edge tiles may sum in another order: equal to rounding.
        let close = |a: Vec<f32>, b: Vec<f32>| {
            assert_eq!(a.len(), b.len());
            for (a, b) in a.iter().zip(&b) {
                assert!((a - b).abs() < 1e-5, "{a} vs {b} with bands of {band_elements} floats");
            }
        };
        close(conv3x3::forward(&banded, &x, &weight), conv3x3::forward(&whole, &x, &weight));
        close(conv3x3::input_grad(&banded, &grad, &weight), conv3x3::input_grad(&whole, &grad, &weight));
        close(conv3x3::weight_grad(&banded, &x, &grad), conv3x3::weight_grad(&whole, &x, &grad));
    }
}

#[test]
fn inference_backend_gives_the_autodiff_result() {
    let x = random([2, 4, 6, 7], 1);
    let weight = random([4, 1, 3, 3], 2);
    let on_autodiff = depthwise_conv3x3(x.clone(), weight.clone());
    let on_inner = depthwise_conv3x3(x.inner(), weight.inner());
    on_autodiff.inner().into_data().assert_eq(&on_inner.into_data(), true);
}

/// Shapes for the per-pixel kernels: one channel pair, one pixel, odd planes, a batch whose
/// pixels cross the parallel pieces' boundaries (2048 pixels).
const NORM_SHAPES: [[usize; 4]; 5] = [[2, 4, 3, 5], [1, 2, 1, 1], [3, 6, 7, 1], [2, 8, 33, 65], [1, 10, 2, 3]];

/// Output and every gradient of `op` for a random upstream gradient.
fn grads_of<const N: usize>(
    op: impl Fn(&[Tensor<Grad, 4>; N]) -> Tensor<Grad, 4>,
    inputs: [Tensor<Grad, 4>; N],
) -> Vec<Tensor<Grad, 4>> {
    let inputs = inputs.map(|t| t.require_grad());
    let y = op(&inputs);
    let upstream = random(y.dims(), 77);
    let grads = (y.clone() * upstream).sum().backward();
    let mut out = vec![y];
    out.extend(inputs.iter().map(|t| Tensor::from_inner(t.grad(&grads).expect("input has a gradient"))));
    out
}

fn assert_close(got: Vec<Tensor<Grad, 4>>, expected: Vec<Tensor<Grad, 4>>, what: &str) {
    for (i, (a, b)) in got.into_iter().zip(expected).enumerate() {
        assert_eq!(a.dims(), b.dims(), "{what}: result {i}");
        let diff = max_diff(a, b);
        assert!(diff < 2e-5, "{what}: result {i} (0 = output, then gradients) differs from Burn's by {diff}");
    }
}

#[test]
fn layer_norm_matches_burn_forward_and_gradients() {
    use crate::kernels::{channel_layer_norm, layer_norm_with_burn};
    for (i, shape @ [_, channels, _, _]) in NORM_SHAPES.into_iter().enumerate() {
        let x = random(shape, i as u64) * 3.0 + 1.5;
        // Weight and bias travel as [1, C, 1, 1] so that one helper covers every input.
        let weight = random([1, channels, 1, 1], 50 + i as u64);
        let bias = random([1, channels, 1, 1], 90 + i as u64);
        for with_bias in [true, false] {
            let ours = |t: &[Tensor<Grad, 4>; 3]| {
                let bias = with_bias.then(|| t[2].clone().reshape([channels]));
                channel_layer_norm(t[0].clone(), t[1].clone().reshape([channels]), bias, 1e-5)
                    + t[2].clone() * if with_bias { 0.0 } else { 1.0 }
            };
            let burn = |t: &[Tensor<Grad, 4>; 3]| {
                let bias = with_bias.then(|| t[2].clone().reshape([channels]).into_primitive().tensor());
                let y = layer_norm_with_burn::<Grad>(
                    t[0].clone().into_primitive().tensor(),
                    t[1].clone().reshape([channels]).into_primitive().tensor(),
                    bias,
                    1e-5,
                );
                Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(y))
                    + t[2].clone() * if with_bias { 0.0 } else { 1.0 }
            };
            let inputs = [x.clone(), weight.clone(), bias.clone()];
            assert_close(
                grads_of(ours, inputs.clone()),
                grads_of(burn, inputs),
                &format!("{shape:?} bias {with_bias}"),
            );
        }
    }
}

/// The gate's output against Burn's `gelu(x₁)·x₂`, and its gradient against the exact derivative
/// `GELU′(a) = Φ(a) + a·φ(a)` written in Burn ops. (Burn's own `gelu_backward` differentiates the
/// tanh approximation instead, about 5e-4 away; PyTorch's, like ours, is exact.)
#[test]
fn gelu_gate_matches_burn_forward_and_the_exact_gradient() {
    use crate::kernels::{gelu_gate, gelu_gate_with_burn};
    for (i, shape) in NORM_SHAPES.into_iter().enumerate() {
        let x = random(shape, 30 + i as u64) * 2.0;
        let burn = Tensor::<Grad, 4>::from_primitive(burn::tensor::TensorPrimitive::Float(
            gelu_gate_with_burn::<Grad>(x.clone().into_primitive().tensor()),
        ));
        let x = x.require_grad();
        let y = gelu_gate(x.clone());
        let diff = max_diff(y.clone(), burn);
        assert!(diff < 1e-5, "{shape:?}: output differs from Burn's by {diff}");

        let upstream = random(y.dims(), 77);
        let grads = (y * upstream.clone()).sum().backward();
        let got = Tensor::<Grad, 4>::from_inner(x.grad(&grads).expect("x has a gradient"));
        let mut halves = x.detach().chunk(2, 1).into_iter();
        let (x1, x2) = (halves.next().unwrap(), halves.next().unwrap());
        let cdf = (x1.clone() * std::f32::consts::FRAC_1_SQRT_2).erf() * 0.5 + 0.5;
        let pdf = (x1.clone().powi_scalar(2) * -0.5).exp() * 0.398_942_3;
        let expected =
            Tensor::cat(vec![upstream.clone() * x2 * (cdf.clone() + x1.clone() * pdf), upstream * x1 * cdf], 1);
        let diff = max_diff(got, expected);
        assert!(diff < 1e-5, "{shape:?}: gradient differs from the exact derivative by {diff}");
    }
}

/// MDTA's channel attention against Burn's ops: output, ∂qkv and ∂temperature, for 1–3 heads,
/// one-pixel and odd planes, a plane that crosses the GEMM's stripes, and no mask, a fractional
/// mask (as at coarse levels), and an image whose every pixel is missing (zero rows of q and k:
/// the norm is clamped at ε and the gradient must stay finite).
#[test]
fn channel_attention_matches_burn_forward_and_gradients() {
    use crate::kernels::{channel_attention, channel_attention_with_burn};
    let device = Default::default();
    // (batch, heads, channels per head, height, width)
    let shapes = [(2, 2, 3, 5, 7), (1, 1, 4, 1, 1), (3, 3, 2, 2, 3), (2, 1, 8, 33, 65), (1, 2, 5, 1, 9)];
    for (i, (batch, heads, per_head, height, width)) in shapes.into_iter().enumerate() {
        let channels = heads * per_head;
        let qkv = random([batch, 3 * channels, height, width], 140 + i as u64);
        let temperature = random([1, heads, 1, 1], 150 + i as u64).abs() + 0.5;
        let fractional = random([batch, 1, height, width], 160 + i as u64).abs().clamp_max(1.0);
        let masks = [None, Some(fractional), Some(Tensor::zeros([batch, 1, height, width], &device))];
        for (m, valid) in masks.into_iter().enumerate() {
            let ours = |t: &[Tensor<Grad, 4>; 2]| {
                channel_attention(t[0].clone(), t[1].clone().reshape([heads]), valid.clone(), heads, 1e-12)
            };
            let burn = |t: &[Tensor<Grad, 4>; 2]| {
                let y = channel_attention_with_burn::<Grad>(
                    t[0].clone().into_primitive().tensor(),
                    t[1].clone().reshape([heads]).into_primitive().tensor(),
                    valid.clone().map(|v| v.into_primitive().tensor()),
                    heads,
                    1e-12,
                );
                Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(y))
            };
            let inputs = [qkv.clone(), temperature.clone()];
            let what = format!("batch {batch}, {heads} heads of {per_head}, {height}×{width}, mask case {m}");
            let got = grads_of(ours, inputs.clone());
            for (j, t) in got.iter().enumerate() {
                let finite = t.clone().is_nan().bool_not().all().into_scalar();
                assert!(finite, "{what}: result {j} has NaN");
            }
            assert_close(got, grads_of(burn, inputs), &what);
        }
    }
}

/// 1×1 convolutions with and without a bias: output channels that split into row blocks of
/// unequal size (37 → 16, 16, 5), one-pixel planes, batches of 1 to 3.
#[test]
fn pointwise_matches_burn_forward_and_gradients() {
    use crate::kernels::{pointwise_conv, pointwise_with_burn};
    let shapes = [([2, 5, 7, 9], 37), ([1, 3, 1, 1], 2), ([3, 16, 4, 6], 8), ([1, 24, 33, 65], 12)];
    for (i, (shape @ [_, channels, _, _], out)) in shapes.into_iter().enumerate() {
        let x = random(shape, 110 + i as u64);
        let weight = random([out, channels, 1, 1], 120 + i as u64);
        let bias = random([1, out, 1, 1], 130 + i as u64);
        for with_bias in [true, false] {
            let bias_of = |t: &Tensor<Grad, 4>| with_bias.then(|| t.clone().reshape([out]));
            // Without a bias the third input still takes part (times 0) so that it has a gradient.
            let unused =
                |t: &Tensor<Grad, 4>| t.clone().sum().reshape([1, 1, 1, 1]) * if with_bias { 0.0 } else { 1.0 };
            let ours =
                |t: &[Tensor<Grad, 4>; 3]| pointwise_conv(t[0].clone(), t[1].clone(), bias_of(&t[2])) + unused(&t[2]);
            let burn = |t: &[Tensor<Grad, 4>; 3]| {
                let y = pointwise_with_burn::<Grad>(
                    t[0].clone().into_primitive().tensor(),
                    t[1].clone().into_primitive().tensor(),
                    bias_of(&t[2]).map(|b| b.into_primitive().tensor()),
                );
                Tensor::from_primitive(burn::tensor::TensorPrimitive::Float(y)) + unused(&t[2])
            };
            let inputs = [x.clone(), weight.clone(), bias.clone()];
            assert_close(
                grads_of(ours, inputs.clone()),
                grads_of(burn, inputs),
                &format!("{shape:?} → {out} bias {with_bias}"),
            );
        }
    }
}

/// Products cut into stripes across threads (rows when the output is tall, columns when wide)
/// equal one matrixmultiply call bit for bit, with β = 0 and β = 1.
#[cfg(feature = "rayon")]
#[test]
fn striped_gemm_equals_one_call_exactly() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    for (m, k, n) in [(301, 128, 60), (40, 64, 1001), (150, 130, 150)] {
        assert!(m * k * n >> 20 >= 2, "the product must be large enough to be striped");
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 11.0).collect();
        for beta in [0.0, 1.0] {
            let start: Vec<f32> = (0..m * n).map(|i| (i % 13) as f32).collect();
            let mut striped = start.clone();
            // SAFETY: a is [m, k], b [k, n] and c [m, n], all row-major.
            pool.install(|| unsafe {
                super::gemm(m, k, n, a.as_ptr(), [k, 1], b.as_ptr(), [n, 1], beta, &mut striped, [n, 1])
            });
            let mut whole = start;
            unsafe {
                matrixmultiply::sgemm(
                    m,
                    k,
                    n,
                    1.0,
                    a.as_ptr(),
                    k as isize,
                    1,
                    b.as_ptr(),
                    n as isize,
                    1,
                    beta,
                    whole.as_mut_ptr(),
                    n as isize,
                    1,
                )
            };
            assert!(striped == whole, "{m}×{k}×{n}, β = {beta}: striped product differs");
        }
    }
}
