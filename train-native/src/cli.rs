//! Command-line interface: one subcommand per job, each handled in `commands/`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use restora_model::degradations::Task;
use restora_model::tile_choice::TileChoice;
use restora_model::Preset;

use crate::backend::BackendChoice;

/// Default LPIPS weights (shift-tolerant AlexNet, converted from stlpips-pytorch).
pub const DEFAULT_LPIPS: &str = "static/weights/lpips/alex_shift_tolerant.safetensors";

#[derive(Parser, Debug)]
#[command(
    name = "train-native",
    version,
    about = "Restora: restore photos (denoise, deblur, anti-alias, inpaint) with one Restormer foundation model",
    long_about = "Restora: restore photos (denoise, deblur, anti-alias, inpaint) with one Restormer \
                  foundation model.\n\nRestore images, make degraded copies, evaluate PSNR / SSIM / \
                  LPIPS per task, inspect model shapes and convert official PyTorch checkpoints."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Restore an image (or every image of a folder) with a trained model.
    Restore(RestoreArgs),
    /// Apply one degradation with explicit parameters and a seed (reproducible byte for byte).
    Degrade(DegradeArgs),
    /// Degrade clean images, restore them and report PSNR / SSIM / LPIPS per task and degradation.
    Eval(EvalArgs),
    /// Print a model's shape, parameter count and MACs.
    Info(InfoArgs),
    /// Convert weights: official PyTorch `.pth` ⇄ `.safetensors` (same keys and shapes), or f32 ⇄ f16.
    Convert(ConvertArgs),
    /// Degrade a sample photo for every task and restore it with the shipped weights, reporting the gain.
    Demo(DemoArgs),
    /// Train a model on clean images degraded on the fly, the four tasks taking turns (resumable).
    Train(crate::commands::train::TrainArgs),
    /// Measure forward latency, megapixels/s, training iterations/s, peak memory and TFLOP/s per preset and backend.
    ///
    /// Example: `train-native bench --backend cuda --presets small,base --out bench/h100` writes
    /// bench/h100/bench.json and bench/h100/bench.md.
    Bench(crate::commands::bench::BenchArgs),
    /// Chart a training log: loss.png (loss per task) and psnr.png (validation PSNR per task).
    ///
    /// Example: `train-native plot runs/small` writes runs/small/loss.png and runs/small/psnr.png.
    Plot(crate::commands::plot::PlotArgs),
    /// Fine-tune a foundation model on one task with a few images, and score it (PSNR / SSIM / LPIPS).
    Finetune(crate::commands::finetune::FinetuneArgs),
    /// The report's fine-tuning sweeps (training size, iterations) for each task: tables and plots.
    Sweep(crate::commands::sweep::SweepArgs),
    /// The report's picture tables: degraded input | each model | ground truth, with PSNR / SSIM and
    /// jet error maps, one PNG per task and degradation.
    Figures(crate::commands::figures::FiguresArgs),
    /// PSNR / SSIM / LPIPS of restored images (from any method) against their clean references,
    /// with the metrics of `eval`.
    Score(crate::commands::score::ScoreArgs),
}

/// The restoration a user asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TaskChoice {
    Denoise,
    Deblur,
    Dealias,
    /// Fill the pixels marked by --mask.
    Inpaint,
    /// Let the foundation model handle whatever it sees (a mask is used if given).
    Auto,
}

impl TaskChoice {
    pub fn task(self) -> Option<Task> {
        match self {
            TaskChoice::Denoise => Some(Task::Denoise),
            TaskChoice::Deblur => Some(Task::Deblur),
            TaskChoice::Dealias => Some(Task::Dealias),
            TaskChoice::Inpaint => Some(Task::Inpaint),
            TaskChoice::Auto => None,
        }
    }

    /// The same choice in the terms of models.json.
    pub fn choice(self) -> restora_model::manifest::TaskChoice {
        self.task().map_or(restora_model::manifest::TaskChoice::Auto, restora_model::manifest::TaskChoice::Task)
    }
}

#[derive(Args, Debug)]
pub struct RestoreArgs {
    /// Model weights (.safetensors, or an official .pth checkpoint); the shape is read from the
    /// file. Default: the shipped model for the task (static/weights/models.json).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// What to restore.
    #[arg(long, value_enum, default_value = "auto")]
    pub task: TaskChoice,
    /// Image file, or a folder of images.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Inpainting mask (white = missing), same size as the image; a folder of masks named like the images when --input is a folder.
    #[arg(long)]
    pub mask: Option<PathBuf>,
    /// Output PNG, or a folder when --input is a folder.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Tiles: `auto` (the whole image when it fits --max-memory-mb, else the largest of 512, 256
    /// and 128 px tiles that does), `whole`, or a tile side in pixels. Memory is bounded by the tile.
    #[arg(long, default_value = "auto")]
    pub tile: TileChoice,
    /// Overlap between tiles in pixels.
    #[arg(long, default_value_t = 32)]
    pub overlap: usize,
    /// Memory the network may use at once (estimated from the weights' shape and the tile), in MiB.
    #[arg(long, default_value_t = 4096, value_parser = clap::value_parser!(u64).range(64..))]
    pub max_memory_mb: u64,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
    /// Bits per channel of the output PNG.
    #[arg(long, value_parser = ["8", "16"], default_value = "8")]
    pub bit_depth: String,
}

