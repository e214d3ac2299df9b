//! `train-native info`: a model's shape, parameters and cost.

use anyhow::{Context, Result};
use restora_model::weights::WeightFile;
use restora_model::RestormerConfig;

use crate::cli::InfoArgs;

pub fn run(args: InfoArgs) -> Result<()> {
    let (name, config) = match &args.weights {
        Some(path) => {
            let file = WeightFile::from_safetensors(&super::read_weights(path)?)
                .with_context(|| format!("cannot read {}", path.display()))?;
            (path.display().to_string(), file.config()?)
        }
        None => (args.preset.to_string(), RestormerConfig::preset(args.preset).with_mask_aware(args.mask_aware)),
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let params = config.num_params();
    let macs = config.macs(args.size, args.size);
    if args.json {
        let json = serde_json::json!({
            "model": name,
            "config": config,
            "parameters": params,
            "size": args.size,
            "macs": macs.total(),
            "macs_convolutions": macs.convolutions,
            "macs_attention": macs.attention,
            "f32_megabytes": params as f64 * 4.0 / 1e6,
        });
        println!("{}", serde_json::to_string_pretty(&json)?);
        return Ok(());
    }
    println!("model:        {name}");
    println!("dim:          {}", config.dim);
    println!("blocks:       {:?} (+{} refinement)", config.num_blocks, config.num_refinement_blocks);
    println!("heads:        {:?}", config.heads);
    println!("ffn factor:   {}", config.ffn_expansion_factor);
    println!("layer norm:   {:?}", config.layer_norm);
    println!(
        "input:        {} channels{}",
        config.input_channels(),
        if config.mask_aware { " (RGB + mask)" } else { " (RGB)" }
    );
    println!(
        "parameters:   {} ({:.1} MB as f32, {:.1} MB as f16)",
        group(params),
        params as f64 * 4e-6,
        params as f64 * 2e-6
    );
    println!(
        "MACs @ {0}×{0}: {1:.2} G ({2:.2} G convolutions, as the paper counts, + {3:.2} G attention)",
        args.size,
        macs.total() as f64 / 1e9,
        macs.convolutions as f64 / 1e9,
        macs.attention as f64 / 1e9
    );
    Ok(())
}

/// 26126644 → "26,126,644".
fn group(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
