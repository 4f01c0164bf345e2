//! Why planning with Gemini failed: one variant per failure a user can act on, each message
//! saying what happened and what to do. No message contains the API key: server text is
//! quoted through [`super::wire::quote`], which removes it.

use std::fmt;
use std::time::Duration;

use super::super::boxes::BoxError;
use super::super::plan::RequestError;

/// Which call failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Stage 1: the description and intensified prompt.
    Intensify,
    /// Stage 2: the condition boxes.
    Position,
    /// Stage 3: the related regions.
    Refine,
    /// Listing the models.
    ListModels,
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Stage::Intensify => "stage 1 (prompt intensification)",
            Stage::Position => "stage 2 (condition position)",
            Stage::Refine => "stage 3 (related region)",
            Stage::ListModels => "the model list",
        })
    }
}

fn retry_hint(after: &Option<Duration>) -> String {
    match after {
        Some(after) => format!("try again in {} s", after.as_secs_f64().ceil()),
        None => "try again later".to_owned(),
    }
}

/// Planning with Gemini failed.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PlannerError {
    /// The request itself is unusable (no planner could work on it).
    #[error(transparent)]
    Request(#[from] RequestError),
    /// The model setting is not a model name.
    #[error("{0:?} is not a Gemini model name: use a name such as {default}", default = super::DEFAULT_MODEL)]
    ModelName(String),
    /// The endpoint setting is not a usable URL.
    #[error("the Gemini endpoint {url} is not usable ({detail}): check the endpoint setting")]
    Endpoint {
        /// The URL built from the setting.
        url: String,
        /// What is wrong.
        detail: String,
    },
    /// The key cannot be put into a header.
    #[error("the Gemini API key cannot be sent: it has characters HTTP headers do not allow")]
    KeyUnsendable,
    /// No connection (offline, refused, DNS, TLS, or the browser blocked the request).
    #[error("Gemini could not be reached ({detail}): check the network connection and the endpoint setting ({url})")]
    Unreachable {
        /// The URL requested.
        url: String,
        /// The system's or browser's reason.
        detail: String,
    },
    /// No answer in time.
    #[error("Gemini did not answer {stage} within {} s: try again, or allow more time in the settings", .after.as_secs_f64())]
    Timeout {
        /// The call.
        stage: Stage,
        /// The timeout.
        after: Duration,
    },
    /// The connection broke off mid-exchange.
    #[error("the exchange with Gemini broke off during {stage} ({detail}): try again")]
    Transfer {
        /// The call.
        stage: Stage,
        /// What went wrong.
        detail: String,
    },
    /// 400 with an API-key reason, 401 or 403.
    #[error("Gemini rejected the API key (HTTP {status}, {message}): check the key (the GEMINI_API_KEY variable, or the app's settings) and that the Gemini API is enabled for it")]
    KeyRejected {
        /// The HTTP status.
        status: u16,
        /// Gemini's message.
        message: String,
    },
    /// 429: rate limit or quota.
    #[error("Gemini's rate limit or quota is used up (HTTP 429, {message}): {}", retry_hint(.retry_after))]
    RateLimited {
        /// Gemini's message.
        message: String,
        /// How long the server asked to wait.
        retry_after: Option<Duration>,
    },
    /// 5xx.
    #[error("Gemini had a server error (HTTP {status}, {message}): try again later")]
    Server {
        /// The HTTP status.
        status: u16,
        /// Gemini's message.
        message: String,
    },
    /// Another 4xx, e.g. 404 for an unknown model.
    #[error("Gemini refused the request (HTTP {status}, {message}): check the model name and the endpoint setting")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// Gemini's message.
        message: String,
    },
    /// The prompt was blocked (`promptFeedback.blockReason`).
    #[error(
        "Gemini blocked {stage} for {reason}: try rewording the prompt, or another condition image"
    )]
    Blocked {
        /// The call.
        stage: Stage,
        /// The block reason.
        reason: String,
    },
    /// The answer stopped (e.g. `SAFETY`) before any text.
    #[error("Gemini's answer to {stage} stopped with {reason} before giving any text: try rewording the prompt")]
    NoText {
        /// The call.
        stage: Stage,
        /// The finish reason.
        reason: String,
    },
    /// No candidate at all.
    #[error("Gemini returned no answer to {stage}: try again")]
    Empty {
        /// The call.
        stage: Stage,
    },
    /// The answer is not the JSON asked for.
    #[error("Gemini's answer to {stage} is not the JSON asked for: {detail}")]
    Malformed {
        /// The call.
        stage: Stage,
        /// What does not fit.
        detail: String,
    },
    /// The answer has no entry for a condition.
    #[error("Gemini's answer to {stage} has nothing for condition {condition}")]
    MissingCondition {
        /// The call.
        stage: Stage,
        /// 1-based condition number.
        condition: usize,
    },
    /// A box in the answer is missing a field or out of range.
    #[error("Gemini's answer to {stage} has an unusable box for condition {condition}: {source}")]
    BadBox {
        /// The call.
        stage: Stage,
        /// 1-based condition number.
        condition: usize,
        /// What is wrong with the box.
        source: BoxError,
    },
}
