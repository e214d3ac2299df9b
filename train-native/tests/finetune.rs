//! End-to-end tests of `train-native finetune` and `train-native sweep` on the CPU: a tiny
//! foundation model trained for two iterations, then fine-tuned on small generated images with a
//! budget of a few iterations per cell.

mod common;

use common::{cli, foundation, images, ok, s, LPIPS};
use serde_json::Value;

#[test]
fn finetune_trains_one_task_on_a_subset_and_scores_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, val) = (images(dir.path(), "train", 5), images(dir.path(), "val", 3));
    let from = foundation(dir.path(), &data);
    let out = dir.path().join("ft");
    let output = ok(cli(&[
        "finetune",
        "--from",
        s(&from),
        "--task",
        "inpaint",
        "--train-size",
        "2",
        "--val-size",
        "2",
        "--iters",
        "3",
        "--data",
        s(&data),
        "--val",
        s(&val),
        "--out",
        s(&out),
        "--patch",
        "16",
        "--batch",
        "1",
        "--val-crop",
        "32",
        "--lpips",
        LPIPS,
    ]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("inpaint on 2 validation images"), "{stdout}");

    let scores: Value = serde_json::from_str(&std::fs::read_to_string(out.join("scores.json")).unwrap()).unwrap();
    assert_eq!(scores["iters"], 3);
    for which in ["foundation", "finetuned"] {
        let row = &scores[which];
        assert_eq!(row["task"], "inpaint");
        assert_eq!(row["images"], 2);
        assert!(row["psnr"].as_f64().unwrap() > 0.0);
        assert!(row["lpips"].as_f64().unwrap() >= 0.0, "{row}");
    }
    // The run trained inpainting only, on the requested subset, from the given weights.
    let config = std::fs::read_to_string(out.join("config.toml")).unwrap();
    assert!(config.contains("tasks = [\"inpaint\"]"), "{config}");
    assert!(config.contains("train_images = 2"), "{config}");
    assert!(config.contains("foundation"), "{config}");
    let log = std::fs::read_to_string(out.join("log.jsonl")).unwrap();
    let trained: Vec<Value> =
        log.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["type"] == "train").collect();
    assert_eq!(trained.len(), 3);
    assert!(trained.iter().all(|r| r["task"] == "inpaint"));

    // Weights of another shape are refused with the reason.
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, b"not weights").unwrap();
    let output = cli(&[
        "finetune",
        "--from",
        s(&bad),
        "--task",
        "denoise",
        "--data",
        s(&data),
        "--val",
        s(&val),
        "--out",
        s(&dir.path().join("ft2")),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("not a Restora weights file"));
}

#[test]
fn sweep_runs_end_to_end_writes_both_tables_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (data, val) = (images(dir.path(), "train", 4), images(dir.path(), "val", 2));
    let from = foundation(dir.path(), &data);
    let out = dir.path().join("sweep");
    let args = [
        "sweep",
        "--from",
        s(&from),
        "--out",
        s(&out),
        "--tasks",
        "denoise",
        "--train-sizes",
        "1,2",
        "--val-sizes",
        "1,2",
        "--size-iters",
        "1",
        "--iters",
        "1,2",
        "--iters-train-size",
        "2",
        "--iters-val-size",
        "1",
        "--data",
        s(&data),
        "--val",
        s(&val),
        "--patch",
        "16",
        "--batch",
        "1",
        "--val-crop",
        "32",
        "--lpips",
        LPIPS,
    ];
    ok(cli(&args));

    let md = std::fs::read_to_string(out.join("sweep.md")).unwrap();
    assert!(md.contains("**Training size (1 iterations)**"), "{md}");
    assert!(md.contains("**Iterations (2 training / 1 validation images)**"), "{md}");
    assert!(md.contains("| 1 / 1 |") && md.contains("| 2 / 2 |"), "{md}");
    assert_eq!(md.matches("**").count() % 2, 0);
    assert!(md.contains("<u>") || md.contains("**"), "best values are marked: {md}");

    let csv = std::fs::read_to_string(out.join("sweep.csv")).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert!(lines[0].starts_with("task,experiment,train_size"));
    // 2 foundation references (validation sizes 1 and 2) + 2 training sizes + 2 iteration counts.
    assert_eq!(lines.len(), 1 + 6, "{csv}");
    assert!(lines.iter().any(|l| l.starts_with("denoise,train_size,2,2,2,1,")), "{csv}");
    assert!(lines.iter().any(|l| l.starts_with("denoise,iterations,2,1,1,2,")), "{csv}");
    let png = image::open(out.join("sweep-denoise.png")).unwrap();
    assert!(png.width() >= 600);

    // Run again: every cell is done, nothing trains, the tables are the same.
    let before = std::fs::read_to_string(out.join("results.jsonl")).unwrap();
    let output = ok(cli(&args));
    assert!(!String::from_utf8_lossy(&output.stderr).contains("sweep cell"));
    assert_eq!(std::fs::read_to_string(out.join("results.jsonl")).unwrap(), before);
    assert_eq!(std::fs::read_to_string(out.join("sweep.csv")).unwrap(), csv);

    // Killed while appending the last cell's line: that cell runs again, and the cut line does
    // not corrupt the file for the runs after.
    let cut = &before[..before.trim_end().rfind('\n').unwrap() + 20];
    std::fs::write(out.join("results.jsonl"), cut).unwrap();
    let output = ok(cli(&args));
    assert!(String::from_utf8_lossy(&output.stderr).contains("sweep cell 6/6"));
    ok(cli(&args));
    assert_eq!(std::fs::read_to_string(out.join("results.jsonl")).unwrap(), before);

    // Mismatched size lists are refused.
    let output = cli(&[
        "sweep",
        "--from",
        s(&from),
        "--out",
        s(&out),
        "--train-sizes",
        "1,2",
        "--val-sizes",
        "1",
        "--data",
        s(&data),
        "--val",
        s(&val),
    ]);
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("one validation size per training size"));
}
