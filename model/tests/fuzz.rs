//! Property tests over what users hand the model crate: image and mask bytes (random, and valid
//! PNG / 16-bit PNG / grey+alpha PNG / JPEG / CMYK JPEG / BMP / TIFF / WebP files truncated,
//! with bytes overwritten, or declaring a huge size) and weights files (valid safetensors
//! truncated, with bytes overwritten, with a NaN, with a wrong dtype or a wrong shape). Every
//! case must come back as a value or a one-line error that names the problem: never a panic, never
//! a large allocation before the size is checked.
//!
//! Cases per property: `RESTORA_FUZZ_CASES` (default 64, what CI runs). The 10,000:
//! `RESTORA_FUZZ_CASES=2000 cargo test --release -p restora-model --test fuzz` (5 properties).

use std::io::Cursor;

use burn::backend::NdArray;
use image::{DynamicImage, ImageFormat};
use proptest::prelude::*;
use restora_model::weights::{self, NamedTensor, StoredPrecision, WeightFile};
use restora_model::{BitDepth, Image, Mask, Preset, RestormerConfig};

/// A CMYK JPEG as print workflows write them (the CLI tests' fixture).
const CMYK_JPEG: &[u8] = include_bytes!("../../train-native/tests/fixtures/cmyk.jpg");

fn cases() -> u32 {
    std::env::var("RESTORA_FUZZ_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(64)
}

fn config() -> ProptestConfig {
    // No regression files next to the sources: failures print their minimal case instead.
    ProptestConfig { cases: cases(), failure_persistence: None, ..ProptestConfig::default() }
}

fn encode(image: DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut bytes = Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// Valid files of every kind the decoder takes, small and odd-sized.
fn seeds() -> Vec<Vec<u8>> {
    let rgb = Image::from_fn(13, 7, |x, y| [x as f32 / 13.0, y as f32 / 7.0, 0.5]);
    let grey_alpha =
        DynamicImage::ImageLumaA8(image::ImageBuffer::from_fn(5, 9, |x, y| image::LumaA([x as u8 * 40, y as u8 * 20])));
    let rgb8 =
        DynamicImage::ImageRgb8(image::ImageBuffer::from_fn(11, 6, |x, y| image::Rgb([x as u8 * 20, y as u8 * 30, 7])));
    vec![
        rgb.encode_png(BitDepth::Eight).unwrap(),
        rgb.encode_png(BitDepth::Sixteen).unwrap(),
        encode(grey_alpha, ImageFormat::Png),
        encode(rgb8.clone(), ImageFormat::Jpeg),
        encode(rgb8.clone(), ImageFormat::Bmp),
        encode(rgb8.clone(), ImageFormat::Tiff),
        encode(rgb8, ImageFormat::WebP),
        CMYK_JPEG.to_vec(),
    ]
}

/// One way to damage a file.
#[derive(Debug, Clone)]
enum Damage {
    Truncate(prop::sample::Index),
    Overwrite(Vec<(prop::sample::Index, u8)>),
    /// Puts a big-endian u32 at a position (PNG's IHDR width and height live at 16 and 20).
    HugeSize(prop::sample::Index, u32),
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        any::<prop::sample::Index>().prop_map(Damage::Truncate),
        prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8).prop_map(Damage::Overwrite),
        (any::<prop::sample::Index>(), prop_oneof![Just(100_000u32), Just(u32::MAX), 60_000u32..200_000])
            .prop_map(|(at, size)| Damage::HugeSize(at, size)),
    ]
}

fn apply_damage(mut bytes: Vec<u8>, damage: &Damage) -> Vec<u8> {
    match damage {
        Damage::Truncate(at) => bytes.truncate(at.index(bytes.len())),
        Damage::Overwrite(edits) => {
            for (at, byte) in edits {
                let i = at.index(bytes.len());
                bytes[i] = *byte;
            }
        }
        Damage::HugeSize(at, size) => {
            let at = if at.index(2) == 0 { 16 } else { at.index(bytes.len().saturating_sub(4).max(1)) };
            if at + 8 <= bytes.len() {
                bytes[at..at + 4].copy_from_slice(&size.to_be_bytes());
                bytes[at + 4..at + 8].copy_from_slice(&size.to_be_bytes());
            }
        }
    }
    bytes
}

