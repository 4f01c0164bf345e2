//! diffusers' `UNet2DConditionModel` as SD-2.x uses it: sinusoidal timestep features and their
//! MLP, down blocks (ResNets, optional cross-attention transformers, a stride-2 downsampler),
//! a mid block, up blocks that concatenate the skip connections, and the output head.

use burn::module::Module;
use burn::tensor::{activation, Device, Tensor, TensorData};

use super::config::UNetConfig;
use super::hook::AttentionHook;
use super::layers::{Conv2d, GroupNorm, Linear};
use super::resnet::{ResnetBlock, ResnetShape};
use super::sampling::{Downsample, Upsample};
use super::transformer::SpatialTransformer;
use crate::pace::{self, Pacer};
use crate::weights::{WeightError, WeightSource};

/// One level on the way down.
#[derive(Module, Debug)]
struct DownBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<SpatialTransformer>,
    downsampler: Option<Downsample>,
}

/// One level on the way up.
#[derive(Module, Debug)]
struct UpBlock {
    resnets: Vec<ResnetBlock>,
    attentions: Vec<SpatialTransformer>,
    upsampler: Option<Upsample>,
}

/// The denoising UNet: `(latents, timestep, text) -> predicted noise`.
#[derive(Module, Debug)]
pub struct UNet {
    conv_in: Conv2d,
    time_linear_1: Linear,
    time_linear_2: Linear,
    down: Vec<DownBlock>,
    mid_resnet_1: ResnetBlock,
    mid_attention: SpatialTransformer,
    mid_resnet_2: ResnetBlock,
    up: Vec<UpBlock>,
    conv_norm_out: GroupNorm,
    conv_out: Conv2d,
    time_features: usize,
    flip_sin_to_cos: bool,
    freq_shift: f64,
}

