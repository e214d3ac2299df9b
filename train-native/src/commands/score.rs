//! `train-native score`: PSNR / SSIM / LPIPS of restored images against their references,
//! whatever made them (another tool, a classical method, an earlier Restora run), with exactly
//! the metrics `eval` uses, so that tables mixing Restora and other methods compare like with like.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::metrics::{psnr, ssim, Lpips, MetricOptions};
use restora_model::RestoraBackend;
use serde::Serialize;

use super::eval::{mean, Scores};
use crate::backend::{run_on, BackendChoice, BackendTask};
use crate::cli::DEFAULT_LPIPS;
use crate::files::{list_images, read_image, write_atomic};

#[derive(Args, Debug)]
#[command(after_help = "Images are paired by their path relative to each folder, extension aside \
    (restored/a/b.png ↔ reference/a/b.jpg); every restored image needs its reference. Two files score one pair.\n\n\
    Example: train-native score --reference clean/ --restored bm3d/ --report bm3d.json")]
pub struct ScoreArgs {
    /// Clean reference image, or folder of them (searched recursively).
    #[arg(long)]
    pub reference: PathBuf,
    /// Restored image, or folder of them (searched recursively).
    #[arg(long)]
    pub restored: PathBuf,
    /// Report path: Markdown (.md) or JSON (.json), with every image's scores and their mean.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// LPIPS weights; LPIPS is left out, with a note, if the file is missing.
    #[arg(long, default_value = DEFAULT_LPIPS)]
    pub lpips: PathBuf,
    /// Pixels cropped from each border before PSNR / SSIM.
    #[arg(long, default_value_t = 0)]
    pub crop_border: u32,
    /// Where LPIPS runs.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

/// One scored pair; `image` is the restored file's path relative to `--restored`; PSNR at most 100 dB.
#[derive(Debug, Serialize)]
struct ImageScores {
    image: String,
    #[serde(flatten)]
    scores: Scores,
}

#[derive(Debug, Serialize)]
struct Report {
    reference: String,
    restored: String,
    crop_border: u32,
    lpips: Option<String>,
    /// Means over `images` (an infinite PSNR counts as 100 dB).
    mean: Scores,
    /// References with no restored counterpart (not scored).
    unmatched_references: usize,
    images: Vec<ImageScores>,
}

pub fn run(args: ScoreArgs) -> Result<()> {
    let markdown = match args.report.as_deref().map(|p| p.extension().and_then(|e| e.to_str())) {
        None | Some(Some("json")) => false,
        Some(Some("md")) => true,
        Some(_) => bail!("--report: give a .md or .json path"),
    };
    let (pairs, unmatched_references) = pair_up(&args.reference, &args.restored)?;
    if unmatched_references > 0 {
        eprintln!("note: {unmatched_references} reference image(s) have no restored image and are not scored");
    }
    let lpips = match std::fs::read(&args.lpips) {
        Ok(bytes) => Some(bytes),
        Err(_) => {
            eprintln!("note: no LPIPS weights at {}; LPIPS is left out", args.lpips.display());
            None
        }
    };
    let lpips_path = lpips.as_ref().map(|_| args.lpips.display().to_string());
    let images = run_on(args.backend, Job { pairs, lpips, crop_border: args.crop_border })?;
    let report = Report {
        reference: args.reference.display().to_string(),
        restored: args.restored.display().to_string(),
        crop_border: args.crop_border,
        lpips: lpips_path,
        mean: mean(images.iter().map(|i| i.scores)),
        unmatched_references,
        images,
    };
    let lpips_text = report.mean.lpips.map_or("–".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} image(s): PSNR {:.2} dB, SSIM {:.4}, LPIPS {lpips_text}",
        report.images.len(),
        report.mean.psnr,
        report.mean.ssim
    );
    if let Some(path) = &args.report {
        let text = if markdown { to_markdown(&report) } else { serde_json::to_string_pretty(&report)? + "\n" };
        write_atomic(path, text.as_bytes())?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// (reference, restored, restored path relative to its folder) for each restored image, and how
/// many references were left without a restored image.
fn pair_up(reference: &Path, restored: &Path) -> Result<(Vec<(PathBuf, PathBuf, String)>, usize)> {
    if reference.is_file() && restored.is_file() {
        let name = restored.file_name().unwrap_or_default().to_string_lossy().into_owned();
        return Ok((vec![(reference.to_path_buf(), restored.to_path_buf(), name)], 0));
    }
    for (flag, path) in [("--reference", reference), ("--restored", restored)] {
        if !path.exists() {
            bail!("{flag} {} does not exist", path.display());
        }
        if !path.is_dir() {
            bail!("{flag} {} is a file but the other is a folder: give two files or two folders", path.display());
        }
    }
    let mut references: BTreeMap<PathBuf, PathBuf> = BTreeMap::new();
    for path in list_images(reference)? {
        let key = relative_stem(reference, &path);
        if let Some(other) = references.insert(key, path.clone()) {
            bail!(
                "{} and {} both match the same restored name: keep one per name in --reference",
                other.display(),
                path.display()
            );
        }
    }
    let mut pairs = Vec::new();
    let mut missing = Vec::new();
    for path in list_images(restored)? {
        let name = path.strip_prefix(restored).unwrap_or(&path).display().to_string();
        match references.remove(&relative_stem(restored, &path)) {
            Some(reference) => pairs.push((reference, path, name)),
            None => missing.push(name),
        }
    }
    if !missing.is_empty() {
        let shown: Vec<&str> = missing.iter().take(5).map(String::as_str).collect();
        bail!(
            "{} restored image(s) have no reference of the same name in {}: {}{}",
            missing.len(),
            reference.display(),
            shown.join(", "),
            if missing.len() > shown.len() { ", …" } else { "" }
        );
    }
    if pairs.is_empty() {
        bail!("no images (PNG, JPEG, WebP, TIFF, BMP) in {}", restored.display());
    }
    Ok((pairs, references.len()))
}

/// `path` relative to `root`, without its extension: the key that pairs images.
fn relative_stem(root: &Path, path: &Path) -> PathBuf {
    path.strip_prefix(root).unwrap_or(path).with_extension("")
}

struct Job {
    pairs: Vec<(PathBuf, PathBuf, String)>,
    lpips: Option<Vec<u8>>,
    crop_border: u32,
}

impl BackendTask for Job {
    type Output = Vec<ImageScores>;

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Vec<ImageScores>> {
        let lpips = self
            .lpips
            .map(|bytes| Lpips::<B>::from_safetensors(&bytes, &device))
            .transpose()
            .context("cannot load the LPIPS weights")?;
        let options = MetricOptions::new().with_crop_border(self.crop_border);
        self.pairs
            .into_iter()
            .map(|(reference_path, restored_path, image)| {
                let reference = read_image(&reference_path)?;
                let restored = read_image(&restored_path)?;
                let scored = || -> Result<Scores> {
                    Ok(Scores {
                        // Identical images score +∞, which JSON cannot hold: capped as in the means.
                        psnr: psnr(&restored, &reference, &options)?.min(100.0),
                        ssim: ssim(&restored, &reference, &options)?,
                        lpips: lpips
                            .as_ref()
                            .map(|l| l.lpips_images(&restored, &reference))
                            .transpose()?
                            .map(f64::from),
                    })
                };
                let scores = scored().with_context(|| {
                    format!("cannot score {} against {}", restored_path.display(), reference_path.display())
                })?;
                Ok(ImageScores { image, scores })
            })
            .collect()
    }
}

fn to_markdown(report: &Report) -> String {
    let lpips = |s: &Scores| s.lpips.map_or("–".to_string(), |v| format!("{v:.4}"));
    let mut out = format!(
        "# Restora scores\n\nRestored `{}` against reference `{}`, crop border {}; LPIPS: {}.\n\n\
         | Image | PSNR ↑ | SSIM ↑ | LPIPS ↓ |\n|---|---:|---:|---:|\n",
        report.restored,
        report.reference,
        report.crop_border,
        report.lpips.as_deref().unwrap_or("not computed")
    );
    for row in report.images.iter().map(|i| (i.image.as_str(), &i.scores)).chain([("**mean**", &report.mean)]) {
        out.push_str(&format!("| {} | {:.2} | {:.4} | {} |\n", row.0, row.1.psnr, row.1.ssim, lpips(row.1)));
    }
    out
}
