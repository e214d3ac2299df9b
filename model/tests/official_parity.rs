//! The architecture against the official PyTorch Restormer: reference tensors made from random
//! weights by the official code (`../shared/fixtures/restormer`, see its README).

use std::collections::HashMap;

use burn::backend::NdArray;
use burn::prelude::*;
use restora_model::weights::{self, WeightFile};
use restora_model::{LayerNormKind, RestormerConfig};

type B = NdArray<f32>;

fn fixture(case: &str, file: &str) -> Vec<u8> {
    let path = format!("{}/../../shared/fixtures/restormer/{case}/{file}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn tensors(bytes: &[u8]) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
    WeightFile::from_safetensors(bytes).unwrap().tensors.into_iter().map(|t| (t.key, (t.shape, t.values))).collect()
}

fn to_tensor(shape: &[usize], values: &[f32]) -> Tensor<B, 4> {
    let dims: [usize; 4] = shape.try_into().unwrap();
    Tensor::<B, 1>::from_floats(values, &Default::default()).reshape(dims)
}

fn max_diff(a: Tensor<B, 4>, b: Tensor<B, 4>) -> f32 {
    (a - b).abs().max().into_scalar()
}

fn check_case(case: &str, expected_config: RestormerConfig) {
    let device = Default::default();
    let (model, config) = weights::load::<B>(&fixture(case, "weights.safetensors"), &device).unwrap();
    assert_eq!(config, expected_config);

    let io = tensors(&fixture(case, "io.safetensors"));
    let (input_shape, input) = &io["input"];
    let (output_shape, output) = &io["output"];
    let stages_ref = tensors(&fixture(case, "stages.safetensors"));

    let mut stages = Vec::new();
    let ours = model.forward_stages(to_tensor(input_shape, input), None, Some(&mut stages));
    // Report the first stage that differs, which says where a bug is.
    for (name, tensor) in stages {
        let (shape, values) = &stages_ref[name];
        let diff = max_diff(tensor, to_tensor(shape, values));
        assert!(diff < 1e-4, "{case}: stage {name} differs by {diff}");
    }
    let diff = max_diff(ours, to_tensor(output_shape, output));
    assert!(diff < 1e-4, "{case}: output differs by {diff}");
}

#[test]
fn tiny_withbias_matches_official_output() {
    let config = RestormerConfig::new().with_dim(8).with_num_blocks([1, 1, 1, 1]).with_num_refinement_blocks(1);
    check_case("tiny-withbias", config);
}

#[test]
fn tiny_biasfree_matches_official_output() {
    let config = RestormerConfig::new()
        .with_dim(16)
        .with_num_blocks([1, 2, 2, 1])
        .with_num_refinement_blocks(2)
        .with_layer_norm(LayerNormKind::BiasFree);
    check_case("tiny-biasfree", config);
}

#[test]
fn exported_safetensors_equal_the_official_state_dict() {
    let device = Default::default();
    let original = fixture("tiny-biasfree", "weights.safetensors");
    let (model, config) = weights::load::<B>(&original, &device).unwrap();
    let exported = WeightFile::from_safetensors(&weights::save(&model, &config, Default::default()).unwrap()).unwrap();
    let reference = tensors(&original);
    assert_eq!(exported.tensors.len(), reference.len());
    for t in &exported.tensors {
        let (shape, values) = &reference[&t.key];
        assert_eq!(&t.shape, shape, "{}", t.key);
        assert_eq!(&t.values, values, "{}", t.key);
    }
}
