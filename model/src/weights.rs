//! Weights on disk and over the network: safetensors with the official Restormer key names
//! (`patch_embed.proj.weight`, `encoder_level1.0.attn.temperature`, ...), loadable by PyTorch's
//! `load_state_dict(strict=True)`; `.pth` checkpoints are written by `crate::pth` (feature `pth`)
//! and read by the CLI (burn-store reads zip checkpoints only from a path).
//!
//! The model's configuration travels in the safetensors metadata under [`CONFIG_METADATA_KEY`];
//! files without it (official checkpoints) have their configuration inferred from the shapes.

use std::collections::{BTreeMap, HashMap};

use burn::module::ParamId;
use burn::prelude::*;
use burn::tensor::TensorData;
use burn_store::{ModuleSnapshot, TensorSnapshot};
use safetensors::tensor::{Dtype, SafeTensors, TensorView};

use crate::{LayerNormKind, Restormer, RestormerConfig};

/// Metadata key holding the [`RestormerConfig`] as JSON.
pub const CONFIG_METADATA_KEY: &str = "restora.config";

/// What can go wrong reading or writing weights.
#[derive(Debug, thiserror::Error)]
pub enum WeightsError {
    #[error("not a valid safetensors file: {0}")]
    Format(String),
    #[error("could not read the PyTorch checkpoint: {0}")]
    Pytorch(String),
    #[error("weights do not fit the model: '{key}' has shape {found:?} in the file, the model expects {expected:?}")]
    ShapeMismatch { key: String, expected: Vec<usize>, found: Vec<usize> },
    #[error("weights do not fit the model: '{0}' is missing from the file")]
    MissingKey(String),
    #[error("weights do not fit the model: the file has '{0}', which the model does not")]
    UnexpectedKey(String),
    #[error("'{key}' is stored as {dtype}, expected a floating-point type (F16, BF16, F32 or F64)")]
    DType { key: String, dtype: String },
    #[error("cannot tell the model's shape from the file: {0}")]
    Config(String),
    #[error("the weights are broken: '{key}' holds {value} (a diverged training or a damaged file)")]
    NonFinite { key: String, value: f32 },
    #[error("could not write the weights: {0}")]
    Write(String),
}

/// Precision of saved weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum StoredPrecision {
    #[default]
    F32,
    /// Half the size; the loader widens back to f32.
    F16,
}

/// One named tensor, in f32, as stored in a file.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub key: String,
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// The tensors of a weights file with its metadata.
#[derive(Debug, Clone, Default)]
pub struct WeightFile {
    /// In the order the model declares them (the official state-dict order) when written by us.
    pub tensors: Vec<NamedTensor>,
    pub metadata: HashMap<String, String>,
}

impl WeightFile {
    /// Parses safetensors bytes.
    pub fn from_safetensors(bytes: &[u8]) -> Result<Self, WeightsError> {
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let file = SafeTensors::deserialize(bytes).map_err(|e| WeightsError::Format(e.to_string()))?;
        let mut tensors = file
            .tensors()
            .into_iter()
            .map(|(key, view)| {
                let values = widen(&key, &view)?;
                Ok(NamedTensor { key, shape: view.shape().to_vec(), values })
            })
            .collect::<Result<Vec<_>, WeightsError>>()?;
        // The format does not keep insertion order: restore the declaration order when known.
        let order: HashMap<String, usize> = header
            .metadata()
            .as_ref()
            .and_then(|m| m.get(ORDER_METADATA_KEY))
            .map(|order| order.split(',').enumerate().map(|(i, k)| (k.to_string(), i)).collect())
            .unwrap_or_default();
        tensors.sort_by_key(|t| (order.get(&t.key).copied().unwrap_or(usize::MAX), t.key.clone()));
        Ok(Self { tensors, metadata: header.metadata().clone().unwrap_or_default() })
    }

