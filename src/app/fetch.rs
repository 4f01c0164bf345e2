//! Fetching files over HTTP with the browser's `fetch`, as text or bytes. Errors name the URL
//! and the HTTP status, since "failed to fetch" alone says nothing about which file is missing.

use js_sys::{ArrayBuffer, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::Response;

use super::js_error_message;

/// A file that could not be fetched.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("fetching {url} failed: {reason}")]
pub struct FetchError {
    /// The URL as requested.
    pub url: String,
    /// The HTTP status or the browser's message.
    pub reason: String,
}

/// GETs `url` and checks the status.
async fn get(url: &str) -> Result<Response, FetchError> {
    let fail = |reason: String| FetchError {
        url: url.to_owned(),
        reason,
    };
    let window = web_sys::window().ok_or_else(|| fail("no window".into()))?;
    let response: Response = JsFuture::from(window.fetch_with_str(url))
        .await
        .map_err(|e| fail(js_error_message(&e)))?
        .dyn_into()
        .map_err(|_| fail("fetch did not return a Response".into()))?;
    if !response.ok() {
        return Err(fail(format!(
            "HTTP {} {}",
            response.status(),
            response.status_text()
        )));
    }
    Ok(response)
}

/// Awaits one of the body promises of a response.
async fn body(url: &str, promise: Result<js_sys::Promise, JsValue>) -> Result<JsValue, FetchError> {
    let fail = |e: JsValue| FetchError {
        url: url.to_owned(),
        reason: format!("reading the body: {}", js_error_message(&e)),
    };
    JsFuture::from(promise.map_err(fail)?).await.map_err(fail)
}

/// The body of `url` as text.
pub async fn fetch_text(url: &str) -> Result<String, FetchError> {
    let response = get(url).await?;
    let text = body(url, response.text()).await?;
    text.as_string().ok_or_else(|| FetchError {
        url: url.to_owned(),
        reason: "the body is not text".into(),
    })
}

/// The body of `url` as bytes.
pub async fn fetch_bytes(url: &str) -> Result<Vec<u8>, FetchError> {
    let response = get(url).await?;
    let buffer: ArrayBuffer = body(url, response.array_buffer())
        .await?
        .dyn_into()
        .map_err(|_| FetchError {
            url: url.to_owned(),
            reason: "the body is not an ArrayBuffer".into(),
        })?;
    Ok(Uint8Array::new(&buffer).to_vec())
}
