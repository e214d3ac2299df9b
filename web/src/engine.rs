//! Where restorations run: the WebGPU self-test and fallback to the CPU, weights, the tile loops.
//!
//! WebGPU is used only after a start-up self-test (a tiny mask-aware Restormer on both backends,
//! compared value by value, with timeouts) has passed; any failure, mismatch or timeout then, or
//! a failed, non-finite or late readback later, falls back to the CPU with a visible message.
//! Tensors are only read with `into_data_async().await` (synchronous readback hangs or panics in
//! a page). WebGPU runs on the page (the GPU does the work); the CPU backend runs in a Web Worker
//! (`worker.rs`) so the page stays responsive and cancelling is immediate.

use std::cell::RefCell;
use std::rc::Rc;

use burn::backend::ndarray::NdArray;
use burn::backend::wgpu::graphics::AutoGraphicsApi;
use burn::backend::wgpu::{init_setup_async, RuntimeOptions, WgpuDevice};
use burn::backend::Wgpu;
use burn::prelude::*;
use js_sys::{Float32Array, Uint8Array};
use leptos::prelude::*;
use leptos::task::spawn_local;
use restora_model::inference::{forward_padded, Restoration, TileOptions};
use restora_model::metrics::{error_map, psnr, ssim, ErrorScale, MetricOptions};
use restora_model::weights::{self, StoredPrecision};
use restora_model::RestoraBackend;
use restora_model::{BitDepth, Image, Mask, Preset, Restormer, RestormerConfig};
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::{ErrorEvent, MessageEvent, Worker, WorkerOptions, WorkerType};

use crate::backend_choice::{done_message, BackendChoice, BackendKind, RunMemory};
use crate::demo_params::{DemoKind, DEMO_SEED};
use crate::dom::{self, get_path, js_error, now_ms, sleep, with_timeout};
use crate::manifest::{Manifest, ModelEntry, TaskChoice};
use crate::state::{AppState, ErrorMessage, GpuState, Input, Metrics, Phase, RunResult};
use crate::weights::{self as remote, Source};
use crate::worker::message_object;
use restora_model::tile_choice::{self as tiles, Limits, TileChoice, TooLarge};

type Cpu = NdArray<f32>;
type Gpu = Wgpu<f32, i32>;

/// requestAdapter and burn's device set-up.
const INIT_TIMEOUT_MS: i32 = 30_000;
/// The self-test's readback (first use compiles every kernel; software adapters are slow).
const SELF_TEST_TIMEOUT_MS: i32 = 90_000;
/// One tile's readback on WebGPU before it is declared hung: the first of a session compiles the
/// kernels (minutes on a software adapter). Later tiles get at least `TILE_TIMEOUT_MS` and at
/// least `SLOWEST_TILE_FACTOR` times the slowest tile so far: autotuning, which on the web
/// benchmarks the candidate kernels in the background after their first use, shares the queue,
/// and made the second and third 64×48 restorations on SwiftShader take 153 and 147 s after a
/// first of 80 s (GPU memory flat), so a fixed 180 s declared a live, busy GPU lost. On a 24 MP
/// photo (512² tiles, SwiftShader) the first tile took 74 s and the second, while the matmul
/// candidates were benchmarked at that size (cubecl-runtime 0.9 `tune/tuner.rs` spawns the tuning
/// as a detached task on wasm), over 294 s: the page then finished on the CPU, which is the faster
/// choice on a software adapter anyway. A real GPU tunes in milliseconds.
const FIRST_TILE_TIMEOUT_MS: i32 = 600_000;
const TILE_TIMEOUT_MS: i32 = 180_000;
const SLOWEST_TILE_FACTOR: f64 = 4.0;
/// Loading the wasm module in the CPU worker.
const WORKER_START_TIMEOUT_MS: i32 = 60_000;
/// Largest |WebGPU − CPU| the self-test accepts (measured agreement is ~1e-6).
const SELF_TEST_TOLERANCE: f32 = 1e-3;
/// Errors of this size (mean absolute, on [0, 1]) and above are dark red in demo error maps.
const ERROR_MAP_SCALE: f32 = 0.1;

/// The WebGPU device once its self-test passed.
struct GpuDevice {
    device: WgpuDevice,
    limits: Limits,
    /// A software adapter (SwiftShader): slower than the CPU path, so "auto" does not use it.
    software: bool,
    /// The slowest restoration tile so far, in ms (`None` before the first: kernels not compiled).
    slowest_tile_ms: std::cell::Cell<Option<f64>>,
}

/// Downloaded weights and the configuration they describe.
struct Weights {
    id: String,
    bytes: Rc<Vec<u8>>,
    config: RestormerConfig,
}

/// The network on WebGPU (the CPU's lives in the worker).
struct GpuModel {
    id: String,
    network: Restormer<Gpu>,
}

