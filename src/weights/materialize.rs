//! The one place every weight passes through between host bytes and the device.
//!
//! A tensor read from a file (or a stream, or the cache) arrives as host [`TensorData`] in its
//! stored dtype. [`convert`] turns it into the form the device keeps, as the component's
//! [`Scheme`] asks (today: f32); that host form is what the cache stores. [`upload`] puts it
//! on the device. [`materialize`] is the two in a row. Quantized schemes plug into
//! [`convert`], so the choice of scheme lives in exactly one place, and the scheme is part of
//! every cache key ([`ConversionPolicy::cache_key`]).

use burn::tensor::{DType, Device, Tensor, TensorData};

use super::Component;

/// How one component's tensors are stored on the device.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// 32-bit floats, whatever the file stores (f16 and bf16 widen exactly).
    #[default]
    F32,
}

impl Scheme {
    /// A short, stable name; a new conversion gets a new name, so that the cache never hands
    /// out tensors converted the old way.
    pub fn key(self) -> &'static str {
        match self {
            Scheme::F32 => "f32.1",
        }
    }
}

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

    /// The scheme of one component.
    pub fn scheme(&self, component: Component) -> Scheme {
        match component {
            Component::TextEncoder => self.text_encoder,
            Component::Vae => self.vae,
            Component::Unet => self.unet,
        }
    }

    /// The policy as one string for cache keys, e.g. `text_encoder=f32.1,vae=f32.1,unet=f32.1`.
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

/// Host side: a tensor in its stored dtype to the form the device keeps under `scheme` (and
/// the cache stores). `name` is there for schemes that treat some tensors differently.
pub fn convert(
    name: &str,
    data: TensorData,
    scheme: Scheme,
) -> Result<TensorData, ConversionError> {
    let _ = name;
    match scheme {
        Scheme::F32 => match data.dtype() {
            DType::F32 | DType::F16 | DType::BF16 => data
                .try_cast(DType::F32)
                .map_err(|e| ConversionError(e.to_string())),
            other => Err(ConversionError(format!("{other:?} is not a float dtype"))),
        },
    }
}

/// Device side: a converted tensor onto `device`, keeping its rank and dtype.
pub fn upload(data: TensorData, device: &Device) -> Result<DeviceTensor, ConversionError> {
    // Keep the converted dtype (the device's default float dtype could differ).
    let dtype = data.dtype();
    let tensor = match data.rank() {
        1 => DeviceTensor::R1(Tensor::from_data(data, (device, dtype))),
        2 => DeviceTensor::R2(Tensor::from_data(data, (device, dtype))),
        3 => DeviceTensor::R3(Tensor::from_data(data, (device, dtype))),
        4 => DeviceTensor::R4(Tensor::from_data(data, (device, dtype))),
        rank => {
            return Err(ConversionError(format!(
                "rank {rank} tensors are not model weights"
            )))
        }
    };
    Ok(tensor)
}

/// [`convert`], then [`upload`]: the path of every tensor that is not already converted.
pub fn materialize(
    name: &str,
    data: TensorData,
    scheme: Scheme,
    device: &Device,
) -> Result<DeviceTensor, ConversionError> {
    upload(convert(name, data, scheme)?, device)
}

/// A tensor on the device with the rank it was created with (burn's tensors carry their rank
/// in the type; weights of every rank share one map).
#[derive(Clone, Debug)]
pub enum DeviceTensor {
    /// Biases, norm scales.
    R1(Tensor<1>),
    /// Linear weights, embeddings.
    R2(Tensor<2>),
    /// Rare; kept for completeness.
    R3(Tensor<3>),
    /// Convolution weights.
    R4(Tensor<4>),
}

impl DeviceTensor {
    /// The shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            DeviceTensor::R1(t) => t.dims().to_vec(),
            DeviceTensor::R2(t) => t.dims().to_vec(),
            DeviceTensor::R3(t) => t.dims().to_vec(),
            DeviceTensor::R4(t) => t.dims().to_vec(),
        }
    }

    /// Bytes the tensor takes on the device.
    pub fn device_bytes(&self) -> usize {
        let dtype = match self {
            DeviceTensor::R1(t) => t.dtype(),
            DeviceTensor::R2(t) => t.dtype(),
            DeviceTensor::R3(t) => t.dtype(),
            DeviceTensor::R4(t) => t.dtype(),
        };
        self.shape().iter().product::<usize>() * dtype.size()
    }

    /// The tensor as rank `D` with this `shape` (a reshape only when the ranks differ).
    pub fn into_tensor<const D: usize>(self, shape: [usize; D]) -> Tensor<D> {
        match self {
            DeviceTensor::R1(t) => t.reshape(shape),
            DeviceTensor::R2(t) => t.reshape(shape),
            DeviceTensor::R3(t) => t.reshape(shape),
            DeviceTensor::R4(t) => t.reshape(shape),
        }
    }
}