    /// Serialises as safetensors.
    pub fn to_safetensors(&self, precision: StoredPrecision) -> Result<Vec<u8>, WeightsError> {
        let (dtype, buffers): (Dtype, Vec<Vec<u8>>) = match precision {
            StoredPrecision::F32 => (
                Dtype::F32,
                self.tensors.iter().map(|t| t.values.iter().flat_map(|v| v.to_le_bytes()).collect()).collect(),
            ),
            StoredPrecision::F16 => (
                Dtype::F16,
                self.tensors
                    .iter()
                    .map(|t| t.values.iter().flat_map(|v| half::f16::from_f32(*v).to_le_bytes()).collect())
                    .collect(),
            ),
        };
        let views = self
            .tensors
            .iter()
            .zip(&buffers)
            .map(|(t, bytes)| {
                TensorView::new(dtype, t.shape.clone(), bytes)
                    .map(|view| (t.key.clone(), view))
                    .map_err(|e| WeightsError::Write(format!("'{}': {e}", t.key)))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut metadata = self.metadata.clone();
        metadata.insert(
            ORDER_METADATA_KEY.into(),
            self.tensors.iter().map(|t| t.key.as_str()).collect::<Vec<_>>().join(","),
        );
        safetensors::serialize(views, &Some(metadata)).map_err(|e| WeightsError::Write(e.to_string()))
    }

    /// Shapes by key.
    pub fn shapes(&self) -> BTreeMap<&str, &[usize]> {
        self.tensors.iter().map(|t| (t.key.as_str(), t.shape.as_slice())).collect()
    }

    /// The configuration stored in the metadata, else inferred from the shapes.
    pub fn config(&self) -> Result<RestormerConfig, WeightsError> {
        match self.metadata.get(CONFIG_METADATA_KEY) {
            Some(json) => serde_json::from_str(json).map_err(|e| WeightsError::Config(format!("metadata: {e}"))),
            None => infer_config(&self.shapes()),
        }
    }
}

/// Keeps the official key order across a save/load round trip (safetensors sorts keys).
const ORDER_METADATA_KEY: &str = "restora.key_order";

/// Loads a model from safetensors bytes, its shape from the metadata or inferred.
pub fn load<B: Backend>(bytes: &[u8], device: &B::Device) -> Result<(Restormer<B>, RestormerConfig), WeightsError> {
    let file = WeightFile::from_safetensors(bytes)?;
    let config = file.config()?;
    let model = apply(config.init(device), &file)?;
    Ok((model, config))
}

/// Saves a model as safetensors with the official key names and its config in the metadata.
pub fn save<B: Backend>(
    model: &Restormer<B>,
    config: &RestormerConfig,
    precision: StoredPrecision,
) -> Result<Vec<u8>, WeightsError> {
    export(model, config).to_safetensors(precision)
}

/// The model's tensors with the official names, in declaration order.
pub fn export<B: Backend>(model: &Restormer<B>, config: &RestormerConfig) -> WeightFile {
    let tensors = model
        .collect(None, None, false)
        .into_iter()
        .map(|snapshot| {
            let data = snapshot.to_data().expect("a module's own tensors are readable");
            NamedTensor {
                key: snapshot.full_path(),
                shape: snapshot.shape.clone(),
                values: data.convert::<f32>().into_vec::<f32>().expect("converted to f32"),
            }
        })
        .collect();
    let metadata = HashMap::from([(CONFIG_METADATA_KEY.to_string(), config_json(config))]);
    WeightFile { tensors, metadata }
}

/// The config as stored in metadata.
pub fn config_json(config: &RestormerConfig) -> String {
    serde_json::to_string(config).expect("a config serialises")
}

/// Puts the file's tensors into `model`, strictly: every key must exist on both sides with the
/// same shape (as PyTorch's `load_state_dict(strict=True)`), else the first offending key is named.
pub fn apply<B: Backend>(mut model: Restormer<B>, file: &WeightFile) -> Result<Restormer<B>, WeightsError> {
    let expected = model.collect(None, None, false);
    let found = file.shapes();
    for snapshot in &expected {
        let key = snapshot.full_path();
        match found.get(key.as_str()) {
            None => return Err(WeightsError::MissingKey(key)),
            Some(shape) if *shape != snapshot.shape.as_slice() => {
                return Err(WeightsError::ShapeMismatch {
                    key,
                    expected: snapshot.shape.clone(),
                    found: shape.to_vec(),
                })
            }
            Some(_) => {}
        }
    }
    let known: std::collections::HashSet<String> = expected.iter().map(|s| s.full_path()).collect();
    if let Some(extra) = file.tensors.iter().find(|t| !known.contains(&t.key)) {
        return Err(WeightsError::UnexpectedKey(extra.key.clone()));
    }
    // A NaN or an infinity would turn every restored pixel into NaN: refuse it by name.
    for tensor in &file.tensors {
        if let Some(&value) = tensor.values.iter().find(|v| !v.is_finite()) {
            return Err(WeightsError::NonFinite { key: tensor.key.clone(), value });
        }
    }
    let snapshots = file
        .tensors
        .iter()
        .map(|t| {
            let data = TensorData::new(t.values.clone(), t.shape.clone());
            TensorSnapshot::from_data(data, t.key.split('.').map(String::from).collect(), vec![], ParamId::new())
        })
        .collect();
    let result = model.apply(snapshots, None, None, false);
    if let Some(error) = result.errors.first() {
        return Err(WeightsError::Format(error.to_string()));
    }
    Ok(model)
}

/// Reorders a file's tensors into the model's declaration order (the official order).
pub fn official_order<B: Backend>(file: &mut WeightFile, model: &Restormer<B>) {
    let order: HashMap<String, usize> =
        model.collect(None, None, false).iter().enumerate().map(|(i, s)| (s.full_path(), i)).collect();
    file.tensors.sort_by_key(|t| (order.get(&t.key).copied().unwrap_or(usize::MAX), t.key.clone()));
}

/// Infers the configuration of an official-style state dict from its keys and shapes.
pub fn infer_config(shapes: &BTreeMap<&str, &[usize]>) -> Result<RestormerConfig, WeightsError> {
    let shape = |key: &str| -> Result<&[usize], WeightsError> {
        shapes
            .get(key)
            .copied()
            .ok_or_else(|| WeightsError::Config(format!("no '{key}' (is this a Restormer checkpoint?)")))
    };
    // One dimension of a key's shape; a shape with too few dimensions is named, not indexed.
    let dimension = |key: &str, axis: usize| -> Result<usize, WeightsError> {
        let found = shape(key)?;
        found.get(axis).copied().ok_or_else(|| WeightsError::Config(format!("'{key}' has shape {found:?}")))
    };
    let embed = shape("patch_embed.proj.weight")?;
    let output = shape("output.weight")?;
    if embed.len() != 4 || output.len() != 4 {
        return Err(WeightsError::Config("patch_embed.proj.weight and output.weight must be 4-D".into()));
    }
    let (dim, input_channels, channels) = (embed[0], embed[1], output[0]);
    let mask_aware = match input_channels.checked_sub(channels) {
        Some(0) => false,
        Some(1) => true,
        _ => {
            return Err(WeightsError::Config(format!("{input_channels} input channels for {channels} output channels")))
        }
    };
    let count = |stage: &str| {
        shapes
            .keys()
            .filter_map(|k| k.strip_prefix(stage)?.strip_prefix('.')?.split('.').next()?.parse::<usize>().ok())
            .max()
            .map_or(0, |i| i + 1)
    };
    let stages = ["encoder_level1", "encoder_level2", "encoder_level3", "latent"];
    let num_blocks = stages.map(count);
    let mut heads = [0; 4];
    for (level, stage) in stages.iter().enumerate() {
        heads[level] = dimension(&format!("{stage}.0.attn.temperature"), 0)?;
    }
    let layer_norm = if shapes.contains_key("encoder_level1.0.norm1.body.bias") {
        LayerNormKind::WithBias
    } else {
        LayerNormKind::BiasFree
    };
    let hidden = dimension("encoder_level1.0.ffn.project_out.weight", 1)?;
    // Prefer the paper's 2.66 whenever it gives this width.
    let ffn_expansion_factor =
        if (dim as f64 * 2.66) as usize == hidden { 2.66 } else { (hidden as f64 + 0.5) / dim as f64 };
    let config = RestormerConfig::new()
        .with_dim(dim)
        .with_num_blocks(num_blocks)
        .with_num_refinement_blocks(count("refinement"))
        .with_heads(heads)
        .with_ffn_expansion_factor(ffn_expansion_factor)
        .with_layer_norm(layer_norm)
        .with_channels(channels)
        .with_mask_aware(mask_aware);
    config.validate().map_err(WeightsError::Config)?;
    Ok(config)
}

fn widen(key: &str, view: &TensorView<'_>) -> Result<Vec<f32>, WeightsError> {
    let bytes = view.data();
    let values = match view.dtype() {
        Dtype::F32 => bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect(),
        Dtype::F16 => bytes.chunks_exact(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::BF16 => bytes.chunks_exact(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
        Dtype::F64 => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]) as f32)
            .collect(),
        other => return Err(WeightsError::DType { key: key.to_string(), dtype: format!("{other:?}") }),
    };
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Preset, TestBackend};