/// The Web Worker running the CPU backend, and the weights it holds.
struct CpuWorker {
    worker: Worker,
    holds: RefCell<Option<String>>,
}

/// What is expensive to make: the WebGPU device, the last weights downloaded, the model on
/// WebGPU, the CPU worker. Lives in one place (`EngineHandle`), never in a global.
#[derive(Default)]
pub struct Engine {
    gpu: Option<Rc<GpuDevice>>,
    weights: Option<Rc<Weights>>,
    model: Option<Rc<GpuModel>>,
    worker: Option<Rc<CpuWorker>>,
}

/// The engine, shared by the components through context.
#[derive(Clone, Copy)]
pub struct EngineHandle(StoredValue<Rc<RefCell<Engine>>, LocalStorage>);

impl EngineHandle {
    pub fn new() -> Self {
        Self(StoredValue::new_local(Rc::new(RefCell::new(Engine::default()))))
    }

    fn get(&self) -> Rc<RefCell<Engine>> {
        self.0.get_value()
    }
}

/// Why a restoration stopped.
enum RunError {
    Cancelled,
    Message(String),
    TooLarge(TooLarge),
    /// WebGPU failed mid-way: retry on the CPU.
    Gpu(String),
    /// The CPU worker died without a message: out of memory, most likely.
    OutOfMemory {
        retry: Option<usize>,
    },
}

impl From<String> for RunError {
    fn from(message: String) -> Self {
        RunError::Message(message)
    }
}

/// Runs the WebGPU self-test once (no-op if it ran or is running).
pub async fn probe_gpu(state: AppState, engine: EngineHandle) {
    if state.gpu.get_untracked() != GpuState::NotTried {
        return;
    }
    state.gpu.set(GpuState::Testing);
    let start = now_ms();
    match self_test().await {
        Ok((device, adapter, max_diff)) => {
            let software = device.software;
            engine.get().borrow_mut().gpu = Some(Rc::new(device));
            state.gpu.set(GpuState::Ready { adapter, max_diff, ms: now_ms() - start, software });
        }
        Err(reason) => {
            state
                .notice
                .set(Some(format!("WebGPU is not used ({reason}); restoring on the CPU instead, which is slower.")));
            state.gpu.set(GpuState::Failed(reason));
        }
    }
}

/// Adapter check, device set-up, then the same tiny network on both backends.
async fn self_test() -> Result<(GpuDevice, String, f32), String> {
    let gpu = get_path(&dom::window(), &["navigator", "gpu"]);
    if gpu.is_undefined() {
        return Err("this browser offers no WebGPU".into());
    }
    let request: js_sys::Function = get_path(&gpu, &["requestAdapter"]).dyn_into().map_err(|_| "no requestAdapter")?;
    let promise: js_sys::Promise =
        request.call0(&gpu).map_err(|e| js_error(&e))?.dyn_into().map_err(|_| "requestAdapter is not async")?;
    let adapter = with_timeout(JsFuture::from(promise), INIT_TIMEOUT_MS)
        .await
        .ok_or("no answer from requestAdapter")?
        .map_err(|e| js_error(&e))?;
    if adapter.is_null() || adapter.is_undefined() {
        return Err("no WebGPU adapter is available".into());
    }
    let limit = |name: &str| get_path(&adapter, &["limits", name]).as_f64().map(|v| v as u64);
    let limits = Limits::webgpu(
        limit("maxStorageBufferBindingSize").unwrap_or(128 << 20),
        limit("maxBufferSize").unwrap_or(256 << 20),
    );
    let info = ["description", "architecture", "vendor"]
        .iter()
        .filter_map(|key| get_path(&adapter, &["info", key]).as_string().filter(|s| !s.is_empty()))
        .collect::<Vec<_>>()
        .join(", ");
    let adapter_name = if info.is_empty() { "WebGPU adapter".to_string() } else { info };
    let software = get_path(&adapter, &["info", "isFallbackAdapter"]).as_bool().unwrap_or(false)
        || get_path(&adapter, &["isFallbackAdapter"]).as_bool().unwrap_or(false)
        || adapter_name.to_ascii_lowercase().contains("swiftshader");

    let device = WgpuDevice::default();
    with_timeout(init_setup_async::<AutoGraphicsApi>(&device, RuntimeOptions::default()), INIT_TIMEOUT_MS)
        .await
        .ok_or("WebGPU set-up did not finish within 30 s")?;

    // Same weights on both sides; an odd size exercises the padding, the mask the masked paths.
    let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
    let cpu_device = Default::default();
    let cpu_model = config.init::<Cpu>(&cpu_device);
    let bytes = weights::save(&cpu_model, &config, StoredPrecision::F32).map_err(|e| e.to_string())?;
    let (gpu_model, _) = weights::load::<Gpu>(&bytes, &device).map_err(|e| e.to_string())?;
    let (w, h) = (44, 28);
    let image = Image::from_fn(w, h, |x, y| {
        let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
        [fx, fy, 0.5 + 0.4 * ((x * 7 + y * 3) as f32).sin()]
    });
    let mut mask = Mask::zeros(w, h);
    for y in 8..16 {
        for x in 10..30 {
            mask.set(x, y, 1.0);
        }
    }
    let cpu_out = read(forward_once(&cpu_model, &image, &mask, &cpu_device)).await?;
    let gpu_out = with_timeout(read(forward_once(&gpu_model, &image, &mask, &device)), SELF_TEST_TIMEOUT_MS)
        .await
        .ok_or(format!("its self-test did not answer within {} s", SELF_TEST_TIMEOUT_MS / 1000))??;
    if cpu_out.len() != gpu_out.len() {
        return Err("its self-test returned a result of the wrong size".into());
    }
    let max_diff = cpu_out.iter().zip(&gpu_out).map(|(a, b)| (a - b).abs()).fold(0.0f32, |m, d| {
        if d.is_nan() {
            f32::INFINITY
        } else {
            m.max(d)
        }
    });
    if !(max_diff <= SELF_TEST_TOLERANCE) {
        return Err(format!(
            "its self-test differs from the CPU by {max_diff:.1e} (tolerance {SELF_TEST_TOLERANCE:.0e})"
        ));
    }
    Ok((GpuDevice { device, limits, software, slowest_tile_ms: Default::default() }, adapter_name, max_diff))
}

