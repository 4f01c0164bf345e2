//! The CLIP text transformer as SD-2.x uses it (transformers' `CLIPTextModel`): token and
//! position embeddings, pre-norm transformer layers with causal self-attention and a GELU
//! feed-forward, and the final layer norm. The pipeline uses the last hidden state.

use burn::module::Module;
use burn::tensor::{activation, Bool, Device, Int, Tensor, TensorData};

use super::config::TextEncoderConfig;
use super::layers::{Embedding, LayerNorm, Linear};
use crate::pace::{self, Pacer};
use crate::weights::{WeightError, WeightSource};

/// Causal multi-head self-attention of one text layer.
#[derive(Module, Debug)]
pub struct ClipAttention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    out_proj: Linear,
    heads: usize,
}

impl ClipAttention {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        config: &TextEncoderConfig,
    ) -> Result<Self, WeightError> {
        let d = config.hidden_size;
        Ok(ClipAttention {
            q_proj: Linear::load(loader, &format!("{prefix}.q_proj"), d, d, true)?,
            k_proj: Linear::load(loader, &format!("{prefix}.k_proj"), d, d, true)?,
            v_proj: Linear::load(loader, &format!("{prefix}.v_proj"), d, d, true)?,
            out_proj: Linear::load(loader, &format!("{prefix}.out_proj"), d, d, true)?,
            heads: config.num_attention_heads,
        })
    }

    /// `x: [batch, seq, d]`, `causal: [batch, heads, seq, seq]` (true above the diagonal).
    fn forward(&self, x: Tensor<3>, causal: Tensor<4, Bool>) -> Tensor<3> {
        let [batch, seq, d] = x.dims();
        let head_dim = d / self.heads;
        let split = |t: Tensor<3>| {
            t.reshape([batch, seq, self.heads, head_dim])
                .swap_dims(1, 2)
        };
        let q = split(self.q_proj.forward(x.clone()));
        let k = split(self.k_proj.forward(x.clone()));
        let v = split(self.v_proj.forward(x));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .mul_scalar((head_dim as f64).powf(-0.5))
            // A finite minimum rather than -inf: -inf arithmetic is not portable across shaders.
            .mask_fill(causal, f32::MIN);
        let weights = activation::softmax(scores, 3);
        let out = weights.matmul(v).swap_dims(1, 2).reshape([batch, seq, d]);
        self.out_proj.forward(out)
    }
}

/// One pre-norm transformer layer.
#[derive(Module, Debug)]
pub struct ClipEncoderLayer {
    layer_norm1: LayerNorm,
    self_attn: ClipAttention,
    layer_norm2: LayerNorm,
    fc1: Linear,
    fc2: Linear,
    quick_gelu: bool,
}

impl ClipEncoderLayer {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        config: &TextEncoderConfig,
    ) -> Result<Self, WeightError> {
        let (d, ff, eps) = (
            config.hidden_size,
            config.intermediate_size,
            config.layer_norm_eps,
        );
        Ok(ClipEncoderLayer {
            layer_norm1: LayerNorm::load(loader, &format!("{prefix}.layer_norm1"), d, eps)?,
            self_attn: ClipAttention::load(loader, &format!("{prefix}.self_attn"), config)?,
            layer_norm2: LayerNorm::load(loader, &format!("{prefix}.layer_norm2"), d, eps)?,
            fc1: Linear::load(loader, &format!("{prefix}.mlp.fc1"), d, ff, true)?,
            fc2: Linear::load(loader, &format!("{prefix}.mlp.fc2"), ff, d, true)?,
            quick_gelu: config.hidden_act == "quick_gelu",
        })
    }

    fn forward(&self, x: Tensor<3>, causal: Tensor<4, Bool>) -> Tensor<3> {
        let x = x.clone() + self.self_attn.forward(self.layer_norm1.forward(x), causal);
        let h = self.fc1.forward(self.layer_norm2.forward(x.clone()));
        let h = if self.quick_gelu {
            // x·σ(1.702x), CLIP's original approximation (SD-1.x).
            h.clone() * activation::sigmoid(h.mul_scalar(1.702))
        } else {
            activation::gelu(h)
        };
        x + self.fc2.forward(h)
    }
}

/// The text encoder: token ids `[batch, 77]` to hidden states `[batch, 77, hidden]`.
#[derive(Module, Debug)]
pub struct ClipTextEncoder {
    token_embedding: Embedding,
    position_embedding: Embedding,
    layers: Vec<ClipEncoderLayer>,
    final_layer_norm: LayerNorm,
}

