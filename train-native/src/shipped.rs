//! The weights shipped in `static/weights/`: `models.json` says which file restores which task,
//! by the same rule the web app uses ([`Manifest::choose`]), so a command without `--weights`
//! restores with the model the page would use.

use std::path::{Path, PathBuf};

use anyhow::{anyhow, Context, Result};
use restora_model::manifest::{Manifest, TaskChoice};

/// The shipped weights and their manifest, relative to the working directory (the repository).
pub const SHIPPED_DIR: &str = "static/weights";

/// The shipped model for `choice`, or `None` when the manifest lists none (or is missing).
fn choose(choice: TaskChoice) -> Result<Option<PathBuf>> {
    let dir = Path::new(SHIPPED_DIR);
    let path = dir.join("models.json");
    let Ok(text) = std::fs::read_to_string(&path) else { return Ok(None) };
    let manifest = Manifest::parse(&text).with_context(|| format!("cannot use {}", path.display()))?;
    Ok(manifest.choose(choice).map(|model| {
        // Always said, so a table built from the output can name the model it scored.
        let kind = if model.preview { "preview model" } else { "model" };
        eprintln!("note: using the shipped {kind} {} ({})", model.display_name(), model.file);
        dir.join(&model.file)
    }))
}

/// `given`, else the shipped model for `choice`, else `None`.
pub fn given_or_shipped(given: Option<&Path>, choice: TaskChoice) -> Result<Option<PathBuf>> {
    match given {
        Some(path) => Ok(Some(path.to_path_buf())),
        None => choose(choice),
    }
}

/// `given`, else the shipped model for `choice`; an error that says what to do when neither exists.
pub fn weights_or_shipped(given: Option<&Path>, choice: TaskChoice) -> Result<PathBuf> {
    given_or_shipped(given, choice)?.ok_or_else(|| {
        anyhow!(
            "no --weights given, and {SHIPPED_DIR}/models.json ships no model for {choice} (run from the \
             repository root, or pass --weights with a .safetensors file)"
        )
    })
}

/// `given`, else the shipped foundation model (the one that restores `auto`): what eval, finetune
/// and sweep start from.
pub fn foundation_or_shipped(given: Option<&Path>) -> Result<PathBuf> {
    weights_or_shipped(given, TaskChoice::Auto)
}
