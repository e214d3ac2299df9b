//! End-to-end tests of `train-native train` on the CPU with the tiny preset and small generated
//! images (clean folders, a SIDD-like paired tree). Patches are 16 px, so that a debug build runs
//! them in seconds.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use restora_model::{BitDepth, Image};
use serde_json::Value;
use tempfile::TempDir;

mod common;

use common::{cli, log, ok, s, train_rows, weights};

/// Four small structured images (gradients, stripes, a disc) and one too small for a patch.
fn data(dir: &Path) -> PathBuf {
    let data = dir.join("data");
    std::fs::create_dir_all(data.join("nested")).unwrap();
    for i in 0..4u32 {
        let (w, h) = (40 + 8 * i, 36);
        let image = Image::from_fn(w, h, |x, y| {
            let disc = (x as i32 - 14).pow(2) + (y as i32 - 16).pow(2) < 64;
            if disc {
                return [0.9, 0.2, 0.1];
            }
            let stripes = if ((x + i) / 3 + y / 5) % 2 == 0 { 0.8 } else { 0.3 };
            [x as f32 / w as f32, y as f32 / h as f32, stripes]
        });
        let path = if i == 3 { data.join("nested/img3.png") } else { data.join(format!("img{i}.png")) };
        std::fs::write(path, image.encode_png(BitDepth::Eight).unwrap()).unwrap();
    }
    std::fs::write(data.join("tiny.png"), Image::zeros(8, 8).encode_png(BitDepth::Eight).unwrap()).unwrap();
    data
}

/// `train` of the tiny preset on 16-pixel patches on the CPU, plus `extra`.
fn train_args<'a>(data: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args =
        vec!["train", "--data", s(data), "--out", s(out), "--preset", "tiny", "--patch", "16", "--backend", "cpu"];
    args.extend_from_slice(extra);
    args
}

fn train(data: &Path, out: &Path, extra: &[&str]) -> Output {
    cli(&train_args(data, out, extra))
}

#[test]
fn loss_decreases_and_small_images_are_skipped() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let out = dir.path().join("run");
    // All 30 iterations denoise (switch every 250); the learning rate is raised for a short run.
    let result = ok(train(&data, &out, &["--batch", "2", "--iters", "30", "--lr", "2e-3", "--seed", "3"]));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(stderr.contains("skipped") && stderr.contains("tiny.png"), "{stderr}");
    let losses: Vec<f64> = train_rows(&out).iter().map(|r| r["loss"].as_f64().unwrap()).collect();
    assert_eq!(losses.len(), 30);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let (first, last) = (mean(&losses[..5]), mean(&losses[25..]));
    assert!(last < first, "mean loss of the last 5 iterations {last} is not below the first 5 {first}: {losses:?}");
    for name in ["config.toml", "last.safetensors", "checkpoints/last.json"] {
        assert!(out.join(name).exists(), "{name}");
    }
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("preset = \"tiny\"") && config.contains("iters = 30"), "{config}");
}

#[test]
fn tasks_follow_the_schedule_and_weights_restore() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let out = dir.path().join("run");
    ok(train(
        &data,
        &out,
        &["--batch", "1", "--iters", "13", "--switch-every", "3", "--val", s(&data), "--val-every", "6"],
    ));
    let tasks: Vec<String> = train_rows(&out).iter().map(|r| r["task"].as_str().unwrap().to_string()).collect();
    let expected: Vec<&str> = (0..13).map(|i| ["denoise", "deblur", "dealias", "inpaint"][(i / 3) % 4]).collect();
    assert_eq!(tasks, expected);
    // Validation rows for every task at 6, 12 and the end; a best checkpoint.
    let val: Vec<Value> = log(&out).into_iter().filter(|r| r["type"] == "val").collect();
    assert_eq!(val.len(), 12, "{val:?}");
    assert!(val.iter().all(|r| r["psnr"].as_f64().unwrap().is_finite()));
    assert!(out.join("best.safetensors").exists());
    // The weights are a `restore --weights` file.
    let restored = dir.path().join("restored.png");
    ok(cli(&[
        "restore",
        "--weights",
        s(&out.join("best.safetensors")),
        "--input",
        s(&data.join("img0.png")),
        "--output",
        s(&restored),
    ]));
    assert!(restored.exists());
}

