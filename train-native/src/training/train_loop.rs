//! The hand-written training loop (burn's `examples/custom-training-loop`): forward, L1 loss,
//! `backward` → `GradientsParams::from_grads` → `optim.step(lr, model, grads)`, on an autodiff
//! backend, with validation, checkpoints and the log in between.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::grad_clipping::GradientClippingConfig;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use restora_model::RestormerConfig;

use super::checkpoint::{self, Best, Optim, Pointer, TrainState};
use super::config::ExperimentConfig;
use super::data::{self, BatchSpec, ImageSource, Loader};
use super::log::{Row, RunLog};
use super::schedule::{lr_at, task_at};
use super::validate::{self, ValItem};
use crate::backend::{run_on, BackendChoice, BackendTask};
use crate::files::write_atomic;

/// One invocation of `train`.
#[derive(Debug, Clone)]
pub struct Session {
    /// The resolved experiment (the CLI flags already laid over the file).
    pub config: ExperimentConfig,
    /// The run folder written to.
    pub out: PathBuf,
    /// A run folder whose last checkpoint this session continues.
    pub resume_from: Option<PathBuf>,
    /// Stop (with a checkpoint) after this many iterations of this session.
    pub stop_after: Option<usize>,
}

/// What a session did.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Iterations completed before and after the session.
    pub start: usize,
    pub end: usize,
    /// Iterations per second of the training steps (data waiting included; validation and
    /// checkpoints excluded).
    pub iterations_per_second: f64,
    pub last_loss: Option<f32>,
    pub best: Option<Best>,
}

/// Trains on the chosen backend (wrapped in burn's autodiff).
pub fn run(session: Session, backend: BackendChoice) -> Result<Summary> {
    run_on(backend, Job(session))
}

struct Job(Session);

impl BackendTask for Job {
    type Output = Summary;

    fn run<B: Backend>(self, device: B::Device) -> Result<Summary> {
        train::<Autodiff<B>>(self.0, device)
    }
}

fn optimizer<B: AutodiffBackend>(config: &ExperimentConfig) -> Optim<B> {
    let o = &config.optimizer;
    AdamWConfig::new()
        .with_beta_1(o.beta1)
        .with_beta_2(o.beta2)
        .with_epsilon(o.epsilon)
        .with_weight_decay(o.weight_decay)
        .with_grad_clipping((o.grad_clip_norm > 0.0).then_some(GradientClippingConfig::Norm(o.grad_clip_norm)))
        .init()
}

