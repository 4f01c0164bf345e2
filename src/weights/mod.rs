//! Weights: safetensors files in the diffusers layout, read tensor by tensor into burn tensors
//! with exact name and shape checks.
//!
//! A model is built by asking a [`TensorLoader`] for each tensor by its diffusers name and the
//! shape the config implies; at the end [`TensorLoader::finish`] rejects any tensor the model
//! did not ask for. Every failure is a [`WeightError`] naming the file and the tensor, and a
//! builder that fails returns no model at all: there is never a half-loaded model.

mod materialize;
pub mod policy;
pub mod quant;
pub mod safetensors;
mod source;

use std::collections::BTreeSet;

use burn::tensor::{Device, TensorData};

pub use materialize::{materialize, resident_bytes, DeviceWeight, Resident};
pub use policy::{Component, Policy, Scheme};
pub use safetensors::{Dtype, SafetensorsHeader, TensorInfo};
#[cfg(not(target_arch = "wasm32"))]
pub use source::{find_weights_file, FileSource};
pub use source::{ByteSource, MemorySource};

/// Everything that can go wrong while reading weights.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WeightError {
    /// The model needs a tensor the file does not have.
    #[error("{file}: missing tensor {name:?} (the model needs shape {expected:?})")]
    Missing {
        /// File label.
        file: String,
        /// Tensor name.
        name: String,
        /// Shape the model expected.
        expected: Vec<usize>,
    },
    /// The file has tensors the model does not use: a different model, or a naming mismatch.
    #[error("{file}: unexpected tensor {first:?} ({count} tensor(s) the model does not use)")]
    Unexpected {
        /// File label.
        file: String,
        /// The first unused tensor, in name order.
        first: String,
        /// How many tensors were left unused.
        count: usize,
    },
    /// A tensor exists but with another shape than the config implies.
    #[error("{file}: tensor {name:?} has shape {found:?}, but the model needs {expected:?}")]
    Shape {
        /// File label.
        file: String,
        /// Tensor name.
        name: String,
        /// Shape in the file.
        found: Vec<usize>,
        /// Shape the model expected.
        expected: Vec<usize>,
    },
    /// A tensor is stored in a dtype the engine does not load as weights.
    #[error("{file}: tensor {name:?} is {dtype}; only F32, F16 and BF16 weights are supported")]
    UnsupportedDtype {
        /// File label.
        file: String,
        /// Tensor name.
        name: String,
        /// The dtype found.
        dtype: String,
    },
    /// The file ends before the data its header promises.
    #[error("{file} is truncated: {detail}")]
    Truncated {
        /// File label.
        file: String,
        /// What is missing.
        detail: String,
    },
    /// The header is not a valid safetensors header.
    #[error("{file} has a malformed safetensors header: {detail}")]
    MalformedHeader {
        /// File label.
        file: String,
        /// What is wrong.
        detail: String,
    },
    /// The header length field is absurd: not a safetensors file, or a corrupt one.
    #[error(
        "{file} declares a {size}-byte header, over the {limit}-byte limit: not a safetensors file, or a corrupt one"
    )]
    HeaderTooLarge {
        /// File label.
        file: String,
        /// Declared header size.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Reading the bytes failed.
    #[error("{file}: cannot read: {detail}")]
    Io {
        /// File label.
        file: String,
        /// The underlying error.
        detail: String,
    },
    /// A tensor whose rank fits no layer (SD-2.x weights are vectors, matrices and 4-D
    /// convolution kernels).
    #[error("tensor {name:?} has shape {shape:?}: no layer takes a weight of that rank")]
    Layout {
        /// Tensor name.
        name: String,
        /// Its shape.
        shape: Vec<usize>,
    },
    /// No weights file was found for a model component.
    #[error("{dir}: no weights file ({candidates})")]
    NotFound {
        /// The folder searched.
        dir: String,
        /// The names tried.
        candidates: String,
    },
}

/// Where a model's builder gets its tensors, by diffusers name and expected shape: a
/// safetensors file ([`TensorLoader`]) or, for tests and benchmarks of the full-size
/// architecture without its weights, seeded random values ([`RandomWeights`]).
pub trait WeightSource {
    /// The device tensors are created on.
    fn device(&self) -> &Device;

    /// Whether a tensor of this name exists (for parts whose naming changed across releases).
    fn contains(&self, name: &str) -> bool;

    /// One tensor's values as f32 on the host, checked against the expected shape.
    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError>;

