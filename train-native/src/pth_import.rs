//! Reading official PyTorch checkpoints. burn-store 0.20.1 parses zip-format `.pth` files only
//! from a path (its reader over bytes takes legacy bare pickles), so this lives at the CLI edge.

use std::path::Path;

use anyhow::{Context, Result};
use burn_store::pytorch::PytorchReader;
use restora_model::weights::{NamedTensor, WeightFile};

/// Reads `torch.save({"params": state_dict})` (official Restormer checkpoints) or a bare state dict.
pub fn read_pth(path: &Path) -> Result<WeightFile> {
    let reader = PytorchReader::with_top_level_key(path, "params")
        .or_else(|_| PytorchReader::new(path))
        .with_context(|| format!("{} is not a readable PyTorch checkpoint", path.display()))?;
    let mut tensors = reader
        .into_tensors()
        .into_iter()
        .map(|(key, snapshot)| {
            let data = snapshot.to_data().with_context(|| format!("'{key}' cannot be read"))?;
            let values = data
                .convert::<f32>()
                .into_vec::<f32>()
                .map_err(|e| anyhow::anyhow!("'{key}' is not a float tensor: {e:?}"))?;
            Ok(NamedTensor { key, shape: snapshot.shape.clone(), values })
        })
        .collect::<Result<Vec<_>>>()?;
    tensors.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(WeightFile { tensors, metadata: Default::default() })
}
