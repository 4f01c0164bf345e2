//! Pixels: the visual condition's image, its mask and box, the gray canvas, latent-grid masks,
//! and the conversions between RGB bytes and the VAE's tensors (docs/method.md §2).

pub mod geometry;
pub mod tensor;

pub use geometry::{GeometryError, GridMask, PixelRect, SquareBox};
pub use tensor::{planar_to_rgb, rgb_to_tensor, tensor_to_rgb};
