//! LPIPS, the learned perceptual image patch similarity of Zhang et al. (CVPR 2018), with an
//! AlexNet trunk, in two variants:
//!
//! - [`LpipsVariant::ShiftTolerant`] (the default): the shift-tolerant LPIPS of Ghildyal and
//!   Liu (ECCV 2022), as `stlpips-pytorch` 0.0.2 computes
//!   `LPIPS(net='alex', variant='shift_tolerant')`. Its weights ship with Restora in
//!   `static/weights/lpips/alex_shift_tolerant.safetensors` (BSD-2-Clause, see the `LICENSE-stlpips`
//!   beside it; converted by `tools/lpips/convert_stlpips.py`).
//! - [`LpipsVariant::Standard`]: LPIPS v0.1 (`lpips.LPIPS(net='alex')`): torchvision's AlexNet
//!   trunk with the `lpips` wheel's linear heads. Not shipped (the trunk is torchvision's
//!   ImageNet AlexNet): users who have both files build the safetensors with
//!   `convert_stlpips.py --standard`.
//!
//! # The network
//!
//! Both images go through the same steps (`a` and `b` are `[N, 3, H, W]` in `[0, 1]`):
//!
//! 1. `x ↦ 2x − 1`, then the scaling layer `(x − shift) / scale` per channel
//!    (`shift = [−0.030, −0.088, −0.188]`, `scale = [0.458, 0.448, 0.450]`).
//! 2. An AlexNet trunk giving five feature maps (all convolutions have biases, every feature is
//!    taken after its ReLU):
//!
//!    | layer | shift-tolerant | standard | channels |
//!    |---|---|---|---|
//!    | 1 | conv 11×11 stride 1 pad 2 → blur-pool → ReLU | conv 11×11 stride 4 pad 2 → ReLU | 64 |
//!    | 2 | max-pool 3 stride 1 → blur-pool → conv 5×5 pad 2 → ReLU | max-pool 3 stride 2 → conv 5×5 pad 2 → ReLU | 192 |
//!    | 3 | max-pool 3 stride 1 → blur-pool → conv 3×3 pad 1 → ReLU | max-pool 3 stride 2 → conv 3×3 pad 1 → ReLU | 384 |
//!    | 4 | conv 3×3 pad 1 → ReLU | same | 256 |
//!    | 5 | conv 3×3 pad 1 → ReLU | same | 256 |
//!
//!    A blur-pool ([`BlurPool`]) reflect-pads by 2 on every side, then convolves each channel
//!    with a 3×3 binomial filter (`[1,2,1]ᵀ[1,2,1] / 16`, stored in the weights) at stride 2.
//!    Max-pools have no padding.
//! 3. Per layer: each feature vector is divided by its Euclidean norm over channels
//!    (`f / (‖f‖ + 1e-10)`), the two images' normalised features are subtracted and squared,
//!    a 1×1 convolution without bias (the linear head, one output channel) weights the channels,
//!    and the result is averaged over space.
//! 4. The five layer terms are summed: one distance per image pair.
//!
//! Smallest input side: 21 px (shift-tolerant), 31 px (standard); see [`LpipsVariant::min_side`].
//!
//! # Weights
//!
//! A safetensors file whose tensors keep the PyTorch state-dict names (any float dtype among
//! F32, F64, F16, BF16; read as `f32`). Extra tensors are ignored. See
//! [`LpipsVariant::weight_shapes`] for the full list; in short:
//!
//! - both: `scaling_layer.shift`, `scaling_layer.scale` `[1, 3, 1, 1]`;
//!   `lin{0..4}.model.1.weight` `[1, C_l, 1, 1]`;
//! - shift-tolerant: convolutions `net.slice1.0`, `net.slice2.5`, `net.slice3.9`,
//!   `net.slice4.11`, `net.slice5.13` (`.weight`, `.bias`), blur filters `net.slice1.1.filt`,
//!   `net.slice2.4.filt`, `net.slice3.8.filt` `[C, 1, 3, 3]`;
//! - standard: convolutions `net.slice1.0`, `net.slice2.3`, `net.slice3.6`, `net.slice4.8`,
//!   `net.slice5.10`, no blur filters.
//!
//! # Example
//!
//! ```ignore
//! let lpips = Lpips::<B>::from_safetensors(&bytes, &device)?;
//! let d = lpips.distance(a, b); // [N]
//! ```

