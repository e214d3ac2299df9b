//! One experiment, one file: the model, the data, the optimiser, the task schedule and the run's
//! bookkeeping in a TOML file (BasicSR's `options/train/*.yml`), with the CLI flags laid over it.
//! The resolved file is saved as `config.toml` beside the checkpoints, so a run can be resumed or
//! repeated from its folder alone.
//!
//! ```toml
//! [model]
//! preset = "small"
//! mask_aware = true
//! # init = "official/deblurring.safetensors"  # start from these weights (same shape) instead of the seed's
//!
//! [data]
//! train = "../shared/corpus/train"   # clean images, degraded on the fly
//! val = "../shared/corpus/val"
//! patch = 128
//! batch = 8
//! # train_images = 20                 # a subset of the clean images, chosen from the seed
//!
//! # Real degradations: folders of degraded / clean pairs (SIDD, GoPro, REDS or input/ + target/).
//! [[data.paired]]
//! dir = "/data/SIDD_Medium_Srgb/Data"  # SIDD: denoise
//! share = 0.5                          # of the denoise samples; the rest are synthetic
//! [[data.paired]]
//! dir = "/data/my_pairs"               # input/ and target/: say the task
//! task = "dealias"
//!
//! [optimizer]
//! lr = 3e-4
//! lr_min = 1e-6
//! warmup = 0
//! hole_weight = 1.0                  # weight of the missing pixels in the inpainting L1
//!
//! [schedule]
//! iters = 50000
//! mode = "alternate"                 # or "mixed": every sample draws its own task
//! switch_every = 250
//! tasks = ["denoise", "deblur", "dealias", "inpaint"]
//!
//! # Progressive patches (Restormer): patch 64, batch 16 until iteration 10000, then 96 × 12
//! # until 20000, then data.patch × data.batch.
//! [[schedule.progressive]]
//! until = 10000
//! patch = 64
//! batch = 16
//! [[schedule.progressive]]
//! until = 20000
//! patch = 96
//! batch = 12
//!
//! [run]
//! seed = 0
//! val_every = 1000
//! checkpoint_every = 1000
//! val_block_ends = true              # alternate: each task also validated after its own blocks
//! ```
//!
//! Every field is optional; missing ones take the defaults documented on each struct. Relative
//! paths in a file are relative to the file's folder.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::{bail, Context, Result};
use restora_model::degradations::Task;
use restora_model::{Preset, RestormerConfig};
use serde::{Deserialize, Serialize};

use super::paired;

/// A training experiment.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExperimentConfig {
    /// The network's shape.
    pub model: ModelOptions,
    /// Where the images come from and how patches are cut.
    pub data: DataOptions,
    /// AdamW and its learning-rate schedule.
    pub optimizer: OptimizerOptions,
    /// Length of the run and the task alternation.
    pub schedule: ScheduleOptions,
    /// Seed, validation, checkpoints and logging.
    pub run: RunOptions,
}

/// The network's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModelOptions {
    /// `base`, `small` or `tiny` (default `small`).
    pub preset: Preset,
    /// Take the inpainting mask as a 4th input channel (default true: the foundation model).
    pub mask_aware: bool,
    /// Weights (`.safetensors`) to start from instead of the seed's random initialisation, for
    /// fine-tuning (default none). Their shape must be the configured model's; ignored when
    /// resuming (the checkpoint's weights are used).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub init: Option<PathBuf>,
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self { preset: Preset::Small, mask_aware: true, init: None }
    }
}

impl ModelOptions {
    /// The network configuration these options describe.
    pub fn restormer(&self) -> RestormerConfig {
        RestormerConfig::preset(self.preset).with_mask_aware(self.mask_aware)
    }
}

