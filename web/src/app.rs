//! The page: layout, start-up (model list, samples, WebGPU self-test) and page-wide input
//! (paste, drop, keyboard shortcuts).

use leptos::ev;
use leptos::prelude::*;
use leptos::task::spawn_local;
use wasm_bindgen::JsCast;

use crate::components::{Compare, Demo, MaskTools, Picker, Status, Toolbar};
use crate::dom;
use crate::engine::{self, EngineHandle};
use crate::manifest::Manifest;
use crate::state::{AppState, SampleList};

#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new();
    let engine = EngineHandle::new();
    provide_context(state);
    provide_context(engine);

    spawn_local(async move {
        let manifest = dom::fetch_text("weights/models.json")
            .await
            .and_then(|text| Manifest::parse(&text).map_err(|e| e.to_string()));
        if let Err(e) = &manifest {
            state.set_error(format!("The model list could not be read: {e}"));
        }
        let listed = manifest.is_ok();
        state.manifest.set(Some(manifest));
        if listed {
            engine::keep_model_offline(state).await;
        }
    });
    spawn_local(async move {
        let list = dom::fetch_text("samples/samples.json")
            .await
            .and_then(|text| serde_json::from_str::<SampleList>(&text).map_err(|e| format!("samples.json: {e}")));
        match list {
            Ok(list) => {
                if let Some(first) = list.samples.first() {
                    state.demo_sample.set(first.stem.clone());
                }
                state.samples.set(list.samples);
            }
            Err(e) => web_sys::console::warn_1(&format!("no samples: {e}").into()),
        }
    });

    // The WebGPU self-test runs at start-up unless the CPU is chosen, and later if it is
    // chosen again.
    Effect::new(move |_| {
        if state.backend.get().wants_gpu() {
            engine::probe_if_wanted(state, engine);
        }
    });
    // Which model the chosen task would use.
    Effect::new(move |_| {
        let task = state.task.get();
        let info = match state.manifest.get() {
            Some(Ok(manifest)) => match manifest.choose(task) {
                Some(model) => format!("Model: {}", model.summary(task)),
                None => Manifest::missing_message(task),
            },
            Some(Err(_)) => String::new(),
            None => "Loading the model list…".into(),
        };
        state.model_info.set(info);
    });

    // Paste an image from the clipboard anywhere on the page.
    let paste = window_event_listener(ev::paste, move |event| {
        let Some(files) = event.clipboard_data().and_then(|d| d.files()) else { return };
        if let Some(file) = files.get(0) {
            event.prevent_default();
            crate::components::open_file(state, file);
        }
    });
    // Drop a file anywhere on the page.
    let dragover = window_event_listener(ev::dragover, |event| event.prevent_default());
    let drop = window_event_listener(ev::drop, move |event| {
        event.prevent_default();
        if let Some(file) = event.data_transfer().and_then(|d| d.files()).and_then(|f| f.get(0)) {
            crate::components::open_file(state, file);
        }
    });
    // Undo / redo from the keyboard (outside text fields).
    let keys = window_event_listener(ev::keydown, move |event| {
        let in_field = event
            .target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
            .is_some_and(|e| matches!(e.tag_name().as_str(), "INPUT" | "SELECT" | "TEXTAREA"));
        if in_field || !(event.ctrl_key() || event.meta_key()) {
            return;
        }
        let key = event.key().to_ascii_lowercase();
        let changed = match (key.as_str(), event.shift_key()) {
            ("z", false) => state.edit_mask(|m| m.undo().is_some()),
            ("z", true) | ("y", _) => state.edit_mask(|m| m.redo().is_some()),
            _ => None,
        };
        if changed.is_some() {
            event.prevent_default();
        }
    });
    on_cleanup(move || {
        paste.remove();
        dragover.remove();
        drop.remove();
        keys.remove();
    });

    view! {
        <header class="topbar">
            <h1>"Restora"</h1>
            <p class="tagline">
                "Denoise, deblur, anti-alias and inpaint photos in your browser. Images never leave this page."
            </p>
        </header>
        <main class="layout">
            <aside class="panel">
                <Picker />
                <Toolbar />
                <MaskTools />
                <Demo />
            </aside>
            <section class="workspace">
                <Status />
                <Compare />
            </section>
        </main>
    }
}
