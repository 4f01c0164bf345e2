//! A quantized pack as a model source (docs/weights.md, "Packs"): a folder made by `sow pack`,
//! on this machine, at a URL, or picked in the browser. It is read like the place it is in;
//! what makes it a pack is its `pack.json`, which the load reads first
//! ([`crate::weights::pack`]).

use super::ModelSource;

/// A pack: where its files are (`--model pack:<URL or path>`).
pub struct PackSource {
    files: Box<ModelSource>,
}

impl PackSource {
    /// The pack whose files are at `files` (a folder, a base URL or picked files).
    pub fn new(files: ModelSource) -> Self {
        PackSource {
            files: Box::new(files),
        }
    }

    /// Where its files are.
    pub(super) fn files(&self) -> &ModelSource {
        &self.files
    }

    /// The source as given: `pack:` and the location.
    pub fn label(&self) -> String {
        format!("pack:{}", self.files.label())
    }
}