fn forward_once<B: RestoraBackend>(
    model: &Restormer<B>,
    image: &Image,
    mask: &Mask,
    device: &B::Device,
) -> Tensor<B, 4> {
    let (w, h) = (image.width() as usize, image.height() as usize);
    let input = Tensor::<B, 1>::from_floats(image.to_planar().as_slice(), device).reshape([1, 3, h, w]);
    let mask = Tensor::<B, 1>::from_floats(mask.data(), device).reshape([1, 1, h, w]);
    forward_padded(model, input, Some(mask))
}

async fn read<B: Backend>(tensor: Tensor<B, 4>) -> Result<Vec<f32>, String> {
    let data = tensor.into_data_async().await.map_err(|e| format!("readback failed: {e:?}"))?;
    data.into_vec::<f32>().map_err(|e| format!("readback failed: {e:?}"))
}

/// Starts the WebGPU self-test in the background if the backend choice wants it.
pub fn probe_if_wanted(state: AppState, engine: EngineHandle) {
    if state.backend.get_untracked().wants_gpu() && state.gpu.get_untracked() == GpuState::NotTried {
        spawn_local(probe_gpu(state, engine));
    }
}

/// The "Restore" button: checks the request, then restores in the background.
pub fn start_run(state: AppState, engine: EngineHandle) {
    if state.phase.get_untracked().busy() {
        return;
    }
    let Some(input) = state.input.get_untracked() else {
        state.set_error("Open an image or pick a sample first.");
        return;
    };
    let task = state.task.get_untracked();
    let manifest = match state.manifest.get_untracked() {
        Some(Ok(manifest)) => manifest,
        Some(Err(e)) => return state.set_error(format!("The model list could not be read: {e}")),
        None => return state.set_error("The model list is still loading; try again in a moment."),
    };
    let Some(model) = manifest.choose(task).cloned() else {
        state.set_error(Manifest::missing_message(task));
        return;
    };
    let mask = if task.uses_mask() {
        state.mask.with_value(|m| m.as_ref().filter(|e| !e.is_empty()).map(|e| e.mask().clone()))
    } else {
        None
    };
    if task == TaskChoice::Task(restora_model::degradations::Task::Inpaint) && mask.is_none() {
        state.set_error("Paint over the pixels to fill first: the mask is empty.");
        return;
    }
    state.clear_error();
    state.set_cancel(false);
    state.phase.set(Phase::Loading);
    spawn_local(async move {
        let outcome = run(state, engine, &input, mask, &model, task).await;
        state.phase.set(Phase::Idle);
        match outcome {
            Ok(()) => {}
            Err(RunError::Cancelled) => state.status.set("Cancelled.".into()),
            Err(RunError::Message(text) | RunError::Gpu(text)) => {
                state.status.set("Restoration failed.".into());
                state.set_error(text);
            }
            Err(RunError::TooLarge(too_large)) => {
                state.status.set("Restoration not started.".into());
                state.error.set(Some(ErrorMessage { text: too_large.to_string(), retry_tiles: too_large.suggestion }));
            }
            Err(RunError::OutOfMemory { retry }) => {
                state.status.set("Restoration failed.".into());
                let text = match retry {
                    Some(side) => {
                        format!("Out of memory: the CPU backend stopped. Retry with smaller tiles ({side} px).")
                    }
                    None => "Out of memory: the CPU backend stopped even with the smallest tiles. Use a smaller image."
                        .to_string(),
                };
                state.error.set(Some(ErrorMessage { text, retry_tiles: retry }));
            }
        }
    });
}

