//! Training batches: random patches of clean images, flipped and rotated by multiples of 90°,
//! degraded for the sample's task by the model crate's sampler, or the same patch of a real
//! degraded image and its clean partner ([`super::paired`]).
//!
//! Every random choice of sample `i` of step `s` comes from a ChaCha8 generator keyed by
//! `(seed, s, i)` alone, so a batch is the same whichever thread made it, whenever, and whether
//! or not the run was resumed in between. Its task (alternating, or drawn per sample), patch and
//! batch size (progressive stages) are functions of `s` too. Worker threads prepare steps
//! round-robin, each into its own bounded channel, and the trainer reads the channels in the same
//! order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use restora_model::degradations::{sample, Composition, Degradation, Task};
use restora_model::Image;

use super::config::{ExperimentConfig, ScheduleOptions};
use super::paired::{self, PairedSource};
use super::schedule::{batch_task_at, mixed_composition, patches_used, shape_at, BatchTask};
use crate::files::{list_images, read_image};

/// A clean training image and its size.
#[derive(Debug, Clone, PartialEq)]
pub struct CleanImage {
    pub path: PathBuf,
    pub width: usize,
    pub height: usize,
}

/// The training images at least `patch` pixels on each side, sorted by path (smaller ones are
/// skipped with a warning).
pub fn scan(dir: &Path, patch: usize) -> Result<Vec<CleanImage>> {
    if !dir.is_dir() {
        bail!("--data {} is not a folder of clean images", dir.display());
    }
    let mut usable = Vec::new();
    let (mut small, mut unreadable) = (0usize, 0usize);
    for path in list_images(dir)? {
        match image::image_dimensions(&path) {
            Ok((w, h)) if (w as usize) < patch || (h as usize) < patch => {
                eprintln!("warning: skipped {} ({w}×{h}): smaller than the {patch}-pixel patch", path.display());
                small += 1;
            }
            Ok((w, h)) => usable.push(CleanImage { path, width: w as usize, height: h as usize }),
            Err(error) => {
                eprintln!("warning: skipped {}: {error}", path.display());
                unreadable += 1;
            }
        }
    }
    if usable.is_empty() {
        bail!(
            "no usable training images in {} ({small} smaller than the {patch}-pixel patch, {unreadable} unreadable)",
            dir.display()
        );
    }
    Ok(usable)
}

/// `count` of `items` drawn from `seed` alone, in their original (sorted) order; all of them when
/// there are not more.
pub fn subset<T>(items: Vec<T>, count: usize, seed: u64) -> Vec<T> {
    if count >= items.len() {
        return items;
    }
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[24..].copy_from_slice(b"subset\0\0");
    let mut rng = ChaCha8Rng::from_seed(key);
    let mut order: Vec<usize> = (0..items.len()).collect();
    for i in 0..count {
        let j = rng.random_range(i..order.len());
        order.swap(i, j);
    }
    let mut chosen = order[..count].to_vec();
    chosen.sort_unstable();
    let mut keep = vec![false; items.len()];
    for i in chosen {
        keep[i] = true;
    }
    items.into_iter().zip(keep).filter_map(|(item, kept)| kept.then_some(item)).collect()
}

/// One step's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// 0-based step index.
    pub step: usize,
    /// The task of every sample, or `Mixed`.
    pub task: BatchTask,
    /// Samples in the batch.
    pub size: usize,
    /// Patch side.
    pub patch: usize,
    /// Degraded patches, planar `[size, 3, patch, patch]`.
    pub degraded: Vec<f32>,
    /// Clean patches, planar `[size, 3, patch, patch]`.
    pub clean: Vec<f32>,
    /// Missing pixels `[size, 1, patch, patch]` (1 = missing) when a sample is inpainted (zeros for
    /// the other samples); `None` otherwise.
    pub mask: Option<Vec<f32>>,
    /// The degradation kind of each sample (`gaussian_noise`, ..., `paired:sidd`).
    pub kinds: Vec<&'static str>,
    /// The task of each sample.
    pub tasks: Vec<Task>,
}

/// What a batch depends on besides the images.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub seed: u64,
    /// Batch size and patch side after the progressive stages (`data.batch`, `data.patch`).
    pub batch: usize,
    pub patch: usize,
    pub schedule: ScheduleOptions,
    /// The part of every batch this trainer makes (data-parallel replicas); [`Shard::WHOLE`] else.
    pub shard: Shard,
}

