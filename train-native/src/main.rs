//! `train-native`: Restora's command line for researchers.

mod backend;
mod cli;
mod commands;
mod files;
mod memory;
pub mod plots;
mod pth_import;
mod shipped;
mod training;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: memory::ReusingAllocator = memory::ReusingAllocator::new();

fn main() -> std::process::ExitCode {
    memory::keep_freed_memory();
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