async fn run(
    state: AppState,
    engine: EngineHandle,
    input: &Input,
    mask: Option<Mask>,
    entry: &ModelEntry,
    task: TaskChoice,
) -> Result<(), RunError> {
    let mut kind = choose_backend(state, engine).await;
    let weights = weights_for(state, engine, entry).await?;
    if state.cancel_requested() {
        return Err(RunError::Cancelled);
    }
    state.model_info.set(format!("Model: {}", entry.summary(task)));
    let (w, h) = (input.image.width() as usize, input.image.height() as usize);
    let outcome = loop {
        let limits = match kind {
            BackendKind::WebGpu => engine.get().borrow().gpu.as_ref().map_or(Limits::CPU, |g| g.limits),
            BackendKind::Cpu => Limits::CPU,
        };
        let options =
            tiles::resolve(state.tiles.get_untracked(), w, h, &weights.config, &limits).map_err(RunError::TooLarge)?;
        let start = now_ms();
        let result = match kind {
            BackendKind::WebGpu => {
                let (network, gpu) = gpu_model(state, engine, &weights)?;
                run_tiles(state, &network, &gpu, &input.image, mask.as_ref(), &options)
                    .await
                    .map(|(image, tiles)| (image, tiles, None, Some(gpu_memory(&gpu.device))))
            }
            BackendKind::Cpu => run_on_worker(state, engine, &weights, &input.image, mask.as_ref(), &options)
                .await
                .map(|(image, tiles, worker)| (image, tiles, worker, None)),
        };
        match result {
            Ok((image, tiles, worker, gpu)) => {
                let memory = RunMemory { page: dom::wasm_memory_bytes(), worker, gpu };
                break (image, tiles, now_ms() - start, memory);
            }
            Err(RunError::Gpu(reason)) if kind == BackendKind::WebGpu => {
                web_sys::console::warn_1(&format!("WebGPU is off for this page: {reason}").into());
                // Never again this session: back to the CPU, and say so.
                {
                    let engine = engine.get();
                    let mut engine = engine.borrow_mut();
                    engine.gpu = None;
                    engine.model = None;
                }
                state.gpu.set(GpuState::Failed(reason.clone()));
                state.notice.set(Some(format!("WebGPU failed ({reason}); restoring on the CPU instead.")));
                kind = BackendKind::Cpu;
            }
            Err(other) => return Err(other),
        }
    };
    let (image, tiles, elapsed_ms, memory) = outcome;
    web_sys::console::log_1(
        &format!("{kind} run: {elapsed_ms:.0} ms, {tiles} tile(s); memory after it: {}", memory.summary()).into(),
    );
    let png = image.encode_png(BitDepth::Eight).map_err(|e| e.to_string())?;
    let url = dom::blob_url(&png, "image/png")?;
    state.set_result(Some(RunResult { url, backend: kind, elapsed_ms, tiles, memory }));
    state.status.set(done_message(kind, elapsed_ms, tiles));
    if let Some(reference) = state.reference.get_untracked() {
        update_metrics(state, &input.image, Some(&image), &reference)?;
    }
    Ok(())
}

/// The backend to use now, waiting for the self-test when it is running.
async fn choose_backend(state: AppState, engine: EngineHandle) -> BackendKind {
    if state.backend.get_untracked() == BackendChoice::Cpu {
        return BackendKind::Cpu;
    }
    if state.gpu.get_untracked() == GpuState::NotTried {
        state.status.set("Testing WebGPU…".into());
        probe_gpu(state, engine).await;
    }
    while state.gpu.get_untracked() == GpuState::Testing {
        state.status.set("Waiting for the WebGPU self-test…".into());
        sleep(100).await;
    }
    let software = match engine.get().borrow().gpu.as_ref() {
        None => return BackendKind::Cpu,
        Some(gpu) => gpu.software,
    };
    if software && state.backend.get_untracked() == BackendChoice::Auto {
        state.notice.set(Some(
            "WebGPU runs on a software adapter here, which is slower than the CPU path: restoring on the CPU. \
             Choose WebGPU as the backend to use it anyway."
                .into(),
        ));
        return BackendKind::Cpu;
    }
    BackendKind::WebGpu
}

