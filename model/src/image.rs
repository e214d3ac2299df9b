//! Images and masks as the model crate sees them: bytes in, bytes out.
//!
//! Pixels are `f32` in `[0, 1]`, RGB interleaved, row-major, in the file's own (sRGB) encoding:
//! the model, degradations and metrics all work on these values, as BasicSR does.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// Largest accepted side, in pixels (browsers' canvas limit, so the page can show every image the
/// CLI reads: a 20,000 × 200 panorama passes). Larger images are refused before decoding.
pub const MAX_SIDE: u32 = 32_767;
/// Largest accepted pixel count (about 100 megapixels).
pub const MAX_PIXELS: u64 = 100_000_000;

/// What can go wrong reading or writing an image or a mask.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("the file is empty")]
    Empty,
    #[error("not a recognised image format (PNG, JPEG, WebP, TIFF or BMP expected)")]
    UnknownFormat,
    #[error("could not decode the image: {0}")]
    Decode(String),
    #[error("the image has zero size ({width}×{height})")]
    ZeroSize { width: u32, height: u32 },
    #[error("the image is too large: {width}×{height} (at most {MAX_SIDE} px a side and {MAX_PIXELS} pixels)")]
    TooLarge { width: u32, height: u32 },
    #[error("the mask is {mask_width}×{mask_height} but the image is {width}×{height}: they must be the same size")]
    MaskSize { mask_width: u32, mask_height: u32, width: u32, height: u32 },
    #[error("buffer of {len} values does not match {width}×{height}×{channels}")]
    BufferSize { len: usize, width: u32, height: u32, channels: u32 },
    #[error("could not encode the image: {0}")]
    Encode(String),
}

/// Bit depth of an encoded PNG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum BitDepth {
    #[default]
    Eight,
    Sixteen,
}

/// An RGB image, `f32` in `[0, 1]`, interleaved, row-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl Image {
    /// Wraps an interleaved RGB buffer of `width * height * 3` values.
    pub fn new(width: u32, height: u32, data: Vec<f32>) -> Result<Self, ImageError> {
        check_size(width, height)?;
        if data.len() != width as usize * height as usize * 3 {
            return Err(ImageError::BufferSize { len: data.len(), width, height, channels: 3 });
        }
        Ok(Self { width, height, data })
    }

    /// A black image.
    pub fn zeros(width: u32, height: u32) -> Self {
        Self { width, height, data: vec![0.0; width as usize * height as usize * 3] }
    }

    /// An image whose pixel `(x, y)` is `f(x, y)`.
    pub fn from_fn(width: u32, height: u32, mut f: impl FnMut(u32, u32) -> [f32; 3]) -> Self {
        let mut data = Vec::with_capacity(width as usize * height as usize * 3);
        for y in 0..height {
            for x in 0..width {
                data.extend_from_slice(&f(x, y));
            }
        }
        Self { width, height, data }
    }

    /// Decodes PNG, JPEG, WebP, TIFF or BMP bytes (8 or 16 bit, grey or colour, with or without
    /// alpha: grey is expanded to RGB, alpha is dropped).
    pub fn decode(bytes: &[u8]) -> Result<Self, ImageError> {
        let image = decode_dynamic(bytes)?;
        let (width, height) = (image.width(), image.height());
        Ok(Self { width, height, data: image.into_rgb32f().into_raw() })
    }

    /// Encodes as PNG, 8 or 16 bits per channel; values are clamped to `[0, 1]`.
    pub fn encode_png(&self, depth: BitDepth) -> Result<Vec<u8>, ImageError> {
        let dynamic = match depth {
            BitDepth::Eight => DynamicImage::ImageRgb8(
                image::RgbImage::from_raw(self.width, self.height, quantize(&self.data, 255.0))
                    .ok_or_else(|| ImageError::Encode("buffer size".into()))?,
            ),
            BitDepth::Sixteen => DynamicImage::ImageRgb16(
                image::ImageBuffer::from_raw(self.width, self.height, quantize(&self.data, 65535.0))
                    .ok_or_else(|| ImageError::Encode("buffer size".into()))?,
            ),
        };
        encode_png(&dynamic)
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    /// Interleaved RGB values.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn into_data(self) -> Vec<f32> {
        self.data
    }
    /// Pixel `(x, y)`.
    pub fn pixel(&self, x: u32, y: u32) -> [f32; 3] {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }
    /// Sets pixel `(x, y)`.
    pub fn set_pixel(&mut self, x: u32, y: u32, rgb: [f32; 3]) {
        let i = (y as usize * self.width as usize + x as usize) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }
    /// Clamps every value to `[0, 1]`.
    pub fn clamp(mut self) -> Self {
        self.data.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0));
        self
    }
    /// Planar copy, `[3, height, width]`, as the network takes it.
    pub fn to_planar(&self) -> Vec<f32> {
        let n = self.width as usize * self.height as usize;
        let mut out = vec![0.0; 3 * n];
        for (i, px) in self.data.chunks_exact(3).enumerate() {
            out[i] = px[0];
            out[n + i] = px[1];
            out[2 * n + i] = px[2];
        }
        out
    }
    /// Inverse of [`Image::to_planar`].
    pub fn from_planar(width: u32, height: u32, planar: &[f32]) -> Result<Self, ImageError> {
        let n = width as usize * height as usize;
        if planar.len() != 3 * n {
            return Err(ImageError::BufferSize { len: planar.len(), width, height, channels: 3 });
        }
        let mut data = Vec::with_capacity(3 * n);
        for i in 0..n {
            data.extend_from_slice(&[planar[i], planar[n + i], planar[2 * n + i]]);
        }
        Ok(Self { width, height, data })
    }
}

