//! A quantized pack as a model source: the interface only. The pack format (converted tensors
//! with their scheme and scales, and a manifest) comes with the quantization work; until then
//! a pack is recognised and refused with a clear message.

use super::LoadError;

/// A pack by URL or path (`--model pack:<location>`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackSource {
    location: String,
}

impl PackSource {
    /// A pack at `location`.
    pub fn new(location: &str) -> Self {
        PackSource {
            location: location.trim().to_string(),
        }
    }

    /// The source as given.
    pub fn label(&self) -> String {
        format!("pack:{}", self.location)
    }

    pub(super) fn unsupported(&self) -> LoadError {
        LoadError::Unsupported(format!(
            "{}: quantized packs cannot be loaded yet; use the model's diffusers folder or URL",
            self.label()
        ))
    }
}
