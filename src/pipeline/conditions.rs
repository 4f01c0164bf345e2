//! A visual condition as the user gave it: its image file's bytes and, optionally, its mask's
//! (black = keep). Read once, prepared for whichever box the run settles on (the user's, an
//! earlier image's or the planner's), and recorded in the image's parameters by SHA-256. The
//! CLI reads the bytes from files, the app from picked, dropped or pasted files.

use super::params::{sha256_hex, ConditionRecord};
use crate::imaging::{prepare_condition_files, ConditionError, PreparedCondition, SquareBox};

/// One condition's files.
#[derive(Clone, Debug)]
pub struct ConditionFiles {
    /// How errors name it (a path, a file name).
    pub label: String,
    /// The image's file name, recorded for people.
    pub name: Option<String>,
    /// The image file (PNG, JPEG or WebP).
    pub image: Vec<u8>,
    /// The mask file, if any.
    pub mask: Option<Vec<u8>>,
    /// SHA-256 (hex) of `image`.
    pub image_sha256: String,
}

impl ConditionFiles {
    /// A condition from its files' bytes.
    pub fn new(label: &str, name: Option<String>, image: Vec<u8>, mask: Option<Vec<u8>>) -> Self {
        ConditionFiles {
            label: label.to_string(),
            name,
            image_sha256: sha256_hex(&image),
            image,
            mask,
        }
    }

    /// The condition cropped and resized for `placement` (docs/method.md §2.1).
    pub fn prepare(&self, placement: SquareBox) -> Result<PreparedCondition, ConditionError> {
        prepare_condition_files(&self.image, &self.label, self.mask.as_deref(), placement)
    }

    /// What the image's parameters record of it.
    pub fn record(&self, placement: SquareBox) -> ConditionRecord {
        ConditionRecord {
            placement,
            image_sha256: self.image_sha256.clone(),
            mask_sha256: self.mask.as_deref().map(sha256_hex),
            image_name: self.name.clone(),
        }
    }
}
