//! The hand-written training loop (burn's `examples/custom-training-loop`): forward, L1 loss
//! (hole-weighted for inpainting, [`l1_loss`]), `backward` → `GradientsParams::from_grads` →
//! `optim.step(lr, model, grads)`, on an autodiff backend, with validation, checkpoints and the
//! log in between. The weights start from the seed, or from `model.init` to fine-tune.

use restora_model::RestoraBackend;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use burn::backend::Autodiff;
use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{ElementConversion, TensorData};
use indicatif::{ProgressBar, ProgressStyle};
use restora_model::degradations::Task;
use restora_model::metrics::Lpips;
use restora_model::weights::{self, WeightFile};
use restora_model::{Preset, Restormer, RestormerConfig};

use super::checkpoint::{self, Best, Optim, Pointer, TrainState};
use super::config::{ExperimentConfig, OptimizerOptions, ScheduleMode};
use super::data::{BatchSpec, Loader, Shard, TrainingData};
use super::data_parallel::{LocalStep, Peer};
use super::grad_clip::clip_each_parameter;
use super::interrupt;
use super::log::{Row, RunLog};
use super::schedule::{lr_at, shape_at, task_at};
use super::validate::{self, ValItem};
use crate::backend::{run_on, BackendChoice, BackendTask};
use crate::cli::DEFAULT_LPIPS;
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
    /// Stopped early by an interrupt (checkpointed at `end`).
    pub interrupted: bool,
}

/// Trains on the chosen backend (wrapped in burn's autodiff).
pub fn run(session: Session, backend: BackendChoice) -> Result<Summary> {
    run_on(backend, Job(session))
}

struct Job(Session);

impl BackendTask for Job {
    type Output = Summary;

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Summary> {
        train::<Autodiff<B>>(self.0, device)
    }
}

/// AdamW with the experiment's settings; gradient clipping is [`optimizer_step`]'s.
pub(crate) fn optimizer<B: AutodiffBackend>(o: &OptimizerOptions) -> Optim<B> {
    AdamWConfig::new()
        .with_beta_1(o.beta1)
        .with_beta_2(o.beta2)
        .with_epsilon(o.epsilon)
        .with_weight_decay(o.weight_decay)
        .init()
}

/// One optimizer step: each parameter's gradient clipped to `grad_clip_norm` (when above 0),
/// then AdamW.
pub(crate) fn optimizer_step<B: AutodiffBackend>(
    optim: &mut Optim<B>,
    o: &OptimizerOptions,
    lr: f64,
    model: Restormer<B>,
    grads: GradientsParams,
) -> Restormer<B> {
    let grads = if o.grad_clip_norm > 0.0 { clip_each_parameter(grads, &model, o.grad_clip_norm) } else { grads };
    optim.step(lr, model, grads)
}

fn train<B: AutodiffBackend + RestoraBackend>(session: Session, device: B::Device) -> Result<Summary>
where
    B::InnerBackend: RestoraBackend,
{
    let prepared = prepare(&session, true)?;
    train_replica::<B>(&prepared, &session, device, None)
}

/// What every replica of a session shares: the experiment, its training data and validation.
pub(crate) struct Prepared {
    config: ExperimentConfig,
    restormer: RestormerConfig,
    init: Option<(PathBuf, WeightFile)>,
    data: Arc<TrainingData>,
    val_items: Vec<ValItem>,
    lpips_weights: Option<Vec<u8>>,
}

