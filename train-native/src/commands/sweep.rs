//! `train-native sweep`: the report's fine-tuning experiments (its Tables 2–5 and Figures 2–5)
//! for each task, from one foundation model:
//! - training size: 10, 20, 40, 80 training images (validated on 2, 4, 8, 16) at 200 iterations;
//! - iterations: 100, 200, …, 800 at 40 training / 8 validation images.
//!
//! Every cell is a fine-tune (`finetune::finetune`) in its own run folder under `--out`, scored
//! with PSNR, SSIM and LPIPS. Results are appended to `results.jsonl` as cells finish, so a sweep
//! stopped at any moment continues where it was (finished cells are skipped, a cell cut short
//! resumes from its checkpoint). `sweep.md` and `sweep.csv` (best value bold, second underlined,
//! as in the report) and one `sweep-<task>.png` per task are rewritten after every cell.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use clap::Args;
use restora_model::degradations::Task;
use serde::{Deserialize, Serialize};

use super::finetune::{self, FinetuneKnobs, Foundation, Plan};
use crate::cli::parse_task;
use crate::files::write_atomic;
use crate::plots::{render_grid_png, Chart, Series, Stroke};
use crate::training::validate::ValRow;

#[derive(Args, Debug, Clone)]
#[command(after_help = "Examples:\n  \
    train-native sweep --from runs/small/best.safetensors --data ../shared/corpus/train \
    --val ../shared/corpus/val --out runs/sweep --backend cuda\n  \
    train-native sweep --tasks denoise --train-sizes 2,4 --val-sizes 1,2 --size-iters 5 --iters 5,10 \
    --iters-train-size 4 --iters-val-size 2 --patch 32 --batch 2 --data DIR --val DIR --out runs/tiny-sweep")]
pub struct SweepArgs {
    /// The foundation model every cell starts from.
    /// Default: the shipped foundation model (static/weights/models.json).
    #[arg(long)]
    pub from: Option<PathBuf>,
    /// Folder of the sweep: one run folder per cell, results.jsonl, sweep.md, sweep.csv, plots.
    #[arg(long)]
    pub out: PathBuf,
    /// Tasks swept, comma-separated.
    #[arg(long, value_delimiter = ',', value_parser = parse_task, default_value = "denoise,deblur,dealias,inpaint")]
    pub tasks: Vec<Task>,
    /// Training sizes of the first experiment.
    #[arg(long, value_delimiter = ',', default_value = "10,20,40,80")]
    pub train_sizes: Vec<usize>,
    /// Validation sizes paired with --train-sizes.
    #[arg(long, value_delimiter = ',', default_value = "2,4,8,16")]
    pub val_sizes: Vec<usize>,
    /// Iterations of the training-size experiment.
    #[arg(long, default_value_t = 200)]
    pub size_iters: usize,
    /// Iteration counts of the second experiment.
    #[arg(long, value_delimiter = ',', default_value = "100,200,300,400,500,600,700,800")]
    pub iters: Vec<usize>,
    /// Training size of the iterations experiment.
    #[arg(long, default_value_t = 40)]
    pub iters_train_size: usize,
    /// Validation size of the iterations experiment.
    #[arg(long, default_value_t = 8)]
    pub iters_val_size: usize,
    #[command(flatten)]
    pub knobs: FinetuneKnobs,
}

/// Which of the report's two experiments a cell belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Experiment {
    /// The foundation model itself, no fine-tuning (a reference line per validation size).
    Foundation,
    TrainSize,
    Iterations,
}

/// One finished cell, as a line of `results.jsonl`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Cell {
    pub task: Task,
    pub experiment: Experiment,
    pub train_size: usize,
    pub val_size: usize,
    pub iters: usize,
    /// Validation images actually scored (fewer than `val_size` if the folder has fewer).
    pub images: usize,
    pub psnr: f64,
    pub ssim: f64,
    pub lpips: Option<f64>,
    pub input_psnr: f64,
    pub input_lpips: Option<f64>,
}

impl Cell {
    fn new(task: Task, experiment: Experiment, plan: &Plan, row: &ValRow) -> Self {
        Self {
            task,
            experiment,
            train_size: plan.train_size,
            val_size: plan.val_size,
            iters: plan.iters,
            images: row.images,
            psnr: row.psnr,
            ssim: row.ssim,
            lpips: row.lpips,
            input_psnr: row.input_psnr,
            input_lpips: row.input_lpips,
        }
    }

