//! `train-native bench`: forward latency and megapixels/s per preset, image size and backend,
//! training iterations/s, peak device memory where the backend reports it, and the achieved
//! TFLOP/s from the model's MAC count; written as `bench.json` and `bench.md`.
//!
//! Every timed region starts and ends with `Backend::sync` (burn 0.20.1), so queued GPU work is
//! inside the clock; the first warm-up run (kernel compilation, allocation) is reported on its
//! own. Peak memory comes from cubecl's memory pool (`ComputeClient::memory_usage`), reached by
//! downcasting the backend's tensor primitive to `CubeTensor`; burn-ndarray reports none. A cell
//! that fails (out of memory, a device error, a panic) is recorded with its message and the bench
//! goes on; the report is rewritten after every cell, so an interrupted run keeps what it measured.

use restora_model::RestoraBackend;
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use burn::backend::Autodiff;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::Distribution;
use clap::{Args, ValueEnum};
use restora_model::{Preset, Restormer, RestormerConfig};
use serde::Serialize;

use crate::backend::{run_on, BackendChoice, BackendTask};
use crate::cli::parse_preset;
use crate::files::write_atomic;
use crate::training::config::OptimizerOptions;
use crate::training::train_loop::{optimizer, optimizer_step};

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    train-native bench --backend cuda --out bench/h100\n  \
    train-native bench --presets tiny,small --sizes 256,512 --backend cpu --train-patch 64 --train-batch 2 \
    --train-iters 2 --max-seconds 60\n  \
    train-native bench --backend cpu,wgpu --presets small --sizes 256 --train-iters 0\n\n\
    Writes OUT/bench.json and OUT/bench.md (rewritten after every measurement) and prints the tables.")]
pub struct BenchArgs {
    /// Model shapes, comma-separated (base, small, tiny).
    #[arg(long, value_delimiter = ',', value_parser = parse_preset, default_value = "small,base")]
    pub presets: Vec<Preset>,
    /// Square image sides of the forward pass, comma-separated multiples of 8 (run smallest first).
    #[arg(long, value_delimiter = ',', value_parser = parse_size, default_value = "256,512,1024")]
    pub sizes: Vec<usize>,
    /// Backends, repeatable or comma-separated.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "cpu")]
    pub backend: Vec<BackendChoice>,
    /// Untimed runs before the timed ones; the first is reported as "first run" (kernel compilation, autotune).
    #[arg(long, default_value_t = 2)]
    pub warmup: usize,
    /// Timed runs per measurement (median and minimum reported).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    pub repeats: u64,
    /// Training patch side, a multiple of 8.
    #[arg(long, default_value_t = 128, value_parser = parse_size)]
    pub train_patch: usize,
    /// Training batch size.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u64).range(1..))]
    pub train_batch: u64,
    /// Timed training iterations per preset and backend (forward, L1, backward, AdamW step); 0 skips training.
    #[arg(long, default_value_t = 10)]
    pub train_iters: usize,
    /// Use each preset's mask-aware variant (mask as a 4th input channel), as the foundation model does.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, num_args = 0..=1, default_missing_value = "true")]
    pub mask_aware: bool,
    /// Folder for bench.json and bench.md.
    #[arg(long, default_value = "bench-output")]
    pub out: PathBuf,
    /// Time budget in seconds per measurement: once spent, further warm-ups and repeats are
    /// skipped (one timed run always follows the first warm-up), and larger sizes predicted to
    /// exceed it are skipped; what was skipped is recorded.
    #[arg(long, value_parser = parse_seconds)]
    pub max_seconds: Option<f64>,
}

fn parse_size(s: &str) -> Result<usize, String> {
    let size: usize = s.trim().parse().map_err(|_| format!("'{s}' is not a whole number of pixels"))?;
    if size == 0 || size % 8 != 0 {
        return Err(format!("{size} is not a positive multiple of 8 (the model halves the image three times)"));
    }
    if size > 16384 {
        return Err(format!("{size} is larger than 16384 pixels"));
    }
    Ok(size)
}

fn parse_seconds(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v > 0.0 && v.is_finite() => Ok(v),
        _ => Err(format!("'{s}' is not a positive number of seconds")),
    }
}

