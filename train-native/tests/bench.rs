//! End-to-end tests of `train-native bench` on the CPU: the tiny preset at 32², one repeat and
//! one 16 px training step, and the flags it must refuse.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train-native")).args(args).output().expect("the binary runs")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn positive(value: &Value, key: &str) -> f64 {
    let number = value[key].as_f64().unwrap_or_else(|| panic!("{key} is not a number in {value}"));
    assert!(number > 0.0 && number.is_finite(), "{key} = {number} is not positive");
    number
}

#[test]
fn bench_writes_json_and_markdown_with_positive_figures() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("bench");
    let args = [
        "bench",
        "--presets",
        "tiny",
        "--sizes",
        "32",
        "--backend",
        "cpu",
        "--repeats",
        "1",
        "--warmup",
        "1",
        "--train-patch",
        "16",
        "--train-batch",
        "1",
        "--train-iters",
        "1",
        "--out",
        s(&out),
    ];
    let result = cli(&args);
    assert!(result.status.success(), "bench failed: {}", stderr(&result));

    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    assert_eq!(json["complete"], true);
    assert!(json["machine"]["cpu_count"].as_u64().unwrap() >= 1);
    assert!(json["machine"]["os"].is_string());
    assert_eq!(json["backends"][0]["backend"], "cpu");
    assert!(json["backends"][0]["error"].is_null());
    assert_eq!(json["settings"]["sizes"], serde_json::json!([32]));

    let forward = json["forward"].as_array().unwrap();
    assert_eq!(forward.len(), 1);
    let cell = &forward[0];
    assert_eq!(cell["preset"], "tiny");
    assert_eq!(cell["backend"], "cpu");
    assert_eq!(cell["size"], 32);
    assert_eq!(cell["status"], "ok");
    assert_eq!(cell["mask_aware"], true);
    assert!(cell["device"].as_str().is_some_and(|d| !d.is_empty()));
    for key in ["parameters", "macs", "gmacs", "first_run_ms", "median_ms", "min_ms", "megapixels_per_second", "tflops"]
    {
        positive(cell, key);
    }
    assert_eq!(cell["runs_ms"].as_array().unwrap().len(), 1);
    assert_eq!(cell["warmup_runs"], 1);
    // burn-ndarray does not report memory.
    assert!(cell["peak_memory_bytes"].is_null());
    // TFLOP/s follows from the MAC count and the median.
    let expected = 2.0 * cell["macs"].as_f64().unwrap() / (cell["median_ms"].as_f64().unwrap() / 1e3) / 1e12;
    assert!((cell["tflops"].as_f64().unwrap() / expected - 1.0).abs() < 1e-9);

    let training = json["training"].as_array().unwrap();
    assert_eq!(training.len(), 1);
    let cell = &training[0];
    assert_eq!((cell["patch"].as_u64(), cell["batch"].as_u64()), (Some(16), Some(1)));
    assert_eq!(cell["status"], "ok");
    for key in ["median_ms", "iterations_per_second", "samples_per_second", "tflops", "macs_per_sample"] {
        positive(cell, key);
    }

    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(
        md.contains("| preset | backend | device | size | params | GMACs | first run ms | median ms |"),
        "no forward table header:\n{md}"
    );
    assert!(md.contains("| preset | backend | device | patch | batch |"), "no training table header:\n{md}");
    assert!(md.contains("| tiny | cpu |"), "no tiny row:\n{md}");
    assert!(md.contains("n/a"), "peak memory should read n/a on the CPU:\n{md}");
    assert!(md.contains("3 x forward FLOPs"), "the training FLOP convention is stated:\n{md}");
    for entry in std::fs::read_dir(&out).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.contains(".tmp-"), "leftover temporary file {name}");
    }
}

#[test]
fn bench_refuses_bad_flags_naming_them() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("bench");
    let cases: [(&[&str], &[&str]); 4] = [
        (&["--sizes", "30"], &["30", "multiple of 8"]),
        (&["--sizes", "256,abc"], &["abc"]),
        (&["--presets", "huge"], &["huge", "preset"]),
        (&["--train-patch", "20"], &["20", "multiple of 8"]),
    ];
    for (extra, expected) in cases {
        let mut args = vec!["bench", "--backend", "cpu", "--presets", "tiny", "--train-iters", "0", "--out", s(&out)];
        args.extend_from_slice(extra);
        let result = cli(&args);
        let message = stderr(&result);
        assert!(!result.status.success(), "should fail: {args:?}");
        assert!(!message.contains("panicked"), "panicked: {message}");
        for word in expected {
            assert!(message.contains(word), "message should mention '{word}': {message}");
        }
        assert!(!out.exists(), "a refused bench created {}", out.display());
    }
}

#[test]
fn max_seconds_skips_repeats_and_larger_sizes_and_says_so() {
    let dir = TempDir::new().unwrap();
    let out = dir.path().join("bench");
    let result = cli(&[
        "bench",
        "--presets",
        "tiny",
        "--sizes",
        "64,32",
        "--backend",
        "cpu",
        "--warmup",
        "2",
        "--repeats",
        "3",
        "--train-iters",
        "0",
        "--max-seconds",
        "0.001",
        "--out",
        s(&out),
    ]);
    assert!(result.status.success(), "bench failed: {}", stderr(&result));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(out.join("bench.json")).unwrap()).unwrap();
    let forward = json["forward"].as_array().unwrap();
    assert_eq!(forward.len(), 2);
    // Sizes run smallest first; one warm-up and one timed run always happen.
    let first = &forward[0];
    assert_eq!((first["size"].as_u64(), first["status"].as_str()), (Some(32), Some("ok")));
    assert_eq!(first["runs_ms"].as_array().unwrap().len(), 1);
    assert_eq!((first["warmup_runs"].as_u64(), first["skipped_warmup_runs"].as_u64()), (Some(1), Some(1)));
    assert_eq!(first["skipped_runs"], 2);
    assert!(first["message"].as_str().unwrap().contains("--max-seconds"));
    let second = &forward[1];
    assert_eq!((second["size"].as_u64(), second["status"].as_str()), (Some(64), Some("skipped")));
    assert!(second["median_ms"].is_null());
    assert!(second["message"].as_str().unwrap().contains("--max-seconds"));
    assert!(json["training"].as_array().unwrap().is_empty());
    let md = std::fs::read_to_string(out.join("bench.md")).unwrap();
    assert!(md.contains("skipped"), "{md}");
}
