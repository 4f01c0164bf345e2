//! Boxes as a model writes them, read by their field names so that the convention is never
//! guessed (docs/planner.md, "Box conventions"):
//!
//! - pixels: `{"box": {"x": .., "y": .., "w": .., "h": ..}}`, top-left corner, canvas pixels;
//! - Gemini's own: `{"box_2d": [ymin, xmin, ymax, xmax]}`, each in 0..=1000 of the canvas side.
//!
//! A bare `[a, b, c, d]` is never accepted: `[x, y, w, h]` and `[ymin, xmin, ymax, xmax]`
//! look alike and mean different boxes.

use serde::{Deserialize, Serialize};

use crate::imaging::geometry::SquareBox;

/// The scale of Gemini's normalized coordinates.
pub const BOX_2D_SCALE: f64 = 1000.0;

/// Which convention the planner asks the model for (it accepts both in answers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoxConvention {
    /// `{"box": {"x", "y", "w", "h"}}` in canvas pixels, as the paper states its boxes.
    #[default]
    Pixels,
    /// `{"box_2d": [ymin, xmin, ymax, xmax]}` in 0..=1000, the convention Gemini is trained on.
    #[serde(rename = "box_2d")]
    Box2d,
}

/// The four pixel fields, each optional so that a missing one is named in the error.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PixelFields {
    /// Left edge.
    #[serde(default)]
    pub x: Option<f64>,
    /// Top edge.
    #[serde(default)]
    pub y: Option<f64>,
    /// Width.
    #[serde(default)]
    pub w: Option<f64>,
    /// Height.
    #[serde(default)]
    pub h: Option<f64>,
}

/// A box in one of the two conventions, exactly one of the fields present.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BoxAnswer {
    /// Pixels.
    #[serde(rename = "box", default, skip_serializing_if = "Option::is_none")]
    pub pixels: Option<PixelFields>,
    /// Gemini's `[ymin, xmin, ymax, xmax]` in 0..=1000.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub box_2d: Option<Vec<f64>>,
}

/// A box in canvas pixels, real-valued, before any rounding.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CanvasBox {
    /// Left edge.
    pub x: f64,
    /// Top edge.
    pub y: f64,
    /// Width.
    pub w: f64,
    /// Height.
    pub h: f64,
}

/// A box answer that cannot be used.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum BoxError {
    /// Neither convention's field is there.
    #[error("no box: expected \"box\": {{\"x\", \"y\", \"w\", \"h\"}} in pixels or \"box_2d\": [ymin, xmin, ymax, xmax] in 0..1000")]
    Missing,
    /// Both are there.
    #[error("both \"box\" and \"box_2d\" are given, so the box is ambiguous")]
    Ambiguous,
    /// A pixel field is missing.
    #[error("the pixel box has no \"{0}\"")]
    MissingField(&'static str),
    /// `box_2d` does not have four numbers.
    #[error("\"box_2d\" has {0} numbers instead of 4 ([ymin, xmin, ymax, xmax])")]
    Box2dLength(usize),
    /// The numbers do not describe a box on the canvas.
    #[error("the box {shown} is out of range: {why}")]
    OutOfRange {
        /// The box as given.
        shown: String,
        /// The rule it breaks.
        why: &'static str,
    },
}

impl BoxAnswer {
    /// A pixel box.
    pub fn pixels(x: f64, y: f64, w: f64, h: f64) -> Self {
        BoxAnswer {
            pixels: Some(PixelFields {
                x: Some(x),
                y: Some(y),
                w: Some(w),
                h: Some(h),
            }),
            box_2d: None,
        }
    }

    /// A `box_2d` box.
    pub fn box_2d(ymin: f64, xmin: f64, ymax: f64, xmax: f64) -> Self {
        BoxAnswer {
            pixels: None,
            box_2d: Some(vec![ymin, xmin, ymax, xmax]),
        }
    }

    /// `square` written in `convention` on a `canvas`-sided canvas (how stage 3 is told
    /// stage 2's box).
    pub fn from_square(square: &SquareBox, canvas: usize, convention: BoxConvention) -> Self {
        let (x, y, s) = (square.x as f64, square.y as f64, square.side as f64);
        match convention {
            BoxConvention::Pixels => BoxAnswer::pixels(x, y, s, s),
            BoxConvention::Box2d => {
                let k = BOX_2D_SCALE / canvas as f64;
                let round = |v: f64| (v * k).round();
                BoxAnswer::box_2d(round(y), round(x), round(y + s), round(x + s))
            }
        }
    }

