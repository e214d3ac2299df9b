//! Validation during training: a few validation images, centre-cropped, each degraded once per
//! task with a fixed degradation and seed (so every validation of every run sees the same
//! inputs), restored and scored with PSNR and SSIM.

use restora_model::RestoraBackend;
use std::path::Path;

use anyhow::{bail, Context, Result};
use restora_model::degradations::{Aliasing, Degradation, GaussianNoise, MotionBlur, MotionKernel, Scratches, Task};
use restora_model::inference::{restore, Control, TileOptions};
use restora_model::metrics::{psnr, ssim, Lpips, MetricOptions};
use restora_model::{Image, Mask, Restormer};
use serde::Serialize;

use crate::files::{list_images, read_image};

/// Seed of the validation degradations of image `i`: `VAL_SEED + i`, whatever the run's seed.
pub const VAL_SEED: u64 = 1000;

/// The fixed validation degradation of each task: the middle of its training range.
pub fn val_degradation(task: Task) -> Degradation {
    match task {
        Task::Denoise => Degradation::GaussianNoise(GaussianNoise { sigma: 25.0 }),
        Task::Deblur => Degradation::MotionBlur(MotionBlur { length: 15.0, angle: None, kernel: MotionKernel::Line }),
        Task::Dealias => Degradation::Aliasing(Aliasing::default()),
        Task::Inpaint => Degradation::Scratches(Scratches::default()),
    }
}

/// One validation input.
pub struct ValItem {
    pub task: Task,
    pub clean: Image,
    pub degraded: Image,
    pub mask: Option<Mask>,
}

/// Mean scores of one task.
#[derive(Debug, Clone, Serialize)]
pub struct ValRow {
    pub task: Task,
    pub images: usize,
    /// The restored crops against the clean ones.
    pub psnr: f64,
    pub ssim: f64,
    /// The degraded crops against the clean ones (what doing nothing scores).
    pub input_psnr: f64,
    pub input_ssim: f64,
    /// LPIPS (lower is better) of the restored and the degraded crops, when it was computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lpips: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_lpips: Option<f64>,
}

/// Up to `count` images of `dir` (spread over the sorted list), centre-cropped to `crop`, each
/// degraded for every task of `tasks`.
pub fn load(dir: &Path, count: usize, crop: usize, tasks: &[Task]) -> Result<Vec<ValItem>> {
    if !dir.is_dir() {
        bail!("--val {} is not a folder of clean images", dir.display());
    }
    let paths = list_images(dir)?;
    if paths.is_empty() {
        bail!("no validation images (PNG, JPEG, WebP, TIFF, BMP) in {}", dir.display());
    }
    let count = count.min(paths.len());
    let mut tasks = tasks.to_vec();
    tasks.sort();
    tasks.dedup();
    let mut items = Vec::new();
    for i in 0..count {
        let path = &paths[i * paths.len() / count];
        let image = read_image(path)?;
        let clean = center_crop(&image, crop)
            .with_context(|| format!("validation image {} is smaller than 8×8", path.display()))?;
        for &task in &tasks {
            let degraded = val_degradation(task)
                .apply(&clean, VAL_SEED + i as u64)
                .with_context(|| format!("cannot degrade {} for {task}", path.display()))?;
            items.push(ValItem { task, clean: clean.clone(), degraded: degraded.image, mask: degraded.mask });
        }
    }
    Ok(items)
}

/// The centre `crop × crop` square, or the largest centred rectangle with sides multiple of 8.
pub(crate) fn center_crop(image: &Image, crop: usize) -> Option<Image> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let (cw, ch) = (crop.min(w / 8 * 8), crop.min(h / 8 * 8));
    if cw == 0 || ch == 0 {
        return None;
    }
    let (x0, y0) = ((w - cw) / 2, (h - ch) / 2);
    Some(Image::from_fn(cw as u32, ch as u32, |x, y| image.pixel(x0 as u32 + x, y0 as u32 + y)))
}

/// Restores every item and averages PSNR / SSIM per task (in task order), and LPIPS when a
/// network is given (slower: the end of a run, sweeps).
pub fn evaluate<'a, B: RestoraBackend>(
    model: &Restormer<B>,
    items: impl IntoIterator<Item = &'a ValItem>,
    lpips: Option<&Lpips<B>>,
    device: &B::Device,
) -> Result<Vec<ValRow>> {
    let options = MetricOptions::new();
    let mut rows: Vec<(ValRow, usize)> = Vec::new();
    for item in items {
        let restored =
            restore(model, &item.degraded, item.mask.as_ref(), &TileOptions::default(), device, |_| Control::Continue)?
                .clamp();
        // Identical images have an infinite PSNR: count it as 100 dB so means stay finite.
        let scores = [
            psnr(&restored, &item.clean, &options)?.min(100.0),
            ssim(&restored, &item.clean, &options)?,
            psnr(&item.degraded, &item.clean, &options)?.min(100.0),
            ssim(&item.degraded, &item.clean, &options)?,
        ];
        let perceptual = match lpips {
            Some(network) => Some([
                f64::from(network.lpips_images(&restored, &item.clean)?),
                f64::from(network.lpips_images(&item.degraded, &item.clean)?),
            ]),
            None => None,
        };
        let index = match rows.iter().position(|(row, _)| row.task == item.task) {
            Some(index) => index,
            None => {
                let zero = lpips.map(|_| 0.0);
                let row = ValRow {
                    task: item.task,
                    images: 0,
                    psnr: 0.0,
                    ssim: 0.0,
                    input_psnr: 0.0,
                    input_ssim: 0.0,
                    lpips: zero,
                    input_lpips: zero,
                };
                rows.push((row, 0));
                rows.len() - 1
            }
        };
        let (row, _) = &mut rows[index];
        row.images += 1;
        row.psnr += scores[0];
        row.ssim += scores[1];
        row.input_psnr += scores[2];
        row.input_ssim += scores[3];
        if let (Some([restored, degraded]), Some(sum), Some(input_sum)) =
            (perceptual, row.lpips.as_mut(), row.input_lpips.as_mut())
        {
            *sum += restored;
            *input_sum += degraded;
        }
    }
    let mut rows: Vec<ValRow> = rows
        .into_iter()
        .map(|(mut row, _)| {
            let n = row.images.max(1) as f64;
            row.psnr /= n;
            row.ssim /= n;
            row.input_psnr /= n;
            row.input_ssim /= n;
            for value in [&mut row.lpips, &mut row.input_lpips].into_iter().flatten() {
                *value /= n;
            }
            row
        })
        .collect();
    rows.sort_by_key(|row| row.task);
    Ok(rows)
}

/// The number `best` is chosen by: the mean restored PSNR over the tasks.
pub fn score(rows: &[ValRow]) -> f64 {
    rows.iter().map(|r| r.psnr).sum::<f64>() / rows.len().max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crops_are_centred_multiples_of_eight() {
        let image = Image::from_fn(30, 50, |x, y| [x as f32, y as f32, 0.0]);
        let crop = center_crop(&image, 32).unwrap();
        assert_eq!((crop.width(), crop.height()), (24, 32));
        assert_eq!(crop.pixel(0, 0), [3.0, 9.0, 0.0]);
        assert!(center_crop(&Image::zeros(7, 40), 32).is_none());
        for task in Task::ALL {
            let degradation = val_degradation(task);
            degradation.validate().unwrap();
            assert_eq!(degradation.task(), task);
        }
    }
}