impl BatchSpec {
    /// The batch size (of the whole batch, all shards) and patch side of step `step`.
    pub fn shape_at(&self, step: usize) -> (usize, usize) {
        let (patch, batch) = shape_at(step, &self.schedule, self.patch, self.batch);
        (batch, patch)
    }
}

/// One of `count` consecutive parts of every batch: data-parallel replica `index` trains on it.
/// Sample `i` of a step is the same whichever shard makes it (its generator is keyed by the
/// step and `i`), so the shards, in order, are exactly the batch one trainer would make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    pub index: usize,
    pub count: usize,
}

impl Shard {
    /// The whole batch: one trainer.
    pub const WHOLE: Shard = Shard { index: 0, count: 1 };

    /// The samples of a batch of `batch` this shard holds: `batch / count` of them, one more for
    /// the first `batch % count` shards.
    pub fn range(self, batch: usize) -> std::ops::Range<usize> {
        let start = |index: usize| index * (batch / self.count) + index.min(batch % self.count);
        start(self.index)..start(self.index + 1)
    }
}

/// Image files, decoded on demand and kept (as 16-bit values) up to a memory budget.
pub struct ImageSource {
    paths: Vec<PathBuf>,
    budget_bytes: usize,
    cache: Mutex<(HashMap<usize, Arc<Stored>>, usize)>,
}

/// A decoded image at 16 bits per channel: half the memory of `f32`, exact for 8- and 16-bit files.
struct Stored {
    width: usize,
    height: usize,
    values: Vec<u16>,
}

impl Stored {
    fn new(image: &Image) -> Self {
        let values = image.data().iter().map(|v| (v.clamp(0.0, 1.0) * 65535.0).round() as u16).collect();
        Self { width: image.width() as usize, height: image.height() as usize, values }
    }

    fn pixel(&self, x: usize, y: usize) -> [f32; 3] {
        let i = 3 * (y * self.width + x);
        [0, 1, 2].map(|c| self.values[i + c] as f32 / 65535.0)
    }

    /// The `p × p` patch at `(x0, y0)`, seen through one of the square's eight symmetries.
    fn patch(&self, x0: usize, y0: usize, p: usize, flip: bool, turns: u32) -> Image {
        Image::from_fn(p as u32, p as u32, |x, y| {
            let (u, v) = orient(x as usize, y as usize, p, flip, turns);
            self.pixel(x0 + u, y0 + v)
        })
    }
}

impl ImageSource {
    pub fn new(paths: Vec<PathBuf>, cache_mb: usize) -> Self {
        Self { paths, budget_bytes: cache_mb << 20, cache: Mutex::new((HashMap::new(), 0)) }
    }

    fn get(&self, index: usize) -> Result<Arc<Stored>> {
        if let Some(stored) = self.cache.lock().map_err(|_| anyhow!("image cache poisoned"))?.0.get(&index) {
            return Ok(stored.clone());
        }
        let stored = Arc::new(Stored::new(&read_image(&self.paths[index])?));
        let mut cache = self.cache.lock().map_err(|_| anyhow!("image cache poisoned"))?;
        let bytes = stored.values.len() * 2;
        if cache.1 + bytes <= self.budget_bytes && !cache.0.contains_key(&index) {
            cache.1 += bytes;
            cache.0.insert(index, stored.clone());
        }
        Ok(stored)
    }
}

/// A patch source: the degraded and clean files (the same file for clean images) and their size.
#[derive(Debug, Clone, Copy)]
struct Entry {
    input: usize,
    target: usize,
    width: usize,
    height: usize,
}

/// A paired set's entries.
struct PairedEntries {
    kind: &'static str,
    task: Task,
    share: f64,
    dir: PathBuf,
    entries: Vec<Entry>,
}

/// Everything batches are cut from: clean images (degraded on the fly) and paired sets.
pub struct TrainingData {
    files: ImageSource,
    clean: Vec<Entry>,
    paired: Vec<PairedEntries>,
}

/// Where a sample comes from.
enum Origin<'a> {
    Clean,
    Paired(&'a PairedEntries),
}