impl UNet {
    /// Loads the UNet from `unet/diffusion_pytorch_model*.safetensors`; fails on any missing,
    /// misshapen or unexpected tensor.
    pub fn load<L: WeightSource>(config: &UNetConfig, loader: &mut L) -> Result<Self, WeightError> {
        let l = loader;
        let channels = &config.block_out_channels;
        let levels = channels.len();
        let time_features = channels[0];
        let temb = 4 * time_features;
        let (groups, eps) = (config.norm_num_groups, config.norm_eps);
        let resnet = |c_in, c_out| ResnetShape {
            c_in,
            c_out,
            temb: Some(temb),
            groups,
            eps,
        };
        // Self-attention layers are numbered in evaluation order, for hooks.
        let mut next_layer = 0usize;
        let mut transformer = |l: &mut L, prefix: String, c: usize, level: usize| {
            let depth = config.transformer_layers_per_block.get(level);
            let first = next_layer;
            next_layer += depth;
            SpatialTransformer::load(
                l,
                &prefix,
                c,
                config.cross_attention_dim,
                config.heads(level),
                depth,
                groups,
                first,
            )
        };

        let conv_in = Conv2d::load(l, "conv_in", [config.in_channels, channels[0]], 3, 1)?;
        let time_linear_1 = Linear::load(l, "time_embedding.linear_1", time_features, temb, true)?;
        let time_linear_2 = Linear::load(l, "time_embedding.linear_2", temb, temb, true)?;

        let mut down = Vec::with_capacity(levels);
        for (i, &c_out) in channels.iter().enumerate() {
            let c_in = if i == 0 { channels[0] } else { channels[i - 1] };
            let mut block = DownBlock {
                resnets: Vec::new(),
                attentions: Vec::new(),
                downsampler: None,
            };
            for j in 0..config.layers_per_block {
                let prefix = format!("down_blocks.{i}");
                let c = if j == 0 { c_in } else { c_out };
                block.resnets.push(ResnetBlock::load(
                    l,
                    &format!("{prefix}.resnets.{j}"),
                    resnet(c, c_out),
                )?);
                if config.down_has_attention(i) {
                    block.attentions.push(transformer(
                        l,
                        format!("{prefix}.attentions.{j}"),
                        c_out,
                        i,
                    )?);
                }
            }
            if i + 1 < levels {
                block.downsampler = Some(Downsample::load(
                    l,
                    &format!("down_blocks.{i}.downsamplers.0"),
                    c_out,
                    false,
                )?);
            }
            down.push(block);
        }

        let c_mid = channels[levels - 1];
        let mid_resnet_1 = ResnetBlock::load(l, "mid_block.resnets.0", resnet(c_mid, c_mid))?;
        let mid_attention =
            transformer(l, "mid_block.attentions.0".to_string(), c_mid, levels - 1)?;
        let mid_resnet_2 = ResnetBlock::load(l, "mid_block.resnets.1", resnet(c_mid, c_mid))?;

        // Up block i works at level `levels-1-i`; its ResNets take the previous output
        // concatenated with a skip connection of the matching down level.
        let mut up = Vec::with_capacity(levels);
        let mut prev_out = c_mid;
        for i in 0..levels {
            let level = levels - 1 - i;
            let c_out = channels[level];
            let c_skip_last = channels[level.saturating_sub(1)];
            let mut block = UpBlock {
                resnets: Vec::new(),
                attentions: Vec::new(),
                upsampler: None,
            };
            for j in 0..=config.layers_per_block {
                let c_res_in = if j == 0 { prev_out } else { c_out };
                let c_skip = if j == config.layers_per_block {
                    c_skip_last
                } else {
                    c_out
                };
                let prefix = format!("up_blocks.{i}");
                block.resnets.push(ResnetBlock::load(
                    l,
                    &format!("{prefix}.resnets.{j}"),
                    resnet(c_res_in + c_skip, c_out),
                )?);
                if config.up_has_attention(i) {
                    block.attentions.push(transformer(
                        l,
                        format!("{prefix}.attentions.{j}"),
                        c_out,
                        level,
                    )?);
                }
            }
            if i + 1 < levels {
                block.upsampler = Some(Upsample::load(
                    l,
                    &format!("up_blocks.{i}.upsamplers.0"),
                    c_out,
                )?);
            }
            prev_out = c_out;
            up.push(block);
        }

        let conv_norm_out = GroupNorm::load(l, "conv_norm_out", channels[0], groups, eps)?;
        let conv_out = Conv2d::load(l, "conv_out", [channels[0], config.out_channels], 3, 1)?;
        l.finish(&[])?;
        Ok(UNet {
            conv_in,
            time_linear_1,
            time_linear_2,
            down,
            mid_resnet_1,
            mid_attention,
            mid_resnet_2,
            up,
            conv_norm_out,
            conv_out,
            time_features,
            flip_sin_to_cos: config.flip_sin_to_cos,
            freq_shift: config.freq_shift,
        })
    }

    /// Sets the byte budget of every attention logits chunk (WebGPU's 128 MiB binding by
    /// default): smaller budgets mean more, smaller chunks.
    pub fn set_attention_budget(&mut self, bytes: usize) {
        let down = self.down.iter_mut().flat_map(|b| b.attentions.iter_mut());
        let up = self.up.iter_mut().flat_map(|b| b.attentions.iter_mut());
        for attention in down
            .chain(std::iter::once(&mut self.mid_attention))
            .chain(up)
        {
            attention.set_attention_budget(bytes);
        }
    }

    /// The timestep embedding `[batch, 4·c0]`: sinusoidal features, then the two-layer MLP.
    fn time_embedding(&self, timestep: f64, batch: usize, device: &Device) -> Tensor<2> {
        let features = timestep_features(
            timestep as f32,
            self.time_features,
            self.flip_sin_to_cos,
            self.freq_shift as f32,
        );
        let features: Vec<f32> = (0..batch).flat_map(|_| features.iter().copied()).collect();
        let t = Tensor::<2>::from_data(
            TensorData::new(features, [batch, self.time_features]),
            device,
        );
        self.time_linear_2
            .forward(activation::silu(self.time_linear_1.forward(t)))
    }