/// Checks the experiment and reads its data; the validation images only when `validates` (the
/// one replica that validates).
pub(crate) fn prepare(session: &Session, validates: bool) -> Result<Prepared> {
    let config = session.config.clone();
    config.validate()?;
    let restormer = config.model.restormer();
    let init = match (&config.model.init, &session.resume_from) {
        (Some(path), None) => Some(read_init(path, &restormer)?),
        _ => None,
    };
    let data = Arc::new(TrainingData::load(&config, 0)?);
    let val_items: Vec<ValItem> = match &config.data.val {
        Some(dir) if validates => {
            validate::load(dir, config.data.val_images, config.data.val_crop, &config.schedule.tasks)?
        }
        Some(_) => Vec::new(),
        None => {
            eprintln!("note: no --val folder: no validation, and no `best` checkpoint");
            Vec::new()
        }
    };
    let lpips_weights = if val_items.is_empty() { None } else { std::fs::read(DEFAULT_LPIPS).ok() };
    if !val_items.is_empty() && lpips_weights.is_none() {
        eprintln!("note: no LPIPS weights at {DEFAULT_LPIPS} (run from the repository): the final validation leaves LPIPS out");
    }
    Ok(Prepared { config, restormer, init, data, val_items, lpips_weights })
}

/// The weights a new run starts from: drawn from the seed, in the module's declaration order
/// (Burn draws a parameter when it is first read; reading them all here fixes the order, so every
/// replica, thread or machine, draws the same weights), or `model.init`'s.
pub(crate) fn initial_model<B: AutodiffBackend + RestoraBackend>(
    prepared: &Prepared,
    device: &B::Device,
) -> Result<Restormer<B>> {
    // The backend's generator is shared by the threads of a process: one draws at a time.
    static DRAWING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _drawing = DRAWING.lock().map_err(|_| anyhow::anyhow!("another replica failed while drawing its weights"))?;
    B::seed(device, prepared.config.run.seed);
    let model = prepared.restormer.init::<B>(device);
    model.visit(&mut Materialize);
    match &prepared.init {
        Some((path, file)) => {
            weights::apply(model, file).with_context(|| format!("cannot start from --init {}", path.display()))
        }
        None => Ok(model),
    }
}

/// Reads every parameter once, which draws the lazily initialised ones.
struct Materialize;

impl<B: Backend> burn::module::ModuleVisitor<B> for Materialize {
    fn visit_float<const D: usize>(&mut self, param: &burn::module::Param<Tensor<B, D>>) {
        let _ = param.val();
    }
}