use burn::config::Config;
use burn::module::{Ignored, Initializer, Module, Param};
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::PaddingConfig2d;
use burn::tensor::activation::relu;
use burn::tensor::backend::Backend;
use burn::tensor::module::{conv2d, max_pool2d};
use burn::tensor::ops::{ConvOptions, PadMode};
use burn::tensor::{bf16, f16, ElementConversion, Tensor, TensorData};
use safetensors::{Dtype, SafeTensors};

use crate::image::Image;

/// Channels of the five AlexNet feature maps LPIPS compares.
pub const LPIPS_CHANNELS: [usize; 5] = [64, 192, 384, 256, 256];

/// LPIPS' scaling layer: subtracted from the input in `[-1, 1]`, per channel.
const SHIFT: [f32; 3] = [-0.030, -0.088, -0.188];
/// LPIPS' scaling layer: divides the shifted input, per channel.
const SCALE: [f32; 3] = [0.458, 0.448, 0.450];
/// Added to the feature norm before dividing (LPIPS' `normalize_tensor`).
const NORM_EPS: f64 = 1e-10;

/// What can go wrong loading LPIPS weights or measuring a pair of images.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LpipsError {
    /// The bytes are not a safetensors file.
    #[error("the LPIPS weights are not a valid safetensors file: {0}")]
    Parse(String),
    /// An expected tensor is absent.
    #[error("the LPIPS weights have no tensor `{key}` (expected shape {expected:?})")]
    MissingKey { key: String, expected: Vec<usize> },
    /// A tensor has the wrong shape.
    #[error("the LPIPS weight `{key}` has shape {found:?}, expected {expected:?}")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },
    /// A tensor is not floating point.
    #[error("the LPIPS weight `{key}` has dtype {found}, expected F32, F64, F16 or BF16")]
    Dtype { key: String, found: String },
    /// The two images must have the same shape.
    #[error("LPIPS compares images of one shape, got {a:?} and {b:?} ([N, 3, H, W])")]
    ShapeDiffers { a: [usize; 4], b: [usize; 4] },
    /// LPIPS takes RGB images.
    #[error("LPIPS takes 3-channel images, got {channels} channels")]
    Channels { channels: usize },
    /// The trunk cannot downsample an image this small.
    #[error("LPIPS ({variant:?}) needs images of at least {min}×{min} px, got {width}×{height}")]
    TooSmall { variant: LpipsVariant, min: usize, width: usize, height: usize },
}

/// Which AlexNet LPIPS: the trunk's downsampling and the weight keys it expects.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum LpipsVariant {
    /// Shift-tolerant LPIPS (stlpips `variant='shift_tolerant'`): stride-1 first convolution,
    /// reflect-padded blur-pool downsampling after convolution 1 and after each max-pool
    /// (stride 1).
    ShiftTolerant,
    /// Standard LPIPS v0.1: torchvision's AlexNet, stride-4 first convolution and
    /// stride-2 max-pools.
    Standard,
}

impl LpipsVariant {
    /// Smallest height and width the trunk accepts (the last blur-pool's reflect padding, or
    /// the second max-pool, needs a few pixels left).
    pub fn min_side(self) -> usize {
        match self {
            Self::ShiftTolerant => 21,
            Self::Standard => 31,
        }
    }

