//! End-to-end tests of `train-native plot` on a synthetic training log.

use std::path::Path;
use std::process::{Command, Output};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_train-native")).args(args).output().expect("the binary runs")
}

fn s(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A log like `train` writes: tasks taking turns every 25 iterations, validation every 50,
/// checkpoints; plus what newer versions may add (a "mixed" task, new fields and row types) and
/// a diverged step (a null loss).
fn synthetic_log() -> String {
    let tasks = ["denoise", "deblur", "dealias", "inpaint"];
    let mut lines = Vec::new();
    for iteration in 1..=200usize {
        let task = tasks[(iteration - 1) / 25 % 4];
        let loss = 0.2 / (iteration as f64).sqrt() * (1.0 + 0.3 * ((iteration * 7919) % 13) as f64 / 13.0);
        lines.push(format!(
            r#"{{"type":"train","iteration":{iteration},"task":"{task}","loss":{loss},"lr":0.0003,"kinds":["x"],"seconds":0.1}}"#
        ));
        if iteration % 50 == 0 {
            for (t, task) in tasks.iter().enumerate() {
                let psnr = 22.0 + t as f64 + 4.0 * (iteration as f64 / 200.0);
                lines.push(format!(
                    r#"{{"type":"val","iteration":{iteration},"task":"{task}","images":2,"psnr":{psnr},"ssim":0.8,"input_psnr":{},"input_ssim":0.5,"lpips":0.2}}"#,
                    20.0 + t as f64
                ));
            }
            lines.push(format!(r#"{{"type":"checkpoint","iteration":{iteration},"dir":"checkpoints/x","best":true}}"#));
        }
    }
    lines.push(r#"{"type":"train","iteration":201,"task":"mixed","loss":0.01,"lr":0.0001,"extra":[1,2]}"#.into());
    lines.push(r#"{"type":"train","iteration":202,"task":"mixed","loss":null}"#.into());
    lines.push(r#"{"type":"summary","best_iteration":200}"#.into());
    lines.join("\n") + "\n"
}

fn assert_chart(path: &Path, size: (u32, u32)) {
    let image = image::open(path).unwrap_or_else(|e| panic!("{} is not an image: {e}", path.display())).to_rgb8();
    assert_eq!(image.dimensions(), size, "{}", path.display());
    let first = image.get_pixel(0, 0);
    assert!(image.pixels().any(|p| p != first), "{} is a single colour", path.display());
}

#[test]
fn plot_writes_loss_and_psnr_charts_beside_the_log_or_into_out() {
    let dir = tempfile::tempdir().unwrap();
    let run = dir.path().join("run");
    std::fs::create_dir(&run).unwrap();
    let log = run.join("log.jsonl");
    std::fs::write(&log, synthetic_log()).unwrap();

    // A run folder: the charts go beside its log.
    let output = cli(&["plot", s(&run)]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_chart(&run.join("loss.png"), (1200, 700));
    assert_chart(&run.join("psnr.png"), (1200, 700));
    assert!(String::from_utf8_lossy(&output.stdout).contains("psnr.png"));
    assert!(String::from_utf8_lossy(&output.stderr).contains("1 training row(s) without a finite loss"));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), synthetic_log(), "the log is untouched");

    // A log file, into a new folder, another size.
    let out = dir.path().join("figures/run");
    let output = cli(&["plot", s(&log), "--out", s(&out), "--width", "640", "--height", "360", "--smooth", "5"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_chart(&out.join("loss.png"), (640, 360));
    assert_chart(&out.join("psnr.png"), (640, 360));
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    assert_eq!(names.len(), 2, "only the two charts, no temporary files: {names:?}");
}

#[test]
fn plot_refuses_bad_logs_clearly_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log.jsonl");
    let fails = |args: &[&str], expected: &str| {
        let output = cli(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!output.status.success(), "{args:?} succeeded");
        assert!(stderr.contains(expected), "{args:?}: expected {expected:?} in:\n{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    };

    let mut text = synthetic_log();
    text.insert_str(text.find('\n').unwrap() + 1, "{\"type\":\"train\", oops\n");
    std::fs::write(&log, &text).unwrap();
    fails(&["plot", s(&log)], "line 2 is not JSON");

    std::fs::write(&log, "").unwrap();
    fails(&["plot", s(&log)], "is empty");
    std::fs::write(&log, "{\"type\":\"checkpoint\",\"iteration\":1}\n").unwrap();
    fails(&["plot", s(dir.path())], "no training or validation rows");
    fails(&["plot", s(&dir.path().join("missing.jsonl"))], "no such run folder or log file");
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    fails(&["plot", s(&empty)], "no log.jsonl in");
    std::fs::write(&log, synthetic_log()).unwrap();
    fails(&["plot", s(&log), "--width", "20"], "too small");

    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        assert!(!name.ends_with(".png") && !name.contains(".tmp-"), "left {name}");
    }
}
