//! The gradients of a depth-wise 3×3 convolution made of plain tensor ops, for backends without
//! kernels of their own (the GPU backends).
//!
//! Why: Burn 0.20.1's CubeCL backends compute the weight gradient of a grouped convolution one
//! group at a time (`conv_weight_grad_groups`: a slice, a convolution whose "kernel" is the whole
//! output-gradient plane, and a slice-assign per channel), the implicit-GEMM kernels refusing
//! groups. For Restormer's ~44 depth-wise convolutions that is thousands of launches of a
//! 9-output, `B·H·W`-deep direct convolution per step: a `small` training step at patch 128 ×
//! batch 8 took 17.7 s on an H200 (2026-12-04). Here the weight gradient is nine tap products,
//! each reduced over the batch and the plane, and the input gradient is a depth-wise convolution
//! of the upstream gradient with the kernel turned 180° (stride 1, padding 1): a forward
//! convolution, one launch.

use burn::prelude::*;
use burn::tensor::module::conv2d;
use burn::tensor::ops::FloatTensor;

use super::{float, same_padding, Wanted};

/// `(∂x, ∂weight)` of `y = depthwise_conv3x3(x, weight)` given `∂y` (`grad`), each when wanted.
///
/// # Shapes
/// - x, grad: `[B, C, H, W]`; weight: `[C, 1, 3, 3]`
pub(crate) fn depthwise_conv3x3_backward<B: Backend>(
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    grad: FloatTensor<B>,
    wanted: Wanted,
) -> (Option<FloatTensor<B>>, Option<FloatTensor<B>>) {
    let (x, weight, grad) = (float::<B, 4>(x), float::<B, 4>(weight), float::<B, 4>(grad));
    let channels = weight.dims()[0];
    let grad_weight = wanted.weight.then(|| weight_gradient(x, grad.clone()).into_primitive().tensor());
    let grad_x =
        wanted.x.then(|| conv2d(grad, weight.flip([2, 3]), None, same_padding(channels)).into_primitive().tensor());
    (grad_x, grad_weight)
}

/// `∂w[c, ky, kx] = Σ_{b, y, x} ∂y[b, c, y, x] · x[b, c, y + ky − 1, x + kx − 1]` over the pixels
/// where the shifted one lies inside the image (zero padding contributes nothing).
fn weight_gradient<B: Backend>(x: Tensor<B, 4>, grad: Tensor<B, 4>) -> Tensor<B, 4> {
    let [_, channels, height, width] = x.dims();
    // For an offset d ∈ {−1, 0, 1} along a side of n pixels: the output pixels whose shifted
    // pixel is inside, and those shifted pixels (empty when the side is one pixel and d ≠ 0).
    let ranges = |d: isize, n: usize| {
        let n = n as isize;
        let (first, end) = ((-d).max(0), n.min(n - d).max(0));
        let first = first.min(end);
        (first as usize..end as usize, (first + d) as usize..(end + d) as usize)
    };
    let taps: Vec<Tensor<B, 1>> = (0..9)
        .map(|tap| {
            let (dy, dx) = ((tap / 3) as isize - 1, (tap % 3) as isize - 1);
            let ((out_y, in_y), (out_x, in_x)) = (ranges(dy, height), ranges(dx, width));
            if in_y.is_empty() || in_x.is_empty() {
                return Tensor::zeros([channels], &x.device());
            }
            let product = grad.clone().slice([0..grad.dims()[0], 0..channels, out_y, out_x])
                * x.clone().slice([0..x.dims()[0], 0..channels, in_y, in_x]);
            product.sum_dim(0).sum_dim(2).sum_dim(3).reshape([channels])
        })
        .collect();
    Tensor::stack::<2>(taps, 1).reshape([channels, 1, 3, 3])
}

#[cfg(test)]
mod tests {
    use burn::tensor::Distribution;

    use super::*;
    use crate::kernels::conv_backward_with_burn;
    use crate::TestBackend;

    /// Against Burn's own grouped-convolution gradients, on one-pixel rows and columns, odd and
    /// non-square planes.
    #[test]
    fn matches_burns_grouped_convolution_gradients() {
        let device = Default::default();
        let shapes = [[2, 5, 7, 9], [1, 3, 1, 1], [1, 2, 1, 6], [3, 4, 6, 1], [2, 3, 2, 2], [1, 6, 13, 17]];
        for (i, [b, c, h, w]) in shapes.into_iter().enumerate() {
            TestBackend::seed(&device, i as u64);
            let random =
                |shape: [usize; 4]| Tensor::<TestBackend, 4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
            let (x, weight, grad) = (random([b, c, h, w]), random([c, 1, 3, 3]), random([b, c, h, w]));
            let all = Wanted { x: true, weight: true };
            let primitive = |t: &Tensor<TestBackend, 4>| t.clone().into_primitive().tensor();
            let ours =
                depthwise_conv3x3_backward::<TestBackend>(primitive(&x), primitive(&weight), primitive(&grad), all);
            let burn = conv_backward_with_burn::<TestBackend>(
                primitive(&x),
                primitive(&weight),
                primitive(&grad),
                same_padding(c),
                all,
            );
            for (what, (a, e)) in [("input", (ours.0, burn.0)), ("weight", (ours.1, burn.1))] {
                let (a, e) = (float::<TestBackend, 4>(a.expect("wanted")), float::<TestBackend, 4>(e.expect("wanted")));
                assert_eq!(a.dims(), e.dims(), "{what} gradient of {:?}", [b, c, h, w]);
                let diff = (a - e.clone()).abs().max().into_scalar() / e.abs().max().into_scalar().max(1.0);
                assert!(diff < 1e-5, "{what} gradient of {:?} differs from Burn's by {diff}", [b, c, h, w]);
            }
        }
    }
}