    /// The conversion policy weights from this source are materialized with.
    fn policy(&self) -> &Policy;

    /// One weight on the device in its layer's layout, converted as the policy says (through
    /// [`materialize`], the one door every weight passes), checked against the file shape.
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError> {
        let values = self.values(name, shape)?;
        materialize(
            name,
            TensorData::new(values, shape.to_vec()),
            self.policy(),
            self.device(),
        )
    }

    /// Ends loading: fails if tensors are left that the model never asked for, except those
    /// whose names end with one of `ignorable_suffixes`.
    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError>;
}

mod random;
pub use random::RandomWeights;

/// Builds burn tensors from one safetensors file, checking every name and shape, and
/// remembering which tensors were taken so that [`TensorLoader::finish`] can reject leftovers.
pub struct TensorLoader<S: ByteSource> {
    header: SafetensorsHeader,
    source: S,
    device: Device,
    policy: Policy,
    taken: BTreeSet<String>,
}

impl<S: ByteSource> TensorLoader<S> {
    /// Opens a source: reads and validates its header (and, where the source knows its length,
    /// that no tensor runs past the end) before any tensor is read.
    pub fn open(file: &str, mut source: S, device: &Device) -> Result<Self, WeightError> {
        let io = |detail: String| WeightError::Io {
            file: file.to_string(),
            detail,
        };
        let len = source.len();
        let prefix_end = len.map_or(8, |l| l.min(8));
        let prefix = source.read_range(0, prefix_end).map_err(io)?;
        let header_len = SafetensorsHeader::header_len(file, &prefix)?;
        if let Some(l) = len {
            if l < header_len {
                return Err(WeightError::Truncated {
                    file: file.to_string(),
                    detail: format!("the header needs {header_len} bytes but the file has {l}"),
                });
            }
        }
        let head = source.read_range(0, header_len).map_err(io)?;
        let header = SafetensorsHeader::parse(file, &head, len)?;
        Ok(TensorLoader {
            header,
            source,
            device: device.clone(),
            policy: Policy::f32(),
            taken: BTreeSet::new(),
        })
    }

    /// The same loader converting weights as `policy` says (f32 everywhere by default).
    pub fn with_policy(mut self, policy: Policy) -> Self {
        self.policy = policy;
        self
    }

    /// The validated header.
    pub fn header(&self) -> &SafetensorsHeader {
        &self.header
    }
}

impl<S: ByteSource> WeightSource for TensorLoader<S> {
    fn device(&self) -> &Device {
        &self.device
    }

    fn policy(&self) -> &Policy {
        &self.policy
    }

    fn contains(&self, name: &str) -> bool {
        self.header.tensors.contains_key(name)
    }

    fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        let file = &self.header.file;
        let info = self
            .header
            .tensors
            .get(name)
            .ok_or_else(|| WeightError::Missing {
                file: file.clone(),
                name: name.to_string(),
                expected: shape.to_vec(),
            })?;
        if info.shape != shape {
            return Err(WeightError::Shape {
                file: file.clone(),
                name: name.to_string(),
                found: info.shape.clone(),
                expected: shape.to_vec(),
            });
        }
        if let Dtype::Other(dtype) = info.dtype {
            return Err(WeightError::UnsupportedDtype {
                file: file.clone(),
                name: name.to_string(),
                dtype: dtype.to_string(),
            });
        }
        let bytes = self
            .source
            .read_range(info.start, info.end)
            .map_err(|detail| WeightError::Io {
                file: file.clone(),
                detail: format!("tensor {name:?}: {detail}"),
            })?;
        if bytes.len() as u64 != info.end - info.start {
            return Err(WeightError::Truncated {
                file: file.clone(),
                detail: format!("tensor {name:?} is cut off"),
            });
        }
        let values = safetensors::decode_f32(info.dtype, &bytes)
            .expect("non-float dtypes were rejected above");
        self.taken.insert(name.to_string());
        Ok(values)
    }

    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        let unused: Vec<&String> = self
            .header
            .tensors
            .keys()
            .filter(|n| !self.taken.contains(*n))
            .filter(|n| !ignorable_suffixes.iter().any(|s| n.ends_with(s)))
            .collect();
        match unused.first() {
            None => Ok(()),
            Some(first) => Err(WeightError::Unexpected {
                file: self.header.file.clone(),
                first: (*first).clone(),
                count: unused.len(),
            }),
        }
    }
}