/// What to measure, deduplicated.
#[derive(Debug, Clone, Serialize)]
struct Settings {
    presets: Vec<String>,
    sizes: Vec<usize>,
    backends: Vec<String>,
    warmup: usize,
    repeats: usize,
    train_patch: usize,
    train_batch: usize,
    train_iters: usize,
    mask_aware: bool,
    max_seconds: Option<f64>,
    #[serde(skip)]
    preset_values: Vec<Preset>,
}

#[derive(Debug, Clone, Serialize)]
struct Machine {
    os: &'static str,
    os_release: Option<String>,
    arch: &'static str,
    cpu_count: usize,
    cpu_model: Option<String>,
    git_commit: Option<String>,
    git_dirty: Option<bool>,
    program_version: &'static str,
    /// "debug" for a dev-profile binary (dependencies optimised, Restora's own code at opt-level 1).
    build_profile: &'static str,
}

#[derive(Debug, Clone, Serialize)]
struct BackendEntry {
    backend: String,
    /// `Backend::name`, e.g. `ndarray`, `cubecl<cuda>`, `cubecl<wgpu<wgsl>>`.
    backend_name: Option<String>,
    device: Option<String>,
    /// Whether the backend reports memory (cubecl backends do).
    reports_memory: bool,
    error: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Failed,
    Skipped,
}

#[derive(Debug, Clone, Serialize)]
struct ForwardCell {
    preset: String,
    backend: String,
    device: String,
    size: usize,
    batch: usize,
    mask_aware: bool,
    parameters: usize,
    macs: u64,
    macs_convolutions: u64,
    macs_attention: u64,
    gmacs: f64,
    status: Status,
    message: Option<String>,
    #[serde(flatten)]
    timing: Timing,
    megapixels_per_second: Option<f64>,
    tflops: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
struct TrainCell {
    preset: String,
    backend: String,
    device: String,
    patch: usize,
    batch: usize,
    mask_aware: bool,
    parameters: usize,
    /// Forward MACs of one sample at the patch size.
    macs_per_sample: u64,
    status: Status,
    message: Option<String>,
    #[serde(flatten)]
    timing: Timing,
    iterations_per_second: Option<f64>,
    samples_per_second: Option<f64>,
    tflops: Option<f64>,
}

/// Times of one measurement, in milliseconds.
#[derive(Debug, Clone, Default, Serialize)]
struct Timing {
    /// The first warm-up run: kernel compilation, autotune and first allocations included.
    first_run_ms: Option<f64>,
    median_ms: Option<f64>,
    min_ms: Option<f64>,
    mean_ms: Option<f64>,
    /// Every timed run, in order.
    runs_ms: Vec<f64>,
    warmup_runs: usize,
    skipped_warmup_runs: usize,
    skipped_runs: usize,
    /// Most memory the backend's pool held (reserved bytes), sampled after the model was built
    /// and after every run, from a pool emptied before the measurement.
    peak_memory_bytes: Option<u64>,
    /// Most bytes in live tensors at those samples (a lower bound of the true peak).
    peak_in_use_bytes: Option<u64>,
}

impl Timing {
    fn finish(&mut self) {
        let mut sorted = self.runs_ms.clone();
        sorted.sort_by(f64::total_cmp);
        if sorted.is_empty() {
            return;
        }
        let n = sorted.len();
        self.median_ms = Some(if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 });
        self.min_ms = Some(sorted[0]);
        self.mean_ms = Some(sorted.iter().sum::<f64>() / n as f64);
    }

    /// What --max-seconds left out, if anything.
    fn skipped_note(&self, unit: &str) -> Option<String> {
        let mut parts = Vec::new();
        if self.skipped_warmup_runs > 0 {
            parts.push(format!("{} warm-up", self.skipped_warmup_runs));
        }
        if self.skipped_runs > 0 {
            parts.push(format!("{} timed", self.skipped_runs));
        }
        (!parts.is_empty()).then(|| format!("--max-seconds: skipped {} {unit}", parts.join(" and ")))
    }

    fn median_seconds(&self) -> Option<f64> {
        self.median_ms.map(|ms| ms / 1e3).filter(|s| *s > 0.0)
    }
}

#[derive(Debug, Clone, Serialize)]
struct Report {
    format: u32,
    /// False while the bench runs (the report is rewritten after every measurement) or if it was interrupted.
    complete: bool,
    created_unix_seconds: u64,
    machine: Machine,
    settings: Settings,
    conventions: Vec<&'static str>,
    backends: Vec<BackendEntry>,
    forward: Vec<ForwardCell>,
    training: Vec<TrainCell>,
}

