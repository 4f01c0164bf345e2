//! The quantized pack: a model's weights already converted for the device, in files that load
//! as fast as they download (docs/weights.md, "Packs").
//!
//! A pack is a folder (on disk or at a URL) in the diffusers layout's shape:
//!
//! ```text
//! pack.json                                    the manifest (below), written last
//! tokenizer/vocab.json, tokenizer/merges.txt   as in the source
//! text_encoder/config.json, vae/config.json, unet/config.json, scheduler/scheduler_config.json
//! text_encoder/model.pack.safetensors          one safetensors file per component
//! vae/diffusion_pytorch_model.pack.safetensors
//! unet/diffusion_pytorch_model.pack.safetensors
//! ```
//!
//! Each component file is an ordinary safetensors file holding every tensor the model takes,
//! in the source file's order and under its name, in one of two forms:
//! - a matrix the component's scheme quantizes: burn's quantized bytes (packed values, then
//!   the f32 scales, docs/quantization.md §2) as a `U8` tensor of that many bytes;
//! - anything kept as a float on the device: `F16` in the source's shape (the published SD-2.1
//!   files are fp16, so nothing is lost; it widens to f32 exactly when loaded).
//!
//! The manifest names the source and revision, each component's scheme, the conversion
//! version (`policy`, the same string that keys the cache), every text file with its size and
//! CRC32, and per component the source file's safetensors header (so that a load checks the
//! model against the real names and shapes before any body byte is read) and every tensor
//! with its form, size and CRC32. A loader trusts nothing it has not checked against it.

use std::collections::BTreeMap;

use burn::tensor::{DType, TensorData};
use serde::{Deserialize, Serialize};

use super::cache::FileRecord;
use super::policy::{Policy, Scheme, Storage};
use super::quant::burn_scheme;
use super::safetensors::{Dtype, TensorInfo};
use super::{Component, ConversionPolicy};

/// The `format` of every manifest this build writes and reads.
pub const PACK_FORMAT: &str = "sow-studio-pack/1";

/// The manifest's path in a pack.
pub const PACK_MANIFEST: &str = "pack.json";

/// The manifest of a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackManifest {
    /// [`PACK_FORMAT`].
    pub format: String,
    /// The model the pack was made from, as it was given to `sow pack`.
    pub source: String,
    /// The source's revision, where it names one.
    pub revision: Option<String>,
    /// The conversion, as the cache keys it ([`ConversionPolicy::cache_key`]): a pack made by
    /// a build that converts differently is refused rather than misread.
    pub policy: String,
    /// The checksum of every file and tensor: `crc32` (docs/weights.md says why).
    pub checksum: String,
    /// Text files by path; `None` for an optional file the source does not have.
    pub files: BTreeMap<String, Option<FileRecord>>,
    /// Components by name.
    pub components: BTreeMap<Component, PackComponent>,
}

/// One component of a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackComponent {
    /// Its safetensors file, relative to the pack's root.
    pub file: String,
    /// How its matrices are kept on the device.
    pub scheme: Scheme,
    /// The source's weights file it was made from.
    pub source_file: String,
    /// That file's safetensors header JSON: the real names, dtypes and shapes.
    pub source_header: String,
    /// Its tensors, in file order.
    pub tensors: Vec<PackTensor>,
}

/// One tensor of a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PackTensor {
    /// Its name (the source's).
    pub name: String,
    /// Its position in the source file (the cache's index).
    pub index: usize,
    /// How it is carried.
    #[serde(flatten)]
    pub form: PackedForm,
    /// Bytes of data.
    pub bytes: u64,
    /// CRC32 of the data.
    pub crc32: u32,
}

/// How a tensor is carried in a pack.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "form", rename_all = "snake_case")]
pub enum PackedForm {
    /// A float on the device, carried as f16 in the source's shape.
    F16,
    /// A block-quantized matrix: burn's bytes of this dtype and stored shape, carried as u8.
    Quantized {
        /// burn's quantized dtype (value width, block, f32 scales).
        dtype: DType,
        /// The stored shape (`[out, in·k·k]` for a convolution).
        shape: Vec<usize>,
    },
}

