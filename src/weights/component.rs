//! The three networks of a Stable Diffusion model, as they sit in a diffusers folder.

use std::fmt;

/// One network of the model: its folder in the diffusers layout, its weights file, and its
/// place in the load order.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Component {
    /// The CLIP text encoder (`text_encoder/`).
    TextEncoder,
    /// The autoencoder (`vae/`).
    Vae,
    /// The denoising UNet (`unet/`).
    Unet,
}

impl Component {
    /// Every component in load order: the small ones first, so that a bad source fails fast
    /// and the 1.7 GB UNet comes last.
    pub const ALL: [Component; 3] = [Component::TextEncoder, Component::Vae, Component::Unet];

    /// The component's folder in the diffusers layout.
    pub fn dir(self) -> &'static str {
        match self {
            Component::TextEncoder => "text_encoder",
            Component::Vae => "vae",
            Component::Unet => "unet",
        }
    }

    /// The weights file name without its extensions: `model` (transformers) or
    /// `diffusion_pytorch_model` (diffusers).
    pub fn weights_stem(self) -> &'static str {
        match self {
            Component::TextEncoder => "model",
            Component::Vae | Component::Unet => "diffusion_pytorch_model",
        }
    }

    /// The weights files a source may hold for this component, relative to the model's root,
    /// in order of preference: the fp16 variant (half the bytes, and f16 → f32 is exact)
    /// before the full-precision file.
    pub fn weights_candidates(self) -> [String; 2] {
        let (dir, stem) = (self.dir(), self.weights_stem());
        [
            format!("{dir}/{stem}.fp16.safetensors"),
            format!("{dir}/{stem}.safetensors"),
        ]
    }

    /// The component's config file, relative to the model's root.
    pub fn config_path(self) -> String {
        format!("{}/config.json", self.dir())
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Component::TextEncoder => "text encoder",
            Component::Vae => "VAE",
            Component::Unet => "UNet",
        })
    }
}
