//! Writing a quantized pack (`sow pack`, docs/weights.md "Packs"; the format is
//! [`crate::weights::pack`]).
//!
//! A pack is made in two steps that reuse the load path: the source is pulled into a cache
//! entry (every tensor checked against the model and converted under the chosen schemes,
//! resumable), then the complete entry is written out as the pack, one tensor at a time, its
//! manifest last. A remote source goes through the user's cache, so a pack made twice
//! downloads once; a local folder through a scratch cache beside the output, removed after.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use burn::tensor::{DType, Device};

use super::load::{key, pull_into};
use super::progress::{now_seconds, LoadEvent};
use super::{LoadError, LoadOptions, ModelSource};
use crate::weights::cache::{Cache, CacheEntry, CachedTensor, FileRecord, TensorRecord};
use crate::weights::pack::{
    pack_tensor, PackComponent, PackManifest, PackTensor, PackedForm, PACK_FORMAT, PACK_MANIFEST,
};
use crate::weights::safetensors::{header_bytes, Dtype};
use crate::weights::{Component, ConversionPolicy};

/// What `sow pack` reports.
#[derive(Clone, Debug, PartialEq)]
pub struct PackReport {
    /// Bytes of each component's file (its safetensors header included).
    pub component_bytes: BTreeMap<Component, u64>,
    /// Bytes of the whole pack (text files and manifest included): what a load transfers.
    pub total_bytes: u64,
    /// Bytes the source's download transferred (0 for a local folder or a cached source).
    pub transferred: u64,
    /// Wall time, seconds.
    pub seconds: f64,
}

/// Makes a pack of `source` in `out` (created; it must be empty or absent) with the schemes of
/// `policy`. `cache` is the cache a remote source is pulled through (`None`: a scratch cache,
/// removed after); `probe` any device for the header checks.
pub async fn make_pack(
    source: &ModelSource,
    out: &Path,
    policy: ConversionPolicy,
    cache: Option<&Cache>,
    probe: &Device,
    progress: &mut dyn FnMut(LoadEvent),
) -> Result<PackReport, LoadError> {
    let started = now_seconds();
    if source.is_pack() {
        return Err(LoadError::Unsupported(format!(
            "{} is already a pack: make a pack from the model's diffusers folder or URL",
            source.label()
        )));
    }
    prepare_output(out)?;
    let scratch = out.join(".sow-pack-cache");
    let scratch_cache;
    let cache = match cache.filter(|_| source.is_remote()) {
        Some(cache) => cache,
        None => {
            scratch_cache = Cache::in_folder(&scratch);
            &scratch_cache
        }
    };
    let pulled = pull_into(source, cache, policy, probe, progress, true).await?;
    let options = LoadOptions {
        policy,
        ..LoadOptions::default()
    };
    let mut entry = cache.entry(&key(source, &options)).await;
    let manifest = entry.manifest().cloned().ok_or_else(|| {
        LoadError::Cache(crate::weights::cache::CacheError::Unavailable {
            location: cache.location(),
            detail: "the converted model was not kept".to_string(),
        })
    })?;

    let mut components = BTreeMap::new();
    let mut component_bytes = BTreeMap::new();
    for component in Component::ALL {
        let record = &manifest.components[&component];
        progress(LoadEvent::Notice(format!("writing the {component}")));
        let written = write_component(&mut entry, component, record, policy, out).await?;
        component_bytes.insert(component, file_len(&out.join(&written.file))?);
        components.insert(component, written);
    }
    let mut files = BTreeMap::new();
    for path in manifest.files.keys() {
        let text = entry.text(path).await.flatten();
        if let Some(text) = &text {
            write_file(&out.join(path), text.as_bytes())?;
        }
        files.insert(
            path.clone(),
            text.map(|t| FileRecord {
                bytes: t.len() as u64,
                crc32: crc32fast::hash(t.as_bytes()),
            }),
        );
    }
    let pack = PackManifest {
        format: PACK_FORMAT.to_string(),
        source: source.label(),
        revision: source.revision(),
        policy: policy.cache_key(),
        checksum: "crc32".to_string(),
        files,
        components,
    };
    let json = serde_json::to_vec(&pack).expect("a manifest serializes");
    write_file(&out.join(PACK_MANIFEST), &json)?;
    if scratch.exists() {
        let _ = std::fs::remove_dir_all(&scratch);
    }
    let text_bytes: u64 = pack.files.values().flatten().map(|f| f.bytes).sum();
    Ok(PackReport {
        total_bytes: component_bytes.values().sum::<u64>() + text_bytes + json.len() as u64,
        component_bytes,
        transferred: pulled.transferred,
        seconds: now_seconds() - started,
    })
}

