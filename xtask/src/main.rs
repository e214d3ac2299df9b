//! `cargo xtask build`: the web app into `dist/`; `cargo xtask serve`: `dist/` on localhost.
//!
//! The alias lives in `.cargo/config.toml`. See DEVELOPERS.md for the whole workflow.

mod build;
mod e2e;
mod serve;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// The command line. Every command has `--help`; the doc comments below are its text.
#[derive(Parser)]
#[command(name = "cargo xtask", bin_name = "cargo xtask", about = "Restora's build commands", long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Builds the web app into DIR (default dist/).
    ///
    /// Builds restora-web for wasm32-unknown-unknown (release), runs wasm-bindgen (the library,
    /// pinned to the wasm-bindgen version of Cargo.lock), wasm-opt -O2 when it is on PATH, and
    /// copies static/ into DIR. The wasm build uses $CARGO_TARGET_DIR, else target/.
    Build(build::Options),
    /// Serves DIR (default dist/) over HTTP, building it first when it holds no site yet.
    ///
    /// Correct MIME types (application/wasm), the precompressed .br and .gz copies, ranges and
    /// conditional requests. --port 0 picks a free port; the first line printed is the URL.
    Serve(serve::Options),
    /// All the tests: `cargo test --workspace`, then `cargo xtask e2e`.
    Test(e2e::Options),
    /// The browser end-to-end tests in headless Chromium (WebGPU on SwiftShader, and the CPU).
    ///
    /// Builds the site with FILE as its only model (default: the tiny official-Restormer fixture
    /// in ../shared/fixtures) into $CARGO_TARGET_DIR/e2e-dist, builds train-native, serves the
    /// site, starts chromedriver and runs the `browser` tests of restora-tests. Screenshots go to
    /// DIR (default e2e-screenshots/).
    E2e(e2e::Options),
}

/// The workspace root (the xtask lives in `<root>/xtask`).
fn root() -> PathBuf {
    // Cargo sets the variable when it runs the binary too; that one is right even when the binary
    // was built from another clone sharing the target folder (same artifact, other path).
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_else(|| env!("CARGO_MANIFEST_DIR").into());
    PathBuf::from(manifest_dir).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn main() -> ExitCode {
    let result = match Cli::parse().command {
        Command::Build(o) => build::run(&root(), &o),
        Command::Serve(o) => {
            // On a fresh clone the site is built first, so `cargo xtask serve` is the one command.
            let dist = o.dist(&root());
            if !dist.join("index.html").is_file() {
                eprintln!("[xtask] {} has no site yet: building it first", dist.display());
                build::run(&root(), &build::Options::new(dist)).and_then(|()| serve::run(&root(), &o))
            } else {
                serve::run(&root(), &o)
            }
        }
        Command::E2e(o) => e2e::run(&root(), &o),
        // The README's test command: every test of the workspace, then the browser tests.
        Command::Test(o) => {
            let mut command = cargo();
            command.current_dir(root()).args(["test", "--workspace"]);
            if o.locked {
                command.arg("--locked");
            }
            e2e::run_status(&mut command, "cargo test --workspace").and_then(|()| e2e::run(&root(), &o))
        }
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
fn target_dir(root: &Path) -> PathBuf {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_well_formed() {
        Cli::command().debug_assert();
    }

    #[test]
    fn flags_parse_as_before() {
        let parse = |args: &[&str]| Cli::try_parse_from(std::iter::once("xtask").chain(args.iter().copied()));
        let Ok(Cli { command: Command::Build(o) }) = parse(&["build"]) else { panic!("build") };
        assert!(o.wasm_opt && !o.locked && o.dist == Path::new("dist") && o.dev_weights.is_none());
        let Ok(Cli { command: Command::Build(o) }) =
            parse(&["build", "--no-wasm-opt", "--locked", "--dist", "d", "--dev-weights", "w"])
        else {
            panic!("build with flags")
        };
        assert!(
            !o.wasm_opt && o.locked && o.dist == Path::new("d") && o.dev_weights.as_deref() == Some(Path::new("w"))
        );
        assert!(matches!(
            parse(&["serve", "--port", "0", "--quiet", "--host", "0.0.0.0"]),
            Ok(Cli { command: Command::Serve(_) })
        ));
        assert!(parse(&["serve", "--port", "http"]).is_err(), "a port must be a number");
        assert!(parse(&["build", "--bogus"]).is_err(), "unknown flags are refused");
        assert!(parse(&["frobnicate"]).is_err(), "unknown commands are refused");
        let Ok(Cli { command: Command::E2e(o) }) = parse(&["e2e", "--locked", "--", "measure", "--nocapture"]) else {
            panic!("e2e")
        };
        assert!(o.locked);
        assert_eq!(o.test_args, ["measure", "--nocapture"]);
    }
}
