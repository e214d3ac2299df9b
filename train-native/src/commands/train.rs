//! `train-native train`: train a Restormer on clean images degraded on the fly, the four tasks
//! taking turns. One experiment is one TOML file (`--config`); the flags below override it; the
//! resolved experiment is saved as `config.toml` in the run folder, with `log.jsonl`,
//! `last.safetensors`, `best.safetensors` and resumable checkpoints (see `training::checkpoint`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::degradations::Task;
use restora_model::Preset;

use crate::backend::BackendChoice;
use crate::training::{self, ExperimentConfig, Session};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    train-native train --data ../shared/corpus/train --val ../shared/corpus/val --out runs/small\n  \
    train-native train --config experiment.toml --out runs/exp1 --backend wgpu\n  \
    train-native train --resume runs/exp1 --iters 100000")]
pub struct TrainArgs {
    /// Experiment file (TOML: [model], [data], [optimizer], [schedule], [run]); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder of clean training images (searched recursively; images smaller than the patch are skipped).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder of clean validation images.
    #[arg(long)]
    pub val: Option<PathBuf>,
    /// Run folder: config.toml, log.jsonl, checkpoints/, last.safetensors, best.safetensors.
    #[arg(long, required_unless_present = "resume")]
    pub out: Option<PathBuf>,
    /// Continue the run in this folder from its last checkpoint (its config.toml, then these flags).
    #[arg(long, conflicts_with = "config")]
    pub resume: Option<PathBuf>,
    /// Model shape [default: small].
    #[arg(long, value_parser = parse_preset)]
    pub preset: Option<Preset>,
    /// Total iterations; the cosine learning rate spans them [default: 50000].
    #[arg(long)]
    pub iters: Option<usize>,
    /// Iterations per task before switching (denoise → deblur → dealias → inpaint) [default: 250].
    #[arg(long)]
    pub switch_every: Option<usize>,
    /// Tasks taking turns, comma-separated [default: denoise,deblur,dealias,inpaint].
    #[arg(long, value_delimiter = ',', value_parser = parse_task)]
    pub tasks: Option<Vec<Task>>,
    /// Patches per iteration [default: 8].
    #[arg(long)]
    pub batch: Option<usize>,
    /// Patch side in pixels, a multiple of 8 [default: 128].
    #[arg(long)]
    pub patch: Option<usize>,
    /// Peak learning rate [default: 3e-4].
    #[arg(long)]
    pub lr: Option<f64>,
    /// Linear warm-up iterations [default: 0].
    #[arg(long)]
    pub warmup: Option<usize>,
    /// Seed of the weights, patches and degradations [default: 0].
    #[arg(long)]
    pub seed: Option<u64>,
    /// Validate every K iterations [default: 1000].
    #[arg(long)]
    pub val_every: Option<usize>,
    /// Checkpoint every K iterations [default: 1000].
    #[arg(long)]
    pub checkpoint_every: Option<usize>,
    /// Data worker threads [default: 2].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Stop after this many iterations of this invocation (checkpointed; continue with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Where the model trains.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

fn parse_preset(s: &str) -> Result<Preset, String> {
    s.parse()
}

fn parse_task(s: &str) -> Result<Task, String> {
    s.parse::<Task>().map_err(|e| e.to_string())
}

pub fn run(args: TrainArgs) -> Result<()> {
    let mut config = match (&args.resume, &args.config) {
        (Some(run), _) => training::saved_config(run)?,
        (None, Some(path)) => {
            let mut config = ExperimentConfig::load(path)?;
            resolve_from(&mut config, path)?;
            config
        }
        (None, None) => ExperimentConfig::default(),
    };
    if args.resume.is_some() {
        if let Some(preset) = args.preset.filter(|p| *p != config.model.preset) {
            bail!("cannot resume a {} run as {preset}: start a new run with another --out", config.model.preset);
        }
    }
    apply_overrides(&mut config, &args)?;
    let out = args.out.clone().or_else(|| args.resume.clone()).context("--out is required")?;
    if args.resume.is_none() && training::checkpoint::exists(&out)? {
        bail!(
            "{} already holds a training run: continue it with --resume {}, or choose another --out",
            out.display(),
            out.display()
        );
    }
    let summary = training::run(
        Session { config, out: out.clone(), resume_from: args.resume.clone(), stop_after: args.stop_after },
        args.backend,
    )?;
    if summary.end > summary.start {
        println!(
            "iterations {}..={}: last loss {:.4}, {:.2} it/s; wrote {}",
            summary.start + 1,
            summary.end,
            summary.last_loss.unwrap_or(f32::NAN),
            summary.iterations_per_second,
            out.join("last.safetensors").display()
        );
        if let Some(best) = summary.best {
            println!(
                "best validation: {:.2} dB at iteration {} ({})",
                best.psnr,
                best.iteration,
                out.join("best.safetensors").display()
            );
        }
    }
    Ok(())
}

/// Makes relative paths of an experiment file relative to the file's folder.
fn resolve_from(config: &mut ExperimentConfig, file: &Path) -> Result<()> {
    let base = file.parent().unwrap_or(Path::new(""));
    for path in [&mut config.data.train, &mut config.data.val].into_iter().flatten() {
        *path = absolute(&base.join(&*path))?;
    }
    Ok(())
}

fn absolute(path: &Path) -> Result<PathBuf> {
    std::path::absolute(path).with_context(|| format!("cannot resolve {}", path.display()))
}

/// Lays the flags over the experiment; paths are made absolute so the saved `config.toml` works
/// from any folder.
fn apply_overrides(config: &mut ExperimentConfig, args: &TrainArgs) -> Result<()> {
    if let Some(data) = &args.data {
        config.data.train = Some(absolute(data)?);
    }
    if let Some(val) = &args.val {
        config.data.val = Some(absolute(val)?);
    }
    if let Some(preset) = args.preset {
        config.model.preset = preset;
    }
    let set = |target: &mut usize, value: Option<usize>| {
        if let Some(value) = value {
            *target = value;
        }
    };
    set(&mut config.schedule.iters, args.iters);
    set(&mut config.schedule.switch_every, args.switch_every);
    set(&mut config.data.batch, args.batch);
    set(&mut config.data.patch, args.patch);
    set(&mut config.data.workers, args.workers);
    set(&mut config.optimizer.warmup, args.warmup);
    set(&mut config.run.val_every, args.val_every);
    set(&mut config.run.checkpoint_every, args.checkpoint_every);
    if let Some(tasks) = &args.tasks {
        config.schedule.tasks = tasks.clone();
    }
    if let Some(lr) = args.lr {
        config.optimizer.lr = lr;
    }
    if let Some(seed) = args.seed {
        config.run.seed = seed;
    }
    Ok(())
}
