//! The small layers every network here is made of, each loaded from its diffusers tensor
//! names. They are plain burn modules over functional ops, so that later work (chunked
//! attention, quantized weights) can change how they compute without changing what they load.

use burn::module::{Module, Param};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{module, Int, Tensor};

use crate::weights::{WeightError, WeightSource};

/// A fully connected layer, `y = x Wᵀ + b` in PyTorch's terms.
#[derive(Module, Debug)]
pub struct Linear {
    /// Weight in burn's layout `[d_in, d_out]` (the transpose of PyTorch's `[d_out, d_in]`).
    pub weight: Param<Tensor<2>>,
    /// Optional bias `[d_out]`.
    pub bias: Option<Param<Tensor<1>>>,
}

impl Linear {
    /// Loads `{prefix}.weight` (PyTorch shape `[d_out, d_in]`) and, if `bias`, `{prefix}.bias`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Self, WeightError> {
        let weight = loader
            .tensor(&format!("{prefix}.weight"), [d_out, d_in])?
            .transpose();
        let bias = if bias {
            Some(Param::from_tensor(
                loader.tensor(&format!("{prefix}.bias"), [d_out])?,
            ))
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    /// `[..., d_in] -> [..., d_out]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        module::linear(x, self.weight.val(), self.bias.as_ref().map(|b| b.val()))
    }
}

/// Layer normalization over the last dimension, with scale and shift.
#[derive(Module, Debug)]
pub struct LayerNorm {
    /// Scale `[d]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift `[d]`.
    pub beta: Param<Tensor<1>>,
    /// Added to the variance.
    pub epsilon: f64,
}

impl LayerNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both `[d]`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        d: usize,
        epsilon: f64,
    ) -> Result<Self, WeightError> {
        Ok(LayerNorm {
            gamma: Param::from_tensor(loader.tensor(&format!("{prefix}.weight"), [d])?),
            beta: Param::from_tensor(loader.tensor(&format!("{prefix}.bias"), [d])?),
            epsilon,
        })
    }

    /// `[..., d] -> [..., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        module::layer_norm(x, self.gamma.val(), Some(self.beta.val()), self.epsilon)
    }
}

/// A lookup table of vectors.
#[derive(Module, Debug)]
pub struct Embedding {
    /// The table `[count, d]`.
    pub weight: Param<Tensor<2>>,
}

impl Embedding {
    /// Loads `{prefix}.weight`, `[count, d]`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        count: usize,
        d: usize,
    ) -> Result<Self, WeightError> {
        Ok(Embedding {
            weight: Param::from_tensor(loader.tensor(&format!("{prefix}.weight"), [count, d])?),
        })
    }

    /// `[batch, seq]` ids `-> [batch, seq, d]`.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        module::embedding(self.weight.val(), ids)
    }
}

/// A 2-D convolution with square kernels, as diffusers' `nn.Conv2d` layers.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// Weight `[out, in, k, k]` (same layout as PyTorch).
    pub weight: Param<Tensor<4>>,
    /// Bias `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Stride on both axes.
    pub stride: usize,
    /// Zero padding before the first row/column.
    pub pad_begin: usize,
    /// Zero padding after the last row/column (differs from `pad_begin` only for the VAE's
    /// downsampler, which pads right and bottom by one).
    pub pad_end: usize,
}

impl Conv2d {
    /// Loads `{prefix}.weight` `[out, in, k, k]` and `{prefix}.bias` `[out]`, with the usual
    /// "same" padding k/2 on every side.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: [usize; 2],
        kernel: usize,
        stride: usize,
    ) -> Result<Self, WeightError> {
        let [c_in, c_out] = channels;
        Ok(Conv2d {
            weight: Param::from_tensor(
                loader.tensor(&format!("{prefix}.weight"), [c_out, c_in, kernel, kernel])?,
            ),
            bias: Some(Param::from_tensor(
                loader.tensor(&format!("{prefix}.bias"), [c_out])?,
            )),
            stride,
            pad_begin: kernel / 2,
            pad_end: kernel / 2,
        })
    }

    /// The same layer with explicit padding (before, after) on both axes.
    pub fn with_padding(mut self, begin: usize, end: usize) -> Self {
        self.pad_begin = begin;
        self.pad_end = end;
        self
    }

    /// `[batch, in, h, w] -> [batch, out, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pad = (self.pad_begin, self.pad_end);
        self.convolve(x, [pad, pad])
    }

    fn convolve(&self, x: Tensor<4>, padding: [(usize, usize); 2]) -> Tensor<4> {
        let options = ConvOptions {
            stride: [self.stride; 2],
            padding,
            dilation: [1; 2],
            groups: 1,
        };
        module::conv2d(
            x,
            self.weight.val(),
            self.bias.as_ref().map(|b| b.val()),
            options,
        )
    }

    /// The same convolution over a feature map cut into horizontal bands (stride 1, "same"
    /// padding): each band borrows the rows it needs from its neighbours, so the result equals
    /// the whole map's, band by band, without the whole map in one buffer.
    pub fn forward_bands(&self, bands: &[Tensor<4>]) -> Vec<Tensor<4>> {
        let halo = self.pad_begin;
        if halo == 0 {
            return bands.iter().map(|b| self.forward(b.clone())).collect();
        }
        let edge = |band: &Tensor<4>| {
            let [batch, channels, _, width] = band.dims();
            Tensor::<4>::zeros([batch, channels, halo, width], &band.device())
        };
        (0..bands.len())
            .map(|i| {
                let above = match i {
                    0 => edge(&bands[0]),
                    _ => {
                        let prev = &bands[i - 1];
                        prev.clone().narrow(2, prev.dims()[2] - halo, halo)
                    }
                };
                let below = match bands.get(i + 1) {
                    Some(next) => next.clone().narrow(2, 0, halo),
                    None => edge(&bands[i]),
                };
                let padded = Tensor::cat(vec![above, bands[i].clone(), below], 2);
                self.convolve(padded, [(0, 0), (halo, halo)])
            })
            .collect()
    }
}

