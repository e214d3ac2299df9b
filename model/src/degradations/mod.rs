//! Degradations: seeded, parameter-explicit damage applied to clean images to make training and
//! evaluation pairs (BasicSR's `add_x(img, p)` / `random_add_x(img, range)` split: the structs
//! hold exact parameters, [`sample`] draws them from ranges).
//!
//! - noise ([`GaussianNoise`], [`PoissonNoise`], [`SaltAndPepper`]) for [`Task::Denoise`];
//! - blur ([`GaussianBlur`], [`MotionBlur`] with line or trajectory [`Kernel`]s) for
//!   [`Task::Deblur`];
//! - [`Aliasing`] (down then up to the same size) for [`Task::Dealias`];
//! - [`Scratches`], which also return their [`Mask`](crate::image::Mask), for [`Task::Inpaint`].
//!
//! [`Degradation`] wraps them all, serialises to tagged JSON and applies with a `u64` seed: the
//! same seed gives the same bytes on every platform, wasm32 included (ChaCha8 and arithmetic
//! written without the platform's libm). Parameters outside their documented range are refused
//! with a [`DegradationError`] naming them.

mod aliasing;
mod blur;
mod degradation;
mod error;
mod math;
mod noise;
mod sampler;
mod scratches;
mod task;

pub use aliasing::{Aliasing, Downsampling, Upsampling};
pub use blur::{convolve, convolve_separable, GaussianBlur, Kernel, MotionBlur, MotionKernel};
pub use degradation::{Degradation, Degraded};
pub use error::DegradationError;
pub use noise::{GaussianNoise, PoissonNoise, SaltAndPepper};
pub use sampler::{sample, sample_weighted, Composition};
pub use scratches::{ScratchFill, Scratches, Stroke};
pub use task::{ParseTaskError, Task};
