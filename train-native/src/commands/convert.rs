//! `train-native convert`: official `.pth` ⇄ `.safetensors`, and f32 ⇄ f16.

use std::path::Path;

use anyhow::{bail, Context, Result};
use restora_model::weights::{self, StoredPrecision, WeightFile};

use crate::cli::{ConvertArgs, PrecisionChoice};
use crate::files::{ensure_not_an_input, write_atomic};
use crate::pth_import::read_pth;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Pth,
    Safetensors,
}

fn format_of(path: &Path) -> Result<Format> {
    match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("pth") | Some("pt") => Ok(Format::Pth),
        Some("safetensors") => Ok(Format::Safetensors),
        _ => bail!("{}: expected a .pth or .safetensors file", path.display()),
    }
}

pub fn run(args: ConvertArgs) -> Result<()> {
    let (from, to) = (format_of(&args.input)?, format_of(&args.output)?);
    ensure_not_an_input(&args.output, &[&args.input])?;
    let mut file = match from {
        Format::Pth => read_pth(&args.input)?,
        Format::Safetensors => {
            let bytes = std::fs::read(&args.input).with_context(|| format!("cannot read {}", args.input.display()))?;
            WeightFile::from_safetensors(&bytes)
                .with_context(|| format!("cannot read weights from {}", args.input.display()))?
        }
    };

    // Check the tensors really are a Restormer, and put them in the official order.
    let config = file.config()?;
    let model = config.init::<burn::backend::NdArray<f32>>(&Default::default());
    let model = weights::apply(model, &file).context("the checkpoint does not match the Restormer architecture")?;
    weights::official_order(&mut file, &model);
    file.metadata.insert(weights::CONFIG_METADATA_KEY.into(), weights::config_json(&config));

    let out = match to {
        Format::Safetensors => file.to_safetensors(match args.precision {
            PrecisionChoice::F32 => StoredPrecision::F32,
            PrecisionChoice::F16 => StoredPrecision::F16,
        })?,
        Format::Pth => restora_model::pth::to_pth(&file, Some("params"))?,
    };
    write_atomic(&args.output, &out)?;
    println!(
        "wrote {} ({} tensors, {} parameters, dim {}, blocks {:?})",
        args.output.display(),
        file.tensors.len(),
        config.num_params(),
        config.dim,
        config.num_blocks
    );
    Ok(())
}