/// Once the page is idle (start-up self-test done, nothing restoring), saves the weights of the
/// model the current task would use in the Cache API, so that the page restores offline after
/// this first visit although nothing was restored in it (the service worker keeps the page
/// itself). Progress and outcome go to `state.offline`.
pub async fn keep_model_offline(state: AppState) {
    let Some(Ok(manifest)) = state.manifest.get_untracked() else { return };
    let Some(entry) = manifest.choose(state.task.get_untracked()).cloned() else { return };
    if !remote::can_cache().await {
        return;
    }
    sleep(1000).await;
    while state.phase.get_untracked().busy() || matches!(state.gpu.get_untracked(), GpuState::Testing) {
        sleep(500).await;
    }
    let name = entry.display_name().to_string();
    let megabytes = |n: u64| n as f64 / 1e6;
    let url = format!("weights/{}", entry.file);
    let saved = remote::load(&url, entry.bytes, |received, total| {
        state.offline.set(match total {
            Some(total) => {
                format!("Saving {name} for offline use: {:.1} / {:.1} MB", megabytes(received), megabytes(total))
            }
            None => format!("Saving {name} for offline use: {:.1} MB", megabytes(received)),
        })
    })
    .await;
    state.offline.set(match saved {
        Ok((bytes, _)) => {
            format!("Offline: {name} ({:.1} MB) is saved on this device.", megabytes(bytes.len() as u64))
        }
        Err(e) => format!("Offline: {name} could not be saved ({e}); it is downloaded when needed."),
    });
}

/// The model's weights: from memory, the Cache API or the network (with progress).
async fn weights_for(state: AppState, engine: EngineHandle, entry: &ModelEntry) -> Result<Rc<Weights>, RunError> {
    if let Some(weights) = engine.get().borrow().weights.as_ref().filter(|w| w.id == entry.id) {
        return Ok(weights.clone());
    }
    state.status.set(format!("Loading the weights of {}…", entry.display_name()));
    state.phase.set(Phase::Downloading { received: 0, total: entry.bytes });
    let url = format!("weights/{}", entry.file);
    let (bytes, source) = remote::load(&url, entry.bytes, |received, total| {
        state.phase.set(Phase::Downloading { received, total });
    })
    .await
    .map_err(|e| RunError::Message(format!("Could not load the model's weights: {e}")))?;
    if source == Source::Cache {
        web_sys::console::log_1(&format!("{url}: from the cache").into());
    }
    let fail = |e: weights::WeightsError| {
        RunError::Message(format!("The weights of {} do not load: {e}", entry.display_name()))
    };
    let config = weights::WeightFile::from_safetensors(&bytes).and_then(|file| file.config()).map_err(fail)?;
    let weights = Rc::new(Weights { id: entry.id.clone(), bytes: Rc::new(bytes), config });
    let engine = engine.get();
    let mut engine = engine.borrow_mut();
    engine.weights = Some(weights.clone());
    engine.model = None;
    Ok(weights)
}

/// The network on WebGPU, loaded once per model.
fn gpu_model(
    state: AppState,
    engine: EngineHandle,
    weights: &Weights,
) -> Result<(Restormer<Gpu>, Rc<GpuDevice>), RunError> {
    let engine = engine.get();
    let gpu = engine.borrow().gpu.clone().ok_or_else(|| RunError::Gpu("it is gone".into()))?;
    if let Some(model) = engine.borrow().model.as_ref().filter(|m| m.id == weights.id) {
        return Ok((model.network.clone(), gpu));
    }
    state.phase.set(Phase::Loading);
    let (network, _) = weights::load::<Gpu>(&weights.bytes, &gpu.device)
        .map_err(|e| RunError::Message(format!("The weights do not load: {e}")))?;
    engine.borrow_mut().model = Some(Rc::new(GpuModel { id: weights.id.clone(), network: network.clone() }));
    Ok((network, gpu))
}

/// The CPU worker, started on first use (it loads the same wasm module).
async fn cpu_worker(engine: EngineHandle) -> Result<Rc<CpuWorker>, RunError> {
    if let Some(worker) = engine.get().borrow().worker.clone() {
        return Ok(worker);
    }
    let options = WorkerOptions::new();
    options.set_type(WorkerType::Module);
    let worker = Worker::new_with_options("worker.js", &options)
        .map_err(|e| RunError::Message(format!("Cannot start the CPU worker: {}", js_error(&e))))?;
    let ready = worker_reply(&worker, |_| {});
    let reply = with_timeout(ready.0, WORKER_START_TIMEOUT_MS).await;
    drop(ready.1);
    match reply {
        Some(Ok(reply)) if kind_of(&reply) == "ready" => {}
        Some(Ok(reply)) => {
            return Err(RunError::Message(format!("The CPU worker did not start: {}", message_of(&reply))))
        }
        Some(Err(e)) => return Err(RunError::Message(format!("The CPU worker did not start: {}", js_error(&e)))),
        None => return Err(RunError::Message("The CPU worker did not start within 60 s.".into())),
    }
    let worker = Rc::new(CpuWorker { worker, holds: RefCell::new(None) });
    engine.get().borrow_mut().worker = Some(worker.clone());
    Ok(worker)
}

