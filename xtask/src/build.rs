//! `cargo xtask build`: restora-web → wasm32 → wasm-bindgen → (wasm-opt) → `dist/` with static/,
//! content-hashed names for the module and its JS, `shell.json`, and brotli / gzip copies.
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
/// The list of the app shell's URLs, for the service worker (see [`write_shell_list`]).
const SHELL: &str = "shell.json";
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
        optimise(root, &bg)?;
    }

    // 4. Static files, weights, the samples list.
    let static_dir = root.join("static");
    copy_static(&static_dir, &staging)?;
    copy_weights(&static_dir.join("weights"), options.dev_weights.as_deref(), &staging.join("weights"))?;
    write_samples_list(&static_dir.join("samples"), &staging.join("samples"))?;

    // 5. Content-hashed names for the module and its JS, the list of the app shell, and the
    //    compressed copies of everything that compresses.
    let (js, wasm) = fingerprint(&staging)?;
    println!("[xtask] hashed names: {js}, {wasm}");
    write_shell_list(&staging)?;
    let step = Instant::now();
    let (original, brotli) = compress_all(&staging)?;
    println!(
        "[xtask] brotli and gzip copies: {} → {} (brotli) in {:.1} s",
        megabytes(original),
        megabytes(brotli),
        step.elapsed().as_secs_f64()
    );
    fs::write(staging.join(MARKER), "made by `cargo xtask build`; replaced by the next build\n")
        .map_err(|e| format!("cannot write the marker: {e}"))?;

    // 6. Swap.
    if dist.exists() {
        fs::remove_dir_all(&dist).map_err(|e| format!("cannot remove the old {}: {e}", dist.display()))?;
    }
    fs::rename(&staging, &dist).map_err(|e| format!("cannot move {} to {}: {e}", staging.display(), dist.display()))?;

    let size = |p: &Path| fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    println!(
        "[xtask] {} ready in {:.1} s: index.html (wasm {}, brotli {}; js {}; total {} without the compressed copies)",
        dist.display(),
        start.elapsed().as_secs_f64(),
        megabytes(size(&dist.join(&wasm))),
        megabytes(size(&dist.join(format!("{wasm}.br")))),
        megabytes(size(&dist.join(&js))),
        megabytes(folder_size(&dist, &|p| !is_compressed_copy(p))),
    );
    Ok(())
}

/// Renames wasm-bindgen's module and JS to `<name>-<hash>.<ext>` (16 hex digits of the SHA-256 of
/// the content), so they can be cached for good, and rewrites every reference to them: the JS's
/// own default URL of the module, and `boot.js` (the page's start-up) and `worker.js` (the CPU
/// worker), the only two files that load them. Returns the new names (JS, wasm).
fn fingerprint(staging: &Path) -> Result<(String, String), String> {
    let (js_name, wasm_name) = (format!("{OUT_NAME}.js"), format!("{OUT_NAME}_bg.wasm"));
    let wasm_hashed = format!("{OUT_NAME}_bg-{}.wasm", content_hash(&read(&staging.join(&wasm_name))?));
    rename(&staging.join(&wasm_name), &staging.join(&wasm_hashed))?;
    // The JS names the module as its default URL: rewritten before hashing the JS, so the JS's
    // hash covers the module's.
    let js = fs::read_to_string(staging.join(&js_name)).map_err(|e| format!("cannot read {js_name}: {e}"))?;
    let js = js.replace(&wasm_name, &wasm_hashed);
    let js_hashed = format!("{OUT_NAME}-{}.js", content_hash(js.as_bytes()));
    write(&staging.join(&js_hashed), js.as_bytes())?;
    fs::remove_file(staging.join(&js_name)).map_err(|e| format!("cannot remove {js_name}: {e}"))?;
    // The loaders keep their names (index.html and the app's wasm name them), so they are served
    // with `no-cache` and revalidated; each must name both files, or the page would not start.
    for loader in ["boot.js", "worker.js"] {
        let path = staging.join(loader);
        let text = fs::read_to_string(&path).map_err(|e| format!("cannot read static/{loader}: {e}"))?;
        let js_reference = format!("./{js_name}");
        for reference in [js_reference.as_str(), wasm_name.as_str()] {
            if !text.contains(reference) {
                return Err(format!(
                    "static/{loader} does not name {reference:?}: the build rewrites that reference to the \
                     content-hashed file, so the loader must keep naming it literally"
                ));
            }
        }
        let text = text.replace(&js_reference, &format!("./{js_hashed}")).replace(&wasm_name, &wasm_hashed);
        write(&path, text.as_bytes())?;
    }
    Ok((js_hashed, wasm_hashed))
}

