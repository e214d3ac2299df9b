//! Task, backend and tiles; restore and cancel with the progress bar; downloads.

use leptos::prelude::*;

use crate::backend_choice::BackendChoice;
use crate::dom;
use crate::engine::{self, EngineHandle};
use crate::manifest::TaskChoice;
use crate::state::{AppState, Phase};
use restora_model::tile_choice::TileChoice;

#[component]
pub fn Toolbar() -> impl IntoView {
    let state = expect_context::<AppState>();
    let engine = expect_context::<EngineHandle>();
    let busy = move || state.phase.get().busy();

    // The mask download follows the mask (updated after each stroke, undo, redo, clear).
    Effect::new(move |_| {
        state.mask_rev.get();
        let png = state.mask.with_value(|m| m.as_ref().map(|e| e.mask().encode_png()));
        let url = match png {
            Some(Ok(png)) => dom::blob_url(&png, "image/png").ok(),
            _ => None,
        };
        if let Some(old) = state.mask_url.get_untracked() {
            dom::revoke(&old);
        }
        state.mask_url.set(url);
    });

    // (value, max) of the progress bar; `None` value = indeterminate.
    let progress = move || match state.phase.get() {
        Phase::Idle => (Some(if state.result.get().is_some() { 1.0 } else { 0.0 }), 1.0),
        Phase::Downloading { received, total: Some(total) } if total > 0 => (Some(received as f64), total as f64),
        Phase::Downloading { .. } | Phase::Loading | Phase::Cancelling => (None, 1.0),
        Phase::Running { done, total } => (Some(done as f64), total.max(1) as f64),
    };
    let progress_text = move || match state.phase.get() {
        Phase::Idle => String::new(),
        Phase::Downloading { received, total } => match total {
            Some(total) => format!("Weights: {:.1} / {:.1} MB", received as f64 / 1e6, total as f64 / 1e6),
            None => format!("Weights: {:.1} MB", received as f64 / 1e6),
        },
        Phase::Loading => "Preparing…".into(),
        Phase::Running { done, total } => format!("Tile {done} / {total}"),
        Phase::Cancelling => "Cancelling…".into(),
    };
    let base_name =
        move || state.input.get().map(|i| i.name.rsplit_once('.').map_or(i.name.clone(), |(stem, _)| stem.to_string()));

    view! {
        <section class="card toolbar">
            <h2>"2. Restore"</h2>
            <label class="field">
                <span>"Task"</span>
                <select
                    data-testid="task-select"
                    on:change=move |ev| {
                        if let Ok(task) = event_target_value(&ev).parse::<TaskChoice>() {
                            state.task.set(task);
                        }
                    }
                >
                    {TaskChoice::ALL
                        .into_iter()
                        .map(|task| {
                            view! {
                                <option value=task.name() prop:selected=move || state.task.get() == task>
                                    {task.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="field">
                <span>"Backend"</span>
                <select
                    data-testid="backend-select"
                    on:change=move |ev| {
                        if let Some(choice) = BackendChoice::from_name(&event_target_value(&ev)) {
                            state.backend.set(choice);
                        }
                    }
                >
                    {BackendChoice::ALL
                        .into_iter()
                        .map(|choice| {
                            view! {
                                <option value=choice.name() prop:selected=move || state.backend.get() == choice>
                                    {choice.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <label class="field">
                <span>"Tiles"</span>
                <select
                    data-testid="tile-select"
                    on:change=move |ev| {
                        if let Some(choice) = TileChoice::from_name(&event_target_value(&ev)) {
                            state.tiles.set(choice);
                        }
                    }
                >
                    {TileChoice::ALL
                        .into_iter()
                        .map(|choice| {
                            view! {
                                <option value=choice.name() prop:selected=move || state.tiles.get() == choice>
                                    {choice.label()}
                                </option>
                            }
                        })
                        .collect_view()}
                </select>
            </label>
            <div class="buttons">
                <button
                    class="primary"
                    data-testid="run"
                    disabled=busy
                    on:click=move |_| engine::start_run(state, engine)
                >
                    "Restore"
                </button>
                <button
                    data-testid="cancel"
                    disabled=move || !busy()
                    on:click=move |_| {
                        state.set_cancel(true);
                        state.phase.set(Phase::Cancelling);
                    }
                >
                    "Cancel"
                </button>
            </div>
            <div class="progress-row">
                <progress
                    data-testid="progress"
                    max=move || progress().1
                    value=move || progress().0
                ></progress>
                <span class="progress-text">{progress_text}</span>
            </div>
            <div class="buttons downloads">
                <a
                    class="button"
                    data-testid="download-result"
                    href=move || state.result.get().map(|r| r.url)
                    download=move || base_name().map(|n| format!("{n}-restored.png"))
                    aria-disabled=move || state.result.get().is_none().to_string()
                >
                    "Download result"
                </a>
                <a
                    class="button"
                    data-testid="download-mask"
                    href=move || state.mask_url.get()
                    download=move || base_name().map(|n| format!("{n}-mask.png"))
                    aria-disabled=move || state.mask_url.get().is_none().to_string()
                >
                    "Download mask"
                </a>
            </div>
        </section>
    }
}