    /// Every tensor the weights file must hold, with its shape, in network order (the order of
    /// the PyTorch state dict).
    pub fn weight_shapes(self) -> Vec<(String, Vec<usize>)> {
        let layout = self.layout();
        let mut keys = vec![
            ("scaling_layer.shift".to_string(), vec![1, 3, 1, 1]),
            ("scaling_layer.scale".to_string(), vec![1, 3, 1, 1]),
        ];
        let conv = |keys: &mut Vec<_>, spec: &ConvSpec| {
            keys.push((format!("{}.weight", spec.key), spec.weight_shape().to_vec()));
            keys.push((format!("{}.bias", spec.key), vec![spec.channels[1]]));
        };
        let blur = |keys: &mut Vec<_>, spec: &Option<BlurSpec>| {
            if let Some(b) = spec {
                keys.push((b.key.to_string(), vec![b.channels, 1, 3, 3]));
            }
        };
        let [c1, c2, c3, c4, c5] = &layout.convs;
        let [b1, b2, b3] = &layout.blurs;
        conv(&mut keys, c1);
        blur(&mut keys, b1);
        blur(&mut keys, b2);
        conv(&mut keys, c2);
        blur(&mut keys, b3);
        for spec in [c3, c4, c5] {
            conv(&mut keys, spec);
        }
        for (l, channels) in LPIPS_CHANNELS.iter().enumerate() {
            keys.push((format!("lin{l}.model.1.weight"), vec![1, *channels, 1, 1]));
        }
        keys
    }

    fn layout(self) -> Layout {
        let conv = |key, channels, kernel, stride, padding| ConvSpec { key, channels, kernel, stride, padding };
        let blur = |key, channels| Some(BlurSpec { key, channels });
        match self {
            Self::ShiftTolerant => Layout {
                convs: [
                    conv("net.slice1.0", [3, 64], 11, 1, 2),
                    conv("net.slice2.5", [64, 192], 5, 1, 2),
                    conv("net.slice3.9", [192, 384], 3, 1, 1),
                    conv("net.slice4.11", [384, 256], 3, 1, 1),
                    conv("net.slice5.13", [256, 256], 3, 1, 1),
                ],
                blurs: [blur("net.slice1.1.filt", 64), blur("net.slice2.4.filt", 64), blur("net.slice3.8.filt", 192)],
            },
            Self::Standard => Layout {
                convs: [
                    conv("net.slice1.0", [3, 64], 11, 4, 2),
                    conv("net.slice2.3", [64, 192], 5, 1, 2),
                    conv("net.slice3.6", [192, 384], 3, 1, 1),
                    conv("net.slice4.8", [384, 256], 3, 1, 1),
                    conv("net.slice5.10", [256, 256], 3, 1, 1),
                ],
                blurs: [None, None, None],
            },
        }
    }
}

/// One AlexNet convolution: its state-dict prefix and geometry.
struct ConvSpec {
    key: &'static str,
    /// `[in, out]`.
    channels: [usize; 2],
    kernel: usize,
    stride: usize,
    padding: usize,
}

impl ConvSpec {
    fn weight_shape(&self) -> [usize; 4] {
        [self.channels[1], self.channels[0], self.kernel, self.kernel]
    }

    fn config(&self) -> Conv2dConfig {
        Conv2dConfig::new(self.channels, [self.kernel, self.kernel])
            .with_stride([self.stride, self.stride])
            .with_padding(PaddingConfig2d::Explicit(self.padding, self.padding))
    }
}

/// One blur-pool: its filter's state-dict key and channel count.
struct BlurSpec {
    key: &'static str,
    channels: usize,
}

/// The trunk's geometry and keys: five convolutions, and the blur-pools after convolution 1,
/// after max-pool 1 and after max-pool 2 (absent in the standard variant).
struct Layout {
    convs: [ConvSpec; 5],
    blurs: [Option<BlurSpec>; 3],
}

/// Configuration of [`Lpips`].
#[derive(Config, Debug)]
pub struct LpipsConfig {
    /// Which AlexNet LPIPS.
    #[config(default = "LpipsVariant::ShiftTolerant")]
    pub variant: LpipsVariant,
}

