//! Files at the CLI edge: reading images with the path in every error, listing image folders,
//! and atomic writes (a crash or an error never leaves a partial output behind).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use restora_model::{Image, Mask};

/// Extensions read as images.
pub const IMAGE_EXTENSIONS: [&str; 7] = ["png", "jpg", "jpeg", "webp", "tif", "tiff", "bmp"];

pub fn read_image(path: &Path) -> Result<Image> {
    let bytes = fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Image::decode(&bytes).with_context(|| format!("{} is not a usable image", path.display()))
}

pub fn read_mask(path: &Path) -> Result<Mask> {
    let bytes = fs::read(path).with_context(|| format!("cannot read mask {}", path.display()))?;
    Mask::decode(&bytes).with_context(|| format!("{} is not a usable mask image", path.display()))
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so the
/// destination holds either its old content or the complete new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().with_context(|| format!("{} is not a file path", path.display()))?;
    let temp = dir.join(format!(".{}.tmp-{}", name.to_string_lossy(), std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut file = fs::File::create(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)
    })();
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(error).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(())
}

/// Image files under `dir`, recursively, sorted.
pub fn list_images(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if is_image(&path) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

pub fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Refuses to write over one of the inputs.
pub fn ensure_not_an_input(output: &Path, inputs: &[&Path]) -> Result<()> {
    let canonical = |p: &Path| fs::canonicalize(p).ok();
    if let Some(out) = canonical(output) {
        for input in inputs {
            if canonical(input).as_ref() == Some(&out) {
                bail!("refusing to overwrite the input {}: choose another --output", input.display());
            }
        }
    }
    Ok(())
}

/// Makes sure an output path ends in `.png`, the format written.
pub fn ensure_png(path: &Path) -> Result<()> {
    match path.extension().and_then(|e| e.to_str()) {
        Some(e) if e.eq_ignore_ascii_case("png") => Ok(()),
        _ => bail!("{}: outputs are written as PNG; give a path ending in .png", path.display()),
    }
}
