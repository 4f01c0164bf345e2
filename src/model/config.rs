//! Model configurations, read from the diffusers `config.json` of each component, with
//! Stable Diffusion 2.1-base as the built-in default (docs/method.md §1.1).
//!
//! Only the keys the engine uses are read; anything missing takes SD-2.1-base's value, so a
//! partial config (or none) still describes a working model.

use serde::Deserialize;

/// A config file that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// The JSON does not parse or has a key of the wrong type.
    #[error("{file}: {detail}")]
    Parse {
        /// File label.
        file: String,
        /// The parser's message.
        detail: String,
    },
    /// The values parse but describe something the engine does not support.
    #[error("{file}: {detail}")]
    Unsupported {
        /// File label.
        file: String,
        /// What is unsupported.
        detail: String,
    },
}

fn parse<T: for<'de> Deserialize<'de>>(file: &str, json: &str) -> Result<T, ConfigError> {
    serde_json::from_str(json).map_err(|e| ConfigError::Parse {
        file: file.to_string(),
        detail: e.to_string(),
    })
}

/// The CLIP text transformer as SD-2.x stores it (`text_encoder/config.json`, transformers'
/// `CLIPTextConfig`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct TextEncoderConfig {
    /// Vocabulary size (49408 for CLIP's BPE).
    pub vocab_size: usize,
    /// Width of the residual stream.
    pub hidden_size: usize,
    /// Width of the feed-forward layer.
    pub intermediate_size: usize,
    /// Transformer layers: 23 in SD-2.x (OpenCLIP-H's 24 less the last).
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// Positions (the 77-token context).
    pub max_position_embeddings: usize,
    /// Activation of the feed-forward layer: "gelu" (SD-2.x) or "quick_gelu" (SD-1.x).
    pub hidden_act: String,
    /// Epsilon of every layer norm.
    pub layer_norm_eps: f64,
}

impl Default for TextEncoderConfig {
    fn default() -> Self {
        Self::sd21()
    }
}

impl TextEncoderConfig {
    /// SD-2.1-base's text encoder.
    pub fn sd21() -> Self {
        TextEncoderConfig {
            vocab_size: 49408,
            hidden_size: 1024,
            intermediate_size: 4096,
            num_hidden_layers: 23,
            num_attention_heads: 16,
            max_position_embeddings: 77,
            hidden_act: "gelu".to_string(),
            layer_norm_eps: 1e-5,
        }
    }

    /// Reads `text_encoder/config.json`; `file` labels errors.
    pub fn from_json(file: &str, json: &str) -> Result<Self, ConfigError> {
        let config: Self = parse(file, json)?;
        config.validate(file)?;
        Ok(config)
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let unsupported = |detail: String| ConfigError::Unsupported {
            file: file.to_string(),
            detail,
        };
        if !matches!(self.hidden_act.as_str(), "gelu" | "quick_gelu") {
            return Err(unsupported(format!(
                "hidden_act {:?} is not supported (gelu or quick_gelu)",
                self.hidden_act
            )));
        }
        if self.num_attention_heads == 0 || self.hidden_size % self.num_attention_heads != 0 {
            return Err(unsupported(format!(
                "hidden_size {} is not divisible by num_attention_heads {}",
                self.hidden_size, self.num_attention_heads
            )));
        }
        Ok(())
    }
}

/// The noise schedule (`scheduler/scheduler_config.json`). SD-2.1-base ships a PNDM config;
/// the keys DDIM needs are the same.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct SchedulerConfig {
    /// Training timesteps (1000).
    pub num_train_timesteps: usize,
    /// First beta.
    pub beta_start: f64,
    /// Last beta.
    pub beta_end: f64,
    /// "scaled_linear" (SD) or "linear".
    pub beta_schedule: String,
    /// What the UNet predicts; only "epsilon" (SD-2.1-base) is supported.
    pub prediction_type: String,
    /// Whether the predicted clean sample is clipped (false for SD).
    pub clip_sample: bool,
    /// Clipping range when `clip_sample` is set.
    pub clip_sample_range: f64,
    /// Whether the level after the last step is ᾱ = 1 (false for SD: it is ᾱ_0).
    pub set_alpha_to_one: bool,
    /// Added to every inference timestep (1 for SD).
    pub steps_offset: usize,
    /// "leading" (the default when the key is absent, as in SD-2.1), "trailing" or "linspace".
    pub timestep_spacing: String,
}

