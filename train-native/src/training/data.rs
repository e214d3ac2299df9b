//! Training batches: random patches of clean images, flipped and rotated by multiples of 90°,
//! degraded for the iteration's task by the model crate's sampler.
//!
//! Every random choice of sample `i` of step `s` comes from a ChaCha8 generator keyed by
//! `(seed, s, i)` alone, so a batch is the same whichever thread made it, whenever, and whether
//! or not the run was resumed in between. Worker threads prepare steps round-robin, each into its
//! own bounded channel, and the trainer reads the channels in the same order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{sync_channel, Receiver};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use anyhow::{anyhow, bail, Context, Result};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use restora_model::degradations::{sample, Task};
use restora_model::Image;

use super::config::ScheduleOptions;
use super::schedule::task_at;
use crate::files::{list_images, read_image};

/// The training images large enough for a patch, sorted by path.
pub fn scan(dir: &Path, patch: usize) -> Result<Vec<PathBuf>> {
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
            Ok(_) => usable.push(path),
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

/// One step's input.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// 0-based step index.
    pub step: usize,
    pub task: Task,
    /// Samples in the batch.
    pub size: usize,
    /// Patch side.
    pub patch: usize,
    /// Degraded patches, planar `[size, 3, patch, patch]`.
    pub degraded: Vec<f32>,
    /// Clean patches, planar `[size, 3, patch, patch]`.
    pub clean: Vec<f32>,
    /// Missing pixels `[size, 1, patch, patch]` (1 = missing) for inpainting; `None` otherwise.
    pub mask: Option<Vec<f32>>,
    /// The degradation kind of each sample (`gaussian_noise`, ...).
    pub kinds: Vec<&'static str>,
}

/// What a batch depends on besides the images.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    pub seed: u64,
    pub batch: usize,
    pub patch: usize,
    pub schedule: ScheduleOptions,
}

/// The training images, decoded on demand and kept (as 16-bit values) up to a memory budget.
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
}

impl ImageSource {
    pub fn new(paths: Vec<PathBuf>, cache_mb: usize) -> Self {
        Self { paths, budget_bytes: cache_mb << 20, cache: Mutex::new((HashMap::new(), 0)) }
    }

    pub fn len(&self) -> usize {
        self.paths.len()
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

/// The generator of sample `index` of step `step`: keyed by `(seed, step, index)` only.
pub fn sample_rng(seed: u64, step: usize, index: usize) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    key[8..16].copy_from_slice(&(step as u64).to_le_bytes());
    key[16..24].copy_from_slice(&(index as u64).to_le_bytes());
    key[24..].copy_from_slice(b"restora\0");
    ChaCha8Rng::from_seed(key)
}

/// Builds step `step`'s batch (a pure function of the images, `spec` and `step`).
pub fn make_batch(source: &ImageSource, spec: &BatchSpec, step: usize) -> Result<Batch> {
    let task = task_at(step, &spec.schedule);
    let p = spec.patch;
    let plane = p * p;
    let mut batch = Batch {
        step,
        task,
        size: spec.batch,
        patch: p,
        degraded: Vec::with_capacity(spec.batch * 3 * plane),
        clean: Vec::with_capacity(spec.batch * 3 * plane),
        mask: None,
        kinds: Vec::with_capacity(spec.batch),
    };
    let mut masks: Vec<Option<Vec<f32>>> = Vec::with_capacity(spec.batch);
    for index in 0..spec.batch {
        let mut rng = sample_rng(spec.seed, step, index);
        let which = rng.random_range(0..source.len());
        let image = source.get(which)?;
        let path = &source.paths[which];
        if image.width < p || image.height < p {
            bail!("{} is {}×{}, smaller than the {p}-pixel patch", path.display(), image.width, image.height);
        }
        let x0 = rng.random_range(0..=image.width - p);
        let y0 = rng.random_range(0..=image.height - p);
        let flip = rng.random_bool(0.5);
        let turns = rng.random_range(0..4u32);
        let degradation = sample(task, &mut rng);
        let degradation_seed: u64 = rng.random();

        let clean = Image::from_fn(p as u32, p as u32, |x, y| {
            let (u, v) = orient(x as usize, y as usize, p, flip, turns);
            image.pixel(x0 + u, y0 + v)
        });
        let degraded = degradation
            .apply(&clean, degradation_seed)
            .with_context(|| format!("cannot apply {} to a patch of {}", degradation.kind(), path.display()))?;
        batch.clean.extend(clean.to_planar());
        batch.degraded.extend(degraded.image.to_planar());
        masks.push(degraded.mask.map(|m| m.data().to_vec()));
        batch.kinds.push(degradation.kind());
    }
    if masks.iter().any(Option::is_some) {
        batch.mask = Some(masks.into_iter().flat_map(|m| m.unwrap_or_else(|| vec![0.0; plane])).collect());
    }
    Ok(batch)
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
        source: Arc<ImageSource>,
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

    fn write_images(dir: &Path, sizes: &[(u32, u32)]) {
        for (i, &(w, h)) in sizes.iter().enumerate() {
            let image = Image::from_fn(w, h, |x, y| {
                [x as f32 / w as f32, y as f32 / h as f32, ((x * 7 + y * 3 + i as u32) % 11) as f32 / 11.0]
            });
            std::fs::write(dir.join(format!("img{i}.png")), image.encode_png(BitDepth::Eight).unwrap()).unwrap();
        }
    }

    fn spec(tasks: Vec<Task>) -> BatchSpec {
        BatchSpec { seed: 5, batch: 3, patch: 16, schedule: ScheduleOptions { iters: 100, switch_every: 2, tasks } }
    }

    #[test]
    fn small_images_are_skipped_and_batches_depend_only_on_the_step() {
        let dir = tempfile::tempdir().unwrap();
        write_images(dir.path(), &[(40, 30), (12, 50), (24, 24)]);
        let paths = scan(dir.path(), 16).unwrap();
        assert_eq!(paths.len(), 2);
        assert!(scan(dir.path(), 64).unwrap_err().to_string().contains("no usable"));

        let spec = spec(Task::ALL.to_vec());
        let cached = ImageSource::new(paths.clone(), 64);
        let uncached = ImageSource::new(paths, 0);
        let a = make_batch(&cached, &spec, 7).unwrap();
        assert_eq!(a, make_batch(&uncached, &spec, 7).unwrap());
        assert_eq!(a.task, Task::Inpaint);
        assert_eq!(a.degraded.len(), 3 * 3 * 16 * 16);
        assert_eq!(a.mask.as_ref().map(Vec::len), Some(3 * 16 * 16));
        assert!(a.mask.as_ref().unwrap().iter().any(|&m| m > 0.5));
        assert_ne!(a.degraded, a.clean);
        let b = make_batch(&cached, &spec, 0).unwrap();
        assert_eq!(b.task, Task::Denoise);
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
