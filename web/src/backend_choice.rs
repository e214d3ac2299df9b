//! Where the model runs: the user's choice (selector and `?backend=` URL parameter) and the
//! backend that actually ran.

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
}
