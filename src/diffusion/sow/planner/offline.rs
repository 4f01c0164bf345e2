//! The offline plan (docs/planner.md, "Offline plan"): what the run uses without a key, and
//! whenever Gemini fails.
//!
//! - Prompt: P* = P, no description, no guidance suggestion.
//! - First condition: COW's default box [128, 0, 256, 256] on 512 px, i.e. side 256·canvas/512
//!   (rounded up to a multiple of 8) centred horizontally at the top.
//! - Further conditions, same side: the first free spot in reading order (top to bottom, then
//!   nearest the vertical centre line, then left to right) on the 8 px lattice that overlaps no
//!   earlier box; where none is free, the spot overlapping earlier boxes least (same order on
//!   ties).
//! - Related region: the box below each condition, [x − s/2, y + 0.8·s, 2·s, down to the bottom
//!   edge], left and top edges rounded down to multiples of 8, clipped to the canvas; none when
//!   the condition touches the bottom edge.

use crate::imaging::geometry::{PixelRect, SquareBox, LATENT_SCALE};

use super::placement::{ceil_to_cell, floor_to_cell, PAPER_CANVAS};
use super::plan::{ConditionPlan, Plan, PlanRequest, PlanSource, RequestError};
use super::Planner;

/// COW's default condition side on a 512 px canvas.
const DEFAULT_SIDE_512: usize = 256;

/// The planner that never leaves the machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OfflinePlanner;

impl Planner for OfflinePlanner {
    async fn plan(&self, request: &PlanRequest) -> Result<Plan, RequestError> {
        request.validate()?;
        Ok(offline_plan(request))
    }
}

/// The offline plan for a valid request (see the module documentation).
pub fn offline_plan(request: &PlanRequest) -> Plan {
    let canvas = request.canvas;
    let side = default_side(canvas);
    let mut squares: Vec<SquareBox> = Vec::with_capacity(request.conditions.len());
    for _ in &request.conditions {
        let square = match squares.is_empty() {
            true => SquareBox::new(floor_to_cell((canvas - side) / 2), 0, side),
            false => next_free_square(&squares, side, canvas),
        };
        squares.push(square);
    }
    Plan {
        canvas,
        prompt: request.prompt.clone(),
        description: None,
        conditions: request
            .conditions
            .iter()
            .zip(&squares)
            .map(|(condition, square)| ConditionPlan {
                label: condition.label.clone(),
                square: *square,
                related: related_below(square, canvas).into_iter().collect(),
                reason: None,
            })
            .collect(),
        guidance: None,
        source: PlanSource::Offline,
    }
}

/// COW's 256 px side scaled to the canvas, on a multiple of 8 and at most the canvas.
fn default_side(canvas: usize) -> usize {
    ceil_to_cell(DEFAULT_SIDE_512 * canvas / PAPER_CANVAS).min(floor_to_cell(canvas))
}

/// The related region below a condition, or None at the bottom edge.
pub fn related_below(square: &SquareBox, canvas: usize) -> Option<PixelRect> {
    let (x, y, s) = (square.x as i64, square.y as i64, square.side as i64);
    let c = canvas as i64;
    if y + s >= c {
        return None;
    }
    let cell = LATENT_SCALE as i64;
    let left = (x - s / 2).div_euclid(cell) * cell;
    // y + 0.8 s in integers, then down to a cell.
    let top = ((5 * y + 4 * s) / 5).div_euclid(cell) * cell;
    PixelRect {
        x: left,
        y: top,
        w: 2 * s,
        h: c - top,
    }
    .clip(canvas)
}

/// Area shared by two squares.
fn overlap(a: &SquareBox, b: &SquareBox) -> usize {
    let w = (a.x + a.side)
        .min(b.x + b.side)
        .saturating_sub(a.x.max(b.x));
    let h = (a.y + a.side)
        .min(b.y + b.side)
        .saturating_sub(a.y.max(b.y));
    w * h
}

/// The first spot (in the documented order) overlapping `taken` least.
fn next_free_square(taken: &[SquareBox], side: usize, canvas: usize) -> SquareBox {
    let room = canvas - side;
    let centre_line = canvas as i64 - side as i64; // twice the centred x, to stay in integers
    let mut best: Option<(usize, SquareBox)> = None;
    for y in (0..=room).step_by(LATENT_SCALE) {
        let mut row: Vec<usize> = (0..=room).step_by(LATENT_SCALE).collect();
        row.sort_by_key(|&x| ((2 * x as i64 - centre_line).abs(), x));
        for x in row {
            let square = SquareBox::new(x, y, side);
            let shared: usize = taken.iter().map(|t| overlap(&square, t)).sum();
            if shared == 0 {
                return square;
            }
            if best.is_none_or(|(least, _)| shared < least) {
                best = Some((shared, square));
            }
        }
    }
    best.expect("the canvas has at least one spot").1
}

