//! `train-native`: Restora's command line for researchers.

mod backend;
mod cli;
mod commands;
mod files;
mod memory;
mod picture_table;
pub mod plots;
mod pth_import;
mod shipped;
mod training;

use clap::Parser;

#[global_allocator]
static ALLOCATOR: memory::ReusingAllocator = memory::ReusingAllocator::new();

/// matrixmultiply (the CPU backend's GEMM) would start threads of its own inside every product,
/// on top of rayon's: Restora's CPU kernels already cut each product into one stripe per rayon
/// thread, and burn-ndarray's matmul spreads its batch over them. Measured on 2 cores (`bench`):
/// `small` training 64 × 2 1.46 → 1.87 it/s with the stripes and this off, `small` 256² forward
/// 1.15 → 1.08 s. matrixmultiply reads the variable once, at its first product, so it is set
/// before anything runs; a value the user set wins. Results do not change (see
/// `restora_model::kernels::cpu`'s striped GEMM test).
fn single_threaded_gemm() {
    if std::env::var_os("MATMUL_NUM_THREADS").is_none() {
        std::env::set_var("MATMUL_NUM_THREADS", "1");
    }
}

fn main() -> std::process::ExitCode {
    memory::keep_freed_memory();
    single_threaded_gemm();
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
