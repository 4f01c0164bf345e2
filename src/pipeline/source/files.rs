//! Files the user picked (a folder, with `webkitdirectory`) or dropped in the browser, by
//! their path in the diffusers layout. They are read where they are: a weights file in 1 MiB
//! `Blob.slice`s, never whole.

use std::collections::BTreeMap;

use js_sys::Uint8Array;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;
use web_sys::Blob;

use super::LoadError;

/// Bytes per slice.
const READ_CHUNK: f64 = (1 << 20) as f64;

/// The top folders of the layout: a picked path is taken from the first of these on.
const LAYOUT_DIRS: [&str; 5] = ["tokenizer", "text_encoder", "unet", "vae", "scheduler"];

/// Picked files by their path in the layout (`unet/config.json`, …).
#[derive(Clone, Debug)]
pub struct PickedFiles {
    label: String,
    files: BTreeMap<String, Blob>,
}

impl PickedFiles {
    /// Files by the paths they were picked with (e.g. a `File`'s `webkitRelativePath`,
    /// `stable-diffusion-2-1-base/unet/config.json`): each is filed under the part of its path
    /// from the first layout folder on; files outside the layout are ignored.
    pub fn new(label: &str, files: impl IntoIterator<Item = (String, Blob)>) -> Self {
        let files = files
            .into_iter()
            .filter_map(|(path, blob)| Some((layout_path(&path)?, blob)))
            .collect();
        PickedFiles {
            label: label.to_string(),
            files,
        }
    }

    /// The files of a folder picked with `<input type="file" webkitdirectory>`.
    pub fn from_file_list(list: &web_sys::FileList) -> Self {
        let files: Vec<(String, Blob)> = (0..list.length())
            .filter_map(|i| list.get(i))
            .map(|file| {
                // `webkitRelativePath`: the path inside the picked folder.
                let path = js_sys::Reflect::get(&file, &"webkitRelativePath".into())
                    .ok()
                    .and_then(|p| p.as_string())
                    .filter(|p| !p.is_empty())
                    .unwrap_or_else(|| file.name());
                (path, file.unchecked_into::<Blob>())
            })
            .collect();
        let label = files
            .first()
            .and_then(|(p, _)| p.split('/').next())
            .map_or("picked files".to_string(), |root| {
                format!("picked folder {root}")
            });
        PickedFiles::new(&label, files)
    }

    /// The paths in the layout that were picked.
    pub fn paths(&self) -> impl Iterator<Item = &str> {
        self.files.keys().map(String::as_str)
    }

    pub(super) fn label(&self) -> String {
        self.label.clone()
    }

    pub(super) async fn text(&self, path: &str) -> Result<Option<String>, LoadError> {
        let Some(blob) = self.files.get(path) else {
            return Ok(None);
        };
        let text = JsFuture::from(blob.text())
            .await
            .map_err(|e| LoadError::Io {
                path: format!("{}/{path}", self.label),
                detail: format!("{e:?}"),
            })?;
        Ok(text.as_string())
    }

    pub(super) fn open(&self, path: &str, offset: u64) -> Option<BlobBody> {
        let blob = self.files.get(path)?.clone();
        let len = blob.size() as u64;
        Some(BlobBody {
            blob,
            position: offset.min(len),
            len,
        })
    }
}

/// `…/sd21/unet/config.json` → `unet/config.json`, a pack's `…/pack.json` → `pack.json`;
/// `None` outside the layout.
fn layout_path(picked: &str) -> Option<String> {
    let parts: Vec<&str> = picked
        .split(['/', '\\'])
        .filter(|p| !p.is_empty())
        .collect();
    if parts.last() == Some(&crate::weights::pack::PACK_MANIFEST) && parts.len() <= 2 {
        return Some(crate::weights::pack::PACK_MANIFEST.to_string());
    }
    let start = parts.iter().position(|p| LAYOUT_DIRS.contains(p))?;
    Some(parts[start..].join("/"))
}

/// A picked file read in order, one slice at a time.
pub(crate) struct BlobBody {
    blob: Blob,
    position: u64,
    len: u64,
}

impl BlobBody {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        if self.position >= self.len {
            return Ok(None);
        }
        let end = (self.position as f64 + READ_CHUNK).min(self.len as f64);
        let slice = self
            .blob
            .slice_with_f64_and_f64(self.position as f64, end)
            .map_err(|e| format!("{e:?}"))?;
        let buffer = JsFuture::from(slice.array_buffer())
            .await
            .map_err(|e| format!("the file could not be read: {e:?}"))?;
        let bytes = Uint8Array::new(&buffer).to_vec();
        self.position += bytes.len() as u64;
        if bytes.is_empty() {
            return Err("the file ended early while being read".to_string());
        }
        Ok(Some(bytes))
    }
}
