//! The app's state: signals, grouped in one `Copy` struct provided as context by `App`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use leptos::prelude::*;
use restora_model::Image;

use crate::backend_choice::{BackendChoice, BackendKind, RunMemory};
use crate::brush::MaskEditor;
use crate::demo_params::DemoKind;
use crate::dom;
use crate::manifest::{Manifest, TaskChoice};
use restora_model::degradations::Task;
use restora_model::tile_choice::TileChoice;

/// A bundled sample photo (from `samples/samples.json`).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct Sample {
    pub stem: String,
    pub file: String,
    #[serde(default)]
    pub width: Option<u32>,
    #[serde(default)]
    pub height: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
pub struct SampleList {
    pub samples: Vec<Sample>,
}

/// The image to restore.
#[derive(Debug, Clone)]
pub struct Input {
    /// File name, for the downloads.
    pub name: String,
    pub image: Arc<Image>,
}

/// What a restoration is doing.
#[derive(Debug, Clone, PartialEq)]
pub enum Phase {
    Idle,
    Downloading { received: u64, total: Option<u64> },
    Loading,
    Running { done: usize, total: usize },
    Cancelling,
}

impl Phase {
    pub fn busy(&self) -> bool {
        *self != Phase::Idle
    }
}

/// A finished restoration.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// `blob:` URL of the PNG (8 bits per channel, as the CLI writes by default).
    pub url: String,
    pub backend: BackendKind,
    /// Time of the tile loop (not the download or loading of weights).
    pub elapsed_ms: f64,
    pub tiles: usize,
    pub memory: RunMemory,
}

/// A message in the `error` element; `retry_tiles` offers a rerun with smaller tiles.
#[derive(Debug, Clone, PartialEq)]
pub struct ErrorMessage {
    pub text: String,
    pub retry_tiles: Option<usize>,
}

/// Quality against the clean original (demo mode).
#[derive(Debug, Clone, PartialEq)]
pub struct Metrics {
    pub psnr_input: f64,
    pub ssim_input: f64,
    /// `None` until the input is restored.
    pub psnr_result: Option<f64>,
    pub ssim_result: Option<f64>,
    /// Jet error maps (`blob:` PNG URLs) of the input and of the result, on the same scale.
    pub input_map: String,
    pub result_map: Option<String>,
}

/// The WebGPU self-test.
#[derive(Debug, Clone, PartialEq)]
pub enum GpuState {
    NotTried,
    Testing,
    Ready { adapter: String, max_diff: f32, ms: f64, software: bool },
    Failed(String),
}

/// Every signal of the app.
#[derive(Clone, Copy)]
pub struct AppState {
    pub manifest: RwSignal<Option<Result<Manifest, String>>>,
    pub samples: RwSignal<Vec<Sample>>,
    pub task: RwSignal<TaskChoice>,
    pub backend: RwSignal<BackendChoice>,
    pub tiles: RwSignal<TileChoice>,
    pub gpu: RwSignal<GpuState>,
    pub input: RwSignal<Option<Input>>,
    /// The clean original of a demo input.
    pub reference: RwSignal<Option<Arc<Image>>>,
    /// The painted mask; `mask_rev` changes whenever it does.
    pub mask: StoredValue<Option<MaskEditor>>,
    pub mask_rev: RwSignal<u64>,
    pub mask_url: RwSignal<Option<String>>,
    pub brush_size: RwSignal<u32>,
    pub eraser: RwSignal<bool>,
    pub pan_tool: RwSignal<bool>,
    pub mask_opacity: RwSignal<f64>,
    pub phase: RwSignal<Phase>,
    pub cancel: StoredValue<Arc<AtomicBool>>,
    pub result: RwSignal<Option<RunResult>>,
    pub metrics: RwSignal<Option<Metrics>>,
    pub show_error_map: RwSignal<bool>,
    /// The status line: what is happening, or what ran and how long it took.
    pub status: RwSignal<String>,
    /// The model used for the current task, in words.
    pub model_info: RwSignal<String>,
    /// Whether the default model is saved for offline use (empty until the page is idle).
    pub offline: RwSignal<String>,
    /// Things the user should know that are not errors (a fallback to the CPU).
    pub notice: RwSignal<Option<String>>,
    pub error: RwSignal<Option<ErrorMessage>>,
    pub zoom: RwSignal<f64>,
    pub pan: RwSignal<(f64, f64)>,
    /// Position of the before/after divider, percent from the left.
    pub split: RwSignal<f64>,
    pub demo_mode: RwSignal<bool>,
    pub demo_sample: RwSignal<String>,
    pub demo_kind: RwSignal<DemoKind>,
    pub demo_strength: RwSignal<f64>,
}

