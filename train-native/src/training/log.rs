//! The machine-readable log, `log.jsonl`: one JSON object per line, tagged by `type`:
//!
//! - `{"type":"train","iteration":12,"task":"deblur","loss":0.031,"lr":0.0003,"kinds":[...],"seconds":0.21}`
//! - `{"type":"val","iteration":1000,"task":"denoise","images":4,"psnr":29.1,"ssim":0.81,"input_psnr":20.2,"input_ssim":0.41}`
//! - `{"type":"checkpoint","iteration":1000,"dir":"checkpoints/iter-00001000","best":true}`
//!
//! `iteration` counts completed iterations (1 is the first). A resumed run first drops the rows
//! written after its checkpoint, so the log reads as one uninterrupted run.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Serialize;

use super::schedule::BatchTask;
use super::validate::ValRow;
use crate::files::write_atomic;

/// One line of the log.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Row<'a> {
    /// One training iteration.
    Train {
        iteration: usize,
        /// The task of every sample, or `mixed`.
        task: BatchTask,
        /// Mean absolute error of the batch (L1 loss) before the step.
        loss: f32,
        /// Learning rate of the step.
        lr: f64,
        /// Degradation kind of each sample.
        kinds: &'a [&'static str],
        /// Wall time of the iteration, data waiting included.
        seconds: f64,
    },
    /// Validation of one task.
    Val {
        iteration: usize,
        #[serde(flatten)]
        row: &'a ValRow,
    },
    /// Validation of the task whose block just ended (`run.val_block_ends`).
    BlockVal {
        iteration: usize,
        #[serde(flatten)]
        row: &'a ValRow,
    },
    /// A checkpoint was committed.
    Checkpoint { iteration: usize, dir: &'a str, best: bool },
}

/// Appends rows to `log.jsonl`.
pub struct RunLog {
    path: PathBuf,
    file: File,
}

impl RunLog {
    /// Opens the log at `path` for appending. Resuming (`keep_until` set), it starts from the rows
    /// of `previous` (the resumed run's log, often `path` itself) up to that iteration, dropping
    /// those an interrupted run wrote after its checkpoint; otherwise it starts empty.
    pub fn open(path: &Path, previous: &Path, keep_until: Option<usize>) -> Result<Self> {
        let kept = match keep_until {
            Some(last) if previous.exists() => {
                let reader = BufReader::new(
                    File::open(previous).with_context(|| format!("cannot read {}", previous.display()))?,
                );
                let mut kept = String::new();
                for line in reader.lines() {
                    let line = line?;
                    let iteration = serde_json::from_str::<serde_json::Value>(&line)
                        .ok()
                        .and_then(|v| v.get("iteration").and_then(|i| i.as_u64()));
                    if iteration.is_some_and(|i| i as usize <= last) {
                        kept.push_str(&line);
                        kept.push('\n');
                    }
                }
                kept
            }
            _ => String::new(),
        };
        write_atomic(path, kept.as_bytes())?;
        let file =
            OpenOptions::new().append(true).open(path).with_context(|| format!("cannot open {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), file })
    }

    pub fn write(&mut self, row: &Row) -> Result<()> {
        let mut line = serde_json::to_string(row)?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).with_context(|| format!("cannot write {}", self.path.display()))
    }
}

#[cfg(test)]
mod tests {
    use restora_model::degradations::Task;

    use super::*;

    #[test]
    fn rows_are_tagged_json_lines_and_resuming_drops_later_rows() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log.jsonl");
        let mut log = RunLog::open(&path, &path, None).unwrap();
        for iteration in 1..=4 {
            let row = Row::Train {
                iteration,
                task: BatchTask::One(Task::Deblur),
                loss: 0.5,
                lr: 1e-3,
                kinds: &["motion_blur"],
                seconds: 0.1,
            };
            log.write(&row).unwrap();
        }
        let val = ValRow {
            task: Task::Inpaint,
            images: 2,
            psnr: 30.0,
            ssim: 0.9,
            input_psnr: 20.0,
            input_ssim: 0.5,
            lpips: None,
            input_lpips: None,
        };
        log.write(&Row::Val { iteration: 4, row: &val }).unwrap();
        drop(log);
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5);
        assert_eq!(lines[0]["type"], "train");
        assert_eq!(lines[0]["task"], "deblur");
        assert_eq!(lines[4]["type"], "val");
        assert_eq!(lines[4]["psnr"], 30.0);
        assert_eq!(lines[4]["task"], "inpaint");

        let mut log = RunLog::open(&path, &path, Some(2)).unwrap();
        log.write(&Row::Checkpoint { iteration: 3, dir: "checkpoints/iter-00000003", best: false }).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let iterations: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["iteration"].as_u64().unwrap())
            .collect();
        assert_eq!(iterations, [1, 2, 3]);
        assert!(RunLog::open(&path, &path, None).is_ok());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
    }
}
