//! Where the model runs: the user's choice (selector and `?backend=` URL parameter) and the
//! backend that actually ran, with the memory the run left held.

use std::fmt;

/// The backend selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendChoice {
    /// WebGPU when the start-up self-test passes, else the CPU.
    #[default]
    Auto,
    /// WebGPU; still falls back to the CPU (with a message) when it fails.
    WebGpu,
    /// The CPU (burn-ndarray in WebAssembly); WebGPU is never touched.
    Cpu,
}

impl BackendChoice {
    pub const ALL: [BackendChoice; 3] = [BackendChoice::Auto, BackendChoice::WebGpu, BackendChoice::Cpu];

    /// The option value and the `?backend=` value.
    pub fn name(self) -> &'static str {
        match self {
            BackendChoice::Auto => "auto",
            BackendChoice::WebGpu => "webgpu",
            BackendChoice::Cpu => "cpu",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            BackendChoice::Auto => "Auto (WebGPU if it works)",
            BackendChoice::WebGpu => "WebGPU",
            BackendChoice::Cpu => "CPU",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name().eq_ignore_ascii_case(name.trim()))
    }

    /// From a page's query string (`?backend=cpu&x=1`, with or without the `?`).
    pub fn from_query(query: &str) -> Option<Self> {
        query
            .trim_start_matches('?')
            .split('&')
            .filter_map(|pair| pair.split_once('='))
            .find(|(key, _)| *key == "backend")
            .and_then(|(_, value)| Self::from_name(value))
    }

    /// Whether this choice wants the WebGPU self-test.
    pub fn wants_gpu(self) -> bool {
        self != BackendChoice::Cpu
    }
}

/// The backend a restoration ran on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackendKind {
    WebGpu,
    Cpu,
}

impl BackendKind {
    /// `data-backend` attribute value.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::WebGpu => "webgpu",
            BackendKind::Cpu => "cpu",
        }
    }
}

impl fmt::Display for BackendKind {
    /// "WebGPU" or "CPU", as in the status line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendKind::WebGpu => "WebGPU",
            BackendKind::Cpu => "CPU",
        })
    }
}

/// The status line after a restoration: backend and elapsed time, e.g.
/// "Restored on WebGPU in 1234 ms (4 tiles)".
pub fn done_message(backend: BackendKind, elapsed_ms: f64, tiles: usize) -> String {
    let tiles = if tiles == 1 { "whole image".to_string() } else { format!("{tiles} tiles") };
    format!("Restored on {backend} in {} ms ({tiles})", elapsed_ms.round() as u64)
}

/// Memory after a run, in bytes: what bounds the size of a photo the page can restore.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunMemory {
    /// The page's wasm memory (it only grows: its peak so far; the browser's limit is 4 GiB).
    pub page: u64,
    /// The CPU worker's wasm memory, when the run was there.
    pub worker: Option<u64>,
    /// WebGPU, when the run was there: bytes held by live tensors, and reserved by the pool.
    pub gpu: Option<(u64, u64)>,
}

impl RunMemory {
    /// "page 412 MB, worker 633 MB" (and ", GPU 18.0 MB in use, 26.4 MB reserved").
    pub fn summary(&self) -> String {
        let mb = |bytes: u64| bytes as f64 / 1e6;
        let mut text = format!("page {:.0} MB", mb(self.page));
        if let Some(worker) = self.worker {
            text += &format!(", worker {:.0} MB", mb(worker));
        }
        if let Some((in_use, reserved)) = self.gpu {
            text += &format!(", GPU {:.1} MB in use, {:.1} MB reserved", mb(in_use), mb(reserved));
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameter() {
        assert_eq!(BackendChoice::from_query("?backend=cpu"), Some(BackendChoice::Cpu));
        assert_eq!(BackendChoice::from_query("x=1&backend=WebGPU"), Some(BackendChoice::WebGpu));
        assert_eq!(BackendChoice::from_query("?backend=tpu"), None);
        assert_eq!(BackendChoice::from_query(""), None);
    }

    #[test]
    fn status_names_the_backend_and_milliseconds() {
        assert_eq!(done_message(BackendKind::Cpu, 1233.6, 1), "Restored on CPU in 1234 ms (whole image)");
        assert_eq!(done_message(BackendKind::WebGpu, 5.0, 4), "Restored on WebGPU in 5 ms (4 tiles)");
    }

    #[test]
    fn memory_summary_names_what_ran() {
        let cpu = RunMemory { page: 412_000_000, worker: Some(633_400_000), gpu: None };
        assert_eq!(cpu.summary(), "page 412 MB, worker 633 MB");
        let gpu = RunMemory { page: 90_000_000, worker: None, gpu: Some((18_040_000, 26_400_000)) };
        assert_eq!(gpu.summary(), "page 90 MB, GPU 18.0 MB in use, 26.4 MB reserved");
    }
}
