//! Everything the planner says to Gemini, in one place: the three stages' instructions
//! (docs/planner.md, "The three stages", gives their intent: no prompts were published with
//! the method, so these are the project's own) and the response schemas that make Gemini answer
//! in JSON of a known shape.
//!
//! Instructions are templates: `{name}` placeholders are filled by [`fill`].

use serde_json::{json, Value};

use crate::imaging::geometry::SquareBox;

use super::super::boxes::{BoxAnswer, BoxConvention};

/// Said before every stage: what the images are.
pub const CONTEXT: &str = "\
You assist an image generator that grows a whole picture around one or more visual conditions: \
image fragments (often a face) that must appear unchanged in the final picture. Each condition \
image below shows the fragment on a flat neutral gray background; the gray is not part of the \
subject. The user's prompt is: \"{prompt}\".";

/// Stage 1, prompt intensification: describe the subject, fuse it with the user's text.
pub const INTENSIFY: &str = "\
Task (prompt intensification):
1. \"description\": describe the identity-relevant visual features of the subject(s) in at most \
20 words: subject class; for people, perceived gender presentation, apparent age, hair colour, \
length and style, expression, skin tone; accessories; clothing visible at the edges.
2. \"intensified_prompt\": one natural text-to-image prompt of at most 60 words that fuses the \
description with the user's prompt. Keep the user's scene, style and attribute requests in \
meaning. Where the user's text conflicts with what the image shows (for example an older age, \
another expression, a painting style), the user's text wins for that attribute.
3. \"human_face\": true if the conditions are human faces or heads.
4. If \"human_face\" is false: \"background_subject\", a short noun phrase naming the \
subject's kind (for example \"cat\"), and \"background_quality\", a short phrase for a \
high-quality background that suits the scene (for example \"a grassy background\").";

/// Stage 2, adaptive position: a box per condition on the empty canvas.
pub const POSITION: &str = "\
Task (adaptive position): each condition will be pasted onto an empty {canvas}x{canvas} pixel \
canvas, and the rest of the picture generated around it. Choose where each condition should sit \
so that the scene the user's prompt describes can be completed naturally around it. For a face \
or head, leave room below it for the body the prompt implies; keep several conditions apart. \
Each box is roughly square, its width and height between {min} and {max} pixels, and lies \
entirely inside the canvas. Answer one entry per condition, with the condition's number, a short \
\"reason\", and the box as {box_format}.";

/// Stage 3, contextual refinement: the regions that must continue each placed condition.
pub const REFINE: &str = "\
Task (contextual refinement): the conditions are placed on the {canvas}x{canvas} pixel canvas \
at these boxes: {boxes}. The picture will be generated from this prompt: \"{intensified}\". \
For each condition, give the regions of the final picture that must be continuous with it in \
meaning and physically: for a head, the neck, shoulders and torso in the pose the prompt \
implies; for part of an object, the missing rest of the object. Exclude unrelated background \
and the condition's own box. Give each region as {box_format}, inside the canvas; give an empty \
list when nothing must continue the condition.";

/// How a box is written, in words, per convention.
pub fn box_format(convention: BoxConvention) -> &'static str {
    match convention {
        BoxConvention::Pixels => {
            "\"box\": {\"x\", \"y\", \"w\", \"h\"} in integer canvas pixels, (x, y) the top-left \
             corner, the origin at the canvas's top-left"
        }
        BoxConvention::Box2d => {
            "\"box_2d\": [ymin, xmin, ymax, xmax], each normalized to 0-1000 of the canvas side, \
             the origin at the canvas's top-left"
        }
    }
}

/// Where condition `index` was placed, written in `convention` for stage 3, e.g.
/// `condition 1: "box": {"x": 128, "y": 0, "w": 256, "h": 256}`.
pub fn placed_box(
    index: usize,
    square: &SquareBox,
    canvas: usize,
    convention: BoxConvention,
) -> String {
    let written = match convention {
        BoxConvention::Pixels => format!(
            "\"box\": {{\"x\": {}, \"y\": {}, \"w\": {}, \"h\": {}}}",
            square.x, square.y, square.side, square.side
        ),
        BoxConvention::Box2d => {
            let v = BoxAnswer::from_square(square, canvas, convention)
                .box_2d
                .expect("a box_2d box");
            format!("\"box_2d\": [{}, {}, {}, {}]", v[0], v[1], v[2], v[3])
        }
    };
    format!("condition {index}: {written}")
}

