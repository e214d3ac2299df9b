//! `cargo xtask build`: restora-web → wasm32 → wasm-bindgen → (wasm-opt) → `dist/` with static/.
//!
//! `dist/` is assembled in a sibling staging folder and swapped in at the end, so a failed build
//! leaves the previous `dist/` as it was.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use serde_json::Value;

/// The wasm-bindgen version this xtask's library speaks; the `wasm-bindgen` crate the app is
/// compiled against must be the same (their schemas must match exactly).
const BINDGEN_VERSION: &str = "0.2.130";
/// The web crate's binary: `target/wasm32-unknown-unknown/release/<BIN>.wasm`.
const BIN: &str = "restora-web";
/// Base name of the generated JS and wasm (`restora_web.js`, `restora_web_bg.wasm`).
const OUT_NAME: &str = "restora_web";
/// A file marking a folder as one this command made (and may therefore replace).
const MARKER: &str = ".restora-dist";
const TARGET: &str = "wasm32-unknown-unknown";
/// Added to the wasm32 `rustflags` of `.cargo/config.toml` (cargo appends `--config` arrays):
/// WebAssembly SIMD for the CPU backend's kernels. Every browser with WebGPU has it.
const SIMD_CONFIG: &str = r#"target.wasm32-unknown-unknown.rustflags=["-C", "target-feature=+simd128"]"#;

#[derive(clap::Args)]
pub struct Options {
    /// The folder to build into (replaced only if an earlier build made it).
    #[arg(long, value_name = "DIR", default_value = "dist")]
    pub dist: PathBuf,
    /// Serve DIR/models.json and the files it lists instead of static/weights/models.json
    /// (development only; never ship such a dist/).
    #[arg(long, value_name = "DIR")]
    pub dev_weights: Option<PathBuf>,
    /// Skip wasm-opt even when it is on PATH (faster iterations).
    #[arg(long = "no-wasm-opt", action = clap::ArgAction::SetFalse)]
    pub wasm_opt: bool,
    /// Pass --locked to cargo (Cargo.lock must not change).
    #[arg(long)]
    pub locked: bool,
}

impl Options {
    /// The defaults, building into `dist`.
    pub fn new(dist: PathBuf) -> Self {
        Self { dist, dev_weights: None, wasm_opt: true, locked: false }
    }
}

