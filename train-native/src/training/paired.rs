//! Real degradations: folders of degraded images beside their clean partners, in the layouts the
//! public sets ship in. The layout is recognised from the folder itself:
//!
//! | layout | task | what it expects |
//! |---|---|---|
//! | SIDD | denoise | scene folders of `*_NOISY_*` images beside their `*_GT_*` partners (`0001_NOISY_SRGB_010.PNG` ↔ `0001_GT_SRGB_010.PNG`) |
//! | GoPro | deblur | `<scene>/blur/*.png` with the same names in `<scene>/sharp/` |
//! | REDS | deblur | `train_blur/<seq>/*.png` with the same paths in `train_sharp/` (`val_blur` / `val_sharp` too) |
//! | input/target | given by the user | `input/**` with the same relative paths in `target/` |
//!
//! A paired sample is cut from the degraded image and its partner at the same place, with the same
//! flip and rotation, and has no mask (inpainting needs one, so it is not a paired task).

use std::fmt;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use restora_model::degradations::Task;

use super::config::PairedSet;
use crate::files::list_images;

/// A folder layout of degraded / clean pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Smartphone Image Denoising Dataset: `*_NOISY_*` beside `*_GT_*` in scene folders.
    Sidd,
    /// GoPro deblurring: `<scene>/blur/` and `<scene>/sharp/`.
    GoPro,
    /// REDS deblurring: `train_blur/<seq>/` and `train_sharp/<seq>/` (and `val_*`).
    Reds,
    /// Any task: `input/` and `target/` with the same relative paths.
    InputTarget,
}

impl Layout {
    pub const ALL: [Layout; 4] = [Layout::Sidd, Layout::GoPro, Layout::Reds, Layout::InputTarget];

