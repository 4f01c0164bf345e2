//! Prompt to text conditioning: the tokenizer and the text encoder together, with the result
//! read back to the host. The app calls this; it never touches tensors itself.

use burn::tensor::{Device, Tensor};

use crate::model::clip::{ClipTextEncoder, EncodeError};
use crate::model::config::TextEncoderConfig;
use crate::tokenizer::{ClipTokenizer, TokenizerError};
use crate::weights::{MemorySource, TensorLoader, WeightError};

/// What can stop prompt encoding.
#[derive(Debug, thiserror::Error)]
pub enum ConditioningError {
    /// The tokenizer files are bad.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The text encoder's weights are bad.
    #[error(transparent)]
    Weights(#[from] WeightError),
    /// The config is bad.
    #[error(transparent)]
    Config(#[from] crate::model::config::ConfigError),
    /// The tokens cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// Reading the result back from the device failed.
    #[error("reading the result back from the device failed: {0}")]
    Readback(String),
}

/// Hidden states of one or more prompts, on the host.
#[derive(Clone, Debug, PartialEq)]
pub struct EncodedPrompts {
    /// The token ids of each prompt (77 each).
    pub token_ids: Vec<Vec<u32>>,
    /// `[prompts, tokens, hidden]`.
    pub shape: [usize; 3],
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A tokenizer and a text encoder on one device.
pub struct TextConditioner {
    tokenizer: ClipTokenizer,
    encoder: ClipTextEncoder,
    device: Device,
}

impl TextConditioner {
    /// Builds both from file contents (as fetched over HTTP or read from disk): the tokenizer's
    /// `vocab.json` and `merges.txt`, the encoder's `config.json` and safetensors bytes.
    pub fn from_bytes(
        vocab_json: &str,
        merges_txt: &str,
        config_json: &str,
        weights: &[u8],
        weights_label: &str,
        device: &Device,
    ) -> Result<Self, ConditioningError> {
        let tokenizer = ClipTokenizer::from_files(vocab_json, merges_txt)?;
        let config = TextEncoderConfig::from_json("text_encoder/config.json", config_json)?;
        let mut loader = TensorLoader::open(weights_label, MemorySource(weights), device)?;
        let encoder = ClipTextEncoder::load(&config, &mut loader)?;
        Ok(TextConditioner {
            tokenizer,
            encoder,
            device: device.clone(),
        })
    }

    /// Builds from parts already loaded.
    pub fn new(tokenizer: ClipTokenizer, encoder: ClipTextEncoder, device: &Device) -> Self {
        TextConditioner {
            tokenizer,
            encoder,
            device: device.clone(),
        }
    }

    /// Tokenizes and encodes prompts on the device: `[prompts, 77, hidden]`.
    pub fn encode(
        &self,
        prompts: &[&str],
    ) -> Result<(Vec<Vec<u32>>, Tensor<3>), ConditioningError> {
        let token_ids: Vec<Vec<u32>> = prompts
            .iter()
            .map(|p| self.tokenizer.tokenize(p).to_vec())
            .collect();
        let hidden = self.encoder.encode(&token_ids, &self.device)?;
        Ok((token_ids, hidden))
    }

    /// Like [`TextConditioner::encode`], then reads the hidden states back (asynchronously, the
    /// only way in a browser).
    pub async fn encode_to_host(
        &self,
        prompts: &[&str],
    ) -> Result<EncodedPrompts, ConditioningError> {
        let (token_ids, hidden) = self.encode(prompts)?;
        let shape = hidden.dims();
        let values = hidden
            .into_data_async()
            .await
            .map_err(|e| ConditioningError::Readback(format!("{e:?}")))?
            .try_into_vec::<f32>()
            .map_err(|e| ConditioningError::Readback(format!("{e:?}")))?;
        Ok(EncodedPrompts {
            token_ids,
            shape,
            values,
        })
    }
}
