//! The four restoration tasks Restora trains and evaluates on.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A restoration task; each has its own family of degradations (see [`super::sample`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Task {
    /// Remove Gaussian, Poisson or salt-and-pepper noise.
    Denoise,
    /// Remove Gaussian or motion blur.
    Deblur,
    /// Remove aliasing from a down-then-up resize.
    Dealias,
    /// Fill in masked regions (scratches).
    Inpaint,
}

impl Task {
    /// Every task, in a fixed order (for loops over tasks in training and evaluation).
    pub const ALL: [Task; 4] = [Task::Denoise, Task::Deblur, Task::Dealias, Task::Inpaint];

    /// The name used in the CLI, options files and reports.
    pub fn name(self) -> &'static str {
        match self {
            Task::Denoise => "denoise",
            Task::Deblur => "deblur",
            Task::Dealias => "dealias",
            Task::Inpaint => "inpaint",
        }
    }
}

impl fmt::Display for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A task name that is not one of `denoise`, `deblur`, `dealias`, `inpaint`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task {0:?}: expected denoise, deblur, dealias or inpaint")]
pub struct ParseTaskError(pub String);

impl FromStr for Task {
    type Err = ParseTaskError;

    /// Parses a task name (case-insensitive, surrounding spaces ignored).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Task::ALL.into_iter().find(|t| t.name() == wanted).ok_or_else(|| ParseTaskError(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_names_round_trip_through_str_display_and_serde() {
        for task in Task::ALL {
            assert_eq!(task.to_string().parse::<Task>().unwrap(), task);
            let json = serde_json::to_string(&task).unwrap();
            assert_eq!(json, format!("\"{task}\""));
            assert_eq!(serde_json::from_str::<Task>(&json).unwrap(), task);
        }
        assert_eq!(" Inpaint ".parse::<Task>().unwrap(), Task::Inpaint);
        let err = "sharpen".parse::<Task>().unwrap_err();
        assert!(err.to_string().contains("sharpen"));
    }
}