#[cfg(test)]
mod tests {
    use super::super::plan::ConditionImage;
    use super::*;
    use crate::imaging::geometry::GridMask;

    fn request(conditions: usize, canvas: usize) -> PlanRequest {
        PlanRequest {
            prompt: "a man in a suit".into(),
            canvas,
            conditions: (0..conditions)
                .map(|i| ConditionImage::png(vec![i as u8 + 1]))
                .collect(),
        }
    }

    fn rect(x: i64, y: i64, w: i64, h: i64) -> PixelRect {
        PixelRect { x, y, w, h }
    }

    #[test]
    fn one_condition_gets_the_cow_default() {
        let plan = offline_plan(&request(1, 512));
        assert_eq!(plan.prompt, "a man in a suit");
        assert_eq!(plan.source, PlanSource::Offline);
        assert_eq!(plan.conditions[0].square, SquareBox::new(128, 0, 256));
        // [128 − 128, 0 + 204.8, 512, 512 − 204.8] with the top rounded down to 200.
        assert_eq!(plan.conditions[0].related, vec![rect(0, 200, 512, 312)]);
        assert!(plan.validate().is_ok());
    }

    #[test]
    fn the_default_scales_with_the_canvas() {
        let plan = offline_plan(&request(1, 768));
        assert_eq!(plan.conditions[0].square, SquareBox::new(192, 0, 384));
        // 0.8 · 384 = 307.2 → 304; left edge 192 − 192 = 0.
        assert_eq!(plan.conditions[0].related, vec![rect(0, 304, 768, 464)]);
        let plan = offline_plan(&request(1, 64));
        assert_eq!(plan.conditions[0].square, SquareBox::new(16, 0, 32));
    }

    #[test]
    fn related_region_is_clipped_and_empty_at_the_bottom_edge() {
        // Left of the canvas: x − s/2 < 0 is clipped; the width shrinks with it.
        let square = SquareBox::new(0, 64, 192);
        // top = 64 + 153.6 = 217.6 → 216; left = −96 clipped to 0, right = −96 + 384 = 288.
        assert_eq!(related_below(&square, 512), Some(rect(0, 216, 288, 296)));
        assert_eq!(related_below(&SquareBox::new(128, 256, 256), 512), None);
        assert_eq!(related_below(&SquareBox::new(0, 320, 192), 512), None);
        // One cell above the edge still leaves a region.
        assert!(related_below(&SquareBox::new(0, 312, 192), 512).is_some());
    }

    #[test]
    fn further_conditions_avoid_earlier_ones() {
        let plan = offline_plan(&request(3, 512));
        let squares: Vec<SquareBox> = plan.conditions.iter().map(|c| c.square).collect();
        assert_eq!(squares[0], SquareBox::new(128, 0, 256));
        // The only free 256 px spot nearest the top and the centre line: right below.
        assert_eq!(squares[1], SquareBox::new(128, 256, 256));
        // No free spot is left for a third: it goes where it overlaps least, in order.
        assert_eq!(
            overlap(&squares[2], &squares[0]) + overlap(&squares[2], &squares[1]),
            128 * 256
        );
        assert_eq!(squares[2], SquareBox::new(0, 0, 256));
        // The second sits on the bottom edge: no related region.
        assert!(plan.conditions[1].related.is_empty());
        assert!(plan.validate().is_ok());
        // The rule scales: half-canvas sides on 1024 px stack the same way.
        let plan = offline_plan(&request(2, 1024));
        assert_eq!(plan.conditions[0].square, SquareBox::new(256, 0, 512));
        assert_eq!(plan.conditions[1].square, SquareBox::new(256, 512, 512));
    }

    #[test]
    fn related_masks_are_the_union_minus_the_condition() {
        let plan = offline_plan(&request(1, 512));
        // m_full: the condition's own cells (a 4×4 block inside the related region's top).
        let mut m_full = GridMask::new(64, 64);
        for r in 25..29 {
            for c in 30..34 {
                m_full.set(r, c, true);
            }
        }
        let mask = plan.related_mask(0, &m_full);
        // The region [0, 200, 512, 312] covers rows 25..64, all 64 columns.
        assert_eq!(mask.count(), 39 * 64 - 16);
        assert!(!mask.get(26, 31) && mask.get(26, 29) && mask.get(25, 0) && !mask.get(24, 0));
        // Two rectangles overlap: their union counts once.
        let mut two = plan.conditions[0].clone();
        two.related = vec![rect(0, 0, 256, 256), rect(128, 128, 256, 256)];
        let mask = two.related_mask(512, &GridMask::new(64, 64));
        assert_eq!(mask.count(), 2 * 32 * 32 - 16 * 16);
        // The same on a coarser grid (an attention layer's 8×8).
        assert_eq!(
            two.related_mask(512, &GridMask::new(8, 8)).count(),
            2 * 16 - 4
        );
    }
}