/// The label line before each condition image.
pub fn condition_caption(index: usize, label: Option<&str>) -> String {
    match label {
        Some(label) => format!("Condition {index} ({label}):"),
        None => format!("Condition {index}:"),
    }
}

/// `template` with each `{name}` replaced by its value.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    values
        .iter()
        .fold(template.to_owned(), |text, (name, value)| {
            text.replace(&format!("{{{name}}}"), value)
        })
}

/// Stage 1's answer schema.
pub fn intensify_schema() -> Value {
    json!({
        "type": "OBJECT",
        "properties": {
            "description": {"type": "STRING"},
            "intensified_prompt": {"type": "STRING"},
            "human_face": {"type": "BOOLEAN"},
            "background_subject": {"type": "STRING"},
            "background_quality": {"type": "STRING"}
        },
        "required": ["description", "intensified_prompt", "human_face"],
        "propertyOrdering": [
            "description", "intensified_prompt", "human_face",
            "background_subject", "background_quality"
        ]
    })
}

/// One box in `convention`, as an object property (`box` or `box_2d`).
fn box_property(convention: BoxConvention) -> (&'static str, Value) {
    match convention {
        BoxConvention::Pixels => (
            "box",
            json!({
                "type": "OBJECT",
                "properties": {
                    "x": {"type": "INTEGER"},
                    "y": {"type": "INTEGER"},
                    "w": {"type": "INTEGER"},
                    "h": {"type": "INTEGER"}
                },
                "required": ["x", "y", "w", "h"],
                "propertyOrdering": ["x", "y", "w", "h"]
            }),
        ),
        BoxConvention::Box2d => (
            "box_2d",
            json!({
                "type": "ARRAY",
                "items": {"type": "INTEGER"},
                "minItems": 4,
                "maxItems": 4
            }),
        ),
    }
}

/// Stage 2's answer schema: `{"boxes": [{"condition", "reason", box}]}`.
pub fn position_schema(convention: BoxConvention) -> Value {
    let (name, shape) = box_property(convention);
    json!({
        "type": "OBJECT",
        "properties": {
            "boxes": {
                "type": "ARRAY",
                "items": {
                    "type": "OBJECT",
                    "properties": {
                        "condition": {"type": "INTEGER"},
                        "reason": {"type": "STRING"},
                        name: shape
                    },
                    "required": ["condition", name],
                    "propertyOrdering": ["condition", "reason", name]
                }
            }
        },
        "required": ["boxes"]
    })
}

/// Stage 3's answer schema: `{"regions": [{"condition", "related": [box]}]}`.
pub fn refine_schema(convention: BoxConvention) -> Value {
    let (name, shape) = box_property(convention);
    json!({
        "type": "OBJECT",
        "properties": {
            "regions": {
                "type": "ARRAY",
                "items": {
                    "type": "OBJECT",
                    "properties": {
                        "condition": {"type": "INTEGER"},
                        "related": {
                            "type": "ARRAY",
                            "items": {
                                "type": "OBJECT",
                                "properties": {name: shape},
                                "required": [name]
                            }
                        }
                    },
                    "required": ["condition", "related"],
                    "propertyOrdering": ["condition", "related"]
                }
            }
        },
        "required": ["regions"]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_fill_every_placeholder() {
        let filled = fill(
            POSITION,
            &[
                ("canvas", "512"),
                ("min", "180"),
                ("max", "256"),
                ("box_format", box_format(BoxConvention::Pixels)),
            ],
        );
        assert!(filled.contains("512x512") && filled.contains("between 180 and 256"));
        assert!(!filled.contains("{canvas}") && !filled.contains("{box_format}"));
        let square = SquareBox::new(128, 8, 216);
        assert_eq!(
            placed_box(1, &square, 512, BoxConvention::Pixels),
            r#"condition 1: "box": {"x": 128, "y": 8, "w": 216, "h": 216}"#
        );
        assert_eq!(
            placed_box(2, &square, 512, BoxConvention::Box2d),
            r#"condition 2: "box_2d": [16, 250, 438, 672]"#
        );
        let schema = position_schema(BoxConvention::Box2d);
        assert_eq!(
            schema["properties"]["boxes"]["items"]["required"],
            json!(["condition", "box_2d"])
        );
    }
}