pub fn run(root: &Path, options: &Options) -> Result<(), String> {
    let start = Instant::now();
    check_bindgen_version(root)?;
    let dist = if options.dist.is_absolute() { options.dist.clone() } else { root.join(&options.dist) };
    check_replaceable(&dist)?;

    // 1. The wasm binary.
    let step = Instant::now();
    let mut command = super::cargo();
    command.current_dir(root).args(["build", "--release", "--target", TARGET, "-p", "restora-web", "--bin", BIN]);
    command.args(["--config", SIMD_CONFIG]);
    if options.locked {
        command.arg("--locked");
    }
    let status = command.status().map_err(|e| format!("cannot run cargo: {e}"))?;
    if !status.success() {
        return Err(format!("cargo build for {TARGET} failed ({status})"));
    }
    let wasm = super::target_dir(root).join(TARGET).join("release").join(format!("{BIN}.wasm"));
    if !wasm.is_file() {
        return Err(format!("cargo built, but {} is missing", wasm.display()));
    }
    println!("[xtask] cargo build ({TARGET}, release): {:.1} s", step.elapsed().as_secs_f64());

    // 2. wasm-bindgen into a staging folder beside dist/.
    let staging =
        dist.with_file_name(format!(".{}.partial", dist.file_name().and_then(|n| n.to_str()).unwrap_or("dist")));
    if staging.exists() {
        fs::remove_dir_all(&staging).map_err(|e| format!("cannot clear {}: {e}", staging.display()))?;
    }
    fs::create_dir_all(&staging).map_err(|e| format!("cannot create {}: {e}", staging.display()))?;
    let step = Instant::now();
    wasm_bindgen_cli_support::Bindgen::new()
        .input_path(&wasm)
        .out_name(OUT_NAME)
        .web(true)
        .map_err(|e| format!("wasm-bindgen: {e:#}"))?
        .typescript(false)
        .generate(&staging)
        .map_err(|e| format!("wasm-bindgen on {}: {e:#}", wasm.display()))?;
    println!("[xtask] wasm-bindgen {BINDGEN_VERSION}: {:.1} s", step.elapsed().as_secs_f64());

    // 3. wasm-opt, when available.
    let bg = staging.join(format!("{OUT_NAME}_bg.wasm"));
    if options.wasm_opt {
        optimise(&bg)?;
    }

    // 4. Static files, weights, the samples list.
    let static_dir = root.join("static");
    copy_static(&static_dir, &staging)?;
    copy_weights(&static_dir.join("weights"), options.dev_weights.as_deref(), &staging.join("weights"))?;
    write_samples_list(&static_dir.join("samples"), &staging.join("samples"))?;
    fs::write(staging.join(MARKER), "made by `cargo xtask build`; replaced by the next build\n")
        .map_err(|e| format!("cannot write the marker: {e}"))?;

    // 5. Swap.
    if dist.exists() {
        fs::remove_dir_all(&dist).map_err(|e| format!("cannot remove the old {}: {e}", dist.display()))?;
    }
    fs::rename(&staging, &dist).map_err(|e| format!("cannot move {} to {}: {e}", staging.display(), dist.display()))?;

    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "[xtask] {} ready in {:.1} s: {} (wasm {}, js {}, total {})",
        dist.display(),
        start.elapsed().as_secs_f64(),
        "index.html",
        megabytes(size(&dist.join(format!("{OUT_NAME}_bg.wasm")))),
        megabytes(size(&dist.join(format!("{OUT_NAME}.js")))),
        megabytes(folder_size(&dist)),
    );
    Ok(())
}

/// The `wasm-bindgen` crate in Cargo.lock must be the version of the library linked here.
fn check_bindgen_version(root: &Path) -> Result<(), String> {
    let lock = fs::read_to_string(root.join("Cargo.lock")).map_err(|e| format!("cannot read Cargo.lock: {e}"))?;
    let mut lines = lock.lines();
    while let Some(line) = lines.next() {
        if line.trim() == "name = \"wasm-bindgen\"" {
            let version = lines.next().and_then(|l| l.trim().strip_prefix("version = \"")?.strip_suffix('"'));
            return match version {
                Some(BINDGEN_VERSION) => Ok(()),
                Some(other) => Err(format!(
                    "Cargo.lock has wasm-bindgen {other}, but the xtask links wasm-bindgen-cli-support \
                     {BINDGEN_VERSION}: pin both to the same exact version (xtask/Cargo.toml, web/Cargo.toml)"
                )),
                None => Err("cannot read the wasm-bindgen version in Cargo.lock".into()),
            };
        }
    }
    Err("wasm-bindgen is not in Cargo.lock: is restora-web a workspace member?".into())
}

/// Refuses to replace a folder this command did not make.
fn check_replaceable(dist: &Path) -> Result<(), String> {
    if !dist.exists() {
        return Ok(());
    }
    if !dist.is_dir() {
        return Err(format!("{} exists and is not a folder", dist.display()));
    }
    let empty = fs::read_dir(dist).map(|mut d| d.next().is_none()).unwrap_or(false);
    if empty || dist.join(MARKER).is_file() {
        Ok(())
    } else {
        Err(format!("{} exists and was not made by `cargo xtask build`: choose another --dist", dist.display()))
    }
}

