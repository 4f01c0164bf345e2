//! What the planner is asked ([`PlanRequest`]) and what it answers ([`Plan`]): the intensified
//! prompt P*, one square box per visual condition, each condition's related region, optional
//! background-guidance prompts, and where the plan came from. A plan is JSON both ways (the
//! command line's `--plan`, an image's embedded parameters); docs/planner.md documents the
//! format.

use serde::{Deserialize, Serialize};

use crate::diffusion::sow::presets::DEFAULT_CANVAS;
use crate::imaging::geometry::{GeometryError, GridMask, PixelRect, SquareBox, LATENT_SCALE};

/// The smallest canvas side a plan accepts.
pub const MIN_CANVAS: usize = 64;

fn default_canvas() -> usize {
    DEFAULT_CANVAS
}

/// A request the planner cannot work on.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// No visual condition.
    #[error("the plan request has no visual condition: give at least one condition image")]
    NoCondition,
    /// A canvas side that latents cannot tile.
    #[error("the canvas side {0} px is not usable: it must be a multiple of 8 and at least {MIN_CANVAS}")]
    Canvas(usize),
    /// A condition without image bytes.
    #[error("condition {0} has an empty image: send the masked crop as PNG bytes")]
    EmptyImage(usize),
    /// A condition image whose MIME type is not an image type.
    #[error("condition {index} has the MIME type {mime:?}: use an image type such as image/png")]
    MimeType {
        /// 1-based condition number.
        index: usize,
        /// The type given.
        mime: String,
    },
}

/// A plan that cannot be used (from JSON or built by hand).
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The text is not a plan.
    #[error("the plan is not valid JSON in the planner's format (docs/planner.md): {0}")]
    Json(#[from] serde_json::Error),
    /// The canvas side is not usable.
    #[error("the plan's canvas side {0} px must be a multiple of 8 and at least {MIN_CANVAS}")]
    Canvas(usize),
    /// No condition in the plan.
    #[error("the plan has no condition: give one box per visual condition")]
    NoCondition,
    /// The prompt is empty.
    #[error("the plan's prompt is empty")]
    EmptyPrompt,
    /// A condition's box is not usable.
    #[error("condition {index} of the plan: {source}")]
    Box {
        /// 1-based condition number.
        index: usize,
        /// Why.
        source: GeometryError,
    },
    /// A related rectangle has no area.
    #[error("condition {index} of the plan: the related rectangle {rect:?} has no area")]
    EmptyRelated {
        /// 1-based condition number.
        index: usize,
        /// The rectangle.
        rect: PixelRect,
    },
}

/// One visual condition as the planner sees it: the masked crop's encoded image.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionImage {
    /// The encoded image (the masked crop as PNG), base64 in JSON.
    #[serde(with = "base64_bytes")]
    pub bytes: Vec<u8>,
    /// Its MIME type, e.g. `image/png`.
    pub mime_type: String,
    /// A short label shown to the model and kept in the plan, e.g. "face" or "left cat".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

impl ConditionImage {
    /// A PNG condition without a label.
    pub fn png(bytes: Vec<u8>) -> Self {
        ConditionImage {
            bytes,
            mime_type: "image/png".into(),
            label: None,
        }
    }

    /// The same with a label.
    pub fn labelled(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }
}

impl std::fmt::Debug for ConditionImage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConditionImage")
            .field("bytes", &format_args!("<{} bytes>", self.bytes.len()))
            .field("mime_type", &self.mime_type)
            .field("label", &self.label)
            .finish()
    }
}

/// What to plan: the user's prompt P, the canvas, and the visual conditions in paste order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanRequest {
    /// The user's prompt P.
    pub prompt: String,
    /// Canvas side in pixels (default 512).
    #[serde(default = "default_canvas")]
    pub canvas: usize,
    /// One or more conditions; a later one wins where two overlap (docs/method.md §2.10c).
    pub conditions: Vec<ConditionImage>,
}

impl PlanRequest {
    /// A request on the default 512 px canvas.
    pub fn new(prompt: impl Into<String>, conditions: Vec<ConditionImage>) -> Self {
        PlanRequest {
            prompt: prompt.into(),
            canvas: DEFAULT_CANVAS,
            conditions,
        }
    }

