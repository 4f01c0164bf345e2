//! Whole-message HTTP calls (a request in, the complete response out), the size of a JSON API
//! call: one async [`send`] for both targets, with a per-request timeout.
//!
//! - Natively through [`ureq`]: small, synchronous, no async runtime to carry (the engine drives
//!   its async code with `pollster`), rustls for https. The call blocks inside the async fn;
//!   callers that want two calls at once run them on scoped threads.
//! - In the browser through `gloo-net`, i.e. the page's own `fetch` (the only HTTP a page has;
//!   CORS and the user's proxy settings apply), aborted by an `AbortSignal` when the timeout
//!   passes.
//!
//! A status that is not 2xx is not an error here: the caller reads the body of a 4xx/5xx (APIs
//! explain themselves there). Errors are the cases without a response: a bad URL, no
//! connection, a timeout, a transfer that broke off.

use std::fmt;
use std::time::Duration;

#[cfg(not(target_arch = "wasm32"))]
#[path = "http/native.rs"]
mod backend;
#[cfg(target_arch = "wasm32")]
#[path = "http/web.rs"]
mod backend;

/// How long a call may take, from connecting to the last body byte, unless the request says.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest response body read (JSON answers and model lists are far smaller).
pub const MAX_BODY_BYTES: u64 = 32 * 1024 * 1024;

/// The HTTP methods the engine uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// GET.
    Get,
    /// POST.
    Post,
    /// PUT.
    Put,
    /// DELETE.
    Delete,
    /// HEAD.
    Head,
}

impl Method {
    /// The method's name on the wire.
    pub fn as_str(&self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
            Method::Head => "HEAD",
        }
    }
}

/// One request: method, URL, headers, optional body and a timeout.
///
/// Its `Debug` output shows header names but never their values, since a header may carry a
/// credential (an API key).
#[derive(Clone)]
pub struct HttpRequest {
    /// The method.
    pub method: Method,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Headers in order, names as given.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Vec<u8>>,
    /// The limit for the whole exchange.
    pub timeout: Duration,
}

impl HttpRequest {
    /// A request without headers or body, with the default timeout.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// A GET of `url`.
    pub fn get(url: impl Into<String>) -> Self {
        HttpRequest::new(Method::Get, url)
    }

    /// A POST of `body` to `url`.
    pub fn post(url: impl Into<String>, body: Vec<u8>) -> Self {
        HttpRequest::new(Method::Post, url).body(body)
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    /// Sets the timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url)
            .field("headers (values hidden)", &names)
            .field("body_bytes", &self.body.as_ref().map(Vec::len))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A complete response, whatever its status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpResponse {
    /// The status code.
    pub status: u16,
    /// Headers in order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The whole body.
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The first header of this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The body as text (invalid UTF-8 replaced).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A call that produced no response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The URL cannot be requested.
    #[error("{url:?} is not a usable http(s) URL: {detail}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        detail: String,
    },
    /// A header name or value cannot be sent (the value is never shown: it may be a secret).
    #[error(
        "the header {name:?} cannot be sent: its name or value has characters HTTP does not allow"
    )]
    InvalidHeader {
        /// The header's name.
        name: String,
    },
    /// No connection: the host is unknown or unreachable, nothing listens, TLS failed, or the
    /// browser refused the request (offline, CORS).
    #[error("could not connect to {url}: {detail}")]
    Connect {
        /// The URL requested.
        url: String,
        /// The system's or browser's reason.
        detail: String,
    },
    /// The exchange took longer than the request's timeout.
    #[error("{url} did not answer within {:.1} s", .after.as_secs_f64())]
    Timeout {
        /// The URL requested.
        url: String,
        /// The timeout that passed.
        after: Duration,
    },
    /// The connection was made but the exchange broke off or was not valid HTTP.
    #[error("the exchange with {url} failed: {detail}")]
    Transfer {
        /// The URL requested.
        url: String,
        /// What went wrong.
        detail: String,
    },
}

/// Sends `request` and reads the whole response (up to [`MAX_BODY_BYTES`]).
///
/// Natively this blocks the calling thread until the response is in (drive it with
/// `pollster::block_on`); in the browser it awaits `fetch`.
pub async fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    if !(request.url.starts_with("http://") || request.url.starts_with("https://")) {
        return Err(HttpError::InvalidUrl {
            url: request.url.clone(),
            detail: "it must start with http:// or https://".into(),
        });
    }
    backend::send(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_hides_header_values() {
        let request = HttpRequest::post("https://example.invalid/x", b"{}".to_vec())
            .header("x-goog-api-key", "secret-value-123");
        let shown = format!("{request:?}");
        assert!(shown.contains("x-goog-api-key"), "{shown}");
        assert!(!shown.contains("secret-value-123"), "{shown}");
    }

    #[test]
    fn response_headers_are_found_case_insensitively() {
        let response = HttpResponse {
            status: 429,
            headers: vec![("retry-after".into(), "7".into())],
            body: Vec::new(),
        };
        assert_eq!(response.header("Retry-After"), Some("7"));
        assert!(!response.is_success());
    }

    #[cfg(not(target_arch = "wasm32"))]
    #[test]
    fn urls_without_a_scheme_are_refused() {
        let error = pollster::block_on(send(&HttpRequest::get("127.0.0.1:9/x"))).unwrap_err();
        assert!(matches!(error, HttpError::InvalidUrl { .. }), "{error}");
    }
}
