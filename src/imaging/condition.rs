//! Visual conditions as a run needs them (docs/method.md §2.1, §2.2, §2.10c): each image and
//! mask brought to its box's side, the crop (condition pixels on gray), the latent crop mask,
//! and the gray canvas with every crop pasted and the union of their latent masks.
//!
//! Masks follow COW's convention: **black = keep** (the condition), white = discard; a mask
//! pixel is kept when its gray value is below 128.

use super::decode::{decode_image, decode_mask, DecodeError, DecodedImage};
use super::geometry::{GeometryError, GridMask, SquareBox, LATENT_SCALE};
use super::raster::{GrayImage, NEUTRAL_GRAY};

/// The canvas side COW works on (SD-2.1-base's 512 × 512).
pub const DEFAULT_CANVAS: usize = 512;

/// A canvas side must be a multiple of this (the UNet halves the 1/8-scale latent three times).
pub const CANVAS_MULTIPLE: usize = 64;

/// Gray values below this are kept (black = keep); COW binarizes with Pillow's mode "1", whose
/// dithering a fixed threshold replaces (docs/method.md §2.1).
pub const KEEP_BELOW: u8 = 128;

/// The most a mask's proportions may differ from its image's (relative), so that both centred
/// squares cover the same part of the picture.
const ASPECT_TOLERANCE: f64 = 0.01;

/// A condition or canvas that cannot be prepared.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ConditionError {
    /// The image or mask file cannot be decoded.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The box cannot hold a condition (not on multiples of 8, empty, off the canvas).
    #[error("{label}: {source}")]
    Box {
        /// The condition's name ("condition 2" on the canvas).
        label: String,
        /// What is wrong with the box.
        source: GeometryError,
    },
    /// A prepared condition whose pixels do not match its box (built by hand, not by
    /// [`prepare_condition`]).
    #[error(
        "condition {index}: {rgb_bytes} RGB bytes and {mask_pixels} mask pixels do not fit its \
         {side}x{side} box"
    )]
    Inconsistent {
        /// 1-based position in the list of conditions.
        index: usize,
        /// The box side.
        side: usize,
        /// Bytes of `crop_rgb`.
        rgb_bytes: usize,
        /// Entries of `keep_pixels`.
        mask_pixels: usize,
    },
    /// The mask does not have its image's proportions, so it would not line up.
    #[error(
        "{label}: the mask is {mask_width}x{mask_height} but the image is \
         {image_width}x{image_height}; a mask must have its image's proportions"
    )]
    MaskShape {
        /// The condition's name.
        label: String,
        /// Mask width.
        mask_width: usize,
        /// Mask height.
        mask_height: usize,
        /// Image width.
        image_width: usize,
        /// Image height.
        image_height: usize,
    },
    /// The canvas side is not a positive multiple of 64.
    #[error("the canvas side {0} must be a positive multiple of {CANVAS_MULTIPLE} pixels")]
    CanvasSize(usize),
}

/// One visual condition at its box's side `s` (docs/method.md §2.1–2.2).
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedCondition {
    /// Where it sits on the canvas (`side` = s).
    pub placement: SquareBox,
    /// The crop, s × s interleaved RGB: condition pixels, [`NEUTRAL_GRAY`] elsewhere.
    pub crop_rgb: Vec<u8>,
    /// Per pixel of the crop (row-major), whether it belongs to the condition.
    pub keep_pixels: Vec<bool>,
    /// The latent crop mask m_crop, s/8 × s/8: the keep value at pixel (8i, 8j), PyTorch's
    /// nearest rule.
    pub keep_latent: GridMask,
}

/// The gray canvas with the conditions on it.
#[derive(Clone, Debug, PartialEq)]
pub struct Canvas {
    /// The side N in pixels.
    pub side: usize,
    /// N × N interleaved RGB.
    pub rgb: Vec<u8>,
    /// m_full, N/8 × N/8: the union of the conditions' latent masks at their boxes.
    pub keep_latent: GridMask,
}

/// Decodes an image file (and optionally a mask file) and prepares the condition for
/// `placement` (see [`prepare_condition`]). `label` names the image in messages; the mask is
/// called "mask of <label>".
pub fn prepare_condition_files(
    image: &[u8],
    label: &str,
    mask: Option<&[u8]>,
    placement: SquareBox,
) -> Result<PreparedCondition, ConditionError> {
    let decoded = decode_image(image, label)?;
    let mask = mask
        .map(|bytes| decode_mask(bytes, &format!("mask of {label}")))
        .transpose()?;
    prepare_condition(&decoded, mask.as_ref(), placement, label)
}