impl LpipsConfig {
    /// An LPIPS network with untrained weights (random convolutions, binomial blur filters,
    /// LPIPS' scaling constants, linear heads of ones as in LPIPS' uncalibrated baseline, so
    /// distances are ≥ 0): the shapes of [`LpipsConfig::load`]'s, for tests and benchmarks.
    /// Use [`LpipsConfig::load`] to measure anything.
    pub fn init<B: Backend>(&self, device: &B::Device) -> Lpips<B> {
        let layout = self.variant.layout();
        let scaling = |v: [f32; 3]| Param::from_tensor(Tensor::<B, 1>::from_floats(v, device).reshape([1, 3, 1, 1]));
        let blur = |i: usize| {
            layout.blurs[i]
                .as_ref()
                .map(|b| BlurPool { filter: Param::from_tensor(binomial_filter(b.channels, device)) })
        };
        let convs = &layout.convs;
        Lpips {
            shift: scaling(SHIFT),
            scale: scaling(SCALE),
            conv1: convs[0].config().init(device),
            blur1: blur(0),
            blur2: blur(1),
            conv2: convs[1].config().init(device),
            blur3: blur(2),
            conv3: convs[2].config().init(device),
            conv4: convs[3].config().init(device),
            conv5: convs[4].config().init(device),
            heads: LPIPS_CHANNELS
                .iter()
                .map(|&c| {
                    Conv2dConfig::new([c, 1], [1, 1])
                        .with_bias(false)
                        .with_initializer(Initializer::Constant { value: 1.0 })
                        .init(device)
                })
                .collect(),
            variant: Ignored(self.variant),
        }
    }

    /// Builds the network from a safetensors file's bytes (see the module documentation for
    /// the keys). Every expected tensor is checked; the first missing or misshapen one is named
    /// in the error. The loaded parameters do not require gradients (LPIPS is a fixed metric,
    /// also when used as a loss on an autodiff backend).
    pub fn load<B: Backend>(&self, bytes: &[u8], device: &B::Device) -> Result<Lpips<B>, LpipsError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| LpipsError::Parse(e.to_string()))?;
        let layout = self.variant.layout();
        // Check every key before building anything, so the error names the first bad key in
        // network order.
        for (key, shape) in self.variant.weight_shapes() {
            read(&file, &key, &shape)?;
        }
        let get = |key: &str, shape: &[usize]| read(&file, key, shape);
        let tensor4 = |key: &str, shape: [usize; 4]| -> Result<Param<Tensor<B, 4>>, LpipsError> {
            Ok(Param::from_tensor(Tensor::from_data(TensorData::new(get(key, &shape)?, shape), device)))
        };
        let conv = |spec: &ConvSpec| -> Result<Conv2d<B>, LpipsError> {
            let mut conv = spec.config().init::<B>(device);
            conv.weight = tensor4(&format!("{}.weight", spec.key), spec.weight_shape())?;
            let bias = get(&format!("{}.bias", spec.key), &[spec.channels[1]])?;
            conv.bias = Some(Param::from_tensor(Tensor::from_data(TensorData::new(bias, [spec.channels[1]]), device)));
            Ok(conv)
        };
        let blur = |i: usize| -> Result<Option<BlurPool<B>>, LpipsError> {
            layout.blurs[i]
                .as_ref()
                .map(|b| Ok(BlurPool { filter: tensor4(b.key, [b.channels, 1, 3, 3])? }))
                .transpose()
        };
        let heads = LPIPS_CHANNELS
            .iter()
            .enumerate()
            .map(|(l, &c)| {
                let mut head = Conv2dConfig::new([c, 1], [1, 1]).with_bias(false).init::<B>(device);
                head.weight = tensor4(&format!("lin{l}.model.1.weight"), [1, c, 1, 1])?;
                Ok(head)
            })
            .collect::<Result<Vec<_>, LpipsError>>()?;
        let convs = &layout.convs;
        let lpips = Lpips {
            shift: tensor4("scaling_layer.shift", [1, 3, 1, 1])?,
            scale: tensor4("scaling_layer.scale", [1, 3, 1, 1])?,
            conv1: conv(&convs[0])?,
            blur1: blur(0)?,
            blur2: blur(1)?,
            conv2: conv(&convs[1])?,
            blur3: blur(2)?,
            conv3: conv(&convs[2])?,
            conv4: conv(&convs[3])?,
            conv5: conv(&convs[4])?,
            heads,
            variant: Ignored(self.variant),
        };
        Ok(lpips.no_grad())
    }
}

