//! The loaded components a run needs, on one device, and where they came from.

use burn::tensor::Device;

use crate::model::clip::ClipTextEncoder;
use crate::model::config::SchedulerConfig;
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::tokenizer::ClipTokenizer;
use crate::weights::Scheme;

/// Where a model came from, recorded in every image's parameters so that it can be reproduced.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SourceInfo {
    /// The source as the user gave it (a folder, a URL, a pack).
    pub label: String,
    /// The revision (a commit or a pack checksum) when the source names one.
    pub revision: Option<String>,
    /// How the UNet's weights were kept on the device (docs/quantization.md): the same seed
    /// makes slightly different images in f32, 8-bit and 4-bit. None in parameters written
    /// before this was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unet_weights: Option<Scheme>,
}

/// Everything a COW/SOW run uses, loaded on one device.
pub struct Models {
    /// CLIP's BPE tokenizer.
    pub tokenizer: ClipTokenizer,
    /// The CLIP text encoder.
    pub text_encoder: ClipTextEncoder,
    /// The denoising UNet.
    pub unet: UNet,
    /// The autoencoder.
    pub vae: Vae,
    /// The noise schedule.
    pub scheduler: SchedulerConfig,
    /// The device every component lives on.
    pub device: Device,
    /// Where the weights came from.
    pub source: SourceInfo,
}