/// The output folder must not hold anything but a scratch cache of an earlier attempt.
fn prepare_output(out: &Path) -> Result<(), LoadError> {
    let io = |e: std::io::Error| LoadError::Io {
        path: out.display().to_string(),
        detail: e.to_string(),
    };
    if out.exists() {
        let leftovers = std::fs::read_dir(out)
            .map_err(io)?
            .filter_map(Result::ok)
            .any(|e| e.file_name() != ".sow-pack-cache");
        if leftovers {
            return Err(LoadError::Io {
                path: out.display().to_string(),
                detail: "the folder is not empty: give a new folder for the pack".to_string(),
            });
        }
    }
    std::fs::create_dir_all(out).map_err(io)
}

/// Writes one component's file from the cache entry, a tensor at a time; returns its record.
async fn write_component(
    entry: &mut CacheEntry<'_>,
    component: Component,
    record: &crate::weights::cache::ComponentRecord,
    policy: ConversionPolicy,
    out: &Path,
) -> Result<PackComponent, LoadError> {
    let (source_file, prefix) = entry.header(component).await.ok_or_else(|| {
        LoadError::Unsupported(format!(
            "the {component}'s header is missing from the converted model"
        ))
    })?;
    let source_header = String::from_utf8_lossy(&prefix[8..]).into_owned();
    let stem = Path::new(&source_file)
        .file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .unwrap_or(component.weights_stem())
        .to_string();
    let file = format!("{}/{stem}.pack.safetensors", component.dir());
    let path = out.join(&file);

    let mut tensors: Vec<&TensorRecord> = record.tensors.iter().collect();
    tensors.sort_by_key(|t| t.index);
    let entries: Vec<(String, Dtype, Vec<usize>)> = tensors
        .iter()
        .map(|t| match t.dtype {
            DType::QFloat(_) => (
                t.name.clone(),
                Dtype::from_name("U8").expect("U8"),
                vec![t.bytes as usize],
            ),
            _ => (t.name.clone(), Dtype::F16, t.shape.clone()),
        })
        .collect();
    let header: Vec<(&str, Dtype, &[usize])> = entries
        .iter()
        .map(|(n, d, s)| (n.as_str(), *d, s.as_slice()))
        .collect();
    let partial = path.with_extension("partial");
    let io = |e: std::io::Error| LoadError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    let mut writer = BufWriter::new(File::create(&partial).map_err(io)?);
    writer.write_all(&header_bytes(&header)).map_err(io)?;
    let mut packed = Vec::with_capacity(tensors.len());
    for (t, (_, dtype, shape)) in tensors.iter().zip(&entries) {
        let data = match entry.tensor(component, t.index, &t.name).await {
            CachedTensor::Hit(data, _) => data,
            CachedTensor::Missing | CachedTensor::Corrupt(_) => {
                return Err(LoadError::Unsupported(format!(
                    "the converted {component} tensor {:?} went missing while the pack was \
                     written; run `sow pack` again",
                    t.name
                )))
            }
        };
        let (form, bytes) =
            pack_tensor(&data).map_err(|detail| crate::weights::WeightError::Pack {
                file: file.clone(),
                name: t.name.clone(),
                detail,
            })?;
        debug_assert_eq!(bytes.len(), shape.iter().product::<usize>() * dtype.size());
        writer.write_all(&bytes).map_err(io)?;
        packed.push(PackTensor {
            name: t.name.clone(),
            index: t.index,
            form,
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
        });
    }
    writer.flush().map_err(io)?;
    drop(writer);
    std::fs::rename(&partial, &path).map_err(io)?;
    debug_assert!(packed.iter().all(|t| match t.form {
        PackedForm::F16 => true,
        PackedForm::Quantized { .. } => policy.scheme(component).bits().is_some(),
    }));
    Ok(PackComponent {
        file,
        scheme: policy.scheme(component),
        source_file,
        source_header,
        tensors: packed,
    })
}

fn file_len(path: &Path) -> Result<u64, LoadError> {
    std::fs::metadata(path)
        .map(|m| m.len())
        .map_err(|e| LoadError::Io {
            path: path.display().to_string(),
            detail: e.to_string(),
        })
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<(), LoadError> {
    let io = |e: std::io::Error| LoadError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    std::fs::write(path, bytes).map_err(io)
}