/// Where the images come from and how patches are cut.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataOptions {
    /// Folder of clean training images, searched recursively, degraded on the fly (here or as
    /// `--data`; optional when `paired` sets cover every scheduled task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    /// Train on only this many of the clean images: a subset drawn from the seed, in sorted order
    /// (default all).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train_images: Option<usize>,
    /// Folder of clean validation images; no validation without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val: Option<PathBuf>,
    /// Side of the square training patches in pixels, a multiple of 8 (default 128).
    pub patch: usize,
    /// Patches per iteration, all of the same task in the `alternate` mode (default 8).
    pub batch: usize,
    /// Threads decoding, cropping and degrading (default 2).
    pub workers: usize,
    /// Batches prepared ahead of the model (default 4).
    pub prefetch: usize,
    /// Memory for decoded training images kept between uses, in MiB (default 2048; 0 decodes
    /// every time). Results do not depend on it.
    pub cache_mb: usize,
    /// Validation images used (spread over the sorted list; default 4).
    pub val_images: usize,
    /// Side of the centre crop of each validation image, a multiple of 8 (default 256; smaller
    /// images are cropped to their largest multiple of 8).
    pub val_crop: usize,
    /// Folders of real degraded / clean pairs (`[[data.paired]]`; default none).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub paired: Vec<PairedSet>,
}

/// A folder of real degraded / clean pairs, its layout recognised from its content (see
/// [`super::paired`]): SIDD (denoise), GoPro or REDS (deblur), or `input/` + `target/` (any task
/// but inpaint, given by `task`). The same random crop, flip and rotation cut both images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PairedSet {
    /// The folder.
    pub dir: PathBuf,
    /// The task its pairs are for: required for `input/` + `target/`; the layout's otherwise
    /// (giving another is refused).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task: Option<Task>,
    /// Fraction of the task's samples drawn from this set, the rest being clean images degraded on
    /// the fly (default 0.5; the shares of one task add up to 1 at most). Without clean images
    /// (no `data.train`) the task's sets share its samples in these proportions (default 1 each).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub share: Option<f64>,
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            train: None,
            train_images: None,
            val: None,
            patch: 128,
            batch: 8,
            workers: 2,
            prefetch: 4,
            cache_mb: 2048,
            val_images: 4,
            val_crop: 256,
            paired: Vec::new(),
        }
    }
}

/// AdamW (decoupled weight decay) with a cosine learning rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerOptions {
    /// Peak learning rate (default 3e-4, Restormer's).
    pub lr: f64,
    /// Learning rate at the last iteration of the cosine decay (default 1e-6).
    pub lr_min: f64,
    /// Iterations of linear warm-up from `lr / warmup` to `lr` (default 0).
    pub warmup: usize,
    /// Decoupled weight decay (default 1e-4).
    pub weight_decay: f32,
    /// First-moment decay (default 0.9).
    pub beta1: f32,
    /// Second-moment decay (default 0.999).
    pub beta2: f32,
    /// Denominator term (default 1e-8, PyTorch's; burn's own default is 1e-5).
    pub epsilon: f32,
    /// Clip each parameter's gradient to this L2 norm before the step; 0 disables (default 0.01,
    /// Restormer's value). Burn clips every parameter tensor separately, where Restormer's
    /// `clip_grad_norm_` clips the norm of all gradients together.
    pub grad_clip_norm: f32,
    /// Weight of the missing pixels in the L1 loss of samples with a mask (inpainting): the loss
    /// is `sum(w·|out − target|) / sum(w)` with `w = 1 + (hole_weight − 1)·mask` (default 1: plain
    /// L1; batches without a mask always use plain L1).
    pub hole_weight: f32,
}

impl Default for OptimizerOptions {
    fn default() -> Self {
        Self {
            lr: 3e-4,
            lr_min: 1e-6,
            warmup: 0,
            weight_decay: 1e-4,
            beta1: 0.9,
            beta2: 0.999,
            epsilon: 1e-8,
            grad_clip_norm: 0.01,
            hole_weight: 1.0,
        }
    }
}

