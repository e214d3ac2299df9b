//! The image view: input (left of the divider) and result (right), the mask over the input,
//! error maps on demand; zoom with the wheel or buttons, pan by dragging (Pan tool, or whenever
//! the task paints no mask).

use leptos::html;
use leptos::prelude::*;

use crate::components::MaskCanvas;
use crate::dom;
use crate::state::AppState;

const MIN_ZOOM: f64 = 0.05;
const MAX_ZOOM: f64 = 32.0;

#[component]
pub fn Compare() -> impl IntoView {
    let state = expect_context::<AppState>();
    let viewport = NodeRef::<html::Div>::new();
    let input_canvas = NodeRef::<html::Canvas>::new();
    let size = move || state.input.get().map(|i| (i.image.width() as f64, i.image.height() as f64));
    let drag = StoredValue::new(None::<(f64, f64, f64, f64)>);

    // Fits the image to the view; `false` when the view has no size yet (not laid out).
    let fit = move || {
        let (Some(element), Some((w, h))) = (viewport.get_untracked(), size()) else { return true };
        let (vw, vh) = (element.client_width() as f64, element.client_height() as f64);
        if vw <= 0.0 || vh <= 0.0 {
            return false;
        }
        let zoom = (vw / w).min(vh / h).min(4.0);
        state.zoom.set(zoom);
        state.pan.set(((vw - w * zoom) / 2.0, (vh - h * zoom) / 2.0));
        true
    };
    // A new input: draw it and fit it to the view at once, before the browser handles another
    // event. Fitting one animation frame later let a stroke begun in between (a busy main thread
    // delays frames) start where the image was at 1:1 and, once the fit moved it, end outside it.
    Effect::new(move |_| {
        let input = state.input.get();
        let Some(canvas) = input_canvas.get() else { return };
        if let Some(input) = input {
            if let Err(e) = dom::draw_image(&canvas, &input.image) {
                state.set_error(format!("Cannot show the image: {e}"));
            }
            if !fit() {
                request_animation_frame(move || {
                    fit();
                });
            }
        }
    });
    let zoom_at = move |factor: f64, at: Option<(f64, f64)>| {
        let zoom = state.zoom.get_untracked();
        let new = (zoom * factor).clamp(MIN_ZOOM, MAX_ZOOM);
        let (px, py) = state.pan.get_untracked();
        let (cx, cy) = at.unwrap_or_else(|| {
            viewport
                .get_untracked()
                .map(|v| (v.client_width() as f64 / 2.0, v.client_height() as f64 / 2.0))
                .unwrap_or((0.0, 0.0))
        });
        state.zoom.set(new);
        state.pan.set((cx - (cx - px) * new / zoom, cy - (cy - py) * new / zoom));
    };
    let can_pan = move || state.pan_tool.get_untracked() || !state.task.get_untracked().uses_mask();
    let result_visible = move || state.result.get().is_some();
    let clip_right = move || format!("inset(0 0 0 {}%)", state.split.get());
    let map = move |result_side: bool| {
        state.metrics.get().filter(|_| state.show_error_map.get()).and_then(|m| {
            if result_side {
                m.result_map
            } else {
                Some(m.input_map)
            }
        })
    };

    view! {
        <section class="card viewer">
            <div
                class="viewport"
                class:empty=move || state.input.get().is_none()
                node_ref=viewport
                on:wheel=move |event| {
                    if state.input.get_untracked().is_none() {
                        return;
                    }
                    event.prevent_default();
                    let Some(element) = viewport.get_untracked() else { return };
                    let rect = element.get_bounding_client_rect();
                    let at = (event.client_x() as f64 - rect.left(), event.client_y() as f64 - rect.top());
                    zoom_at(if event.delta_y() < 0.0 { 1.25 } else { 0.8 }, Some(at));
                }
                on:pointerdown=move |event| {
                    if !can_pan() || event.button() != 0 {
                        return;
                    }
                    let (px, py) = state.pan.get_untracked();
                    drag.set_value(Some((event.client_x() as f64, event.client_y() as f64, px, py)));
                    if let Some(element) = viewport.get_untracked() {
                        let _ = element.set_pointer_capture(event.pointer_id());
                    }
                }
                on:pointermove=move |event| {
                    if let Some((x0, y0, px, py)) = drag.get_value() {
                        state.pan.set((px + event.client_x() as f64 - x0, py + event.client_y() as f64 - y0));
                    }
                }
                on:pointerup=move |_| drag.set_value(None)
                on:pointercancel=move |_| drag.set_value(None)
            >
                <p class="placeholder" hidden=move || state.input.get().is_some()>
                    "Open, drop or paste an image, or pick a sample."
                </p>
                <div
                    class="stage"
                    class:pixelated=move || { state.zoom.get() >= 2.0 }
                    class:can-pan=move || state.pan_tool.get() || !state.task.get().uses_mask()
                    hidden=move || state.input.get().is_none()
                    style:width=move || format!("{}px", size().map_or(0.0, |s| s.0))
                    style:height=move || format!("{}px", size().map_or(0.0, |s| s.1))
                    style:transform=move || {
                        let (x, y) = state.pan.get();
                        format!("translate({x}px, {y}px) scale({})", state.zoom.get())
                    }
                >
                    <canvas class="layer" data-testid="input-image" node_ref=input_canvas></canvas>
                    <img
                        class="layer passive"
                        alt="error map of the input"
                        src=move || map(false)
                        hidden=move || map(false).is_none()
                    />
                    <MaskCanvas />
                    <Show when=result_visible>
                        <img
                            class="layer passive"
                            data-testid="result-image"
                            alt="restored image"
                            src=move || state.result.get().map(|r| r.url)
                            data-backend=move || state.result.get().map(|r| r.backend.name())
                            data-elapsed-ms=move || state.result.get().map(|r| format!("{:.0}", r.elapsed_ms))
                            data-tiles=move || state.result.get().map(|r| r.tiles.to_string())
                            data-gpu-in-use=move || state.result.get().and_then(|r| r.memory.gpu).map(|m| m.0.to_string())
                            data-gpu-reserved=move || state.result.get().and_then(|r| r.memory.gpu).map(|m| m.1.to_string())
                            data-page-memory=move || state.result.get().map(|r| r.memory.page.to_string())
                            data-worker-memory=move || state.result.get().and_then(|r| r.memory.worker).map(|m| m.to_string())
                            style:clip-path=clip_right
                        />
                        <img
                            class="layer passive"
                            alt="error map of the result"
                            src=move || map(true)
                            hidden=move || map(true).is_none()
                            style:clip-path=clip_right
                        />
                        <div class="divider" style:left=move || format!("{}%", state.split.get())></div>
                    </Show>
                </div>
            </div>
            <div class="view-controls">
                <label class="field inline">
                    <span>"Before / after"</span>
                    <input
                        type="range"
                        min="0"
                        max="100"
                        step="1"
                        data-testid="compare-split"
                        disabled=move || !result_visible()
                        prop:value=move || state.split.get().to_string()
                        on:input=move |ev| {
                            if let Ok(value) = event_target_value(&ev).parse::<f64>() {
                                state.split.set(value.clamp(0.0, 100.0));
                            }
                        }
                    />
                </label>
                <label class="field inline">
                    <input
                        type="checkbox"
                        data-testid="error-map-toggle"
                        disabled=move || state.metrics.get().is_none()
                        prop:checked=move || state.show_error_map.get()
                        on:change=move |ev| state.show_error_map.set(event_target_checked(&ev))
                    />
                    <span>"Error map (vs the original)"</span>
                </label>
                <div class="buttons zoom">
                    <button title="Zoom out" on:click=move |_| zoom_at(0.8, None)>"−"</button>
                    <span class="zoom-level">{move || format!("{:.0} %", state.zoom.get() * 100.0)}</span>
                    <button title="Zoom in" on:click=move |_| zoom_at(1.25, None)>"+"</button>
                    <button on:click=move |_| {
                        fit();
                    }>"Fit"</button>
                    <button on:click=move |_| {
                        let zoom = state.zoom.get_untracked();
                        zoom_at(1.0 / zoom, None)
                    }>"1:1"</button>
                </div>
            </div>
        </section>
    }
}
