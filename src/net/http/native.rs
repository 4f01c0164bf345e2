//! [`super::send`] natively: one shared `ureq` agent (connection pool, TLS set-up once), the
//! request's timeout applied per request, 4xx/5xx returned as responses.

use std::io::ErrorKind;
use std::sync::OnceLock;

use ureq::http::{self, HeaderName, HeaderValue, Uri};
use ureq::AsSendBody;

use super::{HttpError, HttpRequest, HttpResponse, MAX_BODY_BYTES};

/// The agent every call shares.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
    })
}

pub(super) async fn send(request: &HttpRequest) -> Result<HttpResponse, HttpError> {
    let uri: Uri =
        request
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| HttpError::InvalidUrl {
                url: request.url.clone(),
                detail: e.to_string(),
            })?;
    let mut builder = http::Request::builder()
        .method(request.method.as_str())
        .uri(uri);
    for (name, value) in &request.headers {
        let invalid = || HttpError::InvalidHeader { name: name.clone() };
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid())?;
        let mut value = HeaderValue::from_str(value).map_err(|_| invalid())?;
        // Keeps the value out of any logging the http stack does.
        value.set_sensitive(true);
        builder = builder.header(name, value);
    }
    match &request.body {
        Some(body) => exchange(request, builder, body.as_slice()),
        None => exchange(request, builder, ()),
    }
}

/// Runs one exchange and reads the whole body.
fn exchange(
    request: &HttpRequest,
    builder: http::request::Builder,
    body: impl AsSendBody,
) -> Result<HttpResponse, HttpError> {
    let agent = agent();
    let prepared = builder.body(body).map_err(|e| HttpError::InvalidUrl {
        url: request.url.clone(),
        detail: e.to_string(),
    })?;
    let prepared = agent
        .configure_request(prepared)
        .timeout_global(Some(request.timeout))
        .build();
    let response = agent.run(prepared).map_err(|e| classify(request, e))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_ascii_lowercase(), value)
        })
        .collect();
    let body = response
        .into_body()
        .into_with_config()
        .limit(MAX_BODY_BYTES)
        .read_to_vec()
        .map_err(|e| classify(request, e))?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

/// Sorts ureq's errors into the cases callers act on.
fn classify(request: &HttpRequest, error: ureq::Error) -> HttpError {
    let url = request.url.clone();
    match error {
        ureq::Error::Timeout(_) => HttpError::Timeout {
            url,
            after: request.timeout,
        },
        ureq::Error::Io(e) if matches!(e.kind(), ErrorKind::TimedOut | ErrorKind::WouldBlock) => {
            HttpError::Timeout {
                url,
                after: request.timeout,
            }
        }
        ureq::Error::Io(e)
            if matches!(
                e.kind(),
                ErrorKind::ConnectionRefused
                    | ErrorKind::AddrNotAvailable
                    | ErrorKind::NetworkUnreachable
                    | ErrorKind::HostUnreachable
                    | ErrorKind::NetworkDown
            ) =>
        {
            HttpError::Connect {
                url,
                detail: e.to_string(),
            }
        }
        ureq::Error::HostNotFound => HttpError::Connect {
            url,
            detail: "the host name was not found (DNS)".into(),
        },
        ureq::Error::ConnectionFailed => HttpError::Connect {
            url,
            detail: "no connection could be made".into(),
        },
        ureq::Error::Tls(reason) => HttpError::Connect {
            url,
            detail: format!("TLS failed: {reason}"),
        },
        ureq::Error::Rustls(e) => HttpError::Connect {
            url,
            detail: format!("TLS failed: {e}"),
        },
        ureq::Error::BadUri(detail) => HttpError::InvalidUrl { url, detail },
        ureq::Error::BodyExceedsLimit(limit) => HttpError::Transfer {
            url,
            detail: format!("the response is larger than {limit} bytes"),
        },
        other => HttpError::Transfer {
            url,
            detail: other.to_string(),
        },
    }
}