fn train<B: AutodiffBackend>(session: Session, device: B::Device) -> Result<Summary> {
    let Session { config, out, resume_from, stop_after } = session;
    config.validate()?;
    let restormer = config.model.restormer();
    let train_dir = config.data.train.clone().context("no training images: pass --data DIR")?;
    let images = data::scan(&train_dir, config.data.patch)?;
    let val_items: Vec<ValItem> = match &config.data.val {
        Some(dir) => validate::load(dir, config.data.val_images, config.data.val_crop, &config.schedule.tasks)?,
        None => {
            eprintln!("note: no --val folder: no validation, and no `best` checkpoint");
            Vec::new()
        }
    };
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;

    let mut optim = optimizer::<B>(&config);
    let (mut model, start, mut best) = match &resume_from {
        Some(dir) => {
            let loaded = checkpoint::load_last::<B>(dir, &device)?.with_context(|| {
                format!("{} holds no checkpoint to resume (no checkpoints/last.json)", dir.display())
            })?;
            check_resumable(&loaded.config, &restormer, loaded.state.seed, &config)?;
            eprintln!("resuming {} at iteration {}", dir.join(&loaded.dir).display(), loaded.state.iteration);
            optim = optim.load_record(loaded.optimizer);
            (loaded.model, loaded.state.iteration, loaded.state.best)
        }
        None => {
            B::seed(&device, config.run.seed);
            (restormer.init::<B>(&device), 0, None)
        }
    };
    write_atomic(&out.join("config.toml"), config.to_toml()?.as_bytes())?;
    let previous_log = resume_from.as_deref().unwrap_or(&out).join("log.jsonl");
    let mut log = RunLog::open(&out.join("log.jsonl"), &previous_log, resume_from.as_ref().map(|_| start))?;

    let total = config.schedule.iters;
    let end = stop_after.map_or(total, |n| start.saturating_add(n).min(total));
    if start >= total {
        eprintln!("the run is complete: {start} of {total} iterations (raise --iters to go on)");
        return Ok(Summary { start, end: start, iterations_per_second: 0.0, last_loss: None, best });
    }
    let source = Arc::new(ImageSource::new(images, config.data.cache_mb));
    eprintln!(
        "training {} ({} parameters) on {} images, iterations {}..={} of {total}, patch {}, batch {}",
        config.model.preset,
        restormer.num_params(),
        source.len(),
        start + 1,
        end,
        config.data.patch,
        config.data.batch
    );
    let spec = BatchSpec {
        seed: config.run.seed,
        batch: config.data.batch,
        patch: config.data.patch,
        schedule: config.schedule.clone(),
    };
    let mut loader = Loader::start(source, spec, start, end, config.data.workers, config.data.prefetch)?;
    let bar = progress_bar(start, total);

    let (mut train_seconds, mut last_loss) = (0.0, None);
    for step in start..end {
        let began = Instant::now();
        let batch = loader.next_batch()?;
        let lr = lr_at(step, total, &config.optimizer);
        let (b, p) = (batch.size, batch.patch);
        let input = Tensor::<B, 4>::from_data(TensorData::new(batch.degraded, [b, 3, p, p]), &device);
        let target = Tensor::<B, 4>::from_data(TensorData::new(batch.clean, [b, 3, p, p]), &device);
        let mask = batch.mask.map(|m| Tensor::<B, 4>::from_data(TensorData::new(m, [b, 1, p, p]), &device));
        let loss = (model.forward(input, mask) - target).abs().mean();
        let loss_value: f32 = loss.clone().into_scalar().elem();
        let iteration = step + 1;
        if !loss_value.is_finite() {
            bail!("the loss became {loss_value} at iteration {iteration}: lower --lr (now {lr:e}) or enable gradient clipping");
        }
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = optim.step(lr, model, grads);
        let seconds = began.elapsed().as_secs_f64();
        train_seconds += seconds;
        last_loss = Some(loss_value);
        if iteration % config.run.log_every == 0 {
            log.write(&Row::Train { iteration, task: batch.task, loss: loss_value, lr, kinds: &batch.kinds, seconds })?;
        }
        bar.set_message(format!("{:<7} loss {loss_value:.4}", batch.task.name()));
        bar.inc(1);

        let mut improved = false;
        if !val_items.is_empty() && (iteration % config.run.val_every == 0 || iteration == total) {
            let rows = validate::evaluate(&model.valid(), &val_items, &device)?;
            for row in &rows {
                log.write(&Row::Val { iteration, row })?;
            }
            let score = validate::score(&rows);
            let detail: Vec<String> = rows.iter().map(|r| format!("{} {:.2}/{:.3}", r.task, r.psnr, r.ssim)).collect();
            bar.suspend(|| {
                eprintln!("iteration {iteration}: validation PSNR/SSIM {} (mean {score:.2} dB)", detail.join(", "))
            });
            if best.is_none_or(|b| score > b.psnr) {
                best = Some(Best { iteration, psnr: score });
                improved = true;
            }
        }
        if improved || iteration % config.run.checkpoint_every == 0 || iteration == end {
            let state = TrainState {
                format: checkpoint::FORMAT,
                iteration,
                iters: total,
                seed: config.run.seed,
                lr,
                next_task: task_at(iteration, &config.schedule),
                best,
                optimizer_shards: 0,
            };
            let (dir, bytes) = checkpoint::save(&out, &model, &restormer, &optim, &state)?;
            checkpoint::commit(&out, Pointer::Last, &dir, iteration, &bytes)?;
            if improved {
                checkpoint::commit(&out, Pointer::Best, &dir, iteration, &bytes)?;
            }
            checkpoint::prune(&out)?;
            log.write(&Row::Checkpoint { iteration, dir: &dir, best: improved })?;
        }
    }
    bar.finish_and_clear();
    let done = end - start;
    let summary = Summary {
        start,
        end,
        iterations_per_second: if train_seconds > 0.0 { done as f64 / train_seconds } else { 0.0 },
        last_loss,
        best,
    };
    eprintln!(
        "trained iterations {}..={end} in {train_seconds:.1} s of training steps ({:.2} it/s); last loss {:.4}",
        start + 1,
        summary.iterations_per_second,
        last_loss.unwrap_or(f32::NAN)
    );
    if end < total {
        eprintln!(
            "stopped at iteration {end} of {total}: continue with `train-native train --resume {}`",
            out.display()
        );
    }
    Ok(summary)
}

/// Refuses to resume into a different model or seed.
fn check_resumable(
    found: &RestormerConfig,
    wanted: &RestormerConfig,
    seed: u64,
    config: &ExperimentConfig,
) -> Result<()> {
    if found != wanted {
        bail!(
            "the checkpoint's model ({} parameters, mask-aware {}) is not the configured one ({} parameters, \
             mask-aware {}): resume without --preset, or start a new run",
            found.num_params(),
            found.mask_aware,
            wanted.num_params(),
            wanted.mask_aware
        );
    }
    if seed != config.run.seed {
        bail!("the run was seeded with {seed}, not {}: resume without --seed", config.run.seed);
    }
    Ok(())
}

fn progress_bar(start: usize, total: usize) -> ProgressBar {
    let bar = ProgressBar::new(total as u64).with_position(start as u64);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {pos}/{len} {per_sec:>10} {msg} [{elapsed_precise}, ETA {eta_precise}]",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The run folder's resolved experiment, to resume it.
pub fn saved_config(run: &Path) -> Result<ExperimentConfig> {
    let path = run.join("config.toml");
    if !path.exists() {
        bail!("{} is not a training run folder (no config.toml)", run.display());
    }
    ExperimentConfig::load(&path)
}