/// 16 hex digits of the SHA-256 of `bytes`: enough that two builds never share a name by chance.
fn content_hash(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)[..8].iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether a file name holds a content hash (`<stem>-<16 hex digits>.<ext>`), as
/// [`fingerprint`] writes them: such a file never changes under its name.
pub fn is_hashed(name: &str) -> bool {
    let stem = name.split_once('.').map_or(name, |(stem, _)| stem);
    stem.rsplit_once('-').is_some_and(|(_, hash)| {
        hash.len() == 16 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `shell.json`: the relative URLs of every file the app needs to start and to restore offline
/// (the service worker precaches them at install), sorted, `./` first. Weights are left out: the
/// app keeps the one it uses in its own cache, and the others may never be needed. So are the
/// service worker itself, this list, and the compressed copies (the browser asks for the plain
/// name). Everything else the build put in the site is in it, so a file added to static/ is too.
fn write_shell_list(staging: &Path) -> Result<(), String> {
    let mut files = Vec::new();
    list_files(staging, staging, &mut files)?;
    let mut urls: Vec<String> = files
        .into_iter()
        .filter(|f| !f.starts_with('.') && f != "sw.js" && f != SHELL)
        .filter(|f| !f.starts_with("weights/") || f == "weights/models.json")
        .collect();
    urls.sort();
    urls.insert(0, "./".into());
    let json = serde_json::to_string_pretty(&urls).expect("JSON");
    write(&staging.join(SHELL), json.as_bytes())?;
    println!("[xtask] {SHELL}: {} URLs", urls.len());
    Ok(())
}

/// The files under `dir`, as `/`-separated paths relative to `base`.
fn list_files(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<(), String> {
    for entry in read_dir(dir)? {
        let path = entry.path();
        if path.is_dir() {
            list_files(base, &path, out)?;
        } else {
            let relative = path.strip_prefix(base).expect("inside the base");
            let parts: Option<Vec<&str>> = relative.components().map(|c| c.as_os_str().to_str()).collect();
            out.push(
                parts.ok_or_else(|| format!("{}: file names in the site must be UTF-8", path.display()))?.join("/"),
            );
        }
    }
    Ok(())
}

/// Extensions given `.br` and `.gz` copies: text, the module, and weights (float tensors shrink
/// by a few percent only, but every byte counts on a phone's connection).
const COMPRESSIBLE: &[&str] = &["wasm", "js", "mjs", "css", "json", "html", "svg", "txt", "md", "safetensors"];

fn is_compressed_copy(path: &Path) -> bool {
    matches!(path.extension().and_then(|e| e.to_str()), Some("br" | "gz"))
}

/// Writes `<file>.br` (brotli, best quality) and `<file>.gz` (gzip -9) beside every compressible
/// file of the site, on two threads; a copy that would not be smaller is not written (the server
/// then sends the file as is). Returns the total size of the compressible files and of their
/// brotli copies.
fn compress_all(site: &Path) -> Result<(u64, u64), String> {
    let mut files = Vec::new();
    list_files(site, site, &mut files)?;
    let mut files: Vec<PathBuf> = files
        .into_iter()
        .map(|f| site.join(f))
        .filter(|p| p.extension().and_then(|e| e.to_str()).is_some_and(|e| COMPRESSIBLE.contains(&e)))
        .collect();
    // The largest first, so the two threads finish together.
    files.sort_by_key(|p| std::cmp::Reverse(fs::metadata(p).map(|m| m.len()).unwrap_or(0)));
    let next = std::sync::atomic::AtomicUsize::new(0);
    let work = || -> Result<(u64, u64), String> {
        let mut totals = (0, 0);
        while let Some(path) = files.get(next.fetch_add(1, std::sync::atomic::Ordering::Relaxed)) {
            let data = read(path)?;
            let br = brotli(&data);
            let gz = gzip(&data).map_err(|e| format!("gzip of {}: {e}", path.display()))?;
            for (ext, copy) in [("br", &br), ("gz", &gz)] {
                if copy.len() < data.len() {
                    write(&path.with_file_name(format!("{}.{ext}", file_name(path))), copy)?;
                }
            }
            totals.0 += data.len() as u64;
            totals.1 += br.len().min(data.len()) as u64;
        }
        Ok(totals)
    };
    std::thread::scope(|scope| {
        let other = scope.spawn(work);
        let mine = work()?;
        let theirs = other.join().map_err(|_| "a compression thread panicked".to_string())??;
        Ok((mine.0 + theirs.0, mine.1 + theirs.1))
    })
}

fn brotli(data: &[u8]) -> Vec<u8> {
    // Quality 11 with a 16 MiB window (the largest standard one): the best ratio; a wasm of
    // 20 MB takes about a minute here, once per build.
    let params = ::brotli::enc::BrotliEncoderParams { quality: 11, lgwin: 24, ..Default::default() };
    let mut out = Vec::with_capacity(data.len() / 3);
    ::brotli::BrotliCompress(&mut &data[..], &mut out, &params).expect("brotli into memory cannot fail");
    out
}

fn gzip(data: &[u8]) -> std::io::Result<Vec<u8>> {
    use std::io::Write as _;
    let mut encoder = flate2::write::GzEncoder::new(Vec::with_capacity(data.len() / 3), flate2::Compression::best());
    encoder.write_all(data)?;
    encoder.finish()
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

fn read(path: &Path) -> Result<Vec<u8>, String> {
    fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), String> {
    fs::write(path, bytes).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn rename(from: &Path, to: &Path) -> Result<(), String> {
    fs::rename(from, to).map_err(|e| format!("cannot rename {} to {}: {e}", from.display(), to.display()))
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

/// The wasm-opt to use: `$WASM_OPT`, else npm's binaryen installed in the workspace
/// (`npm install --no-save binaryen@132`), else the one on `PATH`.
fn find_wasm_opt(root: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("WASM_OPT") {
        return Some(PathBuf::from(path));
    }
    let npm = root.join("node_modules/.bin/wasm-opt");
    if npm.is_file() {
        return Some(npm);
    }
    find_on_path("wasm-opt")
}

fn optimise(root: &Path, wasm: &Path) -> Result<(), String> {
    let Some(tool) = find_wasm_opt(root) else {
        println!(
            "[xtask] wasm-opt not found: skipped (`npm install --no-save binaryen@132` here, or set WASM_OPT; \
             it makes the module about 28 % smaller)"
        );
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

fn folder_size(dir: &Path, keep: &dyn Fn(&Path) -> bool) -> u64 {
    fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| {
            let path = e.path();
            if path.is_dir() {
                folder_size(&path, keep)
            } else if keep(&path) {
                e.metadata().map(|m| m.len()).unwrap_or(0)
            } else {
                0
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

    #[test]
    fn hashed_names_are_recognised() {
        assert!(is_hashed("restora_web_bg-0123456789abcdef.wasm"));
        assert!(is_hashed("restora_web-0123456789abcdef.js"));
        assert_eq!(content_hash(b"").len(), 16);
        assert!(is_hashed(&format!("a-{}.js", content_hash(b"x"))));
        for name in ["index.html", "restora_web.js", "sw.js", "a-0123456789ABCDEF.js", "a-0123.js", "models.json"] {
            assert!(!is_hashed(name), "{name}");
        }
    }

    #[test]
    fn fingerprint_rewrites_every_reference_and_the_shell_lists_the_app() {
        let dir = tempfile::TempDir::new().unwrap();
        let site = dir.path();
        std::fs::write(site.join("restora_web_bg.wasm"), b"\0asm module").unwrap();
        std::fs::write(site.join("restora_web.js"), "new URL('restora_web_bg.wasm', import.meta.url)").unwrap();
        std::fs::write(site.join("boot.js"), "import init from \"./restora_web.js\"; fetch(\"restora_web_bg.wasm\")")
            .unwrap();
        std::fs::write(
            site.join("worker.js"),
            "import init from \"./restora_web.js\"; new URL(\"restora_web_bg.wasm\")",
        )
        .unwrap();
        for file in ["index.html", "sw.js", "style.css", "samples/samples.json", "samples/a.png", "weights/models.json"]
        {
            std::fs::create_dir_all(site.join(file).parent().unwrap()).unwrap();
            std::fs::write(site.join(file), file).unwrap();
        }
        std::fs::write(site.join("weights/m.safetensors"), [0u8; 4000]).unwrap();
        let (js, wasm) = fingerprint(site).unwrap();
        assert!(is_hashed(&js) && is_hashed(&wasm), "{js} {wasm}");
        assert!(!site.join("restora_web.js").exists() && !site.join("restora_web_bg.wasm").exists());
        assert_eq!(std::fs::read(site.join(&wasm)).unwrap(), b"\0asm module");
        assert!(std::fs::read_to_string(site.join(&js)).unwrap().contains(&format!("'{wasm}'")));
        for loader in ["boot.js", "worker.js"] {
            let text = std::fs::read_to_string(site.join(loader)).unwrap();
            assert!(text.contains(&format!("\"./{js}\"")) && text.contains(&format!("\"{wasm}\"")), "{text}");
        }

        write_shell_list(site).unwrap();
        let shell: Vec<String> = serde_json::from_slice(&std::fs::read(site.join(SHELL)).unwrap()).unwrap();
        let mut expected = vec![
            "./",
            "boot.js",
            "index.html",
            &js,
            &wasm,
            "samples/a.png",
            "samples/samples.json",
            "style.css",
            "weights/models.json",
            "worker.js",
        ];
        expected[1..].sort();
        assert_eq!(shell, expected);

        compress_all(site).unwrap();
        let br = std::fs::read(site.join("weights/m.safetensors.br")).unwrap();
        let mut plain = Vec::new();
        ::brotli::BrotliDecompress(&mut &br[..], &mut plain).unwrap();
        assert_eq!(plain, [0u8; 4000]);
        let gz = std::fs::read(site.join("weights/m.safetensors.gz")).unwrap();
        let mut plain = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&gz[..]), &mut plain).unwrap();
        assert_eq!(plain, [0u8; 4000]);
        // Too small to gain anything: sent as is.
        assert!(!site.join("samples/a.png.br").exists() && !site.join("sw.js.br").exists());
    }

    #[test]
    fn a_loader_that_no_longer_names_the_module_is_an_error() {
        let dir = tempfile::TempDir::new().unwrap();
        let site = dir.path();
        std::fs::write(site.join("restora_web_bg.wasm"), b"\0asm").unwrap();
        std::fs::write(site.join("restora_web.js"), "js").unwrap();
        std::fs::write(site.join("boot.js"), "import init from \"./app.js\"").unwrap();
        std::fs::write(site.join("worker.js"), "import init from \"./restora_web.js\"; \"restora_web_bg.wasm\"")
            .unwrap();
        let error = fingerprint(site).unwrap_err();
        assert!(error.contains("boot.js") && error.contains("restora_web.js"), "{error}");
    }
}