/// Trains one replica: the whole run on one device (`peer` is `None`), or one of the replicas
/// of a data-parallel run, which trains on its shard of every batch and shares its gradients
/// through `peer`. Only the replica of rank 0 writes the run folder (log, checkpoints) and
/// validates.
pub(crate) fn train_replica<B: AutodiffBackend + RestoraBackend>(
    prepared: &Prepared,
    session: &Session,
    device: B::Device,
    peer: Option<&Peer>,
) -> Result<Summary>
where
    B::InnerBackend: RestoraBackend,
{
    let Prepared { config, restormer, data, val_items, lpips_weights, .. } = prepared;
    let (out, resume_from, stop_after) = (&session.out, &session.resume_from, session.stop_after);
    let writes = peer.is_none_or(|p| p.rank() == 0);
    if writes {
        std::fs::create_dir_all(out).with_context(|| format!("cannot create {}", out.display()))?;
    }

    let mut optim = optimizer::<B>(&config.optimizer);
    let (mut model, start, mut best, mut block_best) = match resume_from {
        Some(dir) => {
            let loaded = checkpoint::load_last::<B>(dir, &device)?.with_context(|| {
                format!("{} holds no checkpoint to resume (no checkpoints/last.json)", dir.display())
            })?;
            check_resumable(&loaded.config, restormer, loaded.state.seed, config)?;
            if writes {
                eprintln!("resuming {} at iteration {}", dir.join(&loaded.dir).display(), loaded.state.iteration);
            }
            optim = optim.load_record(loaded.optimizer);
            (loaded.model, loaded.state.iteration, loaded.state.best, loaded.state.block_best)
        }
        None => (initial_model::<B>(prepared, &device)?, 0, None, Default::default()),
    };
    let total = config.schedule.iters;
    let end = stop_after.map_or(total, |n| start.saturating_add(n).min(total));
    if let Some(peer) = peer {
        peer.agree_on_start(&model, &device, start, end, config, data)?;
    }
    let mut log = match writes {
        true => {
            write_atomic(&out.join("config.toml"), config.to_toml()?.as_bytes())?;
            let previous_log = resume_from.as_deref().unwrap_or(out).join("log.jsonl");
            Some(RunLog::open(&out.join("log.jsonl"), &previous_log, resume_from.as_ref().map(|_| start))?)
        }
        false => None,
    };

    interrupt::watch();
    if start >= total {
        if writes {
            eprintln!("the run is complete: {start} of {total} iterations (raise --iters to go on)");
        }
        return Ok(Summary {
            start,
            end: start,
            iterations_per_second: 0.0,
            last_loss: None,
            best,
            interrupted: false,
        });
    }
    let source = data.clone();
    if writes {
        let stages: String = config
            .schedule
            .progressive
            .iter()
            .map(|s| format!("{}×{} until {}, then ", s.patch, s.batch, s.until))
            .collect();
        eprintln!(
            "training {} ({} parameters{}) on {} clean images and {} pairs, {} tasks, iterations {}..={} of {total}, \
             patch × batch {stages}{}×{}{}",
            config.model.preset,
            restormer.num_params(),
            match &config.model.init {
                Some(path) if resume_from.is_none() => format!(", from {}", path.display()),
                _ => String::new(),
            },
            source.clean_len(),
            source.paired_len(),
            match config.schedule.mode {
                ScheduleMode::Alternate => "alternating",
                ScheduleMode::Mixed => "mixed",
            },
            start + 1,
            end,
            config.data.patch,
            config.data.batch,
            peer.map_or_else(String::new, |p| format!(", {}", p.describe()))
        );
    }
    let spec = BatchSpec {
        seed: config.run.seed,
        batch: config.data.batch,
        patch: config.data.patch,
        schedule: config.schedule.clone(),
        shard: peer.map_or(Shard::WHOLE, Peer::shard),
    };
    let mut loader = Loader::start(source, spec, start, end, config.data.workers, config.data.prefetch)?;
    let bar = if writes { progress_bar(start, total) } else { ProgressBar::hidden() };

    let (mut train_seconds, mut last_loss, mut reached) = (0.0, None, start);
    for step in start..end {
        let began = Instant::now();
        let batch = loader.next_batch()?;
        let lr = lr_at(step, total, &config.optimizer);
        let (b, p) = (batch.size, batch.patch);
        let input = Tensor::<B, 4>::from_data(TensorData::new(batch.degraded, [b, 3, p, p]), &device);
        let target = Tensor::<B, 4>::from_data(TensorData::new(batch.clean, [b, 3, p, p]), &device);
        let mask = batch.mask.map(|m| Tensor::<B, 4>::from_data(TensorData::new(m, [b, 1, p, p]), &device));
        let output = model.forward(input, mask.clone());
        let iteration = step + 1;
        let (grads, loss_value, kinds, interrupted) = match peer {
            None => {
                let loss = l1_loss(output, target, mask, config.optimizer.hole_weight);
                let loss_value: f32 = loss.clone().into_scalar().elem();
                if !loss_value.is_finite() {
                    bail!("the loss became {loss_value} at iteration {iteration}: lower --lr (now {lr:e}) or enable gradient clipping");
                }
                let grads = GradientsParams::from_grads(loss.backward(), &model);
                (grads, loss_value, batch.kinds, interrupt::requested())
            }
            Some(peer) => {
                // The shard's error sum and weight: the replicas' sums, divided, are the whole
                // batch's loss and gradient (see `data_parallel`).
                let (error_sum, weight) = l1_loss_parts(output, target, mask, config.optimizer.hole_weight);
                let local = LocalStep {
                    error_sum: error_sum.clone().into_scalar().elem(),
                    weight: weight.into_scalar().elem(),
                    stop: interrupt::requested(),
                    kinds: &batch.kinds,
                    batch: shape_at(step, &config.schedule, config.data.patch, config.data.batch).1,
                };
                let grads = GradientsParams::from_grads(error_sum.backward(), &model);
                let shared = peer.share_step(&model, &device, grads, &local, iteration)?;
                if !shared.loss.is_finite() {
                    bail!(
                        "the loss became {} at iteration {iteration}: lower --lr (now {lr:e}) or enable gradient clipping",
                        shared.loss
                    );
                }
                (shared.grads, shared.loss, shared.kinds, shared.stop)
            }
        };
        model = optimizer_step(&mut optim, &config.optimizer, lr, model, grads);
        let seconds = began.elapsed().as_secs_f64();
        train_seconds += seconds;
        last_loss = Some(loss_value);
        if let Some(log) = log.as_mut().filter(|_| iteration % config.run.log_every == 0) {
            log.write(&Row::Train { iteration, task: batch.task, loss: loss_value, lr, kinds: &kinds, seconds })?;
        }
        bar.set_message(format!("{:<7} loss {loss_value:.4}", batch.task.name()));
        bar.inc(1);

        let mut improved = false;
        let mut block_improved = false;
        if let Some(log) = log.as_mut() {
            let mut rows = Vec::new();
            if !val_items.is_empty() && (iteration % config.run.val_every == 0 || iteration == total) {
                // LPIPS (an AlexNet per image) only at the end: the run's final perceptual score.
                let lpips = match (lpips_weights, iteration == total) {
                    (Some(bytes), true) => Some(
                        Lpips::<B::InnerBackend>::from_safetensors(bytes, &device)
                            .context("cannot load the LPIPS weights")?,
                    ),
                    _ => None,
                };
                rows = validate::evaluate(&model.valid(), val_items, lpips.as_ref(), &device)?;
                for row in &rows {
                    log.write(&Row::Val { iteration, row })?;
                }
                let score = validate::score(&rows);
                let detail: Vec<String> = rows
                    .iter()
                    .map(|r| match r.lpips {
                        Some(lpips) => format!("{} {:.2}/{:.3}/LPIPS {lpips:.4}", r.task, r.psnr, r.ssim),
                        None => format!("{} {:.2}/{:.3}", r.task, r.psnr, r.ssim),
                    })
                    .collect();
                bar.suspend(|| {
                    eprintln!("iteration {iteration}: validation PSNR/SSIM {} (mean {score:.2} dB)", detail.join(", "))
                });
                if best.is_none_or(|b| score > b.psnr) {
                    best = Some(Best { iteration, psnr: score });
                    improved = true;
                }
            }
            if let Some(task) = block_end(iteration, config).filter(|t| val_items.iter().any(|i| i.task == *t)) {
                // The regular validation, when it falls here too, already scored the task.
                let row = match rows.into_iter().find(|r| r.task == task) {
                    Some(row) => row,
                    None => {
                        let own = val_items.iter().filter(|i| i.task == task);
                        let scored = validate::evaluate(&model.valid(), own, None, &device)?;
                        scored.into_iter().next().context("the task's validation scored no image")?
                    }
                };
                log.write(&Row::BlockVal { iteration, row: &row })?;
                let previous = block_best.get(&task).copied();
                if previous.is_none_or(|b| row.psnr > b.psnr) {
                    block_best.insert(task, Best { iteration, psnr: row.psnr });
                    let bytes = weights::save(&model.valid(), restormer, weights::StoredPrecision::F32)
                        .context("cannot serialise the weights")?;
                    write_atomic(&checkpoint::block_best_file(out, task), &bytes)?;
                    block_improved = true;
                }
                bar.suspend(|| {
                    eprintln!(
                        "iteration {iteration}: {task} block done: {task} {:.2} dB (input {:.2}; best after its blocks {:.2} at {})",
                        row.psnr, row.input_psnr, block_best[&task].psnr, block_best[&task].iteration
                    )
                });
            }
        }
        reached = iteration;
        // A new best is checkpointed at once, so a resumed run compares against it.
        let checkpointed = improved
            || block_improved
            || iteration % config.run.checkpoint_every == 0
            || iteration == end
            || interrupted;
        if let Some(log) = log.as_mut().filter(|_| checkpointed) {
            let state = TrainState {
                format: checkpoint::FORMAT,
                iteration,
                iters: total,
                seed: config.run.seed,
                lr,
                next_task: task_at(iteration, &config.schedule),
                best,
                block_best: block_best.clone(),
                optimizer_shards: 0,
            };
            let (dir, bytes) = checkpoint::save(out, &model, restormer, &optim, &state)?;
            checkpoint::commit(out, Pointer::Last, &dir, iteration, &bytes)?;
            if improved {
                checkpoint::commit(out, Pointer::Best, &dir, iteration, &bytes)?;
            }
            checkpoint::prune(out)?;
            log.write(&Row::Checkpoint { iteration, dir: &dir, best: improved })?;
        }
        if interrupted {
            break;
        }
    }
    bar.finish_and_clear();
    if let Some(peer) = peer {
        peer.finish::<B>(reached, &device)?;
    }
    let interrupted = reached < end;
    let (end, done) = (reached, reached - start);
    let summary = Summary {
        start,
        end,
        iterations_per_second: if train_seconds > 0.0 { done as f64 / train_seconds } else { 0.0 },
        last_loss,
        best,
        interrupted,
    };
    if writes {
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
    }
    Ok(summary)
}