/// Reads tensor `key` as `f32` values, checking its presence, shape and dtype.
fn read(file: &SafeTensors, key: &str, shape: &[usize]) -> Result<Vec<f32>, LpipsError> {
    let view =
        file.tensor(key).map_err(|_| LpipsError::MissingKey { key: key.to_string(), expected: shape.to_vec() })?;
    if view.shape() != shape {
        return Err(LpipsError::ShapeMismatch {
            key: key.to_string(),
            expected: shape.to_vec(),
            found: view.shape().to_vec(),
        });
    }
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        other => return Err(LpipsError::Dtype { key: key.to_string(), found: format!("{other:?}") }),
    };
    Ok(values)
}

/// `[channels, 1, 3, 3]`: the normalised binomial filter `[1,2,1]ᵀ[1,2,1] / 16` per channel.
fn binomial_filter<B: Backend>(channels: usize, device: &B::Device) -> Tensor<B, 4> {
    let taps = [1.0f32, 2.0, 1.0];
    let kernel: Vec<f32> =
        (0..channels).flat_map(|_| taps.iter().flat_map(|&a| taps.iter().map(move |&b| a * b / 16.0))).collect();
    Tensor::from_data(TensorData::new(kernel, [channels, 1, 3, 3]), device)
}

/// Anti-aliased downsampling by 2 (Zhang, ICML 2019), in stlpips' "pad more" form: reflect
/// padding of 2 on every side, then a depthwise 3×3 blur at stride 2.
#[derive(Module, Debug)]
pub struct BlurPool<B: Backend> {
    /// `[channels, 1, 3, 3]`, one blur filter per channel.
    pub filter: Param<Tensor<B, 4>>,
}

impl<B: Backend> BlurPool<B> {
    /// # Shapes
    /// - `input`: `[N, C, H, W]` with `H, W ≥ 3`
    /// - output: `[N, C, ⌊(H + 1) / 2⌋ + 1, ⌊(W + 1) / 2⌋ + 1]`
    pub fn forward(&self, input: Tensor<B, 4>) -> Tensor<B, 4> {
        let channels = input.dims()[1];
        let padded = input.pad((2, 2, 2, 2), PadMode::Reflect);
        conv2d(padded, self.filter.val(), None, ConvOptions::new([2, 2], [0, 0], [1, 1], channels))
    }
}

/// LPIPS with an AlexNet trunk (see the module documentation for the network).
#[derive(Module, Debug)]
pub struct Lpips<B: Backend> {
    /// Scaling layer shift, `[1, 3, 1, 1]`.
    shift: Param<Tensor<B, 4>>,
    /// Scaling layer scale, `[1, 3, 1, 1]`.
    scale: Param<Tensor<B, 4>>,
    /// `[64, 3, 11, 11]`, stride 1 (shift-tolerant) or 4 (standard), padding 2.
    conv1: Conv2d<B>,
    /// After `conv1` (shift-tolerant only), 64 channels.
    blur1: Option<BlurPool<B>>,
    /// After the first max-pool (shift-tolerant only), 64 channels.
    blur2: Option<BlurPool<B>>,
    /// `[192, 64, 5, 5]`, padding 2.
    conv2: Conv2d<B>,
    /// After the second max-pool (shift-tolerant only), 192 channels.
    blur3: Option<BlurPool<B>>,
    /// `[384, 192, 3, 3]`, padding 1.
    conv3: Conv2d<B>,
    /// `[256, 384, 3, 3]`, padding 1.
    conv4: Conv2d<B>,
    /// `[256, 256, 3, 3]`, padding 1.
    conv5: Conv2d<B>,
    /// The five linear heads, `[1, C_l, 1, 1]` without bias, `C_l` in [`LPIPS_CHANNELS`].
    heads: Vec<Conv2d<B>>,
    variant: Ignored<LpipsVariant>,
}

