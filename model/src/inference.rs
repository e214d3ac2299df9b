//! Restoring an image of any size: reflect-pad to a multiple of 8 and crop back; split large
//! images into overlapping tiles blended with a smooth window, so memory is bounded by the tile;
//! report progress per tile and stop when asked.
//!
//! MDTA attends over all pixels of its input, so a tiled result is not bit-identical to a
//! whole-image one: each tile computes its channel statistics from its own pixels. Large tiles and
//! generous overlap keep the difference invisible; `tile: None` runs the whole image at once.

use burn::prelude::*;
use burn::tensor::ops::PadMode;
use burn::tensor::TensorData;

use crate::{Image, ImageError, Mask, RestoraBackend, Restormer};

/// The network needs sides divisible by 8 (three 2× downsamplings).
pub const SIZE_MULTIPLE: usize = 8;

/// How to split the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TileOptions {
    /// Tile side in pixels (rounded up to a multiple of 8), or `None` for the whole image at once.
    pub tile: Option<usize>,
    /// Overlap between neighbouring tiles in pixels (rounded up to a multiple of 8).
    pub overlap: usize,
}

impl Default for TileOptions {
    fn default() -> Self {
        Self { tile: None, overlap: 32 }
    }
}

/// Progress of a restoration, in tiles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// What the progress callback wants next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Continue,
    Cancel,
}

/// What can go wrong during a restoration.
#[derive(Debug, thiserror::Error)]
pub enum InferenceError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error("the model returned {got} values for a tile of {expected}")]
    Readback { expected: usize, got: usize },
    #[error("could not read the result back from the device: {0}")]
    Device(String),
}

/// A tile: the region of the image the network sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tile {
    pub x: usize,
    pub y: usize,
    pub width: usize,
    pub height: usize,
}

/// Tiles covering a `width × height` image with origins on multiples of 8 (so the network's
/// downsampling grid is the same in every tile) and the requested overlap.
pub fn plan_tiles(width: usize, height: usize, options: &TileOptions) -> Vec<Tile> {
    let Some(tile) = options.tile else {
        return vec![Tile { x: 0, y: 0, width, height }];
    };
    let tile = round_up(tile.max(SIZE_MULTIPLE), SIZE_MULTIPLE);
    let overlap = round_up(options.overlap, SIZE_MULTIPLE).min(tile - SIZE_MULTIPLE);
    // (start, length) along one axis; the last span is aligned down to the grid and runs to the
    // border, so it may be up to 7 px longer than `tile`.
    let spans = |size: usize| -> Vec<(usize, usize)> {
        if size <= tile {
            return vec![(0, size)];
        }
        let stride = tile - overlap;
        let last = (size - tile) / SIZE_MULTIPLE * SIZE_MULTIPLE;
        let mut spans: Vec<(usize, usize)> =
            (0..).map(|i| i * stride).take_while(|&s| s < last).map(|s| (s, tile)).collect();
        spans.push((last, size - last));
        spans
    };
    let mut tiles = Vec::new();
    for (y, height) in spans(height) {
        for (x, width) in spans(width) {
            tiles.push(Tile { x, y, width, height });
        }
    }
    tiles
}

/// One restoration in progress: tiles in, blended image out. The sync and async drivers below
/// differ only in how they read a tile back from the device.
pub struct Restoration<'a, B: RestoraBackend> {
    model: &'a Restormer<B>,
    image: &'a Image,
    mask: Option<&'a Mask>,
    tiles: Vec<Tile>,
    overlap: usize,
    sum: Vec<f32>,
    weight: Vec<f32>,
    device: B::Device,
}

impl<'a, B: RestoraBackend> Restoration<'a, B> {
    /// Prepares the tiles; fails if the mask does not fit the image.
    pub fn new(
        model: &'a Restormer<B>,
        image: &'a Image,
        mask: Option<&'a Mask>,
        options: &TileOptions,
        device: &B::Device,
    ) -> Result<Self, InferenceError> {
        if let Some(mask) = mask {
            mask.check_fits(image)?;
        }
        let (w, h) = (image.width() as usize, image.height() as usize);
        Ok(Self {
            model,
            image,
            mask,
            tiles: plan_tiles(w, h, options),
            overlap: round_up(options.overlap, SIZE_MULTIPLE),
            sum: vec![0.0; w * h * 3],
            weight: vec![0.0; w * h],
            device: device.clone(),
        })
    }