impl PackManifest {
    /// Reads and checks a manifest: its format, its checksum kind, and that its conversion is
    /// this build's. The error says what is wrong, for a message naming the pack.
    pub fn parse(json: &str) -> Result<PackManifest, String> {
        let format = serde_json::from_str::<serde_json::Value>(json)
            .map_err(|e| format!("{PACK_MANIFEST} is not JSON ({e})"))?
            .get("format")
            .and_then(|f| f.as_str().map(str::to_string));
        match format.as_deref() {
            Some(PACK_FORMAT) => {}
            Some(other) => {
                return Err(format!(
                    "{PACK_MANIFEST} is in format {other:?}; this build reads {PACK_FORMAT:?}"
                ))
            }
            None => return Err(format!("{PACK_MANIFEST} has no \"format\"")),
        }
        let manifest: PackManifest = serde_json::from_str(json)
            .map_err(|e| format!("{PACK_MANIFEST} is malformed ({e})"))?;
        if manifest.checksum != "crc32" {
            return Err(format!(
                "{PACK_MANIFEST} uses the checksum {:?}; this build checks crc32",
                manifest.checksum
            ));
        }
        for component in Component::ALL {
            if !manifest.components.contains_key(&component) {
                return Err(format!("{PACK_MANIFEST} has no {component}"));
            }
        }
        let expected = manifest.conversion().cache_key();
        if manifest.policy != expected {
            return Err(format!(
                "it was converted as {:?}, and this build converts its schemes as {expected:?}: \
                 make the pack again with this build's `sow pack`",
                manifest.policy
            ));
        }
        Ok(manifest)
    }

    /// The scheme of each component.
    pub fn conversion(&self) -> ConversionPolicy {
        let scheme = |c: Component| self.components.get(&c).map_or(Scheme::F32, |p| p.scheme);
        ConversionPolicy {
            text_encoder: scheme(Component::TextEncoder),
            vae: scheme(Component::Vae),
            unet: scheme(Component::Unet),
        }
    }

    /// Bytes of every file and tensor of the pack (the manifest aside).
    pub fn bytes(&self) -> u64 {
        let files: u64 = self.files.values().flatten().map(|f| f.bytes).sum();
        files
            + self
                .components
                .values()
                .map(PackComponent::bytes)
                .sum::<u64>()
    }
}

impl PackComponent {
    /// Bytes of its tensors.
    pub fn bytes(&self) -> u64 {
        self.tensors.iter().map(|t| t.bytes).sum()
    }

    /// The source header as a safetensors prefix (8-byte length, then the JSON), for
    /// [`super::SafetensorsHeader::parse`].
    pub fn source_prefix(&self) -> Vec<u8> {
        let mut prefix = (self.source_header.len() as u64).to_le_bytes().to_vec();
        prefix.extend_from_slice(self.source_header.as_bytes());
        prefix
    }
}

/// The form a converted tensor (the cache's form, [`super::materialize::convert`]) takes in a
/// pack, with its bytes there.
pub fn pack_tensor(converted: &TensorData) -> Result<(PackedForm, Vec<u8>), String> {
    match converted.dtype() {
        DType::QFloat(_) => Ok((
            PackedForm::Quantized {
                dtype: converted.dtype(),
                shape: converted.shape().to_vec(),
            },
            converted.as_bytes().to_vec(),
        )),
        DType::F32 => {
            let values = converted.as_slice::<f32>().map_err(|e| format!("{e:?}"))?;
            if let Some(v) = values.iter().find(|v| v.is_finite() && v.abs() > 65504.0) {
                return Err(format!(
                    "it holds {v}, beyond f16's range, and floats are carried as f16"
                ));
            }
            let bytes = values
                .iter()
                .flat_map(|&v| burn::tensor::f16::from_f32(v).to_le_bytes())
                .collect();
            Ok((PackedForm::F16, bytes))
        }
        other => Err(format!("a converted tensor is never {other:?}")),
    }
}

