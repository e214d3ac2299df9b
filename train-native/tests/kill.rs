//! `train`, `finetune` and `sweep` killed with SIGKILL at random moments (during a step, a
//! validation, a checkpoint being written) and started again each time: they end with the same
//! weights, log and tables as a run that was never killed, and a kill loses at most the steps
//! since the last committed checkpoint. The delays are random from a fixed seed; each test prints
//! where its kills landed.
#![cfg(unix)]

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{binary, foundation, images, ok, s, LPIPS};
use restora_model::weights::WeightFile;
use serde_json::Value;
use tempfile::TempDir;

fn log(run: &Path) -> Vec<Value> {
    std::fs::read_to_string(run.join("log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str(line).ok())
        .collect()
}

fn same_weights(a: &Path, b: &Path) {
    let read = |path: &Path| WeightFile::from_safetensors(&std::fs::read(path).unwrap()).unwrap();
    let (a, b) = (read(a), read(b));
    assert_eq!(a.tensors.len(), b.tensors.len());
    for (x, y) in a.tensors.iter().zip(&b.tensors) {
        assert!(x.key == y.key && x.values == y.values, "{} differs from the uninterrupted run", x.key);
    }
}

/// A small deterministic generator of kill delays (xorshift64*).
struct Delays(u64);

impl Delays {
    fn next(&mut self, range: std::ops::Range<Duration>) -> Duration {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let unit = (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64;
        range.start + (range.end - range.start).mul_f64(unit)
    }
}

/// Starts the command that `args(attempt)` gives and kills it with SIGKILL after a random delay
/// in `delays`, `kills` times at most, then lets the last start finish. After each kill,
/// `after_kill(attempt)` checks what the killed process left. Returns how many kills landed on
/// a running process.
fn kill_until_done(
    args: impl Fn(usize) -> Vec<String>,
    kills: usize,
    delays: std::ops::Range<Duration>,
    seed: u64,
    mut after_kill: impl FnMut(usize),
) -> usize {
    let mut random = Delays(seed);
    let mut landed = 0;
    for attempt in 0..=kills {
        let mut child = binary().args(args(attempt)).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
        if attempt == kills {
            ok(child.wait_with_output().unwrap());
            break;
        }
        let deadline = Instant::now() + random.next(delays.clone());
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(2));
        }
        if child.try_wait().unwrap().is_some() {
            ok(child.wait_with_output().unwrap());
            break;
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        landed += 1;
        after_kill(attempt);
    }
    landed
}

#[test]
fn train_killed_at_random_moments_ends_with_the_uninterrupted_weights() {
    let dir = TempDir::new().unwrap();
    let (data, val) = (images(dir.path(), "train", 4), images(dir.path(), "val", 2));
    let common = |out: &Path| -> Vec<String> {
        let args = ["train", "--data", s(&data), "--val", s(&val), "--out", s(out), "--preset", "tiny"];
        let schedule = ["--patch", "16", "--batch", "1", "--iters", "150", "--switch-every", "5", "--seed", "11"];
        let run = ["--val-every", "10", "--checkpoint-every", "3", "--backend", "cpu"];
        args.iter().chain(&schedule).chain(&run).map(|a| a.to_string()).collect()
    };
    let straight = dir.path().join("straight");
    let began = Instant::now();
    ok(binary().args(common(&straight)).output().unwrap());
    let whole = began.elapsed();

    let killed = dir.path().join("killed");
    let mut lost = Vec::new();
    let mut phases = Vec::new();
    let landed = kill_until_done(
        |_| match killed.join("checkpoints/last.json").exists() {
            true => ["train", "--resume", s(&killed), "--backend", "cpu"].map(String::from).to_vec(),
            false => common(&killed),
        },
        8,
        whole / 20..whole / 5,
        0x5eed,
        |_| {
            let rows = log(&killed);
            phases.push(rows.last().map_or("start".to_string(), |row| row["type"].as_str().unwrap().to_string()));
            let trained = rows.iter().filter(|r| r["type"] == "train").filter_map(|r| r["iteration"].as_u64()).max();
            let committed: Option<u64> = std::fs::read_to_string(killed.join("checkpoints/last.json"))
                .ok()
                .map(|text| serde_json::from_str::<Value>(&text).unwrap()["iteration"].as_u64().unwrap());
            let lost_steps = trained.unwrap_or(0) - committed.unwrap_or(0);
            assert!(lost_steps <= 3, "a kill lost {lost_steps} steps, more than the checkpoint interval");
            lost.push(lost_steps);
        },
    );
    eprintln!("train: {landed} kills landed (last log row before each: {phases:?}; steps lost: {lost:?})");
    assert!(landed >= 3, "only {landed} kills landed on a running process");

    same_weights(&straight.join("last.safetensors"), &killed.join("last.safetensors"));
    let iterations = |run: &Path| -> Vec<u64> {
        log(run).iter().filter(|r| r["type"] == "train").map(|r| r["iteration"].as_u64().unwrap()).collect()
    };
    assert_eq!(iterations(&killed), (1..=150).collect::<Vec<u64>>(), "every step logged once");
    let validations = |run: &Path| -> Vec<Value> { log(run).into_iter().filter(|r| r["type"] == "val").collect() };
    assert_eq!(validations(&killed), validations(&straight));
}

#[test]
fn finetune_and_sweep_killed_at_random_moments_end_with_the_uninterrupted_results() {
    let dir = TempDir::new().unwrap();
    let (data, val) = (images(dir.path(), "train", 4), images(dir.path(), "val", 2));
    let from = foundation(dir.path(), &data);
    let shared = |out: &Path| -> Vec<String> {
        let paths = ["--from", s(&from), "--data", s(&data), "--val", s(&val), "--out", s(out)];
        let sizes = ["--patch", "16", "--batch", "1", "--val-crop", "32", "--lpips", LPIPS, "--backend", "cpu"];
        paths.iter().chain(&sizes).map(|a| a.to_string()).collect()
    };
    let finetune = |out: &Path| -> Vec<String> {
        let mut args: Vec<String> =
            ["finetune", "--task", "inpaint", "--train-size", "2", "--val-size", "2"].map(String::from).to_vec();
        args.extend(["--iters", "40"].map(String::from));
        args.extend(shared(out));
        args
    };
    let sweep = |out: &Path| -> Vec<String> {
        let mut args: Vec<String> =
            ["sweep", "--tasks", "denoise", "--train-sizes", "1,2", "--val-sizes", "1,2"].map(String::from).to_vec();
        args.extend(
            ["--size-iters", "6", "--iters", "3,6", "--iters-train-size", "2", "--iters-val-size", "1"]
                .map(String::from),
        );
        args.extend(shared(out));
        args
    };

    for (name, command) in [("finetune", &finetune as &dyn Fn(&Path) -> Vec<String>), ("sweep", &sweep)] {
        let straight = dir.path().join(format!("{name}-straight"));
        let began = Instant::now();
        ok(binary().args(command(&straight)).output().unwrap());
        let whole = began.elapsed();

        // Both resume by running the same command again.
        let killed = dir.path().join(format!("{name}-killed"));
        let landed =
            kill_until_done(|_| command(&killed), 6, whole / 12..whole / 4, 0xf1e1d + name.len() as u64, |_| {});
        eprintln!("{name}: {landed} kills landed");
        assert!(landed >= 2, "{name}: only {landed} kills landed on a running process");

        match name {
            "finetune" => {
                same_weights(&straight.join("last.safetensors"), &killed.join("last.safetensors"));
                let scores = |run: &Path| -> Value {
                    serde_json::from_str(&std::fs::read_to_string(run.join("scores.json")).unwrap()).unwrap()
                };
                let (a, b) = (scores(&straight), scores(&killed));
                assert_eq!((&a["foundation"], &a["finetuned"]), (&b["foundation"], &b["finetuned"]));
            }
            _ => {
                let read = |run: &Path, file: &str| std::fs::read_to_string(run.join(file)).unwrap();
                assert_eq!(read(&killed, "results.jsonl"), read(&straight, "results.jsonl"));
                assert_eq!(read(&killed, "sweep.csv"), read(&straight, "sweep.csv"));
            }
        }
    }
}