impl<B: Backend> Lpips<B> {
    /// Loads LPIPS weights from safetensors bytes, choosing the variant from the keys
    /// (`net.slice1.1.filt` present: shift-tolerant; otherwise standard if `net.slice2.3.weight`
    /// is there; otherwise the shift-tolerant key list is checked and its first missing key
    /// named). See [`LpipsConfig::load`].
    pub fn from_safetensors(bytes: &[u8], device: &B::Device) -> Result<Self, LpipsError> {
        let file = SafeTensors::deserialize(bytes).map_err(|e| LpipsError::Parse(e.to_string()))?;
        let has = |key: &str| file.tensor(key).is_ok();
        let variant = if !has("net.slice1.1.filt") && has("net.slice2.3.weight") {
            LpipsVariant::Standard
        } else {
            LpipsVariant::ShiftTolerant
        };
        LpipsConfig::new().with_variant(variant).load(bytes, device)
    }

    /// The variant this network computes.
    pub fn variant(&self) -> LpipsVariant {
        self.variant.0
    }

    /// Checks that two image batches can be compared: same shape, 3 channels, at least
    /// [`LpipsVariant::min_side`] pixels a side.
    pub fn check_shapes(&self, a: [usize; 4], b: [usize; 4]) -> Result<(), LpipsError> {
        if a != b {
            return Err(LpipsError::ShapeDiffers { a, b });
        }
        let [_, channels, height, width] = a;
        if channels != 3 {
            return Err(LpipsError::Channels { channels });
        }
        let min = self.variant().min_side();
        if height < min || width < min {
            return Err(LpipsError::TooSmall { variant: self.variant(), min, width, height });
        }
        Ok(())
    }

    /// The five AlexNet feature maps (after their ReLUs) of a scaled input.
    ///
    /// # Shapes
    /// - `x`: `[N, 3, H, W]`, already through the scaling layer
    /// - output `l`: `[N, LPIPS_CHANNELS[l], H_l, W_l]`
    pub fn features(&self, x: Tensor<B, 4>) -> [Tensor<B, 4>; 5] {
        let blur = |b: &Option<BlurPool<B>>, x: Tensor<B, 4>| match b {
            Some(b) => b.forward(x),
            None => x,
        };
        let pool_stride = match self.variant() {
            LpipsVariant::ShiftTolerant => 1,
            LpipsVariant::Standard => 2,
        };
        let pool = |x: Tensor<B, 4>| max_pool2d(x, [3, 3], [pool_stride; 2], [0, 0], [1, 1], false);
        let f1 = relu(blur(&self.blur1, self.conv1.forward(x)));
        let f2 = relu(self.conv2.forward(blur(&self.blur2, pool(f1.clone()))));
        let f3 = relu(self.conv3.forward(blur(&self.blur3, pool(f2.clone()))));
        let f4 = relu(self.conv4.forward(f3.clone()));
        let f5 = relu(self.conv5.forward(f4.clone()));
        [f1, f2, f3, f4, f5]
    }

    /// The five per-layer terms of the distance, whose sum is [`Lpips::distance`].
    ///
    /// # Shapes
    /// - `a`, `b`: `[N, 3, H, W]`, values in `[0, 1]`
    /// - output: five `[N]`
    ///
    /// # Panics
    /// If [`Lpips::check_shapes`] refuses the shapes.
    pub fn distance_per_layer(&self, a: Tensor<B, 4>, b: Tensor<B, 4>) -> [Tensor<B, 1>; 5] {
        if let Err(e) = self.check_shapes(a.dims(), b.dims()) {
            panic!("{e}");
        }
        let n = a.dims()[0];
        // Both images in one batch: one pass through the trunk.
        let x = Tensor::cat(vec![a, b], 0).mul_scalar(2.0).sub_scalar(1.0);
        let x = (x - self.shift.val()) / self.scale.val();
        let features = self.features(x);
        let mut heads = self.heads.iter();
        features.map(|f| {
            let norm = f.clone().powi_scalar(2).sum_dim(1).sqrt().add_scalar(NORM_EPS);
            let f = f / norm;
            let diff = (f.clone().narrow(0, 0, n) - f.narrow(0, n, n)).powi_scalar(2);
            let head = heads.next().expect("five heads");
            head.forward(diff).mean_dim(2).mean_dim(3).reshape([n])
        })
    }

