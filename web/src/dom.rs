//! Small browser helpers: timers, fetch, blobs, canvases. Everything that touches `web_sys`
//! outside the components goes through here.

use std::future::Future;
use std::pin::pin;
use std::task::Poll;

use js_sys::{Promise, Uint8Array};
use restora_model::Image;
use wasm_bindgen::prelude::*;
use wasm_bindgen::{Clamped, JsCast};
use wasm_bindgen_futures::JsFuture;
use web_sys::{Blob, BlobPropertyBag, HtmlCanvasElement, ImageData, Response, Url};

pub fn window() -> web_sys::Window {
    web_sys::window().expect("a browser window")
}

/// `performance.now()` in milliseconds.
pub fn now_ms() -> f64 {
    window().performance().map(|p| p.now()).unwrap_or_else(js_sys::Date::now)
}

/// Bytes of this wasm instance's memory (the page's or the worker's). Wasm memory only grows,
/// so this is also the instance's peak so far: what counts against the browser's 4 GiB limit.
pub fn wasm_memory_bytes() -> u64 {
    let memory: js_sys::WebAssembly::Memory = wasm_bindgen::memory().unchecked_into();
    memory.buffer().unchecked_into::<js_sys::ArrayBuffer>().byte_length() as u64
}

/// Resolves after `ms` milliseconds (0: after the browser has had a turn, so it can repaint and
/// handle input between tiles).
pub async fn sleep(ms: i32) {
    let promise = Promise::new(&mut |resolve, _| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms);
    });
    let _ = JsFuture::from(promise).await;
}

/// Runs `future` for at most `ms` milliseconds; `None` on timeout (the future is dropped, though
/// GPU work it started may go on).
pub async fn with_timeout<T>(future: impl Future<Output = T>, ms: i32) -> Option<T> {
    let mut future = pin!(future);
    let mut timer = pin!(sleep(ms));
    std::future::poll_fn(move |cx| {
        if let Poll::Ready(value) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(value));
        }
        if timer.as_mut().poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    })
    .await
}

/// The message of a JS error value.
pub fn js_error(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}

/// GETs a same-origin file and returns the response, failing on HTTP errors.
pub async fn fetch(url: &str) -> Result<Response, String> {
    let response = JsFuture::from(window().fetch_with_str(url))
        .await
        .map_err(|e| format!("could not load {url}: {}", js_error(&e)))?;
    let response: Response = response.dyn_into().map_err(|_| format!("could not load {url}"))?;
    if !response.ok() {
        return Err(format!("could not load {url}: HTTP {}", response.status()));
    }
    Ok(response)
}

/// The whole body of a response.
pub async fn response_bytes(response: &Response) -> Result<Vec<u8>, String> {
    let promise = response.array_buffer().map_err(|e| js_error(&e))?;
    let buffer = JsFuture::from(promise).await.map_err(|e| js_error(&e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, String> {
    response_bytes(&fetch(url).await?).await
}

pub async fn fetch_text(url: &str) -> Result<String, String> {
    let response = fetch(url).await?;
    let promise = response.text().map_err(|e| js_error(&e))?;
    let text = JsFuture::from(promise).await.map_err(|e| js_error(&e))?;
    text.as_string().ok_or_else(|| format!("{url} is not text"))
}

/// The bytes of a file the user picked, dropped or pasted.
pub async fn blob_bytes(blob: &Blob) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(blob.array_buffer()).await.map_err(|e| js_error(&e))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// A `blob:` URL holding `bytes`; give it back with [`revoke`].
pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let array = Uint8Array::from(bytes);
    let parts = js_sys::Array::of1(&array);
    let options = BlobPropertyBag::new();
    options.set_type(mime);
    let blob = Blob::new_with_u8_array_sequence_and_options(&parts, &options).map_err(|e| js_error(&e))?;
    Url::create_object_url_with_blob(&blob).map_err(|e| js_error(&e))
}

pub fn revoke(url: &str) {
    if url.starts_with("blob:") {
        let _ = Url::revoke_object_url(url);
    }
}

/// Sizes `canvas` to the image and draws it (the exact values the model sees, no colour
/// management).
pub fn draw_image(canvas: &HtmlCanvasElement, image: &Image) -> Result<(), String> {
    let (w, h) = (image.width(), image.height());
    if canvas.width() != w || canvas.height() != h {
        canvas.set_width(w);
        canvas.set_height(h);
    }
    let mut rgba = Vec::with_capacity(w as usize * h as usize * 4);
    for px in image.data().chunks_exact(3) {
        rgba.extend(px.iter().map(|v| (v.clamp(0.0, 1.0) * 255.0).round() as u8));
        rgba.push(255);
    }
    put_rgba(canvas, &rgba, 0, 0, w, h)
}

/// Writes RGBA pixels into a rectangle of `canvas`.
pub fn put_rgba(canvas: &HtmlCanvasElement, rgba: &[u8], x: u32, y: u32, w: u32, h: u32) -> Result<(), String> {
    let context = canvas
        .get_context("2d")
        .map_err(|e| js_error(&e))?
        .and_then(|c| c.dyn_into::<web_sys::CanvasRenderingContext2d>().ok())
        .ok_or("no 2D canvas context")?;
    let data = ImageData::new_with_u8_clamped_array_and_sh(Clamped(rgba), w, h).map_err(|e| js_error(&e))?;
    context.put_image_data(&data, x as f64, y as f64).map_err(|e| js_error(&e))
}

/// The page's query string (`?backend=cpu`).
pub fn query() -> String {
    window().location().search().unwrap_or_default()
}

/// Last resort after a panic (the wasm instance cannot go on): shows the message in the
/// `error` element, with what to do.
pub fn show_fatal(message: &str) {
    let Some(document) = web_sys::window().and_then(|w| w.document()) else { return };
    let Ok(Some(element)) = document.query_selector("[data-testid=error]") else { return };
    let hint = if message.contains("memory allocation") || message.contains("out of memory") {
        "Out of memory. Reload the page and choose smaller tiles (or a smaller image)."
    } else {
        "The app stopped after an internal error. Reload the page; to avoid WebGPU, open it with ?backend=cpu."
    };
    element.set_text_content(Some(&format!("{hint} ({message})")));
    if let Some(parent) = element.parent_element() {
        let _ = parent.remove_attribute("hidden");
    }
}

/// Reads a JS property by path (`["limits", "maxBufferSize"]`); `undefined` when missing.
pub fn get_path(value: &JsValue, path: &[&str]) -> JsValue {
    let mut current = value.clone();
    for key in path {
        current = js_sys::Reflect::get(&current, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED);
        if current.is_undefined() || current.is_null() {
            return JsValue::UNDEFINED;
        }
    }
    current
}