const CONVENTIONS: [&str; 7] = [
    "Times: Backend::sync before starting and after stopping the clock; median and min over the timed runs that follow the warm-up runs; \"first run\" is the first warm-up (kernel compilation, autotune, first allocations).",
    "Forward: batch 1, random image, no inpainting mask (the mask-aware model gets an all-zero mask channel).",
    "MACs from RestormerConfig::macs (convolutions + attention products); FLOPs = 2 x MACs; TFLOP/s = 2 x MACs / median seconds / 1e12; MP/s = height x width / 1e6 / median seconds.",
    "Training step: forward, L1 loss, backward, AdamW step (training's defaults: weight decay 1e-4, per-parameter gradient clipping at norm 0.01) on Autodiff<backend>, random patches, no mask; it/s = 1 / median step time.",
    "Training TFLOP/s counts 3 x forward FLOPs per sample (forward + backward ~ 2 x forward), the optimizer step not counted.",
    "Peak memory: the most bytes reserved by cubecl's memory pool, sampled after building the model and after every run, the pool emptied (Backend::memory_cleanup) before each measurement; n/a where the backend reports none (burn-ndarray).",
    "A failed cell records its error (out of memory, device error) and the bench goes on; a skipped one was over --max-seconds.",
];

pub fn run(args: BenchArgs) -> Result<()> {
    let settings = settings(&args);
    let out = args.out.clone();
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut report = Report {
        format: 1,
        complete: false,
        created_unix_seconds: SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0),
        machine: machine(),
        settings: settings.clone(),
        conventions: CONVENTIONS.to_vec(),
        backends: Vec::new(),
        forward: Vec::new(),
        training: Vec::new(),
    };
    if report.machine.build_profile == "debug" {
        eprintln!("note: this is a debug build; time a release build (cargo build --release) for figures to publish");
    }
    let mut choices = Vec::new();
    for choice in &args.backend {
        if !choices.contains(choice) {
            choices.push(*choice);
        }
    }
    // A backend this build lacks is refused before hours are spent on the others.
    for &choice in &choices {
        let compiled = match choice {
            BackendChoice::Cpu => true,
            BackendChoice::Wgpu => cfg!(feature = "wgpu"),
            BackendChoice::Cuda => cfg!(feature = "cuda"),
        };
        if !compiled {
            run_on(choice, Nothing).with_context(|| format!("--backend {}", backend_label(choice)))?;
        }
    }
    for choice in choices {
        let label = backend_label(choice);
        eprintln!("backend {label}:");
        let index = report.backends.len();
        report.backends.push(BackendEntry {
            backend: label.clone(),
            backend_name: None,
            device: None,
            reports_memory: false,
            error: None,
        });
        let task = Bench { choice, settings: &settings, report: &mut report, out: &out };
        let outcome = guarded(|| run_on(choice, task));
        if let Err(error) = outcome {
            let message = error_message(&error);
            eprintln!("  backend {label} unavailable or failed: {message}");
            report.backends[index].error = Some(message);
        }
        save(&report, &out)?;
    }
    report.complete = true;
    save(&report, &out)?;
    print!("{}", markdown(&report));
    eprintln!("wrote {} and {}", out.join("bench.json").display(), out.join("bench.md").display());

    let measured = report.forward.iter().filter(|c| c.status == Status::Ok).count()
        + report.training.iter().filter(|c| c.status == Status::Ok).count();
    if measured == 0 {
        let mut problems: Vec<String> =
            report.backends.iter().filter_map(|b| b.error.as_ref().map(|e| format!("{}: {e}", b.backend))).collect();
        problems.extend(
            report.forward.iter().filter_map(|c| c.message.as_ref().map(|m| format!("{} {}²: {m}", c.preset, c.size))),
        );
        problems.extend(
            report.training.iter().filter_map(|c| c.message.as_ref().map(|m| format!("{} training: {m}", c.preset))),
        );
        bail!("nothing could be measured: {}", problems.first().map_or("no measurements requested", |p| p.as_str()));
    }
    Ok(())
}

