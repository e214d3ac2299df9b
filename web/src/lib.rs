//! Restora in the browser: a Leptos app (client-side rendered) that restores photos with the
//! model crate on WebGPU, or on the CPU when WebGPU is missing or fails its self-test.
//!
//! The modules at the top are plain Rust and build (and are tested) natively; the app itself
//! (`app`, `components`, `engine`, `state`, `weights`, `dom`) is compiled for wasm32 only, so a
//! native `cargo test --workspace` does not build Leptos, web-sys or burn's wgpu backend.

pub mod backend_choice;
pub mod brush;
pub mod demo_params;
/// `weights/models.json`, shared with `train-native`.
pub use restora_model::manifest;

#[cfg(target_arch = "wasm32")]
mod app;
#[cfg(target_arch = "wasm32")]
mod components;
#[cfg(target_arch = "wasm32")]
mod dom;
#[cfg(target_arch = "wasm32")]
mod engine;
#[cfg(target_arch = "wasm32")]
mod state;
#[cfg(target_arch = "wasm32")]
mod weights;
#[cfg(target_arch = "wasm32")]
mod worker;

#[cfg(target_arch = "wasm32")]
pub use worker::restora_worker_start;

/// Mounts the app on the page's `<body>`; a panic is logged and shown in the `error` element.
/// Does nothing in the CPU worker, which loads the same module (see `worker`).
#[cfg(target_arch = "wasm32")]
pub fn mount() {
    if web_sys::window().is_none() {
        return;
    }
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        dom::show_fatal(&info.to_string());
    }));
    leptos::mount::mount_to_body(app::App);
}
