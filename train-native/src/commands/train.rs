//! `train-native train`: train a Restormer on clean images degraded on the fly and on real
//! degraded / clean pairs (SIDD, GoPro, REDS, input/target), the four tasks taking turns (or mixed
//! in every batch). One experiment is one TOML file (`--config`, documented in
//! `training::config`); the flags below override it; the resolved experiment is saved as
//! `config.toml` in the run folder, with `log.jsonl`, `last.safetensors`, `best.safetensors` and
//! resumable checkpoints (see `training::checkpoint`).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::degradations::Task;
use restora_model::Preset;

use crate::backend::{BackendChoice, DeviceSpec};
use crate::cli::{parse_preset, parse_task};
use crate::training::config::{PairedSet, ScheduleMode, Stage};
use crate::training::data_parallel::{self, Cluster, Plan};
use crate::training::{self, ExperimentConfig, Session};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Paired layouts (--paired DIR[:TASK]; recognised from the folder):\n  \
    SIDD (denoise): scene folders of *_NOISY_* images beside their *_GT_* partners\n  \
    GoPro (deblur): <scene>/blur/*.png with the same names in <scene>/sharp/\n  \
    REDS (deblur): train_blur/<seq>/*.png with train_sharp/<seq>/*.png (val_blur/val_sharp too)\n  \
    input/target (denoise, deblur or dealias, given as DIR:TASK): input/** with the same paths in target/\n\
    With clean images too, each paired set takes half of its task's samples (set `share` in the\n\
    experiment file's [[data.paired]] to change it); without, the task's sets share all of them.\n\n\
    Examples:\n  \
    train-native train --data ../shared/corpus/train --val ../shared/corpus/val --out runs/small\n  \
    train-native train --config experiment.toml --out runs/exp1 --backend wgpu\n  \
    train-native train --resume runs/exp1 --iters 100000\n  \
    train-native train --paired SIDD_Medium_Srgb/Data --paired GOPRO_Large/train --tasks denoise,deblur --out runs/real\n  \
    train-native train --data DIR --mixed --progressive 64x16@10000,96x12@20000 --patch 128 --batch 8 --out runs/mix\n  \
    train-native train --init runs/small/best.safetensors --train-images 40 --tasks inpaint --hole-weight 6 \
    --data DIR --out runs/ft\n  \
    train-native train --devices cuda:0,cuda:1,cuda:2,cuda:3 --batch 32 --data DIR --out runs/ddp\n\n\
    Two machines (4 GPUs each; the same data on both; node 0 writes the run folder):\n  \
    host-a$ train-native train --devices cuda:0,cuda:1,cuda:2,cuda:3 --nodes 2 --node-rank 0 \
    --coordinator host-a:7400 --batch 32 --data DIR --out runs/ddp\n  \
    host-b$ train-native train --devices cuda:0,cuda:1,cuda:2,cuda:3 --nodes 2 --node-rank 1 \
    --coordinator host-a:7400 --batch 32 --data DIR --out runs/ddp")]
pub struct TrainArgs {
    /// Experiment file (TOML: [model], [data], [optimizer], [schedule], [run]); flags override it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Folder of clean training images (searched recursively; images smaller than the patch are skipped).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Folder of real degraded / clean pairs, TASK needed for input/target only; repeatable (replaces the
    /// file's [[data.paired]]). Without --data, the paired sets must cover every task of --tasks.
    #[arg(long, value_name = "DIR[:TASK]", value_parser = parse_paired)]
    pub paired: Vec<PairedSet>,
    /// Train on only N of the clean images: a subset chosen from the seed [default: all].
    #[arg(long, value_name = "N")]
    pub train_images: Option<usize>,
    /// Start from these weights (.safetensors of the same model shape) instead of random ones: fine-tuning.
    #[arg(long, value_name = "WEIGHTS")]
    pub init: Option<PathBuf>,
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
    /// Mix the tasks in every batch (each sample draws its task with the report's foundation weights,
    /// denoise 1200 : deblur 400 : dealias 900 : inpaint 500) instead of alternating them.
    #[arg(long)]
    pub mixed: bool,
    /// Progressive patches as in Restormer: PATCHxBATCH@UNTIL stages, comma-separated, e.g.
    /// 64x16@10000,96x12@20000 trains patch 64, batch 16 up to iteration 10000, then 96 × 12 up to
    /// 20000, then --patch × --batch. Patches are multiples of 8, UNTIL increasing.
    #[arg(long, value_name = "STAGES", value_delimiter = ',', value_parser = parse_stage)]
    pub progressive: Option<Vec<Stage>>,
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
    /// Weight of the missing pixels in the L1 loss of inpainting samples: sum(w·|out − target|) / sum(w),
    /// w = 1 + (W − 1)·mask [default: 1, plain L1].
    #[arg(long, value_name = "W")]
    pub hole_weight: Option<f32>,
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
    /// Alternating schedule: also validate each task right after each of its own blocks, and keep
    /// its best such weights as best-<task>.safetensors (the blocks forget one another, so this is
    /// what each task reaches within the schedule) [default: off].
    #[arg(long)]
    pub val_block_ends: bool,
    /// Data worker threads [default: 2].
    #[arg(long)]
    pub workers: Option<usize>,
    /// Stop after this many iterations of this invocation (checkpointed; continue with --resume).
    #[arg(long)]
    pub stop_after: Option<usize>,
    /// Where the model trains.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// Data-parallel training, one replica per device, comma-separated: cpu,cpu | cuda:0,cuda:1 | wgpu:0,wgpu:1
    /// (wgpu:N is the N-th discrete GPU; a bare cuda or wgpu is the default device). --batch stays the whole
    /// batch, split over all replicas; their gradients are averaged after every backward pass
    /// (burn-collective's all-reduce), so the run trains the same weights as on one device, and its
    /// checkpoints resume on any number of devices.
    #[arg(long, value_name = "DEVICES", value_delimiter = ',', conflicts_with = "backend")]
    pub devices: Option<Vec<DeviceSpec>>,
    /// Machines taking part, one `train` process each, every one with the same flags but --node-rank
    /// (and its own --node-host / --data-port when needed) [default: 1].
    #[arg(long, value_name = "N")]
    pub nodes: Option<usize>,
    /// This machine's rank, 0..N; node 0 runs the coordinator and alone writes the run folder.
    #[arg(long, value_name = "R", requires = "nodes")]
    pub node_rank: Option<usize>,
    /// Where node 0's coordinator listens (burn-collective's global orchestrator), as every node reaches it.
    #[arg(long, value_name = "HOST:PORT", requires = "nodes")]
    pub coordinator: Option<String>,
    /// The address the other nodes reach this one at [default: the local address that reaches the coordinator].
    #[arg(long, value_name = "HOST", requires = "nodes")]
    pub node_host: Option<String>,
    /// The port of this node's tensor service, which the other nodes download from
    /// [default: the coordinator's port + 1 + node rank].
    #[arg(long, value_name = "PORT", requires = "nodes")]
    pub data_port: Option<u16>,
    /// Give up (exit 1) when not every node has joined after this long.
    #[arg(long, value_name = "SECONDS", default_value_t = 300)]
    pub connect_timeout: u64,
    /// Give up (exit 1, keeping the last checkpoint) when one exchange between the replicas takes longer:
    /// a peer died or hangs. It must exceed the longest validation, during which the others wait.
    #[arg(long, value_name = "SECONDS", default_value_t = 1800)]
    pub collective_timeout: u64,
}

fn parse_stage(s: &str) -> Result<Stage, String> {
    s.parse()
}

/// `DIR` or `DIR:TASK` (a suffix that is no task name is part of the folder's name, unless it
/// looks like a misspelt task).
fn parse_paired(s: &str) -> Result<PairedSet, String> {
    if let Some((dir, suffix)) = s.rsplit_once(':') {
        if !dir.is_empty() {
            match suffix.parse::<Task>() {
                Ok(task) => return Ok(PairedSet { dir: dir.into(), task: Some(task), share: None }),
                Err(error) if !suffix.is_empty() && !suffix.contains(['/', '\\', '.']) => {
                    return Err(format!("{error} (after the ':' of DIR:TASK)"))
                }
                Err(_) => {}
            }
        }
    }
    Ok(PairedSet { dir: s.into(), task: None, share: None })
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
    let plan = plan(&args)?;
    let writes = plan.as_ref().is_none_or(Plan::writes);
    if writes && args.resume.is_none() && training::checkpoint::exists(&out)? {
        bail!(
            "{} already holds a training run: continue it with --resume {}, or choose another --out",
            out.display(),
            out.display()
        );
    }
    let session = Session { config, out: out.clone(), resume_from: args.resume.clone(), stop_after: args.stop_after };
    let summary = match plan {
        Some(plan) => data_parallel::run(session, plan)?,
        None => training::run(session, args.backend)?,
    };
    if summary.end > summary.start {
        let written = if writes {
            format!("wrote {}", out.join("last.safetensors").display())
        } else {
            "node 0 writes the run folder".to_string()
        };
        println!(
            "iterations {}..={}: last loss {:.4}, {:.2} it/s; {written}",
            summary.start + 1,
            summary.end,
            summary.last_loss.unwrap_or(f32::NAN),
            summary.iterations_per_second
        );
    }
    if writes {
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

/// The data-parallel layout of `--devices` and `--nodes`; `None` for one device (`--backend`).
fn plan(args: &TrainArgs) -> Result<Option<Plan>> {
    let nodes = args.nodes.unwrap_or(1);
    if nodes == 0 {
        bail!("--nodes must be at least 1");
    }
    if args.devices.is_none() && nodes == 1 {
        return Ok(None);
    }
    let devices = args.devices.clone().unwrap_or_else(|| vec![DeviceSpec { backend: args.backend, index: None }]);
    let cluster = match nodes {
        1 => None,
        _ => {
            let rank = args
                .node_rank
                .with_context(|| format!("--nodes {nodes} needs this machine's --node-rank (0..{nodes})"))?;
            if rank >= nodes {
                bail!("--node-rank {rank} is not below --nodes {nodes}");
            }
            let coordinator = args
                .coordinator
                .clone()
                .with_context(|| format!("--nodes {nodes} needs --coordinator HOST:PORT (where node 0 listens)"))?;
            Some(Cluster { nodes, rank, coordinator, node_host: args.node_host.clone(), data_port: args.data_port })
        }
    };
    Ok(Some(Plan {
        devices,
        cluster,
        connect_timeout: std::time::Duration::from_secs(args.connect_timeout),
        collective_timeout: std::time::Duration::from_secs(args.collective_timeout),
    }))
}

/// Makes relative paths of an experiment file relative to the file's folder.
fn resolve_from(config: &mut ExperimentConfig, file: &Path) -> Result<()> {
    let base = file.parent().unwrap_or(Path::new(""));
    let optional = [&mut config.data.train, &mut config.data.val, &mut config.model.init].into_iter().flatten();
    for path in optional.chain(config.data.paired.iter_mut().map(|set| &mut set.dir)) {
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
    if !args.paired.is_empty() {
        config.data.paired = args
            .paired
            .iter()
            .map(|set| Ok(PairedSet { dir: absolute(&set.dir)?, ..set.clone() }))
            .collect::<Result<_>>()?;
    }
    if let Some(init) = &args.init {
        config.model.init = Some(absolute(init)?);
    }
    if let Some(count) = args.train_images {
        config.data.train_images = Some(count);
    }
    if let Some(preset) = args.preset {
        config.model.preset = preset;
    }
    if args.mixed {
        config.schedule.mode = ScheduleMode::Mixed;
    }
    if let Some(stages) = &args.progressive {
        config.schedule.progressive = stages.clone();
    }
    if let Some(weight) = args.hole_weight {
        config.optimizer.hole_weight = weight;
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
    if args.val_block_ends {
        config.run.val_block_ends = true;
    }
    Ok(())
}