fn settings(args: &BenchArgs) -> Settings {
    let mut presets = Vec::new();
    for preset in &args.presets {
        if !presets.contains(preset) {
            presets.push(*preset);
        }
    }
    let mut sizes = args.sizes.clone();
    sizes.sort_unstable();
    sizes.dedup();
    let mut backends: Vec<String> = Vec::new();
    for b in &args.backend {
        let label = backend_label(*b);
        if !backends.contains(&label) {
            backends.push(label);
        }
    }
    Settings {
        presets: presets.iter().map(|p| p.to_string()).collect(),
        sizes,
        backends,
        warmup: args.warmup,
        repeats: args.repeats as usize,
        train_patch: args.train_patch,
        train_batch: args.train_batch as usize,
        train_iters: args.train_iters,
        mask_aware: args.mask_aware,
        max_seconds: args.max_seconds,
        preset_values: presets,
    }
}

fn backend_label(choice: BackendChoice) -> String {
    choice.to_possible_value().map_or_else(|| format!("{choice:?}").to_lowercase(), |v| v.get_name().to_string())
}

/// Nothing to run: asks `run_on` whether a backend is compiled in.
struct Nothing;

impl BackendTask for Nothing {
    type Output = ();
    fn run<B: RestoraBackend>(self, _device: B::Device) -> Result<()> {
        Ok(())
    }
}

/// The measurements of one backend.
struct Bench<'a> {
    choice: BackendChoice,
    settings: &'a Settings,
    report: &'a mut Report,
    out: &'a Path,
}

impl BackendTask for Bench<'_> {
    type Output = ();

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<()> {
        let Bench { choice, settings, report, out } = self;
        let backend = backend_label(choice);
        let probe = Probe::new::<B>(&device);
        let device_name = device_name(choice, &device, &probe);
        let entry = report.backends.iter_mut().rev().find(|b| b.backend == backend).context("backend entry")?;
        entry.backend_name = Some(B::name(&device));
        entry.device = Some(device_name.clone());
        entry.reports_memory = probe.memory.is_some();
        eprintln!("  {} on {device_name}", B::name(&device));

        for &preset in &settings.preset_values {
            let config = RestormerConfig::preset(preset).with_mask_aware(settings.mask_aware);
            let mut reference: Option<(usize, f64)> = None;
            for &size in &settings.sizes {
                let mut cell = forward_cell(&config, preset, &backend, &device_name, size, settings.mask_aware);
                let predicted = reference.map(|(s0, seconds)| {
                    let runs = if settings.warmup > 0 { 2.0 } else { 1.0 };
                    seconds * (size * size) as f64 / (s0 * s0) as f64 * runs
                });
                match (settings.max_seconds, predicted) {
                    (Some(limit), Some(predicted)) if predicted > limit => {
                        cell.status = Status::Skipped;
                        cell.message = Some(format!(
                            "skipped: one warm-up and one run predicted at {predicted:.0} s from the smaller size, over --max-seconds {limit}"
                        ));
                    }
                    _ => {
                        let result = guarded(|| measure_forward::<B>(&device, &probe, &config, size, settings));
                        match result {
                            Ok(timing) => {
                                cell.timing = timing;
                                if let Some(seconds) = cell.timing.median_seconds() {
                                    cell.megapixels_per_second = Some((size * size) as f64 / 1e6 / seconds);
                                    cell.tflops = Some(2.0 * cell.macs as f64 / seconds / 1e12);
                                }
                                if let Some(min) = cell.timing.min_ms {
                                    reference = Some((size, min / 1e3));
                                }
                                cell.message = cell.timing.skipped_note("runs");
                            }
                            Err(error) => {
                                cell.status = Status::Failed;
                                cell.message = Some(error_message(&error));
                            }
                        }
                    }
                }
                eprintln!("  {}", describe_forward(&cell));
                report.forward.push(cell);
                save(report, out)?;
            }

            if settings.train_iters > 0 {
                let (patch, batch) = (settings.train_patch, settings.train_batch);
                let macs = config.macs(patch, patch).total();
                let mut cell = TrainCell {
                    preset: preset.to_string(),
                    backend: backend.clone(),
                    device: device_name.clone(),
                    patch,
                    batch,
                    mask_aware: settings.mask_aware,
                    parameters: config.num_params(),
                    macs_per_sample: macs,
                    status: Status::Ok,
                    message: None,
                    timing: Timing::default(),
                    iterations_per_second: None,
                    samples_per_second: None,
                    tflops: None,
                };
                match guarded(|| measure_training::<B>(&device, &probe, &config, settings)) {
                    Ok(timing) => {
                        cell.timing = timing;
                        if let Some(seconds) = cell.timing.median_seconds() {
                            cell.iterations_per_second = Some(1.0 / seconds);
                            cell.samples_per_second = Some(batch as f64 / seconds);
                            cell.tflops = Some(3.0 * 2.0 * macs as f64 * batch as f64 / seconds / 1e12);
                        }
                        cell.message = cell.timing.skipped_note("iterations");
                    }
                    Err(error) => {
                        cell.status = Status::Failed;
                        cell.message = Some(error_message(&error));
                    }
                }
                eprintln!("  {}", describe_training(&cell));
                report.training.push(cell);
                save(report, out)?;
            }
        }
        Ok(())
    }
}