fn one_line(error: &dyn std::fmt::Display) {
    let text = error.to_string();
    assert!(!text.is_empty() && !text.contains('\n'), "not a one-line error: {text:?}");
}

/// Decodes as an image and as a mask; checks what comes back.
fn decode_both(bytes: &[u8]) {
    match Image::decode(bytes) {
        Ok(image) => assert!(image.width() as u64 * image.height() as u64 <= restora_model::image::MAX_PIXELS),
        Err(error) => one_line(&error),
    }
    if let Err(error) = Mask::decode(bytes) {
        one_line(&error);
    }
}

fn tiny_weights() -> WeightFile {
    let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
    let model = config.init::<NdArray<f32>>(&Default::default());
    weights::export(&model, &config)
}

fn load(bytes: &[u8]) {
    match weights::load::<NdArray<f32>>(bytes, &Default::default()) {
        Ok(_) => {}
        Err(error) => one_line(&error),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn random_bytes_give_an_error_not_a_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        decode_both(&bytes);
        load(&bytes);
    }

    #[test]
    fn damaged_images_and_masks_give_an_error_not_a_panic(seed in any::<prop::sample::Index>(), damage in damage()) {
        let seeds = seeds();
        let bytes = apply_damage(seed.get(&seeds).clone(), &damage);
        decode_both(&bytes);
    }

    #[test]
    fn masks_of_the_wrong_size_or_not_binary_are_refused_or_binarised(
        (width, height) in (1u32..40, 1u32..40),
        (mask_width, mask_height) in (1u32..40, 1u32..40),
        grey in prop::collection::vec(any::<u8>(), 1..1600),
    ) {
        let image = Image::zeros(width, height);
        let pixels: Vec<u8> = grey.iter().copied().cycle().take((mask_width * mask_height) as usize).collect();
        let png = encode(DynamicImage::ImageLuma8(image::GrayImage::from_raw(mask_width, mask_height, pixels).unwrap()), ImageFormat::Png);
        let mask = Mask::decode(&png).unwrap();
        prop_assert!(mask.data().iter().all(|&v| v == 0.0 || v == 1.0), "a mask is binary after decoding");
        match mask.check_fits(&image) {
            Ok(()) => prop_assert_eq!((mask_width, mask_height), (width, height)),
            Err(error) => {
                one_line(&error);
                prop_assert!(error.to_string().contains(&format!("{mask_width}×{mask_height}")) || error.to_string().contains(&format!("{mask_width}x{mask_height}")), "{}", error);
            }
        }
    }

    #[test]
    fn damaged_weights_files_give_an_error_not_a_panic(damage in damage(), precision in prop_oneof![Just(StoredPrecision::F32), Just(StoredPrecision::F16)]) {
        let bytes = tiny_weights().to_safetensors(precision).unwrap();
        load(&apply_damage(bytes, &damage));
    }

    #[test]
    fn weights_with_a_nan_a_wrong_shape_or_a_missing_key_are_refused_by_name(
        which in any::<prop::sample::Index>(),
        flaw in 0usize..4,
        value in prop_oneof![Just(f32::NAN), Just(f32::INFINITY), Just(f32::NEG_INFINITY)],
    ) {
        let mut file = tiny_weights();
        let index = which.index(file.tensors.len());
        let key = file.tensors[index].key.clone();
        match flaw {
            0 => {
                let tensor = &mut file.tensors[index];
                let at = which.index(tensor.values.len());
                tensor.values[at] = value;
            }
            1 => {
                let tensor = &mut file.tensors[index];
                tensor.values.push(0.0);
                tensor.shape = vec![tensor.values.len()];
            }
            2 => { file.tensors.remove(index); }
            _ => file.tensors.push(NamedTensor { key: format!("{key}.extra"), shape: vec![1], values: vec![0.0] }),
        }
        let bytes = file.to_safetensors(StoredPrecision::F32).unwrap();
        match weights::load::<NdArray<f32>>(&bytes, &Default::default()) {
            Ok(_) => prop_assert!(false, "flaw {} of '{}' was accepted", flaw, key),
            Err(error) => {
                one_line(&error);
                prop_assert!(error.to_string().contains(&key), "the error names '{}': {}", key, error);
            }
        }
    }
}
