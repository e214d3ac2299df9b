//! The compute backend, chosen at run time among those compiled in, and the devices of
//! `train --devices` (one data-parallel replica each).

use std::fmt;
use std::str::FromStr;

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

/// One device of `--devices`: `cpu`, `wgpu`, `wgpu:N` (the N-th discrete GPU), `cuda` or
/// `cuda:N`; a backend without an index means its default device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceSpec {
    pub backend: BackendChoice,
    pub index: Option<usize>,
}

impl FromStr for DeviceSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let (name, index) = match s.split_once(':') {
            Some((name, index)) => {
                let index = index.parse::<usize>().map_err(|_| format!("`{index}` in `{s}` is no device index"))?;
                (name, Some(index))
            }
            None => (s, None),
        };
        let backend = match name {
            "cpu" => BackendChoice::Cpu,
            "wgpu" => BackendChoice::Wgpu,
            "cuda" => BackendChoice::Cuda,
            _ => return Err(format!("unknown device `{s}`: expected cpu, wgpu[:N] or cuda[:N]")),
        };
        if backend == BackendChoice::Cpu && index.is_some() {
            return Err(format!("`{s}`: the CPU has no index (give `cpu` once per replica)"));
        }
        Ok(Self { backend, index })
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.backend {
            BackendChoice::Cpu => "cpu",
            BackendChoice::Wgpu => "wgpu",
            BackendChoice::Cuda => "cuda",
        };
        match self.index {
            Some(index) => write!(f, "{name}:{index}"),
            None => f.write_str(name),
        }
    }
}

/// Work that runs on several devices of one backend.
pub trait DevicesTask {
    type Output;
    fn run<B: RestoraBackend>(self, devices: Vec<B::Device>) -> Result<Self::Output>;
}

/// Runs `task` on the given devices, which must all be of one backend.
pub fn run_on_devices<T: DevicesTask>(devices: &[DeviceSpec], task: T) -> Result<T::Output> {
    let Some(first) = devices.first() else { bail!("no device given") };
    if let Some(other) = devices.iter().find(|d| d.backend != first.backend) {
        bail!("--devices mixes backends ({first} and {other}): every replica must run on the same backend");
    }
    match first.backend {
        BackendChoice::Cpu => task.run::<burn::backend::NdArray<f32>>(vec![Default::default(); devices.len()]),
        BackendChoice::Wgpu => run_wgpu_devices(devices, task),
        BackendChoice::Cuda => run_cuda_devices(devices, task),
    }
}

#[cfg(feature = "wgpu")]
fn run_wgpu_devices<T: DevicesTask>(devices: &[DeviceSpec], task: T) -> Result<T::Output> {
    use burn::backend::wgpu::{graphics::AutoGraphicsApi, init_setup, WgpuDevice};
    let mut chosen: Vec<WgpuDevice> = Vec::with_capacity(devices.len());
    for spec in devices {
        let device = spec.index.map_or(WgpuDevice::DefaultDevice, WgpuDevice::DiscreteGpu);
        if !chosen.contains(&device) {
            // wgpu panics when the adapter does not exist; say which one is missing instead.
            let setup = std::panic::catch_unwind(|| {
                init_setup::<AutoGraphicsApi>(&device, Default::default());
            });
            if setup.is_err() {
                match spec.index {
                    Some(index) => {
                        bail!("no wgpu device {spec}: wgpu:{index} is discrete GPU {index}, and none is there")
                    }
                    None => {
                        bail!("no wgpu adapter found (install a Vulkan driver, e.g. mesa-vulkan-drivers, or use cpu)")
                    }
                }
            }
        }
        chosen.push(device);
    }
    task.run::<burn::backend::Wgpu>(chosen)
}

#[cfg(not(feature = "wgpu"))]
fn run_wgpu_devices<T: DevicesTask>(_devices: &[DeviceSpec], _task: T) -> Result<T::Output> {
    bail!("this build has no wgpu backend: rebuild with `--features wgpu` or use cpu devices")
}

#[cfg(feature = "cuda")]
fn run_cuda_devices<T: DevicesTask>(devices: &[DeviceSpec], task: T) -> Result<T::Output> {
    use burn::backend::cuda::CudaDevice;
    use burn::prelude::{Tensor, TensorData};
    let mut chosen = Vec::with_capacity(devices.len());
    for spec in devices {
        let device = CudaDevice::new(spec.index.unwrap_or(0));
        // The CUDA runtime panics on a device that does not exist: probe it with one value.
        let probe = std::panic::catch_unwind(|| {
            Tensor::<burn::backend::Cuda, 1>::from_data(TensorData::from([1.0f32]), &device).into_data()
        });
        if probe.is_err() {
            bail!("no CUDA device {spec} (check nvidia-smi; indices start at 0)");
        }
        chosen.push(device);
    }
    task.run::<burn::backend::Cuda>(chosen)
}

#[cfg(not(feature = "cuda"))]
fn run_cuda_devices<T: DevicesTask>(_devices: &[DeviceSpec], _task: T) -> Result<T::Output> {
    bail!("this build has no CUDA backend: rebuild with `cargo build --release -p train-native --features cuda`")
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
