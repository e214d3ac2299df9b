//! `train-native`: Restora's command line for researchers.

mod backend;
mod cli;
mod commands;
mod files;
pub mod plots;
mod pth_import;
mod shipped;
mod training;

use clap::Parser;

fn main() -> std::process::ExitCode {
    keep_freed_memory();
    let cli = cli::Cli::parse();
    match commands::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            for cause in error.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            std::process::ExitCode::FAILURE
        }
    }
}

/// Keeps freed tensor buffers in the process for reuse instead of returning them to the kernel.
///
/// The CPU backend allocates a fresh buffer for nearly every tensor op. glibc serves blocks of
/// 128 KiB and up (its threshold grows only slowly) with `mmap` and gives them back with `munmap`
/// on free: every op then pays page faults, page zeroing and TLB shoot-downs across the worker
/// threads. Measured (2 cores, `bench --presets small`): forward 256² 4.4 → 2.8 s, system time
/// 10 → 3 s. Blocks up to 32 MiB (glibc's most) now come from the heap, and the heap is not trimmed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn keep_freed_memory() {
    // SAFETY: mallopt only changes allocator parameters; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 32 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, i32::MAX);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn keep_freed_memory() {}
