//! The one door between host bytes and the device: every weight passes through [`materialize`],
//! which applies the conversion [`Policy`] and the device layout of its kind
//! (docs/quantization.md §1).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::policy::{Policy, Storage, WeightKind};
use super::quant::QuantizedMatrix;
use super::WeightError;

/// A weight on the device, in the layout its layer computes with.
#[derive(Clone, Debug)]
pub enum DeviceWeight {
    /// A bias or a norm's scale or shift, f32.
    Vector(Tensor<1>),
    /// A linear layer's weight as burn's `[d_in, d_out]` (a transposed view of PyTorch's
    /// layout), or a convolution's as `[out, in·k·k]`: f32, or block-quantized (its dtype says
    /// which).
    Matrix(Tensor<2>),
    /// A lookup table `[count, d]`, f32, in blocks of consecutive rows, each within the
    /// policy's byte budget (one block when the table fits).
    Table(Vec<Tensor<2>>),
}

impl DeviceWeight {
    /// The vector; panics if this weight is another kind (the model asked for the wrong kind).
    pub fn into_vector(self, name: &str) -> Tensor<1> {
        match self {
            DeviceWeight::Vector(t) => t,
            other => panic!("{name} is {}, not a vector", other.kind_name()),
        }
    }

    /// The matrix; panics if this weight is another kind.
    pub fn into_matrix(self, name: &str) -> Tensor<2> {
        match self {
            DeviceWeight::Matrix(t) => t,
            other => panic!("{name} is {}, not a matrix", other.kind_name()),
        }
    }

    /// The table's row blocks; panics if this weight is another kind.
    pub fn into_table(self, name: &str) -> Vec<Tensor<2>> {
        match self {
            DeviceWeight::Table(t) => t,
            other => panic!("{name} is {}, not a table", other.kind_name()),
        }
    }

    fn kind_name(&self) -> &'static str {
        match self {
            DeviceWeight::Vector(_) => "a vector",
            DeviceWeight::Matrix(_) => "a matrix",
            DeviceWeight::Table(_) => "a table",
        }
    }

    /// Bytes this weight keeps on the device (values and scales; our own count from its shape
    /// and dtype, not the allocator's).
    pub fn device_bytes(&self) -> usize {
        match self {
            DeviceWeight::Vector(t) => tensor_bytes(t.dtype(), &t.dims()),
            DeviceWeight::Matrix(t) => tensor_bytes(t.dtype(), &t.dims()),
            DeviceWeight::Table(blocks) => blocks
                .iter()
                .map(|t| tensor_bytes(t.dtype(), &t.dims()))
                .sum(),
        }
    }
}

/// Bytes of a tensor of this dtype and shape: packed values plus one f32 scale per block for
/// the quantized ones.
pub fn tensor_bytes(dtype: DType, dims: &[usize]) -> usize {
    let count: usize = dims.iter().product();
    match dtype {
        DType::QFloat(scheme) => {
            let per_scale = scheme
                .block_size()
                .map_or(count, |b| b.num_elements().max(1));
            count * scheme.size_bits_value() / 8 + count.div_ceil(per_scale) * 4
        }
        other => count * other.size(),
    }
}

/// Turns one weight, as its file has it (`data`: any float dtype, the file's shape), into the
/// device tensor its layer uses, converted as `policy` says for `name`:
/// - vectors: f32 as they are;
/// - linear weights `[d_out, d_in]`: as stored, seen through a transposed view as burn's
///   `[d_in, d_out]`, f32 or quantized;
/// - convolution weights `[out, in, k, k]`: the matrix `[out, in·k·k]`, f32 or quantized;
/// - lookup tables: f32 in row blocks within the policy's budget.
pub fn materialize(
    name: &str,
    data: TensorData,
    policy: &Policy,
    device: &Device,
) -> Result<DeviceWeight, WeightError> {
    let shape = data.shape().to_vec();
    let kind = WeightKind::of(name, &shape);
    let values: Vec<f32> = data
        .convert::<f32>()
        .try_into_vec::<f32>()
        .expect("converted to f32");
    Ok(match kind {
        WeightKind::Vector => DeviceWeight::Vector(Tensor::from_data(
            TensorData::new(values, [shape[0]]),
            device,
        )),
        WeightKind::Table => {
            let [count, width] = [shape[0], shape[1]];
            let rows = (policy.table_block_bytes() / (4 * width).max(1)).clamp(1, count.max(1));
            DeviceWeight::Table(
                values
                    .chunks(rows * width)
                    .map(|block| {
                        let data = TensorData::new(block.to_vec(), [block.len() / width, width]);
                        Tensor::from_data(data, device)
                    })
                    .collect(),
            )
        }
        WeightKind::Linear | WeightKind::Conv => {
            let stored = kind.stored_shape(&shape);
            let stored = [stored[0], stored[1]];
            let matrix: Tensor<2> = match policy.storage(name, &shape) {
                Storage::F32 => Tensor::from_data(TensorData::new(values, stored), device),
                Storage::Quantized(format) => {
                    let q = QuantizedMatrix::quantize(&values, stored, format);
                    Tensor::from_data(q.to_tensor_data(), device)
                }
            };
            // A linear weight stays as PyTorch stores it, `[d_out, d_in]`, and is used through
            // a transposed view: burn's matmul reads it strided (quantized too, with the
            // blocks along d_in).
            DeviceWeight::Matrix(match kind {
                WeightKind::Linear => matrix.transpose(),
                _ => matrix,
            })
        }
        WeightKind::Other => {
            return Err(WeightError::Layout {
                name: name.to_string(),
                shape,
            })
        }
    })
}

