//! Opening an image: file picker, bundled samples (drop and paste are page-wide, in `app`).

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::HtmlInputElement;

use crate::dom;
use crate::engine::open_bytes;
use crate::state::AppState;

/// Reads a file the user gave and makes it the input.
pub fn open_file(state: AppState, file: web_sys::File) {
    spawn_local(async move {
        let name = file.name();
        match dom::blob_bytes(&file).await {
            Ok(bytes) => open_bytes(state, name, &bytes),
            Err(e) => state.set_error(format!("{name} could not be read: {e}")),
        }
    });
}

#[component]
pub fn Picker() -> impl IntoView {
    let state = expect_context::<AppState>();
    let on_change = move |event: web_sys::Event| {
        let input = event_target::<HtmlInputElement>(&event);
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            open_file(state, file);
        }
        // Picking the same file again must fire `change` again.
        input.set_value("");
    };
    let open_sample = move |stem: String, file: String| {
        spawn_local(async move {
            match dom::fetch_bytes(&format!("samples/{file}")).await {
                Ok(bytes) => open_bytes(state, file, &bytes),
                Err(e) => state.set_error(format!("The sample {stem} could not be loaded: {e}")),
            }
        });
    };
    view! {
        <section class="card picker">
            <h2>"1. Image"</h2>
            <label class="file-button">
                "Open an image…"
                <input
                    type="file"
                    accept="image/png,image/jpeg,image/webp,image/tiff,image/bmp,.png,.jpg,.jpeg,.webp,.tif,.tiff,.bmp"
                    data-testid="file-input"
                    on:change=on_change
                />
            </label>
            <p class="hint">"…or drop or paste one anywhere on the page, or try a sample:"</p>
            <div class="samples">
                <For
                    each=move || state.samples.get()
                    key=|sample| sample.stem.clone()
                    children=move |sample| {
                        let (stem, file) = (sample.stem.clone(), sample.file.clone());
                        let size = match (sample.width, sample.height) {
                            (Some(w), Some(h)) => format!("{w}×{h}"),
                            _ => String::new(),
                        };
                        view! {
                            <button
                                class="sample"
                                data-testid=format!("sample-{}", sample.stem)
                                title=format!("{} {size}", sample.stem)
                                on:click=move |_| open_sample(stem.clone(), file.clone())
                            >
                                <img src=format!("samples/{}", sample.file) alt=sample.stem.clone() loading="lazy" />
                                <span>{sample.stem.clone()}</span>
                            </button>
                        }
                    }
                />
            </div>
        </section>
    }
}
