//! diffusers' `AutoencoderKL` as SD uses it: the encoder gives a diagonal Gaussian posterior over
//! latents (mean and log-variance), the decoder turns latents back into pixels. The pipeline's
//! latent is `scaling_factor` (0.18215) × a posterior sample (docs/method.md §2.2).

use burn::module::Module;
use burn::tensor::{activation, Tensor};

use super::attention::{Attention, DEFAULT_BUDGET_BYTES};
use super::config::VaeConfig;
use super::layers::{from_tokens, to_tokens, Conv2d, GroupNorm};
use super::resnet::{ResnetBlock, ResnetShape};
use super::sampling::{Downsample, Upsample};
use crate::pace::{self, Pacer};
use crate::rng::NoiseGenerator;
use crate::weights::{WeightError, WeightSource};

/// The VAE's epsilon in every GroupNorm.
const EPS: f64 = 1e-6;

/// Single-head self-attention over the pixels of a feature map, with its own GroupNorm and a
/// residual connection (the VAE mid block's).
#[derive(Module, Debug)]
struct PixelAttention {
    group_norm: GroupNorm,
    attention: Attention,
}

impl PixelAttention {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
        groups: usize,
    ) -> Result<Self, WeightError> {
        // Files saved before diffusers 0.14 (the official SD-2.1 VAE among them) use the old
        // names; diffusers renames them on load, so accept both.
        let names = if loader.contains(&format!("{prefix}.query.weight")) {
            ["query", "key", "value", "proj_attn"]
        } else {
            ["to_q", "to_k", "to_v", "to_out.0"]
        };
        Ok(PixelAttention {
            group_norm: GroupNorm::load(
                loader,
                &format!("{prefix}.group_norm"),
                channels,
                groups,
                EPS,
            )?,
            attention: Attention::load_named(loader, prefix, names, [channels, channels], 1, true)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let tokens = to_tokens(self.group_norm.forward(x.clone()));
        from_tokens(self.attention.forward(tokens, None), [h, w]) + x
    }
}

/// ResNet, attention, ResNet at the lowest resolution.
#[derive(Module, Debug)]
struct MidBlock {
    resnet_1: ResnetBlock,
    attention: PixelAttention,
    resnet_2: ResnetBlock,
}

impl MidBlock {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
        groups: usize,
    ) -> Result<Self, WeightError> {
        let shape = resnet_shape(channels, channels, groups);
        Ok(MidBlock {
            resnet_1: ResnetBlock::load(loader, &format!("{prefix}.resnets.0"), shape)?,
            attention: PixelAttention::load(
                loader,
                &format!("{prefix}.attentions.0"),
                channels,
                groups,
            )?,
            resnet_2: ResnetBlock::load(loader, &format!("{prefix}.resnets.1"), shape)?,
        })
    }

    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let x = self.resnet_1.forward(x, None);
        let x = self.attention.forward(x);
        self.resnet_2.forward(x, None)
    }
}

fn resnet_shape(c_in: usize, c_out: usize, groups: usize) -> ResnetShape {
    ResnetShape {
        c_in,
        c_out,
        temb: None,
        groups,
        eps: EPS,
    }
}

/// One encoder level: ResNets, then (except at the bottom) a downsampler.
#[derive(Module, Debug)]
struct EncoderBlock {
    resnets: Vec<ResnetBlock>,
    downsampler: Option<Downsample>,
}

/// One decoder level: ResNets, then (except at the top) an upsampler.
#[derive(Module, Debug)]
struct DecoderBlock {
    resnets: Vec<ResnetBlock>,
    upsampler: Option<Upsample>,
}

/// The posterior over latents: a diagonal Gaussian per latent pixel.
#[derive(Clone, Debug)]
pub struct Posterior {
    /// Mean `[batch, latent_channels, h/8, w/8]`.
    pub mean: Tensor<4>,
    /// Log-variance, clamped to [−30, 20] as diffusers does.
    pub logvar: Tensor<4>,
}

impl Posterior {
    /// mean + exp(½·logvar)·ξ for standard-normal ξ of the latent's shape.
    pub fn sample(&self, noise: Tensor<4>) -> Tensor<4> {
        self.mean.clone() + self.logvar.clone().mul_scalar(0.5).exp() * noise
    }

    /// A sample with ξ drawn from the run's seeded generator (the draw order of docs/method.md
    /// §2.10a: one tensor of the latent's shape per call).
    pub fn sample_seeded(&self, rng: &mut NoiseGenerator) -> Tensor<4> {
        let noise = rng.tensor(self.mean.dims(), &self.mean.device());
        self.sample(noise)
    }
}

