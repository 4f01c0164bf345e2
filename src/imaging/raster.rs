//! Owned 8-bit pixel buffers (RGB and gray) and the one resampling step every condition goes
//! through: cut the largest centred square, then resize it to the box's side.
//!
//! The `image` crate does the filtering; these types keep its generic buffers out of the rest
//! of the engine, which speaks interleaved bytes (see [`super::tensor`]).

use image::imageops::{self, FilterType};
use image::{ImageBuffer, Luma, Pixel, Rgb};

/// The canvas and background colour, RGB(128, 128, 128): "semantically neutral" gray
/// (docs/method.md §2.1). Flattened alpha, discarded mask pixels and the empty canvas use it.
pub const NEUTRAL_GRAY: u8 = 128;

/// The filter that brings a condition to its box's side: Catmull–Rom cubic, the closest of the
/// `image` crate's filters to Pillow's default bicubic that COW's reference code resizes with
/// (docs/method.md §2.1). Downscaling widens its support, so it also anti-aliases.
pub const RESIZE_FILTER: FilterType = FilterType::CatmullRom;

/// An image as interleaved 8-bit RGB, row-major (`width · height · 3` bytes).
#[derive(Clone, PartialEq, Eq)]
pub struct RgbImage {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// A one-channel 8-bit image, row-major (`width · height` bytes): masks before binarizing.
#[derive(Clone, PartialEq, Eq)]
pub struct GrayImage {
    width: usize,
    height: usize,
    values: Vec<u8>,
}

impl RgbImage {
    /// An image from interleaved RGB bytes; None when the byte count is not `width · height · 3`.
    pub fn new(width: usize, height: usize, pixels: Vec<u8>) -> Option<Self> {
        (pixels.len() == width * height * 3).then_some(RgbImage {
            width,
            height,
            pixels,
        })
    }

    /// An image of one colour.
    pub fn filled(width: usize, height: usize, colour: [u8; 3]) -> Self {
        RgbImage {
            width,
            height,
            pixels: colour.repeat(width * height),
        }
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The interleaved RGB bytes.
    pub fn pixels(&self) -> &[u8] {
        &self.pixels
    }

    /// The interleaved RGB bytes, owned.
    pub fn into_pixels(self) -> Vec<u8> {
        self.pixels
    }

    /// The pixel at column `x`, row `y`.
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.pixels[i], self.pixels[i + 1], self.pixels[i + 2]]
    }

    /// The whole image resized to `width` × `height` (for previews; runs use [`fit_square`]).
    pub fn resized(&self, width: usize, height: usize) -> RgbImage {
        RgbImage {
            width,
            height,
            pixels: resize::<Rgb<u8>>(self, width, height, RESIZE_FILTER),
        }
    }

    /// The largest centred square, resized to `side` × `side` (see [`fit_square`]).
    pub fn fit_square(&self, side: usize) -> RgbImage {
        RgbImage {
            width: side,
            height: side,
            pixels: fit_square::<Rgb<u8>>(self.width, self.height, &self.pixels, side),
        }
    }
}

impl GrayImage {
    /// An image from one byte per pixel; None when the count is not `width · height`.
    pub fn new(width: usize, height: usize, values: Vec<u8>) -> Option<Self> {
        (values.len() == width * height).then_some(GrayImage {
            width,
            height,
            values,
        })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }

    /// The values, row-major.
    pub fn values(&self) -> &[u8] {
        &self.values
    }

    /// The value at column `x`, row `y`.
    pub fn value(&self, x: usize, y: usize) -> u8 {
        self.values[y * self.width + x]
    }

    /// The whole mask resized to `width` × `height`, nearest neighbour: a binary mask stays
    /// binary.
    pub fn resized(&self, width: usize, height: usize) -> GrayImage {
        GrayImage {
            width,
            height,
            values: resize::<Luma<u8>>(self, width, height, imageops::FilterType::Nearest),
        }
    }

