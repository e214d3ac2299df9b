//! What is happening: the status line (backend and time of the last restoration), WebGPU's
//! state, the model in use, notices and errors.

use leptos::prelude::*;

use crate::backend_choice::BackendChoice;
use crate::engine::{self, EngineHandle};
use crate::state::{AppState, GpuState};

#[component]
pub fn Status() -> impl IntoView {
    let state = expect_context::<AppState>();
    let engine = expect_context::<EngineHandle>();
    let gpu_text = move || match (state.backend.get(), state.gpu.get()) {
        (BackendChoice::Cpu, _) => "Backend: CPU (chosen).".to_string(),
        (_, GpuState::NotTried) => "WebGPU: not tested yet.".into(),
        (_, GpuState::Testing) => "WebGPU: self-test against the CPU running…".into(),
        (_, GpuState::Ready { adapter, max_diff, ms, software }) => format!(
            "WebGPU: ready on {adapter}{} (self-test agrees with the CPU to {max_diff:.1e}, {ms:.0} ms).",
            if software { ", a software adapter" } else { "" }
        ),
        (_, GpuState::Failed(reason)) => format!("WebGPU: off ({reason}); the CPU is used."),
    };
    let error_text = move || state.error.get().map(|e| e.text).unwrap_or_default();
    let retry = move || state.error.get().and_then(|e| e.retry_tiles);
    view! {
        <section class="card status-area">
            <p class="status" data-testid="status" role="status" aria-live="polite">
                {move || state.status.get()}
            </p>
            <p class="detail" data-testid="gpu-status">{gpu_text}</p>
            <p class="detail" data-testid="model-info">{move || state.model_info.get()}</p>
            <p class="detail" data-testid="offline" hidden=move || state.offline.get().is_empty()>
                {move || state.offline.get()}
            </p>
            <p class="notice" data-testid="notice" hidden=move || state.notice.get().is_none()>
                {move || state.notice.get().unwrap_or_default()}
            </p>
            <div class="error" role="alert" hidden=move || state.error.get().is_none()>
                <span class="error-text" data-testid="error">{error_text}</span>
                <Show when=move || retry().is_some()>
                    <button on:click=move |_| {
                        if let Some(side) = retry() {
                            engine::retry_with_tiles(state, engine, side);
                        }
                    }>{move || format!("Retry with {} px tiles", retry().unwrap_or(0))}</button>
                </Show>
                <button class="dismiss" title="Dismiss" on:click=move |_| state.clear_error()>
                    "×"
                </button>
            </div>
        </section>
    }
}
