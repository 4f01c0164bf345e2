//! Streamed downloads: a GET of a URL from a byte offset, read chunk by chunk in order, so
//! that a multi-gigabyte weights file never sits in memory (docs/weights.md, "Streaming").
//!
//! From offset N > 0 the request carries one header, `Range: bytes=N-`: a single open range
//! is a CORS-safelisted header, so a browser sends it without a preflight, and nothing else is
//! added (no HEAD requests, no custom headers: some mirrors redirect to hosts that refuse
//! preflights). A `206 Partial Content` answer continues at N; a `200 OK` means the server
//! ignored the range, and the body is read from the start with the first N bytes skipped.
//! Redirects are followed.
//!
//! Natively the request is made with `ureq` (small, synchronous, no async runtime: the async
//! functions here block, driven by `pollster`); in the browser with `fetch` through
//! `gloo-net`, the body read from its `ReadableStream` (never `arrayBuffer()`, which would
//! hold the whole file).

#[cfg(not(target_arch = "wasm32"))]
mod native;
#[cfg(target_arch = "wasm32")]
mod web;

#[cfg(not(target_arch = "wasm32"))]
use native as imp;
#[cfg(target_arch = "wasm32")]
use web as imp;

use crate::weights::reader::ChunkStream;

/// Why a download could not start (or was answered wrongly).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FetchError {
    /// The server has no such file.
    #[error("{url} was not found (HTTP {status})")]
    NotFound {
        /// The URL as requested.
        url: String,
        /// 404 or 410.
        status: u16,
    },
    /// Any other unsuccessful status.
    #[error("{url}: the server answered HTTP {status}{}", reason_suffix(.reason))]
    Status {
        /// The URL as requested.
        url: String,
        /// The status code.
        status: u16,
        /// The reason phrase, when there is one.
        reason: String,
    },
    /// No answer at all: the address, the connection, or (in a browser) a CORS refusal.
    #[error("{url} cannot be reached: {detail}")]
    Network {
        /// The URL as requested.
        url: String,
        /// What failed.
        detail: String,
    },
    /// The server answered a range request with a range other than the one asked for.
    #[error("{url}: asked for the bytes from {offset} on, the server answered {detail}")]
    BadRange {
        /// The URL as requested.
        url: String,
        /// The offset asked for.
        offset: u64,
        /// What came back.
        detail: String,
    },
}

fn reason_suffix(reason: &str) -> String {
    if reason.is_empty() {
        String::new()
    } else {
        format!(" {reason}")
    }
}

impl FetchError {
    /// Whether the file simply is not there (a source may then try another name).
    pub fn is_not_found(&self) -> bool {
        matches!(self, FetchError::NotFound { .. })
    }
}

/// What the response said about the body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BodyInfo {
    /// The whole file's length, when the server gave it (`Content-Length` of a 200, the total
    /// of a 206's `Content-Range`).
    pub file_len: Option<u64>,
    /// The media type, e.g. `text/html` for a web page where a file was expected.
    pub content_type: Option<String>,
    /// Whether a range was asked for and the server sent the whole file instead.
    pub range_ignored: bool,
}

/// A body being downloaded: its chunks come in file order starting at the requested offset.
pub struct HttpBody {
    inner: imp::Body,
    info: BodyInfo,
    /// Bytes still to drop before the requested offset (when the range was ignored).
    skip: u64,
    transferred: u64,
}

impl HttpBody {
    /// What the response said.
    pub fn info(&self) -> &BodyInfo {
        &self.info
    }

    /// Bytes that came over the network so far, skipped ones included.
    pub fn transferred(&self) -> u64 {
        self.transferred
    }
}

impl ChunkStream for HttpBody {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        loop {
            let Some(mut chunk) = self.inner.next_chunk().await? else {
                return Ok(None);
            };
            self.transferred += chunk.len() as u64;
            if self.skip >= chunk.len() as u64 {
                self.skip -= chunk.len() as u64;
                continue;
            }
            if self.skip > 0 {
                chunk.drain(..self.skip as usize);
                self.skip = 0;
            }
            return Ok(Some(chunk));
        }
    }
}

/// What a server answered, before its body is read.
pub(crate) struct Head {
    pub status: u16,
    pub reason: String,
    pub content_length: Option<u64>,
    pub content_range: Option<String>,
    pub content_type: Option<String>,
}

/// GETs `url` from byte `offset` on (see the module's documentation for the protocol).
pub async fn get_from(url: &str, offset: u64) -> Result<HttpBody, FetchError> {
    let (head, inner) = imp::get(url, offset).await?;
    let info = |file_len, range_ignored| BodyInfo {
        file_len,
        content_type: head.content_type.clone(),
        range_ignored,
    };
    match head.status {
        200 => Ok(HttpBody {
            inner,
            info: info(head.content_length, offset > 0),
            skip: offset,
            transferred: 0,
        }),
        206 => {
            // A cross-origin response shows `Content-Range` only where the server exposes it;
            // without it, a 206 to a single open range starts where it was asked to.
            let (start, total) = match head.content_range.as_deref() {
                None => (offset, head.content_length.map(|len| offset + len)),
                Some(range) => parse_content_range(range).ok_or_else(|| FetchError::BadRange {
                    url: url.to_string(),
                    offset,
                    detail: format!("206 with an unreadable Content-Range {range:?}"),
                })?,
            };
            let range = head.content_range.as_deref().unwrap_or("");
            if start != offset {
                return Err(FetchError::BadRange {
                    url: url.to_string(),
                    offset,
                    detail: format!("the bytes from {start} on (Content-Range {range:?})"),
                });
            }
            Ok(HttpBody {
                inner,
                info: info(total, false),
                skip: 0,
                transferred: 0,
            })
        }
        404 | 410 => Err(FetchError::NotFound {
            url: url.to_string(),
            status: head.status,
        }),
        416 => Err(FetchError::BadRange {
            url: url.to_string(),
            offset,
            detail: "416 Range Not Satisfiable: the file is shorter than that".to_string(),
        }),
        status => Err(FetchError::Status {
            url: url.to_string(),
            status,
            reason: head.reason,
        }),
    }
}

/// A whole (small) file, such as a tokenizer or config file.
pub async fn get_all(url: &str) -> Result<Vec<u8>, FetchError> {
    let mut body = get_from(url, 0).await?;
    let mut out = Vec::new();
    while let Some(chunk) = body
        .next_chunk()
        .await
        .map_err(|detail| FetchError::Network {
            url: url.to_string(),
            detail,
        })?
    {
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `bytes START-END/TOTAL` (TOTAL may be `*`) to (START, TOTAL).
fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, _end) = range.trim().split_once('-')?;
    let total = match total.trim() {
        "*" => None,
        n => Some(n.parse().ok()?),
    };
    Some((start.trim().parse().ok()?, total))
}

#[cfg(test)]
mod tests {
    use super::parse_content_range;

    #[test]
    fn content_ranges_parse() {
        assert_eq!(
            parse_content_range("bytes 100-199/1000"),
            Some((100, Some(1000)))
        );
        assert_eq!(parse_content_range("bytes 0-0/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes */1000"), None);
        assert_eq!(parse_content_range("items 1-2/3"), None);
    }
}
