//! The small layers every network here is made of, each loaded from its diffusers tensor
//! names. They are plain burn modules over functional ops. Every weight arrives through
//! [`WeightSource::weight`], so a layer's matrix may be f32 or block-quantized
//! (docs/quantization.md): linear layers hand a quantized weight to burn's quantized matmul,
//! convolutions dequantize theirs just before use.

use burn::module::{Module, Param};
use burn::tensor::ops::ConvOptions;
use burn::tensor::{module, DType, Int, Tensor};

use super::budget;
use crate::weights::{WeightError, WeightSource};

/// Loads the vector `name` of length `len` (a bias, a norm's scale or shift).
fn vector<L: WeightSource>(
    loader: &mut L,
    name: &str,
    len: usize,
) -> Result<Param<Tensor<1>>, WeightError> {
    Ok(Param::from_tensor(
        loader.weight(name, &[len])?.into_vector(name),
    ))
}

/// Whether a tensor holds block-quantized values.
pub fn is_quantized<const D: usize>(tensor: &Tensor<D>) -> bool {
    matches!(tensor.dtype(), DType::QFloat(_))
}

/// A fully connected layer, `y = x Wᵀ + b` in PyTorch's terms.
#[derive(Module, Debug)]
pub struct Linear {
    /// Weight in burn's layout `[d_in, d_out]`: a transposed view of PyTorch's `[d_out, d_in]`,
    /// f32 or block-quantized along d_in.
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
        let name = format!("{prefix}.weight");
        let weight = loader.weight(&name, &[d_out, d_in])?.into_matrix(&name);
        let bias = if bias {
            Some(vector(loader, &format!("{prefix}.bias"), d_out)?)
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    /// `[..., d_in] -> [..., d_out]`. A quantized weight goes to burn's quantized matmul as
    /// one `[rows, d_in] × [d_in, d_out]` product (the leading dimensions folded into rows).
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let weight = self.weight.val();
        let bias = self.bias.as_ref().map(|b| b.val());
        if D <= 2 || !is_quantized(&weight) {
            return module::linear(x, weight, bias);
        }
        let mut dims = x.dims();
        let d_in = dims[D - 1];
        let rows = dims[..D - 1].iter().product();
        dims[D - 1] = weight.dims()[1];
        module::linear(x.reshape([rows, d_in]), weight, bias).reshape(dims)
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
            gamma: vector(loader, &format!("{prefix}.weight"), d)?,
            beta: vector(loader, &format!("{prefix}.bias"), d)?,
            epsilon,
        })
    }

    /// `[..., d] -> [..., d]`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        module::layer_norm(x, self.gamma.val(), Some(self.beta.val()), self.epsilon)
    }
}

/// A lookup table of vectors, kept in blocks of consecutive rows so that no lookup binds more
/// than one block: SD-2.x's token table `[49408, 1024]` is 193 MiB in f32, over WebGPU's
/// 128 MiB binding limit, and lives in two blocks (docs/quantization.md §4).
#[derive(Module, Debug)]
pub struct Embedding {
    /// The table's row blocks, `[rows_i, d]`, in order.
    pub blocks: Vec<Param<Tensor<2>>>,
}

impl Embedding {
    /// Loads `{prefix}.weight`, `[count, d]`, in the row blocks the loader's policy gives.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        count: usize,
        d: usize,
    ) -> Result<Self, WeightError> {
        let name = format!("{prefix}.weight");
        let blocks = loader.weight(&name, &[count, d])?.into_table(&name);
        Ok(Embedding {
            blocks: blocks.into_iter().map(Param::from_tensor).collect(),
        })
    }

    /// Rows in the table.
    pub fn count(&self) -> usize {
        self.blocks.iter().map(|b| b.dims()[0]).sum()
    }

    /// `[batch, seq]` ids `-> [batch, seq, d]`. With several blocks, each block looks up the
    /// ids it holds (the others clamped into it, then zeroed), and the parts add up: every
    /// row comes from exactly one block, plus exact zeros.
    pub fn forward(&self, ids: Tensor<2, Int>) -> Tensor<3> {
        if let [table] = self.blocks.as_slice() {
            return module::embedding(table.val(), ids);
        }
        let mut start = 0i64;
        let mut sum: Option<Tensor<3>> = None;
        for block in &self.blocks {
            let table = block.val();
            let rows = table.dims()[0] as i64;
            let local = ids.clone().sub_scalar(start).clamp(0, rows - 1);
            let inside = ids
                .clone()
                .greater_equal_elem(start)
                .bool_and(ids.clone().lower_elem(start + rows))
                .float()
                .unsqueeze_dim::<3>(2);
            let part = module::embedding(table, local) * inside;
            sum = Some(match sum {
                Some(s) => s + part,
                None => part,
            });
            start += rows;
        }
        sum.expect("a table has at least one block")
    }
}

