//! The Gemini planner (docs/planner.md, "The three stages"): REST `generateContent` calls with
//! the user's key in the `x-goog-api-key` header (never in the URL), the condition images
//! inline, and JSON answers constrained by a response schema. Stages 1 (prompt
//! intensification) and 2 (position) run at the same time; stage 3 (related region) runs after
//! stage 2 with its boxes. Every answer goes through the same post-processing as the offline
//! plan; any failure gives one [`PlannerError`], and [`Planner::plan`] then returns the offline
//! plan marked as a fallback with that message.

mod answers;
mod error;
mod prompts;
mod wire;

use std::future::Future;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::imaging::geometry::SquareBox;
use crate::net::http::{self, HttpRequest};

use super::boxes::BoxConvention;
use super::key::ApiKey;
use super::offline::offline_plan;
use super::placement::side_limits;
use super::plan::{ConditionPlan, Plan, PlanRequest, PlanSource, RequestError};
use super::Planner;
use answers::{IntensifyAnswer, PositionAnswer, RefineAnswer};

pub use error::{PlannerError, Stage};

/// The model asked when the settings do not name one: a current Flash model (fast, cheap,
/// good at images and boxes).
pub const DEFAULT_MODEL: &str = "gemini-2.5-flash";

/// Google's endpoint for the Gemini API.
pub const DEFAULT_ENDPOINT: &str = "https://generativelanguage.googleapis.com";

/// The default limit for one call, in seconds (a thinking model may take tens of seconds).
pub const DEFAULT_TIMEOUT_SECS: u64 = 60;

/// The header that carries the key.
pub const API_KEY_HEADER: &str = "x-goog-api-key";

/// Pages of the model list read at most (a guard against a server that never stops paging).
const MAX_MODEL_PAGES: usize = 20;

/// Where and how to ask Gemini. JSON with every field optional (defaults above).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiSettings {
    /// The model, e.g. "gemini-2.5-flash" ("models/" in front is accepted).
    pub model: String,
    /// The API's base URL, without `/v1beta` (tests point it at a local server).
    pub endpoint: String,
    /// The limit for each call, in seconds.
    pub timeout_secs: u64,
    /// The box convention asked for (both are accepted in answers).
    pub boxes: BoxConvention,
}

impl Default for GeminiSettings {
    fn default() -> Self {
        GeminiSettings {
            model: DEFAULT_MODEL.to_owned(),
            endpoint: DEFAULT_ENDPOINT.to_owned(),
            timeout_secs: DEFAULT_TIMEOUT_SECS,
            boxes: BoxConvention::default(),
        }
    }
}

impl GeminiSettings {
    /// The model's id without a "models/" prefix, if it is a model name.
    fn model_id(&self) -> Result<&str, PlannerError> {
        let id = self.model.trim();
        let id = id.strip_prefix("models/").unwrap_or(id);
        let usable = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
        match usable {
            true => Ok(id),
            false => Err(PlannerError::ModelName(self.model.clone())),
        }
    }

    /// `{endpoint}/v1beta/{path}`.
    fn url(&self, path: &str) -> String {
        format!(
            "{}/v1beta/{path}",
            self.endpoint.trim().trim_end_matches('/')
        )
    }

    fn timeout(&self) -> Duration {
        Duration::from_secs(self.timeout_secs.max(1))
    }
}

/// A model the key can use with `generateContent`, for the app's picker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// The id to put in [`GeminiSettings::model`], e.g. "gemini-2.5-flash".
    pub id: String,
    /// The human name, e.g. "Gemini 2.5 Flash".
    pub display_name: String,
    /// Google's description, if any.
    pub description: Option<String>,
}

/// Plans with Gemini, falling back to the offline plan on any failure.
#[derive(Clone, Debug)]
pub struct GeminiPlanner {
    key: ApiKey,
    settings: GeminiSettings,
}

impl GeminiPlanner {
    /// A planner with the default settings.
    pub fn new(key: ApiKey) -> Self {
        GeminiPlanner::with_settings(key, GeminiSettings::default())
    }

    /// A planner with these settings.
    pub fn with_settings(key: ApiKey, settings: GeminiSettings) -> Self {
        GeminiPlanner { key, settings }
    }

    /// The settings.
    pub fn settings(&self) -> &GeminiSettings {
        &self.settings
    }

