//! Streamed GETs in the browser: `fetch` through gloo-net, the body read chunk by chunk from
//! its `ReadableStream` (never `arrayBuffer()`, which would hold a whole weights file).

use js_sys::{Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{ReadableStream, ReadableStreamDefaultReader};

use super::{FetchError, Head};

/// The message of a JavaScript error value.
fn js_message(value: &JsValue) -> String {
    value
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| value.as_string())
        .unwrap_or_else(|| format!("{value:?}"))
}

/// A response body being read.
pub(crate) struct Body {
    reader: Option<ReadableStreamDefaultReader>,
}

impl Body {
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let Some(reader) = &self.reader else {
            return Ok(None);
        };
        let result = JsFuture::from(reader.read())
            .await
            .map_err(|e| format!("the download broke off: {}", js_message(&e)))?;
        let done = Reflect::get(&result, &JsValue::from_str("done"))
            .ok()
            .and_then(|d| d.as_bool())
            .unwrap_or(true);
        if done {
            self.reader = None;
            return Ok(None);
        }
        let value =
            Reflect::get(&result, &JsValue::from_str("value")).map_err(|e| js_message(&e))?;
        let bytes: Uint8Array = value
            .dyn_into()
            .map_err(|_| "the body yielded something other than bytes".to_string())?;
        Ok(Some(bytes.to_vec()))
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        // Stop the transfer when the rest of the body is not wanted.
        if let Some(reader) = self.reader.take() {
            let _ = reader.cancel();
        }
    }
}

pub(crate) async fn get(url: &str, offset: u64) -> Result<(Head, Body), FetchError> {
    let mut request = gloo_net::http::Request::get(url);
    if offset > 0 {
        request = request.header("Range", &format!("bytes={offset}-"));
    }
    let response = request.send().await.map_err(|e| FetchError::Network {
        url: url.to_string(),
        detail: format!(
            "{e} (a browser also reports a server that refuses this page's origin (CORS) this way)"
        ),
    })?;
    let headers = response.headers();
    let head = Head {
        status: response.status(),
        reason: response.status_text(),
        content_length: headers
            .get("content-length")
            .and_then(|v| v.trim().parse().ok()),
        content_range: headers.get("content-range"),
        content_type: headers.get("content-type"),
    };
    let reader = match response.body() {
        Some(stream) => Some(reader_of(stream)?),
        None => None,
    };
    Ok((head, Body { reader }))
}

fn reader_of(stream: ReadableStream) -> Result<ReadableStreamDefaultReader, FetchError> {
    stream
        .get_reader()
        .dyn_into::<ReadableStreamDefaultReader>()
        .map_err(|_| FetchError::Network {
            url: String::new(),
            detail: "the response body cannot be read as a stream".to_string(),
        })
}
