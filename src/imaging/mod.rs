//! Pixels on the host: the visual condition's image, its mask and box, the gray canvas,
//! latent-grid masks, PNG output, and the conversions between RGB bytes and the VAE's tensors
//! (docs/method.md §2.1–2.2, §2.10c). Everything but [`tensor`] is plain host code, the same
//! natively and in the browser (the app decodes the user's files with these functions).
//!
//! The path of a condition, and where each step is decided:
//! 1. [`decode`]: PNG, JPEG or WebP bytes → upright 8-bit RGB (EXIF orientation applied, alpha
//!    flattened onto gray 128 and kept as an implied mask, gray and 16-bit expanded); empty,
//!    unknown, damaged and oversized files (over 50 megapixels or 16384 px a side, refused
//!    from the header) are errors that name the input.
//! 2. [`condition`]: the image's largest centred square resized to the box's side (Catmull–Rom;
//!    an image already of that side is used byte for byte), the mask (black = keep) treated
//!    alike and binarized at 128, the crop (condition pixels on gray), the latent crop mask by
//!    nearest downsampling, and the canvas with every condition pasted in list order and m_full.
//! 3. [`tensor`]: RGB bytes ↔ the VAE's [−1, 1] tensors.
//! 4. [`png`]: images out as PNG, with the run's parameters in text chunks read back later.
//!
//! [`raster`] holds the owned pixel buffers and the one resampling step; [`brush`] paints a
//! mask over a condition in the app and writes it as the mask file the CLI would take.

pub mod brush;
pub mod condition;
pub mod decode;
pub mod geometry;
pub mod png;
pub mod raster;
pub mod tensor;

pub use condition::{
    compose_canvas, prepare_condition, prepare_condition_files, Canvas, ConditionError,
    PreparedCondition,
};
pub use decode::{decode_image, decode_mask, DecodeError, DecodedImage};
pub use geometry::{GeometryError, GridMask, PixelRect, SquareBox};
pub use raster::{GrayImage, RgbImage, NEUTRAL_GRAY};
pub use tensor::{planar_to_rgb, rgb_to_tensor, tensor_to_rgb};