/// What a loaded model keeps on the device, by storage (our own byte count of its parameters'
/// shapes and dtypes).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Resident {
    /// Parameters kept as floats.
    pub float_params: usize,
    /// Bytes of those.
    pub float_bytes: usize,
    /// Parameters kept block-quantized.
    pub quantized_params: usize,
    /// Bytes of those, packed values plus scales.
    pub quantized_bytes: usize,
}

impl Resident {
    /// All bytes.
    pub fn bytes(&self) -> usize {
        self.float_bytes + self.quantized_bytes
    }

    /// All parameters.
    pub fn params(&self) -> usize {
        self.float_params + self.quantized_params
    }
}

impl ModuleVisitor for Resident {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let tensor = param.val();
        let (dtype, dims) = (tensor.dtype(), tensor.dims());
        let count: usize = dims.iter().product();
        let bytes = tensor_bytes(dtype, &dims);
        if matches!(dtype, DType::QFloat(_)) {
            self.quantized_params += count;
            self.quantized_bytes += bytes;
        } else {
            self.float_params += count;
            self.float_bytes += bytes;
        }
    }
}

/// Counts what `module` keeps on the device.
pub fn resident_bytes<M: Module>(module: &M) -> Resident {
    let mut resident = Resident::default();
    module.visit(&mut resident);
    resident
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use crate::weights::{Component, Scheme};

    fn data(shape: &[usize]) -> TensorData {
        let count = shape.iter().product::<usize>();
        TensorData::new(
            (0..count).map(|i| (i % 13) as f32 - 6.0).collect(),
            shape.to_vec(),
        )
    }

    #[test]
    fn gives_each_kind_its_layout() {
        let device = Device::flex();
        let policy = Policy::new(Component::Unet, Scheme::Q8);
        let linear = materialize("a.to_q.weight", data(&[64, 32]), &policy, &device).unwrap();
        let linear = linear.into_matrix("a.to_q.weight");
        assert_eq!(linear.dims(), [32, 64]);
        assert!(matches!(linear.dtype(), DType::QFloat(_)));
        let conv = materialize("b.conv1.weight", data(&[64, 32, 3, 3]), &policy, &device)
            .unwrap()
            .into_matrix("b.conv1.weight");
        assert_eq!(conv.dims(), [64, 288]);
        let kept = materialize("conv_in.weight", data(&[64, 32, 3, 3]), &policy, &device)
            .unwrap()
            .into_matrix("conv_in.weight");
        assert_eq!(kept.dtype(), DType::F32);
        let bias = materialize("b.conv1.bias", data(&[64]), &policy, &device).unwrap();
        assert_eq!(bias.device_bytes(), 256);
        assert!(materialize("x.weight", data(&[2, 2, 2]), &policy, &device).is_err());
    }

    #[test]
    fn splits_tables_into_row_blocks_within_the_budget() {
        let device = Device::flex();
        let policy = Policy::f32().with_table_block_bytes(2 * 3 * 4);
        let table = materialize("t.token_embedding.weight", data(&[5, 3]), &policy, &device)
            .unwrap()
            .into_table("t");
        let rows: Vec<usize> = table.iter().map(|b| b.dims()[0]).collect();
        assert_eq!(rows, vec![2, 2, 1]);
        let joined = Tensor::cat(table, 0).into_data();
        assert_eq!(joined, data(&[5, 3]));
    }

    #[test]
    fn counts_packed_values_and_scales() {
        let scheme = crate::weights::quant::burn_scheme(crate::weights::policy::QuantFormat {
            bits: crate::weights::policy::Bits::Four,
            block: 64,
        });
        // 1280·2880 values at half a byte, plus one f32 scale per 64.
        assert_eq!(
            tensor_bytes(DType::QFloat(scheme), &[1280, 2880]),
            1280 * 2880 / 2 + 1280 * 45 * 4
        );
        assert_eq!(tensor_bytes(DType::F32, &[3, 5]), 60);
    }
}