    pub fn tiles(&self) -> &[Tile] {
        &self.tiles
    }

    /// Runs the network on tile `index`; the result is `[1, 3, height, width]`.
    pub fn run_tile(&self, index: usize) -> Tensor<B, 4> {
        let tile = self.tiles[index];
        let image = crop_image(self.image, tile);
        let input =
            Tensor::<B, 1>::from_floats(image.as_slice(), &self.device).reshape([1, 3, tile.height, tile.width]);
        let mask = self.mask.map(|mask| {
            Tensor::<B, 1>::from_floats(crop_mask(mask, tile).as_slice(), &self.device).reshape([
                1,
                1,
                tile.height,
                tile.width,
            ])
        });
        forward_padded(self.model, input, mask)
    }

    /// Blends a tile's result (planar RGB, as read back) into the output.
    pub fn accumulate(&mut self, index: usize, values: &[f32]) -> Result<(), InferenceError> {
        let tile = self.tiles[index];
        let n = tile.width * tile.height;
        if values.len() != 3 * n {
            return Err(InferenceError::Readback { expected: 3 * n, got: values.len() });
        }
        let (w, h) = (self.image.width() as usize, self.image.height() as usize);
        let ramp_x = blend_ramp(tile.x, tile.width, w, self.overlap);
        let ramp_y = blend_ramp(tile.y, tile.height, h, self.overlap);
        for ty in 0..tile.height {
            for tx in 0..tile.width {
                let weight = ramp_x[tx] * ramp_y[ty];
                let pixel = (tile.y + ty) * w + tile.x + tx;
                let i = ty * tile.width + tx;
                for c in 0..3 {
                    self.sum[pixel * 3 + c] += weight * values[c * n + i];
                }
                self.weight[pixel] += weight;
            }
        }
        Ok(())
    }

    /// Blends a tile's read-back result and reports progress; fails with
    /// [`InferenceError::Cancelled`] when the callback asks to stop.
    fn tile_done(
        &mut self,
        index: usize,
        data: TensorData,
        progress: &mut impl FnMut(Progress) -> Control,
    ) -> Result<(), InferenceError> {
        let values = data.into_vec::<f32>().map_err(|e| InferenceError::Device(format!("{e:?}")))?;
        self.accumulate(index, &values)?;
        match progress(Progress { done: index + 1, total: self.tiles.len() }) {
            Control::Continue => Ok(()),
            Control::Cancel => Err(InferenceError::Cancelled),
        }
    }

    /// The blended image; where a mask was given, pixels outside it are the input's own.
    pub fn finish(self) -> Result<Image, InferenceError> {
        let mut data = self.sum;
        for (pixel, weight) in self.weight.iter().enumerate() {
            for c in 0..3 {
                data[pixel * 3 + c] /= weight;
            }
        }
        if let Some(mask) = self.mask {
            for (pixel, &missing) in mask.data().iter().enumerate() {
                for c in 0..3 {
                    let i = pixel * 3 + c;
                    data[i] = missing * data[i] + (1.0 - missing) * self.image.data()[i];
                }
            }
        }
        Ok(Image::new(self.image.width(), self.image.height(), data)?.clamp())
    }
}

/// Restores `image` (with an optional inpainting mask), tile by tile, calling `progress` after
/// each tile; returns [`InferenceError::Cancelled`] as soon as it answers [`Control::Cancel`].
pub fn restore<B: RestoraBackend>(
    model: &Restormer<B>,
    image: &Image,
    mask: Option<&Mask>,
    options: &TileOptions,
    device: &B::Device,
    mut progress: impl FnMut(Progress) -> Control,
) -> Result<Image, InferenceError> {
    let mut restoration = Restoration::new(model, image, mask, options, device)?;
    for index in 0..restoration.tiles().len() {
        let data = restoration.run_tile(index).into_data();
        restoration.tile_done(index, data, &mut progress)?;
    }
    restoration.finish()
}

