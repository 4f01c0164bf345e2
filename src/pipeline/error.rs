//! Everything that can stop a model from loading, as one error with one clear message each.

use crate::model::config::ConfigError;
use crate::net::stream::FetchError;
use crate::tokenizer::TokenizerError;
use crate::weights::cache::CacheError;
use crate::weights::{Component, WeightError};

/// Anything that stops a model (or one of its components) from loading.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A config file is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A weights file is missing or bad.
    #[error(transparent)]
    Weights(#[from] WeightError),
    /// The tokenizer files are bad.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// A file could not be read.
    #[error("{path}: {detail}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        detail: String,
    },
    /// A download failed (not found, refused, a server error).
    #[error("{0}")]
    Fetch(#[from] FetchError),
    /// The source lacks a file every model needs.
    #[error("{source_label} has no {what}: {detail}")]
    Missing {
        /// The source.
        source_label: String,
        /// What is missing, in words ("UNet weights", "tokenizer/vocab.json").
        what: String,
        /// What was tried, and what to check.
        detail: String,
    },
    /// The cache cannot be used where it is required (`sow pull`).
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// A pack's manifest is missing, malformed, or from another build's conversion.
    #[error("{pack} is not a usable pack: {detail}")]
    BadPack {
        /// The pack, as given.
        pack: String,
        /// What is wrong.
        detail: String,
    },
    /// The source cannot be used this way (a malformed `--model`).
    #[error("{0}")]
    Unsupported(String),
}

impl LoadError {
    /// A component's weights are not in the source.
    pub(crate) fn missing_weights(
        source_label: &str,
        component: Component,
        tried: &[String],
    ) -> Self {
        LoadError::Missing {
            source_label: source_label.to_string(),
            what: format!("{component} weights"),
            detail: format!(
                "neither {} was found; the source must be the root of a diffusers-layout model \
                 (with text_encoder/, tokenizer/, unet/ and vae/)",
                tried.join(" nor ")
            ),
        }
    }
}
