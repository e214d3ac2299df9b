//! `train-native finetune`: continue a foundation model on one task with a few images, as the
//! report does after the multi-task schedule (its best settings: denoise and deblur 700
//! iterations, anti-aliasing 600, inpainting 500, 40 training images). A fine-tune is an ordinary
//! training run (`training::run`) whose experiment starts from the given weights, trains one task
//! on a deterministic subset of the images and validates once, at the end; it is then scored with
//! PSNR, SSIM and LPIPS on the validation images.

use restora_model::RestoraBackend;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::degradations::Task;
use restora_model::metrics::Lpips;
use restora_model::weights::{self, WeightFile};
use restora_model::{Preset, RestormerConfig};

use crate::backend::{run_on, BackendChoice, BackendTask};
use crate::cli::{parse_task, DEFAULT_LPIPS};
use crate::commands::read_weights;
use crate::files::write_atomic;
use crate::training::validate::{self, ValItem, ValRow};
use crate::training::{self, ExperimentConfig, Session};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    train-native finetune --task denoise --data ../shared/corpus/train --val ../shared/corpus/val --out runs/ft-denoise\n  \
    train-native finetune --from runs/small/best.safetensors --task inpaint --iters 500 --train-size 40 \
    --val-size 8 --data DIR --val DIR --out runs/ft-inpaint --backend cuda")]
pub struct FinetuneArgs {
    /// Weights to start from: the foundation model.
    /// Default: the shipped foundation model (static/weights/models.json).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// The task to specialise in.
    #[arg(long, value_parser = parse_task)]
    pub task: Task,
    /// Training images used (a subset of --data chosen by the seed).
    #[arg(long, default_value_t = 40)]
    pub train_size: usize,
    /// Validation images scored at the end.
    #[arg(long, default_value_t = 8)]
    pub val_size: usize,
    /// Iterations [default: the report's best: denoise 700, deblur 700, dealias 600, inpaint 500].
    #[arg(long)]
    pub iters: Option<usize>,
    /// Run folder (as `train` writes it: last.safetensors is the fine-tuned model), plus scores.json.
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub knobs: FinetuneKnobs,
}

/// What every fine-tune needs besides its task and budget (shared with `sweep`).
#[derive(Args, Debug, Clone)]
pub struct FinetuneKnobs {
    /// Folder of clean training images.
    #[arg(long)]
    pub data: PathBuf,
    /// Folder of clean validation images.
    #[arg(long)]
    pub val: PathBuf,
    /// Patch side in pixels, a multiple of 8.
    #[arg(long, default_value_t = 128)]
    pub patch: usize,
    /// Patches per iteration.
    #[arg(long, default_value_t = 8)]
    pub batch: usize,
    /// Peak learning rate of the cosine decay (lower than the foundation run's 3e-4: the weights
    /// are already trained).
    #[arg(long, default_value_t = 1e-4)]
    pub lr: f64,
    /// Seed of the image subset, patches and degradations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Side of the centre crop of each validation image.
    #[arg(long, default_value_t = 256)]
    pub val_crop: usize,
    /// Data worker threads.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// LPIPS weights (left out of the scores if the file is missing).
    #[arg(long, default_value = DEFAULT_LPIPS)]
    pub lpips: PathBuf,
    /// Where the model trains.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

/// The report's best fine-tuning length per task.
pub fn default_iters(task: Task) -> usize {
    match task {
        Task::Denoise | Task::Deblur => 700,
        Task::Dealias => 600,
        Task::Inpaint => 500,
    }
}

/// One fine-tune: what it starts from and how much it trains.
#[derive(Debug, Clone)]
pub struct Plan {
    pub task: Task,
    pub train_size: usize,
    pub val_size: usize,
    pub iters: usize,
}

/// The foundation model a fine-tune starts from, read and checked once.
pub struct Foundation {
    pub path: PathBuf,
    pub bytes: Vec<u8>,
    pub config: RestormerConfig,
    pub preset: Preset,
}

impl Foundation {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = read_weights(path)?;
        let config = WeightFile::from_safetensors(&bytes)
            .and_then(|file| file.config())
            .with_context(|| format!("{} is not a Restora weights file", path.display()))?;
        let preset = Preset::ALL
            .into_iter()
            .find(|&p| RestormerConfig::preset(p).with_mask_aware(config.mask_aware) == config)
            .with_context(|| {
                format!(
                    "{} holds a model of no preset ({} parameters): fine-tuning starts from a base, small or tiny model",
                    path.display(),
                    config.num_params()
                )
            })?;
        let path = std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))?;
        Ok(Self { path, bytes, config, preset })
    }
}