/// An inpainting mask: one `f32` per pixel, 1 = missing, 0 = valid.
#[derive(Debug, Clone, PartialEq)]
pub struct Mask {
    width: u32,
    height: u32,
    data: Vec<f32>,
}

impl Mask {
    /// Wraps a buffer of `width * height` values.
    pub fn new(width: u32, height: u32, data: Vec<f32>) -> Result<Self, ImageError> {
        check_size(width, height)?;
        if data.len() != width as usize * height as usize {
            return Err(ImageError::BufferSize { len: data.len(), width, height, channels: 1 });
        }
        Ok(Self { width, height, data })
    }

    /// A mask with no missing pixel.
    pub fn zeros(width: u32, height: u32) -> Self {
        Self { width, height, data: vec![0.0; width as usize * height as usize] }
    }

    /// Decodes a mask image: any pixel brighter than mid-grey (or, for images with alpha, any
    /// opaque painted pixel) is missing.
    pub fn decode(bytes: &[u8]) -> Result<Self, ImageError> {
        let image = decode_dynamic(bytes)?;
        let (width, height) = (image.width(), image.height());
        let has_alpha = image.color().has_alpha();
        let rgba = image.into_rgba32f();
        let data = rgba
            .pixels()
            .map(|p| {
                let luma = 0.299 * p[0] + 0.587 * p[1] + 0.114 * p[2];
                // Transparent pixels are valid whatever their colour.
                let painted = if has_alpha { p[3] * luma } else { luma };
                if painted > 0.5 {
                    1.0
                } else {
                    0.0
                }
            })
            .collect();
        Ok(Self { width, height, data })
    }

    /// Encodes as an 8-bit grey PNG (white = missing).
    pub fn encode_png(&self) -> Result<Vec<u8>, ImageError> {
        let grey = image::GrayImage::from_raw(self.width, self.height, quantize(&self.data, 255.0))
            .ok_or_else(|| ImageError::Encode("buffer size".into()))?;
        encode_png(&DynamicImage::ImageLuma8(grey))
    }

    /// Checks that the mask fits an image of the given size.
    pub fn check_fits(&self, image: &Image) -> Result<(), ImageError> {
        if self.width != image.width || self.height != image.height {
            return Err(ImageError::MaskSize {
                mask_width: self.width,
                mask_height: self.height,
                width: image.width,
                height: image.height,
            });
        }
        Ok(())
    }