fn optimise(wasm: &Path) -> Result<(), String> {
    let tool = match std::env::var_os("WASM_OPT") {
        Some(path) => Some(PathBuf::from(path)),
        None => find_on_path("wasm-opt"),
    };
    let Some(tool) = tool else {
        println!("[xtask] wasm-opt not on PATH (Debian: apt-get install binaryen; or set WASM_OPT): skipped");
        return Ok(());
    };
    // Binaryen 108 (Debian bookworm) is known to break the module (see below): do not spend
    // minutes on it. Other versions run, and their output is checked.
    let version = Command::new(&tool).arg("--version").output().ok().and_then(|o| {
        let text = String::from_utf8_lossy(&o.stdout).into_owned();
        text.split_whitespace().find_map(|word| word.parse::<u32>().ok())
    });
    if version.is_some_and(|v| v <= 108) {
        println!(
            "[xtask] wasm-opt {} is binaryen {}, which corrupts wasm-bindgen's externref table: skipped \
             (point WASM_OPT at binaryen 132, e.g. from `npm install binaryen`)",
            tool.display(),
            version.unwrap_or_default()
        );
        return Ok(());
    }
    let step = Instant::now();
    let before = fs::read(wasm).map_err(|e| format!("cannot read {}: {e}", wasm.display()))?;
    let out = wasm.with_extension("opt.wasm");
    // The features rustc enables by default for wasm32-unknown-unknown.
    let status = Command::new(&tool)
        .args([
            "-O2",
            "--enable-bulk-memory",
            "--enable-nontrapping-float-to-int",
            "--enable-sign-ext",
            "--enable-mutable-globals",
            "--enable-reference-types",
            "--enable-multivalue",
        ])
        .arg(wasm)
        .arg("-o")
        .arg(&out)
        .status();
    let optimised = match status {
        Ok(s) if s.success() => fs::read(&out).map_err(|e| format!("cannot read {}: {e}", out.display())),
        other => Err(format!("{} failed ({other:?})", tool.display())),
    };
    let _ = fs::remove_file(&out);
    // Binaryen 108 (Debian bookworm) points the export of wasm-bindgen's externref table at the
    // function table: the page then fails with "WebAssembly.Table.set(): Argument 1 is invalid".
    let checked = optimised.and_then(|after| {
        let (old, new) = (exported_tables(&before)?, exported_tables(&after)?);
        if old == new {
            Ok(after)
        } else {
            Err(format!(
                "{} changed the exported tables ({old:?} became {new:?}), a bug of old binaryen releases \
                 (108 has it, 132 does not); point WASM_OPT at a newer wasm-opt (e.g. from `npm install binaryen`)",
                tool.display()
            ))
        }
    });
    match checked {
        Ok(after) => {
            fs::write(wasm, &after).map_err(|e| format!("cannot write {}: {e}", wasm.display()))?;
            println!(
                "[xtask] wasm-opt -O2: {} → {} in {:.1} s",
                megabytes(before.len() as u64),
                megabytes(after.len() as u64),
                step.elapsed().as_secs_f64()
            );
        }
        Err(e) => println!("[xtask] warning: keeping the unoptimised wasm: {e}"),
    }
    Ok(())
}