/// The experiment of one fine-tune: one task, `train_size` images, validation at the end only.
pub fn experiment(foundation: &Foundation, plan: &Plan, knobs: &FinetuneKnobs) -> Result<ExperimentConfig> {
    if plan.train_size == 0 || plan.val_size == 0 || plan.iters == 0 {
        bail!("train size, val size and iterations must each be at least 1");
    }
    let absolute = |p: &Path| std::path::absolute(p).with_context(|| format!("cannot resolve {}", p.display()));
    let mut config = ExperimentConfig::default();
    config.model.preset = foundation.preset;
    config.model.mask_aware = foundation.config.mask_aware;
    config.model.init = Some(foundation.path.clone());
    config.data.train = Some(absolute(&knobs.data)?);
    config.data.val = Some(absolute(&knobs.val)?);
    config.data.train_images = Some(plan.train_size);
    config.data.val_images = plan.val_size;
    config.data.val_crop = knobs.val_crop;
    config.data.patch = knobs.patch;
    config.data.batch = knobs.batch;
    config.data.workers = knobs.workers;
    config.optimizer.lr = knobs.lr;
    config.optimizer.lr_min = config.optimizer.lr_min.min(knobs.lr);
    config.schedule.iters = plan.iters;
    config.schedule.switch_every = plan.iters;
    config.schedule.tasks = vec![plan.task];
    config.run.seed = knobs.seed;
    config.run.val_every = plan.iters;
    // A kill loses at most 100 iterations (a fine-tune of a few hundred is minutes on the CPU).
    config.run.checkpoint_every = plan.iters.min(100);
    config.validate()?;
    Ok(config)
}

/// Trains one fine-tune into `out` (resuming it if a checkpoint is there) and scores its last
/// weights on the validation images with PSNR, SSIM and, when weights are given, LPIPS.
pub fn finetune(
    foundation: &Foundation,
    plan: &Plan,
    knobs: &FinetuneKnobs,
    lpips: Option<&[u8]>,
    out: &Path,
) -> Result<ValRow> {
    let config = experiment(foundation, plan, knobs)?;
    let resume = training::checkpoint::exists(out)?.then(|| out.to_path_buf());
    let summary = training::run(
        Session { config, out: out.to_path_buf(), resume_from: resume, stop_after: None },
        knobs.backend,
    )?;
    if summary.interrupted {
        bail!(
            "interrupted at iteration {} (checkpointed in {}): run the same command again to resume",
            summary.end,
            out.display()
        );
    }
    let tuned = std::fs::read(out.join("last.safetensors"))
        .with_context(|| format!("the fine-tune in {} wrote no last.safetensors", out.display()))?;
    score(&tuned, plan, knobs, lpips)
}

/// Scores weights on `plan.val_size` validation images degraded for `plan.task`.
pub fn score(weights: &[u8], plan: &Plan, knobs: &FinetuneKnobs, lpips: Option<&[u8]>) -> Result<ValRow> {
    let items = validate::load(&knobs.val, plan.val_size, knobs.val_crop, &[plan.task])?;
    let rows = run_on(knobs.backend, Score { weights, items: &items, lpips })?;
    rows.into_iter().next().context("no validation rows")
}

struct Score<'a> {
    weights: &'a [u8],
    items: &'a [ValItem],
    lpips: Option<&'a [u8]>,
}

impl BackendTask for Score<'_> {
    type Output = Vec<ValRow>;

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Vec<ValRow>> {
        let (model, _) = weights::load::<B>(self.weights, &device).context("cannot load the weights to score")?;
        let lpips = self
            .lpips
            .map(|bytes| Lpips::<B>::from_safetensors(bytes, &device))
            .transpose()
            .context("cannot load the LPIPS weights")?;
        validate::evaluate(&model, self.items, lpips.as_ref(), &device)
    }
}

/// The LPIPS weights, or `None` with a note when the file is missing.
pub fn read_lpips(path: &Path) -> Result<Option<Vec<u8>>> {
    if !path.exists() {
        eprintln!("note: no LPIPS weights at {}; LPIPS is left out", path.display());
        return Ok(None);
    }
    Ok(Some(std::fs::read(path).with_context(|| format!("cannot read LPIPS weights {}", path.display()))?))
}

pub fn run(args: FinetuneArgs) -> Result<()> {
    let foundation = Foundation::read(&crate::shipped::foundation_or_shipped(args.from.as_deref())?)?;
    let plan = Plan {
        task: args.task,
        train_size: args.train_size,
        val_size: args.val_size,
        iters: args.iters.unwrap_or(default_iters(args.task)),
    };
    let lpips = read_lpips(&args.knobs.lpips)?;
    let before = score(&foundation.bytes, &plan, &args.knobs, lpips.as_deref())?;
    let after = finetune(&foundation, &plan, &args.knobs, lpips.as_deref(), &args.out)?;
    let lpips_text = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.4}"));
    println!(
        "{} on {} validation images: input {:.2} dB; foundation {:.2} dB / SSIM {:.4} / LPIPS {}; \
         fine-tuned ({} iterations, {} images) {:.2} dB / SSIM {:.4} / LPIPS {}",
        plan.task,
        after.images,
        after.input_psnr,
        before.psnr,
        before.ssim,
        lpips_text(before.lpips),
        plan.iters,
        plan.train_size,
        after.psnr,
        after.ssim,
        lpips_text(after.lpips)
    );
    let scores = serde_json::json!({ "task": plan.task, "iters": plan.iters, "train_size": plan.train_size,
        "val_size": plan.val_size, "foundation": before, "finetuned": after });
    write_atomic(&args.out.join("scores.json"), serde_json::to_string_pretty(&scores)?.as_bytes())?;
    println!("wrote {}", args.out.join("last.safetensors").display());
    Ok(())
}