    /// The LPIPS distance of each pair: 0 for identical images, larger for more different ones
    /// (`stlpips`' `LPIPS(...)(a, b, normalize=True)`).
    ///
    /// # Shapes
    /// - `a`, `b`: `[N, 3, H, W]`, RGB values in `[0, 1]`, `H, W ≥` [`LpipsVariant::min_side`]
    /// - output: `[N]`
    ///
    /// # Panics
    /// If [`Lpips::check_shapes`] refuses the shapes.
    pub fn distance(&self, a: Tensor<B, 4>, b: Tensor<B, 4>) -> Tensor<B, 1> {
        let [first, rest @ ..] = self.distance_per_layer(a, b);
        rest.into_iter().fold(first, |sum, layer| sum + layer)
    }

    /// The LPIPS distance of two [`Image`]s (reads the result back synchronously: in the
    /// browser use [`Lpips::distance`] and read back asynchronously instead).
    pub fn lpips_images(&self, a: &Image, b: &Image) -> Result<f32, LpipsError> {
        let dims = |image: &Image| [1, 3, image.height() as usize, image.width() as usize];
        self.check_shapes(dims(a), dims(b))?;
        let device = self.shift.val().device();
        let tensor =
            |image: &Image| Tensor::<B, 4>::from_data(TensorData::new(image.to_planar(), dims(image)), &device);
        Ok(self.distance(tensor(a), tensor(b)).into_scalar().elem::<f32>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TestBackend;
    use burn::tensor::Distribution;

    type B = TestBackend;

    /// Weights of the right shapes, serialised as safetensors, with `skip` left out and
    /// `reshape` given another shape.
    fn weights_bytes(variant: LpipsVariant, skip: Option<&str>, reshape: Option<&str>) -> Vec<u8> {
        let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = variant
            .weight_shapes()
            .into_iter()
            .filter(|(key, _)| Some(key.as_str()) != skip)
            .map(|(key, mut shape)| {
                if Some(key.as_str()) == reshape {
                    shape[0] += 1;
                }
                let n: usize = shape.iter().product();
                let bytes = (0..n).flat_map(|i| ((i % 7) as f32 * 0.01).to_le_bytes()).collect();
                (key, shape, bytes)
            })
            .collect();
        let views: Vec<(String, safetensors::tensor::TensorView)> = tensors
            .iter()
            .map(|(k, s, d)| (k.clone(), safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d).unwrap()))
            .collect();
        safetensors::serialize(views, &None).unwrap()
    }

    #[test]
    fn weight_keys_match_the_pytorch_state_dicts() {
        let st = LpipsVariant::ShiftTolerant.weight_shapes();
        assert_eq!(st.len(), 20, "stlpips' alex_shift_tolerant.pth has 20 tensors");
        let total: usize = st.iter().map(|(_, s)| s.iter().product::<usize>()).sum();
        assert_eq!(total, 2_473_734);
        let names: Vec<&str> = st.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(&names[2..5], ["net.slice1.0.weight", "net.slice1.0.bias", "net.slice1.1.filt"]);
        assert!(names.contains(&"net.slice3.8.filt") && names.contains(&"lin4.model.1.weight"));
        let standard = LpipsVariant::Standard.weight_shapes();
        assert_eq!(standard.len(), 17);
        assert!(standard.iter().any(|(k, s)| k == "net.slice2.3.weight" && s == &vec![192, 64, 5, 5]));
    }

    #[test]
    fn loading_names_the_first_bad_key() {
        let device = Default::default();
        let variant = LpipsVariant::ShiftTolerant;
        let config = LpipsConfig::new();
        assert!(config.load::<B>(&weights_bytes(variant, None, None), &device).is_ok());
        match config.load::<B>(&weights_bytes(variant, Some("net.slice2.4.filt"), None), &device) {
            Err(LpipsError::MissingKey { key, expected }) => {
                assert_eq!(key, "net.slice2.4.filt");
                assert_eq!(expected, vec![64, 1, 3, 3]);
            }
            other => panic!("{other:?}"),
        }
        let err = config.load::<B>(&weights_bytes(variant, None, Some("net.slice3.9.weight")), &device).unwrap_err();
        assert_eq!(
            err,
            LpipsError::ShapeMismatch {
                key: "net.slice3.9.weight".into(),
                expected: vec![384, 192, 3, 3],
                found: vec![385, 192, 3, 3],
            }
        );
        assert!(err.to_string().contains("net.slice3.9.weight") && err.to_string().contains("[385, 192, 3, 3]"));
        assert!(matches!(config.load::<B>(b"not safetensors", &device), Err(LpipsError::Parse(_))));
    }

    #[test]
    fn variant_is_detected_from_the_keys() {
        let device = Default::default();
        for variant in [LpipsVariant::ShiftTolerant, LpipsVariant::Standard] {
            let lpips = Lpips::<B>::from_safetensors(&weights_bytes(variant, None, None), &device).unwrap();
            assert_eq!(lpips.variant(), variant);
        }
    }

    #[test]
    fn binomial_filter_sums_to_one_per_channel() {
        let filter = binomial_filter::<B>(2, &Default::default());
        let sums: Vec<f32> = filter.sum_dim(3).sum_dim(2).into_data().to_vec().unwrap();
        assert_eq!(sums, vec![1.0, 1.0]);
    }

    #[test]
    fn blur_pool_keeps_a_constant_image_and_halves_its_size() {
        let device = Default::default();
        let blur = BlurPool::<B> { filter: Param::from_tensor(binomial_filter(3, &device)) };
        let out = blur.forward(Tensor::ones([1, 3, 9, 10], &device).mul_scalar(0.5));
        assert_eq!(out.dims(), [1, 3, 6, 6]);
        let max_err = out.sub_scalar(0.5).abs().max().into_scalar();
        assert!(max_err < 1e-6, "{max_err}");
    }

    #[test]
    fn identical_images_are_at_distance_zero_and_sizes_are_checked() {
        let device = Default::default();
        for variant in [LpipsVariant::ShiftTolerant, LpipsVariant::Standard] {
            let lpips = LpipsConfig::new().with_variant(variant).init::<B>(&device);
            let min = variant.min_side();
            let a = Tensor::<B, 4>::random([2, 3, min, min + 3], Distribution::Uniform(0.0, 1.0), &device);
            let d: Vec<f32> = lpips.distance(a.clone(), a).into_data().to_vec().unwrap();
            assert_eq!(d.len(), 2);
            assert!(d.iter().all(|v| v.abs() < 1e-6), "{d:?}");
            assert!(matches!(
                lpips.check_shapes([1, 3, min - 1, 64], [1, 3, min - 1, 64]),
                Err(LpipsError::TooSmall { .. })
            ));
            assert!(matches!(lpips.check_shapes([1, 3, 64, 64], [1, 3, 64, 65]), Err(LpipsError::ShapeDiffers { .. })));
        }
    }

    #[test]
    fn images_compare_through_the_convenience_function() {
        let device = Default::default();
        let lpips = LpipsConfig::new().init::<B>(&device);
        let a = Image::from_fn(24, 22, |x, y| [x as f32 / 24.0, y as f32 / 22.0, 0.5]);
        let b = Image::from_fn(24, 22, |x, y| [1.0 - x as f32 / 24.0, y as f32 / 22.0, 0.5]);
        assert_eq!(lpips.lpips_images(&a, &a).unwrap(), 0.0);
        assert!(lpips.lpips_images(&a, &b).unwrap() > 0.0);
        let small = Image::zeros(20, 22);
        assert!(matches!(lpips.lpips_images(&small, &small), Err(LpipsError::TooSmall { min: 21, .. })));
    }
}
