//! `train-native plot`: training curves of a run as PNG charts, from its `log.jsonl` (rows in
//! `training::log`): `loss.png` (training loss per task against iterations, raw and smoothed, log
//! scale) and `psnr.png` (validation PSNR per task, with the degraded inputs' PSNR as dashed
//! reference lines, and each task's PSNR right after its own blocks, `block_val` rows, as a line
//! without markers). Rows and fields it does not know are ignored, so newer logs still plot.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use serde_json::Value;

use crate::files::{ensure_not_an_input, write_atomic};
use crate::plots::{moving_average, render_png, Chart, Corner, Series, Stroke};

/// Name of the log in a run folder.
pub const LOG_NAME: &str = "log.jsonl";
/// Tasks in the order (and colours) they are drawn; other task names follow.
const TASK_ORDER: [&str; 5] = ["denoise", "deblur", "dealias", "inpaint", "mixed"];

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    train-native plot runs/small                  # writes runs/small/loss.png and runs/small/psnr.png\n  \
    train-native plot runs/small/log.jsonl --out report/figures --width 1600 --height 900")]
pub struct PlotArgs {
    /// A run folder of `train-native train` (its log.jsonl is read), or a log file.
    pub log: PathBuf,
    /// Folder for loss.png and psnr.png (created if needed) [default: beside the log].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Width of each image in pixels.
    #[arg(long, default_value_t = 1200)]
    pub width: u32,
    /// Height of each image in pixels.
    #[arg(long, default_value_t = 700)]
    pub height: u32,
    /// Moving-average window, in logged training rows of one task [default: a 25th of them, 1 to 200].
    #[arg(long)]
    pub smooth: Option<usize>,
}

/// One training row: the loss of a batch of `task`.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainPoint {
    pub iteration: f64,
    pub task: String,
    pub loss: f64,
}

/// One validation row: the mean PSNR of `task` on the validation set.
#[derive(Debug, Clone, PartialEq)]
pub struct ValPoint {
    pub iteration: f64,
    pub task: String,
    pub psnr: Option<f64>,
    pub input_psnr: Option<f64>,
    /// Validated right after the task's own block (`block_val` rows) rather than on the regular
    /// schedule.
    pub block_end: bool,
}

/// What `plot` uses of a log.
#[derive(Debug, Default)]
pub struct RunCurves {
    pub train: Vec<TrainPoint>,
    pub val: Vec<ValPoint>,
    /// Training rows without a finite loss (a diverged step logs `null`) or iteration.
    pub unusable_train: usize,
}

pub fn run(args: PlotArgs) -> Result<()> {
    let log = resolve_log(&args.log)?;
    let curves = read_log(&log)?;
    if curves.unusable_train > 0 {
        eprintln!("note: {} training row(s) without a finite loss are left out", curves.unusable_train);
    }
    let out = match &args.out {
        Some(dir) => {
            std::fs::create_dir_all(dir).with_context(|| format!("cannot create --out {}", dir.display()))?;
            dir.clone()
        }
        None => log.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")).to_path_buf(),
    };
    let run_name = run_name(&log);
    let mut charts = Vec::new();
    if curves.train.is_empty() {
        eprintln!("note: {} has no training rows with a loss: loss.png not written", log.display());
    } else {
        charts.push(("loss.png", loss_chart(&curves.train, args.smooth, &run_name)));
    }
    if curves.val.iter().all(|v| v.psnr.is_none() && v.input_psnr.is_none()) {
        eprintln!("note: {} has no validation rows with a PSNR: psnr.png not written", log.display());
    } else {
        charts.push(("psnr.png", psnr_chart(&curves.val, &run_name)));
    }
    // Draw everything before writing anything: an error leaves no partial set of charts.
    let mut images = Vec::new();
    for (name, chart) in &charts {
        let path = out.join(name);
        ensure_not_an_input(&path, &[&log])?;
        let png = render_png(chart, args.width, args.height).with_context(|| format!("cannot draw {name}"))?;
        images.push((path, png));
    }
    for (path, png) in images {
        write_atomic(&path, &png)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// The log file of `path`: the file itself, or `log.jsonl` in a run folder.
pub fn resolve_log(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        let log = path.join(LOG_NAME);
        if !log.is_file() {
            bail!("no {LOG_NAME} in {}: pass a run folder of `train-native train` or a log file", path.display());
        }
        Ok(log)
    } else if path.is_file() {
        Ok(path.to_path_buf())
    } else {
        bail!("no such run folder or log file: {}", path.display())
    }
}

/// Reads the training and validation rows of a log. Blank lines, rows of other types and unknown
/// fields are ignored; a line that is not a JSON object is an error naming it, except an
/// unfinished last line (no newline yet: a run still writing), which is skipped with a note.
pub fn read_log(path: &Path) -> Result<RunCurves> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.iter().all(|b| b.is_ascii_whitespace()) {
        bail!("{} is empty: no training or validation rows yet", path.display());
    }
    let text = String::from_utf8_lossy(&bytes);
    let finished = text.ends_with('\n');
    let lines: Vec<&str> = text.lines().collect();
    let mut curves = RunCurves::default();
    for (index, line) in lines.iter().enumerate() {
        let number = index + 1;
        if line.trim().is_empty() {
            continue;
        }
        let row = match serde_json::from_str::<Value>(line) {
            Ok(Value::Object(row)) => row,
            Ok(_) => bail!("{} line {number} is JSON but not an object (a log row): {}", path.display(), excerpt(line)),
            Err(_) if number == lines.len() && !finished => {
                eprintln!("note: {} line {number} is unfinished (still being written?): left out", path.display());
                continue;
            }
            Err(error) => bail!("{} line {number} is not JSON ({error}): {}", path.display(), excerpt(line)),
        };
        let number_of = |key: &str| row.get(key).and_then(Value::as_f64).filter(|v| v.is_finite());
        let iteration = number_of("iteration");
        let task = row.get("task").and_then(Value::as_str).unwrap_or("all").to_string();
        match row.get("type").and_then(Value::as_str) {
            Some("train") => match (iteration, number_of("loss")) {
                (Some(iteration), Some(loss)) => curves.train.push(TrainPoint { iteration, task, loss }),
                _ => curves.unusable_train += 1,
            },
            Some(kind @ ("val" | "block_val")) => {
                if let Some(iteration) = iteration {
                    let (psnr, input_psnr) = (number_of("psnr"), number_of("input_psnr"));
                    let block_end = kind == "block_val";
                    curves.val.push(ValPoint { iteration, task, psnr, input_psnr, block_end });
                }
            }
            _ => {}
        }
    }
    if curves.train.is_empty() && curves.unusable_train == 0 && curves.val.is_empty() {
        bail!("{} has no training or validation rows", path.display());
    }
    Ok(curves)
}