impl Default for SchedulerConfig {
    fn default() -> Self {
        Self::sd21()
    }
}

impl SchedulerConfig {
    /// SD-2.1-base's schedule (docs/method.md §1.1).
    pub fn sd21() -> Self {
        SchedulerConfig {
            num_train_timesteps: 1000,
            beta_start: 0.00085,
            beta_end: 0.012,
            beta_schedule: "scaled_linear".to_string(),
            prediction_type: "epsilon".to_string(),
            clip_sample: false,
            clip_sample_range: 1.0,
            set_alpha_to_one: false,
            steps_offset: 1,
            timestep_spacing: "leading".to_string(),
        }
    }

    /// Reads `scheduler/scheduler_config.json`; `file` labels errors.
    pub fn from_json(file: &str, json: &str) -> Result<Self, ConfigError> {
        let config: Self = parse(file, json)?;
        let unsupported = |detail: String| ConfigError::Unsupported {
            file: file.to_string(),
            detail,
        };
        if !matches!(config.beta_schedule.as_str(), "scaled_linear" | "linear") {
            return Err(unsupported(format!(
                "beta_schedule {:?} is not supported (scaled_linear or linear)",
                config.beta_schedule
            )));
        }
        if config.prediction_type != "epsilon" {
            return Err(unsupported(format!(
                "prediction_type {:?} is not supported (epsilon, as SD-2.1-base)",
                config.prediction_type
            )));
        }
        if !matches!(
            config.timestep_spacing.as_str(),
            "leading" | "trailing" | "linspace"
        ) {
            return Err(unsupported(format!(
                "timestep_spacing {:?} is not supported (leading, trailing or linspace)",
                config.timestep_spacing
            )));
        }
        if config.num_train_timesteps == 0 {
            return Err(unsupported("num_train_timesteps is 0".to_string()));
        }
        Ok(config)
    }
}

/// A number or a per-block list, as diffusers allows for `attention_head_dim` and
/// `transformer_layers_per_block`.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum PerBlock {
    /// The same value for every block.
    One(usize),
    /// One value per down block.
    Each(Vec<usize>),
}

impl PerBlock {
    /// The value for block `i` of `blocks`.
    pub fn get(&self, i: usize) -> usize {
        match self {
            PerBlock::One(v) => *v,
            PerBlock::Each(v) => v[i.min(v.len().saturating_sub(1))],
        }
    }

    fn len_ok(&self, blocks: usize) -> bool {
        match self {
            PerBlock::One(_) => true,
            PerBlock::Each(v) => v.len() == blocks,
        }
    }
}

/// The UNet (`unet/config.json`, diffusers' `UNet2DConditionModel`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct UNetConfig {
    /// Latent channels in.
    pub in_channels: usize,
    /// Channels out (the predicted noise).
    pub out_channels: usize,
    /// Width of each level: [320, 640, 1280, 1280] for SD-2.1.
    pub block_out_channels: Vec<usize>,
    /// ResNets per down block (up blocks have one more).
    pub layers_per_block: usize,
    /// In SD-2.x configs, the number of attention HEADS per level ([5, 10, 20, 20]): diffusers
    /// reads it so for lack of `num_attention_heads`.
    pub attention_head_dim: PerBlock,
    /// Head count per level, when the config states it under its proper name.
    pub num_attention_heads: Option<PerBlock>,
    /// Width of the text conditioning.
    pub cross_attention_dim: usize,
    /// Transformer blocks per attention layer.
    pub transformer_layers_per_block: PerBlock,
    /// GroupNorm groups.
    pub norm_num_groups: usize,
    /// GroupNorm epsilon in the ResNets and the output.
    pub norm_eps: f64,
    /// Whether the timestep features are [cos, sin] (true) or [sin, cos].
    pub flip_sin_to_cos: bool,
    /// Frequency shift of the timestep features (0 for SD).
    pub freq_shift: f64,
    /// Down block kinds, outermost first.
    pub down_block_types: Vec<String>,
    /// Up block kinds, innermost first.
    pub up_block_types: Vec<String>,
    /// Whether transformers project in and out with linear layers (SD-2.x) or 1×1 convs.
    pub use_linear_projection: bool,
    /// Activation: "silu".
    pub act_fn: String,
    /// Latent side the model was trained at (64 for 512 px).
    pub sample_size: usize,
}