    /// Checks what every planner needs: a condition, a usable canvas, images with bytes.
    pub fn validate(&self) -> Result<(), RequestError> {
        if self.conditions.is_empty() {
            return Err(RequestError::NoCondition);
        }
        if !canvas_is_usable(self.canvas) {
            return Err(RequestError::Canvas(self.canvas));
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            if condition.bytes.is_empty() {
                return Err(RequestError::EmptyImage(i + 1));
            }
            if !condition.mime_type.starts_with("image/") {
                return Err(RequestError::MimeType {
                    index: i + 1,
                    mime: condition.mime_type.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Whether latents can tile a canvas of this side.
pub(crate) fn canvas_is_usable(canvas: usize) -> bool {
    canvas >= MIN_CANVAS && canvas % LATENT_SCALE == 0
}

/// Where a plan came from.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PlanSource {
    /// Gemini answered all three stages.
    Gemini {
        /// The model that answered.
        model: String,
    },
    /// The offline heuristic, chosen (no key, or the offline planner asked for).
    Offline,
    /// Gemini was asked but failed; this is the offline plan.
    Fallback {
        /// The model that was asked.
        model: String,
        /// What went wrong, in words.
        reason: String,
    },
    /// Written by hand (the command line's `--plan`); the default when JSON omits the source.
    #[default]
    Manual,
}

impl std::fmt::Display for PlanSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PlanSource::Gemini { model } => write!(f, "planned by Gemini ({model})"),
            PlanSource::Offline => write!(f, "offline plan"),
            PlanSource::Fallback { model, reason } => write!(
                f,
                "offline plan, because planning with Gemini ({model}) failed: {reason}"
            ),
            PlanSource::Manual => write!(f, "plan given by hand"),
        }
    }
}

/// Replacements the planner proposes for the background guidance's two prompts when the
/// condition is not a human face (docs/method.md §2.3: "human face" and "a high quality and
/// colorful image" belong to the face preset). Shown to the user, who decides.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuidanceSuggestion {
    /// Replaces the subject prompt (what the background must not grow another of), e.g. "cat".
    pub background_subject: String,
    /// Replaces the quality prompt (what the background is pulled towards).
    pub background_quality: String,
}

/// The plan for one visual condition.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConditionPlan {
    /// The request's label, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Where the condition's square crop goes on the canvas (corner and side on multiples of 8).
    #[serde(rename = "box")]
    pub square: SquareBox,
    /// The condition-related region: rectangles inside the canvas whose union, minus the
    /// condition itself, guides the attention modulation. Empty: no related region.
    #[serde(default)]
    pub related: Vec<PixelRect>,
    /// The model's reason for the box, if it gave one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl ConditionPlan {
    /// The related region on the latent grid of `m_full`: the cells of the union of
    /// [`Self::related`], minus the cells of the condition mask `m_full` (docs/planner.md,
    /// "Related region"). `m_full` must be square and cover the whole `canvas`.
    pub fn related_mask(&self, canvas: usize, m_full: &GridMask) -> GridMask {
        let [rows, cols] = m_full.size();
        assert_eq!(rows, cols, "the condition mask must be a square grid");
        let mut union = GridMask::new(rows, cols);
        for rect in &self.related {
            if let Some(inside) = rect.clip(canvas) {
                union = union.union(&GridMask::from_rect(&inside, canvas, rows));
            }
        }
        union.minus(m_full)
    }
}

/// A complete plan: everything the SOW run takes from the planner.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Canvas side in pixels.
    #[serde(default = "default_canvas")]
    pub canvas: usize,
    /// The intensified prompt P*: replaces the user's prompt in the whole run.
    pub prompt: String,
    /// The model's description of the condition(s) (stage 1), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// One entry per condition, in the request's order.
    pub conditions: Vec<ConditionPlan>,
    /// Proposed background-guidance prompts for a non-face condition.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guidance: Option<GuidanceSuggestion>,
    /// Where the plan came from.
    #[serde(default)]
    pub source: PlanSource,
}

impl Plan {
    /// A plan from JSON, checked with [`Plan::validate`].
    pub fn from_json(text: &str) -> Result<Plan, PlanError> {
        let plan: Plan = serde_json::from_str(text)?;
        plan.validate()?;
        Ok(plan)
    }

    /// The plan as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("a plan always serializes")
    }

    /// Checks that the run can use the plan: a prompt, a usable canvas, every box aligned
    /// and on the canvas, no related rectangle without area.
    pub fn validate(&self) -> Result<(), PlanError> {
        if !canvas_is_usable(self.canvas) {
            return Err(PlanError::Canvas(self.canvas));
        }
        if self.prompt.trim().is_empty() {
            return Err(PlanError::EmptyPrompt);
        }
        if self.conditions.is_empty() {
            return Err(PlanError::NoCondition);
        }
        for (i, condition) in self.conditions.iter().enumerate() {
            condition
                .square
                .validate(self.canvas)
                .map_err(|source| PlanError::Box {
                    index: i + 1,
                    source,
                })?;
            if let Some(rect) = condition.related.iter().find(|r| r.w <= 0 || r.h <= 0) {
                return Err(PlanError::EmptyRelated {
                    index: i + 1,
                    rect: *rect,
                });
            }
        }
        Ok(())
    }

    /// The related region of condition `index` (0-based) on the grid of `m_full`; see
    /// [`ConditionPlan::related_mask`].
    pub fn related_mask(&self, index: usize, m_full: &GridMask) -> GridMask {
        self.conditions[index].related_mask(self.canvas, m_full)
    }

    /// The one message to show when the plan is a fallback: "Planning with Gemini (model)
    /// failed, so the offline plan is used: <reason>".
    pub fn notice(&self) -> Option<String> {
        match &self.source {
            PlanSource::Fallback { model, reason } => Some(format!(
                "Planning with Gemini ({model}) failed, so the offline plan is used: {reason}"
            )),
            _ => None,
        }
    }
}

