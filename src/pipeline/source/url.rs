//! A model at a base URL in the diffusers layout (`<base>/unet/config.json`, …). A URL cannot
//! list its files, so the weights are asked for by name: the fp16 variant first, the
//! full-precision file on a 404 (a GET, never a HEAD).

use super::LoadError;
use crate::net::stream::{self, FetchError, HttpBody};

/// A base URL, e.g. `https://huggingface.co/<owner>/stable-diffusion-2-1-base/resolve/<commit>/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UrlSource {
    base: String,
}

impl UrlSource {
    /// The source at `base` (a trailing `/` is added when missing).
    pub fn new(base: &str) -> Self {
        let mut base = base.trim().to_string();
        if !base.ends_with('/') {
            base.push('/');
        }
        UrlSource { base }
    }

    /// The base URL, ending in `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The URL of a file of the layout.
    pub fn url_of(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The revision a hub URL pins: the segment after `/resolve/`, when it is not a branch
    /// name such as `main` (a branch moves; a commit does not).
    pub fn revision(&self) -> Option<String> {
        let mut parts = self.base.split('/');
        parts.find(|p| *p == "resolve")?;
        let revision = parts.next()?;
        let is_commit = revision.len() >= 7 && revision.chars().all(|c| c.is_ascii_hexdigit());
        is_commit.then(|| revision.to_string())
    }

    pub(super) async fn text(&self, path: &str) -> Result<Option<String>, LoadError> {
        let url = self.url_of(path);
        match stream::get_all(&url).await {
            Ok(bytes) => String::from_utf8(bytes)
                .map(Some)
                .map_err(|_| LoadError::Io {
                    path: url,
                    detail: "the file is not UTF-8 text".to_string(),
                }),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub(super) async fn open(
        &self,
        path: &str,
        offset: u64,
    ) -> Result<Option<HttpBody>, LoadError> {
        match stream::get_from(&self.url_of(path), offset).await {
            Ok(body) => Ok(Some(body)),
            Err(FetchError::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::UrlSource;

    #[test]
    fn revisions_are_commits_after_resolve() {
        let pinned = UrlSource::new(
            "https://huggingface.co/o/m/resolve/4e63672c03103b6c636b8fb4119ba982469b2955",
        );
        assert_eq!(
            pinned.revision().as_deref(),
            Some("4e63672c03103b6c636b8fb4119ba982469b2955")
        );
        assert_eq!(pinned.url_of("unet/config.json"), "https://huggingface.co/o/m/resolve/4e63672c03103b6c636b8fb4119ba982469b2955/unet/config.json");
        assert_eq!(
            UrlSource::new("https://huggingface.co/o/m/resolve/main/").revision(),
            None
        );
        assert_eq!(
            UrlSource::new("http://127.0.0.1:8080/tiny-sd2").revision(),
            None
        );
    }
}