    fn key(&self) -> (Task, Experiment, usize, usize, usize) {
        (self.task, self.experiment, self.train_size, self.val_size, self.iters)
    }
}

/// Every cell of the sweep, in the order they run.
fn cells(args: &SweepArgs) -> Vec<(Experiment, Plan)> {
    let mut cells = Vec::new();
    for &task in &args.tasks {
        let mut val_sizes: Vec<usize> = args.val_sizes.iter().copied().chain([args.iters_val_size]).collect();
        val_sizes.sort_unstable();
        val_sizes.dedup();
        for val_size in val_sizes {
            cells.push((Experiment::Foundation, Plan { task, train_size: 0, val_size, iters: 0 }));
        }
        for (&train_size, &val_size) in args.train_sizes.iter().zip(&args.val_sizes) {
            cells.push((Experiment::TrainSize, Plan { task, train_size, val_size, iters: args.size_iters }));
        }
        for &iters in &args.iters {
            let plan = Plan { task, train_size: args.iters_train_size, val_size: args.iters_val_size, iters };
            cells.push((Experiment::Iterations, plan));
        }
    }
    cells
}

fn cell_folder(out: &Path, experiment: Experiment, plan: &Plan) -> PathBuf {
    let name = match experiment {
        Experiment::Foundation => format!("foundation-val{}", plan.val_size),
        Experiment::TrainSize => format!("size{}-val{}-iters{}", plan.train_size, plan.val_size, plan.iters),
        Experiment::Iterations => format!("iters{}-size{}-val{}", plan.iters, plan.train_size, plan.val_size),
    };
    out.join(plan.task.name()).join(name)
}

fn check(args: &SweepArgs) -> Result<()> {
    if args.train_sizes.len() != args.val_sizes.len() {
        bail!(
            "--train-sizes has {} values and --val-sizes {}: give one validation size per training size",
            args.train_sizes.len(),
            args.val_sizes.len()
        );
    }
    if args.tasks.is_empty() {
        bail!("--tasks is empty");
    }
    let sizes = args.train_sizes.iter().chain(&args.val_sizes).chain(&args.iters);
    if sizes.chain([&args.size_iters, &args.iters_train_size, &args.iters_val_size]).any(|&n| n == 0) {
        bail!("sizes and iteration counts must each be at least 1");
    }
    Ok(())
}

pub fn run(args: SweepArgs) -> Result<()> {
    check(&args)?;
    let foundation = Foundation::read(&crate::shipped::foundation_or_shipped(args.from.as_deref())?)?;
    let lpips = finetune::read_lpips(&args.knobs.lpips)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let results_path = args.out.join("results.jsonl");
    let mut done = read_results(&results_path)?;
    let all = cells(&args);
    for (index, (experiment, plan)) in all.iter().enumerate() {
        let probe = Cell::new(plan.task, *experiment, plan, &empty_row(plan.task));
        if done.iter().any(|cell| cell.key() == probe.key()) {
            continue;
        }
        eprintln!(
            "sweep cell {}/{}: {} {:?}, {} training / {} validation images, {} iterations",
            index + 1,
            all.len(),
            plan.task,
            experiment,
            plan.train_size,
            plan.val_size,
            plan.iters
        );
        let row = match experiment {
            Experiment::Foundation => finetune::score(&foundation.bytes, plan, &args.knobs, lpips.as_deref())?,
            _ => finetune::finetune(
                &foundation,
                plan,
                &args.knobs,
                lpips.as_deref(),
                &cell_folder(&args.out, *experiment, plan),
            )?,
        };
        let cell = Cell::new(plan.task, *experiment, plan, &row);
        append_result(&results_path, &cell)?;
        done.push(cell);
        write_reports(&args, &foundation.path, &done)?;
    }
    write_reports(&args, &foundation.path, &done)?;
    println!("wrote {} and {}", args.out.join("sweep.md").display(), args.out.join("sweep.csv").display());
    Ok(())
}

fn empty_row(task: Task) -> ValRow {
    ValRow { task, images: 0, psnr: 0.0, ssim: 0.0, input_psnr: 0.0, input_ssim: 0.0, lpips: None, input_lpips: None }
}

