//! Gemini's REST wire format (`v1beta`): the `generateContent` request body, reading the
//! answer's text out of a response, and turning failures (transport, status codes and Google's
//! error bodies, blocked or empty answers) into one [`PlannerError`] each.

use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::net::http::{HttpError, HttpResponse};

use super::super::key::ApiKey;
use super::super::plan::ConditionImage;
use super::error::{PlannerError, Stage};
use super::prompts;

/// The longest piece of a server's message quoted in an error.
const MAX_QUOTED_CHARS: usize = 300;

/// A `generateContent` body: the instruction, then each condition's caption and inline image,
/// and JSON output constrained by `schema`.
pub fn generate_body(instruction: &str, conditions: &[ConditionImage], schema: Value) -> Value {
    let mut parts = vec![json!({"text": instruction})];
    for (i, condition) in conditions.iter().enumerate() {
        parts.push(json!({
            "text": prompts::condition_caption(i + 1, condition.label.as_deref())
        }));
        parts.push(json!({
            "inline_data": {
                "mime_type": condition.mime_type,
                "data": STANDARD.encode(&condition.bytes)
            }
        }));
    }
    json!({
        "contents": [{"role": "user", "parts": parts}],
        "generationConfig": {
            "responseMimeType": "application/json",
            "responseSchema": schema
        }
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct GenerateResponse {
    #[serde(default)]
    candidates: Vec<Candidate>,
    prompt_feedback: Option<PromptFeedback>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PromptFeedback {
    block_reason: Option<String>,
    block_reason_message: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Candidate {
    content: Option<Content>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Content {
    #[serde(default)]
    parts: Vec<Part>,
}

#[derive(Deserialize)]
struct Part {
    text: Option<String>,
    /// Set on a thinking model's thought summaries, which are not the answer.
    #[serde(default)]
    thought: bool,
}

/// The text of the first candidate of a 2xx `generateContent` response, with its finish reason
/// when that is not `STOP`.
pub fn answer_text(
    response: &HttpResponse,
    stage: Stage,
    key: &ApiKey,
) -> Result<(String, Option<String>), PlannerError> {
    if !response.is_success() {
        return Err(status_error(response, key));
    }
    let envelope: GenerateResponse =
        serde_json::from_slice(&response.body).map_err(|e| PlannerError::Malformed {
            stage,
            detail: format!("the response is not Gemini's JSON ({e})"),
        })?;
    if let Some(reason) = envelope
        .prompt_feedback
        .as_ref()
        .and_then(|f| f.block_reason.clone())
    {
        let message = envelope
            .prompt_feedback
            .and_then(|f| f.block_reason_message)
            .map(|m| format!(": {}", quote(&m, key)))
            .unwrap_or_default();
        return Err(PlannerError::Blocked {
            stage,
            reason: format!("{}{message}", quote(&reason, key)),
        });
    }
    let Some(candidate) = envelope.candidates.into_iter().next() else {
        return Err(PlannerError::Empty { stage });
    };
    let text: String = candidate
        .content
        .map(|c| c.parts)
        .unwrap_or_default()
        .into_iter()
        .filter(|p| !p.thought)
        .filter_map(|p| p.text)
        .collect();
    let finish = candidate.finish_reason.filter(|r| r != "STOP");
    if text.trim().is_empty() {
        return Err(match finish {
            Some(reason) => PlannerError::NoText {
                stage,
                reason: quote(&reason, key),
            },
            None => PlannerError::Empty { stage },
        });
    }
    Ok((text, finish))
}

/// The error for a response whose status is not 2xx, from the status and Google's error body
/// (`{"error": {"code", "message", "status", "details": [...]}}`).
pub fn status_error(response: &HttpResponse, key: &ApiKey) -> PlannerError {
    let body: Option<Value> = serde_json::from_slice(&response.body).ok();
    let error = body.as_ref().and_then(|b| b.get("error"));
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    let status_name = text(error.and_then(|e| e.get("status")));
    let details: Vec<&Value> = error
        .and_then(|e| e.get("details"))
        .and_then(Value::as_array)
        .map(|d| d.iter().collect())
        .unwrap_or_default();
    let reason = details.iter().find_map(|d| text(d.get("reason")));
    let message = match text(error.and_then(|e| e.get("message"))) {
        Some(message) => message,
        None if response.body.is_empty() => "no details".to_owned(),
        None => response.text(),
    };
    let message = match &status_name {
        Some(name) => format!("{name}: {}", quote(&message, key)),
        None => quote(&message, key),
    };
    let status = response.status;
    let key_problem =
        reason.as_deref().is_some_and(|r| r.starts_with("API_KEY")) || message.contains("API key");
    match status {
        401 | 403 => PlannerError::KeyRejected { status, message },
        400 if key_problem => PlannerError::KeyRejected { status, message },
        429 => PlannerError::RateLimited {
            message,
            retry_after: retry_after(response, &details),
        },
        500..=599 => PlannerError::Server { status, message },
        _ => PlannerError::Refused { status, message },
    }
}

/// How long the server asks to wait: the `Retry-After` header in seconds, else Google's
/// `RetryInfo.retryDelay` (e.g. "37s").
fn retry_after(response: &HttpResponse, details: &[&Value]) -> Option<Duration> {
    if let Some(seconds) = response
        .header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        return Some(Duration::from_secs(seconds));
    }
    details.iter().find_map(|d| {
        let delay = d.get("retryDelay")?.as_str()?;
        let seconds: f64 = delay.strip_suffix('s')?.parse().ok()?;
        (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
    })
}

/// The error for a call that got no response.
pub fn transport_error(error: HttpError, stage: Stage, key: &ApiKey) -> PlannerError {
    match error {
        HttpError::InvalidUrl { url, detail } => PlannerError::Endpoint {
            url: key.redact(&url),
            detail: key.redact(&detail),
        },
        HttpError::InvalidHeader { .. } => PlannerError::KeyUnsendable,
        HttpError::Connect { url, detail } => PlannerError::Unreachable {
            url: key.redact(&url),
            detail: key.redact(&detail),
        },
        HttpError::Timeout { after, .. } => PlannerError::Timeout { stage, after },
        HttpError::Transfer { detail, .. } => PlannerError::Transfer {
            stage,
            detail: key.redact(&detail),
        },
    }
}

/// Server text made safe to show: the key removed, one line, at most [`MAX_QUOTED_CHARS`].
pub fn quote(text: &str, key: &ApiKey) -> String {
    let single_line = key
        .redact(text)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    match single_line.char_indices().nth(MAX_QUOTED_CHARS) {
        Some((cut, _)) => format!("{}…", &single_line[..cut]),
        None => single_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn response(status: u16, body: &str) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.as_bytes().to_vec(),
        }
    }

    #[test]
    fn thoughts_are_not_the_answer() {
        let key = ApiKey::new("k").unwrap();
        let body = r#"{"candidates": [{"content": {"parts": [
            {"text": "thinking…", "thought": true}, {"text": "{\"a\": 1}"}]},
            "finishReason": "STOP"}]}"#;
        let (text, finish) = answer_text(&response(200, body), Stage::Intensify, &key).unwrap();
        assert_eq!((text.as_str(), finish), ("{\"a\": 1}", None));
    }

    #[test]
    fn retry_delay_comes_from_the_header_or_the_details() {
        let key = ApiKey::new("k").unwrap();
        let body = r#"{"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "12.5s"}]}}"#;
        let mut with_header = response(429, body);
        assert!(matches!(
            status_error(&with_header, &key),
            PlannerError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs_f64(12.5)
        ));
        with_header
            .headers
            .push(("retry-after".into(), "30".into()));
        assert!(matches!(
            status_error(&with_header, &key),
            PlannerError::RateLimited { retry_after: Some(d), .. } if d == Duration::from_secs(30)
        ));
    }

    #[test]
    fn quotes_are_short_single_lines() {
        let key = ApiKey::new("k3y").unwrap();
        assert_eq!(quote("a\n  b k3y", &key), "a b <redacted>");
        assert_eq!(
            quote(&"x".repeat(400), &key).chars().count(),
            MAX_QUOTED_CHARS + 1
        );
    }
}