    #[test]
    fn round_trip_keeps_names_shapes_values_and_config() {
        let device = Default::default();
        let config = RestormerConfig::preset(Preset::Tiny).with_mask_aware(true);
        let model = config.init::<TestBackend>(&device);
        let bytes = save(&model, &config, StoredPrecision::F32).unwrap();
        let (loaded, loaded_config) = load::<TestBackend>(&bytes, &device).unwrap();
        assert_eq!(loaded_config, config);
        let (a, b) = (export(&model, &config), export(&loaded, &config));
        assert_eq!(a.tensors, b.tensors);
        assert_eq!(a.tensors[0].key, "patch_embed.proj.weight");
        assert_eq!(a.tensors.last().unwrap().key, "output.weight");
    }

    #[test]
    fn f16_round_trip_is_close() {
        let device = Default::default();
        let config = RestormerConfig::preset(Preset::Tiny);
        let model = config.init::<TestBackend>(&device);
        let bytes = save(&model, &config, StoredPrecision::F16).unwrap();
        let (loaded, _) = load::<TestBackend>(&bytes, &device).unwrap();
        for (a, b) in export(&model, &config).tensors.iter().zip(export(&loaded, &config).tensors) {
            for (x, y) in a.values.iter().zip(&b.values) {
                assert!((x - y).abs() <= x.abs() * 1e-3 + 1e-6);
            }
        }
    }