impl TrainingData {
    /// Clean images and paired sets, decoded files kept up to `cache_mb` MiB.
    pub fn new(clean: Vec<CleanImage>, paired: Vec<PairedSource>, cache_mb: usize) -> Self {
        let mut paths = Vec::new();
        let mut add = |path: PathBuf| {
            paths.push(path);
            paths.len() - 1
        };
        let clean = clean
            .into_iter()
            .map(|c| {
                let index = add(c.path);
                Entry { input: index, target: index, width: c.width, height: c.height }
            })
            .collect();
        let paired = paired
            .into_iter()
            .map(|set| PairedEntries {
                kind: set.layout.kind(),
                task: set.task,
                share: set.share,
                dir: set.dir,
                entries: set
                    .pairs
                    .into_iter()
                    .map(|p| Entry { input: add(p.input), target: add(p.target), width: p.width, height: p.height })
                    .collect(),
            })
            .collect();
        Self { files: ImageSource::new(paths, cache_mb), clean, paired }
    }

    /// Scans the experiment's clean folder (keeping `data.train_images` of its images) and paired
    /// sets, for a run going on from step `start`, and checks that every task has data at every
    /// patch size it will use.
    pub fn load(config: &ExperimentConfig, start: usize) -> Result<Self> {
        let (d, schedule) = (&config.data, &config.schedule);
        let patches = patches_used(start, schedule, d.patch);
        let smallest = patches.first().copied().unwrap_or(d.patch);
        let clean = match &d.train {
            Some(dir) => {
                let all = scan(dir, smallest)?;
                match d.train_images {
                    Some(count) if count < all.len() => {
                        let found = all.len();
                        let chosen = subset(all, count, config.run.seed);
                        eprintln!("training on {count} of the {found} usable clean images (data.train_images)");
                        chosen
                    }
                    _ => all,
                }
            }
            None => Vec::new(),
        };
        let mut paired = Vec::new();
        for set in &d.paired {
            let source = paired::scan(set, smallest, !clean.is_empty())?;
            if !schedule.tasks.contains(&source.task) {
                eprintln!(
                    "note: paired set {} ({}) is not used: {} is not among the scheduled tasks",
                    set.dir.display(),
                    source.layout,
                    source.task
                );
                continue;
            }
            eprintln!(
                "paired set {}: {} layout, {} pairs for {}",
                set.dir.display(),
                source.layout,
                source.pairs.len(),
                source.task
            );
            paired.push(source);
        }
        let data = Self::new(clean, paired, d.cache_mb);
        data.check(&schedule.tasks, &patches)?;
        Ok(data)
    }

    /// Every task has a source, and every source has images for every patch size.
    fn check(&self, tasks: &[Task], patches: &[usize]) -> Result<()> {
        for &task in tasks {
            if self.clean.is_empty() && !self.paired.iter().any(|p| p.task == task) {
                bail!("no training data for {task}: pass --data DIR with clean images, or a paired set for it");
            }
        }
        let largest = patches.last().copied().unwrap_or(0);
        let fits = |e: &&Entry| e.width >= largest && e.height >= largest;
        let mut sources: Vec<(String, &[Entry])> = Vec::new();
        if !self.clean.is_empty() {
            sources.push(("the clean images".into(), &self.clean));
        }
        for set in &self.paired {
            sources.push((format!("paired set {}", set.dir.display()), &set.entries));
        }
        for (name, entries) in sources {
            let usable = entries.iter().filter(fits).count();
            if usable == 0 {
                bail!("none of {name} is at least {largest}×{largest}: lower the largest patch ({largest})");
            }
            if usable < entries.len() {
                eprintln!(
                    "note: {} of {name} are smaller than the {largest}-pixel patch: they serve only the smaller \
                     patches",
                    entries.len() - usable
                );
            }
        }
        Ok(())
    }

    /// Number of clean images.
    pub fn clean_len(&self) -> usize {
        self.clean.len()
    }

    /// Number of pairs over all paired sets.
    pub fn paired_len(&self) -> usize {
        self.paired.iter().map(|p| p.entries.len()).sum()
    }

