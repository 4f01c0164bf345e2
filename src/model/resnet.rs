//! diffusers' `ResnetBlock2D`: two GroupNorm-SiLU-conv stages, the timestep embedding added
//! between them (UNet only), and a residual connection (through a 1×1 conv when the width
//! changes). Shared by the UNet and the VAE.

use burn::module::Module;
use burn::tensor::{activation, Tensor};

use super::budget;
use super::layers::{Conv2d, GroupNorm, Linear};
use crate::weights::{WeightError, WeightSource};

/// One ResNet block.
#[derive(Module, Debug)]
pub struct ResnetBlock {
    norm1: GroupNorm,
    conv1: Conv2d,
    time_emb_proj: Option<Linear>,
    norm2: GroupNorm,
    conv2: Conv2d,
    conv_shortcut: Option<Conv2d>,
}

/// The shape of one ResNet block.
#[derive(Clone, Copy, Debug)]
pub struct ResnetShape {
    /// Channels in.
    pub c_in: usize,
    /// Channels out.
    pub c_out: usize,
    /// Width of the timestep embedding, None in the VAE.
    pub temb: Option<usize>,
    /// GroupNorm groups.
    pub groups: usize,
    /// GroupNorm epsilon.
    pub eps: f64,
}

impl ResnetBlock {
    /// Loads `{prefix}.{norm1,conv1,time_emb_proj,norm2,conv2,conv_shortcut}`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        shape: ResnetShape,
    ) -> Result<Self, WeightError> {
        let ResnetShape {
            c_in,
            c_out,
            temb,
            groups,
            eps,
        } = shape;
        Ok(ResnetBlock {
            norm1: GroupNorm::load(loader, &format!("{prefix}.norm1"), c_in, groups, eps)?,
            conv1: Conv2d::load(loader, &format!("{prefix}.conv1"), [c_in, c_out], 3, 1)?,
            time_emb_proj: temb
                .map(|t| Linear::load(loader, &format!("{prefix}.time_emb_proj"), t, c_out, true))
                .transpose()?,
            norm2: GroupNorm::load(loader, &format!("{prefix}.norm2"), c_out, groups, eps)?,
            conv2: Conv2d::load(loader, &format!("{prefix}.conv2"), [c_out, c_out], 3, 1)?,
            conv_shortcut: (c_in != c_out)
                .then(|| {
                    Conv2d::load(
                        loader,
                        &format!("{prefix}.conv_shortcut"),
                        [c_in, c_out],
                        1,
                        1,
                    )
                })
                .transpose()?,
        })
    }

    /// The larger of the input and output widths.
    pub fn widest_channels(&self) -> usize {
        let [c_in, c_out] = self.conv1.channels();
        c_out.max(c_in)
    }

    /// `x: [batch, c_in, h, w]`, `temb: [batch, temb]` (UNet) `-> [batch, c_out, h, w]`.
    pub fn forward(&self, x: Tensor<4>, temb: Option<&Tensor<2>>) -> Tensor<4> {
        let h = self
            .conv1
            .forward(activation::silu(self.norm1.forward(x.clone())));
        budget::note(&h.dims());
        let h = match (&self.time_emb_proj, temb) {
            (Some(proj), Some(temb)) => {
                let [batch, channels, _, _] = h.dims();
                let t = proj.forward(activation::silu(temb.clone()));
                h + t.reshape([batch, channels, 1, 1])
            }
            _ => h,
        };
        let h = self.conv2.forward(activation::silu(self.norm2.forward(h)));
        let skip = match &self.conv_shortcut {
            Some(conv) => conv.forward(x),
            None => x,
        };
        skip + h
    }

    /// The same block over a feature map cut into horizontal bands (the VAE decoder's top
    /// levels, which are too large for one WebGPU buffer); no timestep embedding.
    pub fn forward_bands(&self, x: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let silu_all =
            |bands: Vec<Tensor<4>>| bands.into_iter().map(activation::silu).collect::<Vec<_>>();
        let h = self
            .conv1
            .forward_bands(&silu_all(self.norm1.forward_bands(x.clone())));
        let h = self
            .conv2
            .forward_bands(&silu_all(self.norm2.forward_bands(h)));
        x.into_iter()
            .zip(h)
            .map(|(x, h)| {
                budget::note(&h.dims());
                let skip = match &self.conv_shortcut {
                    Some(conv) => conv.forward(x),
                    None => x,
                };
                skip + h
            })
            .collect()
    }
}
