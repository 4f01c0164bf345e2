//! Reading the safetensors format: an 8-byte little-endian header length, a JSON header that
//! names every tensor with its dtype, shape and byte range, then the raw data.
//!
//! The header is parsed and checked on its own, before any tensor data is read, so that a bad
//! file is rejected before a single weight reaches the GPU; each tensor's bytes are then read
//! one at a time from a [`ByteSource`], so a multi-gigabyte file never has to sit in memory whole.

use std::collections::BTreeMap;

use burn::tensor::{bf16, f16, DType, TensorData};

use super::WeightError;

/// The largest header accepted. The safetensors reference rejects headers over 100 MB; a real
/// SD-2.1 UNet header is under 200 KB, so anything near the limit is a corrupt length field.
pub const MAX_HEADER_BYTES: u64 = 100 * 1024 * 1024;

/// An element type that can appear in a safetensors file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// 32-bit IEEE float.
    F32,
    /// 16-bit IEEE float (the `*.fp16.safetensors` variants).
    F16,
    /// bfloat16.
    BF16,
    /// Any other dtype the format allows (integers, f64, f8, bool): listed so that a file
    /// holding one can be opened and the offending tensor named, but never loaded as weights.
    Other(&'static str),
}

impl Dtype {
    fn parse(name: &str) -> Option<Dtype> {
        Some(match name {
            "F32" => Dtype::F32,
            "F16" => Dtype::F16,
            "BF16" => Dtype::BF16,
            "F64" => Dtype::Other("F64"),
            "I64" => Dtype::Other("I64"),
            "I32" => Dtype::Other("I32"),
            "I16" => Dtype::Other("I16"),
            "I8" => Dtype::Other("I8"),
            "U64" => Dtype::Other("U64"),
            "U32" => Dtype::Other("U32"),
            "U16" => Dtype::Other("U16"),
            "U8" => Dtype::Other("U8"),
            "BOOL" => Dtype::Other("BOOL"),
            "F8_E4M3" => Dtype::Other("F8_E4M3"),
            "F8_E5M2" => Dtype::Other("F8_E5M2"),
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F16 | Dtype::BF16 => 2,
            Dtype::Other(name) => match name {
                "F64" | "I64" | "U64" => 8,
                "I32" | "U32" => 4,
                "I16" | "U16" => 2,
                _ => 1,
            },
        }
    }

    /// The matching burn dtype, for the float dtypes weights may have.
    pub fn burn(self) -> Option<DType> {
        match self {
            Dtype::F32 => Some(DType::F32),
            Dtype::F16 => Some(DType::F16),
            Dtype::BF16 => Some(DType::BF16),
            Dtype::Other(_) => None,
        }
    }

    /// The dtype of this name, as the format writes it (`"F16"`, …).
    pub fn from_name(name: &str) -> Option<Dtype> {
        Dtype::parse(name)
    }

    /// The name the format uses for this dtype.
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "F32",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::Other(name) => name,
        }
    }
}

/// Where one tensor lives in a safetensors file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Shape, outermost dimension first (PyTorch order).
    pub shape: Vec<usize>,
    /// Byte range relative to the start of the file (header included), so that it can be
    /// used directly for a seek or an HTTP range request.
    pub start: u64,
    /// One past the last byte, relative to the start of the file.
    pub end: u64,
}

impl TensorInfo {
    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }
}

/// The parsed and validated header of a safetensors file.
#[derive(Clone, Debug)]
pub struct SafetensorsHeader {
    /// A label for error messages: usually the file's path or URL.
    pub file: String,
    /// Every tensor by name, in name order.
    pub tensors: BTreeMap<String, TensorInfo>,
    /// The free-form `__metadata__` map, if the file has one.
    pub metadata: BTreeMap<String, String>,
    /// Total size the file must have: the end of its last tensor.
    pub data_end: u64,
}

