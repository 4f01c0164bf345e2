//! The parameters an image carries so that it can be made again (docs/method.md §5): model
//! source and revision, method, prompt, seed, every option, and the SHA-256 of each condition's
//! image and mask. Stored as JSON in the PNG text chunk [`PARAMETERS_KEY`]; the CLI's
//! `--params-from` and the app's "reuse these parameters" read it back.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::SourceInfo;
use crate::diffusion::sow::dam::DamOptions;
use crate::diffusion::sow::planner::Plan;
use crate::diffusion::sow::RunOptions;
use crate::imaging::png::{encode_rgb_png_with_text, find_png_text, PngError};
use crate::imaging::SquareBox;

/// The PNG text chunk key of the parameters.
pub const PARAMETERS_KEY: &str = "sow-studio:parameters";
/// The format tag written into every parameter set; bump it when the meaning of a field changes.
pub const FORMAT: &str = "sow-studio/1";

/// Which method made the image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// Cyclic One-Way Diffusion (docs/method.md §2).
    #[default]
    Cow,
    /// Selective One-Way Diffusion (docs/method.md §3).
    Sow,
}

/// One visual condition as recorded: where it was and which files it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConditionRecord {
    /// Its box on the canvas.
    #[serde(rename = "box")]
    pub placement: SquareBox,
    /// SHA-256 (hex) of the image file's bytes.
    pub image_sha256: String,
    /// SHA-256 (hex) of the mask file's bytes, when a mask was given.
    pub mask_sha256: Option<String>,
    /// The image's file name, for people (not used to reproduce).
    pub image_name: Option<String>,
}

/// Everything needed to make an image again.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ImageParameters {
    /// [`FORMAT`].
    pub format: String,
    /// The engine's version.
    pub engine: String,
    /// The model's source.
    pub model: SourceInfo,
    /// COW or SOW.
    pub method: Method,
    /// The prompt the run used (SOW: the intensified prompt).
    pub prompt: String,
    /// The seed; meaningless when `noise_sha256` is set.
    pub seed: u64,
    /// SHA-256 (hex) of the noise file, when the draws were given explicitly.
    pub noise_sha256: Option<String>,
    /// The visual conditions, in paste order.
    pub conditions: Vec<ConditionRecord>,
    /// Every option of the run.
    pub options: RunOptions,
    /// SOW: the plan the run used (prompt, boxes, related regions, where it came from).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// SOW: the attention modulation's options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attention: Option<DamOptions>,
}

impl ImageParameters {
    /// Parameters with this crate's format tag and version.
    pub fn new(
        model: SourceInfo,
        method: Method,
        prompt: &str,
        seed: u64,
        conditions: Vec<ConditionRecord>,
        options: RunOptions,
    ) -> Self {
        ImageParameters {
            format: FORMAT.to_string(),
            engine: env!("CARGO_PKG_VERSION").to_string(),
            model,
            method,
            prompt: prompt.to_string(),
            seed,
            noise_sha256: None,
            conditions,
            options,
            plan: None,
            attention: None,
        }
    }

    /// The JSON stored in the PNG.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("parameters serialize")
    }

    /// Reads parameters back; fails with a clear message on another format or bad JSON.
    pub fn from_json(json: &str) -> Result<Self, ParamsError> {
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| ParamsError::Json(e.to_string()))?;
        match value.get("format").and_then(|f| f.as_str()) {
            Some(FORMAT) => {}
            Some(other) => return Err(ParamsError::Format(other.to_string())),
            None => return Err(ParamsError::Format("none".to_string())),
        }
        serde_json::from_value(value).map_err(|e| ParamsError::Json(e.to_string()))
    }
}

/// An image as a PNG with its parameters in an iTXt chunk under [`PARAMETERS_KEY`], so that
/// the file alone reproduces it (`sow generate --params-from`, the app's "open").
pub fn to_png(rgb: &[u8], side: usize, params: &ImageParameters) -> Result<Vec<u8>, PngError> {
    encode_rgb_png_with_text(rgb, side, side, &[(PARAMETERS_KEY, &params.to_json())])
}

/// The parameters a PNG carries.
pub fn from_png(bytes: &[u8]) -> Result<ImageParameters, ParamsError> {
    let text = find_png_text(bytes, PARAMETERS_KEY)
        .map_err(|e| ParamsError::Png(e.to_string()))?
        .ok_or(ParamsError::Missing)?;
    ImageParameters::from_json(&text)
}

/// Parameters that cannot be read back.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParamsError {
    /// Not valid JSON, or fields missing or of the wrong type.
    #[error("the image's parameters are not readable: {0}")]
    Json(String),
    /// Another format version.
    #[error("the image's parameters are in format {0:?}; this build reads {FORMAT:?}")]
    Format(String),
    /// The file is not a readable PNG.
    #[error("{0}")]
    Png(String),
    /// The PNG has no parameters chunk.
    #[error("the image carries no SOW Studio parameters (no {PARAMETERS_KEY:?} text chunk)")]
    Missing,
}

/// SHA-256 of some bytes, as lower-case hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diffusion::sow::Setting;

    #[test]
    fn parameters_round_trip_and_other_formats_are_named() {
        let params = ImageParameters::new(
            SourceInfo {
                label: "models/sd21".into(),
                revision: Some("abc".into()),
                unet_weights: Some(crate::weights::Scheme::Q8),
            },
            Method::Cow,
            "a person in the forest",
            42,
            vec![ConditionRecord {
                placement: SquareBox::new(128, 0, 256),
                image_sha256: sha256_hex(b"image"),
                mask_sha256: None,
                image_name: Some("face.png".into()),
            }],
            RunOptions::preset(Setting::Normal),
        );
        let json = params.to_json();
        assert!(json.contains("\"box\":{\"x\":128,\"y\":0,\"side\":256}"));
        assert_eq!(ImageParameters::from_json(&json).unwrap(), params);
        // The UNet's scheme is recorded, and parameters written before it was still read.
        assert!(json.contains("\"unet_weights\":\"q8\""), "{json}");
        let older = json.replace(",\"unet_weights\":\"q8\"", "");
        assert_eq!(
            ImageParameters::from_json(&older)
                .unwrap()
                .model
                .unet_weights,
            None
        );
        let other = json.replace(FORMAT, "sow-studio/99");
        assert_eq!(
            ImageParameters::from_json(&other),
            Err(ParamsError::Format("sow-studio/99".into()))
        );
        assert!(matches!(
            ImageParameters::from_json("{"),
            Err(ParamsError::Json(_))
        ));
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let rgb: Vec<u8> = (0..8 * 8 * 3).map(|i| i as u8).collect();
        let png = to_png(&rgb, 8, &params).unwrap();
        assert_eq!(from_png(&png), Ok(params));
        let bare = crate::imaging::png::encode_rgb_png(&rgb, 8, 8).unwrap();
        assert_eq!(from_png(&bare), Err(ParamsError::Missing));
        assert!(matches!(from_png(b"GIF89a"), Err(ParamsError::Png(_))));
    }
}
