//! Entry point: mounts the app (in the browser); the native build only says where to look.

#[cfg(target_arch = "wasm32")]
fn main() {
    restora_web::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    eprintln!("restora-web is a browser app: build it with `cargo xtask build`, serve it with `cargo xtask serve`");
    std::process::exit(2);
}