impl AppState {
    pub fn new() -> Self {
        let backend = BackendChoice::from_query(&dom::query()).unwrap_or_default();
        Self {
            manifest: RwSignal::new(None),
            samples: RwSignal::new(Vec::new()),
            task: RwSignal::new(TaskChoice::Task(Task::Denoise)),
            backend: RwSignal::new(backend),
            tiles: RwSignal::new(TileChoice::Auto),
            gpu: RwSignal::new(GpuState::NotTried),
            input: RwSignal::new(None),
            reference: RwSignal::new(None),
            mask: StoredValue::new(None),
            mask_rev: RwSignal::new(0),
            mask_url: RwSignal::new(None),
            brush_size: RwSignal::new(24),
            eraser: RwSignal::new(false),
            pan_tool: RwSignal::new(false),
            mask_opacity: RwSignal::new(0.6),
            phase: RwSignal::new(Phase::Idle),
            cancel: StoredValue::new(Arc::new(AtomicBool::new(false))),
            result: RwSignal::new(None),
            metrics: RwSignal::new(None),
            show_error_map: RwSignal::new(false),
            status: RwSignal::new("Open an image or pick a sample.".into()),
            model_info: RwSignal::new(String::new()),
            offline: RwSignal::new(String::new()),
            notice: RwSignal::new(None),
            error: RwSignal::new(None),
            zoom: RwSignal::new(1.0),
            pan: RwSignal::new((0.0, 0.0)),
            split: RwSignal::new(50.0),
            demo_mode: RwSignal::new(false),
            demo_sample: RwSignal::new(String::new()),
            demo_kind: RwSignal::new(DemoKind::GaussianNoise),
            demo_strength: RwSignal::new(50.0),
        }
    }

    pub fn set_error(&self, text: impl Into<String>) {
        self.error.set(Some(ErrorMessage { text: text.into(), retry_tiles: None }));
    }

    pub fn clear_error(&self) {
        self.error.set(None);
    }

    /// Replaces the input: a fresh empty mask of its size (or `mask`), no result, and the clean
    /// original when it is a demo input.
    pub fn set_input(&self, name: String, image: Image, mask: Option<restora_model::Mask>, reference: Option<Image>) {
        let (w, h) = (image.width(), image.height());
        self.mask.set_value(Some(match mask {
            Some(mask) => MaskEditor::from_mask(mask),
            None => MaskEditor::new(w, h),
        }));
        self.mask_rev.update(|r| *r += 1);
        self.set_result(None);
        self.set_metrics(None);
        self.show_error_map.set(false);
        self.reference.set(reference.map(Arc::new));
        self.input.set(Some(Input { name, image: Arc::new(image) }));
        self.zoom.set(1.0);
        self.pan.set((0.0, 0.0));
        self.clear_error();
        self.status.set(format!("Image {w}×{h} loaded. Choose a task and press Restore."));
    }

    /// Replaces the result, giving back the old `blob:` URL.
    pub fn set_result(&self, result: Option<RunResult>) {
        if let Some(old) = self.result.get_untracked() {
            dom::revoke(&old.url);
        }
        self.result.set(result);
    }

    pub fn set_metrics(&self, metrics: Option<Metrics>) {
        if let Some(old) = self.metrics.get_untracked() {
            dom::revoke(&old.input_map);
            if let Some(url) = &old.result_map {
                dom::revoke(url);
            }
        }
        self.metrics.set(metrics);
    }

    pub fn cancel_requested(&self) -> bool {
        self.cancel.with_value(|c| c.load(Ordering::Relaxed))
    }

    pub fn set_cancel(&self, value: bool) {
        self.cancel.with_value(|c| c.store(value, Ordering::Relaxed));
    }

    /// Applies `f` to the mask editor (if an image is loaded) and bumps the revision.
    pub fn edit_mask<T>(&self, f: impl FnOnce(&mut MaskEditor) -> T) -> Option<T> {
        let mut out = None;
        self.mask.update_value(|editor| {
            if let Some(editor) = editor {
                out = Some(f(editor));
            }
        });
        if out.is_some() {
            self.mask_rev.update(|r| *r += 1);
        }
        out
    }
}