/// A tensor read from a pack, checked against its record and against the scheme its
/// component's policy applies: quantized data as the device keeps it, or f16 data in the
/// source's shape (still to be widened by [`super::materialize::convert`]).
pub fn unpack_tensor(
    record: &PackTensor,
    info: &TensorInfo,
    source_shape: &[usize],
    policy: &Policy,
    bytes: Vec<u8>,
) -> Result<TensorData, String> {
    if bytes.len() as u64 != record.bytes || info.end - info.start != record.bytes {
        return Err(format!(
            "has {} bytes where {PACK_MANIFEST} lists {}",
            bytes.len(),
            record.bytes
        ));
    }
    if crc32fast::hash(&bytes) != record.crc32 {
        return Err(format!(
            "does not match its checksum in {PACK_MANIFEST}: the pack is damaged (fetch it again)"
        ));
    }
    let expected = policy.storage(&record.name, source_shape);
    match (&record.form, expected) {
        (PackedForm::F16, Storage::F32) if info.dtype == Dtype::F16 => {
            TensorData::try_from_bytes_vec(bytes, source_shape.to_vec(), DType::F16)
                .map_err(|e| format!("{e:?}"))
        }
        (PackedForm::Quantized { dtype, shape }, Storage::Quantized(format))
            if *dtype == DType::QFloat(burn_scheme(format)) =>
        {
            TensorData::try_from_bytes_vec(bytes, shape.clone(), *dtype)
                .map_err(|e| format!("{e:?}"))
        }
        (form, expected) => Err(format!(
            "is carried as {} but the pack's {} scheme keeps it as {}: the pack's schemes do \
             not match its tensors",
            form_name(form),
            policy.scheme(),
            match expected {
                Storage::F32 => "a float".to_string(),
                Storage::Quantized(f) => format!("{}-bit blocks of {}", f.bits.width(), f.block),
            }
        )),
    }
}

fn form_name(form: &PackedForm) -> String {
    match form {
        PackedForm::F16 => "f16".to_string(),
        PackedForm::Quantized { dtype, .. } => format!("quantized {dtype:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::weights::materialize::convert;

    fn info(bytes: u64, dtype: &str) -> TensorInfo {
        TensorInfo {
            dtype: Dtype::from_name(dtype).unwrap(),
            shape: vec![bytes as usize],
            start: 0,
            end: bytes,
        }
    }

    #[test]
    fn a_quantized_matrix_round_trips_and_a_wrong_scheme_is_refused() {
        let values: Vec<f32> = (0..64 * 4).map(|i| (i as f32 * 0.37).sin()).collect();
        let source = TensorData::new(values, [4, 64]);
        let q8 = Policy::new(Component::TextEncoder, Scheme::Q8);
        let converted = convert("a.weight", source, &q8).unwrap();
        let (form, bytes) = pack_tensor(&converted).unwrap();
        let record = PackTensor {
            name: "a.weight".into(),
            index: 0,
            form,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        };
        let at = info(record.bytes, "U8");
        let back = unpack_tensor(&record, &at, &[4, 64], &q8, bytes.clone()).unwrap();
        assert_eq!(back, converted);

        let q4 = Policy::new(Component::TextEncoder, Scheme::Q4);
        let wrong = unpack_tensor(&record, &at, &[4, 64], &q4, bytes.clone()).unwrap_err();
        assert!(wrong.contains("do not match its tensors"), "{wrong}");

        let mut damaged = bytes;
        damaged[3] ^= 1;
        let err = unpack_tensor(&record, &at, &[4, 64], &q8, damaged).unwrap_err();
        assert!(err.contains("checksum"), "{err}");
    }

    #[test]
    fn floats_travel_as_f16() {
        let converted = TensorData::new(vec![0.5f32, -1.25, 3.0], [3]);
        let (form, bytes) = pack_tensor(&converted).unwrap();
        assert_eq!(form, PackedForm::F16);
        let record = PackTensor {
            name: "b.bias".into(),
            index: 1,
            form,
            bytes: 6,
            crc32: crc32fast::hash(&bytes),
        };
        let back = unpack_tensor(&record, &info(6, "F16"), &[3], &Policy::f32(), bytes).unwrap();
        assert_eq!(back.convert::<f32>(), converted);
        let huge = TensorData::new(vec![1e6f32], [1]);
        assert!(pack_tensor(&huge).unwrap_err().contains("f16"));
    }
}
