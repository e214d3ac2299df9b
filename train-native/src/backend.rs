//! The compute backend, chosen at run time among those compiled in.

use anyhow::{bail, Result};
use restora_model::RestoraBackend;

/// Where the model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendChoice {
    /// CPU (burn-ndarray): always available.
    Cpu,
    /// GPU through wgpu: Vulkan, Metal or DX12 (lavapipe on CPU-only Linux).
    Wgpu,
    /// NVIDIA GPU through CUDA (build with `--features cuda`).
    Cuda,
}

/// Work that runs on whichever backend was chosen.
pub trait BackendTask {
    type Output;
    fn run<B: RestoraBackend>(self, device: B::Device) -> Result<Self::Output>;
}

/// Runs `task` on the chosen backend, or explains why that backend is not available.
pub fn run_on<T: BackendTask>(choice: BackendChoice, task: T) -> Result<T::Output> {
    match choice {
        BackendChoice::Cpu => task.run::<burn::backend::NdArray<f32>>(Default::default()),
        BackendChoice::Wgpu => run_wgpu(task),
        BackendChoice::Cuda => run_cuda(task),
    }
}

#[cfg(feature = "wgpu")]
fn run_wgpu<T: BackendTask>(task: T) -> Result<T::Output> {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, WgpuDevice};
    let device = WgpuDevice::default();
    // wgpu panics when no adapter exists; turn that into an error the user can act on.
    let setup = std::panic::catch_unwind(|| {
        init_setup::<AutoGraphicsApi>(&device, Default::default());
    });
    if setup.is_err() {
        bail!("no wgpu adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers, or use --backend cpu)");
    }
    task.run::<burn::backend::Wgpu>(device)
}

#[cfg(not(feature = "wgpu"))]
fn run_wgpu<T: BackendTask>(_task: T) -> Result<T::Output> {
    bail!("this build has no wgpu backend: rebuild with `--features wgpu` or use --backend cpu")
}

#[cfg(feature = "cuda")]
fn run_cuda<T: BackendTask>(task: T) -> Result<T::Output> {
    let device = burn::backend::cuda::CudaDevice::default();
    task.run::<burn::backend::Cuda>(device)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda<T: BackendTask>(_task: T) -> Result<T::Output> {
    bail!("this build has no CUDA backend: rebuild with `cargo build --release -p train-native --features cuda`")
}