/// The L1 loss of a batch: the mean absolute error, or with a mask and `hole_weight ≠ 1`,
/// `sum(w·|output − target|) / sum(w)` with `w = 1 + (hole_weight − 1)·mask` broadcast over the
/// channels (missing pixels weigh `hole_weight`, the others 1).
///
/// # Shapes
/// - output, target: `[B, C, H, W]`
/// - mask: `[B, 1, H, W]`, 1 = missing
/// - result: `[1]`
pub fn l1_loss<B: Backend>(
    output: Tensor<B, 4>,
    target: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
    hole_weight: f32,
) -> Tensor<B, 1> {
    let error = (output - target).abs();
    match mask {
        Some(mask) if hole_weight != 1.0 => {
            let channels = error.dims()[1] as f32;
            let weight = mask.mul_scalar(hole_weight - 1.0).add_scalar(1.0);
            (error * weight.clone()).sum() / weight.sum().mul_scalar(channels)
        }
        _ => error.mean(),
    }
}

/// The two sums [`l1_loss`] divides: `sum(w·|output − target|)` (`sum(|output − target|)`
/// without hole weighting) and the total weight `C·sum(w)` (the element count without it). A
/// batch split into shards has the sum of the shards' parts as its parts.
///
/// # Shapes
/// - as [`l1_loss`]; both results `[1]`
pub fn l1_loss_parts<B: Backend>(
    output: Tensor<B, 4>,
    target: Tensor<B, 4>,
    mask: Option<Tensor<B, 4>>,
    hole_weight: f32,
) -> (Tensor<B, 1>, Tensor<B, 1>) {
    let error = (output - target).abs();
    let device = error.device();
    match mask {
        Some(mask) if hole_weight != 1.0 => {
            let channels = error.dims()[1] as f32;
            let weight = mask.mul_scalar(hole_weight - 1.0).add_scalar(1.0);
            ((error * weight.clone()).sum(), weight.sum().mul_scalar(channels))
        }
        _ => {
            let count = error.shape().num_elements() as f32;
            (error.sum(), Tensor::from_data(TensorData::from([count]), &device))
        }
    }
}

