//! `cargo xtask e2e`: the browser end-to-end tests (`tests/tests/browser/`) against a freshly
//! built site, with everything they need started here and stopped at the end.
//!
//! The site is built with one development model (the weights file given, by default the tiny
//! official-Restormer fixture of `../shared/fixtures`), so the browser and the native CLI can be
//! compared on the same weights without depending on what is shipped.

use std::fs;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::{build, serve};

/// The fixture used when no `--weights` is given (relative to the workspace root).
const FIXTURE: &str = "../shared/fixtures/restormer/tiny-withbias/weights.safetensors";

#[derive(clap::Args)]
pub struct Options {
    /// The weights the site serves as its only model (default: the tiny fixture of ../shared).
    #[arg(long, value_name = "FILE")]
    weights: Option<PathBuf>,
    /// Where the tests leave their screenshots.
    #[arg(long, value_name = "DIR", default_value = "e2e-screenshots")]
    screenshots: PathBuf,
    /// Pass --locked to cargo (Cargo.lock must not change).
    #[arg(long)]
    pub locked: bool,
    /// Run wasm-opt on the module as `cargo xtask build` does (when one is found), so the tests
    /// run what ships; about 4 minutes more on 2 cores. Without it the module is left as built.
    #[arg(long)]
    wasm_opt: bool,
    /// Passed to the test binary after `--` (a test-name filter, `--nocapture` ...).
    #[arg(last = true, value_name = "TEST ARGS")]
    pub test_args: Vec<String>,
}

/// Kills chromedriver (and with it any browser left) when the tests end, however they end.
struct Driver(Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    let absolute = |p: &Path| if p.is_absolute() { p.to_path_buf() } else { root.join(p) };
    let weights = absolute(options.weights.as_deref().unwrap_or(Path::new(FIXTURE)));
    if !weights.is_file() {
        return Err(format!(
            "no weights for the browser tests: {} does not exist (pass --weights FILE)",
            weights.display()
        ));
    }
    for tool in ["/usr/bin/chromium", "/usr/bin/chromedriver"] {
        if !Path::new(tool).is_file() {
            return Err(format!("{tool} is missing: apt-get install chromium chromium-driver"));
        }
    }
    let target = super::target_dir(root);

    // 1. The site, serving only this model.
    let dev_weights = target.join("e2e-weights");
    fs::create_dir_all(&dev_weights).map_err(|e| format!("cannot create {}: {e}", dev_weights.display()))?;
    fs::copy(&weights, dev_weights.join("e2e.safetensors")).map_err(|e| format!("cannot copy the weights: {e}"))?;
    let manifest = serde_json::json!({"models": [{
        "id": "e2e", "file": "e2e.safetensors", "preset": "tiny", "preview": true,
        "label": format!("end-to-end test weights ({})", weights.file_name().unwrap_or_default().to_string_lossy()),
        "tasks": ["denoise", "deblur", "dealias", "inpaint", "auto"],
    }]});
    fs::write(dev_weights.join("models.json"), manifest.to_string()).map_err(|e| format!("models.json: {e}"))?;
    let dist = target.join("e2e-dist");
    build::run(
        root,
        &build::Options {
            dist: dist.clone(),
            dev_weights: Some(dev_weights),
            wasm_opt: options.wasm_opt,
            locked: options.locked,
        },
    )?;

    // 2. The native CLI the browser's results are compared with, and the browser tests: the
    //    same build as `cargo test --workspace` (same packages, same features), so after that
    //    command nothing is compiled again.
    let mut command = super::cargo();
    command.current_dir(root).args(["test", "--workspace", "--no-run", "--message-format=json-render-diagnostics"]);
    if options.locked {
        command.arg("--locked");
    }
    let output = command.stderr(Stdio::inherit()).output().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !output.status.success() {
        return Err(format!("cargo test --workspace --no-run failed ({})", output.status));
    }
    let artifacts = String::from_utf8_lossy(&output.stdout);
    let cli = executable(&artifacts, "bin", "train-native")?;
    let tests = executable(&artifacts, "test", "browser")?;

    // 3. The server and chromedriver.
    let url = serve::spawn(&dist)?;
    let port = free_port()?;
    let driver = Command::new("/usr/bin/chromedriver")
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start chromedriver: {e}"))?;
    let driver = Driver(driver);
    wait_for_port(port, Duration::from_secs(20))?;
    println!("[xtask] site {url}, chromedriver on port {port}");

    // 4. The tests, one at a time (each drives its own browser; the machine has few cores).
    let screenshots = absolute(&options.screenshots);
    let mut command = Command::new(&tests);
    command.current_dir(root.join("tests")).args(["--ignored", "--test-threads", "1"]);
    if options.test_args.is_empty() {
        // The measurement runs only when asked for by name.
        command.args(["--skip", "measure_"]);
    }
    command.args(&options.test_args);
    command
        .env("RESTORA_E2E_URL", &url)
        .env("RESTORA_E2E_WEBDRIVER", format!("127.0.0.1:{port}"))
        .env("RESTORA_E2E_CLI", &cli)
        .env("RESTORA_E2E_WEIGHTS", &weights)
        .env("RESTORA_E2E_SCREENSHOTS", &screenshots)
        // For tests that need a server of their own, which they can stop (offline use).
        .env("RESTORA_E2E_DIST", &dist)
        .env("RESTORA_E2E_XTASK", std::env::current_exe().map_err(|e| format!("the xtask's own path: {e}"))?);
    let result = run_status(&mut command, "the browser tests");
    drop(driver);
    println!("[xtask] screenshots in {}", screenshots.display());
    result
}

/// The executable cargo built for the target `name` of kind `kind`, from its JSON messages: for
/// a `bin`, the program itself, not its unit-test harness.
fn executable(messages: &str, kind: &str, name: &str) -> Result<PathBuf, String> {
    messages
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        .filter(|m| kind != "bin" || m["profile"]["test"] == false)
        .filter(|m| m["target"]["kind"].as_array().is_some_and(|k| k.iter().any(|k| k == kind)))
        .find_map(|m| m["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("cargo built no {kind} target named {name}"))
}

pub fn run_status(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command.status().map_err(|e| format!("cannot run {what}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed ({status})"))
    }
}

fn free_port() -> Result<u16, String> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(|e| format!("no free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

fn wait_for_port(port: u16, timeout: Duration) -> Result<(), String> {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if start.elapsed() > timeout {
            return Err(format!("chromedriver did not listen on port {port} within {timeout:?}"));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(())
}