/// The autoencoder: images in [−1, 1] to posteriors, and latents back to images.
#[derive(Module, Debug)]
pub struct Vae {
    encoder_conv_in: Conv2d,
    encoder_blocks: Vec<EncoderBlock>,
    encoder_mid: MidBlock,
    encoder_norm_out: GroupNorm,
    encoder_conv_out: Conv2d,
    quant_conv: Conv2d,
    post_quant_conv: Conv2d,
    decoder_conv_in: Conv2d,
    decoder_mid: MidBlock,
    decoder_blocks: Vec<DecoderBlock>,
    decoder_norm_out: GroupNorm,
    decoder_conv_out: Conv2d,
    latent_channels: usize,
    scaling_factor: f64,
    budget_bytes: usize,
}

impl Vae {
    /// Loads the VAE from `vae/diffusion_pytorch_model*.safetensors`; fails on any missing,
    /// misshapen or unexpected tensor.
    pub fn load<L: WeightSource>(config: &VaeConfig, loader: &mut L) -> Result<Self, WeightError> {
        let l = loader;
        let channels = &config.block_out_channels;
        let levels = channels.len();
        let groups = config.norm_num_groups;
        let latent = config.latent_channels;
        let top = channels[levels - 1];

        let encoder_conv_in = Conv2d::load(
            l,
            "encoder.conv_in",
            [config.in_channels, channels[0]],
            3,
            1,
        )?;
        let mut encoder_blocks = Vec::with_capacity(levels);
        for (i, &c_out) in channels.iter().enumerate() {
            let c_in = if i == 0 { channels[0] } else { channels[i - 1] };
            let prefix = format!("encoder.down_blocks.{i}");
            let resnets = (0..config.layers_per_block)
                .map(|j| {
                    let c = if j == 0 { c_in } else { c_out };
                    ResnetBlock::load(
                        l,
                        &format!("{prefix}.resnets.{j}"),
                        resnet_shape(c, c_out, groups),
                    )
                })
                .collect::<Result<_, _>>()?;
            let downsampler = (i + 1 < levels)
                .then(|| Downsample::load(l, &format!("{prefix}.downsamplers.0"), c_out, true))
                .transpose()?;
            encoder_blocks.push(EncoderBlock {
                resnets,
                downsampler,
            });
        }
        let encoder_mid = MidBlock::load(l, "encoder.mid_block", top, groups)?;
        let encoder_norm_out = GroupNorm::load(l, "encoder.conv_norm_out", top, groups, EPS)?;
        let encoder_conv_out = Conv2d::load(l, "encoder.conv_out", [top, 2 * latent], 3, 1)?;
        let quant_conv = Conv2d::load(l, "quant_conv", [2 * latent, 2 * latent], 1, 1)?;

        let post_quant_conv = Conv2d::load(l, "post_quant_conv", [latent, latent], 1, 1)?;
        let decoder_conv_in = Conv2d::load(l, "decoder.conv_in", [latent, top], 3, 1)?;
        let decoder_mid = MidBlock::load(l, "decoder.mid_block", top, groups)?;
        let mut decoder_blocks = Vec::with_capacity(levels);
        let mut prev = top;
        for i in 0..levels {
            let c_out = channels[levels - 1 - i];
            let prefix = format!("decoder.up_blocks.{i}");
            let resnets = (0..=config.layers_per_block)
                .map(|j| {
                    let c = if j == 0 { prev } else { c_out };
                    ResnetBlock::load(
                        l,
                        &format!("{prefix}.resnets.{j}"),
                        resnet_shape(c, c_out, groups),
                    )
                })
                .collect::<Result<_, _>>()?;
            let upsampler = (i + 1 < levels)
                .then(|| Upsample::load(l, &format!("{prefix}.upsamplers.0"), c_out))
                .transpose()?;
            decoder_blocks.push(DecoderBlock { resnets, upsampler });
            prev = c_out;
        }
        let decoder_norm_out =
            GroupNorm::load(l, "decoder.conv_norm_out", channels[0], groups, EPS)?;
        let decoder_conv_out = Conv2d::load(
            l,
            "decoder.conv_out",
            [channels[0], config.out_channels],
            3,
            1,
        )?;
        l.finish(&[])?;
        Ok(Vae {
            encoder_conv_in,
            encoder_blocks,
            encoder_mid,
            encoder_norm_out,
            encoder_conv_out,
            quant_conv,
            post_quant_conv,
            decoder_conv_in,
            decoder_mid,
            decoder_blocks,
            decoder_norm_out,
            decoder_conv_out,
            latent_channels: latent,
            scaling_factor: config.scaling_factor,
            budget_bytes: DEFAULT_BUDGET_BYTES,
        })
    }