/// Length of the run, the tasks and the patch sizes over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleOptions {
    /// Total iterations; the cosine decay spans them all (default 50000).
    pub iters: usize,
    /// How tasks share the batches (default `alternate`).
    pub mode: ScheduleMode,
    /// Iterations spent on one task before moving to the next, in the `alternate` mode (default 250).
    pub switch_every: usize,
    /// The tasks, in the order they take turns (default denoise, deblur, dealias, inpaint); in the
    /// `mixed` mode, those drawn from.
    pub tasks: Vec<Task>,
    /// Progressive patches as in Restormer (`[[schedule.progressive]]`, default none): each stage
    /// sets the patch and batch of the iterations up to its `until`; after the last stage,
    /// `data.patch` and `data.batch`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub progressive: Vec<Stage>,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self {
            iters: 50_000,
            mode: ScheduleMode::Alternate,
            switch_every: 250,
            tasks: Task::ALL.to_vec(),
            progressive: Vec::new(),
        }
    }
}

/// How tasks share the batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ScheduleMode {
    /// The report's schedule: every batch is one task, the tasks taking turns every
    /// `switch_every` iterations.
    #[default]
    Alternate,
    /// Every sample draws its own task with the weights of the report's foundation mix
    /// ([`restora_model::degradations::Composition`]: denoise 1200, deblur 400, dealias 900,
    /// inpaint 500) restricted to `schedule.tasks`; non-inpainting samples get an empty mask.
    Mixed,
}

/// One stage of progressive patches: iterations up to `until` (1-based, inclusive) train on
/// `batch` patches of `patch` pixels. Written `PATCHxBATCH@UNTIL` on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Stage {
    /// Last iteration of the stage; stages are in increasing order.
    pub until: usize,
    /// Patch side, a multiple of 8.
    pub patch: usize,
    /// Patches per iteration.
    pub batch: usize,
}

impl FromStr for Stage {
    type Err = String;

    /// Parses `PATCHxBATCH@UNTIL`, e.g. `128x8@1000`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || format!("stage {s:?} is not PATCHxBATCH@UNTIL (e.g. 128x8@1000)");
        let (shape, until) = s.trim().split_once('@').ok_or_else(bad)?;
        let (patch, batch) = shape.split_once(['x', 'X', '×']).ok_or_else(bad)?;
        let number = |t: &str| t.trim().parse::<usize>().map_err(|_| bad());
        Ok(Stage { until: number(until)?, patch: number(patch)?, batch: number(batch)? })
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}@{}", self.patch, self.batch, self.until)
    }
}

/// Seed, validation, checkpoints and logging.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RunOptions {
    /// Seeds the initial weights and every patch, flip and degradation (default 0).
    pub seed: u64,
    /// Validate every this many iterations, and at the end (default 1000).
    pub val_every: usize,
    /// Save a resumable checkpoint every this many iterations, and at the end (default 1000).
    pub checkpoint_every: usize,
    /// Write a training row to `log.jsonl` every this many iterations (default 1).
    pub log_every: usize,
    /// Alternating schedule: also validate each task at the end of each of its own blocks, and
    /// keep the best such weights per task as `best-<task>.safetensors` (default false). The
    /// tasks' blocks forget one another, so a task validated after other tasks' blocks scores
    /// less than right after its own block.
    pub val_block_ends: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { seed: 0, val_every: 1000, checkpoint_every: 1000, log_every: 1, val_block_ends: false }
    }
}

impl ExperimentConfig {
    /// Parses an experiment file's text; unknown keys are refused (a typo must not be ignored).
    /// Errors are one line that names the place: "line L, column C: what is wrong".
    pub fn from_toml(text: &str) -> Result<Self> {
        toml::from_str(text).map_err(|e| {
            let place = e
                .span()
                .and_then(|span| text.get(..span.start))
                .map(|before| {
                    let line = before.matches('\n').count() + 1;
                    let column = before.chars().rev().take_while(|&c| c != '\n').count() + 1;
                    format!("line {line}, column {column}: ")
                })
                .unwrap_or_default();
            anyhow::anyhow!("{place}{}", e.message().split_whitespace().collect::<Vec<_>>().join(" "))
        })
    }