fn forward_cell(
    config: &RestormerConfig,
    preset: Preset,
    backend: &str,
    device: &str,
    size: usize,
    mask_aware: bool,
) -> ForwardCell {
    let macs = config.macs(size, size);
    ForwardCell {
        preset: preset.to_string(),
        backend: backend.to_string(),
        device: device.to_string(),
        size,
        batch: 1,
        mask_aware,
        parameters: config.num_params(),
        macs: macs.total(),
        macs_convolutions: macs.convolutions,
        macs_attention: macs.attention,
        gmacs: macs.total() as f64 / 1e9,
        status: Status::Ok,
        message: None,
        timing: Timing::default(),
        megapixels_per_second: None,
        tflops: None,
    }
}

fn measure_forward<B: RestoraBackend>(
    device: &B::Device,
    probe: &Probe,
    config: &RestormerConfig,
    size: usize,
    settings: &Settings,
) -> Result<Timing> {
    B::memory_cleanup(device);
    B::seed(device, 0);
    let mut timing = Timing::default();
    let model: Restormer<B> = config.init(device);
    let image = Tensor::<B, 4>::random([1, config.channels, size, size], Distribution::Default, device);
    sync::<B>(device)?;
    probe.sample(&mut timing);
    measure::<B, _>(device, probe, settings, &mut timing, || model.forward(image.clone(), None))?;
    Ok(timing)
}

fn measure_training<B: RestoraBackend>(
    device: &B::Device,
    probe: &Probe,
    config: &RestormerConfig,
    settings: &Settings,
) -> Result<Timing> {
    B::memory_cleanup(device);
    B::seed(device, 0);
    let mut timing = Timing::default();
    let options = OptimizerOptions::default();
    let mut optim = optimizer::<Autodiff<B>>(&options);
    let (patch, batch) = (settings.train_patch, settings.train_batch);
    let shape = [batch, config.channels, patch, patch];
    let input = Tensor::<Autodiff<B>, 4>::random(shape, Distribution::Default, device);
    let target = Tensor::<Autodiff<B>, 4>::random(shape, Distribution::Default, device);
    let mut model = Some(config.init::<Autodiff<B>>(device));
    sync::<B>(device)?;
    probe.sample(&mut timing);
    let step = || {
        let current = model.take().expect("the model survives every step");
        let loss = (current.forward(input.clone(), None) - target.clone()).abs().mean();
        let grads = GradientsParams::from_grads(loss.backward(), &current);
        model = Some(optimizer_step(&mut optim, &options, options.lr, current, grads));
    };
    let settings = Settings { repeats: settings.train_iters, ..settings.clone() };
    measure::<B, _>(device, probe, &settings, &mut timing, step)?;
    Ok(timing)
}

/// Runs `step` for the warm-up runs then the timed ones, within the time budget.
fn measure<B: Backend, T>(
    device: &B::Device,
    probe: &Probe,
    settings: &Settings,
    timing: &mut Timing,
    mut step: impl FnMut() -> T,
) -> Result<()> {
    let started = Instant::now();
    let over_budget =
        |next: f64| settings.max_seconds.is_some_and(|limit| started.elapsed().as_secs_f64() + next > limit);
    let mut last = 0.0;
    for i in 0..settings.warmup {
        if i > 0 && over_budget(last) {
            timing.skipped_warmup_runs = settings.warmup - i;
            break;
        }
        last = timed::<B, T>(device, probe, timing, &mut step)?;
        if i == 0 {
            timing.first_run_ms = Some(last * 1e3);
        }
        timing.warmup_runs += 1;
    }
    for i in 0..settings.repeats {
        let fastest = timing.runs_ms.iter().copied().fold(f64::INFINITY, f64::min) / 1e3;
        if i > 0 && over_budget(fastest) {
            timing.skipped_runs = settings.repeats - i;
            break;
        }
        let seconds = timed::<B, T>(device, probe, timing, &mut step)?;
        timing.runs_ms.push(seconds * 1e3);
    }
    timing.finish();
    Ok(())
}

