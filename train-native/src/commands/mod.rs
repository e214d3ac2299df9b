//! One function per subcommand.

pub(crate) mod bench;
mod convert;
mod degrade;
mod demo;
mod eval;
pub(crate) mod figures;
pub(crate) mod finetune;
mod info;
pub(crate) mod plot;
mod restore;
pub(crate) mod score;
pub(crate) mod sweep;
pub(crate) mod train;

use anyhow::Result;

use crate::cli::{Cli, Command};

pub fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Restore(args) => restore::run(args),
        Command::Degrade(args) => degrade::run(args),
        Command::Eval(args) => eval::run(args),
        Command::Info(args) => info::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Demo(args) => demo::run(args),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Plot(args) => plot::run(args),
        Command::Finetune(args) => finetune::run(args),
        Command::Sweep(args) => sweep::run(args),
        Command::Figures(args) => figures::run(args),
        Command::Score(args) => score::run(args),
    }
}

/// Reads a weights file (`.safetensors`, or a `.pth` checkpoint converted in memory) as
/// safetensors bytes, saying what to do when it is missing.
pub(crate) fn read_weights(path: &std::path::Path) -> Result<Vec<u8>> {
    use anyhow::Context;
    if !path.exists() {
        anyhow::bail!(
            "no weights at {}: pass --weights with a .safetensors file (train one with `train-native train`, \
             or convert an official Restormer checkpoint with `train-native convert model.pth model.safetensors`)",
            path.display()
        );
    }
    // An official PyTorch checkpoint is read (and checked) as `convert` reads it.
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if matches!(extension.as_deref(), Some("pth" | "pt")) {
        let file = crate::pth_import::read_pth(path)?;
        return Ok(file.to_safetensors(restora_model::weights::StoredPrecision::F32)?);
    }
    std::fs::read(path).with_context(|| format!("cannot read weights {}", path.display()))
}