    pub fn name(self) -> &'static str {
        match self {
            Layout::Sidd => "SIDD",
            Layout::GoPro => "GoPro",
            Layout::Reds => "REDS",
            Layout::InputTarget => "input/target",
        }
    }

    /// The degradation kind recorded for its samples in the batch and the log.
    pub fn kind(self) -> &'static str {
        match self {
            Layout::Sidd => "paired:sidd",
            Layout::GoPro => "paired:gopro",
            Layout::Reds => "paired:reds",
            Layout::InputTarget => "paired:input_target",
        }
    }

    /// The task its pairs are for; `None` when the user says (input/target).
    pub fn task(self) -> Option<Task> {
        match self {
            Layout::Sidd => Some(Task::Denoise),
            Layout::GoPro | Layout::Reds => Some(Task::Deblur),
            Layout::InputTarget => None,
        }
    }

    /// What the layout expects, for error messages.
    pub fn expects(self) -> &'static str {
        match self {
            Layout::Sidd => {
                "scene folders of *_NOISY_* images beside their *_GT_* partners \
                 (0001_NOISY_SRGB_010.PNG with 0001_GT_SRGB_010.PNG)"
            }
            Layout::GoPro => "<scene>/blur/*.png with the same file names in <scene>/sharp/",
            Layout::Reds => {
                "train_blur/<seq>/*.png with the same paths in train_sharp/<seq>/ (val_blur and val_sharp too)"
            }
            Layout::InputTarget => "input/** with the same relative paths in target/",
        }
    }

    /// Every layout with its task and what it expects, one per line.
    pub fn catalogue() -> String {
        Layout::ALL
            .iter()
            .map(|l| {
                let task = l.task().map_or("task given as DIR:TASK or task = \"...\"", Task::name);
                format!("  - {} ({task}): {}", l.name(), l.expects())
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl fmt::Display for Layout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A degraded image, its clean partner and their size.
#[derive(Debug, Clone, PartialEq)]
pub struct Pair {
    pub input: PathBuf,
    pub target: PathBuf,
    pub width: usize,
    pub height: usize,
}

/// A paired set ready for training.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedSource {
    pub dir: PathBuf,
    pub layout: Layout,
    pub task: Task,
    /// Fraction of the task's samples drawn from this set when clean images exist too; relative
    /// weight among the task's sets otherwise.
    pub share: f64,
    /// Sorted by input path.
    pub pairs: Vec<Pair>,
}

/// Folders under `dir` (itself included), sorted.
fn folders(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut found = vec![dir.to_path_buf()];
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let path = entry?.path();
            if path.is_dir() {
                found.push(path.clone());
                pending.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn named(path: &Path, name: &str) -> bool {
    path.file_name().is_some_and(|n| n == name)
}

const REDS_SPLITS: [&str; 2] = ["train", "val"];

/// Recognises the layout of a paired folder.
pub fn detect(dir: &Path) -> Result<Layout> {
    if !dir.is_dir() {
        bail!("paired set {} is not a folder", dir.display());
    }
    if dir.join("input").is_dir() && dir.join("target").is_dir() {
        return Ok(Layout::InputTarget);
    }
    let folders = folders(dir)?;
    if folders.iter().any(|f| REDS_SPLITS.iter().any(|s| named(f, &format!("{s}_blur")))) {
        return Ok(Layout::Reds);
    }
    if folders.iter().any(|f| named(f, "blur")) {
        return Ok(Layout::GoPro);
    }
    if list_images(dir)?.iter().any(|p| p.file_name().is_some_and(|n| n.to_string_lossy().contains("_NOISY_"))) {
        return Ok(Layout::Sidd);
    }
    bail!("{} matches no paired layout; the layouts are:\n{}", dir.display(), Layout::catalogue())
}

/// The task of a configured set: its layout's, or the one given (which must agree).
pub fn task_of(set: &PairedSet) -> Result<Task> {
    Ok(resolve(set)?.1)
}

/// The layout and task of a configured set.
pub fn resolve(set: &PairedSet) -> Result<(Layout, Task)> {
    let layout = detect(&set.dir)?;
    let task = match (layout.task(), set.task) {
        (Some(own), None) => own,
        (Some(own), Some(given)) if own == given => own,
        (Some(own), Some(given)) => bail!(
            "{} is a {layout} folder ({own} pairs), not {given}: drop the task, or use an input/target folder",
            set.dir.display()
        ),
        (None, Some(given)) => given,
        (None, None) => bail!(
            "{} is an input/target folder: say which task its pairs are for (--paired DIR:TASK, or task = \"deblur\" \
             in its [[data.paired]] entry)",
            set.dir.display()
        ),
    };
    if task == Task::Inpaint {
        bail!(
            "{}: inpainting is not a paired task (it needs a mask): pairs can be denoise, deblur or dealias",
            set.dir.display()
        );
    }
    Ok((layout, task))
}

/// Every (degraded, clean) file pair of a folder of the given layout, sorted by the degraded
/// image's path. A degraded image without its partner is an error naming the missing file.
pub fn find_pairs(dir: &Path, layout: Layout) -> Result<Vec<(PathBuf, PathBuf)>> {
    // (degraded folder, clean folder) whose images pair by relative path.
    let mut mirrored: Vec<(PathBuf, PathBuf)> = Vec::new();
    let mut pairs = Vec::new();
    match layout {
        Layout::InputTarget => mirrored.push((dir.join("input"), dir.join("target"))),
        Layout::GoPro => {
            for blur in folders(dir)?.into_iter().filter(|f| named(f, "blur")) {
                mirrored.push((blur.clone(), blur.with_file_name("sharp")));
            }
        }
        Layout::Reds => {
            for folder in folders(dir)? {
                for split in REDS_SPLITS {
                    if named(&folder, &format!("{split}_blur")) {
                        mirrored.push((folder.clone(), folder.with_file_name(format!("{split}_sharp"))));
                    }
                }
            }
        }
        Layout::Sidd => {
            for noisy in list_images(dir)? {
                let name = noisy.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
                if name.contains("_NOISY_") {
                    let clean = noisy.with_file_name(name.replace("NOISY", "GT"));
                    if !clean.is_file() {
                        bail!("{} has no clean partner: {} is missing", noisy.display(), clean.display());
                    }
                    pairs.push((noisy, clean));
                }
            }
        }
    }
    for (degraded, clean) in mirrored {
        if !clean.is_dir() {
            bail!(
                "{} has no partner folder: {} is missing ({})",
                degraded.display(),
                clean.display(),
                layout.expects()
            );
        }
        for input in list_images(&degraded)? {
            let relative = input.strip_prefix(&degraded).unwrap_or(&input);
            let target = clean.join(relative);
            if !target.is_file() {
                bail!("{} has no clean partner: {} is missing", input.display(), target.display());
            }
            pairs.push((input, target));
        }
    }
    pairs.sort();
    if pairs.is_empty() {
        bail!("{} looks like a {layout} folder but holds no image pairs ({})", dir.display(), layout.expects());
    }
    Ok(pairs)
}

/// Reads a configured set: its layout, task and pairs at least `min_patch` pixels on each side
/// (smaller ones are skipped with a warning, as clean images are). `has_clean`: clean images are
/// trained on too, which sets the default share (0.5, else 1).
pub fn scan(set: &PairedSet, min_patch: usize, has_clean: bool) -> Result<PairedSource> {
    let (layout, task) = resolve(set)?;
    let mut pairs = Vec::new();
    let (mut small, mut unreadable) = (0usize, 0usize);
    for (input, target) in find_pairs(&set.dir, layout)? {
        let sizes = image::image_dimensions(&input)
            .with_context(|| input.display().to_string())
            .and_then(|a| Ok((a, image::image_dimensions(&target).with_context(|| target.display().to_string())?)));
        match sizes {
            Ok((a, b)) if a != b => bail!(
                "{} is {}×{} but its partner {} is {}×{}: pairs must have the same size",
                input.display(),
                a.0,
                a.1,
                target.display(),
                b.0,
                b.1
            ),
            Ok(((w, h), _)) if (w as usize) < min_patch || (h as usize) < min_patch => {
                eprintln!("warning: skipped {} ({w}×{h}): smaller than the {min_patch}-pixel patch", input.display());
                small += 1;
            }
            Ok(((w, h), _)) => pairs.push(Pair { input, target, width: w as usize, height: h as usize }),
            Err(error) => {
                eprintln!("warning: skipped the pair of {error:#}");
                unreadable += 1;
            }
        }
    }
    if pairs.is_empty() {
        bail!(
            "no usable pairs in {} ({small} smaller than the {min_patch}-pixel patch, {unreadable} unreadable)",
            set.dir.display()
        );
    }
    let share = set.share.unwrap_or(if has_clean { 0.5 } else { 1.0 });
    Ok(PairedSource { dir: set.dir.clone(), layout, task, share, pairs })
}

#[cfg(test)]
pub(crate) mod tests {
    use restora_model::{BitDepth, Image};

    use super::*;

    /// Writes a small PNG, creating its folder.
    pub(crate) fn png(path: &Path, w: u32, h: u32, shade: f32) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        let image = Image::from_fn(w, h, |x, y| [shade, x as f32 / w as f32, y as f32 / h as f32]);
        std::fs::write(path, image.encode_png(BitDepth::Eight).unwrap()).unwrap();
    }

    fn set(dir: &Path, task: Option<Task>) -> PairedSet {
        PairedSet { dir: dir.to_path_buf(), task, share: None }
    }

    #[test]
    fn each_layout_is_recognised_and_paired() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        // SIDD: scene folders, NOISY beside GT (upper-case extension as shipped).
        for scene in ["0001_001_S6", "0002_001_S6"] {
            png(&r.join(format!("sidd/Data/{scene}/0001_NOISY_SRGB_010.PNG")), 20, 20, 0.3);
            png(&r.join(format!("sidd/Data/{scene}/0001_GT_SRGB_010.PNG")), 20, 20, 0.5);
        }
        // GoPro: <scene>/blur and <scene>/sharp.
        for scene in ["GOPR0372_07_00", "GOPR0374_11_00"] {
            for name in ["000047.png", "000048.png"] {
                png(&r.join(format!("gopro/train/{scene}/blur/{name}")), 20, 20, 0.3);
                png(&r.join(format!("gopro/train/{scene}/sharp/{name}")), 20, 20, 0.5);
            }
        }
        // REDS: train_blur/<seq> and train_sharp/<seq>, val too.
        for split in ["train", "val"] {
            png(&r.join(format!("reds/{split}/{split}_blur/000/00000000.png")), 20, 20, 0.3);
            png(&r.join(format!("reds/{split}/{split}_sharp/000/00000000.png")), 20, 20, 0.5);
        }
        // input/target with nested names, and one image too small for the patch.
        png(&r.join("generic/input/a/1.png"), 20, 20, 0.3);
        png(&r.join("generic/target/a/1.png"), 20, 20, 0.5);
        png(&r.join("generic/input/2.png"), 8, 8, 0.3);
        png(&r.join("generic/target/2.png"), 8, 8, 0.5);

        let sidd = scan(&set(&r.join("sidd"), None), 16, false).unwrap();
        assert_eq!((sidd.layout, sidd.task, sidd.pairs.len(), sidd.share), (Layout::Sidd, Task::Denoise, 2, 1.0));
        assert!(sidd.pairs.iter().all(|p| p.target.to_string_lossy().contains("_GT_SRGB_010")));
        let gopro = scan(&set(&r.join("gopro"), None), 16, true).unwrap();
        assert_eq!((gopro.layout, gopro.task, gopro.pairs.len(), gopro.share), (Layout::GoPro, Task::Deblur, 4, 0.5));
        assert!(gopro.pairs.iter().all(|p| p.target.parent().unwrap().ends_with("sharp")));
        let reds = scan(&set(&r.join("reds"), Some(Task::Deblur)), 16, false).unwrap();
        assert_eq!((reds.layout, reds.pairs.len()), (Layout::Reds, 2));
        assert!(reds.pairs[0].target.ends_with("train_sharp/000/00000000.png"), "{:?}", reds.pairs);
        let generic = scan(&set(&r.join("generic"), Some(Task::Dealias)), 16, false).unwrap();
        assert_eq!((generic.layout, generic.task, generic.pairs.len()), (Layout::InputTarget, Task::Dealias, 1));
        assert_eq!((generic.pairs[0].width, generic.pairs[0].height), (20, 20));

        // input/target needs a task; a named layout refuses another task; inpaint is not paired.
        let message = task_of(&set(&r.join("generic"), None)).unwrap_err().to_string();
        assert!(message.contains("DIR:TASK"), "{message}");
        let message = task_of(&set(&r.join("sidd"), Some(Task::Deblur))).unwrap_err().to_string();
        assert!(message.contains("SIDD") && message.contains("denoise"), "{message}");
        let message = task_of(&set(&r.join("generic"), Some(Task::Inpaint))).unwrap_err().to_string();
        assert!(message.contains("inpaint"), "{message}");
    }

    #[test]
    fn an_unknown_layout_lists_the_layouts_and_a_missing_partner_is_named() {
        let root = tempfile::tempdir().unwrap();
        let r = root.path();
        png(&r.join("photos/a.png"), 20, 20, 0.3);
        let message = detect(&r.join("photos")).unwrap_err().to_string();
        for layout in Layout::ALL {
            assert!(message.contains(layout.name()) && message.contains(layout.expects()), "{message}");
        }
        assert!(detect(&r.join("nowhere")).unwrap_err().to_string().contains("not a folder"));

        png(&r.join("sidd/s1/0001_NOISY_SRGB_010.PNG"), 20, 20, 0.3);
        let message = find_pairs(&r.join("sidd"), Layout::Sidd).unwrap_err().to_string();
        assert!(message.contains("0001_GT_SRGB_010.PNG"), "{message}");

        png(&r.join("gopro/s1/blur/000001.png"), 20, 20, 0.3);
        png(&r.join("gopro/s1/blur/000002.png"), 20, 20, 0.3);
        png(&r.join("gopro/s1/sharp/000001.png"), 20, 20, 0.5);
        let message = find_pairs(&r.join("gopro"), Layout::GoPro).unwrap_err().to_string();
        assert!(message.contains("sharp/000002.png"), "{message}");

        png(&r.join("generic/input/x.png"), 20, 20, 0.3);
        std::fs::create_dir_all(r.join("generic/target")).unwrap();
        let message = find_pairs(&r.join("generic"), Layout::InputTarget).unwrap_err().to_string();
        assert!(message.contains("target/x.png"), "{message}");

        // Partners of different sizes are refused, naming both.
        png(&r.join("sizes/input/x.png"), 20, 20, 0.3);
        png(&r.join("sizes/target/x.png"), 24, 20, 0.3);
        let message = scan(&set(&r.join("sizes"), Some(Task::Denoise)), 8, false).unwrap_err().to_string();
        assert!(message.contains("input/x.png") && message.contains("target/x.png"), "{message}");
    }
}
