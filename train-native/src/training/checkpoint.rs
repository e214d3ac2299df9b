//! Resumable checkpoints, committed atomically.
//!
//! ```text
//! out/
//!   config.toml                    the resolved experiment
//!   log.jsonl
//!   last.safetensors               weights of the last checkpoint (for `restore --weights`)
//!   best.safetensors               weights of the best validation score
//!   best-<task>.safetensors        weights of the task's best validation at the end of its own
//!                                  block (`run.val_block_ends`)
//!   checkpoints/
//!     last.json  best.json         {"dir": "iter-00001000", "iteration": 1000}: the commit points
//!     iter-00001000/
//!       model.safetensors          official key names, config in the metadata
//!       optimizer-0.mpk ...        AdamW moments (burn's named MessagePack recorder, f32), < 16 MiB each
//!       state.json                 iteration, seed, learning rate, best score
//! ```
//!
//! Each file is written through a temporary file and a rename; a checkpoint only counts once
//! `last.json` names it, so a crash while writing one (a stray temporary file, a half-filled
//! folder) leaves the previous checkpoint in charge. Folders no pointer names are removed after
//! each commit.
//!
//! The optimizer's state is keyed by parameter ids, which are fresh for every model built: on disk
//! they are replaced by the parameter's position in the model's declaration order, and mapped back
//! onto the loaded model's ids when resuming.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use burn::module::ParamId;
use burn::optim::adaptor::OptimizerAdaptor;
use burn::optim::{AdamW, Optimizer};
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};
use burn::tensor::backend::AutodiffBackend;
use burn_store::ModuleSnapshot;
use restora_model::degradations::Task;
use restora_model::weights::{self, StoredPrecision};
use restora_model::{Restormer, RestormerConfig};
use serde::{Deserialize, Serialize};

use crate::files::write_atomic;

/// The optimizer of a training run.
pub type Optim<B> = OptimizerAdaptor<AdamW, Restormer<B>, B>;
/// Its state: AdamW moments and step count per parameter id.
pub type OptimRecord<B> = <Optim<B> as Optimizer<Restormer<B>, B>>::Record;

/// Bytes of optimizer state per file at most (plus a few KiB of names).
const SHARD_BYTES: usize = 15 << 20;
/// Version of the checkpoint layout.
pub const FORMAT: u32 = 1;

/// Where the run stands, saved as `state.json` in each checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// Layout version.
    pub format: u32,
    /// Iterations completed; the next step to run has this 0-based index.
    pub iteration: usize,
    /// Total iterations the learning-rate schedule spans.
    pub iters: usize,
    /// The run's seed. Patches, augmentations and degradations of step `s` derive from
    /// `(seed, s)` alone, so this and `iteration` are the data pipeline's whole state.
    pub seed: u64,
    /// Learning rate of the last completed step.
    pub lr: f64,
    /// Task of the next step.
    pub next_task: Task,
    /// Best validation so far.
    pub best: Option<Best>,
    /// Best validation of each task at the end of its own blocks (`run.val_block_ends`); its
    /// PSNR is that task's alone.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub block_best: BTreeMap<Task, Best>,
    /// Number of `optimizer-K.mpk` files.
    pub optimizer_shards: usize,
}

/// The best validation score and when it was reached.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Best {
    pub iteration: usize,
    /// Mean restored PSNR over the tasks (dB).
    pub psnr: f64,
}

/// Which commit point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pointer {
    Last,
    Best,
}

impl Pointer {
    fn file(self) -> &'static str {
        match self {
            Pointer::Last => "last.json",
            Pointer::Best => "best.json",
        }
    }

    /// The stable weights file beside `config.toml`.
    pub fn weights_file(self, root: &Path) -> PathBuf {
        root.join(match self {
            Pointer::Last => "last.safetensors",
            Pointer::Best => "best.safetensors",
        })
    }
}