/// Reads `model.init`'s weights, refusing a file whose model is not the configured one.
fn read_init(path: &Path, wanted: &RestormerConfig) -> Result<(PathBuf, WeightFile)> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read the --init weights {}", path.display()))?;
    let file = WeightFile::from_safetensors(&bytes)
        .with_context(|| format!("--init {} is not a safetensors weights file", path.display()))?;
    let found = file.config().with_context(|| format!("--init {}", path.display()))?;
    if &found != wanted {
        bail!(
            "--init {} holds a {} model, but the run trains a {} one: set --preset (and model.mask_aware) to match \
             the weights, or start from other weights",
            path.display(),
            describe(&found),
            describe(wanted)
        );
    }
    Ok((path.to_path_buf(), file))
}

/// `small, mask-aware (3,813,446 parameters)`, or the shape when it is no preset.
fn describe(config: &RestormerConfig) -> String {
    let shape = Preset::ALL
        .into_iter()
        .find(|&p| RestormerConfig::preset(p).with_mask_aware(config.mask_aware) == *config)
        .map_or_else(
            || {
                format!(
                    "dim {}, blocks {:?}, refinement {}, {:?} layer norm",
                    config.dim, config.num_blocks, config.num_refinement_blocks, config.layer_norm
                )
            },
            |p| p.to_string(),
        );
    let mask = if config.mask_aware { "mask-aware" } else { "without the mask channel" };
    format!("{shape}, {mask} ({} parameters)", config.num_params())
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

/// The task whose block ends with `iteration`, when `run.val_block_ends` asks to validate it
/// there (alternating schedule only: mixed batches have no blocks).
fn block_end(iteration: usize, config: &ExperimentConfig) -> Option<Task> {
    let schedule = &config.schedule;
    let alternating = matches!(schedule.mode, ScheduleMode::Alternate) && schedule.tasks.len() > 1;
    (config.run.val_block_ends && alternating && iteration % schedule.switch_every.max(1) == 0)
        .then(|| task_at(iteration - 1, schedule))
}

#[cfg(test)]
mod tests {
    use burn::backend::NdArray;

    use super::*;

    type B = NdArray<f32>;

    fn tensor(values: Vec<f32>, shape: [usize; 4]) -> Tensor<B, 4> {
        Tensor::from_data(TensorData::new(values, shape), &Default::default())
    }

    fn value(loss: Tensor<B, 1>) -> f32 {
        loss.into_scalar().elem()
    }

    #[test]
    fn hole_weighting_changes_the_loss_only_with_a_mask() {
        // Two samples of 3 × 1 × 2 pixels; the error is 1 on the first pixel of each channel, 3 on the second.
        let target = tensor(vec![0.0; 12], [2, 3, 1, 2]);
        let output = tensor((0..12).map(|i| if i % 2 == 0 { 1.0 } else { 3.0 }).collect(), [2, 3, 1, 2]);
        // The second pixel of the first sample is missing.
        let mask = tensor(vec![0.0, 1.0, 0.0, 0.0], [2, 1, 1, 2]);
        let plain = value(l1_loss(output.clone(), target.clone(), None, 1.0));
        assert_eq!(plain, 2.0);
        assert_eq!(value(l1_loss(output.clone(), target.clone(), None, 5.0)), plain);
        assert_eq!(value(l1_loss(output.clone(), target.clone(), Some(mask.clone()), 1.0)), plain);
        let zeros = tensor(vec![0.0; 4], [2, 1, 1, 2]);
        assert!((value(l1_loss(output.clone(), target.clone(), Some(zeros), 5.0)) - plain).abs() < 1e-6);
        // Weights 1, 5, 1, 1 per pixel (for every channel): (1 + 5·3 + 1 + 3) / (1 + 5 + 1 + 1) = 2.5.
        let weighted = value(l1_loss(output.clone(), target.clone(), Some(mask.clone()), 5.0));
        assert!((weighted - 2.5).abs() < 1e-6, "{weighted}");
        // Its parts, summed over the two samples as data-parallel replicas do, divide to the same loss.
        let part = |i: usize| {
            let one = |t: &Tensor<B, 4>| t.clone().slice(i..i + 1);
            let (sum, weight) = l1_loss_parts(one(&output), one(&target), Some(one(&mask)), 5.0);
            (value(sum), value(weight))
        };
        let ((s0, w0), (s1, w1)) = (part(0), part(1));
        assert_eq!((s0 + s1, w0 + w1), (60.0, 24.0));
        let (sum, count) = l1_loss_parts(output, target, None, 5.0);
        assert_eq!((value(sum), value(count)), (24.0, 12.0));
    }
}