/// One run between two device synchronisations, in seconds; memory is sampled before the run's
/// output is dropped.
fn timed<B: Backend, T>(
    device: &B::Device,
    probe: &Probe,
    timing: &mut Timing,
    step: &mut impl FnMut() -> T,
) -> Result<f64> {
    sync::<B>(device)?;
    let began = Instant::now();
    let output = step();
    sync::<B>(device)?;
    let seconds = began.elapsed().as_secs_f64();
    probe.sample(timing);
    drop(output);
    Ok(seconds)
}

fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|error| anyhow!("device synchronisation failed: {error}"))
}

/// What the backend says about memory and the device, where it says anything: cubecl backends
/// (wgpu, CUDA) through their compute client, reached from a tensor primitive.
#[derive(Default)]
struct Probe {
    /// Bytes in use and bytes reserved by the memory pool of this thread's stream.
    memory: Option<Box<dyn Fn() -> (u64, u64)>>,
    /// A device description from the runtime.
    device: Option<String>,
}

impl Probe {
    fn new<B: Backend>(device: &B::Device) -> Self {
        let primitive = Tensor::<B, 1>::zeros([1], device).into_primitive().tensor();
        let any: Box<dyn Any> = Box::new(primitive);
        #[cfg(feature = "cuda")]
        let any = match any.downcast::<<burn::backend::Cuda as Backend>::FloatTensorPrimitive>() {
            Ok(tensor) => {
                let client = tensor.client.clone();
                return Probe {
                    memory: Some(Box::new(move || {
                        let usage = client.memory_usage();
                        (usage.bytes_in_use, usage.bytes_reserved)
                    })),
                    device: Some(cuda_name(tensor.device.index)),
                };
            }
            Err(other) => other,
        };
        #[cfg(feature = "wgpu")]
        let any = match any.downcast::<<burn::backend::Wgpu as Backend>::FloatTensorPrimitive>() {
            Ok(tensor) => {
                let client = tensor.client.clone();
                let api = format!("{:?}", client.info());
                return Probe {
                    memory: Some(Box::new(move || {
                        let usage = client.memory_usage();
                        (usage.bytes_in_use, usage.bytes_reserved)
                    })),
                    device: Some(format!("wgpu {api} {:?}", tensor.device)),
                };
            }
            Err(other) => other,
        };
        drop(any);
        Probe::default()
    }

    fn sample(&self, timing: &mut Timing) {
        if let Some(memory) = &self.memory {
            let (in_use, reserved) = memory();
            timing.peak_memory_bytes = Some(timing.peak_memory_bytes.unwrap_or(0).max(reserved));
            timing.peak_in_use_bytes = Some(timing.peak_in_use_bytes.unwrap_or(0).max(in_use));
        }
    }
}

/// The GPU's name from `nvidia-smi` (CUDA ordinal taken as the nvidia-smi index).
#[cfg(feature = "cuda")]
fn cuda_name(index: usize) -> String {
    command_output("nvidia-smi", &["--query-gpu=name", "--format=csv,noheader", "-i", &index.to_string()])
        .map(|name| format!("{name} (CUDA {index})"))
        .unwrap_or_else(|| format!("CUDA device {index}"))
}

fn device_name<D: std::fmt::Debug>(choice: BackendChoice, device: &D, probe: &Probe) -> String {
    match (&probe.device, choice) {
        (Some(name), _) => name.clone(),
        (None, BackendChoice::Cpu) => format!(
            "{} ({} threads)",
            cpu_model().unwrap_or_else(|| "CPU".into()),
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        (None, _) => format!("{device:?}"),
    }
}

fn cpu_model() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    info.lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn command_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).stdin(Stdio::null()).stderr(Stdio::null()).output().ok()?;
    let text = String::from_utf8(output.stdout).ok()?.lines().next()?.trim().to_string();
    (output.status.success() && !text.is_empty()).then_some(text)
}

