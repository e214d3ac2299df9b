//! The canvas the mask is painted on, laid over the image at its pixel size. Pointer events
//! (mouse, pen, touch) in CSS pixels are mapped onto image pixels through the canvas's on-screen
//! box, so zoom and pan need no special case.

use leptos::html;
use leptos::prelude::*;
use wasm_bindgen::JsValue;
use web_sys::PointerEvent;

use crate::brush::{to_image_coords, MaskEditor, Rect};
use crate::dom;
use crate::state::AppState;

/// Colour of missing pixels in the overlay.
const MASK_RGB: [u8; 3] = [255, 32, 96];

#[component]
pub fn MaskCanvas() -> impl IntoView {
    let state = expect_context::<AppState>();
    let canvas = NodeRef::<html::Canvas>::new();
    let drawing = StoredValue::new(false);
    let painting = move || state.input.get().is_some() && state.task.get().uses_mask() && !state.pan_tool.get();

    let draw = move |editor: &MaskEditor, rect: Rect| {
        let Some(canvas) = canvas.get_untracked() else { return };
        if rect.width == 0 || rect.height == 0 {
            return;
        }
        if let Err(e) =
            dom::put_rgba(&canvas, &editor.overlay_rgba(rect, MASK_RGB), rect.x, rect.y, rect.width, rect.height)
        {
            web_sys::console::warn_1(&e.into());
        }
    };
    // Whole redraw when the mask changes other than by a stroke in progress.
    Effect::new(move |_| {
        state.mask_rev.get();
        let Some(element) = canvas.get() else { return };
        state.mask.with_value(|m| match m {
            Some(editor) => {
                element.set_width(editor.width());
                element.set_height(editor.height());
                draw(editor, editor.full());
            }
            None => {
                element.set_width(1);
                element.set_height(1);
            }
        });
    });

    let stroke_to = move |event: &PointerEvent| {
        let Some(element) = canvas.get_untracked() else { return };
        let rect = element.get_bounding_client_rect();
        // clientX / clientY as doubles (web-sys exposes them as integers).
        let client = |key: &str| {
            js_sys::Reflect::get(event, &JsValue::from_str(key)).ok().and_then(|v| v.as_f64()).unwrap_or(0.0)
        };
        let (cx, cy) = (client("clientX"), client("clientY"));
        state.mask.update_value(|m| {
            if let Some(editor) = m {
                let (x, y) = to_image_coords(
                    (cx, cy),
                    (rect.left(), rect.top()),
                    (rect.width(), rect.height()),
                    (editor.width(), editor.height()),
                );
                if let Some(dirty) = editor.stroke_to(x, y) {
                    draw(editor, dirty);
                }
            }
        });
    };
    let end_stroke = move |event: &PointerEvent| {
        if drawing.get_value() {
            drawing.set_value(false);
            if let Some(element) = canvas.get_untracked() {
                let _ = element.release_pointer_capture(event.pointer_id());
            }
            state.edit_mask(|m| m.end_stroke());
        }
    };

    view! {
        <canvas
            node_ref=canvas
            class="layer mask-layer"
            class:painting=painting
            data-testid="mask-canvas"
            style:opacity=move || state.mask_opacity.get().to_string()
            on:pointerdown=move |event| {
                if !painting() || event.button() != 0 {
                    return;
                }
                event.prevent_default();
                event.stop_propagation();
                if let Some(element) = canvas.get_untracked() {
                    let _ = element.set_pointer_capture(event.pointer_id());
                }
                drawing.set_value(true);
                let (size, erase) = (state.brush_size.get_untracked() as f32, state.eraser.get_untracked());
                state.mask.update_value(|m| {
                    if let Some(editor) = m {
                        editor.begin_stroke(size, erase);
                    }
                });
                stroke_to(&event);
            }
            on:pointermove=move |event| {
                if drawing.get_value() {
                    event.prevent_default();
                    stroke_to(&event);
                }
            }
            on:pointerup=move |event| end_stroke(&event)
            on:pointercancel=move |event| end_stroke(&event)
        ></canvas>
    }
}