fn read_results(path: &Path) -> Result<Vec<Cell>> {
    if !path.exists() {
        return Ok(Vec::new());
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut cells = Vec::new();
    let mut kept = String::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str(line) {
            Ok(cell) => {
                cells.push(cell);
                kept.push_str(line);
                kept.push('\n');
            }
            // A line cut short by a kill: that cell runs again.
            Err(_) if number + 1 == text.lines().count() => {}
            Err(error) => bail!("{} line {}: {error}", path.display(), number + 1),
        }
    }
    // Drop a cut line from the file too, or the next cell's line would be appended to it.
    if kept != text {
        write_atomic(path, kept.as_bytes())?;
    }
    Ok(cells)
}

fn append_result(path: &Path, cell: &Cell) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open {}", path.display()))?;
    writeln!(file, "{}", serde_json::to_string(cell)?)?;
    file.sync_data()?;
    Ok(())
}

/// `from`: the foundation model's file, which the tables name.
fn write_reports(args: &SweepArgs, from: &Path, cells: &[Cell]) -> Result<()> {
    write_atomic(&args.out.join("sweep.md"), markdown(args, from, cells).as_bytes())?;
    write_atomic(&args.out.join("sweep.csv"), csv(cells).as_bytes())?;
    for &task in &args.tasks {
        if let Some(png) = figure(task, cells)? {
            write_atomic(&args.out.join(format!("sweep-{}.png", task.name())), &png)?;
        }
    }
    Ok(())
}

/// How each value of a column ranks: the best bold, the second underlined (the report's marks).
fn marks(values: &[Option<f64>], higher_is_better: bool) -> Vec<&'static str> {
    let mut order: Vec<f64> = values.iter().flatten().copied().collect();
    order.sort_by(|a, b| if higher_is_better { b.total_cmp(a) } else { a.total_cmp(b) });
    order.dedup();
    values
        .iter()
        .map(|v| match v {
            Some(v) if order.first() == Some(v) => "best",
            Some(v) if order.get(1) == Some(v) => "second",
            _ => "",
        })
        .collect()
}

fn marked(value: Option<f64>, mark: &str, decimals: usize) -> String {
    match value {
        None => "–".to_string(),
        Some(v) => match mark {
            "best" => format!("**{v:.decimals$}**"),
            "second" => format!("<u>{v:.decimals$}</u>"),
            _ => format!("{v:.decimals$}"),
        },
    }
}

fn of(cells: &[Cell], task: Task, experiment: Experiment) -> Vec<&Cell> {
    cells.iter().filter(|c| c.task == task && c.experiment == experiment).collect()
}

fn markdown(args: &SweepArgs, from: &Path, cells: &[Cell]) -> String {
    let mut md = format!(
        "# Fine-tuning sweep\n\nFrom `{}`; data `{}`, validation `{}`; patch {}, batch {}, lr {:e}, seed {}, \
         backend {:?}. PSNR in dB (higher is better), LPIPS shift-tolerant AlexNet (lower is better); best \
         **bold**, second <u>underlined</u>. Each validation image is degraded once, as in training's \
         validation.\n",
        from.display(),
        args.knobs.data.display(),
        args.knobs.val.display(),
        args.knobs.patch,
        args.knobs.batch,
        args.knobs.lr,
        args.knobs.seed,
        args.knobs.backend
    );
    for &task in &args.tasks {
        let _ = write!(md, "\n## {task}\n\n");
        let reference = of(cells, task, Experiment::Foundation);
        if !reference.is_empty() {
            md.push_str("| Validation images | Input PSNR | Foundation PSNR | Input LPIPS | Foundation LPIPS |\n");
            md.push_str("|---|---|---|---|---|\n");
            for c in &reference {
                let _ = writeln!(
                    md,
                    "| {} | {:.2} | {:.2} | {} | {} |",
                    c.images,
                    c.input_psnr,
                    c.psnr,
                    marked(c.input_lpips, "", 4),
                    marked(c.lpips, "", 4)
                );
            }
            md.push('\n');
        }
        for (experiment, title, first) in [
            (Experiment::TrainSize, format!("Training size ({} iterations)", args.size_iters), "Train / val images"),
            (
                Experiment::Iterations,
                format!("Iterations ({} training / {} validation images)", args.iters_train_size, args.iters_val_size),
                "Iterations",
            ),
        ] {
            let rows = of(cells, task, experiment);
            if rows.is_empty() {
                continue;
            }
            let psnr: Vec<Option<f64>> = rows.iter().map(|c| Some(c.psnr)).collect();
            let lpips: Vec<Option<f64>> = rows.iter().map(|c| c.lpips).collect();
            let (psnr_marks, lpips_marks) = (marks(&psnr, true), marks(&lpips, false));
            let _ = write!(md, "**{title}**\n\n| {first} | PSNR ↑ | LPIPS ↓ |\n|---|---|---|\n");
            for (i, c) in rows.iter().enumerate() {
                let label = match experiment {
                    Experiment::TrainSize => format!("{} / {}", c.train_size, c.images),
                    _ => c.iters.to_string(),
                };
                let _ = writeln!(
                    md,
                    "| {label} | {} | {} |",
                    marked(psnr[i], psnr_marks[i], 2),
                    marked(lpips[i], lpips_marks[i], 4)
                );
            }
            md.push('\n');
        }
    }
    md
}