fn machine() -> Machine {
    let os_release = std::fs::read_to_string("/etc/os-release").ok().and_then(|text| {
        text.lines().find_map(|l| l.strip_prefix("PRETTY_NAME=")).map(|v| v.trim_matches('"').to_string())
    });
    let git_commit = command_output("git", &["rev-parse", "HEAD"]);
    let git_dirty = git_commit.as_ref().and_then(|_| {
        let output = Command::new("git")
            .args(["status", "--porcelain", "--untracked-files=no"])
            .stdin(Stdio::null())
            .stderr(Stdio::null())
            .output()
            .ok()?;
        output.status.success().then_some(!output.stdout.is_empty())
    });
    Machine {
        os: std::env::consts::OS,
        os_release,
        arch: std::env::consts::ARCH,
        cpu_count: std::thread::available_parallelism().map_or(1, |n| n.get()),
        cpu_model: cpu_model(),
        git_commit,
        git_dirty,
        program_version: env!("CARGO_PKG_VERSION"),
        build_profile: if cfg!(debug_assertions) { "debug" } else { "release" },
    }
}

/// Runs `f`, turning a panic (cubecl reports out-of-memory and device loss by panicking) into an error.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(result) => result,
        Err(payload) => {
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".into());
            Err(anyhow!("panicked: {message}"))
        }
    }
}

fn error_message(error: &anyhow::Error) -> String {
    format!("{error:#}")
}

fn save(report: &Report, out: &Path) -> Result<()> {
    let json = serde_json::to_string_pretty(report)?;
    write_atomic(&out.join("bench.json"), format!("{json}\n").as_bytes())?;
    write_atomic(&out.join("bench.md"), markdown(report).as_bytes())
}

fn describe_forward(cell: &ForwardCell) -> String {
    let head = format!("{} {}²", cell.preset, cell.size);
    match cell.status {
        Status::Ok => format!(
            "{head}: first run {}, median {} ms, min {} ms ({} runs), {} MP/s, {} TFLOP/s, peak memory {}{}",
            opt_ms(cell.timing.first_run_ms),
            num(cell.timing.median_ms),
            num(cell.timing.min_ms),
            cell.timing.runs_ms.len(),
            num(cell.megapixels_per_second),
            num(cell.tflops),
            bytes(cell.timing.peak_memory_bytes),
            cell.message.as_ref().map_or(String::new(), |m| format!(" ({m})"))
        ),
        _ => format!("{head}: {}", cell.message.as_deref().unwrap_or("")),
    }
}

fn describe_training(cell: &TrainCell) -> String {
    let head = format!("{} training, patch {}, batch {}", cell.preset, cell.patch, cell.batch);
    match cell.status {
        Status::Ok => format!(
            "{head}: first iteration {}, median {} ms ({} iterations), {} it/s, {} samples/s, {} TFLOP/s, peak memory {}{}",
            opt_ms(cell.timing.first_run_ms),
            num(cell.timing.median_ms),
            cell.timing.runs_ms.len(),
            num(cell.iterations_per_second),
            num(cell.samples_per_second),
            num(cell.tflops),
            bytes(cell.timing.peak_memory_bytes),
            cell.message.as_ref().map_or(String::new(), |m| format!(" ({m})"))
        ),
        _ => format!("{head}: {}", cell.message.as_deref().unwrap_or("")),
    }
}

/// A number with about four significant digits; "—" when absent.
fn num(value: Option<f64>) -> String {
    match value {
        None => "—".into(),
        Some(v) if v.abs() >= 1000.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 100.0 => format!("{v:.1}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.2}"),
        Some(v) if v.abs() >= 0.01 || v == 0.0 => format!("{v:.3}"),
        Some(v) => format!("{v:.2e}"),
    }
}

fn opt_ms(value: Option<f64>) -> String {
    value.map_or_else(|| "—".into(), |v| format!("{} ms", num(Some(v))))
}

fn bytes(value: Option<u64>) -> String {
    match value {
        None => "n/a".into(),
        Some(b) if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / (1u64 << 30) as f64),
        Some(b) => format!("{:.1} MiB", b as f64 / (1u64 << 20) as f64),
    }
}

fn params(n: usize) -> String {
    if n >= 1_000_000 {
        format!("{:.2} M", n as f64 / 1e6)
    } else {
        format!("{:.1} k", n as f64 / 1e3)
    }
}

/// A note for a table cell: one line, no pipes, bounded length.
fn note(cell_status: Status, message: Option<&str>) -> String {
    let text = message.unwrap_or("");
    let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("").replace('|', "/");
    let short: String = first.chars().take(160).collect();
    let short = if first.chars().count() > 160 { format!("{short}…") } else { short };
    match cell_status {
        Status::Ok => short,
        Status::Failed => format!("**failed**: {short}"),
        Status::Skipped => short,
    }
}

