//! `train-native eval`: degrade clean images with each task's degradations, restore them, and
//! report PSNR / SSIM / LPIPS of the input (no restoration) and of the result, per task and
//! degradation, as a Markdown table like the report's Table 1, or as JSON.

use restora_model::RestoraBackend;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use restora_model::degradations::{
    Aliasing, Degradation, GaussianBlur, GaussianNoise, MotionBlur, MotionKernel, PoissonNoise, SaltAndPepper,
    Scratches, Task,
};
use restora_model::inference::{restore, Control, TileOptions};
use restora_model::metrics::{error_map, psnr, ssim, ErrorScale, Lpips, MetricOptions};
use restora_model::{weights, Image};
use serde::Serialize;

use crate::backend::{run_on, BackendTask};
use crate::cli::EvalArgs;
use crate::files::{list_images, read_image, write_atomic};

/// The fixed degradations each task is evaluated on: the middle of the training ranges.
pub fn evaluation_set(task: Task) -> Vec<Degradation> {
    match task {
        Task::Denoise => vec![
            Degradation::GaussianNoise(GaussianNoise { sigma: 25.0 }),
            Degradation::PoissonNoise(PoissonNoise { peak: 30.0 }),
            Degradation::SaltAndPepper(SaltAndPepper { ratio: 0.05 }),
        ],
        Task::Deblur => vec![
            Degradation::GaussianBlur(GaussianBlur { sigma: 1.5 }),
            Degradation::MotionBlur(MotionBlur { length: 15.0, angle: None, kernel: MotionKernel::Line }),
        ],
        Task::Dealias => vec![Degradation::Aliasing(Aliasing::default())],
        Task::Inpaint => vec![Degradation::Scratches(Scratches::default())],
    }
}

/// Scores of one image pair.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Scores {
    pub psnr: f64,
    pub ssim: f64,
    pub lpips: Option<f64>,
}

/// Mean scores of one task and degradation.
#[derive(Debug, Clone, Serialize)]
pub struct Row {
    pub task: Task,
    pub degradation: String,
    pub images: usize,
    /// The degraded input against the clean image.
    pub input: Scores,
    /// The restored image against the clean image.
    pub restored: Scores,
}

#[derive(Debug, Serialize)]
struct Report {
    weights: String,
    data: String,
    seed: u64,
    crop_border: u32,
    lpips: Option<String>,
    rows: Vec<Row>,
}

pub fn run(args: EvalArgs) -> Result<()> {
    let markdown = match args.report.extension().and_then(|e| e.to_str()) {
        Some("md") => true,
        Some("json") => false,
        _ => bail!("--report {}: give a .md or .json path", args.report.display()),
    };
    if !args.data.is_dir() {
        bail!("--data {} is not a folder of clean images", args.data.display());
    }
    let mut images = list_images(&args.data)?;
    if images.is_empty() {
        bail!("no images (PNG, JPEG, WebP, TIFF, BMP) in {}", args.data.display());
    }
    if let Some(limit) = args.limit {
        images.truncate(limit);
    }
    if let Some(dir) = &args.error_maps {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let weights_path = crate::shipped::foundation_or_shipped(args.weights.as_deref())?;
    let weights = super::read_weights(&weights_path)?;
    let lpips = match std::fs::read(&args.lpips) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!("note: no LPIPS weights at {}; LPIPS is left out", args.lpips.display());
            None
        }
    };
    let backend = args.backend;
    let rows = run_on(backend, Job { args: &args, images, weights, lpips: lpips.clone() })?;
    let report = Report {
        weights: weights_path.display().to_string(),
        data: args.data.display().to_string(),
        seed: args.seed,
        crop_border: args.crop_border,
        lpips: lpips.map(|_| args.lpips.display().to_string()),
        rows,
    };
    let text = if markdown { to_markdown(&report) } else { serde_json::to_string_pretty(&report)? };
    write_atomic(&args.report, text.as_bytes())?;
    if markdown {
        print!("{text}");
    }
    println!("wrote {}", args.report.display());
    Ok(())
}

struct Job<'a> {
    args: &'a EvalArgs,
    images: Vec<PathBuf>,
    weights: Vec<u8>,
    lpips: Option<Vec<u8>>,
}