    /// The factor between posterior samples and the diffusion latents (0.18215 for SD-2.1).
    pub fn scaling_factor(&self) -> f64 {
        self.scaling_factor
    }

    /// Images `[batch, 3, h, w]` in [−1, 1] to the posterior over `[batch, 4, h/8, w/8]`.
    ///
    /// At 512 px the first level holds 128 MiB maps (128 channels at 512², f32), exactly
    /// WebGPU's default binding limit, and its downsampler pads them by a row and a column:
    /// like the decoder, the levels whose maps reach the budget run in horizontal bands
    /// (convolutions borrow their neighbours' rows, GroupNorm takes its statistics over all
    /// bands, the stride-2 downsampler gives each band's half-height rows), and the bands are
    /// joined once the map has shrunk below it. The result is the whole-map result up to
    /// summation order.
    pub fn encode(&self, image: Tensor<4>) -> Posterior {
        pace::unpaced(self.encode_paced(image, &mut Pacer::unpaced()))
    }

    /// [`Vae::encode`], giving the page a turn between blocks (src/pace.rs).
    pub async fn encode_paced(&self, image: Tensor<4>, pacer: &mut Pacer) -> Posterior {
        let (banded_levels, band_count) = self.encoder_band_plan(image.dims());
        let mut h = if banded_levels > 0 {
            let halvings = self.encoder_blocks[..banded_levels]
                .iter()
                .filter(|b| b.downsampler.is_some())
                .count();
            let image_bands = split_rows_aligned(image, band_count, 1 << halvings);
            let mut bands = self.encoder_conv_in.forward_bands(&image_bands);
            for block in &self.encoder_blocks[..banded_levels] {
                for resnet in &block.resnets {
                    bands = resnet.forward_bands(bands);
                    pacer.breathe().await;
                }
                if let Some(down) = &block.downsampler {
                    bands = down.forward_bands(&bands);
                    pacer.breathe().await;
                }
            }
            Tensor::cat(bands, 2)
        } else {
            self.encoder_conv_in.forward(image)
        };
        for block in &self.encoder_blocks[banded_levels..] {
            for resnet in &block.resnets {
                h = resnet.forward(h, None);
                pacer.breathe().await;
            }
            if let Some(down) = &block.downsampler {
                h = down.forward(h);
                pacer.breathe().await;
            }
        }
        h = self.encoder_mid.forward(h);
        pacer.breathe().await;
        let h = self
            .encoder_conv_out
            .forward(activation::silu(self.encoder_norm_out.forward(h)));
        let moments = self.quant_conv.forward(h);
        let c = self.latent_channels;
        Posterior {
            mean: moments.clone().narrow(1, 0, c),
            logvar: moments.narrow(1, c, c).clamp(-30.0, 20.0),
        }
    }