#[test]
fn a_resumed_run_ends_with_the_same_weights_and_survives_a_half_written_checkpoint() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let common = ["--batch", "1", "--iters", "20", "--switch-every", "3", "--seed", "7", "--checkpoint-every", "5"];
    let straight = dir.path().join("straight");
    ok(train(&data, &straight, &common));

    let resumed = dir.path().join("resumed");
    let mut first = common.to_vec();
    first.extend(["--stop-after", "10"]);
    ok(train(&data, &resumed, &first));
    assert_eq!(train_rows(&resumed).len(), 10);
    // Starting over in a run folder is refused.
    let again = train(&data, &resumed, &common);
    assert!(!again.status.success() && String::from_utf8_lossy(&again.stderr).contains("--resume"));

    // A crash while writing the next checkpoint: a half-filled folder and stray temporary files.
    let checkpoints = resumed.join("checkpoints");
    std::fs::create_dir_all(checkpoints.join("iter-00000015")).unwrap();
    std::fs::write(checkpoints.join("iter-00000015/model.safetensors"), b"trunc").unwrap();
    std::fs::write(checkpoints.join(".last.json.tmp-99999"), b"{\"dir\": \"iter-0000").unwrap();
    std::fs::write(checkpoints.join("iter-00000010/.state.json.tmp-99999"), b"{").unwrap();
    // Rows an interrupted run wrote after its checkpoint are dropped on resume.
    let mut text = std::fs::read_to_string(resumed.join("log.jsonl")).unwrap();
    text.push_str("{\"type\":\"train\",\"iteration\":11,\"task\":\"inpaint\",\"loss\":1.0}\n");
    std::fs::write(resumed.join("log.jsonl"), text).unwrap();

    let result = ok(cli(&["train", "--resume", s(&resumed), "--backend", "cpu"]));
    assert!(String::from_utf8_lossy(&result.stderr).contains("at iteration 10"));
    let (a, b) = (train_rows(&straight), train_rows(&resumed));
    let iterations: Vec<u64> = b.iter().map(|r| r["iteration"].as_u64().unwrap()).collect();
    assert_eq!(iterations, (1..=20).collect::<Vec<u64>>());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!((&x["task"], &x["loss"], &x["lr"], &x["kinds"]), (&y["task"], &y["loss"], &y["lr"], &y["kinds"]));
    }
    let (a, b) = (weights(&straight.join("last.safetensors")), weights(&resumed.join("last.safetensors")));
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert_eq!(x.key, y.key);
        assert!(x.values == y.values, "{} differs after resuming", x.key);
    }
    // Only the committed checkpoint folders remain.
    assert!(!checkpoints.join("iter-00000015").exists());
}

/// Ctrl-C (SIGINT) mid-run: the step in flight finishes, a checkpoint is written at it, the process
/// exits cleanly, and the resumed run ends with the weights of one that never stopped.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[test]
fn an_interrupted_run_checkpoints_its_last_step_and_resumes_exactly() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let common = ["--batch", "1", "--iters", "300", "--switch-every", "7", "--seed", "3", "--checkpoint-every", "1000"];
    let straight = dir.path().join("straight");
    ok(train(&data, &straight, &common));

    let interrupted = dir.path().join("interrupted");
    let child = Command::new(env!("CARGO_BIN_EXE_train-native"))
        .args(train_args(&data, &interrupted, &common))
        .stderr(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let log_file = interrupted.join("log.jsonl");
    let began = std::time::Instant::now();
    while std::fs::read_to_string(&log_file).map_or(0, |text| text.lines().count()) < 5 {
        assert!(began.elapsed().as_secs() < 120, "the run wrote no log rows");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    // SAFETY: kill(2) on the child's pid, which has not been waited for yet.
    let signal = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    assert_eq!(signal, 0, "SIGINT was not delivered");
    let output = ok(child.wait_with_output().unwrap());
    assert!(String::from_utf8_lossy(&output.stderr).contains("interrupted"));

    let rows = train_rows(&interrupted);
    let stopped = rows.last().unwrap()["iteration"].as_u64().unwrap();
    assert!(stopped < 300, "the interrupt came after the end");
    let checkpoint = log(&interrupted).into_iter().rfind(|row| row["type"] == "checkpoint").expect("a checkpoint");
    assert_eq!(checkpoint["iteration"].as_u64(), Some(stopped), "the checkpoint is at the last step");

    ok(cli(&["train", "--resume", s(&interrupted), "--backend", "cpu"]));
    let (a, b) = (weights(&straight.join("last.safetensors")), weights(&interrupted.join("last.safetensors")));
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert!(x.values == y.values, "{} differs after the interrupt", x.key);
    }
}

/// The CPU kernels split their work over threads by output (plane, channel, pixel range) and sum
/// in a fixed order: one thread and two give the same weights, bit for bit.
#[test]
fn one_thread_and_two_train_the_same_weights() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let run = |threads: &str| {
        let out = dir.path().join(format!("threads-{threads}"));
        let args = [
            "train",
            "--data",
            s(&data),
            "--out",
            s(&out),
            "--preset",
            "tiny",
            "--patch",
            "32",
            "--batch",
            "2",
            "--iters",
            "6",
            "--switch-every",
            "2",
            "--seed",
            "3",
            "--backend",
            "cpu",
        ];
        let output = Command::new(env!("CARGO_BIN_EXE_train-native"))
            .args(args)
            .env("RAYON_NUM_THREADS", threads)
            .env("MATMUL_NUM_THREADS", threads)
            .output()
            .expect("the binary runs");
        ok(output);
        weights(&out.join("last.safetensors"))
    };
    let (one, two) = (run("1"), run("2"));
    assert_eq!(one.tensors.len(), two.tensors.len());
    for (x, y) in one.tensors.iter().zip(&two.tensors) {
        assert!(x.values == y.values, "{} differs between 1 and 2 threads", x.key);
    }
}

