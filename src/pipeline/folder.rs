//! A diffusers model folder on disk (`text_encoder/`, `tokenizer/`, `scheduler/`, …): the
//! native way in. Each component's `config.json` is optional (SD-2.1-base's values are the
//! default); its weights are `model.safetensors` / `diffusion_pytorch_model.safetensors` or
//! the `*.fp16.safetensors` variant, read tensor by tensor.

use std::path::{Path, PathBuf};

use burn::tensor::Device;

use crate::model::clip::ClipTextEncoder;
use crate::model::config::{
    ConfigError, SchedulerConfig, TextEncoderConfig, UNetConfig, VaeConfig,
};
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::tokenizer::ClipTokenizer;
use crate::weights::{find_weights_file, FileSource, TensorLoader};

pub use super::LoadError;

/// A diffusers-layout folder, e.g. a local copy of stable-diffusion-2-1-base.
#[derive(Clone, Debug)]
pub struct ModelFolder {
    root: PathBuf,
}

impl ModelFolder {
    /// Opens a folder; fails if it is not a directory.
    pub fn open(root: impl AsRef<Path>) -> Result<Self, LoadError> {
        let root = root.as_ref().to_path_buf();
        if !root.is_dir() {
            return Err(LoadError::Io {
                path: root.display().to_string(),
                detail: "not a directory".to_string(),
            });
        }
        Ok(ModelFolder { root })
    }

    /// The folder's path.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn read(&self, relative: &str) -> Result<Option<String>, LoadError> {
        let path = self.root.join(relative);
        if !path.exists() {
            return Ok(None);
        }
        std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| LoadError::Io {
                path: path.display().to_string(),
                detail: e.to_string(),
            })
    }

    /// A component's config file parsed, or the built-in SD-2.1 default when it is absent.
    fn config<T>(
        &self,
        relative: &str,
        parse: fn(&str, &str) -> Result<T, ConfigError>,
        default: fn() -> T,
    ) -> Result<T, LoadError> {
        match self.read(relative)? {
            Some(json) => Ok(parse(&self.label(relative), &json)?),
            None => Ok(default()),
        }
    }

    fn read_required(&self, relative: &str) -> Result<String, LoadError> {
        self.read(relative)?.ok_or_else(|| LoadError::Io {
            path: self.root.join(relative).display().to_string(),
            detail: "file not found".to_string(),
        })
    }

    /// `text_encoder/config.json`, or SD-2.1-base's when absent.
    pub fn text_encoder_config(&self) -> Result<TextEncoderConfig, LoadError> {
        self.config(
            "text_encoder/config.json",
            TextEncoderConfig::from_json,
            TextEncoderConfig::sd21,
        )
    }

    /// `scheduler/scheduler_config.json`, or SD-2.1-base's when absent.
    pub fn scheduler_config(&self) -> Result<SchedulerConfig, LoadError> {
        self.config(
            "scheduler/scheduler_config.json",
            SchedulerConfig::from_json,
            SchedulerConfig::sd21,
        )
    }

    /// The tokenizer from `tokenizer/vocab.json` and `tokenizer/merges.txt`.
    pub fn tokenizer(&self) -> Result<ClipTokenizer, LoadError> {
        let vocab = self.read_required("tokenizer/vocab.json")?;
        let merges = self.read_required("tokenizer/merges.txt")?;
        Ok(ClipTokenizer::from_files(&vocab, &merges)?)
    }

    /// The text encoder on `device`.
    pub fn text_encoder(&self, device: &Device) -> Result<ClipTextEncoder, LoadError> {
        let config = self.text_encoder_config()?;
        let mut loader = self.open_weights("text_encoder", "model", device)?;
        Ok(ClipTextEncoder::load(&config, &mut loader)?)
    }

    /// `unet/config.json`, or SD-2.1-base's when absent.
    pub fn unet_config(&self) -> Result<UNetConfig, LoadError> {
        self.config("unet/config.json", UNetConfig::from_json, UNetConfig::sd21)
    }

    /// `vae/config.json`, or SD-2.1-base's when absent.
    pub fn vae_config(&self) -> Result<VaeConfig, LoadError> {
        self.config("vae/config.json", VaeConfig::from_json, VaeConfig::sd21)
    }

    /// The UNet on `device`.
    pub fn unet(&self, device: &Device) -> Result<UNet, LoadError> {
        let config = self.unet_config()?;
        let mut loader = self.open_weights("unet", "diffusion_pytorch_model", device)?;
        Ok(UNet::load(&config, &mut loader)?)
    }

    /// The VAE on `device`.
    pub fn vae(&self, device: &Device) -> Result<Vae, LoadError> {
        let config = self.vae_config()?;
        let mut loader = self.open_weights("vae", "diffusion_pytorch_model", device)?;
        Ok(Vae::load(&config, &mut loader)?)
    }

    /// Every component a run needs, on `device`.
    pub fn load_models(&self, device: &Device) -> Result<super::Models, LoadError> {
        Ok(super::Models {
            tokenizer: self.tokenizer()?,
            text_encoder: self.text_encoder(device)?,
            unet: self.unet(device)?,
            vae: self.vae(device)?,
            scheduler: self.scheduler_config()?,
            device: device.clone(),
            source: super::SourceInfo {
                label: self.root.display().to_string(),
                revision: None,
                // This loader reads tensors as they are stored, in f32.
                unet_weights: Some(crate::weights::Scheme::F32),
            },
        })
    }

    fn open_weights(
        &self,
        component: &str,
        stem: &str,
        device: &Device,
    ) -> Result<TensorLoader<FileSource>, LoadError> {
        let path = find_weights_file(&self.root.join(component), stem)?;
        Ok(TensorLoader::open(
            &path.display().to_string(),
            FileSource::open(&path)?,
            device,
        )?)
    }

    fn label(&self, relative: &str) -> String {
        self.root.join(relative).display().to_string()
    }
}
