//! Ctrl-C (SIGINT) and SIGTERM while training: the first finishes the step in flight, writes a
//! checkpoint and stops, so the run resumes without losing a step; a second ends the process at
//! once, keeping the last committed checkpoint (checkpoints are written atomically).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Starts watching for interrupts (once per process; `sweep` trains many runs in one).
pub fn watch() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let installed = ctrlc::set_handler(|| {
            if REQUESTED.swap(true, Ordering::SeqCst) {
                eprintln!("\ninterrupted again: stopping now; the last checkpoint is kept");
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: stopping after this step with a checkpoint (interrupt again to stop at once)");
        });
        if let Err(error) = installed {
            eprintln!("note: interrupts are not caught ({error}): one loses the steps since the last checkpoint");
        }
    });
}

/// Whether an interrupt asked the loop to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
