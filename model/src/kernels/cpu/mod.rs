//! CPU kernels for burn-ndarray: the 3×3 convolutions of Restormer and their gradients.
//!
//! - Depth-wise ([`depthwise`]): a 9-tap stencil per plane, row by row so the compiler
//!   vectorises it; the input gradient is the same stencil with the kernel turned 180°, the
//!   weight gradient nine dot products per channel. One pass over the data each, no copies.
//! - Full ([`conv3x3`]): im2col in bands of rows, then one GEMM per band (matrixmultiply, as
//!   burn-ndarray's matmul); both gradients are GEMMs too, the input's followed by col2im.
//! - Channel layer norm ([`layer_norm`]) and the GDFN gate ([`gelu_gate`]): one pass per
//!   reduction or output, where Burn's ops make a dozen with an allocation each.
//! - MDTA's channel attention ([`channel_attention`]): per head, q·kᵀ and attn·v (and the four
//!   products of the backward) as GEMMs on the q/k/v map in place, normalisation and softmax on
//!   the d×d maps.
//!
//! Results do not depend on the number of threads: work is split by output plane or channel,
//! and every sum runs in a fixed order.

mod channel_attention;
mod conv3x3;
mod depthwise;
mod gelu_gate;
mod layer_norm;
mod pointwise;

use std::borrow::Cow;

use burn::backend::ndarray::{NdArray, NdArrayTensor};
use burn::tensor::TensorMetadata;
use ndarray::{ArcArray, IxDyn};

use super::{RestoraBackend, Wanted};

impl RestoraBackend for NdArray<f32> {
    const FUSED_KERNELS: bool = true;

    fn depthwise_conv3x3(x: NdArrayTensor, weight: NdArrayTensor) -> NdArrayTensor {
        let [batch, channels, height, width] = dims4(&x);
        assert_weight(&weight, [channels, 1, 3, 3]);
        let (x, weight) = (F32::new(x), F32::new(weight));
        let out = depthwise::forward(&x.data(), &weight.data(), batch * channels, channels, height, width);
        tensor(out, [batch, channels, height, width])
    }

    fn depthwise_conv3x3_backward(
        x: NdArrayTensor,
        weight: NdArrayTensor,
        grad: NdArrayTensor,
        wanted: Wanted,
    ) -> (Option<NdArrayTensor>, Option<NdArrayTensor>) {
        let shape @ [batch, channels, height, width] = dims4(&x);
        let (x, weight, grad) = (F32::new(x), F32::new(weight), F32::new(grad));
        let grad_x = wanted.x.then(|| {
            let out = depthwise::input_grad(&grad.data(), &weight.data(), batch * channels, channels, height, width);
            tensor(out, shape)
        });
        let grad_weight = wanted.weight.then(|| {
            let out = depthwise::weight_grad(&x.data(), &grad.data(), batch, channels, height, width);
            tensor(out, [channels, 1, 3, 3])
        });
        (grad_x, grad_weight)
    }

    fn conv3x3(x: NdArrayTensor, weight: NdArrayTensor) -> NdArrayTensor {
        let [batch, channels, height, width] = dims4(&x);
        let [out_channels, ..] = dims4(&weight);
        assert_weight(&weight, [out_channels, channels, 3, 3]);
        let geometry =
            conv3x3::Geometry { batch, channels, out_channels, height, width, band_elements: conv3x3::BAND_ELEMENTS };
        let (x, weight) = (F32::new(x), F32::new(weight));
        let out = conv3x3::forward(&geometry, &x.data(), &weight.data());
        tensor(out, [batch, out_channels, height, width])
    }

    fn conv3x3_backward(
        x: NdArrayTensor,
        weight: NdArrayTensor,
        grad: NdArrayTensor,
        wanted: Wanted,
    ) -> (Option<NdArrayTensor>, Option<NdArrayTensor>) {
        let shape @ [batch, channels, height, width] = dims4(&x);
        let weight_shape @ [out_channels, ..] = dims4(&weight);
        let geometry =
            conv3x3::Geometry { batch, channels, out_channels, height, width, band_elements: conv3x3::BAND_ELEMENTS };
        let (x, weight, grad) = (F32::new(x), F32::new(weight), F32::new(grad));
        let grad_x = wanted.x.then(|| tensor(conv3x3::input_grad(&geometry, &grad.data(), &weight.data()), shape));
        let grad_weight =
            wanted.weight.then(|| tensor(conv3x3::weight_grad(&geometry, &x.data(), &grad.data()), weight_shape));
        (grad_x, grad_weight)
    }