fn excerpt(line: &str) -> String {
    let short: String = line.chars().take(60).collect();
    if short.len() < line.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// The run's name for titles: its folder.
fn run_name(log: &Path) -> String {
    let folder = log.parent().and_then(|p| p.canonicalize().ok()).or_else(|| log.parent().map(Path::to_path_buf));
    folder.and_then(|f| f.file_name().map(|n| n.to_string_lossy().into_owned())).unwrap_or_default()
}

fn titled(what: &str, run: &str) -> String {
    if run.is_empty() {
        what.to_string()
    } else {
        format!("{what}: {run}")
    }
}

/// Groups `items` by task in [`TASK_ORDER`], other tasks after in order of appearance, each with
/// its palette colour.
fn by_task<T>(items: &[T], task: impl Fn(&T) -> &str) -> Vec<(String, usize, Vec<&T>)> {
    let mut groups: BTreeMap<(usize, usize), (String, Vec<&T>)> = BTreeMap::new();
    let mut others: Vec<String> = Vec::new();
    for item in items {
        let name = task(item);
        let key = match TASK_ORDER.iter().position(|t| *t == name) {
            Some(known) => (known, 0),
            None => {
                let other = others.iter().position(|o| o == name).unwrap_or_else(|| {
                    others.push(name.to_string());
                    others.len() - 1
                });
                (TASK_ORDER.len(), other)
            }
        };
        groups.entry(key).or_insert_with(|| (name.to_string(), Vec::new())).1.push(item);
    }
    groups.into_iter().map(|((known, other), (name, items))| (name, known + other, items)).collect()
}

/// Puts a NaN (a break in the line) between points more than ten typical steps apart, e.g.
/// between the blocks of iterations of one task when the tasks take turns.
fn break_gaps(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut steps: Vec<f64> = points.windows(2).map(|w| w[1].0 - w[0].0).filter(|d| *d > 0.0).collect();
    if steps.is_empty() {
        return points.to_vec();
    }
    steps.sort_by(f64::total_cmp);
    let limit = steps[steps.len() / 2] * 10.0;
    let mut out = Vec::with_capacity(points.len());
    for (index, &point) in points.iter().enumerate() {
        if index > 0 && point.0 - points[index - 1].0 > limit {
            out.push(((point.0 + points[index - 1].0) / 2.0, f64::NAN));
        }
        out.push(point);
    }
    out
}

/// Training loss against iterations: per task, the raw losses faint and their moving average.
pub fn loss_chart(train: &[TrainPoint], smooth: Option<usize>, run: &str) -> Chart {
    let mut chart =
        Chart { log_y: true, ..Chart::new(titled("Training loss", run), "iteration", "L1 loss (log scale)") };
    for (task, color, rows) in by_task(train, |p| p.task.as_str()) {
        let mut points: Vec<(f64, f64)> = rows.iter().map(|p| (p.iteration, p.loss)).collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        let window = match smooth {
            Some(window) => window.max(1),
            None => (points.len() / 25).clamp(1, 200),
        };
        let average = moving_average(&points, window);
        let label = if window > 1 { format!("{task} (mean of {window})") } else { task.clone() };
        chart.series.push(
            Series::new(format!("{task} raw"), break_gaps(&points))
                .stroke(Stroke::Faint)
                .color(color)
                .hide_from_legend(),
        );
        chart.series.push(Series::new(label, break_gaps(&average)).color(color));
    }
    chart
}

/// Validation PSNR against iterations per task, with the degraded inputs' mean PSNR as a dashed
/// level across the chart.
pub fn psnr_chart(val: &[ValPoint], run: &str) -> Chart {
    let mut chart =
        Chart { legend: Corner::UpperLeft, ..Chart::new(titled("Validation PSNR", run), "iteration", "PSNR (dB)") };
    let (first, last) = val.iter().fold((f64::MAX, f64::MIN), |(a, b), v| (a.min(v.iteration), b.max(v.iteration)));
    for (task, color, rows) in by_task(val, |p| p.task.as_str()) {
        let curve = |block_end: bool| {
            let mut points: Vec<(f64, f64)> = rows
                .iter()
                .filter(|v| v.block_end == block_end)
                .filter_map(|v| v.psnr.map(|p| (v.iteration, p)))
                .collect();
            points.sort_by(|a, b| a.0.total_cmp(&b.0));
            points
        };
        let (regular, after_block) = (curve(false), curve(true));
        if !regular.is_empty() {
            chart.series.push(Series::new(task.clone(), regular).color(color).markers());
        }
        if !after_block.is_empty() {
            let name = format!("{task}, end of its block");
            // A plain line without markers: the same task's other curve carries markers.
            chart.series.push(Series::new(name, after_block).color(color));
        }
        let inputs: Vec<f64> = rows.iter().filter_map(|v| v.input_psnr).collect();
        if !inputs.is_empty() {
            let level = inputs.iter().sum::<f64>() / inputs.len() as f64;
            let span = if last > first { vec![(first, level), (last, level)] } else { vec![(first, level)] };
            chart.series.push(Series::new(format!("{task} input"), span).stroke(Stroke::Dashed).color(color));
        }
    }
    chart
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) -> PathBuf {
        let path = dir.join(LOG_NAME);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn rows_are_read_and_odd_lines_tolerated_or_named() {
        let dir = tempfile::tempdir().unwrap();
        let log = write(
            dir.path(),
            concat!(
                r#"{"type":"train","iteration":1,"task":"deblur","loss":0.5,"lr":0.001,"kinds":["x"],"seconds":0.1,"new":1}"#,
                "\n\n",
                r#"{"type":"train","iteration":2,"task":"mixed","loss":null}"#,
                "\n",
                r#"{"type":"val","iteration":2,"task":"denoise","images":2,"psnr":30.0,"ssim":0.9,"input_psnr":20.0}"#,
                "\n",
                r#"{"type":"checkpoint","iteration":2,"dir":"c","best":true}"#,
                "\n",
                r#"{"type":"something_new","iteration":3}"#,
                "\n",
                r#"{"type":"train","iteration":3,"task":"mixed","lo"#,
            ),
        );
        let curves = read_log(&log).unwrap();
        assert_eq!(curves.train, [TrainPoint { iteration: 1.0, task: "deblur".into(), loss: 0.5 }]);
        assert_eq!(curves.unusable_train, 1);
        assert_eq!(curves.val.len(), 1);
        assert_eq!(curves.val[0].input_psnr, Some(20.0));

        // The same broken row in the middle is an error naming its line.
        let log = write(dir.path(), "{\"type\":\"train\",\"iteration\":1,\"loss\":0.5}\n\nnot json\n{}\n");
        let error = format!("{:#}", read_log(&log).unwrap_err());
        assert!(error.contains("line 3 is not JSON"), "{error}");
        let log = write(dir.path(), "[1, 2]\n");
        assert!(format!("{:#}", read_log(&log).unwrap_err()).contains("line 1 is JSON but not an object"));
        let log = write(dir.path(), "\n \n");
        assert!(format!("{:#}", read_log(&log).unwrap_err()).contains("is empty"));
        let log = write(dir.path(), "{\"type\":\"checkpoint\",\"iteration\":1}\n");
        assert!(format!("{:#}", read_log(&log).unwrap_err()).contains("no training or validation rows"));
        assert!(resolve_log(&dir.path().join("missing")).is_err());
        assert_eq!(resolve_log(dir.path()).unwrap(), log);
    }

    #[test]
    fn tasks_keep_their_colours_and_turns_break_the_lines() {
        let train: Vec<TrainPoint> = (1..=40)
            .map(|i| TrainPoint {
                iteration: i as f64,
                task: ["inpaint", "zoom", "denoise"][(i - 1) / 10 % 3].into(),
                loss: 1.0 / i as f64,
            })
            .collect();
        let chart = loss_chart(&train, None, "run");
        let names: Vec<(&str, Option<usize>)> = chart.series.iter().map(|s| (s.name.as_str(), s.color)).collect();
        assert_eq!(
            names,
            [
                ("denoise raw", Some(0)),
                ("denoise", Some(0)),
                ("inpaint raw", Some(3)),
                ("inpaint", Some(3)),
                ("zoom raw", Some(5)),
                ("zoom", Some(5))
            ]
        );
        // inpaint ran at 1–10 and 31–40: one break between the two blocks.
        let inpaint = &chart.series[2].points;
        assert_eq!(inpaint.len(), 21);
        assert!(inpaint[10].1.is_nan());
        assert!(chart.log_y);
    }
}