/// The next message from the worker other than progress (given to `progress`); an `error`
/// event (the worker crashed) rejects. Keep the returned closures alive while waiting.
fn worker_reply(
    worker: &Worker,
    mut progress: impl FnMut(&JsValue) + 'static,
) -> (JsFuture, (Closure<dyn FnMut(MessageEvent)>, Closure<dyn FnMut(ErrorEvent)>)) {
    let (mut resolve, mut reject) = (None, None);
    let promise = js_sys::Promise::new(&mut |res, rej| {
        resolve = Some(res);
        reject = Some(rej);
    });
    let (resolve, reject) = (resolve.expect("set by Promise::new"), reject.expect("set by Promise::new"));
    let on_message = Closure::<dyn FnMut(MessageEvent)>::new(move |event: MessageEvent| {
        let data = event.data();
        if kind_of(&data) == "progress" {
            progress(&data);
        } else {
            let _ = resolve.call1(&JsValue::NULL, &data);
        }
    });
    let on_error = Closure::<dyn FnMut(ErrorEvent)>::new(move |event: ErrorEvent| {
        event.prevent_default();
        let _ = reject.call1(&JsValue::NULL, &JsValue::from_str(&event.message()));
    });
    worker.set_onmessage(Some(on_message.as_ref().unchecked_ref()));
    worker.set_onerror(Some(on_error.as_ref().unchecked_ref()));
    (JsFuture::from(promise), (on_message, on_error))
}

fn kind_of(message: &JsValue) -> String {
    get_path(message, &["kind"]).as_string().unwrap_or_default()
}

fn message_of(message: &JsValue) -> String {
    get_path(message, &["message"]).as_string().unwrap_or_else(|| "no message".into())
}

/// Restores on the CPU in the worker; cancelling terminates it (a new one starts next time).
async fn run_on_worker(
    state: AppState,
    engine: EngineHandle,
    weights: &Weights,
    image: &Image,
    mask: Option<&Mask>,
    options: &TileOptions,
) -> Result<(Image, usize, Option<u64>), RunError> {
    let worker = cpu_worker(engine).await?;
    let stop = |engine: EngineHandle| {
        worker.worker.terminate();
        engine.get().borrow_mut().worker = None;
    };
    let mut send_weights = worker.holds.borrow().as_deref() != Some(weights.id.as_str());
    state.phase.set(Phase::Running {
        done: 0,
        total: restora_model::inference::plan_tiles(image.width() as usize, image.height() as usize, options).len(),
    });
    state.status.set("Restoring on the CPU…".into());
    loop {
        let mut fields = vec![
            ("kind", JsValue::from_str("run")),
            ("weightsId", JsValue::from_str(&weights.id)),
            ("width", image.width().into()),
            ("height", image.height().into()),
            ("image", Float32Array::from(image.data()).into()),
            ("overlap", options.overlap.into()),
        ];
        if let Some(tile) = options.tile {
            fields.push(("tile", tile.into()));
        }
        if let Some(mask) = mask {
            fields.push(("mask", Float32Array::from(mask.data()).into()));
        }
        if send_weights {
            fields.push(("weights", Uint8Array::from(weights.bytes.as_slice()).into()));
        }
        let (mut reply, _closures) = worker_reply(&worker.worker, move |data| {
            let number = |key| get_path(data, &[key]).as_f64().unwrap_or(0.0) as usize;
            state.phase.set(Phase::Running { done: number("done"), total: number("total") });
        });
        worker.worker.post_message(&message_object(&fields)).map_err(|e| RunError::Message(js_error(&e)))?;
        if send_weights {
            *worker.holds.borrow_mut() = Some(weights.id.clone());
        }
        let reply = loop {
            if let Some(reply) = with_timeout(&mut reply, 100).await {
                break reply;
            }
            if state.cancel_requested() {
                stop(engine);
                return Err(RunError::Cancelled);
            }
        };
        let reply = match reply {
            Ok(reply) => reply,
            Err(_) => {
                // A trap without a panic message: allocation failure.
                stop(engine);
                return Err(RunError::OutOfMemory { retry: smaller_tiles(options, image) });
            }
        };
        match kind_of(&reply).as_str() {
            "done" => {
                let pixels = get_path(&reply, &["image"])
                    .dyn_into::<Float32Array>()
                    .map_err(|_| RunError::Message("the CPU worker sent no image".into()))?
                    .to_vec();
                let tiles = get_path(&reply, &["tiles"]).as_f64().unwrap_or(1.0) as usize;
                let memory = get_path(&reply, &["memoryBytes"]).as_f64().map(|bytes| bytes as u64);
                let restored = Image::new(image.width(), image.height(), pixels).map_err(|e| e.to_string())?;
                return Ok((restored, tiles, memory));
            }
            "error" if get_path(&reply, &["needWeights"]).as_bool() == Some(true) => send_weights = true,
            "panic" => {
                stop(engine);
                let message = message_of(&reply);
                if message.contains("memory") {
                    return Err(RunError::OutOfMemory { retry: smaller_tiles(options, image) });
                }
                return Err(RunError::Message(format!("The CPU backend stopped: {message}")));
            }
            _ => return Err(RunError::Message(format!("The CPU backend failed: {}", message_of(&reply)))),
        }
    }
}

