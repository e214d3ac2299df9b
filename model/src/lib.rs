//! Restora's model crate: the Restormer network with mask-aware attention for inpainting,
//! degradations, metrics, tiled inference and weight I/O. Generic over the Burn backend and
//! free of file I/O (bytes in, bytes out), so the CLI and the browser share every line.

pub mod degradations;
pub mod image;
pub mod inference;
pub mod kernels;
pub mod layers;
pub mod manifest;
pub mod metrics;
#[cfg(feature = "pth")]
pub mod pth;
#[cfg(feature = "pth")]
pub mod pth_check;
mod restormer;
pub mod tile_choice;
pub mod weights;

pub use image::{BitDepth, Image, ImageError, Mask};
pub use kernels::RestoraBackend;
pub use layers::LayerNormKind;
pub use restormer::{Macs, Preset, Restormer, RestormerConfig, Stages};

/// The backend unit tests run on.
#[cfg(test)]
pub type TestBackend = burn::backend::NdArray<f32>;