    /// The box in canvas pixels. Out of range: a number that is negative or not finite, a
    /// top-left corner off the canvas, a side that is not positive or longer than the canvas,
    /// `box_2d` values beyond 0..=1000 or with min ≥ max. A box that merely spills over the
    /// right or bottom edge is accepted (post-processing moves or clips it).
    pub fn to_canvas(&self, canvas: usize) -> Result<CanvasBox, BoxError> {
        let c = canvas as f64;
        let b = match (&self.pixels, &self.box_2d) {
            (None, None) => return Err(BoxError::Missing),
            (Some(_), Some(_)) => return Err(BoxError::Ambiguous),
            (Some(p), None) => {
                let field = |v: Option<f64>, name| v.ok_or(BoxError::MissingField(name));
                CanvasBox {
                    x: field(p.x, "x")?,
                    y: field(p.y, "y")?,
                    w: field(p.w, "w")?,
                    h: field(p.h, "h")?,
                }
            }
            (None, Some(v)) => {
                let &[ymin, xmin, ymax, xmax] = v.as_slice() else {
                    return Err(BoxError::Box2dLength(v.len()));
                };
                let out_of_range = |why| BoxError::OutOfRange {
                    shown: format!("box_2d [{ymin}, {xmin}, {ymax}, {xmax}]"),
                    why,
                };
                if v.iter()
                    .any(|n| !n.is_finite() || *n < 0.0 || *n > BOX_2D_SCALE)
                {
                    return Err(out_of_range("the values must lie in 0..1000"));
                }
                if ymin >= ymax || xmin >= xmax {
                    return Err(out_of_range("it needs ymin < ymax and xmin < xmax"));
                }
                let k = c / BOX_2D_SCALE;
                CanvasBox {
                    x: xmin * k,
                    y: ymin * k,
                    w: (xmax - xmin) * k,
                    h: (ymax - ymin) * k,
                }
            }
        };
        let out_of_range = |why| BoxError::OutOfRange {
            shown: format!("x={}, y={}, w={}, h={}", b.x, b.y, b.w, b.h),
            why,
        };
        if [b.x, b.y, b.w, b.h].iter().any(|n| !n.is_finite()) || b.x < 0.0 || b.y < 0.0 {
            return Err(out_of_range("coordinates must be finite and not negative"));
        }
        if b.x >= c || b.y >= c {
            return Err(out_of_range("its top-left corner is off the canvas"));
        }
        if b.w <= 0.0 || b.h <= 0.0 || b.w > c || b.h > c {
            return Err(out_of_range(
                "width and height must be positive and at most the canvas side",
            ));
        }
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> BoxAnswer {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn both_conventions_give_the_same_box() {
        let pixels = parse(r#"{"box": {"x": 128, "y": 0, "w": 256, "h": 256}}"#);
        let box_2d = parse(r#"{"box_2d": [0, 250, 500, 750]}"#);
        let expected = CanvasBox {
            x: 128.0,
            y: 0.0,
            w: 256.0,
            h: 256.0,
        };
        assert_eq!(pixels.to_canvas(512).unwrap(), expected);
        assert_eq!(box_2d.to_canvas(512).unwrap(), expected);
        let square = SquareBox::new(128, 0, 256);
        assert_eq!(
            BoxAnswer::from_square(&square, 512, BoxConvention::Box2d),
            box_2d
        );
        assert_eq!(
            BoxAnswer::from_square(&square, 512, BoxConvention::Pixels),
            pixels
        );
    }

    #[test]
    fn missing_ambiguous_and_out_of_range_boxes_are_refused() {
        let cases = [
            (r#"{}"#, "no box"),
            (r#"{"bbox": [1, 2, 3, 4]}"#, "no box"),
            (
                r#"{"box": {"x": 1, "y": 2, "w": 3, "h": 4}, "box_2d": [0, 0, 9, 9]}"#,
                "ambiguous",
            ),
            (r#"{"box": {"x": 1, "y": 2, "w": 3}}"#, "no \"h\""),
            (r#"{"box_2d": [0, 0, 9]}"#, "3 numbers"),
            (r#"{"box_2d": [0, 0, 900, 1200]}"#, "0..1000"),
            (r#"{"box_2d": [500, 0, 400, 100]}"#, "ymin < ymax"),
            (
                r#"{"box": {"x": -8, "y": 0, "w": 200, "h": 200}}"#,
                "negative",
            ),
            (
                r#"{"box": {"x": 600, "y": 0, "w": 200, "h": 200}}"#,
                "off the canvas",
            ),
            (r#"{"box": {"x": 0, "y": 0, "w": 0, "h": 200}}"#, "positive"),
            (
                r#"{"box": {"x": 0, "y": 0, "w": 700, "h": 200}}"#,
                "at most the canvas side",
            ),
        ];
        for (json, expected) in cases {
            let error = parse(json).to_canvas(512).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
        // Spilling over the right edge is for post-processing to fix, not an error.
        assert!(BoxAnswer::pixels(400.0, 0.0, 256.0, 256.0)
            .to_canvas(512)
            .is_ok());
    }
}