    /// The largest centred square, resized to `side` × `side` (see [`fit_square`]).
    pub fn fit_square(&self, side: usize) -> GrayImage {
        GrayImage {
            width: side,
            height: side,
            values: fit_square::<Luma<u8>>(self.width, self.height, &self.values, side),
        }
    }
}

/// Resizes a whole raster (its bytes, `width` × `height`) with `filter`; the same size is
/// returned byte for byte.
fn resize<P>(
    image: &impl Raster,
    width: usize,
    height: usize,
    filter: imageops::FilterType,
) -> Vec<u8>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    let (w, h, data) = image.raw();
    if (w, h) == (width, height) {
        return data.to_vec();
    }
    let buffer = ImageBuffer::<P, Vec<u8>>::from_raw(w as u32, h as u32, data.to_vec())
        .expect("a raster holds its pixels");
    imageops::resize(&buffer, width as u32, height as u32, filter).into_raw()
}

/// Width, height and bytes of a raster, for [`resize`].
trait Raster {
    fn raw(&self) -> (usize, usize, &[u8]);
}

impl Raster for RgbImage {
    fn raw(&self) -> (usize, usize, &[u8]) {
        (self.width, self.height, &self.pixels)
    }
}

impl Raster for GrayImage {
    fn raw(&self) -> (usize, usize, &[u8]) {
        (self.width, self.height, &self.values)
    }
}

/// The centred square a `width` × `height` image is cut to: (left, top, side). A wider image
/// loses equal parts (±1 pixel) left and right, a taller one top and bottom.
pub fn centred_square(width: usize, height: usize) -> (usize, usize, usize) {
    let side = width.min(height);
    ((width - side) / 2, (height - side) / 2, side)
}

/// Cuts the largest centred square and resizes it to `side` with [`RESIZE_FILTER`]. A square
/// already of that side is returned byte for byte, so a condition prepared at
/// its box's size stays pixel-exact.
///
/// Why crop rather than squash: COW's reference code resizes any image straight to the square
/// box, which stretches a non-square photo (a face gets wider or taller). Cutting the centred
/// square keeps proportions, and a user who wants another part can crop beforehand.
fn fit_square<P>(width: usize, height: usize, data: &[u8], side: usize) -> Vec<u8>
where
    P: Pixel<Subpixel = u8> + 'static,
{
    if width == side && height == side {
        return data.to_vec();
    }
    let channels = P::CHANNEL_COUNT as usize;
    let (left, top, square) = centred_square(width, height);
    let row = width * channels;
    let cut: Vec<u8> = (top..top + square)
        .flat_map(|y| &data[y * row + left * channels..y * row + (left + square) * channels])
        .copied()
        .collect();
    if square == side {
        return cut;
    }
    let cut = ImageBuffer::<P, Vec<u8>>::from_raw(square as u32, square as u32, cut)
        .expect("the square holds its pixels");
    imageops::resize(&cut, side as u32, side as u32, RESIZE_FILTER).into_raw()
}

impl std::fmt::Debug for RgbImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RgbImage({}x{})", self.width, self.height)
    }
}

impl std::fmt::Debug for GrayImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "GrayImage({}x{})", self.width, self.height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_centred_square_and_its_resizing() {
        assert_eq!(centred_square(48, 32), (8, 0, 32));
        assert_eq!(centred_square(31, 40), (0, 4, 31));
        assert_eq!(centred_square(5, 5), (0, 0, 5));
        // Cut without resampling when the square already has the side.
        let values: Vec<u8> = (0..4 * 2).map(|v| v as u8).collect();
        let gray = GrayImage::new(4, 2, values).unwrap();
        assert_eq!(gray.fit_square(2).values(), &[1, 2, 5, 6]);
        // A square of the side is returned as is.
        let rgb = RgbImage::new(2, 2, (0..12).collect()).unwrap();
        assert_eq!(rgb.fit_square(2), rgb);
        assert_eq!(rgb.fit_square(4).pixels().len(), 4 * 4 * 3);
        assert!(RgbImage::new(2, 2, vec![0; 11]).is_none());
    }
}
