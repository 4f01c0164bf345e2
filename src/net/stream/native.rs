//! Streamed GETs natively, with ureq (blocking reads inside async functions).

use std::io::Read;
use std::sync::OnceLock;
use std::time::Duration;

use super::{FetchError, Head};

/// Bytes asked of the socket per read.
const READ_CHUNK: usize = 256 << 10;

/// One agent per process: it keeps connections and TLS sessions.
fn agent() -> &'static ureq::Agent {
    static AGENT: OnceLock<ureq::Agent> = OnceLock::new();
    AGENT.get_or_init(|| {
        let config = ureq::Agent::config_builder()
            // Statuses are answers to interpret here, not transport errors.
            .http_status_as_error(false)
            .max_redirects(10)
            .timeout_connect(Some(Duration::from_secs(30)))
            .timeout_recv_response(Some(Duration::from_secs(60)))
            // A stalled transfer fails (and can be resumed) rather than hanging forever.
            .timeout_per_read(Some(Duration::from_secs(60)))
            .build();
        ureq::Agent::new_with_config(config)
    })
}

/// A response body being read.
pub(crate) struct Body {
    reader: ureq::BodyReader<'static>,
}

impl Body {
    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            match self.reader.read(&mut buffer) {
                Ok(0) => return Ok(None),
                Ok(n) => {
                    buffer.truncate(n);
                    return Ok(Some(buffer));
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        }
    }
}

pub(crate) async fn get(url: &str, offset: u64) -> Result<(Head, Body), FetchError> {
    let mut request = agent().get(url);
    if offset > 0 {
        request = request.header("Range", format!("bytes={offset}-"));
    }
    let response = request.call().map_err(|e| FetchError::Network {
        url: url.to_string(),
        detail: e.to_string(),
    })?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let head = Head {
        status: response.status().as_u16(),
        reason: response
            .status()
            .canonical_reason()
            .unwrap_or_default()
            .to_string(),
        content_length: header("content-length").and_then(|v| v.trim().parse().ok()),
        content_range: header("content-range"),
        content_type: header("content-type"),
    };
    let reader = response.into_body().into_reader();
    Ok((head, Body { reader }))
}