/// A 2-D convolution with square kernels, as diffusers' `nn.Conv2d` layers.
#[derive(Module, Debug)]
pub struct Conv2d {
    /// Weight as the matrix `[out, in·k·k]` (PyTorch's `[out, in, k, k]`, rows flattened):
    /// f32, or block-quantized along its rows, which burn can only pack in 2-D.
    pub weight: Param<Tensor<2>>,
    /// Bias `[out]`.
    pub bias: Option<Param<Tensor<1>>>,
    /// Kernel side.
    pub kernel: usize,
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
        let name = format!("{prefix}.weight");
        let weight = loader
            .weight(&name, &[c_out, c_in, kernel, kernel])?
            .into_matrix(&name);
        Ok(Conv2d {
            weight: Param::from_tensor(weight),
            bias: Some(vector(loader, &format!("{prefix}.bias"), c_out)?),
            kernel,
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

    /// `[c_in, c_out]`.
    pub fn channels(&self) -> [usize; 2] {
        let [c_out, row] = self.weight.dims();
        [row / (self.kernel * self.kernel), c_out]
    }

    /// The kernel `[out, in, k, k]` as conv2d takes it: a view of an f32 weight, or a
    /// quantized weight dequantized into a temporary (at most 118 MB, the largest SD-2.1 conv
    /// in f32), dropped after the convolution.
    fn kernel_tensor(&self) -> Tensor<4> {
        let [c_in, c_out] = self.channels();
        let weight = self.weight.val();
        if is_quantized(&weight) {
            budget::note(&weight.dims());
        }
        weight
            .dequantize()
            .reshape([c_out, c_in, self.kernel, self.kernel])
    }

    /// `[batch, in, h, w] -> [batch, out, h', w']`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let pad = (self.pad_begin, self.pad_end);
        self.convolve(x, self.kernel_tensor(), [pad, pad])
    }

    fn convolve(&self, x: Tensor<4>, kernel: Tensor<4>, padding: [(usize, usize); 2]) -> Tensor<4> {
        let options = ConvOptions {
            stride: [self.stride; 2],
            padding,
            dilation: [1; 2],
            groups: 1,
        };
        module::conv2d(x, kernel, self.bias.as_ref().map(|b| b.val()), options)
    }

    /// The same convolution over a feature map cut into horizontal bands: band i gives the
    /// output rows whose windows start in it, borrowing the rows those windows reach in its
    /// neighbours (zeros beyond the map's edges, as padding), so the result equals the whole
    /// map's, band by band, without the whole map in one buffer. Each band but the last must
    /// start and end on a multiple of the stride.
    pub fn forward_bands(&self, bands: &[Tensor<4>]) -> Vec<Tensor<4>> {
        let (k, s, pad) = (self.kernel, self.stride, self.pad_begin);
        let heights: Vec<usize> = bands.iter().map(|b| b.dims()[2]).collect();
        let total: usize = heights.iter().sum();
        let out_total = (total + pad + self.pad_end - k) / s + 1;
        let kernel = self.kernel_tensor();
        let zeros = |like: &Tensor<4>, rows: usize| {
            let [batch, channels, _, width] = like.dims();
            Tensor::<4>::zeros([batch, channels, rows, width], &like.device())
        };
        let mut outputs = Vec::with_capacity(bands.len());
        let mut start = 0usize;
        for (i, band) in bands.iter().enumerate() {
            let end = start + heights[i];
            let last = i + 1 == bands.len();
            debug_assert!(start % s == 0 && (last || end % s == 0));
            // Output rows o read input rows o·s − pad .. o·s − pad + k.
            let (first_out, end_out) = (start / s, if last { out_total } else { end / s });
            if end_out <= first_out {
                start = end;
                continue;
            }
            let above = (start + pad).saturating_sub(first_out * s);
            let below = ((end_out - 1) * s + k).saturating_sub(pad + end);
            let mut parts = Vec::with_capacity(3);
            if above > 0 {
                parts.push(match i {
                    0 => zeros(band, above),
                    _ => {
                        let prev = &bands[i - 1];
                        prev.clone().narrow(2, heights[i - 1] - above, above)
                    }
                });
            }
            parts.push(band.clone());
            if below > 0 {
                parts.push(match bands.get(i + 1) {
                    Some(next) => next.clone().narrow(2, 0, below),
                    None => zeros(band, below),
                });
            }
            let padded = if parts.len() == 1 {
                band.clone()
            } else {
                Tensor::cat(parts, 2)
            };
            let columns = (self.pad_begin, self.pad_end);
            outputs.push(self.convolve(padded, kernel.clone(), [(0, 0), columns]));
            start = end;
        }
        outputs
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
            gamma: vector(loader, &format!("{prefix}.weight"), channels)?,
            beta: vector(loader, &format!("{prefix}.bias"), channels)?,
            groups,
            epsilon,
        })
    }

    /// `[batch, channels, h, w] -> [batch, channels, h, w]`.
    pub fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let count = self.group_size(&x) as f64;
        let mean = self.group_sum(x.clone()).div_scalar(count);
        let var = self.group_sum(self.deviation(&x, &mean)).div_scalar(count);
        self.normalize(x, mean, var)
    }

    /// The same normalization over a feature map cut into horizontal bands: the group
    /// statistics are taken over all bands (mean first, then the squared deviations, as the
    /// whole-map computation does), then each band is normalized on its own.
    pub fn forward_bands(&self, bands: Vec<Tensor<4>>) -> Vec<Tensor<4>> {
        let count: usize = bands.iter().map(|b| self.group_size(b)).sum();
        let total = |parts: Vec<Tensor<3>>| {
            parts
                .into_iter()
                .reduce(|a, b| a + b)
                .expect("at least one band")
                .div_scalar(count as f64)
        };
        let mean = total(bands.iter().map(|b| self.group_sum(b.clone())).collect());
        let var = total(
            bands
                .iter()
                .map(|b| self.group_sum(self.deviation(b, &mean)))
                .collect(),
        );
        bands
            .into_iter()
            .map(|b| self.normalize(b, mean.clone(), var.clone()))
            .collect()
    }

    /// Values per group and sample: `channels/groups · h · w`.
    fn group_size(&self, x: &Tensor<4>) -> usize {
        let [_, channels, h, w] = x.dims();
        (channels / self.groups) * h * w
    }

    /// Per-group sums `[batch, groups, 1]`, taken row by row and then over the rows. One pass
    /// along a whole group (16 384 values and more) accumulates rounding error that
    /// near-constant maps, such as a mostly gray canvas, turn into a visible error in the
    /// variance: the CPU COW run drifted 5e-4 from PyTorch that way, 1e-5 this way.
    fn group_sum(&self, x: Tensor<4>) -> Tensor<3> {
        let [batch, channels, h, w] = x.dims();
        x.reshape([batch, self.groups, (channels / self.groups) * h, w])
            .sum_dim(3)
            .sum_dim(2)
            .reshape([batch, self.groups, 1])
    }

    /// (x − mean)² per element, back in the map's shape.
    fn deviation(&self, x: &Tensor<4>, mean: &Tensor<3>) -> Tensor<4> {
        (self.grouped(x) - mean.clone())
            .powi_scalar(2)
            .reshape(x.dims())
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