/// Prepares a decoded condition for a box of side s (a positive multiple of 8):
/// 1. the image's largest centred square, resized to s × s (an s × s image is used byte for
///    byte; see [`super::raster::RgbImage::fit_square`] for why we crop where COW squashes);
/// 2. the mask (black = keep) cut and resized the same way and binarized at [`KEEP_BELOW`];
///    without a mask, the mask the image's alpha implies, else everything is kept;
/// 3. the crop: image pixels where kept, [`NEUTRAL_GRAY`] elsewhere;
/// 4. the latent crop mask by nearest downsampling to s/8 × s/8.
///
/// The box is checked for size and alignment here and against the canvas by
/// [`compose_canvas`].
pub fn prepare_condition(
    image: &DecodedImage,
    mask: Option<&GrayImage>,
    placement: SquareBox,
    label: &str,
) -> Result<PreparedCondition, ConditionError> {
    let side = placement.side;
    // On the smallest canvas that holds the box: only emptiness and alignment are checked here.
    let holds_the_box = placement.x.max(placement.y).saturating_add(side);
    placement
        .validate(holds_the_box)
        .map_err(|source| ConditionError::Box {
            label: label.to_string(),
            source,
        })?;
    let implied;
    let mask = match mask {
        Some(mask) => {
            check_proportions(image.rgb.width(), image.rgb.height(), mask, label)?;
            Some(mask)
        }
        None => {
            implied = image.implied_mask();
            implied.as_ref()
        }
    };
    let pixels = image.rgb.fit_square(side);
    let keep_pixels: Vec<bool> = match mask {
        Some(mask) => binarize(&mask.fit_square(side)),
        None => vec![true; side * side],
    };
    let crop_rgb = pixels
        .pixels()
        .chunks_exact(3)
        .zip(&keep_pixels)
        .flat_map(|(p, &keep)| {
            if keep {
                [p[0], p[1], p[2]]
            } else {
                [NEUTRAL_GRAY; 3]
            }
        })
        .collect();
    let keep_latent = latent_mask(&keep_pixels, side);
    Ok(PreparedCondition {
        placement,
        crop_rgb,
        keep_pixels,
        keep_latent,
    })
}

/// The N × N gray canvas with each condition's kept pixels pasted at its box, in list order (a
/// later condition wins where two overlap), and m_full, the union of their latent masks
/// (docs/method.md §2.1, §2.10c).
///
/// Only kept pixels are pasted, as the latent paste operator replaces only where m_crop = 1:
/// with one condition this equals COW's pasting of the whole crop (its other pixels are the
/// canvas gray anyway), and with several, one condition's discarded gray never covers
/// another's kept pixels.
pub fn compose_canvas(
    side: usize,
    conditions: &[PreparedCondition],
) -> Result<Canvas, ConditionError> {
    if side == 0 || !side.is_multiple_of(CANVAS_MULTIPLE) {
        return Err(ConditionError::CanvasSize(side));
    }
    let mut rgb = vec![NEUTRAL_GRAY; side * side * 3];
    let grid = side / LATENT_SCALE;
    let mut keep_latent = GridMask::new(grid, grid);
    for (i, condition) in conditions.iter().enumerate() {
        let placement = condition.placement;
        placement
            .validate(side)
            .map_err(|source| ConditionError::Box {
                label: format!("condition {}", i + 1),
                source,
            })?;
        let s = placement.side;
        let latent = s / LATENT_SCALE;
        if condition.keep_pixels.len() != s * s
            || condition.crop_rgb.len() != s * s * 3
            || condition.keep_latent.size() != [latent, latent]
        {
            return Err(ConditionError::Inconsistent {
                index: i + 1,
                side: s,
                rgb_bytes: condition.crop_rgb.len(),
                mask_pixels: condition.keep_pixels.len(),
            });
        }
        for y in 0..s {
            for x in 0..s {
                if condition.keep_pixels[y * s + x] {
                    let from = (y * s + x) * 3;
                    let to = ((placement.y + y) * side + placement.x + x) * 3;
                    rgb[to..to + 3].copy_from_slice(&condition.crop_rgb[from..from + 3]);
                }
            }
        }
        let (row, col, _) = placement.latent();
        keep_latent.place(&condition.keep_latent, row, col);
    }
    Ok(Canvas {
        side,
        rgb,
        keep_latent,
    })
}

/// Kept pixels of a gray mask: value < [`KEEP_BELOW`] (black = keep).
pub fn binarize(mask: &GrayImage) -> Vec<bool> {
    mask.values().iter().map(|&v| v < KEEP_BELOW).collect()
}

/// The latent crop mask of an s × s pixel mask: s/8 × s/8 cells, cell (i, j) taking the pixel
/// (8i, 8j) — PyTorch's nearest downsampling, as COW computes m_crop (docs/method.md §2.2).
pub fn latent_mask(keep_pixels: &[bool], side: usize) -> GridMask {
    let pixels =
        GridMask::from_cells(side, side, keep_pixels.to_vec()).expect("one keep value per pixel");
    pixels.resample(side / LATENT_SCALE, side / LATENT_SCALE)
}

/// Checks that a mask has (within 1 %) its image's proportions.
fn check_proportions(
    width: usize,
    height: usize,
    mask: &GrayImage,
    label: &str,
) -> Result<(), ConditionError> {
    let image_aspect = width as f64 / height as f64;
    let mask_aspect = mask.width() as f64 / mask.height() as f64;
    if (mask_aspect / image_aspect - 1.0).abs() > ASPECT_TOLERANCE {
        return Err(ConditionError::MaskShape {
            label: label.to_string(),
            mask_width: mask.width(),
            mask_height: mask.height(),
            image_width: width,
            image_height: height,
        });
    }
    Ok(())
}
