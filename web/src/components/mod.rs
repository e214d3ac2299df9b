//! The page's parts, one component per file.

mod compare;
mod demo;
mod mask_canvas;
mod mask_tools;
mod picker;
mod status;
mod toolbar;

pub use compare::Compare;
pub use demo::Demo;
pub use mask_canvas::MaskCanvas;
pub use mask_tools::MaskTools;
pub use picker::{open_file, Picker};
pub use status::Status;
pub use toolbar::Toolbar;