impl SafetensorsHeader {
    /// Reads the length prefix and returns how many bytes the whole header takes, prefix
    /// included: the number of bytes [`SafetensorsHeader::parse`] needs.
    pub fn header_len(file: &str, prefix: &[u8]) -> Result<u64, WeightError> {
        let bytes: [u8; 8] = prefix
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| WeightError::Truncated {
                file: file.to_string(),
                detail: format!(
                    "the file has {} bytes, fewer than the 8-byte header length",
                    prefix.len()
                ),
            })?;
        let n = u64::from_le_bytes(bytes);
        if n > MAX_HEADER_BYTES && looks_like_text(&bytes) {
            return Err(WeightError::NotSafetensors {
                file: file.to_string(),
                detail: format!(
                    "it begins with the text {:?} where a safetensors file has its 8-byte header \
                     length: the server sent a web page or an error message instead of the file \
                     (check that the address points at the file itself, e.g. \
                     `…/resolve/<revision>/…` rather than `…/blob/…`)",
                    String::from_utf8_lossy(prefix.get(..prefix.len().min(32)).unwrap_or(&[]))
                ),
            });
        }
        if n > MAX_HEADER_BYTES {
            return Err(WeightError::HeaderTooLarge {
                file: file.to_string(),
                size: n,
                limit: MAX_HEADER_BYTES,
            });
        }
        Ok(8 + n)
    }

    /// Parses and validates a header from the first bytes of a file (at least
    /// [`SafetensorsHeader::header_len`] of them). `file_len`, when known, is checked
    /// against the tensors' byte ranges so that a truncated file is caught up front.
    pub fn parse(file: &str, bytes: &[u8], file_len: Option<u64>) -> Result<Self, WeightError> {
        let total = Self::header_len(file, bytes)?;
        let json = bytes
            .get(8..total as usize)
            .ok_or_else(|| WeightError::Truncated {
                file: file.to_string(),
                detail: format!(
                    "the header needs {} bytes but the file has {}",
                    total,
                    bytes.len()
                ),
            })?;
        let malformed = |detail: String| WeightError::MalformedHeader {
            file: file.to_string(),
            detail,
        };
        let text = std::str::from_utf8(json)
            .map_err(|e| malformed(format!("the header is not UTF-8: {e}")))?;
        let root: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| malformed(format!("the header is not valid JSON: {e}")))?;
        let entries = root
            .as_object()
            .ok_or_else(|| malformed("the header is not a JSON object".to_string()))?;

        let mut tensors = BTreeMap::new();
        let mut metadata = BTreeMap::new();
        for (name, entry) in entries {
            if name == "__metadata__" {
                let map = entry
                    .as_object()
                    .ok_or_else(|| malformed("__metadata__ is not an object".to_string()))?;
                for (k, v) in map {
                    let v = v.as_str().ok_or_else(|| {
                        malformed(format!("__metadata__ value for {k:?} is not a string"))
                    })?;
                    metadata.insert(k.clone(), v.to_string());
                }
                continue;
            }
            let info = parse_entry(entry, total)
                .map_err(|detail| malformed(format!("tensor {name:?}: {detail}")))?;
            tensors.insert(name.clone(), info);
        }

        check_layout(file, &tensors)?;
        let data_end = tensors.values().map(|t| t.end).max().unwrap_or(total);
        if let Some(len) = file_len {
            if len < data_end {
                // Name the first tensor that does not fit, so the message points at the damage.
                let first_cut = tensors
                    .iter()
                    .filter(|(_, t)| t.end > len)
                    .min_by_key(|(_, t)| t.start)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_default();
                return Err(WeightError::Truncated {
                    file: file.to_string(),
                    detail: format!(
                        "the file has {len} bytes but its tensors need {data_end} (tensor {first_cut:?} is cut off)"
                    ),
                });
            }
        }
        Ok(SafetensorsHeader {
            file: file.to_string(),
            tensors,
            metadata,
            data_end,
        })
    }
}

