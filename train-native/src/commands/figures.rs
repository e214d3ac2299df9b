//! `train-native figures`: the report's picture tables (its Tables 6–7). For a few clean images
//! and each degradation a task is evaluated on (`eval`'s set), one PNG: degraded input | each
//! model | ground truth, PSNR / SSIM under each picture, and under the input and every
//! restoration its jet error map, on one fixed scale so colours compare across models. The same
//! numbers go to `figures.md`.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::degradations::{Degradation, Degraded, Task};
use restora_model::metrics::{error_map, psnr, ssim, ErrorScale, MetricOptions};
use restora_model::Image;

use super::demo::RestoreEach;
use super::eval::evaluation_set;
use crate::backend::{run_on, BackendChoice};
use crate::cli::parse_task;
use crate::files::{list_images, read_image, write_atomic};
use crate::picture_table::{self, Cell, PictureTable};
use crate::training::validate::center_crop;

#[derive(Args, Debug)]
#[command(after_help = "Example:\n  train-native figures --model foundation=runs/small/best.safetensors \\\n    \
                        --model fine-tuned=runs/ft-inpaint/best.safetensors --tasks inpaint \\\n    \
                        --data ../shared/corpus/val --out figures")]
pub struct FiguresArgs {
    /// A model to show, as NAME=WEIGHTS (one column each, in order; repeat the flag).
    #[arg(long = "model", value_parser = parse_named_weights, required = true)]
    pub models: Vec<NamedWeights>,
    /// Folder of clean images: the first --images of them, sorted by path.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder for `<task>-<degradation>.png` and `figures.md`.
    #[arg(long)]
    pub out: PathBuf,
    /// How many images (rows) per table.
    #[arg(long, default_value_t = 3)]
    pub images: usize,
    /// Side of the centre crop of each image, in pixels (smaller images give their largest
    /// centred crop with sides a multiple of 8).
    #[arg(long, default_value_t = 192)]
    pub crop: usize,
    /// Tasks to show, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_task, default_value = "denoise,deblur,dealias,inpaint")]
    pub tasks: Vec<Task>,
    /// Seed of the degradations (image i uses seed + i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Mean absolute error drawn as the top (dark red) of every error map.
    #[arg(long, default_value_t = 0.1)]
    pub error_scale: f32,
    /// Where the models run.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

/// A column of the table: a name and its weights file.
#[derive(Debug, Clone)]
pub struct NamedWeights {
    pub name: String,
    pub path: PathBuf,
}

fn parse_named_weights(s: &str) -> Result<NamedWeights, String> {
    match s.split_once('=') {
        Some((name, path)) if !name.trim().is_empty() && !path.is_empty() => {
            Ok(NamedWeights { name: name.trim().to_string(), path: PathBuf::from(path) })
        }
        _ => Err(format!("'{s}' is not NAME=WEIGHTS (e.g. foundation=runs/small/best.safetensors)")),
    }
}

/// One clean image of the table.
struct Photo {
    name: String,
    clean: Image,
}

pub fn run(args: FiguresArgs) -> Result<()> {
    if args.images == 0 {
        bail!("--images must be at least 1");
    }
    if args.crop < 8 {
        bail!("--crop must be at least 8 pixels");
    }
    if !(args.error_scale.is_finite() && args.error_scale > 0.0) {
        bail!("--error-scale must be a positive number, not {}", args.error_scale);
    }
    let photos = load_photos(&args.data, args.images, args.crop)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    if same_dir(&args.out, &args.data) {
        bail!("--out {} is the data folder: choose another folder for the figures", args.out.display());
    }

    // Every case (task and degradation) of every photo, case-major, so each model is loaded once.
    let cases: Vec<(Task, Degradation)> =
        args.tasks.iter().flat_map(|&task| evaluation_set(task).into_iter().map(move |d| (task, d))).collect();
    let mut degraded: Vec<Degraded> = Vec::with_capacity(cases.len() * photos.len());
    for (_, degradation) in &cases {
        for (i, photo) in photos.iter().enumerate() {
            let seed = args.seed.wrapping_add(i as u64);
            degraded.push(
                degradation
                    .apply(&photo.clean, seed)
                    .with_context(|| format!("cannot apply {} to {}", degradation.kind(), photo.name))?,
            );
        }
    }
    let mut restored: Vec<Vec<Image>> = Vec::with_capacity(args.models.len());
    for model in &args.models {
        let bytes = super::read_weights(&model.path)?;
        let images = run_on(args.backend, RestoreEach { bytes, degraded: &degraded })
            .with_context(|| format!("model {} ({})", model.name, model.path.display()))?;
        restored.push(images);
    }

    let scale = ErrorScale::Fixed(args.error_scale);
    let options = MetricOptions::new();
    let mut columns = vec!["degraded input".to_string()];
    columns.extend(args.models.iter().map(|m| m.name.clone()));
    columns.push("ground truth".into());
    let mut report = format!(
        "# Picture tables\n\n{} images of {} ({}² centre crops), degradation seed {} + image index; \
         PSNR (dB) / SSIM against the clean crop. Error maps: mean absolute error, {} and above dark red.\n",
        photos.len(),
        args.data.display(),
        args.crop,
        args.seed,
        args.error_scale
    );
    for (c, (task, degradation)) in cases.iter().enumerate() {
        let mut rows = Vec::new();
        let mut scores = vec![Vec::new(); columns.len() - 1];
        for (i, photo) in photos.iter().enumerate() {
            let input = &degraded[c * photos.len() + i].image;
            let pictures: Vec<&Image> =
                std::iter::once(input).chain(restored.iter().map(|r| &r[c * photos.len() + i])).collect();
            let mut picture_row = Vec::new();
            let mut map_row = Vec::new();
            for (column, picture) in pictures.into_iter().enumerate() {
                let (p, s) = (psnr(picture, &photo.clean, &options)?, ssim(picture, &photo.clean, &options)?);
                scores[column].push((p, s));
                picture_row.push(Some(Cell { image: picture.clone(), caption: format!("{p:.2} dB / {s:.3}") }));
                let map = error_map(picture, &photo.clean, scale)?;
                map_row.push(Some(Cell { image: map, caption: "error".into() }));
            }
            picture_row.push(Some(Cell { image: photo.clean.clone(), caption: photo.name.clone() }));
            map_row.push(None);
            rows.push(picture_row);
            rows.push(map_row);
        }
        let kind = degradation.kind();
        let table = PictureTable { title: format!("{task}: {kind}"), columns: columns.clone(), rows };
        let path = args.out.join(format!("{task}-{kind}.png"));
        write_atomic(&path, &picture_table::render_png(&table)?)?;
        println!("wrote {}", path.display());
        write_scores(&mut report, *task, kind, &columns, &photos, &scores);
    }
    let path = args.out.join("figures.md");
    write_atomic(&path, report.as_bytes())?;
    println!("wrote {}", path.display());
    Ok(())
}

/// The first `count` images of `dir`, centre-cropped.
fn load_photos(dir: &Path, count: usize, crop: usize) -> Result<Vec<Photo>> {
    let paths = list_images(dir)?;
    if paths.is_empty() {
        bail!("no images in {}", dir.display());
    }
    paths
        .iter()
        .take(count)
        .map(|path| {
            let image = read_image(path)?;
            let clean =
                center_crop(&image, crop).with_context(|| format!("{} is smaller than 8×8 pixels", path.display()))?;
            let name = path.file_stem().map_or_else(|| path.display().to_string(), |s| s.to_string_lossy().into());
            Ok(Photo { name, clean })
        })
        .collect()
}

fn same_dir(a: &Path, b: &Path) -> bool {
    matches!((std::fs::canonicalize(a), std::fs::canonicalize(b)), (Ok(a), Ok(b)) if a == b)
}

/// Appends one case's PSNR / SSIM per image and column, and their means, as a Markdown table.
fn write_scores(
    report: &mut String,
    task: Task,
    kind: &str,
    columns: &[String],
    photos: &[Photo],
    scores: &[Vec<(f64, f64)>],
) {
    let scored = &columns[..scores.len()];
    let _ = write!(report, "\n## {task}: {kind}\n\n| image | {} |\n|---|", scored.join(" | "));
    report.push_str(&"---:|".repeat(scored.len()));
    for (i, photo) in photos.iter().enumerate() {
        let _ = write!(report, "\n| {} |", photo.name);
        for column in scores {
            let (p, s) = column[i];
            let _ = write!(report, " {p:.2} / {s:.4} |");
        }
    }
    report.push_str("\n| **mean** |");
    for column in scores {
        let n = column.len() as f64;
        let (p, s) = column.iter().fold((0.0, 0.0), |(p, s), &(a, b)| (p + a, s + b));
        let _ = write!(report, " **{:.2} / {:.4}** |", p / n, s / n);
    }
    report.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_weights_need_a_name_and_a_path() {
        let parsed = parse_named_weights("fine-tuned=runs/a=b.safetensors").unwrap();
        assert_eq!((parsed.name.as_str(), parsed.path.as_path()), ("fine-tuned", Path::new("runs/a=b.safetensors")));
        for bad in ["runs/model.safetensors", "=model.safetensors", "name=", " =x"] {
            assert!(parse_named_weights(bad).unwrap_err().contains("NAME=WEIGHTS"), "{bad}");
        }
    }
}