/// The next tile side down from `options` for this image, if any.
fn smaller_tiles(options: &TileOptions, image: &Image) -> Option<usize> {
    let current = options.tile.unwrap_or(image.width().max(image.height()) as usize);
    tiles::AUTO_SIDES.into_iter().find(|&side| side < current)
}

/// Bytes held by live tensors and reserved by the memory pool of the WebGPU client.
fn gpu_memory(device: &WgpuDevice) -> (u64, u64) {
    use cubecl::Runtime;
    let usage = burn::backend::wgpu::WgpuRuntime::client(device).memory_usage();
    (usage.bytes_in_use, usage.bytes_reserved)
}

/// The tile loop of `restora_model::inference::restore_async` on WebGPU, with a turn for the
/// browser between tiles (progress bar, cancel button), a timeout on readbacks and a check for
/// non-finite output.
async fn run_tiles(
    state: AppState,
    model: &Restormer<Gpu>,
    gpu: &GpuDevice,
    image: &Image,
    mask: Option<&Mask>,
    options: &TileOptions,
) -> Result<(Image, usize), RunError> {
    let mut restoration = Restoration::new(model, image, mask, options, &gpu.device).map_err(|e| e.to_string())?;
    let total = restoration.tiles().len();
    state.phase.set(Phase::Running { done: 0, total });
    state.status.set("Restoring on WebGPU…".into());
    sleep(0).await;
    for index in 0..total {
        if state.cancel_requested() {
            return Err(RunError::Cancelled);
        }
        let started = now_ms();
        let output = restoration.run_tile(index).into_data_async();
        let timeout = match gpu.slowest_tile_ms.get() {
            Some(slowest) => TILE_TIMEOUT_MS.max((slowest * SLOWEST_TILE_FACTOR).min(i32::MAX as f64) as i32),
            None => FIRST_TILE_TIMEOUT_MS,
        };
        let data = with_timeout(output, timeout)
            .await
            .ok_or_else(|| RunError::Gpu(format!("a tile took longer than {} s", timeout / 1000)))?
            .map_err(|e| RunError::Gpu(format!("readback failed: {e:?}")))?;
        let took = now_ms() - started;
        // Time and memory per tile: a large photo's run shows the memory flat after the first tile,
        // and a tile slowed down by kernel tuning (see `SLOWEST_TILE_FACTOR`).
        let memory = RunMemory { page: dom::wasm_memory_bytes(), worker: None, gpu: Some(gpu_memory(&gpu.device)) };
        web_sys::console::log_1(
            &format!("WebGPU tile {}/{total}: {took:.0} ms; memory: {}", index + 1, memory.summary()).into(),
        );
        gpu.slowest_tile_ms.set(Some(gpu.slowest_tile_ms.get().map_or(took, |slowest| slowest.max(took))));
        let values = data.into_vec::<f32>().map_err(|e| format!("unexpected tile data: {e:?}"))?;
        if values.iter().any(|v| !v.is_finite()) {
            return Err(RunError::Gpu("it returned non-finite values".into()));
        }
        restoration.accumulate(index, &values).map_err(|e| e.to_string())?;
        state.phase.set(Phase::Running { done: index + 1, total });
        sleep(0).await;
    }
    if state.cancel_requested() {
        return Err(RunError::Cancelled);
    }
    let restored = restoration.finish().map_err(|e| e.to_string())?;
    Ok((restored, total))
}

/// PSNR, SSIM and error maps of the input and (if any) the result against the clean original.
fn update_metrics(state: AppState, input: &Image, result: Option<&Image>, reference: &Image) -> Result<(), String> {
    let options = MetricOptions::new();
    let measure = |image: &Image| -> Result<(f64, f64, String), String> {
        let p = psnr(image, reference, &options).map_err(|e| e.to_string())?;
        let s = ssim(image, reference, &options).map_err(|e| e.to_string())?;
        let map = error_map(image, reference, ErrorScale::Fixed(ERROR_MAP_SCALE)).map_err(|e| e.to_string())?;
        let png = map.encode_png(BitDepth::Eight).map_err(|e| e.to_string())?;
        Ok((p, s, dom::blob_url(&png, "image/png")?))
    };
    let (psnr_input, ssim_input, input_map) = measure(input)?;
    let (psnr_result, ssim_result, result_map) = match result {
        Some(result) => {
            let (p, s, url) = measure(result)?;
            (Some(p), Some(s), Some(url))
        }
        None => (None, None, None),
    };
    state.set_metrics(Some(Metrics { psnr_input, ssim_input, input_map, psnr_result, ssim_result, result_map }));
    Ok(())
}

