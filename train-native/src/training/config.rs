//! One experiment, one file: the model, the data, the optimiser, the task schedule and the run's
//! bookkeeping in a TOML file (BasicSR's `options/train/*.yml`), with the CLI flags laid over it.
//! The resolved file is saved as `config.toml` beside the checkpoints, so a run can be resumed or
//! repeated from its folder alone.
//!
//! ```toml
//! [model]
//! preset = "small"
//! mask_aware = true
//!
//! [data]
//! train = "../shared/corpus/train"
//! val = "../shared/corpus/val"
//! patch = 128
//! batch = 8
//!
//! [optimizer]
//! lr = 3e-4
//! lr_min = 1e-6
//! warmup = 0
//!
//! [schedule]
//! iters = 50000
//! switch_every = 250
//! tasks = ["denoise", "deblur", "dealias", "inpaint"]
//!
//! [run]
//! seed = 0
//! val_every = 1000
//! checkpoint_every = 1000
//! ```
//!
//! Every field is optional; missing ones take the defaults documented on each struct.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use restora_model::degradations::Task;
use restora_model::{Preset, RestormerConfig};
use serde::{Deserialize, Serialize};

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
}

impl Default for ModelOptions {
    fn default() -> Self {
        Self { preset: Preset::Small, mask_aware: true }
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
    /// Folder of clean training images, searched recursively (required, here or as `--data`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub train: Option<PathBuf>,
    /// Folder of clean validation images; no validation without it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val: Option<PathBuf>,
    /// Side of the square training patches in pixels, a multiple of 8 (default 128).
    pub patch: usize,
    /// Patches per iteration, all of the same task (default 8).
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
}

impl Default for DataOptions {
    fn default() -> Self {
        Self {
            train: None,
            val: None,
            patch: 128,
            batch: 8,
            workers: 2,
            prefetch: 4,
            cache_mb: 2048,
            val_images: 4,
            val_crop: 256,
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
        }
    }
}

/// Length of the run and the task alternation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScheduleOptions {
    /// Total iterations; the cosine decay spans them all (default 50000).
    pub iters: usize,
    /// Iterations spent on one task before moving to the next (default 250).
    pub switch_every: usize,
    /// The tasks, in the order they take turns (default denoise, deblur, dealias, inpaint).
    pub tasks: Vec<Task>,
}

impl Default for ScheduleOptions {
    fn default() -> Self {
        Self { iters: 50_000, switch_every: 250, tasks: Task::ALL.to_vec() }
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
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { seed: 0, val_every: 1000, checkpoint_every: 1000, log_every: 1 }
    }
}

impl ExperimentConfig {
    /// Parses an experiment file's text; unknown keys are refused (a typo must not be ignored).
    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
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

    /// Refuses values the run cannot use, naming the option.
    pub fn validate(&self) -> Result<()> {
        let d = &self.data;
        let o = &self.optimizer;
        let s = &self.schedule;
        let r = &self.run;
        if d.train.is_none() {
            bail!("no training images: pass --data DIR (or set data.train in the experiment file)");
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
        self.model.restormer().validate().map_err(|e| anyhow::anyhow!("model: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    }
}