    fn pointwise_conv(x: NdArrayTensor, weight: NdArrayTensor, bias: Option<NdArrayTensor>) -> NdArrayTensor {
        let shape = pointwise_shape(&x, &weight);
        let [batch, _, height, width] = dims4(&x);
        let (x, weight, bias) = (F32::new(x), F32::new(weight), bias.map(F32::new));
        let bias_data = bias.as_ref().map(F32::data);
        let out = pointwise::forward(shape, &x.data(), &weight.data(), bias_data.as_deref());
        tensor(out, [batch, shape.out_channels, height, width])
    }

    fn pointwise_conv_backward(
        x: NdArrayTensor,
        weight: NdArrayTensor,
        grad: NdArrayTensor,
        wanted: Wanted,
        bias: bool,
    ) -> (Option<NdArrayTensor>, Option<NdArrayTensor>, Option<NdArrayTensor>) {
        let shape = pointwise_shape(&x, &weight);
        let (x_shape, weight_shape) = (dims4(&x), dims4(&weight));
        let (x, weight, grad) = (F32::new(x), F32::new(weight), F32::new(grad));
        let grad_data = grad.data();
        let grad_x = wanted.x.then(|| tensor(pointwise::input_grad(shape, &grad_data, &weight.data()), x_shape));
        let grad_weight =
            wanted.weight.then(|| tensor(pointwise::weight_grad(shape, &x.data(), &grad_data), weight_shape));
        let grad_bias = bias.then(|| vector(pointwise::bias_grad(shape, &grad_data)));
        (grad_x, grad_weight, grad_bias)
    }

    fn channel_layer_norm(
        x: NdArrayTensor,
        weight: NdArrayTensor,
        bias: Option<NdArrayTensor>,
        epsilon: f64,
    ) -> NdArrayTensor {
        let shape @ [batch, channels, height, width] = dims4(&x);
        let layout = layer_norm::Layout { batch, channels, plane: height * width };
        let (x, weight, bias) = (F32::new(x), F32::new(weight), bias.map(F32::new));
        let bias_data = bias.as_ref().map(F32::data);
        tensor(layer_norm::forward(&x.data(), &weight.data(), bias_data.as_deref(), layout, epsilon), shape)
    }

    fn channel_layer_norm_backward(
        x: NdArrayTensor,
        weight: NdArrayTensor,
        has_bias: bool,
        epsilon: f64,
        grad: NdArrayTensor,
    ) -> (NdArrayTensor, NdArrayTensor, Option<NdArrayTensor>) {
        let shape @ [batch, channels, height, width] = dims4(&x);
        let layout = layer_norm::Layout { batch, channels, plane: height * width };
        let (x, weight, grad) = (F32::new(x), F32::new(weight), F32::new(grad));
        let (grad_x, grad_weight, grad_bias) =
            layer_norm::backward(&x.data(), &weight.data(), has_bias, &grad.data(), layout, epsilon);
        (tensor(grad_x, shape), vector(grad_weight), grad_bias.map(vector))
    }

    fn channel_attention(
        qkv: NdArrayTensor,
        temperature: NdArrayTensor,
        valid: Option<NdArrayTensor>,
        heads: usize,
        epsilon: f32,
    ) -> NdArrayTensor {
        let layout = attention_layout(&qkv, &temperature, valid.as_ref(), heads, epsilon);
        let [batch, _, height, width] = dims4(&qkv);
        let (qkv, temperature, valid) = (F32::new(qkv), F32::new(temperature), valid.map(F32::new));
        let valid_data = valid.as_ref().map(F32::data);
        let out = channel_attention::forward(&qkv.data(), &temperature.data(), valid_data.as_deref(), layout);
        tensor(out, [batch, layout.channels, height, width])
    }

    fn channel_attention_backward(
        qkv: NdArrayTensor,
        temperature: NdArrayTensor,
        valid: Option<NdArrayTensor>,
        heads: usize,
        epsilon: f32,
        grad: NdArrayTensor,
    ) -> (NdArrayTensor, NdArrayTensor) {
        let layout = attention_layout(&qkv, &temperature, valid.as_ref(), heads, epsilon);
        let shape = dims4(&qkv);
        let (qkv, temperature, grad) = (F32::new(qkv), F32::new(temperature), F32::new(grad));
        let valid = valid.map(F32::new);
        let valid_data = valid.as_ref().map(F32::data);
        let (grad_qkv, grad_temperature) =
            channel_attention::backward(&qkv.data(), &temperature.data(), valid_data.as_deref(), &grad.data(), layout);
        (tensor(grad_qkv, shape), vector(grad_temperature))
    }