/// Group normalization over `[batch, channels, h, w]`: statistics per sample and group of
/// channels, then a per-channel scale and shift.
#[derive(Module, Debug)]
pub struct GroupNorm {
    /// Scale `[channels]`.
    pub gamma: Param<Tensor<1>>,
    /// Shift `[channels]`.
    pub beta: Param<Tensor<1>>,
    /// Number of groups (32 throughout SD).
    pub groups: usize,
    /// Added to the variance (1e-5 in resnets, 1e-6 in transformers and the VAE).
    pub epsilon: f64,
}

impl GroupNorm {
    /// Loads `{prefix}.weight` and `{prefix}.bias`, both `[channels]`.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
        groups: usize,
        epsilon: f64,
    ) -> Result<Self, WeightError> {
        Ok(GroupNorm {
            gamma: Param::from_tensor(loader.tensor(&format!("{prefix}.weight"), [channels])?),
            beta: Param::from_tensor(loader.tensor(&format!("{prefix}.bias"), [channels])?),
            groups,
            epsilon,
        })
    }

    /// `[batch, channels, h, w] -> [batch, channels, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let (var, mean) = self.grouped(&x).var_mean_bias(2);
        self.normalize(x, mean, var)
    }

    /// The same normalization over a feature map cut into horizontal bands: the group
    /// statistics are taken over all bands (mean first, then the squared deviations, as the
    /// whole-map computation does), then each band is normalized on its own.
    pub fn forward_bands(&self, bands: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let [_, channels, _, width] = bands[0].dims();
        let rows: usize = bands.iter().map(|b| b.dims()[2]).sum();
        let count = ((channels / self.groups) * rows * width) as f64;
        let total = |parts: Vec<Tensor<3>>| {
            parts
                .into_iter()
                .reduce(|a, b| a + b)
                .expect("at least one band")
                .div_scalar(count)
        };
        let mean = total(bands.iter().map(|b| self.grouped(b).sum_dim(2)).collect());
        let var = total(
            bands
                .iter()
                .map(|b| (self.grouped(b) - mean.clone()).powi_scalar(2).sum_dim(2))
                .collect(),
        );
        bands
            .into_iter()
            .map(|b| self.normalize(b, mean.clone(), var.clone()))
            .collect()
    }

    /// `[batch, groups, channels/groups · h · w]`.
    fn grouped(&self, x: &Tensor<4>) -> Tensor<3> {
        let [batch, channels, h, w] = x.dims();
        x.clone()
            .reshape([batch, self.groups, (channels / self.groups) * h * w])
    }

    /// (x − mean)/sqrt(var + ε)·γ + β with per-group `mean` and `var` of shape `[batch, groups, 1]`.
    fn normalize(&self, x: Tensor<4>, mean: Tensor<3>, var: Tensor<3>) -> Tensor<4> {
        let [batch, channels, h, w] = x.dims();
        let normalized = (self.grouped(&x) - mean).div((var + self.epsilon).sqrt());
        let scale = self.gamma.val().reshape([1, channels, 1, 1]);
        let shift = self.beta.val().reshape([1, channels, 1, 1]);
        normalized.reshape([batch, channels, h, w]) * scale + shift
    }
}

/// A feature map as a token sequence: `[batch, c, h, w] -> [batch, h·w, c]` (row-major pixels).
pub fn to_tokens(x: Tensor<4>) -> Tensor<3> {
    let [batch, channels, h, w] = x.dims();
    x.reshape([batch, channels, h * w]).swap_dims(1, 2)
}

/// The inverse of [`to_tokens`]: `[batch, h·w, c] -> [batch, c, h, w]`.
pub fn from_tokens(t: Tensor<3>, [h, w]: [usize; 2]) -> Tensor<4> {
    let [batch, _, channels] = t.dims();
    t.swap_dims(1, 2).reshape([batch, channels, h, w])
}
