//! `train-native restore`: one image or a folder, through the tiled inference of the model crate.

use restora_model::RestoraBackend;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use restora_model::degradations::Task;
use restora_model::inference::{restore, Control, TileOptions};
use restora_model::tile_choice::{resolve, Limits, TileChoice};
use restora_model::{weights, BitDepth, Image, RestormerConfig};

use crate::backend::{run_on, BackendTask};
use crate::cli::RestoreArgs;
use crate::files::{ensure_not_an_input, ensure_png, is_image, list_images, read_image, read_mask, write_atomic};

/// One image to restore.
struct Item {
    input: PathBuf,
    mask: Option<PathBuf>,
    output: PathBuf,
}

pub fn run(args: RestoreArgs) -> Result<()> {
    let task = args.task.task();
    if args.mask.is_some() && !matches!(task, Some(Task::Inpaint) | None) {
        bail!("--mask is for --task inpaint (or auto); {} does not use a mask", task.map_or("auto", Task::name));
    }
    if task == Some(Task::Inpaint) && args.mask.is_none() {
        bail!("--task inpaint needs --mask (an image of the same size, white where pixels are missing)");
    }
    let items = plan(&args)?;
    let path = crate::shipped::weights_or_shipped(args.weights.as_deref(), args.task.choice())?;
    let weights = super::read_weights(&path)?;
    let depth = if args.bit_depth == "16" { BitDepth::Sixteen } else { BitDepth::Eight };
    let tiles = Tiles { choice: args.tile, overlap: args.overlap, limits: Limits::native(args.max_memory_mb << 20) };
    run_on(args.backend, Job { weights, items, tiles, depth })
}

/// Pairs inputs with masks and outputs, checking everything before any work starts.
fn plan(args: &RestoreArgs) -> Result<Vec<Item>> {
    if !args.input.exists() {
        bail!("input {} does not exist", args.input.display());
    }
    if !args.input.is_dir() {
        ensure_png(&args.output)?;
        let mut inputs = vec![args.input.as_path()];
        inputs.extend(args.mask.as_deref());
        ensure_not_an_input(&args.output, &inputs)?;
        return Ok(vec![Item { input: args.input.clone(), mask: args.mask.clone(), output: args.output.clone() }]);
    }
    if args.output.is_file() {
        bail!("--input is a folder, so --output must be a folder too ({} is a file)", args.output.display());
    }
    let inputs = list_images(&args.input)?;
    if inputs.is_empty() {
        bail!("no images (PNG, JPEG, WebP, TIFF, BMP) in {}", args.input.display());
    }
    std::fs::create_dir_all(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
    inputs
        .into_iter()
        .map(|input| {
            let relative = input.strip_prefix(&args.input).unwrap_or(&input);
            let output = args.output.join(relative).with_extension("png");
            let mask = match &args.mask {
                Some(dir) if dir.is_dir() => Some(find_mask(dir, relative)?),
                Some(file) => Some(file.clone()),
                None => None,
            };
            let mut sources = vec![input.as_path()];
            sources.extend(mask.as_deref());
            ensure_not_an_input(&output, &sources)?;
            Ok(Item { input, mask, output })
        })
        .collect()
}

/// The mask for `relative` (an image path inside the input folder): same relative path and stem,
/// any image extension.
fn find_mask(dir: &Path, relative: &Path) -> Result<PathBuf> {
    let stem = dir.join(relative).with_extension("");
    let parent = stem.parent().unwrap_or(dir);
    let name = stem.file_name().unwrap_or_default();
    std::fs::read_dir(parent)
        .ok()
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .find(|p| is_image(p) && p.file_stem() == Some(name))
        .with_context(|| format!("no mask for {} in {}", relative.display(), dir.display()))
}

struct Job {
    weights: Vec<u8>,
    items: Vec<Item>,
    tiles: Tiles,
    depth: BitDepth,
}

/// `--tile`, `--overlap` and `--max-memory-mb`.
struct Tiles {
    choice: TileChoice,
    overlap: usize,
    limits: Limits,
}

impl Tiles {
    /// The tiles for one image: the page's rule (`tile_choice::resolve`) with this memory budget.
    fn for_image(&self, image: &Image, config: &RestormerConfig) -> Result<TileOptions> {
        let (w, h) = (image.width() as usize, image.height() as usize);
        let options = resolve(self.choice, w, h, config, &self.limits).map_err(|too_large| {
            let hint = match too_large.suggestion {
                Some(side) => format!("use --tile {side} (or --tile auto)"),
                None => "even 128 px tiles do not fit".into(),
            };
            anyhow::anyhow!(
                "a {w}×{h} image with --tile {} needs about {} MiB at once, more than --max-memory-mb {}: {hint}",
                self.choice.name(),
                too_large.needed.div_ceil(1 << 20),
                self.limits.working_set >> 20
            )
        })?;
        Ok(TileOptions { overlap: self.overlap, ..options })
    }
}

impl BackendTask for Job {
    type Output = ();

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<()> {
        let (model, config) = weights::load::<B>(&self.weights, &device).context("cannot load the weights")?;
        let many = self.items.len() > 1;
        for item in &self.items {
            let image = read_image(&item.input)?;
            let mask = item.mask.as_deref().map(read_mask).transpose()?;
            if let Some(mask) = &mask {
                mask.check_fits(&image).context("the mask does not fit the image")?;
                if !config.mask_aware {
                    eprintln!("note: these weights do not take a mask channel; only the mask-aware blocks will use it");
                }
            }
            let options = self.tiles.for_image(&image, &config)?;
            let bar = progress_bar(&item.input);
            let restored = restore(&model, &image, mask.as_ref(), &options, &device, |p| {
                bar.set_length(p.total as u64);
                bar.set_position(p.done as u64);
                Control::Continue
            })
            .with_context(|| format!("restoring {}", item.input.display()))?;
            bar.finish_and_clear();
            if let Some(parent) = item.output.parent() {
                std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
            }
            write_atomic(&item.output, &restored.encode_png(self.depth)?)?;
            if many {
                println!("{} → {}", item.input.display(), item.output.display());
            }
        }
        if !many {
            println!("wrote {}", self.items[0].output.display());
        }
        Ok(())
    }
}

fn progress_bar(input: &Path) -> ProgressBar {
    let bar = ProgressBar::new(1);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} tiles, {elapsed}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    bar.set_message(input.file_name().unwrap_or_default().to_string_lossy().into_owned());
    bar
}