    /// Sets the byte budget for one intermediate buffer (WebGPU's 128 MiB by default): encoder
    /// and decoder levels whose feature maps reach or exceed it run in horizontal bands.
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget_bytes = bytes;
    }

    /// Latents `[batch, 4, h, w]` (already divided by the scaling factor) to images
    /// `[batch, 3, 8h, 8w]`, roughly in [−1, 1].
    ///
    /// At 512 px the top levels hold 256 MiB feature maps (256 channels at 512², f32), over
    /// WebGPU's 128 MiB binding limit: from the first level that would exceed the budget, the
    /// map is cut into horizontal bands and every operation runs band by band. Convolutions
    /// borrow their neighbours' rows and GroupNorm takes its statistics over all bands, so the
    /// result is the whole-map result (up to summation order), with no seams.
    pub fn decode(&self, latents: Tensor<4>) -> Tensor<4> {
        pace::unpaced(self.decode_paced(latents, &mut Pacer::unpaced()))
    }

    /// [`Vae::decode`], giving the page a turn between blocks (src/pace.rs).
    pub async fn decode_paced(&self, latents: Tensor<4>, pacer: &mut Pacer) -> Tensor<4> {
        let mut h = self
            .decoder_conv_in
            .forward(self.post_quant_conv.forward(latents));
        h = self.decoder_mid.forward(h);
        pacer.breathe().await;
        let (first_banded, band_count) = self.band_plan(h.dims());
        let mut bands: Option<Vec<Tensor<4>>> = None;
        for (i, block) in self.decoder_blocks.iter().enumerate() {
            if i == first_banded {
                bands = Some(split_rows(h.clone(), band_count));
            }
            match bands.take() {
                Some(mut b) => {
                    for resnet in &block.resnets {
                        b = resnet.forward_bands(b);
                        pacer.breathe().await;
                    }
                    if let Some(up) = &block.upsampler {
                        b = up.forward_bands(b);
                        pacer.breathe().await;
                    }
                    bands = Some(b);
                }
                None => {
                    for resnet in &block.resnets {
                        h = resnet.forward(h, None);
                        pacer.breathe().await;
                    }
                    if let Some(up) = &block.upsampler {
                        let [_, _, height, width] = h.dims();
                        h = up.forward(h, [2 * height, 2 * width]);
                        pacer.breathe().await;
                    }
                }
            }
        }
        match bands {
            Some(b) => {
                let b: Vec<Tensor<4>> = self
                    .decoder_norm_out
                    .forward_bands(b)
                    .into_iter()
                    .map(activation::silu)
                    .collect();
                Tensor::cat(self.decoder_conv_out.forward_bands(&b), 2)
            }
            None => self
                .decoder_conv_out
                .forward(activation::silu(self.decoder_norm_out.forward(h))),
        }
    }

    /// Which decoder level starts running in bands, and in how many, for a map entering the
    /// up blocks with these dims. (levels, 1) when everything fits the budget.
    fn band_plan(&self, [batch, _, height, width]: [usize; 4]) -> (usize, usize) {
        let levels = self.decoder_blocks.len();
        // The largest map each level holds: its widest ResNet input at its input size, and
        // its output after the upsampler.
        let mut scale = 1usize;
        let mut largest = Vec::with_capacity(levels);
        for block in &self.decoder_blocks {
            let widest = block
                .resnets
                .iter()
                .map(|r| r.widest_channels())
                .max()
                .unwrap_or(0);
            let after = if block.upsampler.is_some() {
                2 * scale
            } else {
                scale
            };
            largest.push(4 * batch * widest * height * width * after * after);
            scale = after;
        }
        match largest.iter().position(|&bytes| bytes > self.budget_bytes) {
            None => (levels, 1),
            Some(first) => {
                let worst = largest[first..].iter().copied().max().unwrap_or(0);
                // A quarter of headroom for the borrowed rows and temporaries.
                let count = (worst + worst / 4).div_ceil(self.budget_bytes);
                (first, count.clamp(1, height * (1 << first)))
            }
        }
    }

    /// How many encoder levels (from the top) run in bands, and in how many, for images of
    /// these dims: every level up to the last whose widest map reaches the budget (reaching,
    /// not exceeding: the asymmetric downsampler pads its input by a row and a column).
    /// (0, 1) when every map stays below it.
    fn encoder_band_plan(&self, [batch, _, height, width]: [usize; 4]) -> (usize, usize) {
        let mut side = [height, width];
        let mut largest = Vec::with_capacity(self.encoder_blocks.len());
        for block in &self.encoder_blocks {
            let widest = block
                .resnets
                .iter()
                .map(|r| r.widest_channels())
                .max()
                .unwrap_or(0);
            largest.push(4 * batch * widest * side[0] * side[1]);
            if block.downsampler.is_some() {
                side = side.map(|s| s.div_ceil(2));
            }
        }
        match largest
            .iter()
            .rposition(|&bytes| bytes >= self.budget_bytes)
        {
            None => (0, 1),
            Some(last) => {
                let worst = largest[..=last].iter().copied().max().unwrap_or(0);
                // A quarter of headroom for the borrowed rows and temporaries, as the decoder.
                let count = (worst + worst / 4).div_ceil(self.budget_bytes);
                (last + 1, count.clamp(1, height))
            }
        }
    }
}

/// Cuts `[b, c, h, w]` into `count` horizontal bands of (nearly) equal height.
fn split_rows(x: Tensor<4>, count: usize) -> Vec<Tensor<4>> {
    let rows = x.dims()[2];
    let per_band = rows.div_ceil(count.max(1));
    (0..rows)
        .step_by(per_band)
        .map(|start| x.clone().narrow(2, start, per_band.min(rows - start)))
        .collect()
}

/// Cuts `[b, c, h, w]` into at most `count` horizontal bands of equal height, a multiple of
/// `align` (the last band takes the rest), so that each band starts on an even row at every
/// stride-2 level it goes through.
fn split_rows_aligned(x: Tensor<4>, count: usize, align: usize) -> Vec<Tensor<4>> {
    let rows = x.dims()[2];
    let per_band = rows.div_ceil(count.max(1)).next_multiple_of(align.max(1));
    (0..rows)
        .step_by(per_band)
        .map(|start| x.clone().narrow(2, start, per_band.min(rows - start)))
        .collect()
}
