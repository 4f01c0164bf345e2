//! [`super::send`] in the browser: gloo-net over the page's `fetch`, with an `AbortSignal`
//! that fires when the request's timeout passes (fetch itself never times out).

use gloo_net::http::{Method as FetchMethod, RequestBuilder};

use super::{HttpError, HttpRequest, HttpResponse, Method, MAX_BODY_BYTES};

pub(super) async fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let url = request.url.clone();
    let millis = request.timeout.as_millis().min(u32::MAX as u128) as u32;
    let signal = web_sys::AbortSignal::timeout_with_u32(millis);
    let mut builder = RequestBuilder::new(&request.url)
        .method(method(request.method))
        .abort_signal(Some(&signal));
    for (name, value) in &request.headers {
        builder = builder.header(name, value);
    }
    let prepared = match &request.body {
        Some(body) => builder.body(js_sys::Uint8Array::from(body.as_slice())),
        None => builder.build(),
    }
    .map_err(|e| HttpError::InvalidUrl {
        url: url.clone(),
        detail: e.to_string(),
    })?;
    let response = prepared
        .send()
        .await
        .map_err(|e| classify(request, e, Stage::Connect))?;
    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .map(|(name, value)| (name.to_ascii_lowercase(), value))
        .collect();
    let body = response
        .binary()
        .await
        .map_err(|e| classify(request, e, Stage::Body))?;
    if body.len() as u64 > MAX_BODY_BYTES {
        return Err(HttpError::Transfer {
            url,
            detail: format!("the response is larger than {MAX_BODY_BYTES} bytes"),
        });
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn method(method: Method) -> FetchMethod {
    match method {
        Method::Get => FetchMethod::GET,
        Method::Post => FetchMethod::POST,
        Method::Put => FetchMethod::PUT,
        Method::Delete => FetchMethod::DELETE,
        Method::Head => FetchMethod::HEAD,
    }
}

/// Where a fetch failed: before a response came (network, CORS) or while reading its body.
enum Stage {
    Connect,
    Body,
}

/// A timeout shows as the abort signal's `TimeoutError` (or `AbortError`); anything else before
/// the response is the browser's "failed to fetch" (offline, refused, CORS).
fn classify(request: &HttpRequest, error: gloo_net::Error, stage: Stage) -> HttpError {
    let url = request.url.clone();
    if let gloo_net::Error::JsError(js) = &error {
        if js.name == "TimeoutError" || js.name == "AbortError" {
            return HttpError::Timeout {
                url,
                after: request.timeout,
            };
        }
    }
    let detail = error.to_string();
    match stage {
        Stage::Connect => HttpError::Connect { url, detail },
        Stage::Body => HttpError::Transfer { url, detail },
    }
}
