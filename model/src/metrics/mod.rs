//! Image-quality metrics: PSNR, SSIM, LPIPS, and the error map.

mod error_map;
mod lpips;
mod psnr;
mod ssim;

pub use error_map::*;
pub use lpips::*;
pub use psnr::*;
pub use ssim::*;