/// Bytes as a standard base64 string in JSON.
mod base64_bytes {
    use base64::engine::general_purpose::STANDARD;
    use base64::Engine;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("the image is not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_plan() -> Plan {
        Plan {
            canvas: 512,
            prompt: "a young woman with red curly hair, in a garden".into(),
            description: Some("young woman, red curly hair, smiling".into()),
            conditions: vec![ConditionPlan {
                label: Some("face".into()),
                square: SquareBox::new(136, 16, 232),
                related: vec![PixelRect {
                    x: 40,
                    y: 200,
                    w: 432,
                    h: 312,
                }],
                reason: Some("room for the body below".into()),
            }],
            guidance: Some(GuidanceSuggestion {
                background_subject: "cat".into(),
                background_quality: "a grassy background".into(),
            }),
            source: PlanSource::Fallback {
                model: "gemini-2.5-flash".into(),
                reason: "Gemini did not answer".into(),
            },
        }
    }

    #[test]
    fn plans_round_trip_through_json() {
        let plan = full_plan();
        let json = plan.to_json();
        assert!(json.contains(r#""box": {"#) && json.contains(r#""kind": "fallback""#));
        assert_eq!(Plan::from_json(&json).unwrap(), plan);
        for source in [
            PlanSource::Gemini {
                model: "gemini-2.5-flash".into(),
            },
            PlanSource::Offline,
            PlanSource::Manual,
        ] {
            let plan = Plan {
                source,
                ..full_plan()
            };
            assert_eq!(Plan::from_json(&plan.to_json()).unwrap(), plan);
        }
    }

    #[test]
    fn a_hand_written_plan_needs_only_prompt_and_boxes() {
        let plan = Plan::from_json(
            r#"{"prompt": "a cat", "conditions": [{"box": {"x": 128, "y": 0, "side": 256}}]}"#,
        )
        .unwrap();
        assert_eq!(plan.canvas, 512);
        assert_eq!(plan.source, PlanSource::Manual);
        assert!(plan.conditions[0].related.is_empty() && plan.notice().is_none());
        let bad = [
            (
                r#"{"prompt": "a", "conditions": [{"box": {"x": 4, "y": 0, "side": 256}}]}"#,
                "multiples of 8",
            ),
            (
                r#"{"prompt": "a", "conditions": [{"box": {"x": 320, "y": 0, "side": 256}}]}"#,
                "does not fit",
            ),
            (r#"{"prompt": "a", "conditions": []}"#, "no condition"),
            (
                r#"{"prompt": " ", "conditions": [{"box": {"x": 0, "y": 0, "side": 8}}]}"#,
                "prompt is empty",
            ),
            (
                r#"{"prompt": "a", "canvas": 500, "conditions": [{"box": {"x": 0, "y": 0, "side": 8}}]}"#,
                "multiple of 8",
            ),
            (
                r#"{"prompt": "a", "conditions": [{"bx": {"x": 0, "y": 0, "side": 8}}]}"#,
                "unknown field",
            ),
            (
                r#"{"prompt": "a", "conditions": [{"box": {"x": 0, "y": 0, "side": 8}, "related": [{"x": 0, "y": 0, "w": 0, "h": 5}]}]}"#,
                "no area",
            ),
        ];
        for (json, expected) in bad {
            let error = Plan::from_json(json).unwrap_err().to_string();
            assert!(error.contains(expected), "{json}: {error}");
        }
    }

    #[test]
    fn requests_validate_and_carry_images_as_base64() {
        let request = PlanRequest::new(
            "a knight",
            vec![ConditionImage::png(vec![137, 80, 78, 71]).labelled("face")],
        );
        let json = serde_json::to_string(&request).unwrap();
        assert!(json.contains(r#""bytes":"iVBORw==""#), "{json}");
        assert_eq!(serde_json::from_str::<PlanRequest>(&json).unwrap(), request);
        assert!(format!("{request:?}").contains("<4 bytes>"));
        assert_eq!(request.validate(), Ok(()));
        let mut bad = request.clone();
        bad.canvas = 100;
        assert_eq!(bad.validate(), Err(RequestError::Canvas(100)));
        bad = request.clone();
        bad.conditions[0].mime_type = "text/plain".into();
        assert!(matches!(
            bad.validate(),
            Err(RequestError::MimeType { index: 1, .. })
        ));
        bad.conditions.clear();
        assert_eq!(bad.validate(), Err(RequestError::NoCondition));
    }
}
