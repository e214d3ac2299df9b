//! `train-native demo`: the main job of the CLI on a bundled photo: degrade it for each task with
//! the model crate's own degradations, restore it with the shipped weights, and show the gain.

use anyhow::{Context, Result};
use restora_model::degradations::{Degradation, Task};
use restora_model::inference::{restore, Control, TileOptions};
use restora_model::manifest::TaskChoice;
use restora_model::metrics::{error_map, psnr, ssim, ErrorScale, MetricOptions};
use restora_model::RestoraBackend;
use restora_model::{weights, Image};

use super::eval::evaluation_set;
use crate::backend::{run_on, BackendTask};
use crate::cli::DemoArgs;
use crate::files::{read_image, write_atomic};

pub fn run(args: DemoArgs) -> Result<()> {
    let clean = read_image(&args.sample)?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("cannot create {}", args.output.display()))?;
    // The first evaluation degradation of each task: Gaussian noise σ 25, Gaussian blur σ 1.5,
    // aliasing at 0.3, five scratches.
    let cases: Vec<(Task, Degradation)> =
        Task::ALL.iter().map(|&task| (task, evaluation_set(task).remove(0))).collect();
    let mut degraded = Vec::new();
    for (task, degradation) in &cases {
        let result = degradation.apply(&clean, args.seed)?;
        let path = args.output.join(format!("{task}-degraded.png"));
        write_atomic(&path, &result.image.encode_png(Default::default())?)?;
        if let Some(mask) = &result.mask {
            write_atomic(&args.output.join(format!("{task}-mask.png")), &mask.encode_png()?)?;
        }
        degraded.push(result);
    }

    println!(
        "sample {} ({}×{}), outputs in {}",
        args.sample.display(),
        clean.width(),
        clean.height(),
        args.output.display()
    );
    let weights = crate::shipped::given_or_shipped(args.weights.as_deref(), TaskChoice::Auto)?;
    let restored = if let Some(weights) = &weights {
        let bytes = super::read_weights(weights)?;
        Some(run_on(args.backend, RestoreEach { bytes, degraded: &degraded })?)
    } else {
        None
    };
    let options = MetricOptions::new();
    println!("\n| task | degradation | input PSNR | input SSIM | restored PSNR | restored SSIM |");
    println!("|---|---|---:|---:|---:|---:|");
    for (i, (task, degradation)) in cases.iter().enumerate() {
        let input = &degraded[i].image;
        let (in_psnr, in_ssim) = (psnr(input, &clean, &options)?, ssim(input, &clean, &options)?);
        let out = match &restored {
            Some(images) => {
                let image = &images[i];
                write_atomic(
                    &args.output.join(format!("{task}-restored.png")),
                    &image.encode_png(Default::default())?,
                )?;
                let map = error_map(image, &clean, ErrorScale::Fixed(0.1))?;
                write_atomic(&args.output.join(format!("{task}-error-map.png")), &map.encode_png(Default::default())?)?;
                format!("{:.2} dB | {:.4}", psnr(image, &clean, &options)?, ssim(image, &clean, &options)?)
            }
            None => "– | –".into(),
        };
        println!("| {task} | {} | {in_psnr:.2} dB | {in_ssim:.4} | {out} |", degradation.kind());
    }
    match &weights {
        Some(path) => println!("\nweights: {}", path.display()),
        None => println!(
            "\nNo trained weights in {}/models.json: the demo degraded the sample only. Pass --weights \
             with a .safetensors model (official Restormer checkpoints convert with `train-native convert`).",
            crate::shipped::SHIPPED_DIR
        ),
    }
    Ok(())
}

/// Loads one model and restores each degraded image (its mask for inpainting), in order.
pub(crate) struct RestoreEach<'a> {
    /// The weights file's bytes.
    pub bytes: Vec<u8>,
    pub degraded: &'a [restora_model::degradations::Degraded],
}

impl BackendTask for RestoreEach<'_> {
    type Output = Vec<Image>;

    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Vec<Image>> {
        let (model, _) = weights::load::<B>(&self.bytes, &device).context("cannot load the weights")?;
        self.degraded
            .iter()
            .map(|d| {
                restore(&model, &d.image, d.mask.as_ref(), &TileOptions::default(), &device, |_| Control::Continue)
                    .map_err(Into::into)
            })
            .collect()
    }
}
