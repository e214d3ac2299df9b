//! What each iteration does, as pure functions of its index: the task (alternating in blocks of
//! `switch_every`, or drawn per sample in the `mixed` mode), the patch and batch (progressive
//! stages) and the learning rate (linear warm-up, then cosine decay to `lr_min`). A resumed run
//! recomputes them all from the iteration alone.

use std::f64::consts::PI;
use std::fmt;

use restora_model::degradations::{Composition, Task};
use serde::{Serialize, Serializer};

use super::config::{OptimizerOptions, ScheduleMode, ScheduleOptions};

/// The task of a batch: one for all its samples, or one per sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchTask {
    One(Task),
    /// Every sample drew its own task (`schedule.mode = "mixed"`).
    Mixed,
}

impl BatchTask {
    /// The task name, or `mixed`.
    pub fn name(self) -> &'static str {
        match self {
            BatchTask::One(task) => task.name(),
            BatchTask::Mixed => "mixed",
        }
    }
}

impl fmt::Display for BatchTask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// As its name: `"deblur"`, `"mixed"`.
impl Serialize for BatchTask {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

/// The task of step `step`'s batch.
pub fn batch_task_at(step: usize, schedule: &ScheduleOptions) -> BatchTask {
    match schedule.mode {
        ScheduleMode::Alternate => BatchTask::One(task_at(step, schedule)),
        ScheduleMode::Mixed => BatchTask::Mixed,
    }
}

/// The weights samples draw their degradation (hence their task) with in the `mixed` mode: the
/// report's foundation mix ([`Composition::default`]) without the kinds of unscheduled tasks.
pub fn mixed_composition(tasks: &[Task]) -> Composition {
    let keep = |task: Task, weight: u32| if tasks.contains(&task) { weight } else { 0 };
    let all = Composition::default();
    Composition {
        gaussian_noise: keep(Task::Denoise, all.gaussian_noise),
        salt_and_pepper: keep(Task::Denoise, all.salt_and_pepper),
        poisson_noise: keep(Task::Denoise, all.poisson_noise),
        motion_blur: keep(Task::Deblur, all.motion_blur),
        gaussian_blur: keep(Task::Deblur, all.gaussian_blur),
        aliasing: keep(Task::Dealias, all.aliasing),
        inpainting: keep(Task::Inpaint, all.inpainting),
    }
}

/// The patch side and batch size of step `step` (0-based): those of the first progressive stage
/// whose `until` (1-based) it has not passed, else `patch` and `batch` (`data.patch`, `data.batch`).
pub fn shape_at(step: usize, schedule: &ScheduleOptions, patch: usize, batch: usize) -> (usize, usize) {
    schedule.progressive.iter().find(|stage| step < stage.until).map_or((patch, batch), |s| (s.patch, s.batch))
}

/// Every patch side the run uses from step `start` on, smallest first.
pub fn patches_used(start: usize, schedule: &ScheduleOptions, patch: usize) -> Vec<usize> {
    let mut patches: Vec<usize> =
        schedule.progressive.iter().filter(|stage| start < stage.until).map(|stage| stage.patch).collect();
    if schedule.progressive.last().is_none_or(|last| last.until < schedule.iters) {
        patches.push(patch);
    }
    patches.sort_unstable();
    patches.dedup();
    patches
}

/// The task of step `step` (0-based): `tasks` in turn, each for `switch_every` steps.
pub fn task_at(step: usize, schedule: &ScheduleOptions) -> Task {
    let tasks = &schedule.tasks;
    tasks[(step / schedule.switch_every.max(1)) % tasks.len()]
}

/// The learning rate of step `step` (0-based) of `total`: `lr · (step + 1) / warmup` during the
/// warm-up, then a cosine from `lr` at the first step after it to `lr_min` at the last step.
pub fn lr_at(step: usize, total: usize, optimizer: &OptimizerOptions) -> f64 {
    let (lr, lr_min, warmup) = (optimizer.lr, optimizer.lr_min, optimizer.warmup);
    if step < warmup {
        return lr * (step + 1) as f64 / warmup as f64;
    }
    let span = total.saturating_sub(warmup + 1).max(1);
    let progress = ((step - warmup) as f64 / span as f64).min(1.0);
    lr_min + (lr - lr_min) * 0.5 * (1.0 + (PI * progress).cos())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::training::config::Stage;

    #[test]
    fn tasks_alternate_in_blocks() {
        let schedule = ScheduleOptions { iters: 100, switch_every: 3, ..Default::default() };
        let tasks: Vec<Task> = (0..14).map(|i| task_at(i, &schedule)).collect();
        use Task::*;
        assert_eq!(
            tasks,
            [
                Denoise, Denoise, Denoise, Deblur, Deblur, Deblur, Dealias, Dealias, Dealias, Inpaint, Inpaint,
                Inpaint, Denoise, Denoise
            ]
        );
        let two = ScheduleOptions { tasks: vec![Inpaint, Deblur], switch_every: 1, ..schedule };
        assert_eq!((0..4).map(|i| task_at(i, &two)).collect::<Vec<_>>(), [Inpaint, Deblur, Inpaint, Deblur]);
        assert_eq!(batch_task_at(1, &two), BatchTask::One(Deblur));
        let mixed = ScheduleOptions { mode: ScheduleMode::Mixed, ..two };
        assert_eq!(batch_task_at(1, &mixed), BatchTask::Mixed);
        assert_eq!(serde_json::to_string(&BatchTask::Mixed).unwrap(), "\"mixed\"");
        assert_eq!(serde_json::to_string(&BatchTask::One(Dealias)).unwrap(), "\"dealias\"");
    }

    #[test]
    fn the_mixed_composition_keeps_the_reports_weights_of_the_scheduled_tasks() {
        assert_eq!(mixed_composition(&Task::ALL), Composition::default());
        let two = mixed_composition(&[Task::Deblur, Task::Inpaint]);
        assert_eq!(two.total(), 900);
        assert_eq!((two.motion_blur, two.gaussian_blur, two.inpainting), (200, 200, 500));
    }

    #[test]
    fn progressive_stages_set_the_patch_and_batch_until_their_iteration() {
        let stages = vec![Stage { until: 3, patch: 16, batch: 4 }, Stage { until: 5, patch: 24, batch: 2 }];
        let schedule = ScheduleOptions { iters: 8, progressive: stages, ..Default::default() };
        let shapes: Vec<(usize, usize)> = (0..8).map(|s| shape_at(s, &schedule, 32, 1)).collect();
        assert_eq!(shapes, [(16, 4), (16, 4), (16, 4), (24, 2), (24, 2), (32, 1), (32, 1), (32, 1)]);
        assert_eq!(patches_used(0, &schedule, 32), [16, 24, 32]);
        assert_eq!(patches_used(3, &schedule, 32), [24, 32]);
        // Stages past the end leave the final shape unused.
        let long = ScheduleOptions { iters: 5, ..schedule.clone() };
        assert_eq!(patches_used(0, &long, 32), [16, 24]);
        let none = ScheduleOptions::default();
        assert_eq!(shape_at(7, &none, 32, 1), (32, 1));
        assert_eq!(patches_used(0, &none, 32), [32]);
    }

    #[test]
    fn cosine_goes_from_lr_to_lr_min_after_the_warm_up() {
        let mut optimizer = OptimizerOptions { lr: 1e-3, lr_min: 1e-6, ..Default::default() };
        assert_eq!(lr_at(0, 100, &optimizer), 1e-3);
        assert!((lr_at(99, 100, &optimizer) - 1e-6).abs() < 1e-15);
        let middle = lr_at(49, 99, &optimizer);
        assert!((middle - (1e-3 + 1e-6) / 2.0).abs() < 1e-12, "{middle}");
        let lrs: Vec<f64> = (0..100).map(|i| lr_at(i, 100, &optimizer)).collect();
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]));

        optimizer.warmup = 10;
        assert!((lr_at(0, 100, &optimizer) - 1e-4).abs() < 1e-15);
        assert!((lr_at(4, 100, &optimizer) - 5e-4).abs() < 1e-15);
        assert_eq!(lr_at(10, 100, &optimizer), 1e-3);
        assert!((lr_at(99, 100, &optimizer) - 1e-6).abs() < 1e-15);
        // One step: the peak.
        optimizer.warmup = 0;
        assert_eq!(lr_at(0, 1, &optimizer), 1e-3);
    }
}
