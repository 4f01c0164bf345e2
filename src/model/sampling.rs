//! Changing resolution: diffusers' `Downsample2D` (a stride-2 conv) and `Upsample2D` (nearest
//! upsampling, then a conv).

use burn::module::Module;
use burn::tensor::{Int, Tensor, TensorData};

use super::layers::Conv2d;
use crate::weights::{WeightError, WeightSource};

/// Halves the side with a 3×3 stride-2 convolution.
#[derive(Module, Debug)]
pub struct Downsample {
    conv: Conv2d,
}

impl Downsample {
    /// Loads `{prefix}.conv`. The UNet pads one pixel on every side; the VAE pads only the
    /// right and bottom (`asymmetric`), as diffusers does with `padding=0` and a manual pad.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
        asymmetric: bool,
    ) -> Result<Self, WeightError> {
        let conv = Conv2d::load(
            loader,
            &format!("{prefix}.conv"),
            [channels, channels],
            3,
            2,
        )?;
        Ok(Downsample {
            conv: if asymmetric {
                conv.with_padding(0, 1)
            } else {
                conv
            },
        })
    }

    /// `[b, c, h, w] -> [b, c, ⌈h/2⌉, ⌈w/2⌉]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        self.conv.forward(x)
    }

    /// The same over a feature map cut into horizontal bands of even height (the last may be
    /// odd): each band gives the output rows whose windows start in it, borrowing the row
    /// below it that its last window reaches.
    pub fn forward_bands(&self, bands: &[Tensor<4>]) -> Vec<Tensor<4>> {
        self.conv.forward_bands(bands)
    }
}

/// Nearest upsampling to a given size, then a 3×3 convolution.
#[derive(Module, Debug)]
pub struct Upsample {
    conv: Conv2d,
}

impl Upsample {
    /// Loads `{prefix}.conv`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
    ) -> Result<Self, WeightError> {
        Ok(Upsample {
            conv: Conv2d::load(
                loader,
                &format!("{prefix}.conv"),
                [channels, channels],
                3,
                1,
            )?,
        })
    }

    /// `[b, c, h, w] -> [b, c, size[0], size[1]]`: twice the side normally, or the skip
    /// connection's size when a side was odd on the way down (SOW's 23-latent crops).
    pub fn forward(&self, x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
        self.conv.forward(nearest_resize(x, size))
    }

    /// Doubles a feature map cut into horizontal bands. Nearest upsampling of a band is the
    /// band of the upsampled map (row i comes from row ⌊i/2⌋), so only the conv needs care.
    pub fn forward_bands(&self, bands: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let doubled: Vec<Tensor<4>> = bands
            .into_iter()
            .map(|b| {
                let [_, _, h, w] = b.dims();
                nearest_resize(b, [2 * h, 2 * w])
            })
            .collect();
        self.conv.forward_bands(&doubled)
    }
}

/// PyTorch's `interpolate(mode="nearest")`: output pixel i takes input ⌊i·in/out⌋. Done as two
/// index selections so the rule is exactly PyTorch's on every backend.
pub fn nearest_resize(x: Tensor<4>, size: [usize; 2]) -> Tensor<4> {
    let [_, _, h, w] = x.dims();
    let device = x.device();
    let indices = |from: usize, to: usize| {
        let idx: Vec<i64> = (0..to)
            .map(|i| nearest_source(i, from, to) as i64)
            .collect();
        Tensor::<1, Int>::from_data(TensorData::new(idx, [to]), &device)
    };
    x.select(2, indices(h, size[0]))
        .select(3, indices(w, size[1]))
}

/// The input index PyTorch's nearest resampling reads for output index `i` when a side of
/// `from` becomes `to`: ⌊i·(from/to)⌋, scale and product in f32 as PyTorch computes them.
pub fn nearest_source(i: usize, from: usize, to: usize) -> usize {
    ((i as f32 * (from as f32 / to as f32)).floor() as usize).min(from - 1)
}
