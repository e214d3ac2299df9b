//! LPIPS parity with stlpips-pytorch 0.0.2 on the NdArray backend.
//!
//! The fixture (`tests/fixtures/lpips_parity.safetensors`, made by
//! `tools/lpips/make_parity_fixture.py`) holds five seeded image pairs (64×64 and 48×80:
//! noise, blur, 1-px shifts) with the distances PyTorch computed:
//! - `pair{i}.st`, `pair{i}.st_layers`: shift-tolerant LPIPS with the shipped weights;
//! - `pair{i}.std`: the standard AlexNet LPIPS structure with synthetic weights that
//!   [`synthetic_standard_weights`] rebuilds bit for bit.

use burn::backend::NdArray;
use burn::tensor::{Tensor, TensorData};
use restora_model::metrics::{Lpips, LpipsVariant};
use restora_model::Image;
use safetensors::{Dtype, SafeTensors};

type B = NdArray<f32>;

const TOLERANCE: f32 = 1e-4;
const PAIRS: usize = 5;

fn read_file(relative: &str) -> Vec<u8> {
    let path = format!("{}/{relative}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn fixture() -> Vec<u8> {
    read_file("tests/fixtures/lpips_parity.safetensors")
}

fn values(file: &SafeTensors, key: &str) -> (Vec<f32>, Vec<usize>) {
    let view = file.tensor(key).unwrap_or_else(|e| panic!("{key}: {e}"));
    assert_eq!(view.dtype(), Dtype::F32, "{key}");
    let data = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
    (data, view.shape().to_vec())
}

fn image_tensor(file: &SafeTensors, key: &str) -> Tensor<B, 4> {
    let (data, shape) = values(file, key);
    Tensor::from_data(TensorData::new(data, shape), &Default::default())
}

fn scalar(t: Tensor<B, 1>) -> Vec<f32> {
    t.into_data().to_vec().unwrap()
}

/// The splitmix64 finaliser, as in `make_parity_fixture.py`.
fn splitmix64(x: u64) -> u64 {
    let mut x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

/// Standard-LPIPS weights of `make_parity_fixture.py` (`STANDARD_KEYS`, same order), plus the
/// scaling layer's constants, serialised as safetensors.
fn synthetic_standard_weights() -> Vec<u8> {
    let keys: [(&str, &[usize]); 15] = [
        ("net.slice1.0.weight", &[64, 3, 11, 11]),
        ("net.slice1.0.bias", &[64]),
        ("net.slice2.3.weight", &[192, 64, 5, 5]),
        ("net.slice2.3.bias", &[192]),
        ("net.slice3.6.weight", &[384, 192, 3, 3]),
        ("net.slice3.6.bias", &[384]),
        ("net.slice4.8.weight", &[256, 384, 3, 3]),
        ("net.slice4.8.bias", &[256]),
        ("net.slice5.10.weight", &[256, 256, 3, 3]),
        ("net.slice5.10.bias", &[256]),
        ("lin0.model.1.weight", &[1, 64, 1, 1]),
        ("lin1.model.1.weight", &[1, 192, 1, 1]),
        ("lin2.model.1.weight", &[1, 384, 1, 1]),
        ("lin3.model.1.weight", &[1, 256, 1, 1]),
        ("lin4.model.1.weight", &[1, 256, 1, 1]),
    ];
    let mut tensors: Vec<(String, Vec<usize>, Vec<u8>)> = keys
        .iter()
        .enumerate()
        .map(|(k, (key, shape))| {
            let n: usize = shape.iter().product();
            let amplitude = (3.0f64 / (n / shape[0]) as f64).sqrt() as f32;
            let bytes = (0..n as u64)
                .flat_map(|j| {
                    let bits = splitmix64(((k as u64) << 32) | j) >> 40;
                    let u = bits as f32 / (1u32 << 23) as f32 - 1.0;
                    let v = if key.starts_with("lin") {
                        u.abs()
                    } else if key.ends_with("bias") {
                        u * 0.1
                    } else {
                        u * amplitude
                    };
                    v.to_le_bytes()
                })
                .collect();
            (key.to_string(), shape.to_vec(), bytes)
        })
        .collect();
    for (key, v) in
        [("scaling_layer.shift", [-0.030f32, -0.088, -0.188]), ("scaling_layer.scale", [0.458f32, 0.448, 0.450])]
    {
        let bytes = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        tensors.push((key.to_string(), vec![1, 3, 1, 1], bytes));
    }
    let views: Vec<_> = tensors
        .iter()
        .map(|(k, s, d)| {
            let view = safetensors::tensor::TensorView::new(Dtype::F32, s.clone(), d).unwrap();
            (k.clone(), view)
        })
        .collect();
    safetensors::serialize(views, &None).unwrap()
}

fn shipped() -> Lpips<B> {
    let weights = read_file("../static/weights/lpips/alex_shift_tolerant.safetensors");
    let lpips = Lpips::<B>::from_safetensors(&weights, &Default::default()).unwrap();
    assert_eq!(lpips.variant(), LpipsVariant::ShiftTolerant);
    lpips
}

#[test]
fn shift_tolerant_matches_stlpips() {
    let lpips = shipped();
    let bytes = fixture();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut max_diff = 0.0f32;
    for i in 0..PAIRS {
        let (a, b) = (image_tensor(&file, &format!("pair{i}.a")), image_tensor(&file, &format!("pair{i}.b")));
        let theirs = values(&file, &format!("pair{i}.st")).0[0];
        let their_layers = values(&file, &format!("pair{i}.st_layers")).0;
        let layers: Vec<f32> = lpips.distance_per_layer(a.clone(), b.clone()).into_iter().flat_map(scalar).collect();
        let ours = scalar(lpips.distance(a, b))[0];
        let diff = (ours - theirs).abs();
        max_diff = max_diff.max(diff);
        println!("pair{i}: ours {ours:.7} theirs {theirs:.7} |diff| {diff:.2e}; layers {layers:?} vs {their_layers:?}");
        for (l, (o, t)) in layers.iter().zip(&their_layers).enumerate() {
            assert!((o - t).abs() <= TOLERANCE, "pair{i} layer {l}: ours {o} theirs {t}");
        }
        assert!(diff <= TOLERANCE, "pair{i}: ours {ours} theirs {theirs}");
    }
    println!("shift-tolerant: max |ours - stlpips| = {max_diff:.2e}");
}

#[test]
fn a_batch_gives_each_pair_its_own_distance() {
    let lpips = shipped();
    let bytes = fixture();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    // Pairs 0–2 are 64×64.
    let stack = |side: &str| Tensor::cat((0..3).map(|i| image_tensor(&file, &format!("pair{i}.{side}"))).collect(), 0);
    let ours = scalar(lpips.distance(stack("a"), stack("b")));
    for (i, d) in ours.iter().enumerate() {
        let theirs = values(&file, &format!("pair{i}.st")).0[0];
        assert!((d - theirs).abs() <= TOLERANCE, "pair{i} in a batch: ours {d} theirs {theirs}");
    }
}

#[test]
fn images_measure_like_tensors() {
    let lpips = shipped();
    let bytes = fixture();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    // Pair 3 is 48 high and 80 wide.
    let image = |side: &str| {
        let (data, shape) = values(&file, &format!("pair3.{side}"));
        Image::from_planar(shape[3] as u32, shape[2] as u32, &data).unwrap()
    };
    let ours = lpips.lpips_images(&image("a"), &image("b")).unwrap();
    let theirs = values(&file, "pair3.st").0[0];
    assert!((ours - theirs).abs() <= TOLERANCE, "ours {ours} theirs {theirs}");
    assert_eq!(lpips.lpips_images(&image("a"), &image("a")).unwrap(), 0.0);
}

#[test]
fn standard_structure_matches_pytorch() {
    let lpips = Lpips::<B>::from_safetensors(&synthetic_standard_weights(), &Default::default()).unwrap();
    assert_eq!(lpips.variant(), LpipsVariant::Standard);
    let bytes = fixture();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut max_diff = 0.0f32;
    for i in 0..PAIRS {
        let (a, b) = (image_tensor(&file, &format!("pair{i}.a")), image_tensor(&file, &format!("pair{i}.b")));
        let theirs = values(&file, &format!("pair{i}.std")).0[0];
        let ours = scalar(lpips.distance(a, b))[0];
        let diff = (ours - theirs).abs();
        max_diff = max_diff.max(diff);
        println!("pair{i} (standard, synthetic weights): ours {ours:.7} theirs {theirs:.7} |diff| {diff:.2e}");
        assert!(diff <= TOLERANCE, "pair{i}: ours {ours} theirs {theirs}");
    }
    println!("standard: max |ours - pytorch| = {max_diff:.2e}");
}