fn parse_entry(entry: &serde_json::Value, header_end: u64) -> Result<TensorInfo, String> {
    let obj = entry.as_object().ok_or("its entry is not an object")?;
    let dtype_name = obj
        .get("dtype")
        .and_then(|d| d.as_str())
        .ok_or("no dtype string")?;
    let dtype = Dtype::parse(dtype_name).ok_or_else(|| format!("unknown dtype {dtype_name:?}"))?;
    let shape = obj
        .get("shape")
        .and_then(|s| s.as_array())
        .ok_or("no shape array")?
        .iter()
        .map(|d| {
            d.as_u64()
                .map(|d| d as usize)
                .ok_or("a shape entry is not a count")
        })
        .collect::<Result<Vec<_>, _>>()?;
    let offsets = obj
        .get("data_offsets")
        .and_then(|o| o.as_array())
        .filter(|o| o.len() == 2)
        .ok_or("data_offsets is not a pair")?;
    let begin = offsets[0]
        .as_u64()
        .ok_or("data_offsets[0] is not a count")?;
    let end = offsets[1]
        .as_u64()
        .ok_or("data_offsets[1] is not a count")?;
    if end < begin {
        return Err(format!("data_offsets [{begin}, {end}] run backwards"));
    }
    let numel = shape
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(d as u64))
        .ok_or("the shape overflows")?;
    let expected = numel
        .checked_mul(dtype.size() as u64)
        .ok_or("the byte size overflows")?;
    if end - begin != expected {
        return Err(format!(
            "shape {shape:?} of {dtype_name} needs {expected} bytes but data_offsets span {}",
            end - begin
        ));
    }
    Ok(TensorInfo {
        dtype,
        shape,
        start: header_end + begin,
        end: header_end + end,
    })
}

/// Tensors must not overlap: two weights sharing bytes is a corrupt file, never a feature.
fn check_layout(file: &str, tensors: &BTreeMap<String, TensorInfo>) -> Result<(), WeightError> {
    let mut ranges: Vec<(&String, &TensorInfo)> = tensors.iter().collect();
    ranges.sort_by_key(|(_, t)| (t.start, t.end));
    for pair in ranges.windows(2) {
        let (a_name, a) = pair[0];
        let (b_name, b) = pair[1];
        if b.start < a.end {
            return Err(WeightError::MalformedHeader {
                file: file.to_string(),
                detail: format!("tensors {a_name:?} and {b_name:?} overlap"),
            });
        }
    }
    Ok(())
}

/// Converts the little-endian bytes of one tensor to f32 values.
pub fn decode_f32(dtype: Dtype, bytes: &[u8]) -> Option<Vec<f32>> {
    let values = match dtype {
        Dtype::F32 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::F16 => bytes
            .chunks_exact(2)
            .map(|b| f16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        Dtype::BF16 => bytes
            .chunks_exact(2)
            .map(|b| bf16::from_bits(u16::from_le_bytes([b[0], b[1]])).to_f32())
            .collect(),
        Dtype::Other(_) => return None,
    };
    Some(values)
}

/// One tensor's little-endian bytes as host data in its stored dtype (`None` for dtypes that
/// are not weights).
pub fn decode(info: &TensorInfo, bytes: Vec<u8>) -> Option<TensorData> {
    let dtype = info.dtype.burn()?;
    TensorData::try_from_bytes_vec(bytes, info.shape.clone(), dtype).ok()
}

/// Whether 8 bytes read as a header length are printable text instead (a web page, JSON, an
/// error message): a real length fits in far fewer bytes and has zeros at the top.
fn looks_like_text(bytes: &[u8; 8]) -> bool {
    bytes
        .iter()
        .all(|&b| b.is_ascii_graphic() || b.is_ascii_whitespace())
}

/// The start of a safetensors file for tensors laid out one after another in the given order:
/// the 8-byte length and the JSON header, padded with spaces to 8-byte alignment as the
/// reference writer does. The data of each tensor follows, in the same order.
pub fn header_bytes(tensors: &[(&str, Dtype, &[usize])]) -> Vec<u8> {
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, dtype, shape) in tensors {
        let len = shape.iter().product::<usize>() * dtype.size();
        header.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype.name(), "shape": shape, "data_offsets": [offset, offset + len]}),
        );
        offset += len;
    }
    let mut json = serde_json::Value::Object(header).to_string().into_bytes();
    while !json.len().is_multiple_of(8) {
        json.push(b' ');
    }
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Writes tensors as a safetensors file (F32 only): saved latents and noise files
/// (`sow generate --save-latents`), and tests that build or alter a file.
pub fn serialize_f32(tensors: &[(&str, &[usize], &[f32])]) -> Vec<u8> {
    let entries: Vec<(&str, Dtype, &[usize])> = tensors
        .iter()
        .map(|(name, shape, _)| (*name, Dtype::F32, *shape))
        .collect();
    let mut out = header_bytes(&entries);
    for (_, _, values) in tensors {
        for v in values.iter() {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
    out
}
