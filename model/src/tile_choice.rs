//! How to split an image for the network, from a memory estimate: shared by the page and the
//! command line, so both pick the same tiles for the same image, weights and memory budget.
//!
//! "auto" runs the whole image at once whenever the estimate fits the backend's limits (the
//! result is then exactly the untiled network's); above that it picks the largest of 512, 256
//! and 128 px tiles that fits (`--overlap 32`), and an explicit choice that does not fit is
//! refused with a suggestion instead of running out of memory.

use std::fmt;

use std::str::FromStr;

use crate::inference::{TileOptions, SIZE_MULTIPLE};
use crate::RestormerConfig;

/// The overlap between tiles (the CLI's default `--overlap`).
pub const OVERLAP: usize = 32;
/// Tile sides "auto" tries, largest first.
pub const AUTO_SIDES: [usize; 3] = [512, 256, 128];

/// The tile selector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TileChoice {
    /// The whole image when it fits, else the largest tile that does.
    Auto,
    /// The whole image at once (the CLI's default).
    Whole,
    /// Tiles of this side with the default overlap.
    Side(usize),
}

impl TileChoice {
    pub const ALL: [TileChoice; 5] =
        [TileChoice::Auto, TileChoice::Whole, TileChoice::Side(512), TileChoice::Side(256), TileChoice::Side(128)];

    /// The option value.
    pub fn name(self) -> String {
        match self {
            TileChoice::Auto => "auto".into(),
            TileChoice::Whole => "whole".into(),
            TileChoice::Side(side) => side.to_string(),
        }
    }

    pub fn label(self) -> String {
        match self {
            TileChoice::Auto => "Auto (whole image when it fits)".into(),
            TileChoice::Whole => "Whole image".into(),
            TileChoice::Side(side) => format!("{side} px tiles"),
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        name.parse().ok()
    }
}

/// `auto`, `whole`, or a tile side in pixels (at least 8).
impl FromStr for TileChoice {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "auto" => Ok(TileChoice::Auto),
            "whole" => Ok(TileChoice::Whole),
            side => match side.parse::<usize>() {
                Ok(side) if side >= SIZE_MULTIPLE => Ok(TileChoice::Side(side)),
                _ => {
                    Err(format!("{text:?} is not a tile choice: auto, whole or a side of at least {SIZE_MULTIPLE} px"))
                }
            },
        }
    }
}

/// What a backend can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest single tensor in bytes (WebGPU: the adapter's `maxStorageBufferBindingSize`).
    pub largest_tensor: u64,
    /// All live tensors of one tile together, in bytes.
    pub working_set: u64,
}

impl Limits {
    /// The CPU backend in wasm32: 4 GiB of linear memory at most, shared with the images.
    pub const CPU: Limits = Limits { largest_tensor: 1 << 30, working_set: 2 << 30 };

    /// A native backend allowed `bytes` for one tile's tensors (no single tensor above 1 GiB, a
    /// safe binding size for native GPU backends too).
    pub fn native(bytes: u64) -> Self {
        Limits { largest_tensor: bytes.min(1 << 30), working_set: bytes }
    }

    /// A WebGPU adapter with these buffer limits (bytes).
    pub fn webgpu(max_storage_buffer_binding_size: u64, max_buffer_size: u64) -> Self {
        let largest = max_storage_buffer_binding_size.min(max_buffer_size);
        Limits { largest_tensor: largest, working_set: (2u64 << 30).max(largest) }
    }
}

/// Memory one forward pass needs, estimated from the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    pub largest_tensor: u64,
    pub working_set: u64,
}

impl Estimate {
    /// For a `width × height` input (padded to a multiple of 8). The largest tensors are at full
    /// resolution in the decoder's first level and the refinement blocks, which run at `2·dim`
    /// channels: the feed-forward's input projection (`2 · hidden` channels) and the attention's
    /// `q, k, v` (`3 · 2·dim`). A few such tensors are alive at once.
    pub fn new(config: &RestormerConfig, width: usize, height: usize) -> Self {
        let pixels =
            (width.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE * height.div_ceil(SIZE_MULTIPLE) * SIZE_MULTIPLE) as u64;
        let wide = 2 * config.dim;
        let hidden = (wide as f64 * config.ffn_expansion_factor) as u64;
        let channels = (2 * hidden).max(3 * wide as u64);
        let largest_tensor = channels * pixels * 4;
        Estimate { largest_tensor, working_set: 3 * largest_tensor }
    }

    pub fn fits(&self, limits: &Limits) -> bool {
        self.largest_tensor <= limits.largest_tensor && self.working_set <= limits.working_set
    }
}

/// An explicit tile choice that does not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TooLarge {
    pub needed: u64,
    pub available: u64,
    /// The largest tile side that would fit, if any.
    pub suggestion: Option<usize>,
}