/// The degradation kinds of `degrade`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DegradationKind {
    /// Additive Gaussian noise, --sigma in [5, 50] (/255).
    GaussianNoise,
    /// Shot noise, --peak in [10, 100] photons at white.
    PoissonNoise,
    /// Impulse noise, --ratio in [0.01, 0.10] of the pixels.
    SaltAndPepper,
    /// Gaussian blur, --sigma in [0.5, 3] px.
    GaussianBlur,
    /// Motion blur, --length in [5, 25] px, --angle in degrees (random if omitted), --motion-kernel.
    MotionBlur,
    /// Downscale by --factor in [0.25, 0.5] then back up.
    Aliasing,
    /// 1–10 smooth scratches 2–6 px thick (writes the mask with --mask-out).
    Scratches,
}

#[derive(Args, Debug)]
pub struct DegradeArgs {
    /// Which degradation (or use --random to draw one for a task).
    #[arg(long, value_enum, required_unless_present = "random")]
    pub kind: Option<DegradationKind>,
    /// Draw a random degradation for this task from the training ranges instead of --kind.
    #[arg(long, value_parser = parse_task, conflicts_with = "kind")]
    pub random: Option<Task>,
    /// Seed: the same seed and parameters give the same bytes.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Clean image.
    #[arg(long, short)]
    pub input: PathBuf,
    /// Degraded PNG.
    #[arg(long, short)]
    pub output: PathBuf,
    /// Where to write the scratch mask (PNG, white = missing).
    #[arg(long)]
    pub mask_out: Option<PathBuf>,
    /// Also write the exact degradation applied, as JSON.
    #[arg(long)]
    pub params_out: Option<PathBuf>,
    /// Noise σ (/255) for gaussian-noise, or blur σ (px) for gaussian-blur.
    #[arg(long)]
    pub sigma: Option<f32>,
    /// Photon count at white for poisson-noise.
    #[arg(long, default_value_t = 30.0)]
    pub peak: f32,
    /// Fraction of corrupted pixels for salt-and-pepper.
    #[arg(long, default_value_t = 0.05)]
    pub ratio: f32,
    /// Motion length in pixels.
    #[arg(long, default_value_t = 15.0)]
    pub length: f32,
    /// Motion direction in degrees (random from the seed if omitted).
    #[arg(long)]
    pub angle: Option<f32>,
    /// Motion kernel shape.
    #[arg(long, value_enum, default_value = "line")]
    pub motion_kernel: MotionKernelChoice,
    /// Downscale factor for aliasing.
    #[arg(long, default_value_t = 0.3)]
    pub factor: f32,
    /// Downsampling for aliasing.
    #[arg(long, value_enum, default_value = "nearest")]
    pub down: DownChoice,
    /// Upsampling for aliasing.
    #[arg(long, value_enum, default_value = "bicubic")]
    pub up: UpChoice,
    /// Number of scratches.
    #[arg(long, default_value_t = 5)]
    pub strokes: u32,
    /// Scratch colour as R,G,B in [0, 1] (random colours if omitted).
    #[arg(long, value_parser = parse_rgb)]
    pub color: Option<[f32; 3]>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MotionKernelChoice {
    Line,
    Trajectory,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum DownChoice {
    Nearest,
    Area,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum UpChoice {
    Bilinear,
    Bicubic,
}

#[derive(Args, Debug)]
pub struct EvalArgs {
    /// Model weights (.safetensors or .pth). Default: the shipped foundation model (static/weights/models.json).
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder of clean images (searched recursively); each is degraded with every degradation of each task.
    #[arg(long)]
    pub data: PathBuf,
    /// Tasks to evaluate, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_task, default_value = "denoise,deblur,dealias,inpaint")]
    pub tasks: Vec<Task>,
    /// Report path: Markdown (.md) or JSON (.json).
    #[arg(long)]
    pub report: PathBuf,
    /// Folder for jet-coloured error maps (restored vs clean), one PNG per image and degradation.
    #[arg(long)]
    pub error_maps: Option<PathBuf>,
    /// LPIPS weights; LPIPS is skipped, with a note in the report, if the file is missing.
    #[arg(long, default_value = DEFAULT_LPIPS)]
    pub lpips: PathBuf,
    /// Evaluate at most this many images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Pixels cropped from each border before PSNR / SSIM.
    #[arg(long, default_value_t = 0)]
    pub crop_border: u32,
    /// Seed of the degradations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Tile side for large images.
    #[arg(long)]
    pub tile: Option<usize>,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

#[derive(Args, Debug)]
pub struct InfoArgs {
    /// A shipped shape.
    #[arg(long, value_parser = parse_preset, default_value = "small", conflicts_with = "weights")]
    pub preset: Preset,
    /// Describe the model in a weights file instead of a preset.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// With the inpainting mask as a 4th input channel (the foundation model).
    #[arg(long)]
    pub mask_aware: bool,
    /// Image side for the MAC count.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Default sample of `demo`.
pub const DEFAULT_SAMPLE: &str = "static/samples/skimage-chelsea.png";

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Clean photo to degrade and restore.
    #[arg(long, default_value = DEFAULT_SAMPLE)]
    pub sample: PathBuf,
    /// Model weights (.safetensors). Default: the shipped foundation model; without one the demo
    /// only degrades.
    #[arg(long)]
    pub weights: Option<PathBuf>,
    /// Folder for the degraded, restored and error-map images.
    #[arg(long, default_value = "demo-output")]
    pub output: PathBuf,
    /// Seed of the degradations.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Where the model runs.
    #[arg(long, value_enum, default_value = "cpu")]
    pub backend: BackendChoice,
}

/// Precision of written safetensors.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PrecisionChoice {
    F32,
    F16,
}

#[derive(Args, Debug)]
pub struct ConvertArgs {
    /// Input weights: `.pth` (official checkpoint) or `.safetensors`.
    pub input: PathBuf,
    /// Output weights: `.safetensors` or `.pth`.
    pub output: PathBuf,
    /// Precision of a `.safetensors` output.
    #[arg(long, value_enum, default_value = "f32")]
    pub precision: PrecisionChoice,
}

pub(crate) fn parse_task(s: &str) -> Result<Task, String> {
    s.parse::<Task>().map_err(|e| e.to_string())
}

pub(crate) fn parse_preset(s: &str) -> Result<Preset, String> {
    s.trim().parse()
}

fn parse_rgb(s: &str) -> Result<[f32; 3], String> {
    let values: Vec<f32> = s
        .split(',')
        .map(|v| v.trim().parse::<f32>().map_err(|_| format!("'{v}' is not a number")))
        .collect::<Result<_, _>>()?;
    match values.as_slice() {
        [r, g, b] if values.iter().all(|v| (0.0..=1.0).contains(v)) => Ok([*r, *g, *b]),
        _ => Err("expected R,G,B with each value in [0, 1], e.g. 1,1,1".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

    /// Every subcommand with its long flags, read from the parser itself.
    fn vocabulary() -> Vec<(String, Vec<String>)> {
        Cli::command()
            .get_subcommands()
            .map(|c| {
                let flags = c.get_arguments().filter_map(|a| a.get_long()).map(|l| format!("--{l}")).collect();
                (c.get_name().to_string(), flags)
            })
            .collect()
    }

    fn cases() -> u32 {
        std::env::var("RESTORA_FUZZ_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(64)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

        /// Any command line, made of the real flags and odd values, parses or is refused with
        /// clap's message: never a panic (clap's own consistency checks run in debug builds).
        #[test]
        fn any_command_line_parses_or_is_refused(
            command in any::<prop::sample::Index>(),
            tokens in prop::collection::vec(
                (any::<prop::sample::Index>(), prop_oneof![
                    Just(String::new()),
                    "-?[0-9]{1,22}(\\.[0-9]{0,3})?",
                    prop::sample::select(vec!["nan", "inf", "auto", "whole", "cpu", "wgpu", "cuda", "denoise",
                        "inpaint", "tiny", "small", "base", "8", "16", "x", "--", "-", "a.png", "/", "128x8@1000"])
                        .prop_map(str::to_string),
                    "[ -~]{0,12}",
                ]),
                0..8,
            ),
        ) {
            let vocabulary = vocabulary();
            let (name, flags) = command.get(&vocabulary);
            let mut args = vec!["train-native".to_string(), name.clone()];
            for (flag, value) in tokens {
                if !flags.is_empty() {
                    args.push(flag.get(flags).clone());
                }
                if !value.is_empty() {
                    args.push(value);
                }
            }
            if let Err(e) = Cli::try_parse_from(&args) {
                prop_assert!(!e.to_string().trim().is_empty(), "{args:?}: an empty message");
            }
        }
    }
}