/// The exported tables of a wasm module: name and element type (0x70 funcref, 0x6f externref).
fn exported_tables(wasm: &[u8]) -> Result<Vec<(String, u8)>, String> {
    fn leb(b: &[u8], i: &mut usize) -> Result<u64, String> {
        let (mut value, mut shift) = (0u64, 0);
        loop {
            let byte = *b.get(*i).ok_or("truncated wasm")?;
            *i += 1;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Ok(value);
            }
            shift += 7;
            if shift > 63 {
                return Err("bad LEB128 in wasm".into());
            }
        }
    }
    fn name(b: &[u8], i: &mut usize) -> Result<String, String> {
        let len = leb(b, i)? as usize;
        let bytes = b.get(*i..*i + len).ok_or("truncated wasm")?;
        *i += len;
        Ok(String::from_utf8_lossy(bytes).into_owned())
    }
    fn limits(b: &[u8], i: &mut usize) -> Result<(), String> {
        let flags = *b.get(*i).ok_or("truncated wasm")?;
        *i += 1;
        leb(b, i)?;
        if flags & 1 != 0 {
            leb(b, i)?;
        }
        Ok(())
    }
    if wasm.get(..4) != Some(b"\0asm") {
        return Err("not a wasm module".into());
    }
    let (mut tables, mut exports) = (Vec::new(), Vec::new());
    let mut i = 8;
    while i < wasm.len() {
        let id = wasm[i];
        i += 1;
        let size = leb(wasm, &mut i)? as usize;
        let end = i + size;
        let mut j = i;
        match id {
            // Imports: imported tables come first in the table index space.
            2 => {
                for _ in 0..leb(wasm, &mut j)? {
                    name(wasm, &mut j)?;
                    name(wasm, &mut j)?;
                    let kind = *wasm.get(j).ok_or("truncated wasm")?;
                    j += 1;
                    match kind {
                        0 => {
                            leb(wasm, &mut j)?;
                        }
                        1 => {
                            tables.push(*wasm.get(j).ok_or("truncated wasm")?);
                            j += 1;
                            limits(wasm, &mut j)?;
                        }
                        2 => limits(wasm, &mut j)?,
                        3 => j += 2,
                        4 => {
                            j += 1;
                            leb(wasm, &mut j)?;
                        }
                        other => return Err(format!("unknown import kind {other}")),
                    }
                }
            }
            4 => {
                for _ in 0..leb(wasm, &mut j)? {
                    tables.push(*wasm.get(j).ok_or("truncated wasm")?);
                    j += 1;
                    limits(wasm, &mut j)?;
                }
            }
            7 => {
                for _ in 0..leb(wasm, &mut j)? {
                    let export = name(wasm, &mut j)?;
                    let kind = *wasm.get(j).ok_or("truncated wasm")?;
                    j += 1;
                    let index = leb(wasm, &mut j)? as usize;
                    if kind == 1 {
                        exports.push((export, *tables.get(index).ok_or("export of a missing table")?));
                    }
                }
            }
            _ => {}
        }
        i = end;
    }
    exports.sort();
    Ok(exports)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?).map(|dir| dir.join(name)).find(|p| p.is_file())
}

/// Copies static/ except weights/ (see [`copy_weights`]).
fn copy_static(from: &Path, to: &Path) -> Result<(), String> {
    for entry in read_dir(from)? {
        let path = entry.path();
        let name = entry.file_name();
        if path.is_dir() && name == "weights" {
            continue;
        }
        copy_recursive(&path, &to.join(&name))?;
    }
    if !to.join("index.html").is_file() {
        return Err(format!("{} has no index.html", from.display()));
    }
    Ok(())
}

/// Copies `weights/models.json` and exactly the files it lists (plus licence and notice files
/// beside it): weights nobody lists, such as `lpips/`, are never requested by the app and are
/// not served. With `dev`, that folder's manifest and files are used instead.
fn copy_weights(shipped: &Path, dev: Option<&Path>, to: &Path) -> Result<(), String> {
    let source = dev.unwrap_or(shipped);
    if dev.is_some() {
        println!("[xtask] warning: development weights from {} (never ship this dist/)", source.display());
    }
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let manifest_path = source.join("models.json");
    let manifest =
        fs::read_to_string(&manifest_path).map_err(|e| format!("cannot read {}: {e}", manifest_path.display()))?;
    let json: Value =
        serde_json::from_str(&manifest).map_err(|e| format!("{} is not JSON: {e}", manifest_path.display()))?;
    let models = json
        .get("models")
        .and_then(Value::as_array)
        .ok_or_else(|| format!("{} has no \"models\" array", manifest_path.display()))?;
    for (i, model) in models.iter().enumerate() {
        let field = |name: &str| {
            model
                .get(name)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{}: model {i} has no string \"{name}\"", manifest_path.display()))
        };
        let (id, file) = (field("id")?, field("file")?);
        if model.get("tasks").and_then(Value::as_array).is_none_or(|t| t.is_empty()) {
            return Err(format!("{}: model {id} has no \"tasks\"", manifest_path.display()));
        }
        if file.contains("..") || file.starts_with('/') {
            return Err(format!(
                "{}: model {id}: file {file:?} must be a path inside the folder",
                manifest_path.display()
            ));
        }
        let path = source.join(file);
        if !path.is_file() {
            return Err(format!("{}: model {id} lists {file}, which does not exist", manifest_path.display()));
        }
        copy_recursive(&path, &to.join(file))?;
    }
    fs::write(to.join("models.json"), manifest).map_err(|e| format!("cannot write models.json: {e}"))?;
    for entry in read_dir(source)? {
        let name = entry.file_name().to_string_lossy().to_ascii_uppercase();
        if entry.path().is_file()
            && ["LICENSE", "LICENCE", "NOTICE", "README", "SOURCES"].iter().any(|p| name.starts_with(p))
        {
            copy_recursive(&entry.path(), &to.join(entry.file_name()))?;
        }
    }
    println!("[xtask] weights: models.json lists {} model(s)", models.len());
    Ok(())
}