    /// Reads an experiment file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        Self::from_toml(&text).with_context(|| format!("{} is not a valid experiment file", path.display()))
    }

    /// The file's text.
    pub fn to_toml(&self) -> Result<String> {
        Ok(toml::to_string(self)?)
    }

    /// Refuses values the run cannot use, naming the option. Reads the paired folders' layouts
    /// (to know their tasks) but no image.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        let o = &self.optimizer;
        let s = &self.schedule;
        let r = &self.run;
        if d.train.is_none() && d.paired.is_empty() {
            bail!("no training images: pass --data DIR (or set data.train in the experiment file), or --paired DIR");
        }
        if d.patch < 8 || d.patch % 8 != 0 {
            bail!("patch {} must be a positive multiple of 8 (the network downsamples three times)", d.patch);
        }
        if d.val_crop < 8 || d.val_crop % 8 != 0 {
            bail!("val_crop {} must be a positive multiple of 8", d.val_crop);
        }
        for (name, value) in [
            ("batch", d.batch),
            ("workers", d.workers),
            ("prefetch", d.prefetch),
            ("val_images", d.val_images),
            ("train_images", d.train_images.unwrap_or(1)),
            ("iters", s.iters),
            ("switch_every", s.switch_every),
            ("val_every", r.val_every),
            ("checkpoint_every", r.checkpoint_every),
            ("log_every", r.log_every),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        if s.tasks.is_empty() {
            bail!("schedule.tasks is empty: name at least one of denoise, deblur, dealias, inpaint");
        }
        let mut previous = 0;
        for stage in &s.progressive {
            if stage.patch < 8 || stage.patch % 8 != 0 {
                bail!("progressive stage {stage}: patch {} must be a positive multiple of 8", stage.patch);
            }
            if stage.batch == 0 {
                bail!("progressive stage {stage}: batch must be at least 1");
            }
            if stage.until <= previous {
                bail!(
                    "progressive stage {stage}: `until` {} must be above the previous stage's ({previous}); \
                     stages go in increasing order",
                    stage.until
                );
            }
            previous = stage.until;
        }
        if !(o.lr.is_finite() && o.lr > 0.0) {
            bail!("lr {} must be positive", o.lr);
        }
        if !(o.lr_min.is_finite() && o.lr_min >= 0.0 && o.lr_min <= o.lr) {
            bail!("lr_min {} must be between 0 and lr ({})", o.lr_min, o.lr);
        }
        if o.warmup >= s.iters {
            bail!("warmup {} must be shorter than iters {}", o.warmup, s.iters);
        }
        for (name, beta) in [("beta1", o.beta1), ("beta2", o.beta2)] {
            if !(0.0..1.0).contains(&beta) {
                bail!("{name} {beta} must be in [0, 1)");
            }
        }
        for (name, value) in
            [("weight_decay", o.weight_decay), ("epsilon", o.epsilon), ("grad_clip_norm", o.grad_clip_norm)]
        {
            if !(value.is_finite() && value >= 0.0) {
                bail!("{name} {value} must be a non-negative number");
            }
        }
        if !(o.hole_weight.is_finite() && o.hole_weight > 0.0) {
            bail!("hole_weight {} must be a positive number (1 = plain L1)", o.hole_weight);
        }
        self.model.restormer().validate().map_err(|e| anyhow::anyhow!("model: {e}"))?;
        self.paired_tasks()?;
        Ok(())
    }

    /// The task of each `data.paired` set (read from its folder's layout), after checking the
    /// shares and that every scheduled task has data.
    pub fn paired_tasks(&self) -> Result<Vec<Task>> {
        let d = &self.data;
        let mut tasks = Vec::with_capacity(d.paired.len());
        for set in &d.paired {
            if let Some(share) = set.share {
                if !(share.is_finite() && share > 0.0 && share <= 1.0) {
                    bail!("paired set {}: share {share} must be in (0, 1]", set.dir.display());
                }
            }
            tasks.push(paired::task_of(set)?);
        }
        if d.train.is_some() {
            for task in Task::ALL {
                let total: f64 = d
                    .paired
                    .iter()
                    .zip(&tasks)
                    .filter(|(_, t)| **t == task)
                    .map(|(set, _)| set.share.unwrap_or(0.5))
                    .sum();
                if total > 1.0 + 1e-9 {
                    bail!(
                        "the paired sets for {task} take shares adding up to {total}: at most 1 (the rest of its \
                         samples are clean images degraded on the fly)"
                    );
                }
            }
        } else {
            let mut missing: Vec<&str> = Vec::new();
            for task in &self.schedule.tasks {
                if !tasks.contains(task) && !missing.contains(&task.name()) {
                    missing.push(task.name());
                }
            }
            if !missing.is_empty() {
                bail!(
                    "no training data for {}: the paired sets cover only {}; pass --data DIR (clean images, degraded \
                     on the fly), a --paired DIR:TASK set for each (not inpaint: it needs clean images), or leave \
                     the task out of --tasks",
                    missing.join(", "),
                    if tasks.is_empty() {
                        "no task".to_string()
                    } else {
                        let mut covered = tasks.clone();
                        covered.sort();
                        covered.dedup();
                        covered.iter().map(|t| t.name()).collect::<Vec<_>>().join(", ")
                    }
                );
            }
        }
        Ok(tasks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Keys of every section with values of every kind, good and bad.
    fn toml_line() -> impl Strategy<Value = String> {
        let key = prop::sample::select(vec![
            "preset",
            "mask_aware",
            "init",
            "train",
            "val",
            "patch",
            "batch",
            "workers",
            "prefetch",
            "cache_mb",
            "val_images",
            "val_crop",
            "train_images",
            "lr",
            "lr_min",
            "warmup",
            "weight_decay",
            "beta1",
            "beta2",
            "epsilon",
            "grad_clip_norm",
            "hole_weight",
            "iters",
            "mode",
            "switch_every",
            "tasks",
            "progressive",
            "seed",
            "val_every",
            "checkpoint_every",
            "log_every",
            "val_block_ends",
            "dir",
            "share",
            "task",
            "typo",
        ]);
        let value = prop_oneof![
            any::<i64>().prop_map(|v| v.to_string()),
            any::<f64>().prop_map(|v| format!("{v:?}")),
            prop::sample::select(vec![
                "nan",
                "inf",
                "-inf",
                "true",
                "false",
                "0",
                "-1",
                "1e400",
                "18446744073709551616"
            ])
            .prop_map(str::to_string),
            "[a-z/._ ]{0,12}".prop_map(|s| format!("{s:?}")),
            prop::sample::select(vec![
                "\"tiny\"",
                "\"base\"",
                "\"huge\"",
                "[\"denoise\", \"inpaint\"]",
                "[]",
                "[\"sharpen\"]",
                "\"alternate\"",
                "\"mixed\"",
                "[{patch = 64, batch = 2, until = 10}]",
                "{}",
                "\"\"",
            ])
            .prop_map(str::to_string),
        ];
        let section = prop::sample::select(vec![
            "[model]",
            "[data]",
            "[optimizer]",
            "[schedule]",
            "[run]",
            "[[data.paired]]",
            "[bogus]",
        ]);
        prop_oneof![
            (key, value).prop_map(|(k, v)| format!("{k} = {v}")),
            section.prop_map(str::to_string),
            "[ -~]{0,20}",
        ]
    }

    fn cases() -> u32 {
        std::env::var("RESTORA_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    }

    /// Parses and validates; whatever the text, no panic and any error is one line.
    fn check(text: &str) -> std::result::Result<(), TestCaseError> {
        let outcome = ExperimentConfig::from_toml(text).and_then(|config| config.validate().map(|()| config));
        if let Err(e) = outcome {
            let message = format!("{e:#}");
            prop_assert!(!message.is_empty() && !message.contains('\n'), "{text:?} gave {message:?}");
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        #[test]
        fn generated_experiment_files_parse_or_fail_on_one_line(lines in prop::collection::vec(toml_line(), 0..12)) {
            check(&lines.join("\n"))?;
        }

        #[test]
        fn damaged_experiment_files_parse_or_fail_on_one_line(
            cut in 0usize..2000,
            flips in prop::collection::vec((0usize..2000, any::<u8>()), 0..4),
        ) {
            let mut config = ExperimentConfig::default();
            config.data.train = Some("data/train".into());
            let mut bytes = config.to_toml().unwrap().into_bytes();
            for (at, byte) in flips {
                if !bytes.is_empty() {
                    let at = at % bytes.len();
                    bytes[at] = byte;
                }
            }
            bytes.truncate(cut.min(bytes.len()));
            check(&String::from_utf8_lossy(&bytes))?;
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults_and_the_text_round_trips() {
        let config = ExperimentConfig::from_toml("").unwrap();
        assert_eq!(config, ExperimentConfig::default());
        assert_eq!(config.model.preset, Preset::Small);
        assert!(config.model.mask_aware);
        assert_eq!(config.schedule.iters, 50_000);
        assert_eq!(config.schedule.switch_every, 250);
        assert_eq!(config.data.patch, 128);
        assert_eq!(config.optimizer.lr, 3e-4);

        let mut custom = config.clone();
        custom.model.preset = Preset::Tiny;
        custom.data.train = Some("data/train".into());
        custom.schedule.tasks = vec![Task::Inpaint, Task::Denoise];
        custom.optimizer.warmup = 100;
        let text = custom.to_toml().unwrap();
        assert!(text.contains("preset = \"tiny\""), "{text}");
        assert_eq!(ExperimentConfig::from_toml(&text).unwrap(), custom);
    }

    #[test]
    fn partial_sections_keep_the_other_defaults_and_typos_are_refused() {
        let config = ExperimentConfig::from_toml("[model]\npreset = \"base\"\n[schedule]\niters = 10\n").unwrap();
        assert_eq!(config.model.preset, Preset::Base);
        assert!(config.model.mask_aware);
        assert_eq!(config.schedule.iters, 10);
        assert_eq!(config.schedule.switch_every, 250);

        let error = ExperimentConfig::from_toml("[schedule]\niterations = 10\n").unwrap_err();
        assert!(error.to_string().contains("iterations"), "{error}");
        assert!(ExperimentConfig::from_toml("[model]\npreset = \"huge\"\n").is_err());
    }

    #[test]
    fn validation_names_the_bad_option() {
        let mut config = ExperimentConfig::default();
        assert!(config.validate().unwrap_err().to_string().contains("--data"));
        config.data.train = Some("x".into());
        config.validate().unwrap();
        let bad = |edit: &dyn Fn(&mut ExperimentConfig), word: &str| {
            let mut c = config.clone();
            edit(&mut c);
            let message = c.validate().unwrap_err().to_string();
            assert!(message.contains(word), "{message}");
        };
        bad(&|c| c.data.patch = 36, "patch");
        bad(&|c| c.data.batch = 0, "batch");
        bad(&|c| c.schedule.switch_every = 0, "switch_every");
        bad(&|c| c.schedule.tasks.clear(), "tasks");
        bad(&|c| c.optimizer.lr = -1.0, "lr");
        bad(&|c| c.optimizer.lr_min = 1.0, "lr_min");
        bad(&|c| c.optimizer.warmup = 50_000, "warmup");
        bad(&|c| c.optimizer.beta2 = 1.0, "beta2");
        bad(&|c| c.optimizer.hole_weight = 0.0, "hole_weight");
        bad(&|c| c.data.train_images = Some(0), "train_images");
        let stage = |until, patch, batch| Stage { until, patch, batch };
        bad(&|c| c.schedule.progressive = vec![stage(10, 12, 2)], "patch 12");
        bad(&|c| c.schedule.progressive = vec![stage(10, 16, 0)], "batch");
        bad(&|c| c.schedule.progressive = vec![stage(10, 16, 2), stage(10, 32, 1)], "increasing");
        bad(&|c| c.data.paired = vec![PairedSet { dir: "/no/such/folder".into(), task: None, share: None }], "folder");
    }

    #[test]
    fn the_documented_example_parses() {
        let source = include_str!("config.rs");
        let start = source.find("//! ```toml\n").unwrap() + "//! ```toml\n".len();
        let end = start + source[start..].find("//! ```\n").unwrap();
        let text: String = source[start..end].lines().map(|l| format!("{}\n", l.trim_start_matches("//!"))).collect();
        let config = ExperimentConfig::from_toml(&text).unwrap();
        assert_eq!(config.data.paired.len(), 2);
        assert_eq!(config.data.paired[1].task, Some(Task::Dealias));
        assert_eq!(config.schedule.mode, ScheduleMode::Alternate);
        assert_eq!(config.schedule.progressive[1], Stage { until: 20000, patch: 96, batch: 12 });
        assert_eq!(config.optimizer.hole_weight, 1.0);
        // Every option round-trips through the saved text, tables of tables included.
        let mut all = config.clone();
        all.model.init = Some("w.safetensors".into());
        all.data.train_images = Some(20);
        all.schedule.mode = ScheduleMode::Mixed;
        let text = all.to_toml().unwrap();
        assert!(text.contains("mode = \"mixed\"") && text.contains("[[data.paired]]"), "{text}");
        assert_eq!(ExperimentConfig::from_toml(&text).unwrap(), all);
    }

    #[test]
    fn stages_parse_from_the_command_line_form() {
        assert_eq!("128x8@1000".parse::<Stage>().unwrap(), Stage { until: 1000, patch: 128, batch: 8 });
        assert_eq!(" 64×16@5 ".parse::<Stage>().unwrap(), Stage { until: 5, patch: 64, batch: 16 });
        assert_eq!(Stage { until: 5, patch: 64, batch: 16 }.to_string(), "64x16@5");
        for bad in ["128x8", "128@1000", "axb@c", "128x8@"] {
            assert!(bad.parse::<Stage>().unwrap_err().contains("PATCHxBATCH@UNTIL"), "{bad}");
        }
    }

    #[test]
    fn paired_sets_must_cover_the_tasks_without_clean_images() {
        let dir = tempfile::tempdir().unwrap();
        let sidd = dir.path().join("sidd");
        paired::tests::png(&sidd.join("s/0001_NOISY_SRGB_010.PNG"), 16, 16, 0.2);
        paired::tests::png(&sidd.join("s/0001_GT_SRGB_010.PNG"), 16, 16, 0.4);
        let mut config = ExperimentConfig::default();
        config.data.paired = vec![PairedSet { dir: sidd.clone(), task: None, share: None }];
        let message = config.validate().unwrap_err().to_string();
        assert!(message.contains("deblur, dealias, inpaint") && message.contains("only denoise"), "{message}");
        config.schedule.tasks = vec![Task::Denoise];
        config.validate().unwrap();
        assert_eq!(config.paired_tasks().unwrap(), [Task::Denoise]);
        // With clean images, a task's shares add up to 1 at most.
        config.data.train = Some("x".into());
        config.schedule.tasks = Task::ALL.to_vec();
        config.validate().unwrap();
        config.data.paired.push(PairedSet { dir: sidd.clone(), task: Some(Task::Denoise), share: Some(0.6) });
        assert!(config.validate().unwrap_err().to_string().contains("shares"));
        config.data.paired[1].share = Some(1.5);
        assert!(config.validate().unwrap_err().to_string().contains("share 1.5"));
    }
}
