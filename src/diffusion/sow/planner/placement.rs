//! The post-processing every planner's boxes go through (docs/planner.md, "Post-processing"),
//! so that Gemini's answers and the offline heuristic yield boxes the run can use:
//!
//! - a condition box: width and height clamped to the paper's 180–256 px (scaled by
//!   canvas/512), made square with s = round((w + h)/2), s rounded *up* to a multiple of 8,
//!   the corner snapped to the nearest multiple of 8 and moved so that the box fits;
//! - related boxes: rounded outwards to whole pixels and clipped to the canvas (boxes left
//!   with no area are dropped); their union minus the condition mask is
//!   [`super::ConditionPlan::related_mask`].

use crate::imaging::geometry::{PixelRect, SquareBox, LATENT_SCALE};

use super::boxes::CanvasBox;

/// The canvas side the paper's sizes are stated for (SD-2.1-base's 512×512).
pub const PAPER_CANVAS: usize = 512;

/// The paper's limits on a condition's size on a 512 px canvas.
pub const MIN_SIDE_512: f64 = 180.0;
/// See [`MIN_SIDE_512`].
pub const MAX_SIDE_512: f64 = 256.0;

/// The allowed width and height range on a `canvas`-sided canvas: 180–256 px scaled by
/// canvas/512.
pub fn side_limits(canvas: usize) -> (f64, f64) {
    let k = canvas as f64 / PAPER_CANVAS as f64;
    (MIN_SIDE_512 * k, MAX_SIDE_512 * k)
}

/// `v` rounded down to a multiple of 8.
pub(crate) fn floor_to_cell(v: usize) -> usize {
    v / LATENT_SCALE * LATENT_SCALE
}

/// `v` rounded up to a multiple of 8.
pub(crate) fn ceil_to_cell(v: usize) -> usize {
    v.div_ceil(LATENT_SCALE) * LATENT_SCALE
}

/// `v` (pixels, may be negative) snapped to the nearest multiple of 8, at least 0.
fn snap_to_cell(v: f64) -> usize {
    let cell = LATENT_SCALE as f64;
    ((v / cell).round() * cell).max(0.0) as usize
}

/// The square box a condition gets from a model's box (post-processing steps 1–4).
pub fn condition_square(answer: CanvasBox, canvas: usize) -> SquareBox {
    let (lo, hi) = side_limits(canvas);
    let (w, h) = (answer.w.clamp(lo, hi), answer.h.clamp(lo, hi));
    let side = ceil_to_cell(((w + h) / 2.0).round() as usize).min(floor_to_cell(canvas));
    let room = canvas - side;
    SquareBox::new(
        snap_to_cell(answer.x).min(room),
        snap_to_cell(answer.y).min(room),
        side,
    )
}

/// A model's related box as whole pixels (edges rounded outwards) clipped to the canvas, or
/// None when nothing of it is on the canvas.
pub fn related_rect(answer: CanvasBox, canvas: usize) -> Option<PixelRect> {
    let (x0, y0) = (answer.x.floor() as i64, answer.y.floor() as i64);
    let (x1, y1) = (
        (answer.x + answer.w).ceil() as i64,
        (answer.y + answer.h).ceil() as i64,
    );
    PixelRect {
        x: x0,
        y: y0,
        w: x1 - x0,
        h: y1 - y0,
    }
    .clip(canvas)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(x: f64, y: f64, w: f64, h: f64) -> CanvasBox {
        CanvasBox { x, y, w, h }
    }

    #[test]
    fn sizes_are_clamped_squared_and_rounded_up() {
        // Inside the limits: the mean side, rounded up to a multiple of 8.
        assert_eq!(
            condition_square(answer(128.0, 0.0, 200.0, 220.0), 512),
            SquareBox::new(128, 0, 216)
        );
        assert_eq!(
            condition_square(answer(0.0, 0.0, 181.0, 181.0), 512).side,
            184
        );
        // round((180 + 181) / 2) = 181 → 184; exactly 192 stays.
        assert_eq!(
            condition_square(answer(0.0, 0.0, 180.0, 181.0), 512).side,
            184
        );
        assert_eq!(
            condition_square(answer(0.0, 0.0, 192.0, 192.0), 512).side,
            192
        );
        // Too small and too large are clamped to 180 and 256 first: (180 + 256) / 2 = 218 → 224.
        assert_eq!(
            condition_square(answer(0.0, 0.0, 40.0, 400.0), 512).side,
            224
        );
        assert_eq!(
            condition_square(answer(0.0, 0.0, 10.0, 10.0), 512).side,
            184
        );
        assert_eq!(
            condition_square(answer(0.0, 0.0, 500.0, 500.0), 512).side,
            256
        );
    }

    #[test]
    fn corners_snap_to_cells_and_boxes_stay_inside() {
        assert_eq!(
            condition_square(answer(13.0, 11.9, 256.0, 256.0), 512),
            SquareBox::new(16, 8, 256)
        );
        // A box spilling over the right and bottom edges moves back onto the canvas.
        assert_eq!(
            condition_square(answer(400.0, 500.0, 256.0, 256.0), 512),
            SquareBox::new(256, 256, 256)
        );
        for x in [0.0, 3.0, 77.7, 300.0, 511.0] {
            let square = condition_square(answer(x, x, 230.0, 250.0), 512);
            assert!(square.validate(512).is_ok(), "{square}");
        }
    }

    #[test]
    fn limits_scale_with_the_canvas() {
        assert_eq!(side_limits(512), (180.0, 256.0));
        assert_eq!(side_limits(256), (90.0, 128.0));
        assert_eq!(side_limits(1024), (360.0, 512.0));
        assert_eq!(
            condition_square(answer(0.0, 0.0, 10.0, 10.0), 1024).side,
            360
        );
        assert_eq!(
            condition_square(answer(0.0, 0.0, 999.0, 999.0), 256).side,
            128
        );
        // On a 64 px canvas the upper limit (32) is still a multiple of 8.
        let square = condition_square(answer(60.0, 60.0, 64.0, 64.0), 64);
        assert_eq!(square, SquareBox::new(32, 32, 32));
    }

    #[test]
    fn related_boxes_round_outwards_and_clip() {
        let rect = related_rect(answer(10.5, 300.2, 600.0, 400.0), 512).unwrap();
        assert_eq!((rect.x, rect.y, rect.w, rect.h), (10, 300, 502, 212));
        assert!(related_rect(answer(511.5, 0.0, 0.2, 10.0), 512).is_some());
    }
}