/// [`restore`] for the browser, where tensors can only be read back asynchronously.
pub async fn restore_async<B: RestoraBackend>(
    model: &Restormer<B>,
    image: &Image,
    mask: Option<&Mask>,
    options: &TileOptions,
    device: &B::Device,
    mut progress: impl FnMut(Progress) -> Control,
) -> Result<Image, InferenceError> {
    let mut restoration = Restoration::new(model, image, mask, options, device)?;
    for index in 0..restoration.tiles().len() {
        let data = restoration.run_tile(index).into_data_async().await;
        let data = data.map_err(|e| InferenceError::Device(format!("{e:?}")))?;
        restoration.tile_done(index, data, &mut progress)?;
    }
    restoration.finish()
}

/// Runs the model on any size: reflect-pads right and bottom to a multiple of 8, crops back.
///
/// # Shapes
/// - image: `[B, 3, H, W]`, mask: `[B, 1, H, W]`
/// - output: `[B, 3, H, W]`
pub fn forward_padded<B: RestoraBackend>(
    model: &Restormer<B>,
    image: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
) -> Tensor<B, 4> {
    let [b, c, h, w] = image.dims();
    let (pad_h, pad_w) = (round_up(h, SIZE_MULTIPLE) - h, round_up(w, SIZE_MULTIPLE) - w);
    if pad_h == 0 && pad_w == 0 {
        return model.forward(image, mask);
    }
    // Reflection needs the pad to be smaller than the side; tiny images repeat the edge instead.
    let mode = if pad_h < h && pad_w < w { PadMode::Reflect } else { PadMode::Edge };
    let padding = (0, pad_w, 0, pad_h);
    let output = model.forward(image.pad(padding, mode), mask.map(|m| m.pad(padding, mode)));
    output.slice([0..b, 0..c, 0..h, 0..w])
}

fn round_up(value: usize, multiple: usize) -> usize {
    value.div_ceil(multiple) * multiple
}

/// Weights along one axis of a tile: a raised-cosine ramp over the overlap at edges shared with
/// another tile, 1 at the image border, so blended seams are smooth and weights never vanish.
fn blend_ramp(start: usize, len: usize, total: usize, overlap: usize) -> Vec<f32> {
    let ramp = |distance: usize| -> f32 {
        if overlap == 0 || distance >= overlap {
            1.0
        } else {
            let t = (distance as f32 + 0.5) / overlap as f32;
            0.5 - 0.5 * (std::f32::consts::PI * t).cos()
        }
    };
    (0..len)
        .map(|i| {
            let from_start = if start == 0 { 1.0 } else { ramp(i) };
            let from_end = if start + len >= total { 1.0 } else { ramp(len - 1 - i) };
            from_start * from_end
        })
        .collect()
}

fn crop_image(image: &Image, tile: Tile) -> Vec<f32> {
    let w = image.width() as usize;
    let n = tile.width * tile.height;
    let mut planar = vec![0.0; 3 * n];
    for ty in 0..tile.height {
        for tx in 0..tile.width {
            let src = ((tile.y + ty) * w + tile.x + tx) * 3;
            for c in 0..3 {
                planar[c * n + ty * tile.width + tx] = image.data()[src + c];
            }
        }
    }
    planar
}