    pub fn width(&self) -> u32 {
        self.width
    }
    pub fn height(&self) -> u32 {
        self.height
    }
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    pub fn get(&self, x: u32, y: u32) -> f32 {
        self.data[y as usize * self.width as usize + x as usize]
    }
    pub fn set(&mut self, x: u32, y: u32, value: f32) {
        self.data[y as usize * self.width as usize + x as usize] = value;
    }
    /// Fraction of missing pixels.
    pub fn coverage(&self) -> f32 {
        self.data.iter().sum::<f32>() / self.data.len().max(1) as f32
    }
}

fn check_size(width: u32, height: u32) -> Result<(), ImageError> {
    if width == 0 || height == 0 {
        return Err(ImageError::ZeroSize { width, height });
    }
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(ImageError::TooLarge { width, height });
    }
    Ok(())
}

fn decode_dynamic(bytes: &[u8]) -> Result<DynamicImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes)).with_guessed_format().map_err(decode_error)?;
    if reader.format().is_none() {
        return Err(ImageError::UnknownFormat);
    }
    // Read the header first (no limits yet, so the size check below names the real size) so a
    // huge image is refused before anything is allocated.
    reader.no_limits();
    let mut decoder = reader.into_decoder().map_err(decode_error)?;
    let (width, height) = decoder.dimensions();
    check_size(width, height)?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_PIXELS * 4 * 4 * 2);
    decoder.set_limits(limits).map_err(decode_error)?;
    DynamicImage::from_decoder(decoder).map_err(decode_error)
}

/// The decoder's error on one line: some decoders end theirs with a newline or nest a cause on
/// the next line, and the CLI and the page show errors as one line.
fn decode_error(error: impl std::fmt::Display) -> ImageError {
    let text = error.to_string();
    ImageError::Decode(text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn quantize<T: TryFrom<u32>>(data: &[f32], scale: f32) -> Vec<T>
where
    T: Default,
{
    data.iter().map(|v| T::try_from((v.clamp(0.0, 1.0) * scale).round() as u32).unwrap_or_default()).collect()
}

fn encode_png(image: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    image
        .write_to(&mut Cursor::new(&mut out), image::ImageFormat::Png)
        .map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_round_trip_8_and_16_bit() {
        let image = Image::from_fn(5, 3, |x, y| [x as f32 / 4.0, y as f32 / 2.0, 0.25]);
        let back8 = Image::decode(&image.encode_png(BitDepth::Eight).unwrap()).unwrap();
        let back16 = Image::decode(&image.encode_png(BitDepth::Sixteen).unwrap()).unwrap();
        for (a, (b, c)) in image.data().iter().zip(back8.data().iter().zip(back16.data())) {
            assert!((a - b).abs() <= 0.5 / 255.0 + 1e-6);
            assert!((a - c).abs() <= 0.5 / 65535.0 + 1e-6);
        }
    }

    #[test]
    fn planar_round_trip() {
        let image = Image::from_fn(4, 2, |x, y| [x as f32, y as f32, 7.0]);
        let back = Image::from_planar(4, 2, &image.to_planar()).unwrap();
        assert_eq!(image, back);
    }

    #[test]
    fn bad_bytes_are_named() {
        assert!(matches!(Image::decode(&[]), Err(ImageError::Empty)));
        assert!(matches!(Image::decode(b"hello world, not an image"), Err(ImageError::UnknownFormat)));
        let png = Image::zeros(8, 8).encode_png(BitDepth::Eight).unwrap();
        assert!(matches!(Image::decode(&png[..png.len() / 2]), Err(ImageError::Decode(_))));
    }

    #[test]
    fn mask_round_trip_and_size_check() {
        let mut mask = Mask::zeros(6, 4);
        mask.set(2, 1, 1.0);
        let back = Mask::decode(&mask.encode_png().unwrap()).unwrap();
        assert_eq!(mask, back);
        assert!(matches!(back.check_fits(&Image::zeros(6, 5)), Err(ImageError::MaskSize { .. })));
    }
}