/// The "Degrade and restore" button of demo mode: damages the chosen sample with the model
/// crate's degradation at the chosen strength (seed [`DEMO_SEED`]), shows it with its metrics
/// against the original, then restores it with the task that undoes it.
pub fn start_demo(state: AppState, engine: EngineHandle) {
    if state.phase.get_untracked().busy() {
        return;
    }
    let stem = state.demo_sample.get_untracked();
    let Some(sample) = state.samples.get_untracked().into_iter().find(|s| s.stem == stem) else {
        state.set_error("Pick a sample photo for the demo.");
        return;
    };
    let kind: DemoKind = state.demo_kind.get_untracked();
    let strength = state.demo_strength.get_untracked() as f32;
    state.phase.set(Phase::Loading);
    spawn_local(async move {
        let prepared = async {
            let bytes = dom::fetch_bytes(&format!("samples/{}", sample.file)).await?;
            let clean = Image::decode(&bytes).map_err(|e| format!("{}: {e}", sample.file))?;
            let degradation = kind.degradation(strength);
            let degraded = degradation.apply(&clean, DEMO_SEED).map_err(|e| e.to_string())?;
            Ok::<_, String>((clean, degraded, degradation.task()))
        }
        .await;
        state.phase.set(Phase::Idle);
        match prepared {
            Ok((clean, degraded, task)) => {
                let name = format!("{}-{}", sample.stem, kind.name());
                state.task.set(TaskChoice::Task(task));
                let input = degraded.image.clone();
                state.set_input(name, degraded.image, degraded.mask, Some(clean.clone()));
                if let Err(e) = update_metrics(state, &input, None, &clean) {
                    state.set_error(e);
                    return;
                }
                state.status.set(format!("{} ({}, seed {DEMO_SEED}) applied.", kind.label(), kind.describe(strength)));
                start_run(state, engine);
            }
            Err(e) => state.set_error(e),
        }
    });
}

/// Decodes bytes the user gave (file, drop, paste) or a sample, with the model crate's decoder
/// (the same pixels as `train-native restore --input`), and makes them the input.
pub fn open_bytes(state: AppState, name: String, bytes: &[u8]) {
    if state.phase.get_untracked().busy() {
        state.set_error("A restoration is running: cancel it first.");
        return;
    }
    match Image::decode(bytes) {
        Ok(image) => state.set_input(name, image, None, None),
        Err(e) => state.set_error(decode_error(&name, e)),
    }
}

/// The message for a file (image or mask) the decoder refused.
pub fn decode_error(name: &str, error: restora_model::ImageError) -> String {
    use restora_model::ImageError;
    match error {
        ImageError::UnknownFormat | ImageError::Empty => {
            format!("{name} is not an image this app can read (PNG, JPEG, WebP, TIFF or BMP expected).")
        }
        e @ ImageError::TooLarge { .. } => format!("{name}: {e}."),
        e => format!("{name} could not be read: {e}."),
    }
}

/// Decodes a mask file the user gave (white = fill, the image's size, as `train-native restore
/// --mask` reads it) and makes it the mask, as one undo step; switches to Inpaint when the task
/// paints no mask.
pub fn open_mask_bytes(state: AppState, name: String, bytes: &[u8]) {
    let Some(input) = state.input.get_untracked() else {
        state.set_error("Open the image first, then its mask.");
        return;
    };
    let (w, h) = (input.image.width(), input.image.height());
    let mask = match restora_model::Mask::decode(bytes) {
        Ok(mask) if (mask.width(), mask.height()) == (w, h) => mask,
        Ok(mask) => {
            state.set_error(format!(
                "{name} is {}×{} but the image is {w}×{h}: a mask must have the image's size (white = fill).",
                mask.width(),
                mask.height()
            ));
            return;
        }
        Err(e) => {
            state.set_error(decode_error(&name, e));
            return;
        }
    };
    state.edit_mask(|editor| editor.replace(&mask));
    if !state.task.get_untracked().uses_mask() {
        state.task.set(TaskChoice::Task(restora_model::degradations::Task::Inpaint));
    }
    state.clear_error();
    state.status.set(format!("Mask {name} loaded: {:.1} % of the image to fill.", mask.coverage() * 100.0));
}

/// "Retry with N px tiles" after an out-of-memory refusal.
pub fn retry_with_tiles(state: AppState, engine: EngineHandle, side: usize) {
    state.tiles.set(TileChoice::Side(side));
    start_run(state, engine);
}