impl BackendTask for Job<'_> {
    type Output = Vec<Row>;

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Vec<Row>> {
        let args = self.args;
        let (model, _) = weights::load::<B>(&self.weights, &device).context("cannot load the weights")?;
        let lpips = self
            .lpips
            .map(|bytes| Lpips::<B>::from_safetensors(&bytes, &device))
            .transpose()
            .context("cannot load the LPIPS weights")?;
        let options = MetricOptions::new().with_crop_border(args.crop_border);
        let tiles = TileOptions { tile: args.tile, ..Default::default() };
        let score = |a: &Image, b: &Image| -> Result<Scores> {
            Ok(Scores {
                psnr: psnr(a, b, &options)?,
                ssim: ssim(a, b, &options)?,
                lpips: lpips.as_ref().and_then(|l| l.lpips_images(a, b).ok()).map(f64::from),
            })
        };

        let mut sums: BTreeMap<(usize, usize), (Task, String, Vec<(Scores, Scores)>)> = BTreeMap::new();
        for (index, path) in self.images.iter().enumerate() {
            let clean = read_image(path)?;
            for (t, &task) in args.tasks.iter().enumerate() {
                for (d, degradation) in evaluation_set(task).iter().enumerate() {
                    let degraded = degradation.apply(&clean, args.seed.wrapping_add(index as u64))?;
                    let restored = restore(&model, &degraded.image, degraded.mask.as_ref(), &tiles, &device, |_| {
                        Control::Continue
                    })?;
                    let pair = (score(&degraded.image, &clean)?, score(&restored, &clean)?);
                    eprintln!(
                        "{} {:<16} {:.2} dB → {:.2} dB",
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        degradation.kind(),
                        pair.0.psnr,
                        pair.1.psnr
                    );
                    if let Some(dir) = &args.error_maps {
                        write_error_map(dir, path, degradation.kind(), &restored, &clean)?;
                    }
                    sums.entry((t, d))
                        .or_insert_with(|| (task, degradation.kind().to_string(), Vec::new()))
                        .2
                        .push(pair);
                }
            }
        }
        Ok(sums
            .into_values()
            .map(|(task, degradation, pairs)| Row {
                task,
                degradation,
                images: pairs.len(),
                input: mean(pairs.iter().map(|p| p.0)),
                restored: mean(pairs.iter().map(|p| p.1)),
            })
            .collect())
    }
}

fn write_error_map(dir: &Path, image: &Path, kind: &str, restored: &Image, clean: &Image) -> Result<()> {
    let stem = image.file_stem().unwrap_or_default().to_string_lossy();
    let map = error_map(restored, clean, ErrorScale::Auto)?;
    write_atomic(&dir.join(format!("{stem}_{kind}.png")), &map.encode_png(Default::default())?)
}

/// Mean of the scores; an infinite PSNR (identical images) counts as 100 dB so one perfect image
/// does not make the mean infinite.
pub(crate) fn mean(scores: impl Iterator<Item = Scores> + Clone) -> Scores {
    let n = scores.clone().count().max(1) as f64;
    let lpips: Vec<f64> = scores.clone().filter_map(|s| s.lpips).collect();
    Scores {
        psnr: scores.clone().map(|s| s.psnr.min(100.0)).sum::<f64>() / n,
        ssim: scores.clone().map(|s| s.ssim).sum::<f64>() / n,
        lpips: (lpips.len() as f64 == n).then(|| lpips.iter().sum::<f64>() / n),
    }
}

fn to_markdown(report: &Report) -> String {
    let lpips = |s: &Scores| s.lpips.map_or("–".to_string(), |v| format!("{v:.4}"));
    let mut out = format!(
        "# Restora evaluation\n\nWeights `{}`, data `{}`, seed {}, crop border {}; LPIPS: {}.\n\
         \"Input\" is the degraded image itself (no restoration).\n\n\
         | Task | Degradation | Images | Input PSNR | PSNR ↑ | Input SSIM | SSIM ↑ | Input LPIPS | LPIPS ↓ |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|\n",
        report.weights,
        report.data,
        report.seed,
        report.crop_border,
        report.lpips.as_deref().unwrap_or("not computed")
    );
    for row in &report.rows {
        out.push_str(&format!(
            "| {} | {} | {} | {:.2} | **{:.2}** | {:.4} | **{:.4}** | {} | **{}** |\n",
            row.task,
            row.degradation,
            row.images,
            row.input.psnr,
            row.restored.psnr,
            row.input.ssim,
            row.restored.ssim,
            lpips(&row.input),
            lpips(&row.restored)
        ));
    }
    out
}
