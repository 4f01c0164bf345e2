//! The Studio's mask brush: a keep/discard map painted over a condition image, written as the
//! same kind of mask file the CLI takes (`--mask`: black = keep, white = discard, the image's
//! proportions; docs/method.md §2.1), so that a painted mask and a file mask are one thing to
//! the engine and to an image's parameters.

use super::condition::binarize;
use super::geometry::SquareBox;
use super::png::encode_rgb_png;
use super::raster::{centred_square, GrayImage, RgbImage};

/// The longest side painted on: enough for a 512 px box, small enough to repaint per stroke.
pub const MAX_PAINT_SIDE: usize = 512;

/// A mask being painted, on a grid with the image's proportions.
#[derive(Clone, Debug, PartialEq)]
pub struct MaskPainting {
    width: usize,
    height: usize,
    keep: Vec<bool>,
}

impl MaskPainting {
    /// A painting for an image of `image_width` × `image_height`, starting from `start` (a
    /// mask file's values or the image's alpha, black = keep) or keeping everything.
    pub fn for_image(image_width: usize, image_height: usize, start: Option<&GrayImage>) -> Self {
        let (width, height) = paint_grid(image_width, image_height);
        let keep = match start {
            Some(mask) => {
                let resized = mask.resized(width, height);
                binarize(&resized)
            }
            None => vec![true; width * height],
        };
        MaskPainting {
            width,
            height,
            keep,
        }
    }

    /// Width of the grid.
    pub fn width(&self) -> usize {
        self.width
    }

    /// Height of the grid.
    pub fn height(&self) -> usize {
        self.height
    }

    /// Whether the pixel at column `x`, row `y` is kept.
    pub fn keeps(&self, x: usize, y: usize) -> bool {
        self.keep[y * self.width + x]
    }

    /// Keeps (or discards) everything.
    pub fn fill(&mut self, keep: bool) {
        self.keep.fill(keep);
    }

    /// Paints a stroke of round dabs of `radius` (grid pixels) from `from` to `to` (grid
    /// coordinates, pixel centres at +0.5), marking what it covers as kept or discarded.
    pub fn stroke(&mut self, from: (f64, f64), to: (f64, f64), radius: f64, keep: bool) {
        let radius = radius.max(0.5);
        let length = ((to.0 - from.0).powi(2) + (to.1 - from.1).powi(2)).sqrt();
        // Dabs at most half a radius apart leave no gaps along the stroke.
        let dabs = (length / (radius / 2.0)).ceil().max(1.0) as usize;
        for i in 0..=dabs {
            let t = i as f64 / dabs as f64;
            let centre = (from.0 + t * (to.0 - from.0), from.1 + t * (to.1 - from.1));
            self.dab(centre, radius, keep);
        }
    }

    fn dab(&mut self, (cx, cy): (f64, f64), radius: f64, keep: bool) {
        let rows = (cy - radius).floor().max(0.0) as usize
            ..((cy + radius).ceil().max(0.0) as usize).min(self.height);
        for y in rows {
            let columns = (cx - radius).floor().max(0.0) as usize
                ..((cx + radius).ceil().max(0.0) as usize).min(self.width);
            for x in columns {
                let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
                if dx * dx + dy * dy <= radius * radius {
                    self.keep[y * self.width + x] = keep;
                }
            }
        }
    }

    /// The part of the image a run uses: its largest centred square (see
    /// [`super::raster::RgbImage::fit_square`]), on this grid.
    pub fn used_square(&self) -> SquareBox {
        let (left, top, side) = centred_square(self.width, self.height);
        SquareBox::new(left, top, side)
    }

    /// The share of the used square that is kept, 0 to 1.
    pub fn kept_fraction(&self) -> f64 {
        let square = self.used_square();
        let kept = (square.y..square.y + square.side)
            .flat_map(|y| (square.x..square.x + square.side).map(move |x| (x, y)))
            .filter(|&(x, y)| self.keeps(x, y))
            .count();
        kept as f64 / (square.side * square.side).max(1) as f64
    }

    /// The mask file: black where kept, white where discarded, as PNG.
    pub fn to_png(&self) -> Vec<u8> {
        let rgb: Vec<u8> = self
            .keep
            .iter()
            .flat_map(|&keep| [if keep { 0 } else { 255 }; 3])
            .collect();
        encode_rgb_png(&rgb, self.width, self.height).expect("a painted mask encodes")
    }

    /// What the editor shows: `image` (already at this grid's size) with the discarded parts
    /// dimmed towards gray and the parts outside the used square darker still. RGBA.
    pub fn overlay(&self, image: &RgbImage) -> Vec<u8> {
        let square = self.used_square();
        let mut rgba = Vec::with_capacity(self.width * self.height * 4);
        for y in 0..self.height {
            for x in 0..self.width {
                let [r, g, b] = image.pixel(x, y);
                let inside = (square.x..square.x + square.side).contains(&x)
                    && (square.y..square.y + square.side).contains(&y);
                let dim = |c: u8| -> u8 {
                    match (self.keeps(x, y), inside) {
                        (true, true) => c,
                        (false, true) => (c as u16 / 4 + 96) as u8,
                        (_, false) => c / 4,
                    }
                };
                rgba.extend_from_slice(&[dim(r), dim(g), dim(b), 255]);
            }
        }
        rgba
    }
}