/// A SIDD-like tree (`Data/<scene>/*_NOISY_*` beside `*_GT_*`): two scenes, the noisy image the clean
/// one plus a fixed pattern.
fn sidd(dir: &Path) -> PathBuf {
    let root = dir.join("SIDD");
    for (i, scene) in ["0001_001_S6_00100_00060_3200_L", "0002_001_S6_00100_00020_3200_N"].iter().enumerate() {
        let (w, h) = (32 + 8 * i as u32, 24);
        let clean = Image::from_fn(w, h, |x, y| [x as f32 / w as f32, y as f32 / h as f32, 0.5]);
        let noisy = Image::from_fn(w, h, |x, y| {
            let n = if (x * 7 + y * 3) % 5 == 0 { 0.2 } else { -0.05 };
            clean.pixel(x, y).map(|v| (v + n).clamp(0.0, 1.0))
        });
        let folder = root.join("Data").join(scene);
        std::fs::create_dir_all(&folder).unwrap();
        let id = format!("{:04}", i + 1);
        std::fs::write(folder.join(format!("{id}_GT_SRGB_010.PNG")), clean.encode_png(BitDepth::Eight).unwrap())
            .unwrap();
        std::fs::write(folder.join(format!("{id}_NOISY_SRGB_010.PNG")), noisy.encode_png(BitDepth::Eight).unwrap())
            .unwrap();
    }
    root
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_paired_only_run_with_progressive_patches_trains_end_to_end() {
    let dir = TempDir::new().unwrap();
    let sidd = sidd(dir.path());
    let out = dir.path().join("run");
    let base = ["train", "--paired", s(&sidd), "--out", s(&out), "--preset", "tiny", "--backend", "cpu"];
    // Without clean images, the paired sets must cover every scheduled task.
    let refused = cli(&base);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("no training data for deblur, dealias, inpaint"), "{}", stderr(&refused));

    let mut args = base.to_vec();
    args.extend(["--tasks", "denoise", "--patch", "16", "--batch", "1", "--progressive", "8x2@2", "--iters", "4"]);
    let result = ok(cli(&args));
    assert!(stderr(&result).contains("SIDD layout, 2 pairs for denoise"), "{}", stderr(&result));
    let rows = train_rows(&out);
    let kinds: Vec<Vec<&str>> =
        rows.iter().map(|r| r["kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap()).collect()).collect();
    assert_eq!(kinds, [vec!["paired:sidd"; 2], vec!["paired:sidd"; 2], vec!["paired:sidd"], vec!["paired:sidd"]]);
    assert!(rows.iter().all(|r| r["task"] == "denoise" && r["loss"].as_f64().unwrap().is_finite()));
    assert!(out.join("last.safetensors").exists());
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("[[data.paired]]") && config.contains("[[schedule.progressive]]"), "{config}");
}

#[test]
fn mixed_batches_with_hole_weighting_train() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let out = dir.path().join("run");
    ok(train(&data, &out, &["--batch", "6", "--iters", "2", "--mixed", "--hole-weight", "4", "--seed", "1"]));
    let rows = train_rows(&out);
    assert_eq!(rows.len(), 2);
    let kinds: std::collections::BTreeSet<&str> =
        rows.iter().flat_map(|r| r["kinds"].as_array().unwrap().iter().map(|k| k.as_str().unwrap())).collect();
    assert!(kinds.len() >= 3, "several degradations in the mixed batches: {kinds:?}");
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("mode = \"mixed\"") && config.contains("hole_weight = 4.0"), "{config}");
}

