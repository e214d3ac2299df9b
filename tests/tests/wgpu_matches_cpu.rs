//! The wgpu backend (lavapipe on CPU-only Linux: `apt-get install mesa-vulkan-drivers`) computes
//! what the CPU backend computes, on the same weights and input, mask-aware path included.

use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, WgpuDevice};
use burn::backend::{NdArray, Wgpu};
use burn::prelude::*;
use restora_model::inference::{restore, Control, TileOptions};
use restora_model::weights::{self, StoredPrecision};
use restora_model::{Image, Mask, Preset, RestormerConfig};

#[test]
fn wgpu_equals_cpu_on_a_tiny_model() {
    let device = WgpuDevice::default();
    if std::panic::catch_unwind(|| init_setup::<AutoGraphicsApi>(&device, Default::default())).is_err() {
        panic!("no wgpu adapter: install a Vulkan driver (CI: apt-get install mesa-vulkan-drivers)");
    }
    let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
    let cpu_model = config.init::<NdArray<f32>>(&Default::default());
    let bytes = weights::save(&cpu_model, &config, StoredPrecision::F32).unwrap();
    let (gpu_model, _) = weights::load::<Wgpu>(&bytes, &device).unwrap();

    let image = Image::from_fn(37, 29, |x, y| {
        let t = (x * 13 + y * 7) as f32;
        [(t * 0.01).sin() * 0.5 + 0.5, x as f32 / 37.0, y as f32 / 29.0]
    });
    let mut mask = Mask::zeros(37, 29);
    for x in 10..20 {
        mask.set(x, 12, 1.0);
        mask.set(x, 13, 1.0);
    }
    for (mask, tiles) in [(None, TileOptions::default()), (Some(&mask), TileOptions { tile: Some(24), overlap: 8 })] {
        let cpu = restore(&cpu_model, &image, mask, &tiles, &Default::default(), |_| Control::Continue).unwrap();
        let gpu = restore(&gpu_model, &image, mask, &tiles, &device, |_| Control::Continue).unwrap();
        let max = cpu.data().iter().zip(gpu.data()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
        assert!(max < 1e-3, "wgpu and CPU differ by {max} (mask: {})", mask.is_some());
    }

    // The raw network output too (no clamping that could hide a difference).
    let input =
        Tensor::<NdArray<f32>, 4>::random([1, 3, 16, 24], burn::tensor::Distribution::Default, &Default::default());
    let values: Vec<f32> = input.clone().into_data().to_vec().unwrap();
    let gpu_input = Tensor::<Wgpu, 1>::from_floats(values.as_slice(), &device).reshape([1, 3, 16, 24]);
    let cpu: Vec<f32> = cpu_model.forward(input, None).into_data().to_vec().unwrap();
    let gpu: Vec<f32> = gpu_model.forward(gpu_input, None).into_data().to_vec().unwrap();
    let max = cpu.iter().zip(&gpu).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(max < 1e-3, "raw outputs differ by {max}");
}