    fn gelu_gate(x: NdArrayTensor) -> NdArrayTensor {
        let [batch, channels, height, width] = dims4(&x);
        assert!(channels % 2 == 0, "the GELU gate splits an even number of channels, got {channels}");
        let x = F32::new(x);
        tensor(gelu_gate::forward(&x.data(), batch, channels / 2, height * width), [batch, channels / 2, height, width])
    }

    fn gelu_gate_backward(x: NdArrayTensor, grad: NdArrayTensor) -> NdArrayTensor {
        let shape @ [_, channels, height, width] = dims4(&x);
        let (x, grad) = (F32::new(x), F32::new(grad));
        tensor(gelu_gate::backward(&x.data(), &grad.data(), channels / 2, height * width), shape)
    }
}

/// An f32 tensor of burn-ndarray, read as one contiguous slice in row-major order.
struct F32(ArcArray<f32, IxDyn>);

impl F32 {
    fn new(tensor: NdArrayTensor) -> Self {
        match tensor {
            NdArrayTensor::F32(storage) => Self(storage.into_shared()),
            other => panic!("Restora's CPU kernels run in f32, got a {:?} tensor", other.dtype()),
        }
    }

    /// The elements in row-major order: borrowed when the array is laid out that way already.
    fn data(&self) -> Cow<'_, [f32]> {
        match self.0.as_slice() {
            Some(slice) => Cow::Borrowed(slice),
            // A strided view (a channel slice of a batch, a broadcast gradient): one copy into
            // row-major order through ndarray's strided copy (element iteration over a
            // dynamic-rank array costs an index computation per element).
            None => Cow::Owned(self.0.as_standard_layout().into_owned().into_raw_vec_and_offset().0),
        }
    }
}

fn dims4(tensor: &NdArrayTensor) -> [usize; 4] {
    let dims = tensor.shape().dims;
    match dims.as_slice() {
        &[a, b, c, d] => [a, b, c, d],
        other => panic!("Restora's CPU kernels take 4-d tensors here, got shape {other:?}"),
    }
}

fn pointwise_shape(x: &NdArrayTensor, weight: &NdArrayTensor) -> pointwise::Shape {
    let [batch, channels, height, width] = dims4(x);
    let [out_channels, ..] = dims4(weight);
    assert_eq!(dims4(weight), [out_channels, channels, 1, 1], "1×1 convolution weight of the wrong shape");
    pointwise::Shape { batch, channels, out_channels, plane: height * width }
}

fn attention_layout(
    qkv: &NdArrayTensor,
    temperature: &NdArrayTensor,
    valid: Option<&NdArrayTensor>,
    heads: usize,
    epsilon: f32,
) -> channel_attention::Layout {
    let [batch, three_c, height, width] = dims4(qkv);
    let channels = three_c / 3;
    assert!(three_c % 3 == 0 && heads > 0 && channels % heads == 0, "q/k/v map of {three_c} channels, {heads} heads");
    assert_eq!(temperature.shape().dims, [heads], "one temperature per head");
    if let Some(valid) = valid {
        assert_eq!(dims4(valid), [batch, 1, height, width], "valid weights of the wrong shape");
    }
    channel_attention::Layout { batch, channels, pixels: height * width, heads, epsilon }
}

fn assert_weight(weight: &NdArrayTensor, expected: [usize; 4]) {
    assert_eq!(dims4(weight), expected, "3×3 convolution weight of the wrong shape");
}

fn tensor(data: Vec<f32>, shape: [usize; 4]) -> NdArrayTensor {
    let array = ndarray::Array::from_shape_vec(IxDyn(&shape), data).expect("kernel output matches its shape");
    NdArrayTensor::from(array.into_shared())
}

fn vector(data: Vec<f32>) -> NdArrayTensor {
    let length = data.len();
    let array = ndarray::Array::from_shape_vec(IxDyn(&[length]), data).expect("a vector has its length");
    NdArrayTensor::from(array.into_shared())
}

/// Runs `work(index, chunk)` on consecutive `chunk`-sized pieces of `out`, on every core when
/// the `rayon` feature is on.
fn for_each_chunk<F>(out: &mut [f32], chunk: usize, work: F)
where
    F: Fn(usize, &mut [f32]) + Send + Sync,
{
    if chunk == 0 {
        return;
    }
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        out.par_chunks_mut(chunk).enumerate().for_each(|(i, piece)| work(i, piece));
    }
    #[cfg(not(feature = "rayon"))]
    out.chunks_mut(chunk).enumerate().for_each(|(i, piece)| work(i, piece));
}

