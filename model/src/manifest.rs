//! `weights/models.json`: which trained models the site ships, and which one restores a task.
//!
//! ```json
//! {"models": [{"id": "restora-small", "file": "restora-small.safetensors", "preset": "small",
//!              "label": "Restora small", "preview": false,
//!              "tasks": ["denoise", "deblur", "dealias", "inpaint", "auto"], "iterations": 120000,
//!              "val_psnr": {"denoise": 31.2}, "input_psnr": {"denoise": 22.1}}]}
//! ```
//! Unknown fields are ignored; `preview`, `iterations`, `val_psnr`, `input_psnr` and `bytes` are
//! optional. The web app and `train-native` (when no `--weights` is given) both choose through
//! [`Manifest::choose`], so they restore with the same model.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;

use crate::degradations::Task;

/// What the user asks for: one of the four tasks, or `auto` (the foundation model handles
/// whatever it sees; a painted mask is passed when there is one).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TaskChoice {
    Task(Task),
    Auto,
}

impl TaskChoice {
    /// In the order of the task selector.
    pub const ALL: [TaskChoice; 5] = [
        TaskChoice::Task(Task::Denoise),
        TaskChoice::Task(Task::Deblur),
        TaskChoice::Task(Task::Dealias),
        TaskChoice::Task(Task::Inpaint),
        TaskChoice::Auto,
    ];

    /// The name in models.json, the selector's option values and the CLI's `--task`.
    pub fn name(self) -> &'static str {
        match self {
            TaskChoice::Task(task) => task.name(),
            TaskChoice::Auto => "auto",
        }
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            TaskChoice::Task(Task::Denoise) => "Denoise",
            TaskChoice::Task(Task::Deblur) => "Deblur",
            TaskChoice::Task(Task::Dealias) => "Anti-alias",
            TaskChoice::Task(Task::Inpaint) => "Inpaint (paint a mask)",
            TaskChoice::Auto => "Auto (foundation model)",
        }
    }

    /// Whether the user paints a mask for this choice (`auto` may use one too).
    pub fn uses_mask(self) -> bool {
        matches!(self, TaskChoice::Task(Task::Inpaint) | TaskChoice::Auto)
    }
}

impl fmt::Display for TaskChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for TaskChoice {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Ok(TaskChoice::Auto),
            other => other.parse::<Task>().map(TaskChoice::Task).map_err(|e| e.to_string()),
        }
    }
}

/// The manifest.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Manifest {
    pub models: Vec<ModelEntry>,
}

/// One shipped model.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ModelEntry {
    /// Stable name, also the cache key of its weights.
    pub id: String,
    /// Path of the safetensors file, relative to `weights/`.
    pub file: String,
    /// The model's preset (`small`, `base`, ...), for display; the shape is read from the file.
    #[serde(default)]
    pub preset: String,
    /// Words for people.
    #[serde(default)]
    pub label: String,
    /// A model still in training, shown as such and used only when nothing else covers the task.
    #[serde(default)]
    pub preview: bool,
    /// Task names (`denoise`, `deblur`, `dealias`, `inpaint`, `auto`) the model was trained for.
    pub tasks: Vec<String>,
    /// Training iterations.
    #[serde(default)]
    pub iterations: Option<u64>,
    /// Validation PSNR (dB) of its results, per task.
    #[serde(default)]
    pub val_psnr: BTreeMap<String, f64>,
    /// Validation PSNR (dB) of the degraded inputs, per task (the baseline to beat).
    #[serde(default)]
    pub input_psnr: BTreeMap<String, f64>,
    /// Size of the file in bytes, when known (progress before the server says, cache check).
    #[serde(default)]
    pub bytes: Option<u64>,
}

impl ModelEntry {
    pub fn covers(&self, choice: TaskChoice) -> bool {
        self.tasks.iter().any(|t| t.eq_ignore_ascii_case(choice.name()))
    }

    /// The label, or the id when there is none.
    pub fn display_name(&self) -> &str {
        if self.label.is_empty() {
            &self.id
        } else {
            &self.label
        }
    }

    /// One line about the model for this task: name, preview flag, validation PSNR.
    pub fn summary(&self, choice: TaskChoice) -> String {
        let mut text = self.display_name().to_string();
        if !self.preset.is_empty() {
            text.push_str(&format!(" ({})", self.preset));
        }
        if self.preview {
            text.push_str(", preview: still training");
        }
        if let Some(psnr) = self.val_psnr.get(choice.name()) {
            text.push_str(&format!(", validation PSNR {psnr:.2} dB"));
            if let Some(input) = self.input_psnr.get(choice.name()) {
                text.push_str(&format!(" (inputs {input:.2} dB)"));
            }
        }
        text
    }
}

