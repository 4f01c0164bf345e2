//! The one place every weight passes through between host bytes and the device
//! (docs/quantization.md §1).
//!
//! A tensor read from a file (or a stream, or the cache) arrives as host [`TensorData`] in its
//! stored dtype. [`convert`] turns it into the form the device keeps, as the component's
//! [`Policy`] says: f32, or a block-quantized matrix; that host form is what the cache stores.
//! [`upload`] puts it on the device in the layout its layer computes with ([`DeviceWeight`]).
//! [`materialize`] is the two in a row. The choice of scheme lives here alone, and the scheme is
//! part of every cache key ([`ConversionPolicy::cache_key`]).

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::{DType, Device, Tensor, TensorData};

use super::policy::{Policy, Scheme, Storage, WeightKind};
use super::quant::QuantizedMatrix;
use super::Component;

/// The scheme of each component: a parameter of every load, and part of its cache key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct ConversionPolicy {
    /// The text encoder's scheme.
    pub text_encoder: Scheme,
    /// The VAE's scheme.
    pub vae: Scheme,
    /// The UNet's scheme.
    pub unet: Scheme,
}

impl ConversionPolicy {
    /// f32 everywhere: what the golden suite checks against the references.
    pub const F32: ConversionPolicy = ConversionPolicy {
        text_encoder: Scheme::F32,
        vae: Scheme::F32,
        unet: Scheme::F32,
    };

    /// The UNet in `scheme`, the rest f32: the usual choice (8-bit keeps the full-size UNet
    /// under 1 GB on the device, docs/quantization.md §2).
    pub const fn unet(scheme: Scheme) -> ConversionPolicy {
        ConversionPolicy {
            unet: scheme,
            ..ConversionPolicy::F32
        }
    }

    /// The scheme of one component.
    pub fn scheme(&self, component: Component) -> Scheme {
        match component {
            Component::TextEncoder => self.text_encoder,
            Component::Vae => self.vae,
            Component::Unet => self.unet,
        }
    }

    /// The detailed policy one component's tensors are converted with: its scheme, with that
    /// component's sensitive layers kept in f32.
    pub fn policy(&self, component: Component) -> Policy {
        Policy::new(component, self.scheme(component))
    }

