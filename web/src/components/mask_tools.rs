//! The inpainting mask's tools: brush size, eraser, pan, undo / redo, clear, a mask file, opacity.

use leptos::prelude::*;
use leptos::task::spawn_local;
use web_sys::HtmlInputElement;

use crate::dom;
use crate::engine::open_mask_bytes;
use crate::state::AppState;

#[component]
pub fn MaskTools() -> impl IntoView {
    let state = expect_context::<AppState>();
    let can = move |f: fn(&crate::brush::MaskEditor) -> bool| {
        state.mask_rev.get();
        state.mask.with_value(|m| m.as_ref().is_some_and(f))
    };
    let on_mask_file = move |event: web_sys::Event| {
        let input = event_target::<HtmlInputElement>(&event);
        if let Some(file) = input.files().and_then(|files| files.get(0)) {
            spawn_local(async move {
                let name = file.name();
                match dom::blob_bytes(&file).await {
                    Ok(bytes) => open_mask_bytes(state, name, &bytes),
                    Err(e) => state.set_error(format!("{name} could not be read: {e}")),
                }
            });
        }
        // Opening the same file again must fire `change` again.
        input.set_value("");
    };
    view! {
        <section class="card mask-tools" class:inactive=move || !state.task.get().uses_mask()>
            <h2>"Mask"</h2>
            <p class="hint">
                "For Inpaint (and Auto): paint over what should be filled, or open a mask image (white = fill, the image's size). Ctrl+Z / Ctrl+Shift+Z undo and redo."
            </p>
            <label class="field">
                <span>"Brush " {move || state.brush_size.get()} " px"</span>
                <input
                    type="range"
                    min="1"
                    max="128"
                    step="1"
                    data-testid="brush-size"
                    prop:value=move || state.brush_size.get().to_string()
                    on:input=move |ev| {
                        if let Ok(size) = event_target_value(&ev).parse::<u32>() {
                            state.brush_size.set(size.clamp(1, 128));
                        }
                    }
                />
            </label>
            <div class="buttons">
                <button
                    data-testid="eraser"
                    aria-pressed=move || state.eraser.get().to_string()
                    class:active=move || state.eraser.get()
                    on:click=move |_| state.eraser.update(|e| *e = !*e)
                >
                    "Eraser"
                </button>
                <button
                    data-testid="pan-tool"
                    aria-pressed=move || state.pan_tool.get().to_string()
                    class:active=move || state.pan_tool.get()
                    title="Drag to move the image instead of painting"
                    on:click=move |_| state.pan_tool.update(|p| *p = !*p)
                >
                    "Pan"
                </button>
                <button
                    data-testid="undo"
                    disabled=move || !can(|e| e.can_undo())
                    on:click=move |_| {
                        state.edit_mask(|m| m.undo());
                    }
                >
                    "Undo"
                </button>
                <button
                    data-testid="redo"
                    disabled=move || !can(|e| e.can_redo())
                    on:click=move |_| {
                        state.edit_mask(|m| m.redo());
                    }
                >
                    "Redo"
                </button>
                <button
                    data-testid="clear-mask"
                    on:click=move |_| {
                        state.edit_mask(|m| m.clear());
                    }
                >
                    "Clear"
                </button>
            </div>
            <label class="file-button">
                "Open a mask…"
                <input
                    type="file"
                    accept="image/png,image/bmp,image/tiff,image/webp,.png,.bmp,.tif,.tiff,.webp"
                    title="White = fill, the image's size (as train-native restore --mask)"
                    data-testid="mask-file"
                    on:change=on_mask_file
                />
            </label>
            <label class="field">
                <span>"Mask opacity " {move || format!("{:.0} %", state.mask_opacity.get() * 100.0)}</span>
                <input
                    type="range"
                    min="0"
                    max="100"
                    step="1"
                    data-testid="mask-opacity"
                    prop:value=move || (state.mask_opacity.get() * 100.0).round().to_string()
                    on:input=move |ev| {
                        if let Ok(value) = event_target_value(&ev).parse::<f64>() {
                            state.mask_opacity.set((value / 100.0).clamp(0.0, 1.0));
                        }
                    }
                />
            </label>
        </section>
    }
}