    /// Predicts the noise: `sample: [batch, 4, h, w]`, the same `timestep` for the whole batch,
    /// `context: [batch, 77, cross_attention_dim]` `-> [batch, 4, h, w]`. Any latent side works:
    /// where a side was odd on the way down, the way up resizes to the skip connection's size.
    pub fn forward(&self, sample: Tensor<4>, timestep: f64, context: Tensor<3>) -> Tensor<4> {
        self.forward_hooked(sample, timestep, context, None)
    }

    /// [`UNet::forward`] with a hook on every self-attention layer (docs/method.md §3.2).
    pub fn forward_hooked(
        &self,
        sample: Tensor<4>,
        timestep: f64,
        context: Tensor<3>,
        hook: Option<&dyn AttentionHook>,
    ) -> Tensor<4> {
        let mut pacer = Pacer::unpaced();
        pace::unpaced(self.forward_paced(sample, timestep, context, hook, &mut pacer))
    }

    /// [`UNet::forward_hooked`], giving the page a turn between blocks when `pacer`'s slice is
    /// spent (src/pace.rs): recording a full-size evaluation's kernels is itself long work.
    pub async fn forward_paced(
        &self,
        sample: Tensor<4>,
        timestep: f64,
        context: Tensor<3>,
        hook: Option<&dyn AttentionHook>,
        pacer: &mut Pacer,
    ) -> Tensor<4> {
        let batch = sample.dims()[0];
        let temb = self.time_embedding(timestep, batch, &sample.device());
        let temb = Some(&temb);

        let mut h = self.conv_in.forward(sample);
        let mut skips = vec![h.clone()];
        for block in &self.down {
            for (j, resnet) in block.resnets.iter().enumerate() {
                h = resnet.forward(h, temb);
                if let Some(attention) = block.attentions.get(j) {
                    h = attention.forward(h, &context, hook);
                }
                skips.push(h.clone());
                pacer.breathe().await;
            }
            if let Some(down) = &block.downsampler {
                h = down.forward(h);
                skips.push(h.clone());
                pacer.breathe().await;
            }
        }

        h = self.mid_resnet_1.forward(h, temb);
        h = self.mid_attention.forward(h, &context, hook);
        h = self.mid_resnet_2.forward(h, temb);
        pacer.breathe().await;

        for block in &self.up {
            for (j, resnet) in block.resnets.iter().enumerate() {
                let skip = skips.pop().expect("one skip per up-block ResNet");
                h = resnet.forward(Tensor::cat(vec![h, skip], 1), temb);
                if let Some(attention) = block.attentions.get(j) {
                    h = attention.forward(h, &context, hook);
                }
                pacer.breathe().await;
            }
            if let Some(up) = &block.upsampler {
                let [_, _, sh, sw] = skips.last().expect("a skip below the upsampler").dims();
                h = up.forward(h, [sh, sw]);
                pacer.breathe().await;
            }
        }

        let h = activation::silu(self.conv_norm_out.forward(h));
        self.conv_out.forward(h)
    }
}

/// diffusers' `get_timestep_embedding`, in f32 as PyTorch computes it: frequencies
/// exp(−ln(10000)·i/(half − shift)) for i < half, features [sin(t·f), cos(t·f)], or
/// [cos, sin] with `flip_sin_to_cos`.
pub fn timestep_features(t: f32, dim: usize, flip_sin_to_cos: bool, shift: f32) -> Vec<f32> {
    let half = dim / 2;
    let log_period = -(10000f64.ln() as f32);
    let args: Vec<f32> = (0..half)
        .map(|i| t * (log_period * i as f32 / (half as f32 - shift)).exp())
        .collect();
    let sin = args.iter().map(|a| a.sin());
    let cos = args.iter().map(|a| a.cos());
    if flip_sin_to_cos {
        cos.chain(sin).collect()
    } else {
        sin.chain(cos).collect()
    }
}