/// Sum with eight independent partial sums (see [`dot`]). Fixed order: deterministic.
fn sum(a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let (body, tail) = a.split_at(a.len() - a.len() % 8);
    for x in body.chunks_exact(8) {
        for lane in 0..8 {
            lanes[lane] += x[lane];
        }
    }
    let tail: f32 = tail.iter().sum();
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail
}

/// Dot product with eight independent partial sums, which the compiler maps to vector lanes
/// (a single running sum would force one addition at a time). Fixed order: deterministic.
fn dot(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut lanes = [0.0f32; 8];
    let (a_body, a_tail) = a.split_at(a.len() - a.len() % 8);
    let (b_body, b_tail) = b.split_at(a_body.len());
    for (x, y) in a_body.chunks_exact(8).zip(b_body.chunks_exact(8)) {
        for lane in 0..8 {
            lanes[lane] += x[lane] * y[lane];
        }
    }
    let tail: f32 = a_tail.iter().zip(b_tail).map(|(x, y)| x * y).sum();
    ((lanes[0] + lanes[4]) + (lanes[1] + lanes[5])) + ((lanes[2] + lanes[6]) + (lanes[3] + lanes[7])) + tail
}

/// `C = A·B + β·C` in f32 through matrixmultiply, strides as `[row, column]` in elements.
///
/// With the `rayon` feature the output is cut into one stripe per thread, across its longer
/// side, one matrixmultiply call each (matrixmultiply's own threads are meant to be off:
/// `MATMUL_NUM_THREADS=1`). Every output element is still one dot product over the whole `k`
/// in matrixmultiply's order, so the result is the same for any number of stripes.
///
/// # Safety
/// `a` must address `m × k` elements and `b` `k × n` elements with the given strides; `c` must
/// hold `m × n` elements at its strides (checked).
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn gemm(
    m: usize,
    k: usize,
    n: usize,
    a: *const f32,
    a_strides: [usize; 2],
    b: *const f32,
    b_strides: [usize; 2],
    beta: f32,
    c: &mut [f32],
    c_strides: [usize; 2],
) {
    if m == 0 || n == 0 {
        return;
    }
    assert!((m - 1) * c_strides[0] + (n - 1) * c_strides[1] < c.len(), "GEMM output out of bounds");
    let stripes = stripes(m, k, n);
    let split_rows = m >= n;
    let side = if split_rows { m } else { n };
    // Stripes of a multiple of 8 rows or columns (the micro-kernel's tile).
    let width = side.div_ceil(stripes).next_multiple_of(8);
    let (a, b, c) = (Shared(a.cast_mut()), Shared(b.cast_mut()), Shared(c.as_mut_ptr()));
    let stripe = |first: usize| {
        let len = width.min(side - first);
        // SAFETY: stripe `first..first + len` of the rows of A and C or the columns of B and C
        // lies inside the operands the caller vouched for; stripes do not overlap in C.
        unsafe {
            let (rows, columns, a, b, c) = if split_rows {
                (len, n, a.at(first * a_strides[0]), b.0, c.at(first * c_strides[0]))
            } else {
                (m, len, a.0, b.at(first * b_strides[1]), c.at(first * c_strides[1]))
            };
            let s = |v: usize| v as isize;
            matrixmultiply::sgemm(
                rows,
                k,
                columns,
                1.0,
                a,
                s(a_strides[0]),
                s(a_strides[1]),
                b,
                s(b_strides[0]),
                s(b_strides[1]),
                beta,
                c,
                s(c_strides[0]),
                s(c_strides[1]),
            );
        }
    };
    #[cfg(feature = "rayon")]
    {
        use rayon::prelude::*;
        (0..side).into_par_iter().step_by(width).for_each(stripe);
    }
    #[cfg(not(feature = "rayon"))]
    (0..side).step_by(width).for_each(stripe);
}

/// How many stripes [`gemm`] cuts a product into: one per thread, fewer for small products
/// (under about 2 MFLOP a stripe costs more to hand over than it saves).
fn stripes(m: usize, k: usize, n: usize) -> usize {
    #[cfg(feature = "rayon")]
    let threads = rayon::current_num_threads();
    #[cfg(not(feature = "rayon"))]
    let threads = 1;
    threads.min((m * k * n) >> 20).max(1)
}

/// A pointer that several threads write through, each to its own elements.
#[derive(Clone, Copy)]
struct Shared(*mut f32);

// SAFETY: only used by `gemm`, whose stripes write disjoint elements.
unsafe impl Send for Shared {}
unsafe impl Sync for Shared {}

impl Shared {
    /// # Safety
    /// `offset` must stay inside the allocation.
    unsafe fn at(self, offset: usize) -> *mut f32 {
        unsafe { self.0.add(offset) }
    }
}

#[cfg(test)]
mod tests;
