//! Weights: safetensors files in the diffusers layout, read tensor by tensor into burn tensors
//! with exact name and shape checks.
//!
//! A model is built by asking a [`WeightSource`] for each tensor by its diffusers name and the
//! shape the config implies; at the end [`WeightSource::finish`] rejects any tensor the model
//! did not ask for. Every failure is a [`WeightError`] naming the file and the tensor, and a
//! builder that fails returns no model at all: there is never a half-loaded model.
//!
//! Sources of tensors:
//! - [`TensorLoader`]: random access to one file (memory, or a file on disk), synchronous.
//! - [`PreparedWeights`]: tensors already on the device, streamed in by the pipeline
//!   (`crate::pipeline::load`) from a folder, a URL, picked files or the [`cache`].
//! - [`HeaderCheck`]: a file's header alone, to check it against a model before its body is
//!   fetched.
//! - [`RandomWeights`]: seeded random values for the full-size architecture.
//!
//! Every tensor passes through [`materialize`] (host bytes to device) on the way in, converted
//! as the component's [`Policy`] says (f32, or block-quantized matrices: docs/quantization.md).

pub mod cache;
mod check;
mod component;
pub mod materialize;
pub mod pack;
pub mod policy;
mod prepared;
pub mod quant;
mod random;
pub mod reader;
pub mod safetensors;
mod source;

use std::collections::BTreeSet;

use burn::tensor::{Device, TensorData};

pub use check::HeaderCheck;
pub use component::Component;
pub use materialize::{materialize, resident_bytes, ConversionPolicy, DeviceWeight, Resident};
pub use policy::{Policy, Scheme};
pub use prepared::PreparedWeights;
pub use random::RandomWeights;
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
    /// No weights file was found for a model component.
    #[error("{dir}: no weights file ({candidates})")]
    NotFound {
        /// The folder searched.
        dir: String,
        /// The names tried.
        candidates: String,
    },
    /// A pack's tensor does not match its manifest: damaged, or made with other schemes.
    #[error("{file}: tensor {name:?} {detail}")]
    Pack {
        /// File label.
        file: String,
        /// Tensor name.
        name: String,
        /// What does not match.
        detail: String,
    },
    /// The bytes are not a safetensors file at all (a web page, an error message).
    #[error("{file} is not a safetensors file: {detail}")]
    NotSafetensors {
        /// File label.
        file: String,
        /// What was found instead, and what to check.
        detail: String,
    },
    /// A tensor could not be converted to the form the device keeps.
    #[error("{file}: tensor {name:?} cannot be converted: {detail}")]
    Conversion {
        /// File label.
        file: String,
        /// Tensor name.
        name: String,
        /// Why.
        detail: String,
    },
}

/// Where a model's builder gets its tensors, by diffusers name and expected shape.
pub trait WeightSource {
    /// The device tensors are created on.
    fn device(&self) -> &Device;

    /// Whether a tensor of this name exists (for parts whose naming changed across releases).
    fn contains(&self, name: &str) -> bool;

    /// One weight on the device in its layer's layout ([`DeviceWeight`]), converted as the
    /// source's policy says (through [`materialize`]), checked against `shape`, the shape the
    /// file stores. Each name is taken once.
    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError>;

    /// Ends loading: fails if tensors are left that the model never asked for, except those
    /// whose names end with one of `ignorable_suffixes`.
    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError>;
}

/// Looks a tensor up in a header and checks that the model can take it: present, of the
/// expected shape, and stored as floats.
pub(crate) fn check_entry<'h>(
    header: &'h SafetensorsHeader,
    name: &str,
    shape: &[usize],
) -> Result<&'h TensorInfo, WeightError> {
    let file = &header.file;
    let info = header
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
    Ok(info)
}

/// The error for tensors a model left unused, if any (names in name order).
pub(crate) fn check_leftovers<'n>(
    file: &str,
    names: impl Iterator<Item = &'n String>,
    taken: &BTreeSet<String>,
    ignorable_suffixes: &[&str],
) -> Result<(), WeightError> {
    let unused: Vec<&String> = names
        .filter(|n| !taken.contains(*n))
        .filter(|n| !ignorable_suffixes.iter().any(|s| n.ends_with(s)))
        .collect();
    match unused.first() {
        None => Ok(()),
        Some(first) => Err(WeightError::Unexpected {
            file: file.to_string(),
            first: (*first).clone(),
            count: unused.len(),
        }),
    }
}

/// Builds burn tensors from one safetensors file with random access (in memory, or a file on
/// disk read tensor by tensor), checking every name and shape, and remembering which tensors
/// were taken so that [`WeightSource::finish`] can reject leftovers.
pub struct TensorLoader<S: ByteSource> {
    header: SafetensorsHeader,
    source: S,
    device: Device,
    policy: Policy,
    taken: BTreeSet<String>,
}

impl<S: ByteSource> TensorLoader<S> {
    /// Opens a source: reads and validates its header (and, where the source knows its length,
    /// that no tensor runs past the end) before any tensor is read. Tensors are converted to
    /// f32; see [`TensorLoader::with_policy`].
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

    /// The policy weights are converted with.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The validated header.
    pub fn header(&self) -> &SafetensorsHeader {
        &self.header
    }

    /// One tensor on the host in its stored dtype, checked against the expected shape.
    pub fn data(&mut self, name: &str, shape: &[usize]) -> Result<TensorData, WeightError> {
        let info = check_entry(&self.header, name, shape)?.clone();
        let file = &self.header.file;
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
        let data = safetensors::decode(&info, bytes).expect("float dtypes were checked above");
        self.taken.insert(name.to_string());
        Ok(data)
    }

    /// One tensor's values as f32 on the host, checked against the expected shape.
    pub fn values(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, WeightError> {
        let data = self.data(name, shape)?;
        let file = self.header.file.clone();
        let conversion = |detail: String| WeightError::Conversion {
            file: file.clone(),
            name: name.to_string(),
            detail,
        };
        materialize::convert(name, data, &Policy::f32())
            .map_err(|e| conversion(e.to_string()))?
            .try_into_vec::<f32>()
            .map_err(|e| conversion(format!("{e:?}")))
    }
}

impl<S: ByteSource> WeightSource for TensorLoader<S> {
    fn device(&self) -> &Device {
        &self.device
    }

    fn contains(&self, name: &str) -> bool {
        self.header.tensors.contains_key(name)
    }

    fn weight(&mut self, name: &str, shape: &[usize]) -> Result<DeviceWeight, WeightError> {
        let data = self.data(name, shape)?;
        materialize(name, data, &self.policy, &self.device).map_err(|e| WeightError::Conversion {
            file: self.header.file.clone(),
            name: name.to_string(),
            detail: e.to_string(),
        })
    }

    fn finish(&mut self, ignorable_suffixes: &[&str]) -> Result<(), WeightError> {
        check_leftovers(
            &self.header.file,
            self.header.tensors.keys(),
            &self.taken,
            ignorable_suffixes,
        )
    }
}