    #[test]
    fn config_is_inferred_from_official_key_lists() {
        for (file, expected) in [
            ("base-keys.json", RestormerConfig::preset(Preset::Base)),
            ("small-keys.json", RestormerConfig::preset(Preset::Small)),
            ("base-biasfree-keys.json", RestormerConfig::preset(Preset::Base).with_layer_norm(LayerNormKind::BiasFree)),
        ] {
            let path = format!("{}/../../shared/fixtures/restormer/{file}", env!("CARGO_MANIFEST_DIR"));
            let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let keys: Vec<(String, Vec<usize>)> = json["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| {
                    let shape = k["shape"].as_array().unwrap().iter().map(|d| d.as_u64().unwrap() as usize).collect();
                    (k["key"].as_str().unwrap().to_string(), shape)
                })
                .collect();
            let shapes: BTreeMap<&str, &[usize]> = keys.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
            let config = infer_config(&shapes).unwrap();
            assert_eq!(config, expected, "{file}");
            assert_eq!(config.num_params() as u64, json["params"].as_u64().unwrap(), "{file}");
            // The model declares exactly these keys, in this order, with these shapes.
            let model = config.init::<TestBackend>(&Default::default());
            let ours: Vec<(String, Vec<usize>)> =
                model.collect(None, None, false).iter().map(|s| (s.full_path(), s.shape.clone())).collect();
            assert_eq!(ours, keys, "{file}");
        }
    }

    /// Found by train-native/tests/fuzz.rs: a converted checkpoint whose temperature or FFN
    /// weight had too few dimensions panicked (an index out of bounds) while the shape was inferred.
    #[test]
    fn a_key_with_too_few_dimensions_is_named() {
        let config = RestormerConfig::preset(Preset::Tiny);
        let model = config.init::<TestBackend>(&Default::default());
        let keys: Vec<(String, Vec<usize>)> =
            model.collect(None, None, false).iter().map(|s| (s.full_path(), s.shape.clone())).collect();
        for key in ["encoder_level2.0.attn.temperature", "encoder_level1.0.ffn.project_out.weight"] {
            let mut shapes: BTreeMap<&str, &[usize]> = keys.iter().map(|(k, s)| (k.as_str(), s.as_slice())).collect();
            shapes.insert(key, &[]);
            let error = infer_config(&shapes).unwrap_err().to_string();
            assert!(error.contains(key) && error.contains("[]"), "{error}");
        }
    }

    #[test]
    fn wrong_shape_names_the_key_and_both_shapes() {
        let device = Default::default();
        let tiny = RestormerConfig::preset(Preset::Tiny);
        let mut file = export(&tiny.init::<TestBackend>(&device), &tiny);
        file.tensors[3].shape = vec![9, 9];
        file.tensors[3].values = vec![0.0; 81];
        let error = apply(tiny.init::<TestBackend>(&device), &file).unwrap_err().to_string();
        assert!(
            error.contains("encoder_level1.0.attn.temperature")
                && error.contains("[9, 9]")
                && error.contains("[1, 1, 1]"),
            "{error}"
        );
    }

    #[test]
    fn garbage_is_not_weights() {
        assert!(matches!(WeightFile::from_safetensors(b"definitely not safetensors"), Err(WeightsError::Format(_))));
    }
}