    /// Plans with Gemini and reports a failure instead of falling back.
    pub async fn try_plan(&self, request: &PlanRequest) -> Result<Plan, PlannerError> {
        request.validate()?;
        let model = self.settings.model_id()?.to_owned();
        let (first, second) = both(self.intensify(request), self.position(request)).await;
        let intensified = first?;
        let squares = second?;
        let prompt = intensified.prompt()?;
        let boxes: Vec<SquareBox> = squares.iter().map(|(square, _)| *square).collect();
        let related = self.refine(request, &prompt, &boxes).await?;
        Ok(Plan {
            canvas: request.canvas,
            prompt,
            description: Some(intensified.description.trim().to_owned()).filter(|d| !d.is_empty()),
            conditions: request
                .conditions
                .iter()
                .zip(squares)
                .zip(related)
                .map(|((condition, (square, reason)), related)| ConditionPlan {
                    label: condition.label.clone(),
                    square,
                    related,
                    reason,
                })
                .collect(),
            guidance: intensified.guidance(),
            source: PlanSource::Gemini { model },
        })
    }

    /// The models this key can call `generateContent` on (`GET /v1beta/models`, every page).
    pub async fn list_models(&self) -> Result<Vec<ModelInfo>, PlannerError> {
        let stage = Stage::ListModels;
        let mut models = Vec::new();
        let mut page_token: Option<String> = None;
        for _ in 0..MAX_MODEL_PAGES {
            let mut url = self.settings.url("models?pageSize=1000");
            if let Some(token) = &page_token {
                url.push_str("&pageToken=");
                url.push_str(&percent_encode(token));
            }
            let response = http::send(&self.authorized(HttpRequest::get(url)))
                .await
                .map_err(|e| wire::transport_error(e, stage, &self.key))?;
            if !response.is_success() {
                return Err(wire::status_error(&response, &self.key));
            }
            let page: ModelPage =
                serde_json::from_slice(&response.body).map_err(|e| PlannerError::Malformed {
                    stage,
                    detail: wire::quote(&e.to_string(), &self.key),
                })?;
            models.extend(
                page.models
                    .into_iter()
                    .filter(|m| m.methods.iter().any(|g| g == "generateContent"))
                    .map(|m| ModelInfo {
                        id: m.name.strip_prefix("models/").unwrap_or(&m.name).to_owned(),
                        display_name: m.display_name.unwrap_or_else(|| m.name.clone()),
                        description: m.description,
                    }),
            );
            page_token = page.next_page_token.filter(|t| !t.is_empty());
            if page_token.is_none() {
                break;
            }
        }
        Ok(models)
    }

    /// The request with the key header.
    fn authorized(&self, request: HttpRequest) -> HttpRequest {
        request
            .header(API_KEY_HEADER, self.key.expose())
            .timeout(self.settings.timeout())
    }

    /// One `generateContent` call: the context and `task` as text, the images inline, the
    /// answer's JSON read as `T`.
    async fn ask<T: serde::de::DeserializeOwned>(
        &self,
        stage: Stage,
        request: &PlanRequest,
        task: String,
        schema: Value,
    ) -> Result<T, PlannerError> {
        let model = self.settings.model_id()?;
        let context = prompts::fill(prompts::CONTEXT, &[("prompt", request.prompt.as_str())]);
        let instruction = format!("{context}\n\n{task}");
        let body = wire::generate_body(&instruction, &request.conditions, schema);
        let url = self
            .settings
            .url(&format!("models/{model}:generateContent"));
        let call = self
            .authorized(HttpRequest::post(url, body.to_string().into_bytes()))
            .header("content-type", "application/json");
        let response = http::send(&call)
            .await
            .map_err(|e| wire::transport_error(e, stage, &self.key))?;
        let (text, finish) = wire::answer_text(&response, stage, &self.key)?;
        answers::parse(&text, finish.as_deref(), stage, &self.key)
    }

    /// Stage 1.
    async fn intensify(&self, request: &PlanRequest) -> Result<IntensifyAnswer, PlannerError> {
        let schema = prompts::intensify_schema();
        self.ask(
            Stage::Intensify,
            request,
            prompts::INTENSIFY.to_owned(),
            schema,
        )
        .await
    }