    /// Where a sample of `task` comes from: a paired set of the task with its share (the rest are
    /// clean images), or in proportion to the shares when there are no clean images. Draws only
    /// when the task has paired sets.
    fn origin(&self, task: Task, rng: &mut ChaCha8Rng) -> Result<Origin<'_>> {
        let sets: Vec<&PairedEntries> = self.paired.iter().filter(|p| p.task == task).collect();
        if sets.is_empty() {
            if self.clean.is_empty() {
                bail!("no training data for {task}");
            }
            return Ok(Origin::Clean);
        }
        let total: f64 = sets.iter().map(|s| s.share).sum();
        let scale = if self.clean.is_empty() { total } else { 1.0 };
        let mut pick = rng.random::<f64>() * scale;
        for set in &sets {
            if pick < set.share {
                return Ok(Origin::Paired(set));
            }
            pick -= set.share;
        }
        Ok(if self.clean.is_empty() { Origin::Paired(sets[sets.len() - 1]) } else { Origin::Clean })
    }
}

/// The generator of sample `index` of step `step`: keyed by `(seed, step, index)` only.
pub fn sample_rng(seed: u64, step: usize, index: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(step as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
    key[24..].copy_from_slice(b"restora\0");
    ChaCha8Rng::from_seed(key)
}

/// One sample's patches.
struct Sample {
    degraded: Image,
    clean: Image,
    mask: Option<Vec<f32>>,
    kind: &'static str,
    task: Task,
}

/// Builds step `step`'s batch, or this shard of it (a pure function of the images, `spec` and
/// `step`).
pub fn make_batch(data: &TrainingData, spec: &BatchSpec, step: usize) -> Result<Batch> {
    let task = batch_task_at(step, &spec.schedule);
    let (whole, p) = spec.shape_at(step);
    let samples = spec.shard.range(whole);
    let size = samples.len();
    let composition = (task == BatchTask::Mixed).then(|| mixed_composition(&spec.schedule.tasks));
    let plane = p * p;
    let mut batch = Batch {
        step,
        task,
        size,
        patch: p,
        degraded: Vec::with_capacity(size * 3 * plane),
        clean: Vec::with_capacity(size * 3 * plane),
        mask: None,
        kinds: Vec::with_capacity(size),
        tasks: Vec::with_capacity(size),
    };
    let mut masks: Vec<Option<Vec<f32>>> = Vec::with_capacity(size);
    for index in samples {
        let mut rng = sample_rng(spec.seed, step, index);
        let sample = make_sample(data, task, composition.as_ref(), p, &mut rng)?;
        batch.clean.extend(sample.clean.to_planar());
        batch.degraded.extend(sample.degraded.to_planar());
        masks.push(sample.mask);
        batch.kinds.push(sample.kind);
        batch.tasks.push(sample.task);
    }
    if masks.iter().any(Option::is_some) {
        batch.mask = Some(masks.into_iter().flat_map(|m| m.unwrap_or_else(|| vec![0.0; plane])).collect());
    }
    Ok(batch)
}

/// One sample: its task (the batch's, or drawn from `composition` in the mixed mode), its origin,
/// an image large enough for the `p`-pixel patch, the crop and symmetry, and for clean images the
/// degradation and its seed, all from `rng`.
fn make_sample(
    data: &TrainingData,
    task: BatchTask,
    composition: Option<&Composition>,
    p: usize,
    rng: &mut ChaCha8Rng,
) -> Result<Sample> {
    let (task, mut degradation): (Task, Option<Degradation>) = match (task, composition) {
        (BatchTask::One(task), _) => (task, None),
        (BatchTask::Mixed, Some(composition)) => {
            let drawn = composition.sample(rng).map_err(|e| anyhow!("mixed mode: {e}"))?;
            (drawn.task(), Some(drawn))
        }
        (BatchTask::Mixed, None) => bail!("a mixed batch needs the task weights"),
    };
    let origin = data.origin(task, rng)?;
    let entries = match origin {
        Origin::Clean => &data.clean,
        Origin::Paired(set) => &set.entries,
    };
    let fits = |e: &&Entry| e.width >= p && e.height >= p;
    let count = entries.iter().filter(fits).count();
    if count == 0 {
        bail!("no training image is at least {p}×{p}");
    }
    let entry = *entries.iter().filter(fits).nth(rng.random_range(0..count)).expect("count fits");
    let x0 = rng.random_range(0..=entry.width - p);
    let y0 = rng.random_range(0..=entry.height - p);
    let flip = rng.random_bool(0.5);
    let turns = rng.random_range(0..4u32);
    let target = data.files.get(entry.target)?;
    let path = &data.files.paths[entry.target];
    if target.width < entry.width || target.height < entry.height {
        bail!(
            "{} is {}×{}, not the {}×{} it was",
            path.display(),
            target.width,
            target.height,
            entry.width,
            entry.height
        );
    }
    let clean = target.patch(x0, y0, p, flip, turns);
    match origin {
        Origin::Paired(set) => {
            let input = data.files.get(entry.input)?;
            if (input.width, input.height) != (target.width, target.height) {
                bail!("{} and its partner {} differ in size", data.files.paths[entry.input].display(), path.display());
            }
            let degraded = input.patch(x0, y0, p, flip, turns);
            Ok(Sample { degraded, clean, mask: None, kind: set.kind, task })
        }
        Origin::Clean => {
            let degradation = match degradation.take() {
                Some(drawn) => drawn,
                None => sample(task, rng),
            };
            let degradation_seed: u64 = rng.random();
            let degraded = degradation
                .apply(&clean, degradation_seed)
                .with_context(|| format!("cannot apply {} to a patch of {}", degradation.kind(), path.display()))?;
            let mask = degraded.mask.map(|m| m.data().to_vec());
            Ok(Sample { degraded: degraded.image, clean, mask, kind: degradation.kind(), task })
        }
    }
}

/// Where output pixel `(x, y)` of a `p × p` patch is read: `turns` quarter turns, then an optional
/// mirror (the eight symmetries of the square).
fn orient(x: usize, y: usize, p: usize, flip: bool, turns: u32) -> (usize, usize) {
    let x = if flip { p - 1 - x } else { x };
    match turns {
        0 => (x, y),
        1 => (y, p - 1 - x),
        2 => (p - 1 - x, p - 1 - y),
        _ => (p - 1 - y, x),
    }
}

/// Batches for steps `start..end`, prepared ahead on worker threads.
pub struct Loader {
    receivers: Vec<Receiver<Result<Batch>>>,
    workers: Vec<JoinHandle<()>>,
    start: usize,
    next: usize,
}

impl Loader {
    /// Starts `workers` threads; worker `w` makes steps `start + w`, `start + w + workers`, ...,
    /// keeping at most `prefetch` batches ready in all.
    pub fn start(
        source: Arc<TrainingData>,
        spec: BatchSpec,
        start: usize,
        end: usize,
        workers: usize,
        prefetch: usize,
    ) -> Result<Self> {
        let workers = workers.max(1);
        let capacity = prefetch.div_ceil(workers).max(1);
        let mut receivers = Vec::with_capacity(workers);
        let mut handles = Vec::with_capacity(workers);
        for w in 0..workers {
            let (sender, receiver) = sync_channel(capacity);
            let (source, spec) = (source.clone(), spec.clone());
            let handle = std::thread::Builder::new()
                .name(format!("train-data-{w}"))
                .spawn(move || {
                    for step in (start + w..end).step_by(workers) {
                        let batch = make_batch(&source, &spec, step);
                        let failed = batch.is_err();
                        // The trainer hung up (finished or failed): stop.
                        if sender.send(batch).is_err() || failed {
                            return;
                        }
                    }
                })
                .context("cannot start a data worker thread")?;
            receivers.push(receiver);
            handles.push(handle);
        }
        Ok(Self { receivers, workers: handles, start, next: start })
    }

    /// The next step's batch, in order.
    pub fn next_batch(&mut self) -> Result<Batch> {
        let worker = (self.next - self.start) % self.receivers.len();
        let batch = self.receivers[worker].recv().map_err(|_| anyhow!("a data worker stopped unexpectedly"))??;
        debug_assert_eq!(batch.step, self.next);
        self.next += 1;
        Ok(batch)
    }
}

impl Drop for Loader {
    fn drop(&mut self) {
        // Hanging up first makes blocked workers return.
        self.receivers.clear();
        for handle in self.workers.drain(..) {
            let _ = handle.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use restora_model::BitDepth;

    use super::*;
    use crate::training::config::{ScheduleMode, Stage};
    use crate::training::paired::{Layout, Pair};

    fn write_images(dir: &Path, sizes: &[(u32, u32)]) {
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let image = Image::from_fn(w, h, |x, y| {
                [x as f32 / w as f32, y as f32 / h as f32, ((x * 7 + y * 3 + i as u32) % 11) as f32 / 11.0]
            });
            std::fs::write(dir.join(format!("img{i}.png")), image.encode_png(BitDepth::Eight).unwrap()).unwrap();
        }
    }

    fn spec(tasks: Vec<Task>) -> BatchSpec {
        BatchSpec {
            seed: 5,
            batch: 3,
            patch: 16,
            schedule: ScheduleOptions { iters: 100, switch_every: 2, tasks, ..Default::default() },
            shard: Shard::WHOLE,
        }
    }

    fn clean(dir: &Path) -> Vec<CleanImage> {
        write_images(dir, &[(40, 30), (12, 50), (24, 24)]);
        scan(dir, 16).unwrap()
    }

    /// An input/target set where every input pixel is its target's plus 20/255 (exact in 8 bits).
    fn offset_pairs(dir: &Path, task: Task, share: f64) -> PairedSource {
        let mut pairs = Vec::new();
        for (i, (w, h)) in [(30u32, 20u32), (20, 26)].into_iter().enumerate() {
            let level = |x: u32, y: u32, c: u32| ((x * 7 + y * 13 + c * 31 + i as u32 * 5) % 200) as f32;
            let target = Image::from_fn(w, h, |x, y| [0, 1, 2].map(|c| level(x, y, c) / 255.0));
            let input = Image::from_fn(w, h, |x, y| [0, 1, 2].map(|c| (level(x, y, c) + 20.0) / 255.0));
            let (a, b) = (dir.join(format!("in{i}.png")), dir.join(format!("target{i}.png")));
            std::fs::write(&a, input.encode_png(BitDepth::Eight).unwrap()).unwrap();
            std::fs::write(&b, target.encode_png(BitDepth::Eight).unwrap()).unwrap();
            pairs.push(Pair { input: a, target: b, width: w as usize, height: h as usize });
        }
        PairedSource { dir: dir.to_path_buf(), layout: Layout::InputTarget, task, share, pairs }
    }

    #[test]
    fn small_images_are_skipped_and_batches_depend_only_on_the_step() {
        let dir = tempfile::tempdir().unwrap();
        let images = clean(dir.path());
        assert_eq!(images.len(), 2);
        assert_eq!((images[0].width, images[0].height), (40, 30));
        assert!(scan(dir.path(), 64).unwrap_err().to_string().contains("no usable"));

        let spec = spec(Task::ALL.to_vec());
        let cached = TrainingData::new(images.clone(), Vec::new(), 64);
        let uncached = TrainingData::new(images, Vec::new(), 0);
        let a = make_batch(&cached, &spec, 7).unwrap();
        assert_eq!(a, make_batch(&uncached, &spec, 7).unwrap());
        assert_eq!(a.task, BatchTask::One(Task::Inpaint));
        assert_eq!(a.tasks, [Task::Inpaint; 3]);
        assert_eq!(a.degraded.len(), 3 * 3 * 16 * 16);
        assert_eq!(a.mask.as_ref().map(Vec::len), Some(3 * 16 * 16));
        assert!(a.mask.as_ref().unwrap().iter().any(|&m| m > 0.5));
        assert_ne!(a.degraded, a.clean);
        let b = make_batch(&cached, &spec, 0).unwrap();
        assert_eq!(b.task, BatchTask::One(Task::Denoise));
        assert!(b.mask.is_none());
        assert_ne!(b.clean, a.clean);

        // Threads, prefetch and the starting step change nothing.
        let source = Arc::new(cached);
        let mut one = Loader::start(source.clone(), spec.clone(), 0, 12, 1, 1).unwrap();
        let mut three = Loader::start(source.clone(), spec.clone(), 5, 12, 3, 5).unwrap();
        let from_one: Vec<Batch> = (0..12).map(|_| one.next_batch().unwrap()).collect();
        for step in 5..12 {
            assert_eq!(three.next_batch().unwrap(), from_one[step]);
        }
        // Dropping a loader with work in flight returns.
        drop(Loader::start(source, spec, 0, 1000, 2, 4).unwrap());
    }

    #[test]
    fn paired_patches_are_cut_at_the_same_place_in_both_images() {
        let dir = tempfile::tempdir().unwrap();
        let data = TrainingData::new(Vec::new(), vec![offset_pairs(dir.path(), Task::Dealias, 1.0)], 16);
        let only_pairs = BatchSpec { batch: 4, ..spec(vec![Task::Dealias]) };
        let mut crops = std::collections::HashSet::new();
        for step in 0..6 {
            let batch = make_batch(&data, &only_pairs, step).unwrap();
            assert_eq!(batch.kinds, ["paired:input_target"; 4]);
            assert!(batch.mask.is_none());
            for (degraded, clean) in batch.degraded.iter().zip(&batch.clean) {
                assert!((degraded - clean - 20.0 / 255.0).abs() < 1e-5, "{degraded} vs {clean}");
            }
            crops.insert(batch.clean.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
        }
        assert_eq!(crops.len(), 6, "crops vary");

        // With clean images too, the paired set takes its share of the task's samples.
        let clean_dir = tempfile::tempdir().unwrap();
        let data = TrainingData::new(clean(clean_dir.path()), vec![offset_pairs(dir.path(), Task::Denoise, 0.5)], 16);
        let spec = BatchSpec { batch: 8, ..spec(vec![Task::Denoise, Task::Deblur]) };
        let kinds: Vec<&str> = (0..8).flat_map(|step| make_batch(&data, &spec, step).unwrap().kinds).collect();
        let paired = kinds.iter().filter(|k| **k == "paired:input_target").count();
        // Steps 0, 1, 4, 5 denoise: about half of their 32 samples are paired; deblur never is.
        assert!((8..=24).contains(&paired), "{paired} paired samples: {kinds:?}");
        assert!(kinds[16..32].iter().all(|k| k.ends_with("_blur")), "{kinds:?}");
    }

    #[test]
    fn mixed_batches_draw_a_task_per_sample_and_are_deterministic() {
        let dir = tempfile::tempdir().unwrap();
        let pairs_dir = tempfile::tempdir().unwrap();
        let paired = vec![offset_pairs(pairs_dir.path(), Task::Denoise, 0.5)];
        let data = Arc::new(TrainingData::new(clean(dir.path()), paired, 16));
        let mut spec = spec(Task::ALL.to_vec());
        spec.batch = 12;
        spec.schedule.mode = ScheduleMode::Mixed;
        let batches: Vec<Batch> = (0..4).map(|step| make_batch(&data, &spec, step).unwrap()).collect();
        let mut seen = std::collections::BTreeSet::new();
        let mut kinds = std::collections::BTreeSet::new();
        for batch in &batches {
            assert_eq!(batch.task, BatchTask::Mixed);
            let distinct: std::collections::BTreeSet<Task> = batch.tasks.iter().copied().collect();
            assert!(distinct.len() >= 2, "{:?}", batch.tasks);
            seen.extend(distinct);
            kinds.extend(batch.kinds.iter().copied());
            // The mask marks pixels only in the inpainted samples.
            let plane = 16 * 16;
            if let Some(mask) = &batch.mask {
                for (i, task) in batch.tasks.iter().enumerate() {
                    let holes = mask[i * plane..(i + 1) * plane].iter().filter(|&&m| m > 0.5).count();
                    assert_eq!(holes > 0, *task == Task::Inpaint, "sample {i} ({task})");
                }
            } else {
                assert!(!batch.tasks.contains(&Task::Inpaint));
            }
        }
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(kinds.contains("paired:input_target"), "{kinds:?}");
        // The same step gives the same batch, from any thread.
        let mut loader = Loader::start(data.clone(), spec.clone(), 2, 4, 2, 2).unwrap();
        assert_eq!(loader.next_batch().unwrap(), batches[2]);
        assert_eq!(loader.next_batch().unwrap(), batches[3]);
        // Only the scheduled tasks are drawn.
        spec.schedule.tasks = vec![Task::Deblur, Task::Dealias];
        let batch = make_batch(&data, &spec, 0).unwrap();
        assert!(batch.tasks.iter().all(|t| matches!(t, Task::Deblur | Task::Dealias)), "{:?}", batch.tasks);
        assert!(batch.mask.is_none());
    }

    #[test]
    fn shards_of_a_batch_are_its_parts_in_order() {
        // Uneven splits: the first shards take one sample more.
        let ranges = |count: usize, batch: usize| -> Vec<std::ops::Range<usize>> {
            (0..count).map(|index| Shard { index, count }.range(batch)).collect()
        };
        assert_eq!(ranges(3, 7), vec![0..3, 3..5, 5..7]);
        assert_eq!(ranges(2, 4), vec![0..2, 2..4]);
        assert_eq!(Shard::WHOLE.range(5), 0..5);
        // Mixed batches with inpainting: the shards, concatenated, are the whole batch, sample for
        // sample (patches, kinds, tasks); a shard has a mask exactly when one of its samples is inpainted.
        let dir = tempfile::tempdir().unwrap();
        let data = TrainingData::new(clean(dir.path()), Vec::new(), 16);
        let mut whole_spec = spec(Task::ALL.to_vec());
        whole_spec.batch = 7;
        whole_spec.schedule.mode = ScheduleMode::Mixed;
        let plane = 16 * 16;
        for step in 0..3 {
            let whole = make_batch(&data, &whole_spec, step).unwrap();
            let mut joined = Batch { mask: Some(Vec::new()), ..whole.clone() };
            (joined.degraded, joined.clean, joined.kinds, joined.tasks) = Default::default();
            for index in 0..3 {
                let shard = BatchSpec { shard: Shard { index, count: 3 }, ..whole_spec.clone() };
                let part = make_batch(&data, &shard, step).unwrap();
                assert_eq!(part.size, Shard { index, count: 3 }.range(7).len());
                assert_eq!(part.mask.is_some(), part.tasks.contains(&Task::Inpaint));
                let mask = part.mask.unwrap_or_else(|| vec![0.0; part.size * plane]);
                joined.mask.as_mut().unwrap().extend(mask);
                joined.degraded.extend(part.degraded);
                joined.clean.extend(part.clean);
                joined.kinds.extend(part.kinds);
                joined.tasks.extend(part.tasks);
            }
            joined.size = 7;
            if whole.mask.is_none() {
                assert!(joined.mask.as_ref().unwrap().iter().all(|&m| m == 0.0));
                joined.mask = None;
            }
            assert_eq!(joined, whole, "step {step}");
        }
    }

    #[test]
    fn progressive_stages_change_the_patch_and_batch_at_their_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let data = TrainingData::new(clean(dir.path()), Vec::new(), 16);
        let mut spec = spec(vec![Task::Deblur]);
        spec.schedule.progressive =
            vec![Stage { until: 2, patch: 8, batch: 4 }, Stage { until: 3, patch: 24, batch: 1 }];
        let shapes: Vec<(usize, usize, usize)> = (0..5)
            .map(|step| {
                let batch = make_batch(&data, &spec, step).unwrap();
                assert_eq!(batch.degraded.len(), batch.size * 3 * batch.patch * batch.patch);
                (batch.size, batch.patch, batch.kinds.len())
            })
            .collect();
        assert_eq!(shapes, [(4, 8, 4), (4, 8, 4), (1, 24, 1), (3, 16, 3), (3, 16, 3)]);
        // Both images fit the 24-pixel patch, none a 32-pixel one: the check names it.
        assert!(data.check(&[Task::Deblur], &[8, 24]).is_ok());
        let message = data.check(&[Task::Deblur], &[8, 32]).unwrap_err().to_string();
        assert!(message.contains("32"), "{message}");
    }

    #[test]
    fn a_subset_is_sorted_and_depends_on_the_seed_only() {
        let items: Vec<usize> = (0..20).collect();
        let a = subset(items.clone(), 5, 1);
        assert_eq!(a.len(), 5);
        assert!(a.windows(2).all(|w| w[0] < w[1]), "{a:?}");
        assert_eq!(a, subset(items.clone(), 5, 1));
        assert_ne!(a, subset(items.clone(), 5, 2));
        assert_eq!(subset(items.clone(), 30, 1), items);
    }

    #[test]
    fn orientations_are_the_eight_symmetries() {
        let p = 5;
        let mut seen = std::collections::HashSet::new();
        for flip in [false, true] {
            for turns in 0..4 {
                let map: Vec<(usize, usize)> = (0..p * p).map(|i| orient(i % p, i / p, p, flip, turns)).collect();
                let mut sorted = map.clone();
                sorted.sort();
                sorted.dedup();
                assert_eq!(sorted.len(), p * p, "a permutation");
                seen.insert(map);
            }
        }
        assert_eq!(seen.len(), 8);
    }
}
