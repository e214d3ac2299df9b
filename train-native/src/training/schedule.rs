//! What each iteration does, as pure functions of its index: the task (alternating in blocks of
//! `switch_every`) and the learning rate (linear warm-up, then cosine decay to `lr_min`). A resumed
//! run recomputes both from the iteration alone.

use std::f64::consts::PI;

use restora_model::degradations::Task;

use super::config::{OptimizerOptions, ScheduleOptions};

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

    #[test]
    fn tasks_alternate_in_blocks() {
        let schedule = ScheduleOptions { iters: 100, switch_every: 3, tasks: Task::ALL.to_vec() };
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
