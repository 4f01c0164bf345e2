//! The user's Gemini API key, kept out of every log, message and file: its `Debug` and
//! `Display` print a placeholder, it has no serde, and text that came back from the server is
//! passed through [`ApiKey::redact`] before it reaches an error message (Gemini's own messages
//! can quote the key, e.g. "Consumer 'api_key:…' has been suspended").

use std::fmt;

/// What [`ApiKey`] prints instead of itself.
pub const REDACTED: &str = "<redacted>";

/// The environment variable the command line reads the key from (never an argument: those show
/// in process lists).
pub const KEY_VARIABLE: &str = "GEMINI_API_KEY";

/// A key that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Nothing was given.
    #[error("the Gemini API key is empty: paste the key from Google AI Studio (aistudio.google.com/apikey)")]
    Empty,
    /// The key has characters an HTTP header cannot carry (the key itself is not shown).
    #[error("the Gemini API key has spaces or characters that are not printable ASCII: check that it was pasted whole and alone")]
    Malformed,
}

/// A Gemini API key. Sent only in the `x-goog-api-key` header of requests to the configured
/// endpoint; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// A key from text (surrounding whitespace removed).
    pub fn new(key: &str) -> Result<Self, KeyError> {
        let key = key.trim();
        if key.is_empty() {
            return Err(KeyError::Empty);
        }
        if !key.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(KeyError::Malformed);
        }
        Ok(ApiKey(key.to_owned()))
    }

    /// The key in `GEMINI_API_KEY`, or None when the variable is unset or empty.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn from_env() -> Result<Option<Self>, KeyError> {
        match std::env::var(KEY_VARIABLE) {
            Ok(value) if value.trim().is_empty() => Ok(None),
            Ok(value) => ApiKey::new(&value).map(Some),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(KeyError::Malformed),
        }
    }

    /// The key itself, for the request header only.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }

    /// `text` with every occurrence of the key replaced by [`REDACTED`].
    pub fn redact(&self, text: &str) -> String {
        text.replace(&self.0, REDACTED)
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({REDACTED})")
    }
}

impl fmt::Display for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_never_prints() {
        let key = ApiKey::new("  AIzaSyExample-Key_0123  ").unwrap();
        assert_eq!(key.expose(), "AIzaSyExample-Key_0123");
        for shown in [format!("{key}"), format!("{key:?}"), format!("{key:#?}")] {
            assert!(!shown.contains("AIza"), "{shown}");
        }
        assert_eq!(
            key.redact("Consumer 'api_key:AIzaSyExample-Key_0123' has been suspended."),
            "Consumer 'api_key:<redacted>' has been suspended."
        );
    }

    #[test]
    fn unusable_keys_are_refused_without_echo() {
        assert_eq!(ApiKey::new(" \n").unwrap_err(), KeyError::Empty);
        let error = ApiKey::new("AIza secret").unwrap_err();
        assert_eq!(error, KeyError::Malformed);
        assert!(!error.to_string().contains("secret"));
    }
}