impl Default for UNetConfig {
    fn default() -> Self {
        Self::sd21()
    }
}

impl UNetConfig {
    /// SD-2.1-base's UNet.
    pub fn sd21() -> Self {
        let cross = "CrossAttnDownBlock2D".to_string();
        let up_cross = "CrossAttnUpBlock2D".to_string();
        UNetConfig {
            in_channels: 4,
            out_channels: 4,
            block_out_channels: vec![320, 640, 1280, 1280],
            layers_per_block: 2,
            attention_head_dim: PerBlock::Each(vec![5, 10, 20, 20]),
            num_attention_heads: None,
            cross_attention_dim: 1024,
            transformer_layers_per_block: PerBlock::One(1),
            norm_num_groups: 32,
            norm_eps: 1e-5,
            flip_sin_to_cos: true,
            freq_shift: 0.0,
            down_block_types: vec![
                cross.clone(),
                cross.clone(),
                cross,
                "DownBlock2D".to_string(),
            ],
            up_block_types: vec![
                "UpBlock2D".to_string(),
                up_cross.clone(),
                up_cross.clone(),
                up_cross,
            ],
            use_linear_projection: true,
            act_fn: "silu".to_string(),
            sample_size: 64,
        }
    }

    /// Reads `unet/config.json`; `file` labels errors.
    pub fn from_json(file: &str, json: &str) -> Result<Self, ConfigError> {
        let config: Self = parse(file, json)?;
        config.validate(file)?;
        Ok(config)
    }

    /// Attention heads at level `i` (the mid block uses the last level's).
    pub fn heads(&self, i: usize) -> usize {
        self.num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim)
            .get(i)
    }

    /// Whether down block `i` has attention.
    pub fn down_has_attention(&self, i: usize) -> bool {
        self.down_block_types[i] == "CrossAttnDownBlock2D"
    }

    /// Whether up block `i` (innermost first) has attention.
    pub fn up_has_attention(&self, i: usize) -> bool {
        self.up_block_types[i] == "CrossAttnUpBlock2D"
    }

    fn validate(&self, file: &str) -> Result<(), ConfigError> {
        let unsupported = |detail: String| ConfigError::Unsupported {
            file: file.to_string(),
            detail,
        };
        let levels = self.block_out_channels.len();
        if levels == 0
            || self.down_block_types.len() != levels
            || self.up_block_types.len() != levels
        {
            return Err(unsupported(format!(
                "block_out_channels, down_block_types and up_block_types must have one entry per level ({levels})"
            )));
        }
        for kind in &self.down_block_types {
            if !matches!(kind.as_str(), "CrossAttnDownBlock2D" | "DownBlock2D") {
                return Err(unsupported(format!("down block {kind:?} is not supported")));
            }
        }
        for kind in &self.up_block_types {
            if !matches!(kind.as_str(), "CrossAttnUpBlock2D" | "UpBlock2D") {
                return Err(unsupported(format!("up block {kind:?} is not supported")));
            }
        }
        if self.act_fn != "silu" {
            return Err(unsupported(format!(
                "act_fn {:?} is not supported (silu)",
                self.act_fn
            )));
        }
        if !self.use_linear_projection {
            return Err(unsupported(
                "use_linear_projection = false (SD-1.x's convolutional projections) is not supported".to_string(),
            ));
        }
        let heads = self
            .num_attention_heads
            .as_ref()
            .unwrap_or(&self.attention_head_dim);
        if !heads.len_ok(levels) || !self.transformer_layers_per_block.len_ok(levels) {
            return Err(unsupported(
                "per-level lists must have one entry per level".to_string(),
            ));
        }
        for (i, &channels) in self.block_out_channels.iter().enumerate() {
            if channels % self.norm_num_groups != 0 {
                return Err(unsupported(format!(
                    "{channels} channels are not divisible into {} groups",
                    self.norm_num_groups
                )));
            }
            let h = self.heads(i);
            if h == 0 || channels % h != 0 {
                return Err(unsupported(format!(
                    "{channels} channels do not split into {h} heads"
                )));
            }
        }
        Ok(())
    }
}