impl ClipTextEncoder {
    /// Loads the encoder from a `text_encoder/model*.safetensors` file in either of
    /// transformers' namings: with the `text_model.` prefix (transformers 4.x, and the
    /// published SD-2.1 files) or without it (transformers 5); fails on any missing,
    /// misshapen or unexpected tensor.
    pub fn load<L: WeightSource>(
        config: &TextEncoderConfig,
        loader: &mut L,
    ) -> Result<Self, WeightError> {
        let (d, eps) = (config.hidden_size, config.layer_norm_eps);
        // The prefix of every name: absent only where the unprefixed token embedding exists,
        // so that a file with neither is reported under the published (prefixed) names.
        let root = if loader.contains("embeddings.token_embedding.weight") {
            ""
        } else {
            "text_model."
        };
        let token_embedding = Embedding::load(
            loader,
            &format!("{root}embeddings.token_embedding"),
            config.vocab_size,
            d,
        )?;
        let position_embedding = Embedding::load(
            loader,
            &format!("{root}embeddings.position_embedding"),
            config.max_position_embeddings,
            d,
        )?;
        let layers = (0..config.num_hidden_layers)
            .map(|i| ClipEncoderLayer::load(loader, &format!("{root}encoder.layers.{i}"), config))
            .collect::<Result<Vec<_>, _>>()?;
        let final_layer_norm = LayerNorm::load(loader, &format!("{root}final_layer_norm"), d, eps)?;
        // Older exports also store the position-id buffer, which is just 0..77.
        loader.finish(&["embeddings.position_ids"])?;
        Ok(ClipTextEncoder {
            token_embedding,
            position_embedding,
            layers,
            final_layer_norm,
        })
    }

    /// Token ids `[batch, seq]` (seq ≤ max positions) to the last hidden state
    /// `[batch, seq, hidden]`, final layer norm applied.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        pace::unpaced(self.forward_paced(ids, &mut Pacer::unpaced()))
    }

    /// [`ClipTextEncoder::forward`], giving the page a turn between layers (src/pace.rs).
    pub async fn forward_paced(&self, ids: Tensor<2, Int>, pacer: &mut Pacer) -> Tensor<3> {
        let [batch, seq] = ids.dims();
        let device = ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let mut x = self.token_embedding.forward(ids) + self.position_embedding.forward(positions);
        let heads = self.layers.first().map_or(1, |l| l.self_attn.heads);
        let causal = causal_mask(seq, &device)
            .reshape([1, 1, seq, seq])
            .expand([batch, heads, seq, seq]);
        for layer in &self.layers {
            x = layer.forward(x, causal.clone());
            pacer.breathe().await;
        }
        self.final_layer_norm.forward(x)
    }

    /// Encodes already tokenized prompts (rows of token ids of one length, as the tokenizer
    /// gives them) to `[prompts, seq, hidden]`, checking the ids first: an id outside the
    /// vocabulary would otherwise read outside the embedding table on a GPU.
    pub fn encode<R: AsRef<[u32]>>(
        &self,
        token_rows: &[R],
        device: &Device,
    ) -> Result<Tensor<3>, EncodeError> {
        pace::unpaced(self.encode_paced(token_rows, device, &mut Pacer::unpaced()))
    }

    /// [`ClipTextEncoder::encode`], giving the page a turn between layers (src/pace.rs).
    pub async fn encode_paced<R: AsRef<[u32]>>(
        &self,
        token_rows: &[R],
        device: &Device,
        pacer: &mut Pacer,
    ) -> Result<Tensor<3>, EncodeError> {
        let seq = token_rows.first().map_or(0, |r| r.as_ref().len());
        let vocab = self.token_embedding.count();
        let positions = self.position_embedding.count();
        if token_rows.is_empty() || seq == 0 {
            return Err(EncodeError::Empty);
        }
        if seq > positions {
            return Err(EncodeError::TooLong {
                len: seq,
                positions,
            });
        }
        let mut flat = Vec::with_capacity(token_rows.len() * seq);
        for row in token_rows {
            let row = row.as_ref();
            if row.len() != seq {
                return Err(EncodeError::Ragged {
                    first: seq,
                    other: row.len(),
                });
            }
            if let Some(&id) = row.iter().find(|&&id| id as usize >= vocab) {
                return Err(EncodeError::UnknownToken { id, vocab });
            }
            flat.extend(row.iter().map(|&id| id as i64));
        }
        let ids =
            Tensor::<2, Int>::from_data(TensorData::new(flat, [token_rows.len(), seq]), device);
        Ok(self.forward_paced(ids, pacer).await)
    }
}

/// Token rows the encoder cannot take.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EncodeError {
    /// No rows, or rows of no tokens.
    #[error("nothing to encode: no token rows")]
    Empty,
    /// Rows of different lengths cannot form one batch.
    #[error("token rows differ in length ({first} and {other})")]
    Ragged {
        /// Length of the first row.
        first: usize,
        /// Length of the offending row.
        other: usize,
    },
    /// More tokens than position embeddings.
    #[error("{len} tokens, but the encoder has {positions} positions")]
    TooLong {
        /// Row length.
        len: usize,
        /// Position embeddings.
        positions: usize,
    },
    /// An id the vocabulary does not have.
    #[error("token id {id} is outside the vocabulary of {vocab}")]
    UnknownToken {
        /// The id.
        id: u32,
        /// Vocabulary size.
        vocab: usize,
    },
}

/// `[seq, seq]`, true where key j lies after query i: those pairs are hidden.
fn causal_mask(seq: usize, device: &Device) -> Tensor<2, Bool> {
    let values: Vec<bool> = (0..seq * seq).map(|k| k % seq > k / seq).collect();
    Tensor::from_data(TensorData::new(values, [seq, seq]), device)
}
