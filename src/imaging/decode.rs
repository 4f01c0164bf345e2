//! Image files to pixels: PNG, JPEG and WebP bytes to 8-bit RGB, upright and opaque, with the
//! same code natively and in the browser.
//!
//! What a decoded image is, whatever the file held:
//! - **Upright**: the EXIF orientation (JPEG's APP1, PNG's eXIf, WebP's EXIF chunk) is applied,
//!   so a phone photo stored on its side comes out as it was shot.
//! - **Opaque RGB**: alpha is flattened onto the canvas gray RGB(128, 128, 128) (so transparent
//!   parts look like the empty canvas), and the alpha itself is kept as the image's *implied
//!   mask* (alpha < 128 = discard) for callers that get no mask.
//! - **8-bit**: grayscale becomes RGB and 16-bit samples are scaled to 8 bits.
//!
//! Colour profiles (ICC) are not applied: values are used as stored, as COW's reference code
//! (Pillow) does.
//!
//! Size is checked from the header, before the pixels are allocated: at most [`MAX_SIDE`]
//! pixels per side and [`MAX_PIXELS`] in all.

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, Limits};

use super::raster::{GrayImage, RgbImage, NEUTRAL_GRAY};

/// The most pixels an image may have (50 megapixels): far more than a condition needs, and a
/// 16-bit RGBA image of this size still decodes within 400 MB.
pub const MAX_PIXELS: u64 = 50_000_000;

/// The longest side an image may have, in pixels.
pub const MAX_SIDE: u32 = 16_384;

/// An image file that cannot be used. Every message starts with the caller's label for the
/// input (e.g. its file name).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// No bytes at all.
    #[error("{label}: the file is empty; choose a PNG, JPEG or WebP image")]
    Empty {
        /// The input's name.
        label: String,
    },
    /// The first bytes are not those of any image format.
    #[error("{label}: not an image (its first bytes are not those of a PNG, JPEG or WebP file)")]
    UnknownFormat {
        /// The input's name.
        label: String,
    },
    /// A known image format other than PNG, JPEG and WebP.
    #[error("{label}: {format} images are not supported; convert it to PNG, JPEG or WebP")]
    UnsupportedFormat {
        /// The input's name.
        label: String,
        /// The format found.
        format: String,
    },
    /// Larger than [`MAX_SIDE`] per side or [`MAX_PIXELS`] in all, as the header says.
    #[error(
        "{label}: the image is {width}x{height} pixels; at most {MAX_SIDE} pixels per side and \
         {} megapixels in all are accepted, so scale it down first", MAX_PIXELS / 1_000_000
    )]
    TooLarge {
        /// The input's name.
        label: String,
        /// Width from the header.
        width: u32,
        /// Height from the header.
        height: u32,
    },
    /// The data is damaged or ends early.
    #[error("{label}: the {format} data is corrupt or cut short ({detail})")]
    Corrupt {
        /// The input's name.
        label: String,
        /// PNG, JPEG or WebP.
        format: &'static str,
        /// The decoder's words.
        detail: String,
    },
    /// A valid file using something the decoder cannot handle, or needing more memory than the
    /// decoder is allowed.
    #[error("{label}: this {format} file cannot be decoded here ({detail}); re-save it as an ordinary PNG or JPEG")]
    Unsupported {
        /// The input's name.
        label: String,
        /// PNG, JPEG or WebP.
        format: &'static str,
        /// The decoder's words.
        detail: String,
    },
}

/// An image as the engine uses it: upright opaque RGB, and its alpha when the file had one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecodedImage {
    /// The pixels, alpha flattened onto [`NEUTRAL_GRAY`].
    pub rgb: RgbImage,
    /// The alpha channel (8-bit, upright), when the file has one.
    pub alpha: Option<GrayImage>,
}

impl DecodedImage {
    /// The mask the alpha implies, in the mask convention (black = keep): 255 − alpha, so an
    /// opaque pixel (alpha ≥ 128) is kept and a transparent one (alpha < 128) discarded once
    /// binarized at 128. None when the file has no alpha.
    pub fn implied_mask(&self) -> Option<GrayImage> {
        let alpha = self.alpha.as_ref()?;
        let values = alpha.values().iter().map(|&a| 255 - a).collect();
        GrayImage::new(alpha.width(), alpha.height(), values)
    }
}

/// Decodes a PNG, JPEG or WebP file (see the module docs for what comes out). `label` names the
/// input in error messages.
pub fn decode_image(bytes: &[u8], label: &str) -> Result<DecodedImage, DecodeError> {
    let image = decode_upright(bytes, label)?;
    Ok(if image.color().has_alpha() {
        let rgba = image.to_rgba8();
        let (width, height) = (rgba.width() as usize, rgba.height() as usize);
        let raw = rgba.into_raw();
        let rgb = raw
            .chunks_exact(4)
            .flat_map(|p| {
                let a = p[3];
                [flatten(p[0], a), flatten(p[1], a), flatten(p[2], a)]
            })
            .collect();
        let alpha = raw.chunks_exact(4).map(|p| p[3]).collect();
        DecodedImage {
            rgb: RgbImage::new(width, height, rgb).expect("3 bytes per pixel"),
            alpha: GrayImage::new(width, height, alpha),
        }
    } else {
        let rgb = image.to_rgb8();
        let (width, height) = (rgb.width() as usize, rgb.height() as usize);
        DecodedImage {
            rgb: RgbImage::new(width, height, rgb.into_raw()).expect("3 bytes per pixel"),
            alpha: None,
        }
    })
}