/// The VAE (`vae/config.json`, diffusers' `AutoencoderKL`).
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(default)]
pub struct VaeConfig {
    /// Image channels in.
    pub in_channels: usize,
    /// Image channels out.
    pub out_channels: usize,
    /// Latent channels.
    pub latent_channels: usize,
    /// Width of each level: [128, 256, 512, 512] for SD.
    pub block_out_channels: Vec<usize>,
    /// ResNets per encoder block (decoder blocks have one more).
    pub layers_per_block: usize,
    /// GroupNorm groups.
    pub norm_num_groups: usize,
    /// Latent = scaling_factor × posterior sample (0.18215 for SD-2.1).
    pub scaling_factor: f64,
    /// Activation: "silu".
    pub act_fn: String,
}

impl Default for VaeConfig {
    fn default() -> Self {
        Self::sd21()
    }
}

impl VaeConfig {
    /// SD-2.1-base's VAE.
    pub fn sd21() -> Self {
        VaeConfig {
            in_channels: 3,
            out_channels: 3,
            latent_channels: 4,
            block_out_channels: vec![128, 256, 512, 512],
            layers_per_block: 2,
            norm_num_groups: 32,
            scaling_factor: 0.18215,
            act_fn: "silu".to_string(),
        }
    }

    /// Reads `vae/config.json`; `file` labels errors.
    pub fn from_json(file: &str, json: &str) -> Result<Self, ConfigError> {
        let config: Self = parse(file, json)?;
        let unsupported = |detail: String| ConfigError::Unsupported {
            file: file.to_string(),
            detail,
        };
        if config.block_out_channels.is_empty() {
            return Err(unsupported("block_out_channels is empty".to_string()));
        }
        if config.act_fn != "silu" {
            return Err(unsupported(format!(
                "act_fn {:?} is not supported (silu)",
                config.act_fn
            )));
        }
        if let Some(c) = config
            .block_out_channels
            .iter()
            .find(|&&c| c % config.norm_num_groups != 0)
        {
            return Err(unsupported(format!(
                "{c} channels are not divisible into {} groups",
                config.norm_num_groups
            )));
        }
        Ok(config)
    }

    /// How many times the encoder halves the image side (3 for SD: 512 px → 64 latents).
    pub fn downsamples(&self) -> usize {
        self.block_out_channels.len() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_keys_take_sd21_values_and_present_keys_win() {
        let config =
            TextEncoderConfig::from_json("c", r#"{"hidden_size": 32, "num_attention_heads": 4}"#)
                .unwrap();
        assert_eq!(config.hidden_size, 32);
        assert_eq!(config.num_hidden_layers, 23);
        assert_eq!(config.vocab_size, 49408);

        let pndm = r#"{"_class_name": "PNDMScheduler", "beta_end": 0.012, "skip_prk_steps": true}"#;
        assert_eq!(
            SchedulerConfig::from_json("s", pndm).unwrap(),
            SchedulerConfig::sd21()
        );
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        let err = TextEncoderConfig::from_json("te/config.json", "{").unwrap_err();
        assert!(err.to_string().starts_with("te/config.json: "), "{err}");
        let err = TextEncoderConfig::from_json("c", r#"{"hidden_size": "wide"}"#).unwrap_err();
        assert!(matches!(err, ConfigError::Parse { .. }), "{err}");
        let err =
            TextEncoderConfig::from_json("c", r#"{"hidden_size": 30, "num_attention_heads": 4}"#)
                .unwrap_err();
        assert!(err.to_string().contains("not divisible"), "{err}");
        let err =
            SchedulerConfig::from_json("s", r#"{"prediction_type": "v_prediction"}"#).unwrap_err();
        assert!(err.to_string().contains("v_prediction"), "{err}");
    }
}