fn crop_mask(mask: &Mask, tile: Tile) -> Vec<f32> {
    let w = mask.width() as usize;
    (0..tile.height)
        .flat_map(|ty| {
            let row = (tile.y + ty) * w + tile.x;
            mask.data()[row..row + tile.width].iter().copied()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, RestormerConfig, TestBackend};
    use burn::module::Param;

    fn test_image(w: u32, h: u32) -> Image {
        Image::from_fn(w, h, |x, y| {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            [fx, fy, 0.5 + 0.4 * ((x * 7 + y * 3) as f32).sin()]
        })
    }

    #[test]
    fn tiles_cover_the_image_on_the_grid() {
        for (w, h, tile, overlap) in [(100, 37, 32, 8), (64, 64, 64, 16), (250, 130, 48, 20), (9, 300, 16, 0)] {
            let tiles = plan_tiles(w, h, &TileOptions { tile: Some(tile), overlap });
            let mut covered = vec![false; w * h];
            for t in &tiles {
                assert_eq!(t.x % 8, 0);
                assert_eq!(t.y % 8, 0);
                assert!(t.x + t.width <= w && t.y + t.height <= h);
                for y in t.y..t.y + t.height {
                    for x in t.x..t.x + t.width {
                        covered[y * w + x] = true;
                    }
                }
            }
            assert!(covered.iter().all(|&c| c), "{w}×{h} tile {tile}");
        }
    }

    /// With the output convolution zeroed the network is the identity (global residual), so any
    /// difference between tiled and whole-image results comes from padding, cropping or blending.
    #[test]
    fn tiled_equals_untiled_for_a_per_pixel_model() {
        let device = Default::default();
        let mut model = RestormerConfig::preset(Preset::Tiny).init::<TestBackend>(&device);
        model.output.weight = Param::from_tensor(model.output.weight.val().zeros_like());
        let image = test_image(77, 45);
        let whole = restore(&model, &image, None, &TileOptions::default(), &device, |_| Control::Continue).unwrap();
        for (tile, overlap) in [(16, 8), (32, 16), (24, 0)] {
            let tiled = restore(&model, &image, None, &TileOptions { tile: Some(tile), overlap }, &device, |_| {
                Control::Continue
            })
            .unwrap();
            let max = whole.data().iter().zip(tiled.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(max < 1e-4, "tile {tile} overlap {overlap}: {max}");
        }
        let max = whole.data().iter().zip(image.data()).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
        assert!(max < 1e-6);
    }

    /// A tile as large as the image is exactly the whole-image result, random weights included.
    #[test]
    fn one_tile_is_the_whole_image() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Tiny).init::<TestBackend>(&device);
        let image = test_image(40, 24);
        let whole = restore(&model, &image, None, &TileOptions::default(), &device, |_| Control::Continue).unwrap();
        let tiled =
            restore(&model, &image, None, &TileOptions { tile: Some(64), overlap: 16 }, &device, |_| Control::Continue)
                .unwrap();
        assert_eq!(whole, tiled);
    }

    #[test]
    fn odd_sizes_are_padded_and_cropped_back() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Tiny).init::<TestBackend>(&device);
        for (w, h) in [(1, 1), (3, 13), (17, 9)] {
            let out = restore(&model, &test_image(w, h), None, &TileOptions::default(), &device, |_| Control::Continue)
                .unwrap();
            assert_eq!((out.width(), out.height()), (w, h));
        }
    }

    #[test]
    fn progress_is_reported_and_cancel_stops() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Tiny).init::<TestBackend>(&device);
        let image = test_image(48, 48);
        let options = TileOptions { tile: Some(16), overlap: 8 };
        let mut seen = Vec::new();
        restore(&model, &image, None, &options, &device, |p| {
            seen.push(p);
            Control::Continue
        })
        .unwrap();
        let total = plan_tiles(48, 48, &options).len();
        assert_eq!(seen.len(), total);
        assert_eq!(seen.last(), Some(&Progress { done: total, total }));
        let mut calls = 0;
        let result = restore(&model, &image, None, &options, &device, |_| {
            calls += 1;
            if calls == 2 {
                Control::Cancel
            } else {
                Control::Continue
            }
        });
        assert!(matches!(result, Err(InferenceError::Cancelled)));
        assert_eq!(calls, 2);
    }

    #[test]
    fn mask_keeps_valid_pixels_and_must_fit() {
        let device = Default::default();
        let model = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true).init::<TestBackend>(&device);
        let image = test_image(16, 16);
        let mut mask = Mask::zeros(16, 16);
        mask.set(5, 5, 1.0);
        let out =
            restore(&model, &image, Some(&mask), &TileOptions::default(), &device, |_| Control::Continue).unwrap();
        assert_eq!(out.pixel(0, 0), image.pixel(0, 0));
        let wrong = Mask::zeros(8, 16);
        let result = restore(&model, &image, Some(&wrong), &TileOptions::default(), &device, |_| Control::Continue);
        assert!(matches!(result, Err(InferenceError::Image(ImageError::MaskSize { .. }))));
    }
}