impl fmt::Display for TooLarge {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Out of memory: this would need about {} MB at once and the backend allows {} MB.",
            self.needed.div_ceil(1 << 20),
            self.available >> 20
        )?;
        match self.suggestion {
            Some(side) => write!(f, " Retry with smaller tiles ({side} px)."),
            None => write!(f, " Even 128 px tiles do not fit: use a smaller image or the command line."),
        }
    }
}

/// The tiles to run `choice` with on an image of `width × height`.
pub fn resolve(
    choice: TileChoice,
    width: usize,
    height: usize,
    config: &RestormerConfig,
    limits: &Limits,
) -> Result<TileOptions, TooLarge> {
    // A tile's last span may be up to 7 px longer than the side (see `plan_tiles`).
    let for_side =
        |side: usize| Estimate::new(config, width.min(side + SIZE_MULTIPLE), height.min(side + SIZE_MULTIPLE));
    let whole = Estimate::new(config, width, height);
    let suggestion = || AUTO_SIDES.into_iter().find(|&s| for_side(s).fits(limits));
    // Names the limit that is exceeded: one tensor, or all of them together.
    let too_large = |estimate: Estimate| {
        let (needed, available) = if estimate.largest_tensor > limits.largest_tensor {
            (estimate.largest_tensor, limits.largest_tensor)
        } else {
            (estimate.working_set, limits.working_set)
        };
        TooLarge { needed, available, suggestion: suggestion() }
    };
    match choice {
        TileChoice::Whole | TileChoice::Auto if whole.fits(limits) => Ok(TileOptions { tile: None, overlap: OVERLAP }),
        TileChoice::Whole => Err(too_large(whole)),
        TileChoice::Auto => match suggestion() {
            Some(side) => Ok(TileOptions { tile: Some(side), overlap: OVERLAP }),
            None => Err(too_large(for_side(AUTO_SIDES[AUTO_SIDES.len() - 1]))),
        },
        TileChoice::Side(side) if for_side(side).fits(limits) => Ok(TileOptions { tile: Some(side), overlap: OVERLAP }),
        TileChoice::Side(side) => Err(too_large(for_side(side))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Preset;

    #[test]
    fn small_images_run_whole_as_the_cli_default() {
        let config = RestormerConfig::preset(Preset::Small);
        let options = resolve(TileChoice::Auto, 448, 296, &config, &Limits::CPU).unwrap();
        assert_eq!(options, TileOptions { tile: None, ..TileOptions::default() });
        assert_eq!(TileOptions::default().overlap, OVERLAP);
    }

    #[test]
    fn large_images_get_tiles_and_explicit_choices_are_checked() {
        let config = RestormerConfig::preset(Preset::Small);
        // 128 MiB bindings, WebGPU's default.
        let gpu = Limits::webgpu(128 << 20, 256 << 20);
        let estimate = Estimate::new(&config, 448, 296);
        // Decoder level 1 at 48 channels: hidden 127, projection 254 channels.
        assert_eq!(estimate.largest_tensor, 254 * 448 * 296 * 4);
        let auto = resolve(TileChoice::Auto, 4000, 3000, &config, &gpu).unwrap();
        assert_eq!(auto, TileOptions { tile: Some(256), overlap: OVERLAP });
        let err = resolve(TileChoice::Whole, 4000, 3000, &config, &gpu).unwrap_err();
        assert_eq!(err.suggestion, Some(256));
        assert_eq!(err.available, 128 << 20, "the exceeded limit is the binding size");
        assert_eq!(err.needed, Estimate::new(&config, 4000, 3000).largest_tensor);
        assert!(err.to_string().contains("Retry with smaller tiles (256 px)"), "{err}");
        assert!(resolve(TileChoice::Side(512), 4000, 3000, &config, &gpu).is_err());
        assert_eq!(resolve(TileChoice::Side(128), 4000, 3000, &config, &gpu).unwrap().tile, Some(128));
        let tiny = Limits { largest_tensor: 1000, working_set: 3000 };
        assert_eq!(resolve(TileChoice::Auto, 4000, 3000, &config, &tiny).unwrap_err().suggestion, None);
    }

    #[test]
    fn choice_names_round_trip() {
        for choice in TileChoice::ALL {
            assert_eq!(TileChoice::from_name(&choice.name()), Some(choice));
        }
        assert_eq!("384".parse(), Ok(TileChoice::Side(384)));
        for bad in ["", "4", "-1", "big", "512px"] {
            let err = bad.parse::<TileChoice>().unwrap_err();
            assert!(err.contains("auto, whole"), "{err}");
        }
    }

    #[test]
    fn a_24_megapixel_photo_gets_tiles_within_a_native_budget() {
        let config = RestormerConfig::preset(Preset::Small);
        let limits = Limits::native(4 << 30);
        assert_eq!(resolve(TileChoice::Auto, 1024, 576, &config, &limits).unwrap().tile, None);
        assert_eq!(resolve(TileChoice::Auto, 6000, 4000, &config, &limits).unwrap().tile, Some(512));
        assert_eq!(resolve(TileChoice::Auto, 20_000, 200, &config, &limits).unwrap().tile, Some(512));
    }
}