/// Decodes a mask file (black = keep) to gray: decoded as an image (so transparent parts become
/// the canvas gray, which binarizes to *discard*), then luma with ITU-R BT.601 weights, as
/// Pillow's conversion to gray computes it.
pub fn decode_mask(bytes: &[u8], label: &str) -> Result<GrayImage, DecodeError> {
    let decoded = decode_image(bytes, label)?;
    let rgb = &decoded.rgb;
    let values = rgb
        .pixels()
        .chunks_exact(3)
        .map(|p| luma(p[0], p[1], p[2]))
        .collect();
    Ok(GrayImage::new(rgb.width(), rgb.height(), values).expect("one value per pixel"))
}

/// A colour value over the canvas gray at opacity `alpha`, rounded:
/// (c·α + 128·(255 − α)) / 255.
pub fn flatten(colour: u8, alpha: u8) -> u8 {
    let (c, a) = (colour as u32, alpha as u32);
    ((c * a + NEUTRAL_GRAY as u32 * (255 - a) + 127) / 255) as u8
}

/// Gray from RGB with BT.601 weights (0.299, 0.587, 0.114), rounded.
pub fn luma(r: u8, g: u8, b: u8) -> u8 {
    ((299 * r as u32 + 587 * g as u32 + 114 * b as u32 + 500) / 1000) as u8
}

/// The file's pixels, any depth and layout, with the EXIF orientation applied.
fn decode_upright(bytes: &[u8], label: &str) -> Result<DynamicImage, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty {
            label: label.to_string(),
        });
    }
    let format = image::guess_format(bytes).map_err(|_| DecodeError::UnknownFormat {
        label: label.to_string(),
    })?;
    let name = match format {
        ImageFormat::Png => "PNG",
        ImageFormat::Jpeg => "JPEG",
        ImageFormat::WebP => "WebP",
        other => {
            return Err(DecodeError::UnsupportedFormat {
                label: label.to_string(),
                format: format!("{other:?}").to_uppercase(),
            })
        }
    };
    let fail = |error: ImageError| classify(error, label, name);
    // Reading the header allocates only metadata (bounded by `Limits::default`'s memory cap);
    // the size check comes next, and the pixels after it.
    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    reader.limits(Limits::default());
    let mut decoder = reader.into_decoder().map_err(fail)?;
    let (width, height) = decoder.dimensions();
    if width > MAX_SIDE || height > MAX_SIDE || width as u64 * height as u64 > MAX_PIXELS {
        return Err(DecodeError::TooLarge {
            label: label.to_string(),
            width,
            height,
        });
    }
    // The JPEG decoder fills whatever a cut-short file lacks; a cut file is an error here.
    if format == ImageFormat::Jpeg && !jpeg_has_end(bytes) {
        return Err(DecodeError::Corrupt {
            label: label.to_string(),
            format: name,
            detail: "no end-of-image marker after the image data".to_string(),
        });
    }
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    decoder.set_limits(limits).map_err(fail)?;
    let orientation = decoder.orientation().map_err(fail)?;
    let mut image = DynamicImage::from_decoder(decoder).map_err(fail)?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// Whether a JPEG's last scan is followed by its end-of-image marker (FF D9). Inside
/// entropy-coded data a 0xFF byte is always followed by 0x00 or a restart marker, so the last
/// start-of-scan (FF DA) in the file is the image's last scan, whatever an embedded thumbnail
/// holds before it.
fn jpeg_has_end(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|w| w == [0xff, 0xda]);
    last_scan.is_some_and(|at| bytes[at..].windows(2).any(|w| w == [0xff, 0xd9]))
}

/// The `image` crate's error as ours.
fn classify(error: ImageError, label: &str, format: &'static str) -> DecodeError {
    let label = label.to_string();
    match error {
        ImageError::IoError(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            DecodeError::Corrupt {
                label,
                format,
                detail: "the data ends early".to_string(),
            }
        }
        ImageError::Decoding(_) | ImageError::IoError(_) | ImageError::Parameter(_) => {
            DecodeError::Corrupt {
                label,
                format,
                detail: error.to_string().trim().to_string(),
            }
        }
        ImageError::Limits(_) | ImageError::Unsupported(_) | ImageError::Encoding(_) => {
            DecodeError::Unsupported {
                label,
                format,
                detail: error.to_string().trim().to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flattening_and_luma_round_to_nearest() {
        assert_eq!(flatten(200, 255), 200);
        assert_eq!(flatten(200, 0), NEUTRAL_GRAY);
        assert_eq!(flatten(255, 128), 192); // (255·128 + 128·127) / 255 = 191.75
        assert_eq!(flatten(0, 1), 127); // 128·254 / 255 = 127.5
        assert_eq!(luma(255, 255, 255), 255);
        assert_eq!(luma(255, 0, 0), 76); // 76.245
        assert_eq!(luma(0, 0, 255), 29); // 29.07
    }

    #[test]
    fn a_jpeg_ends_with_its_end_marker_after_the_last_scan() {
        assert!(jpeg_has_end(&[
            0xff, 0xd8, 0xff, 0xda, 1, 2, 0xff, 0x00, 0xff, 0xd9
        ]));
        assert!(!jpeg_has_end(&[0xff, 0xd8, 0xff, 0xda, 1, 2, 0xff, 0x00]));
        // A thumbnail's end marker before the main scan does not count.
        assert!(!jpeg_has_end(&[0xff, 0xda, 0xff, 0xd9, 0xff, 0xda, 1, 2]));
    }
}