/// `samples/samples.json`: the bundled photos, so the app can list them without a directory index.
fn write_samples_list(from: &Path, to: &Path) -> Result<(), String> {
    let mut samples = Vec::new();
    if from.is_dir() {
        let mut entries: Vec<PathBuf> = read_dir(from)?.into_iter().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let Some(ext) = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase) else { continue };
            if !["png", "jpg", "jpeg", "webp"].contains(&ext.as_str()) {
                continue;
            }
            let file = path.file_name().and_then(|n| n.to_str()).ok_or("sample names must be UTF-8")?;
            let stem = path.file_stem().and_then(|n| n.to_str()).ok_or("sample names must be UTF-8")?;
            let mut sample = serde_json::json!({ "stem": stem, "file": file });
            if let Some((w, h)) = png_size(&path) {
                sample["width"] = w.into();
                sample["height"] = h.into();
            }
            samples.push(sample);
        }
    }
    fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
    let json = serde_json::to_string_pretty(&serde_json::json!({ "samples": samples })).expect("JSON");
    fs::write(to.join("samples.json"), json).map_err(|e| format!("cannot write samples.json: {e}"))?;
    println!("[xtask] samples: {}", samples.len());
    Ok(())
}

/// Width and height from a PNG header.
fn png_size(path: &Path) -> Option<(u32, u32)> {
    let bytes = fs::read(path).ok()?;
    if bytes.len() < 24 || &bytes[..8] != b"\x89PNG\r\n\x1a\n" || &bytes[12..16] != b"IHDR" {
        return None;
    }
    let be = |i: usize| u32::from_be_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]);
    Some((be(16), be(20)))
}

fn read_dir(dir: &Path) -> Result<Vec<fs::DirEntry>, String> {
    fs::read_dir(dir)
        .and_then(|d| d.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot list {}: {e}", dir.display()))
}

fn copy_recursive(from: &Path, to: &Path) -> Result<(), String> {
    if from.is_dir() {
        fs::create_dir_all(to).map_err(|e| format!("cannot create {}: {e}", to.display()))?;
        for entry in read_dir(from)? {
            copy_recursive(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        if let Some(parent) = to.parent() {
            fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
        }
        fs::copy(from, to).map(|_| ()).map_err(|e| format!("cannot copy {} to {}: {e}", from.display(), to.display()))
    }
}

fn folder_size(dir: &Path) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                folder_size(&path)
            } else {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            }
        })
        .sum()
}

fn megabytes(bytes: u64) -> String {
    format!("{:.2} MB", bytes as f64 / 1e6)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_size_reads_the_header() {
        let root = super::super::root();
        let sample = root.join("static/samples/skimage-chelsea.png");
        assert_eq!(png_size(&sample), Some((448, 296)));
    }

    #[test]
    fn exported_tables_follow_imports_and_indices() {
        // Tables: funcref, externref; export "t" → table 1, "f" → table 0.
        let module: Vec<u8> = [
            b"\0asm".as_slice(),
            &[1, 0, 0, 0],
            &[4, 7, 2, 0x70, 0, 1, 0x6f, 0, 0],
            &[7, 9, 2, 1, b't', 1, 1, 1, b'f', 1, 0],
        ]
        .concat();
        assert_eq!(exported_tables(&module).unwrap(), vec![("f".to_string(), 0x70), ("t".to_string(), 0x6f)]);
        assert!(exported_tables(b"nope").is_err());
    }

    #[test]
    fn lock_and_library_agree_on_wasm_bindgen() {
        check_bindgen_version(&super::super::root()).unwrap();
    }
}
