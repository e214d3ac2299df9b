//! `train-native degrade`: one seeded degradation with explicit parameters.

use anyhow::{bail, Result};
use rand::SeedableRng;
use restora_model::degradations::{
    sample, Aliasing, Degradation, Downsampling, GaussianBlur, GaussianNoise, MotionBlur, MotionKernel, PoissonNoise,
    SaltAndPepper, ScratchFill, Scratches, Upsampling,
};

use crate::cli::{DegradationKind, DegradeArgs, DownChoice, MotionKernelChoice, UpChoice};
use crate::files::{ensure_not_an_input, ensure_png, read_image, write_atomic};

pub fn run(args: DegradeArgs) -> Result<()> {
    let degradation = degradation(&args)?;
    degradation.validate()?;
    ensure_png(&args.output)?;
    ensure_not_an_input(&args.output, &[&args.input])?;
    if let Some(mask_out) = &args.mask_out {
        ensure_png(mask_out)?;
        ensure_not_an_input(mask_out, &[&args.input])?;
    }
    let image = read_image(&args.input)?;
    let degraded = degradation.apply(&image, args.seed)?;
    write_atomic(&args.output, &degraded.image.encode_png(Default::default())?)?;
    match (&args.mask_out, &degraded.mask) {
        (Some(path), Some(mask)) => write_atomic(path, &mask.encode_png()?)?,
        (Some(_), None) => eprintln!("note: {} makes no mask; --mask-out ignored", degradation.kind()),
        _ => {}
    }
    if let Some(path) = &args.params_out {
        let json = serde_json::to_string_pretty(&serde_json::json!({ "seed": args.seed, "degradation": degradation }))?;
        write_atomic(path, json.as_bytes())?;
    }
    println!("wrote {} ({})", args.output.display(), serde_json::to_string(&degradation)?);
    Ok(())
}

/// The degradation the flags describe; `--random TASK` draws one from the seed.
fn degradation(args: &DegradeArgs) -> Result<Degradation> {
    if let Some(task) = args.random {
        // A separate stream from the one the degradation itself uses.
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(args.seed ^ 0x5eed_d1ce);
        return Ok(sample(task, &mut rng));
    }
    let Some(kind) = args.kind else { bail!("give --kind or --random") };
    Ok(match kind {
        DegradationKind::GaussianNoise => {
            Degradation::GaussianNoise(GaussianNoise { sigma: args.sigma.unwrap_or(25.0) })
        }
        DegradationKind::PoissonNoise => Degradation::PoissonNoise(PoissonNoise { peak: args.peak }),
        DegradationKind::SaltAndPepper => Degradation::SaltAndPepper(SaltAndPepper { ratio: args.ratio }),
        DegradationKind::GaussianBlur => Degradation::GaussianBlur(GaussianBlur { sigma: args.sigma.unwrap_or(1.5) }),
        DegradationKind::MotionBlur => Degradation::MotionBlur(MotionBlur {
            length: args.length,
            angle: args.angle,
            kernel: match args.motion_kernel {
                MotionKernelChoice::Line => MotionKernel::Line,
                MotionKernelChoice::Trajectory => MotionKernel::Trajectory,
            },
        }),
        DegradationKind::Aliasing => Degradation::Aliasing(Aliasing {
            factor: args.factor,
            down: match args.down {
                DownChoice::Nearest => Downsampling::Nearest,
                DownChoice::Area => Downsampling::Area,
            },
            up: match args.up {
                UpChoice::Bilinear => Upsampling::Bilinear,
                UpChoice::Bicubic => Upsampling::Bicubic,
            },
        }),
        DegradationKind::Scratches => Degradation::Scratches(Scratches {
            strokes: args.strokes,
            fill: args.color.map_or(ScratchFill::Random, |rgb| ScratchFill::Constant { rgb }),
            ..Scratches::default()
        }),
    })
}