#[test]
fn init_starts_from_the_given_weights_and_refuses_another_model() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let first = dir.path().join("first");
    ok(train(&data, &first, &["--batch", "1", "--iters", "2", "--seed", "1"]));

    // An experiment file with paths relative to itself; a learning rate too small to move the weights.
    let experiment = dir.path().join("finetune.toml");
    std::fs::write(
        &experiment,
        "[model]\npreset = \"tiny\"\ninit = \"first/last.safetensors\"\n\
         [data]\ntrain = \"data\"\ntrain_images = 2\npatch = 16\nbatch = 1\n\
         [optimizer]\nlr = 1e-9\nlr_min = 0.0\n[schedule]\niters = 1\n[run]\nseed = 2\n",
    )
    .unwrap();
    let second = dir.path().join("second");
    let result = ok(cli(&["train", "--config", s(&experiment), "--out", s(&second), "--backend", "cpu"]));
    assert!(stderr(&result).contains("training on 2 of the 4 usable clean images"), "{}", stderr(&result));
    let (start, end) = (weights(&first.join("last.safetensors")), weights(&second.join("last.safetensors")));
    assert_eq!(start.tensors.len(), end.tensors.len());
    for (a, b) in start.tensors.iter().zip(&end.tensors) {
        assert_eq!(a.key, b.key);
        let most = a.values.iter().zip(&b.values).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max);
        assert!(most < 1e-6, "{} moved by {most}: not started from --init", a.key);
    }
    let config = std::fs::read_to_string(second.join("config.toml")).unwrap();
    assert!(config.contains(s(&first.join("last.safetensors"))), "{config}");

    // Weights of another shape are refused, naming both.
    let third = dir.path().join("third");
    let init = first.join("last.safetensors");
    let refused = cli(&[
        "train",
        "--data",
        s(&data),
        "--out",
        s(&third),
        "--preset",
        "small",
        "--init",
        s(&init),
        "--backend",
        "cpu",
    ]);
    assert!(!refused.status.success());
    let message = stderr(&refused);
    assert!(message.contains("holds a tiny") && message.contains("trains a small"), "{message}");
}

#[test]
fn block_end_validation_keeps_each_tasks_best_and_resumes_with_it() {
    let dir = TempDir::new().unwrap();
    let data = data(dir.path());
    let common = [
        "--batch",
        "1",
        "--iters",
        "16",
        "--switch-every",
        "2",
        "--seed",
        "5",
        "--val",
        s(&data),
        "--val-every",
        "8",
        "--val-block-ends",
        "--checkpoint-every",
        "4",
    ];
    let straight = dir.path().join("straight");
    ok(train(&data, &straight, &common));
    let rows = |out: &Path, kind: &str| -> Vec<Value> { log(out).into_iter().filter(|r| r["type"] == kind).collect() };
    let blocks = rows(&straight, "block_val");
    let tasks = ["denoise", "deblur", "dealias", "inpaint"];
    let expected: Vec<(u64, &str)> = (1..=8).map(|k| (2 * k, tasks[(k as usize - 1) % 4])).collect();
    let got: Vec<(u64, &str)> =
        blocks.iter().map(|r| (r["iteration"].as_u64().unwrap(), r["task"].as_str().unwrap())).collect();
    assert_eq!(got, expected, "one block_val row per block, for the block's own task");
    // Where the regular validation falls on a block end, the task's score is the same row's.
    for regular in rows(&straight, "val").iter().filter(|r| r["task"] == "inpaint") {
        let at = blocks.iter().find(|b| b["iteration"] == regular["iteration"]).expect("a block ends at 8 and 16");
        assert_eq!(at["psnr"], regular["psnr"]);
    }
    // The state remembers each task's best block end, and its weights are kept.
    let state: Value =
        serde_json::from_str(&std::fs::read_to_string(straight.join("checkpoints/iter-00000016/state.json")).unwrap())
            .unwrap();
    for task in tasks {
        let own: Vec<&Value> = blocks.iter().filter(|r| r["task"] == task).collect();
        let best = own.iter().fold(own[0], |b, r| if r["psnr"].as_f64() > b["psnr"].as_f64() { r } else { b });
        assert_eq!(state["block_best"][task]["iteration"], best["iteration"], "{task}: {state}");
        assert_eq!(state["block_best"][task]["psnr"], best["psnr"], "{task}");
        assert!(straight.join(format!("best-{task}.safetensors")).exists(), "{task}");
    }

    // Stopped mid-block and resumed: the same rows and the same kept weights.
    let resumed = dir.path().join("resumed");
    let mut first = common.to_vec();
    first.extend(["--stop-after", "7"]);
    ok(train(&data, &resumed, &first));
    ok(cli(&["train", "--resume", s(&resumed), "--backend", "cpu"]));
    assert_eq!(rows(&resumed, "block_val"), blocks);
    for task in tasks {
        let file = format!("best-{task}.safetensors");
        let (a, b) = (weights(&straight.join(&file)), weights(&resumed.join(&file)));
        for (x, y) in a.tensors.iter().zip(&b.tensors) {
            assert!(x.key == y.key && x.values == y.values, "{file}: {} differs after resuming", x.key);
        }
    }
    // Plotted as each task's own faint curve; the kept weights restore.
    ok(cli(&["plot", s(&straight)]));
    let restored = dir.path().join("restored.png");
    let best_deblur = straight.join("best-deblur.safetensors");
    ok(cli(&["restore", "--weights", s(&best_deblur), "--input", s(&data.join("img0.png")), "--output", s(&restored)]));
}
