//! Helpers shared by the end-to-end tests that run the `train-native` binary on generated images.
// Each test file is its own crate and uses only some of these.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use restora_model::{BitDepth, Image};

pub const LPIPS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../static/weights/lpips/alex_shift_tolerant.safetensors");

pub fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_train-native"))
}

pub fn cli(args: &[&str]) -> Output {
    binary().args(args).output().expect("the binary runs")
}

pub fn ok(output: Output) -> Output {
    assert!(output.status.success(), "failed: {}", String::from_utf8_lossy(&output.stderr));
    output
}

pub fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `count` structured 48×40 images in `dir/name`.
pub fn images(dir: &Path, name: &str, count: u32) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..count {
        let image = Image::from_fn(48, 40, |x, y| {
            let stripes = if ((x + 2 * i) / 3 + y / 5) % 2 == 0 { 0.8 } else { 0.3 };
            [x as f32 / 48.0, y as f32 / 40.0, stripes]
        });
        std::fs::write(folder.join(format!("img{i}.png")), image.encode_png(BitDepth::Eight).unwrap()).unwrap();
    }
    folder
}

/// A tiny foundation model for fine-tunes: two iterations of `train` on `data`.
pub fn foundation(dir: &Path, data: &Path) -> PathBuf {
    let run = dir.join("foundation");
    let args = ["train", "--data", s(data), "--out", s(&run), "--preset", "tiny", "--patch", "16", "--batch", "1"];
    ok(cli(&[&args[..], &["--iters", "2", "--switch-every", "1", "--backend", "cpu"]].concat()));
    run.join("last.safetensors")
}

/// Every row of a run's `log.jsonl`.
pub fn log(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("log.jsonl")).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// The training rows of a run's log.
pub fn train_rows(out: &Path) -> Vec<serde_json::Value> {
    log(out).into_iter().filter(|row| row["type"] == "train").collect()
}

/// A safetensors weights file.
pub fn weights(path: &Path) -> restora_model::weights::WeightFile {
    restora_model::weights::WeightFile::from_safetensors(&std::fs::read(path).unwrap()).unwrap()
}