/// The weights file of `task`'s best end-of-block validation.
pub fn block_best_file(root: &Path, task: Task) -> PathBuf {
    root.join(format!("best-{}.safetensors", task.name()))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct PointerFile {
    dir: String,
    iteration: usize,
}

/// A checkpoint read back.
pub struct Loaded<B: AutodiffBackend> {
    pub model: Restormer<B>,
    pub config: RestormerConfig,
    pub optimizer: OptimRecord<B>,
    pub state: TrainState,
    /// Its folder, relative to the run folder.
    pub dir: String,
}

fn checkpoints(root: &Path) -> PathBuf {
    root.join("checkpoints")
}

/// The folder name of the checkpoint after `iteration` iterations.
pub fn dir_name(iteration: usize) -> String {
    format!("iter-{iteration:08}")
}

/// Writes a full checkpoint folder (not yet committed: see [`commit`]). Returns its name
/// relative to the run folder and the model's safetensors bytes.
pub fn save<B: AutodiffBackend>(
    root: &Path,
    model: &Restormer<B>,
    config: &RestormerConfig,
    optim: &Optim<B>,
    state: &TrainState,
) -> Result<(String, Vec<u8>)> {
    let name = dir_name(state.iteration);
    let dir = checkpoints(root).join(&name);
    fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let model_bytes = weights::save(model, config, StoredPrecision::F32).context("cannot serialise the weights")?;
    write_atomic(&dir.join("model.safetensors"), &model_bytes)?;
    let shards = save_optimizer(&dir, model, optim)?;
    let state = TrainState { optimizer_shards: shards, ..state.clone() };
    write_atomic(&dir.join("state.json"), serde_json::to_string_pretty(&state)?.as_bytes())?;
    Ok((format!("checkpoints/{name}"), model_bytes))
}

/// Makes `pointer` name the checkpoint folder `name` (as returned by [`save`]), atomically, then
/// writes its stable weights file.
pub fn commit(root: &Path, pointer: Pointer, name: &str, iteration: usize, model_bytes: &[u8]) -> Result<()> {
    let dir = name.strip_prefix("checkpoints/").unwrap_or(name).to_string();
    let text = serde_json::to_string_pretty(&PointerFile { dir, iteration })?;
    write_atomic(&checkpoints(root).join(pointer.file()), text.as_bytes())?;
    write_atomic(&pointer.weights_file(root), model_bytes)
}

fn read_pointer(root: &Path, pointer: Pointer) -> Result<Option<PointerFile>> {
    let path = checkpoints(root).join(pointer.file());
    match fs::read_to_string(&path) {
        Ok(text) => Ok(Some(serde_json::from_str(&text).with_context(|| format!("{} is corrupt", path.display()))?)),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Whether `root` holds a committed checkpoint.
pub fn exists(root: &Path) -> Result<bool> {
    Ok(read_pointer(root, Pointer::Last)?.is_some())
}

/// Removes checkpoint folders and temporary files that no pointer names.
pub fn prune(root: &Path) -> Result<()> {
    let keep: Vec<String> = [Pointer::Last, Pointer::Best]
        .into_iter()
        .filter_map(|p| read_pointer(root, p).ok().flatten())
        .map(|p| p.dir)
        .collect();
    let dir = checkpoints(root);
    for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with("iter-") && !keep.contains(&name) && entry.path().is_dir() {
            fs::remove_dir_all(entry.path()).with_context(|| format!("cannot remove {}", entry.path().display()))?;
        }
    }
    Ok(())
}

/// Reads the checkpoint `last.json` names, or `None` if the run has none yet.
pub fn load_last<B: AutodiffBackend>(root: &Path, device: &B::Device) -> Result<Option<Loaded<B>>> {
    let Some(pointer) = read_pointer(root, Pointer::Last)? else {
        return Ok(None);
    };
    let dir = checkpoints(root).join(&pointer.dir);
    let read = |name: &str| {
        let path = dir.join(name);
        fs::read(&path).with_context(|| format!("checkpoint file {} is missing or unreadable", path.display()))
    };
    let state: TrainState = serde_json::from_slice(&read("state.json")?)
        .with_context(|| format!("{} is corrupt", dir.join("state.json").display()))?;
    if state.format != FORMAT {
        bail!("{}: checkpoint format {} (this build reads {FORMAT})", dir.display(), state.format);
    }
    if state.iteration != pointer.iteration {
        bail!("{}: holds iteration {}, last.json says {}", dir.display(), state.iteration, pointer.iteration);
    }
    let (model, config) = weights::load::<B>(&read("model.safetensors")?, device)
        .with_context(|| format!("cannot load {}", dir.join("model.safetensors").display()))?;
    let ids: Vec<Option<ParamId>> = model.collect(None, None, false).iter().map(|s| s.tensor_id).collect();
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
    let mut optimizer = OptimRecord::<B>::default();
    for k in 0..state.optimizer_shards {
        let name = format!("optimizer-{k}.mpk");
        let shard: OptimRecord<B> = Recorder::<B>::load(&recorder, read(&name)?, device)
            .map_err(|e| anyhow!("{}: {e}", dir.join(&name).display()))?;
        for (key, entry) in shard {
            let id = ids.get(key.val() as usize).copied().flatten().with_context(|| {
                format!(
                    "{}: state for parameter #{} which the model does not have",
                    dir.join(&name).display(),
                    key.val()
                )
            })?;
            optimizer.insert(id, entry);
        }
    }
    Ok(Some(Loaded { model, config, optimizer, state, dir: format!("checkpoints/{}", pointer.dir) }))
}

/// Writes the optimizer state in files of at most [`SHARD_BYTES`] of tensors; returns their count.
fn save_optimizer<B: AutodiffBackend>(dir: &Path, model: &Restormer<B>, optim: &Optim<B>) -> Result<usize> {
    let mut record = optim.to_record();
    let mut shards: Vec<OptimRecord<B>> = vec![Default::default()];
    let mut bytes = 0;
    for (index, snapshot) in model.collect(None, None, false).iter().enumerate() {
        let Some(entry) = snapshot.tensor_id.and_then(|id| record.remove(&id)) else {
            continue;
        };
        // Two f32 moments per value.
        let size = 8 * snapshot.shape.iter().product::<usize>();
        if bytes + size > SHARD_BYTES && shards.last().is_some_and(|s| !s.is_empty()) {
            shards.push(Default::default());
            bytes = 0;
        }
        shards.last_mut().expect("one shard at least").insert(ParamId::from(index as u64), entry);
        bytes += size;
    }
    let recorder = NamedMpkBytesRecorder::<FullPrecisionSettings>::default();
    let count = shards.len();
    for (k, shard) in shards.into_iter().enumerate() {
        let encoded = Recorder::<B>::record(&recorder, shard, ())
            .map_err(|e| anyhow!("cannot serialise the optimizer state: {e}"))?;
        write_atomic(&dir.join(format!("optimizer-{k}.mpk")), &encoded)?;
    }
    Ok(count)
}