    /// Stage 2, post-processed into square boxes.
    async fn position(
        &self,
        request: &PlanRequest,
    ) -> Result<Vec<(SquareBox, Option<String>)>, PlannerError> {
        let (min, max) = side_limits(request.canvas);
        let convention = self.settings.boxes;
        let task = prompts::fill(
            prompts::POSITION,
            &[
                ("canvas", &request.canvas.to_string()),
                ("min", &min.round().to_string()),
                ("max", &max.round().to_string()),
                ("box_format", prompts::box_format(convention)),
            ],
        );
        let schema = prompts::position_schema(convention);
        let answer: PositionAnswer = self.ask(Stage::Position, request, task, schema).await?;
        answer.squares(request.conditions.len(), request.canvas)
    }

    /// Stage 3 with stage 2's boxes and stage 1's prompt.
    async fn refine(
        &self,
        request: &PlanRequest,
        intensified: &str,
        squares: &[SquareBox],
    ) -> Result<Vec<Vec<crate::imaging::geometry::PixelRect>>, PlannerError> {
        let convention = self.settings.boxes;
        let boxes: Vec<String> = squares
            .iter()
            .enumerate()
            .map(|(i, square)| prompts::placed_box(i + 1, square, request.canvas, convention))
            .collect();
        let task = prompts::fill(
            prompts::REFINE,
            &[
                ("canvas", &request.canvas.to_string()),
                ("boxes", &boxes.join("; ")),
                ("intensified", intensified),
                ("box_format", prompts::box_format(convention)),
            ],
        );
        let schema = prompts::refine_schema(convention);
        let answer: RefineAnswer = self.ask(Stage::Refine, request, task, schema).await?;
        answer.related(request.conditions.len(), request.canvas)
    }
}

impl Planner for GeminiPlanner {
    async fn plan(&self, request: &PlanRequest) -> Result<Plan, RequestError> {
        request.validate()?;
        match self.try_plan(request).await {
            Ok(plan) => Ok(plan),
            Err(PlannerError::Request(error)) => Err(error),
            Err(error) => {
                let mut plan = offline_plan(request);
                plan.source = PlanSource::Fallback {
                    model: self.settings.model.clone(),
                    reason: self.key.redact(&error.to_string()),
                };
                Ok(plan)
            }
        }
    }
}

/// One page of `GET /v1beta/models`.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelPage {
    #[serde(default)]
    models: Vec<ModelEntry>,
    next_page_token: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ModelEntry {
    name: String,
    display_name: Option<String>,
    description: Option<String>,
    #[serde(default, rename = "supportedGenerationMethods")]
    methods: Vec<String>,
}

/// `text` safe in a query value: unreserved characters kept, every other byte %-encoded.
fn percent_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Runs two calls at once. Natively each blocks its thread (ureq is synchronous), so the first
/// gets a scoped thread of its own.
#[cfg(not(target_arch = "wasm32"))]
async fn both<A: Send, B>(
    first: impl Future<Output = A> + Send,
    second: impl Future<Output = B>,
) -> (A, B) {
    std::thread::scope(|scope| {
        let first = scope.spawn(|| pollster::block_on(first));
        let second = pollster::block_on(second);
        let first = first
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        (first, second)
    })
}

/// Runs two calls at once: in the browser both fetches are in flight together.
#[cfg(target_arch = "wasm32")]
async fn both<A, B>(first: impl Future<Output = A>, second: impl Future<Output = B>) -> (A, B) {
    futures_util::future::join(first, second).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_names_and_urls() {
        let mut settings = GeminiSettings {
            endpoint: "http://127.0.0.1:9/".into(),
            ..GeminiSettings::default()
        };
        assert_eq!(settings.model_id().unwrap(), DEFAULT_MODEL);
        assert_eq!(settings.url("models"), "http://127.0.0.1:9/v1beta/models");
        settings.model = "models/gemini-2.0-flash-001".into();
        assert_eq!(settings.model_id().unwrap(), "gemini-2.0-flash-001");
        for bad in ["", "gemini/../x", "gemini?key=1", "a b"] {
            settings.model = bad.into();
            assert!(matches!(
                settings.model_id(),
                Err(PlannerError::ModelName(_))
            ));
        }
        assert_eq!(percent_encode("ab/c+d="), "ab%2Fc%2Bd%3D");
    }

    #[test]
    fn settings_json_has_defaults() {
        let settings: GeminiSettings = serde_json::from_str(r#"{"boxes": "box_2d"}"#).unwrap();
        assert_eq!(settings.model, DEFAULT_MODEL);
        assert_eq!(settings.boxes, BoxConvention::Box2d);
    }
}