fn markdown(report: &Report) -> String {
    let m = &report.machine;
    let s = &report.settings;
    let mut md = String::from("# Restora benchmark\n\n");
    if !report.complete {
        md.push_str("**Incomplete**: the bench was still running or was interrupted.\n\n");
    }
    md.push_str(&format!(
        "Machine: {} {} ({}), {} CPUs{}; {} build{}.\n\n",
        m.os_release.as_deref().unwrap_or(m.os),
        m.arch,
        m.os,
        m.cpu_count,
        m.cpu_model.as_ref().map_or(String::new(), |c| format!(" ({c})")),
        m.build_profile,
        m.git_commit.as_ref().map_or(String::new(), |c| format!(
            ", commit {}{}",
            &c[..c.len().min(12)],
            if m.git_dirty == Some(true) { " (modified)" } else { "" }
        )),
    ));
    md.push_str(&format!(
        "Settings: presets {}, {} (mask-aware: {}), warm-up {}, repeats {}{}.\n\n",
        s.presets.join(", "),
        if s.backends.len() == 1 {
            format!("backend {}", s.backends[0])
        } else {
            format!("backends {}", s.backends.join(", "))
        },
        s.mask_aware,
        s.warmup,
        s.repeats,
        s.max_seconds.map_or(String::new(), |v| format!(", --max-seconds {v}")),
    ));
    for backend in &report.backends {
        match &backend.error {
            Some(error) => {
                md.push_str(&format!("- {}: **unavailable**: {}\n", backend.backend, note(Status::Ok, Some(error))))
            }
            None => md.push_str(&format!(
                "- {}: {} on {}\n",
                backend.backend,
                backend.backend_name.as_deref().unwrap_or("?"),
                backend.device.as_deref().unwrap_or("?")
            )),
        }
    }
    md.push_str("\n## Forward pass (batch 1)\n\n");
    md.push_str(
        "| preset | backend | device | size | params | GMACs | first run ms | median ms | min ms | MP/s | TFLOP/s | peak memory | note |\n",
    );
    md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
    let preset_rank = |p: &str| s.presets.iter().position(|x| x == p).unwrap_or(usize::MAX);
    let backend_rank = |b: &str| s.backends.iter().position(|x| x == b).unwrap_or(usize::MAX);
    let mut forward: Vec<&ForwardCell> = report.forward.iter().collect();
    forward.sort_by_key(|c| (preset_rank(&c.preset), c.size, backend_rank(&c.backend)));
    for c in forward {
        md.push_str(&format!(
            "| {} | {} | {} | {}² | {} | {:.2} | {} | {} | {} | {} | {} | {} | {} |\n",
            c.preset,
            c.backend,
            c.device,
            c.size,
            params(c.parameters),
            c.gmacs,
            num(c.timing.first_run_ms),
            num(c.timing.median_ms),
            num(c.timing.min_ms),
            num(c.megapixels_per_second),
            num(c.tflops),
            if c.status == Status::Ok { bytes(c.timing.peak_memory_bytes) } else { "—".into() },
            note(c.status, c.message.as_deref()),
        ));
    }
    if s.train_iters > 0 {
        md.push_str(&format!("\n## Training step (patch {}, batch {})\n\n", s.train_patch, s.train_batch));
        md.push_str(
            "| preset | backend | device | patch | batch | first iteration ms | median ms | it/s | samples/s | TFLOP/s | peak memory | note |\n",
        );
        md.push_str("|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n");
        let mut training: Vec<&TrainCell> = report.training.iter().collect();
        training.sort_by_key(|c| (preset_rank(&c.preset), backend_rank(&c.backend)));
        for c in training {
            md.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.preset,
                c.backend,
                c.device,
                c.patch,
                c.batch,
                num(c.timing.first_run_ms),
                num(c.timing.median_ms),
                num(c.iterations_per_second),
                num(c.samples_per_second),
                num(c.tflops),
                if c.status == Status::Ok { bytes(c.timing.peak_memory_bytes) } else { "—".into() },
                note(c.status, c.message.as_deref()),
            ));
        }
    }
    md.push_str("\nConventions:\n\n");
    for line in &report.conventions {
        md.push_str(&format!("- {line}\n"));
    }
    md
}