/// A `models.json` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("weights/models.json: {0}")]
    Json(#[from] serde_json::Error),
    #[error("weights/models.json: model {0} has a file outside weights/")]
    FileOutside(String),
}

impl Manifest {
    pub fn parse(json: &str) -> Result<Self, ManifestError> {
        let manifest: Manifest = serde_json::from_str(json)?;
        if let Some(bad) = manifest.models.iter().find(|m| m.file.contains("..") || m.file.starts_with('/')) {
            return Err(ManifestError::FileOutside(bad.id.clone()));
        }
        Ok(manifest)
    }

    /// The model for a task: among those that list it, a finished model before a preview, a
    /// specialist (fine-tuned: fewer tasks) before a generalist, then the most trained; ties keep
    /// the manifest's order.
    pub fn choose(&self, choice: TaskChoice) -> Option<&ModelEntry> {
        self.models
            .iter()
            .enumerate()
            .filter(|(_, m)| m.covers(choice))
            .min_by_key(|(i, m)| (m.preview, m.tasks.len(), std::cmp::Reverse(m.iterations.unwrap_or(0)), *i))
            .map(|(_, m)| m)
    }

    /// The message shown when no model covers a task.
    pub fn missing_message(choice: TaskChoice) -> String {
        format!(
            "No model for \"{}\" is shipped with this site yet (weights/models.json lists none), \
             so it cannot be restored here. Try another task, or the command line with your own weights.",
            choice.name()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(id: &str, tasks: &[&str], preview: bool, iterations: Option<u64>) -> ModelEntry {
        ModelEntry {
            id: id.into(),
            file: format!("{id}.safetensors"),
            preset: "small".into(),
            label: String::new(),
            preview,
            tasks: tasks.iter().map(|t| t.to_string()).collect(),
            iterations,
            val_psnr: BTreeMap::new(),
            input_psnr: BTreeMap::new(),
            bytes: None,
        }
    }

    #[test]
    fn task_choice_names_round_trip() {
        for choice in TaskChoice::ALL {
            assert_eq!(choice.name().parse::<TaskChoice>().unwrap(), choice);
        }
        assert!("sharpen".parse::<TaskChoice>().is_err());
        assert_eq!(TaskChoice::Task(Task::Dealias).name(), "dealias");
    }

    #[test]
    fn parses_the_documented_schema_and_ignores_unknown_fields() {
        let json = r#"{"models":[{"id":"a","file":"a.safetensors","preset":"small","label":"A","preview":true,
            "tasks":["denoise","auto"],"iterations":5,"val_psnr":{"denoise":30.5},"input_psnr":{"denoise":20.0},
            "extra":1}]}"#;
        let manifest = Manifest::parse(json).unwrap();
        let model = &manifest.models[0];
        assert!(model.preview && model.covers(TaskChoice::Auto) && !model.covers(TaskChoice::Task(Task::Deblur)));
        assert_eq!(
            model.summary(TaskChoice::Task(Task::Denoise)),
            "A (small), preview: still training, validation PSNR 30.50 dB (inputs 20.00 dB)"
        );
        assert!(Manifest::parse(r#"{"models":[]}"#).unwrap().choose(TaskChoice::Auto).is_none());
        assert!(Manifest::parse(r#"{"models":[{"id":"x","file":"../x","tasks":["auto"]}]}"#).is_err());
        assert!(Manifest::parse("{}").is_err());
    }

    #[test]
    fn prefers_finished_then_fine_tuned_then_most_trained() {
        let all = ["denoise", "deblur", "dealias", "inpaint", "auto"];
        let manifest = Manifest {
            models: vec![
                entry("preview-denoiser", &["denoise"], true, Some(900)),
                entry("foundation", &all, false, Some(100)),
                entry("foundation-longer", &all, false, Some(200)),
                entry("denoiser", &["denoise"], false, Some(50)),
            ],
        };
        let pick = |task: &str| manifest.choose(task.parse().unwrap()).map(|m| m.id.as_str());
        assert_eq!(pick("denoise"), Some("denoiser"));
        assert_eq!(pick("deblur"), Some("foundation-longer"));
        assert_eq!(pick("auto"), Some("foundation-longer"));
        let previews = Manifest { models: vec![entry("p", &["inpaint"], true, None)] };
        assert_eq!(previews.choose(TaskChoice::Task(Task::Inpaint)).unwrap().id, "p");
        assert!(previews.choose(TaskChoice::Task(Task::Deblur)).is_none());
        assert!(Manifest::missing_message(TaskChoice::Task(Task::Deblur)).contains("\"deblur\""));
    }
}