    /// The policy as one string for cache keys, e.g. `text_encoder=f32.1,vae=f32.1,unet=q8.1`.
    pub fn cache_key(&self) -> String {
        Component::ALL
            .iter()
            .map(|&c| format!("{}={}", c.dir(), self.scheme(c).key()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Why a tensor could not be converted or uploaded (the caller names the file and tensor).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConversionError(pub String);

/// Host side: a tensor in its stored dtype (`data`, in the file's shape) to the form the
/// device keeps under `policy` (and the cache stores): f32 in the file's shape, or, for a
/// matrix the policy quantizes, the packed block-quantized matrix in its stored shape
/// (`[d_out, d_in]` for linear layers, `[out, in·k·k]` for convolutions).
pub fn convert(
    name: &str,
    data: TensorData,
    policy: &Policy,
) -> Result<TensorData, ConversionError> {
    let shape = data.shape().to_vec();
    let kind = WeightKind::of(name, &shape);
    if kind == WeightKind::Other {
        return Err(ConversionError(format!(
            "shape {shape:?}: no layer takes a weight of rank {}",
            shape.len()
        )));
    }
    let float = match data.dtype() {
        DType::F32 | DType::F16 | DType::BF16 => data
            .try_cast(DType::F32)
            .map_err(|e| ConversionError(e.to_string()))?,
        other => return Err(ConversionError(format!("{other:?} is not a float dtype"))),
    };
    match policy.storage(name, &shape) {
        Storage::F32 => Ok(float),
        Storage::Quantized(format) => {
            let stored = kind.stored_shape(&shape);
            let values = float
                .try_into_vec::<f32>()
                .map_err(|e| ConversionError(format!("{e:?}")))?;
            Ok(QuantizedMatrix::quantize(&values, [stored[0], stored[1]], format).to_tensor_data())
        }
    }
}

/// Device side: a converted tensor (`data`, from [`convert`] or the cache) onto `device` in
/// its layer's layout, by its kind (from `name` and its shape in the file, `file_shape`):
/// - vectors as they are;
/// - linear weights as stored, `[d_out, d_in]`, seen through a transposed view as burn's
///   `[d_in, d_out]` (burn's matmul reads it strided, quantized too, blocks along d_in);
/// - convolution weights as the matrix `[out, in·k·k]`;
/// - lookup tables in row blocks of at most the policy's budget, so that no lookup binds
///   more than WebGPU's 128 MiB (docs/quantization.md §4).
pub fn upload(
    name: &str,
    file_shape: &[usize],
    data: TensorData,
    policy: &Policy,
    device: &Device,
) -> Result<DeviceWeight, ConversionError> {
    let kind = WeightKind::of(name, file_shape);
    let stored = kind.stored_shape(file_shape);
    let count: usize = stored.iter().product();
    let dtype = data.dtype();
    let found: usize = data.shape().iter().product();
    if found != count {
        return Err(ConversionError(format!(
            "the converted tensor has shape {:?}, which does not hold the file's {file_shape:?}",
            data.shape().to_vec()
        )));
    }
    // Keep the converted dtype (the device's default float dtype could differ); a quantized
    // tensor carries its scheme in its dtype.
    let data = match data.shape().to_vec() == stored {
        true => data,
        false if matches!(dtype, DType::QFloat(_)) => {
            return Err(ConversionError(format!(
                "a quantized tensor of shape {:?} is not stored as {stored:?}",
                data.shape().to_vec()
            )))
        }
        false => TensorData::from_bytes(data.into_bytes(), stored.clone(), dtype),
    };
    let matrix = |data: TensorData| -> Tensor<2> {
        match dtype {
            DType::QFloat(_) => Tensor::from_data(data, device),
            _ => Tensor::from_data(data, (device, dtype)),
        }
    };
    Ok(match kind {
        WeightKind::Vector => DeviceWeight::Vector(Tensor::from_data(data, (device, dtype))),
        WeightKind::Table => {
            if matches!(dtype, DType::QFloat(_)) {
                return Err(ConversionError("lookup tables are kept as floats".into()));
            }
            let [rows, width] = [stored[0], stored[1]];
            let row_bytes = (width * dtype.size()).max(1);
            let per_block = (policy.table_block_bytes() / row_bytes).clamp(1, rows.max(1));
            if per_block >= rows {
                DeviceWeight::Table(vec![matrix(data)])
            } else {
                let bytes = data.as_bytes();
                DeviceWeight::Table(
                    bytes
                        .chunks(per_block * row_bytes)
                        .map(|block| {
                            let shape = [block.len() / row_bytes, width];
                            matrix(TensorData::from_bytes_vec(block.to_vec(), shape, dtype))
                        })
                        .collect(),
                )
            }
        }
        WeightKind::Linear => DeviceWeight::Matrix(matrix(data).transpose()),
        WeightKind::Conv => DeviceWeight::Matrix(matrix(data)),
        WeightKind::Other => {
            return Err(ConversionError(format!(
                "shape {file_shape:?}: no layer takes a weight of rank {}",
                file_shape.len()
            )))
        }
    })
}

/// [`convert`], then [`upload`]: the path of every tensor that is not already converted.
pub fn materialize(
    name: &str,
    data: TensorData,
    policy: &Policy,
    device: &Device,
) -> Result<DeviceWeight, ConversionError> {
    let file_shape = data.shape().to_vec();
    upload(
        name,
        &file_shape,
        convert(name, data, policy)?,
        policy,
        device,
    )
}

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
        assert_eq!(kept.dims(), [64, 288]);
        let bias = materialize("b.conv1.bias", data(&[64]), &policy, &device).unwrap();
        assert_eq!(bias.device_bytes(), 256);
        assert!(materialize("x.weight", data(&[2, 2, 2]), &policy, &device).is_err());
    }

    #[test]
    fn the_converted_form_uploads_as_materialize_would() {
        // What the cache stores (convert) and uploads later equals materialize's result.
        let device = Device::flex();
        let policy = Policy::new(Component::Unet, Scheme::Q4);
        let converted = convert("b.conv1.weight", data(&[64, 32, 3, 3]), &policy).unwrap();
        assert_eq!(converted.shape().to_vec(), vec![64, 288]);
        let bytes = converted.as_bytes().to_vec();
        let restored = TensorData::from_bytes_vec(bytes, [64, 288], converted.dtype());
        let uploaded = upload(
            "b.conv1.weight",
            &[64, 32, 3, 3],
            restored,
            &policy,
            &device,
        )
        .unwrap()
        .into_matrix("b");
        let direct = materialize("b.conv1.weight", data(&[64, 32, 3, 3]), &policy, &device)
            .unwrap()
            .into_matrix("b");
        assert_eq!(
            uploaded.dequantize().into_data(),
            direct.dequantize().into_data()
        );
        // An f32 convolution is cached in the file's shape and reshaped on upload.
        let f32 = convert("b.conv1.weight", data(&[4, 2, 3, 3]), &Policy::f32()).unwrap();
        assert_eq!(f32.shape().to_vec(), vec![4, 2, 3, 3]);
        let matrix = upload(
            "b.conv1.weight",
            &[4, 2, 3, 3],
            f32,
            &Policy::f32(),
            &device,
        )
        .unwrap()
        .into_matrix("b");
        assert_eq!(matrix.dims(), [4, 18]);
        assert!(upload(
            "b.conv1.weight",
            &[4, 2, 3, 3],
            data(&[5]),
            &Policy::f32(),
            &device
        )
        .is_err());
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

    #[test]
    fn cache_keys_name_every_component_scheme() {
        assert_eq!(
            ConversionPolicy::unet(Scheme::Q8).cache_key(),
            "text_encoder=f32.1,vae=f32.1,unet=q8.1"
        );
        assert_eq!(ConversionPolicy::default(), ConversionPolicy::F32);
    }
}
