//! `cargo xtask build`: the web app into `dist/`; `cargo xtask serve`: `dist/` on localhost.
//!
//! The alias lives in `.cargo/config.toml`. See DEVELOPERS.md for the whole workflow.

mod build;
mod e2e;
mod serve;

use std::path::PathBuf;
use std::process::ExitCode;

const USAGE: &str = "\
usage:
  cargo xtask build [--dist DIR] [--dev-weights DIR] [--no-wasm-opt] [--locked]
      Builds restora-web for wasm32-unknown-unknown (release), runs wasm-bindgen (the library,
      pinned to the wasm-bindgen version of Cargo.lock), wasm-opt -O2 when it is on PATH, and
      copies static/ into DIR (default dist/). The wasm build uses $CARGO_TARGET_DIR, else target/.
      --dev-weights DIR  serve DIR/models.json and the files it lists instead of
                         static/weights/models.json (development only; never shipped)
  cargo xtask serve [--port 8080] [--dist DIR] [--host 127.0.0.1] [--quiet]
      Serves DIR (default dist/) over HTTP with correct MIME types (application/wasm).
      --port 0 picks a free port; the first line printed is the URL. Builds DIR first when it
      holds no site yet.
  cargo xtask test [--locked] [E2E OPTIONS]
      All the tests: `cargo test --workspace`, then `cargo xtask e2e`.
  cargo xtask e2e [--weights FILE] [--screenshots DIR] [--locked] [-- TEST FILTER]
      The browser end-to-end tests: builds the site with FILE as its only model (default: the
      tiny official-Restormer fixture in ../shared/fixtures) into $CARGO_TARGET_DIR/e2e-dist,
      builds train-native, serves the site, starts chromedriver and runs the `browser` tests of
      restora-tests (headless Chromium, WebGPU on SwiftShader). Screenshots go to DIR
      (default e2e-screenshots/).";

/// The workspace root (the xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    // Cargo sets the variable when it runs the binary too; that one is right even when the binary
    // was built from another clone sharing the target folder (same artifact, other path).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(manifest_dir).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let result = match args.next().as_deref() {
        Some("build") => build::Options::parse(args).and_then(|o| build::run(&root(), &o)),
        Some("serve") => serve::Options::parse(args).and_then(|o| {
            // On a fresh clone the site is built first, so `cargo xtask serve` is the one command.
            let dist = o.dist(&root());
            if !dist.join("index.html").is_file() {
                eprintln!("[xtask] {} has no site yet: building it first", dist.display());
                build::run(&root(), &build::Options::new(dist))?;
            }
            serve::run(&root(), &o)
        }),
        Some("e2e") => e2e::Options::parse(args).and_then(|o| e2e::run(&root(), &o)),
        // The README's test command: every test of the workspace, then the browser tests.
        Some("test") => e2e::Options::parse(args).and_then(|o| {
            let mut command = cargo();
            command.current_dir(root()).args(["test", "--workspace"]);
            if o.locked {
                command.arg("--locked");
            }
            e2e::run_status(&mut command, "cargo test --workspace")?;
            e2e::run(&root(), &o)
        }),
        Some("help" | "--help" | "-h") => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command {other:?}\n{USAGE}")),
        None => Err(USAGE.to_string()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Where cargo builds: `$CARGO_TARGET_DIR` (absolute, or relative to the root), else `target/`.
fn target_dir(root: &std::path::Path) -> PathBuf {
    let dir = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    if dir.is_absolute() {
        dir
    } else {
        root.join(dir)
    }
}

/// The cargo that runs this xtask.
fn cargo() -> std::process::Command {
    std::process::Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// The value after a flag, or a message naming the flag.
fn value(flag: &str, args: &mut impl Iterator<Item = String>) -> Result<String, String> {
    args.next().ok_or_else(|| format!("{flag} needs a value"))
}