fn csv(cells: &[Cell]) -> String {
    let mut text =
        String::from("task,experiment,train_size,val_size,images,iters,psnr,ssim,lpips,input_psnr,input_lpips\n");
    let optional = |v: Option<f64>| v.map_or(String::new(), |v| format!("{v:.6}"));
    for c in cells {
        let experiment = serde_json::to_value(c.experiment).ok().and_then(|v| v.as_str().map(String::from));
        let _ = writeln!(
            text,
            "{},{},{},{},{},{},{:.6},{:.6},{},{:.6},{}",
            c.task.name(),
            experiment.unwrap_or_default(),
            c.train_size,
            c.val_size,
            c.images,
            c.iters,
            c.psnr,
            c.ssim,
            optional(c.lpips),
            c.input_psnr,
            optional(c.input_lpips)
        );
    }
    text
}

/// The report's per-task figure: PSNR against the training size and against the iterations, the
/// foundation model's and the input's PSNR as flat references.
fn figure(task: Task, cells: &[Cell]) -> Result<Option<Vec<u8>>> {
    let sizes = of(cells, task, Experiment::TrainSize);
    let iters = of(cells, task, Experiment::Iterations);
    if sizes.is_empty() && iters.is_empty() {
        return Ok(None);
    }
    let references: BTreeMap<usize, &Cell> =
        of(cells, task, Experiment::Foundation).into_iter().map(|c| (c.val_size, c)).collect();
    let chart = |title: String, x_label: &str, points: Vec<(f64, f64)>, val_size: Option<usize>| {
        let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
        let span = |y: f64| {
            let lo = xs.iter().copied().fold(f64::INFINITY, f64::min);
            let hi = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            vec![(lo, y), (hi, y)]
        };
        let mut chart =
            Chart::new(title, x_label, "PSNR (dB)").with_series(Series::new("fine-tuned", points).markers());
        if let Some(reference) = val_size.and_then(|v| references.get(&v)) {
            chart = chart
                .with_series(Series::new("foundation", span(reference.psnr)).stroke(Stroke::Dashed))
                .with_series(Series::new("degraded input", span(reference.input_psnr)).stroke(Stroke::Dashed));
        }
        chart
    };
    let mut charts = Vec::new();
    if !sizes.is_empty() {
        let points = sizes.iter().map(|c| (c.train_size as f64, c.psnr)).collect();
        charts.push(chart(format!("{task}: training size"), "training images", points, None));
    }
    if !iters.is_empty() {
        let points = iters.iter().map(|c| (c.iters as f64, c.psnr)).collect();
        charts.push(chart(format!("{task}: iterations"), "iterations", points, iters.first().map(|c| c.val_size)));
    }
    let columns = charts.len();
    Ok(Some(render_grid_png(&charts, columns, 600 * columns as u32, 450)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_is_bold_and_second_underlined_in_either_direction() {
        let values = [Some(30.0), Some(31.5), None, Some(31.0)];
        assert_eq!(marks(&values, true), ["", "best", "", "second"]);
        assert_eq!(marks(&values, false), ["best", "", "", "second"]);
        assert_eq!(marked(Some(31.5), "best", 2), "**31.50**");
        assert_eq!(marked(Some(0.1234), "second", 4), "<u>0.1234</u>");
        assert_eq!(marked(None, "", 2), "–");
    }
}