/// The grid a mask is painted on: the image's own size, or scaled so that its longest side is
/// [`MAX_PAINT_SIDE`] where that keeps the proportions within what a mask file may differ by.
fn paint_grid(width: usize, height: usize) -> (usize, usize) {
    let longest = width.max(height);
    if longest <= MAX_PAINT_SIDE {
        return (width, height);
    }
    let scale = MAX_PAINT_SIDE as f64 / longest as f64;
    let scaled = |side: usize| ((side as f64 * scale).round() as usize).max(1);
    let (w, h) = (scaled(width), scaled(height));
    let aspect = |w: usize, h: usize| w as f64 / h as f64;
    // The same tolerance the engine checks a mask file with (condition::ASPECT_TOLERANCE).
    if (aspect(w, h) / aspect(width, height) - 1.0).abs() <= 0.005 {
        (w, h)
    } else {
        (width, height)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::imaging::{decode_image, decode_mask, prepare_condition};

    #[test]
    fn a_new_painting_keeps_everything_on_a_grid_with_the_images_proportions() {
        let small = MaskPainting::for_image(48, 32, None);
        assert_eq!((small.width(), small.height()), (48, 32));
        assert_eq!(small.kept_fraction(), 1.0);
        let big = MaskPainting::for_image(2048, 1536, None);
        assert_eq!((big.width(), big.height()), (512, 384));
    }

    #[test]
    fn a_dab_covers_exactly_the_pixels_whose_centres_are_within_its_radius() {
        let mut painting = MaskPainting::for_image(20, 20, None);
        painting.fill(false);
        painting.stroke((10.0, 10.0), (10.0, 10.0), 3.0, true);
        for y in 0..20 {
            for x in 0..20 {
                let (dx, dy) = (x as f64 + 0.5 - 10.0, y as f64 + 0.5 - 10.0);
                assert_eq!(painting.keeps(x, y), dx * dx + dy * dy <= 9.0, "({x}, {y})");
            }
        }
    }

    #[test]
    fn a_stroke_leaves_no_gap_between_its_ends_and_discarding_undoes_it() {
        let mut painting = MaskPainting::for_image(64, 16, None);
        painting.fill(false);
        painting.stroke((2.0, 8.0), (62.0, 8.0), 2.0, true);
        assert!(
            (2..62).all(|x| painting.keeps(x, 8)),
            "the stroke's row is kept"
        );
        assert!(
            !painting.keeps(10, 1),
            "far from the stroke stays discarded"
        );
        painting.stroke((2.0, 8.0), (62.0, 8.0), 2.0, false);
        assert_eq!(painting.kept_fraction(), 0.0);
    }

    #[test]
    fn the_mask_file_reads_back_as_the_painting_and_prepares_the_condition_it_shows() {
        // A 32 × 32 image; keep only its left half.
        let mut painting = MaskPainting::for_image(32, 32, None);
        for y in 0..32 {
            let row = y as f64 + 0.5;
            painting.stroke((16.5, row), (31.5, row), 0.5, false);
        }
        assert_eq!(painting.kept_fraction(), 0.5);
        let png = painting.to_png();
        let mask = decode_mask(&png, "painted").unwrap();
        assert_eq!(MaskPainting::for_image(32, 32, Some(&mask)), painting);

        let image_png = encode_rgb_png(&vec![200u8; 32 * 32 * 3], 32, 32).unwrap();
        let image = decode_image(&image_png, "image").unwrap();
        let prepared =
            prepare_condition(&image, Some(&mask), SquareBox::new(0, 0, 32), "image").unwrap();
        for y in 0..32 {
            for x in 0..32 {
                assert_eq!(prepared.keep_pixels[y * 32 + x], x < 16, "({x}, {y})");
            }
        }
    }

    #[test]
    fn the_used_square_of_a_wide_image_is_its_centre_and_the_rest_counts_for_nothing() {
        let mut painting = MaskPainting::for_image(60, 20, None);
        assert_eq!(painting.used_square(), SquareBox::new(20, 0, 20));
        painting.stroke((5.0, 10.0), (5.0, 10.0), 4.0, false);
        assert_eq!(painting.kept_fraction(), 1.0, "outside the square");
        let image = RgbImage::filled(60, 20, [200, 200, 200]);
        let rgba = painting.overlay(&image);
        assert_eq!(
            &rgba[(10 * 60 + 30) * 4..(10 * 60 + 30) * 4 + 4],
            &[200, 200, 200, 255]
        );
        assert_eq!(rgba[(10 * 60 + 5) * 4], 50, "outside the square: darker");
    }
}
