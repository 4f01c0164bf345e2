//! The three stages' answers as Gemini writes them (the shapes the schemas in
//! [`super::prompts`] ask for), checked and turned into plan parts by the shared
//! post-processing.

use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::imaging::geometry::{PixelRect, SquareBox};

use super::super::boxes::BoxAnswer;
use super::super::key::ApiKey;
use super::super::placement::{condition_square, related_rect};
use super::super::plan::GuidanceSuggestion;
use super::error::{PlannerError, Stage};
use super::wire::quote;

/// Stage 1's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct IntensifyAnswer {
    /// The subject's features.
    pub description: String,
    /// P*.
    pub intensified_prompt: String,
    /// Whether the conditions are human faces.
    #[serde(default)]
    pub human_face: Option<bool>,
    /// FACE's replacement for other subjects.
    #[serde(default)]
    pub background_subject: Option<String>,
    /// HQ's replacement for other subjects.
    #[serde(default)]
    pub background_quality: Option<String>,
}

impl IntensifyAnswer {
    /// The prompt, which must not be empty.
    pub fn prompt(&self) -> Result<String, PlannerError> {
        let prompt = self.intensified_prompt.trim();
        if prompt.is_empty() {
            return Err(PlannerError::Malformed {
                stage: Stage::Intensify,
                detail: "the intensified prompt is empty".into(),
            });
        }
        Ok(prompt.to_owned())
    }

    /// Replacement guidance prompts, only for a subject that is not a human face and only when
    /// both are given.
    pub fn guidance(&self) -> Option<GuidanceSuggestion> {
        let given = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        match (
            self.human_face,
            given(&self.background_subject),
            given(&self.background_quality),
        ) {
            (Some(false), Some(background_subject), Some(background_quality)) => {
                Some(GuidanceSuggestion {
                    background_subject,
                    background_quality,
                })
            }
            _ => None,
        }
    }
}

/// One stage-2 entry.
#[derive(Clone, Debug, Deserialize)]
struct PositionEntry {
    condition: usize,
    #[serde(default)]
    reason: Option<String>,
    #[serde(flatten)]
    placed: BoxAnswer,
}

/// Stage 2's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct PositionAnswer {
    boxes: Vec<PositionEntry>,
}

impl PositionAnswer {
    /// Each condition's square box (post-processed) and the model's reason, in condition order.
    pub fn squares(
        self,
        conditions: usize,
        canvas: usize,
    ) -> Result<Vec<(SquareBox, Option<String>)>, PlannerError> {
        let stage = Stage::Position;
        let entries = self.boxes.into_iter().map(|e| (e.condition, e));
        by_condition(entries, conditions, stage)?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let placed =
                    entry
                        .placed
                        .to_canvas(canvas)
                        .map_err(|source| PlannerError::BadBox {
                            stage,
                            condition: i + 1,
                            source,
                        })?;
                Ok((condition_square(placed, canvas), entry.reason))
            })
            .collect()
    }
}

/// One stage-3 entry.
#[derive(Clone, Debug, Deserialize)]
struct RegionEntry {
    condition: usize,
    related: Vec<BoxAnswer>,
}

/// Stage 3's answer.
#[derive(Clone, Debug, Deserialize)]
pub struct RefineAnswer {
    regions: Vec<RegionEntry>,
}

impl RefineAnswer {
    /// Each condition's related rectangles, clipped to the canvas, in condition order.
    pub fn related(
        self,
        conditions: usize,
        canvas: usize,
    ) -> Result<Vec<Vec<PixelRect>>, PlannerError> {
        let stage = Stage::Refine;
        let entries = self.regions.into_iter().map(|e| (e.condition, e));
        by_condition(entries, conditions, stage)?
            .into_iter()
            .enumerate()
            .map(|(i, entry)| {
                let mut rects = Vec::new();
                for answer in &entry.related {
                    let placed =
                        answer
                            .to_canvas(canvas)
                            .map_err(|source| PlannerError::BadBox {
                                stage,
                                condition: i + 1,
                                source,
                            })?;
                    rects.extend(related_rect(placed, canvas));
                }
                Ok(rects)
            })
            .collect()
    }
}

/// Entries numbered 1..=count, put in order: each number exactly once.
fn by_condition<T>(
    entries: impl Iterator<Item = (usize, T)>,
    count: usize,
    stage: Stage,
) -> Result<Vec<T>, PlannerError> {
    let mut slots: Vec<Option<T>> = (0..count).map(|_| None).collect();
    for (number, entry) in entries {
        let malformed = |detail: String| PlannerError::Malformed { stage, detail };
        let slot = number
            .checked_sub(1)
            .and_then(|i| slots.get_mut(i))
            .ok_or_else(|| {
                malformed(format!(
                    "there is no condition {number} (conditions are numbered 1 to {count})"
                ))
            })?;
        if slot.is_some() {
            return Err(malformed(format!("condition {number} is answered twice")));
        }
        *slot = Some(entry);
    }
    slots
        .into_iter()
        .enumerate()
        .map(|(i, slot)| {
            slot.ok_or(PlannerError::MissingCondition {
                stage,
                condition: i + 1,
            })
        })
        .collect()
}

/// An answer's JSON text read as `T`; `finish` (a finish reason other than STOP) is named when
/// the text does not parse, since a cut-off answer is the usual cause.
pub fn parse<T: DeserializeOwned>(
    text: &str,
    finish: Option<&str>,
    stage: Stage,
    key: &ApiKey,
) -> Result<T, PlannerError> {
    serde_json::from_str(text).map_err(|e| PlannerError::Malformed {
        stage,
        detail: match finish {
            Some(reason) => format!(
                "{} (the answer ended with {reason})",
                quote(&e.to_string(), key)
            ),
            None => quote(&e.to_string(), key),
        },
    })
}
