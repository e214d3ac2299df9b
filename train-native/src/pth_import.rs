//! Reading official PyTorch checkpoints. burn-store 0.20.1 parses zip-format `.pth` files only
//! from a path (its reader over bytes takes legacy bare pickles), so this lives at the CLI edge.

use std::path::Path;

use anyhow::{anyhow, Context, Result};
use burn_store::pytorch::PytorchReader;
use restora_model::pth_check::check_pth;
use restora_model::weights::{NamedTensor, WeightFile};

/// Reads `torch.save({"params": state_dict})` (official Restormer checkpoints) or a bare state dict.
pub fn read_pth(path: &Path) -> Result<WeightFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    // burn-store trusts the file (a deep pickle aborts the process, a lying size panics): check
    // it first, with bounded time and memory.
    check_pth(&bytes).map_err(|e| anyhow!("{} is not a usable PyTorch checkpoint: {e}", path.display()))?;
    drop(bytes);
    let reader = PytorchReader::with_top_level_key(path, "params")
        .or_else(|_| PytorchReader::new(path))
        .map_err(|e| anyhow!("{} is not a readable PyTorch checkpoint: {e}", path.display()))?;
    let mut tensors = reader
        .into_tensors()
        .into_iter()
        .map(|(key, snapshot)| {
            let data = snapshot.to_data().map_err(|e| anyhow!("'{key}' in {} cannot be read: {e}", path.display()))?;
            let values = data
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| anyhow!("'{key}' in {} is not a float tensor: {e:?}", path.display()))?;
            Ok(NamedTensor { key, shape: snapshot.shape.clone(), values })
        })
        .collect::<Result<Vec<_>>>()?;
    tensors.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(WeightFile { tensors, metadata: Default::default() })
}
