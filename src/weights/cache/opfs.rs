//! The cache's storage in the browser: the origin private file system (OPFS), from the page's
//! main thread. A file is written through `createWritable`, whose changes land atomically on
//! `close()` (a file is whole or as it was), and read back through `getFile()`.
//!
//! Why OPFS rather than the Cache API: it is a file system (folders, sizes, removal of a
//! folder at once), its writes are atomic per file, and a file is a `Blob` that can be sliced;
//! the Cache API stores whole HTTP responses under URLs, which fits a converted tensor poorly.

use js_sys::{Function, Reflect, Uint8Array};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    Blob, FileSystemDirectoryHandle, FileSystemFileHandle, FileSystemGetDirectoryOptions,
    FileSystemGetFileOptions, FileSystemRemoveOptions, FileSystemWritableFileStream,
};

use super::StoreError;

/// The folder of the OPFS root the cache lives in.
const ROOT: &str = "sow-studio";

/// Bytes per `Blob.slice` when a file is read back.
const READ_SLICE: usize = 8 << 20;

/// A folder of the origin private file system, addressed by `/`-separated relative paths.
pub(crate) struct Store {
    root: FileSystemDirectoryHandle,
}

/// The name and message of a JavaScript error (a `DOMException` has both).
fn describe(value: &JsValue) -> (String, String) {
    let field = |name: &str| {
        Reflect::get(value, &JsValue::from_str(name))
            .ok()
            .and_then(|v| v.as_string())
            .unwrap_or_default()
    };
    let (name, message) = (field("name"), field("message"));
    if name.is_empty() && message.is_empty() {
        (String::new(), format!("{value:?}"))
    } else {
        (name, message)
    }
}

fn classify(what: &str, value: JsValue) -> StoreError {
    let (name, message) = describe(&value);
    if name == "QuotaExceededError" {
        StoreError::Quota(format!("{what}: {message}"))
    } else {
        StoreError::Other(format!("{what}: {name} {message}"))
    }
}

fn is_not_found(value: &JsValue) -> bool {
    matches!(
        describe(value).0.as_str(),
        "NotFoundError" | "TypeMismatchError"
    )
}

async fn wait(promise: js_sys::Promise) -> Result<JsValue, JsValue> {
    JsFuture::from(promise).await
}

impl Store {
    /// Opens `sow-studio/` in the origin's private file system, and asks the browser to keep
    /// it; the note says when the browser declined (it may then evict the cache).
    pub(crate) async fn open() -> Result<(Store, Option<String>), StoreError> {
        let window = web_sys::window().ok_or_else(|| StoreError::Other("no window".into()))?;
        let storage = window.navigator().storage();
        let top: FileSystemDirectoryHandle = wait(storage.get_directory())
            .await
            .map_err(|e| classify("opening the origin private file system", e))?
            .unchecked_into();
        let root = Store::child_dir(&top, ROOT, true)
            .await?
            .expect("created when missing");
        let note = match storage.persist() {
            Ok(promise) => match wait(promise).await {
                Ok(granted) if granted.as_bool() == Some(true) => None,
                Ok(_) => Some(
                    "the browser did not make the weights cache persistent: it may delete it when \
                     storage runs low"
                        .to_string(),
                ),
                Err(e) => return Err(classify("navigator.storage.persist()", e)),
            },
            Err(e) => return Err(classify("navigator.storage.persist()", e)),
        };
        Ok((Store { root }, note))
    }

    pub(crate) fn location(&self) -> String {
        format!("the browser's origin private file system ({ROOT}/)")
    }

    async fn child_dir(
        parent: &FileSystemDirectoryHandle,
        name: &str,
        create: bool,
    ) -> Result<Option<FileSystemDirectoryHandle>, StoreError> {
        let options = FileSystemGetDirectoryOptions::new();
        options.set_create(create);
        match wait(parent.get_directory_handle_with_options(name, &options)).await {
            Ok(handle) => Ok(Some(handle.unchecked_into())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(name, e)),
        }
    }

    /// The folder holding `path`'s last part, and that part.
    async fn parent<'p>(
        &self,
        path: &'p str,
        create: bool,
    ) -> Result<Option<(FileSystemDirectoryHandle, &'p str)>, StoreError> {
        let parts: Vec<&str> = path.split('/').filter(|p| !p.is_empty()).collect();
        let Some((last, dirs)) = parts.split_last() else {
            return Ok(None);
        };
        let mut dir = self.root.clone();
        for name in dirs {
            match Store::child_dir(&dir, name, create).await? {
                Some(child) => dir = child,
                None => return Ok(None),
            }
        }
        Ok(Some((dir, last)))
    }

    async fn file_handle(
        dir: &FileSystemDirectoryHandle,
        name: &str,
        create: bool,
    ) -> Result<Option<FileSystemFileHandle>, StoreError> {
        let options = FileSystemGetFileOptions::new();
        options.set_create(create);
        match wait(dir.get_file_handle_with_options(name, &options)).await {
            Ok(handle) => Ok(Some(handle.unchecked_into())),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(classify(name, e)),
        }
    }

    pub(crate) async fn read(&self, path: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((dir, name)) = self.parent(path, false).await? else {
            return Ok(None);
        };
        let Some(handle) = Store::file_handle(&dir, name, false).await? else {
            return Ok(None);
        };
        let file: Blob = wait(handle.get_file())
            .await
            .map_err(|e| classify(path, e))?
            .unchecked_into();
        // Slice by slice into one buffer: a large tensor is never held twice.
        let len = file.size() as usize;
        let mut out = Vec::with_capacity(len);
        while out.len() < len {
            let end = (out.len() + READ_SLICE).min(len);
            let slice = file
                .slice_with_f64_and_f64(out.len() as f64, end as f64)
                .map_err(|e| classify(path, e))?;
            let buffer = wait(slice.array_buffer())
                .await
                .map_err(|e| classify(path, e))?;
            let bytes = Uint8Array::new(&buffer);
            if bytes.length() == 0 {
                return Err(StoreError::Other(format!("{path}: the file ended early")));
            }
            let start = out.len();
            out.resize(start + bytes.length() as usize, 0);
            bytes.copy_to(&mut out[start..]);
        }
        Ok(Some(out))
    }

    /// Writes a file made of `parts`; it replaces the old one when the stream closes.
    pub(crate) async fn write(&self, path: &str, parts: &[&[u8]]) -> Result<(), StoreError> {
        let (dir, name) = self
            .parent(path, true)
            .await?
            .ok_or_else(|| StoreError::Other(format!("{path:?} is not a file path")))?;
        let handle = Store::file_handle(&dir, name, true)
            .await?
            .expect("created when missing");
        let writable: FileSystemWritableFileStream = wait(handle.create_writable())
            .await
            .map_err(|e| classify(path, e))?
            .unchecked_into();
        for part in parts {
            let promise = writable
                .write_with_u8_array(part)
                .map_err(|e| classify(path, e))?;
            if let Err(e) = wait(promise).await {
                let _ = writable.abort();
                return Err(classify(path, e));
            }
        }
        wait(writable.close())
            .await
            .map_err(|e| classify(path, e))?;
        Ok(())
    }

    pub(crate) async fn remove(&self, path: &str) -> Result<(), StoreError> {
        let Some((dir, name)) = self.parent(path, false).await? else {
            return Ok(());
        };
        let options = FileSystemRemoveOptions::new();
        options.set_recursive(true);
        match wait(dir.remove_entry_with_options(name, &options)).await {
            Ok(_) => Ok(()),
            Err(e) if is_not_found(&e) => Ok(()),
            Err(e) => Err(classify(path, e)),
        }
    }

    /// The handles in a folder (none when it does not exist), as (name, handle).
    async fn entries(&self, path: &str) -> Result<Vec<(String, JsValue)>, StoreError> {
        let dir = if path.is_empty() {
            Some(self.root.clone())
        } else {
            match self.parent(path, false).await? {
                Some((parent, name)) => Store::child_dir(&parent, name, false).await?,
                None => None,
            }
        };
        let Some(dir) = dir else {
            return Ok(Vec::new());
        };
        // `for await (const [name, handle] of dir.entries())`, by hand.
        let entries: Function = Reflect::get(&dir, &JsValue::from_str("entries"))
            .and_then(|f| f.dyn_into().map_err(JsValue::from))
            .map_err(|e| classify(path, e))?;
        let iterator = entries.call0(&dir).map_err(|e| classify(path, e))?;
        let next: Function = Reflect::get(&iterator, &JsValue::from_str("next"))
            .and_then(|f| f.dyn_into().map_err(JsValue::from))
            .map_err(|e| classify(path, e))?;
        let mut out = Vec::new();
        loop {
            let promise: js_sys::Promise = next
                .call0(&iterator)
                .map_err(|e| classify(path, e))?
                .unchecked_into();
            let step = wait(promise).await.map_err(|e| classify(path, e))?;
            let done = Reflect::get(&step, &JsValue::from_str("done"))
                .ok()
                .and_then(|d| d.as_bool())
                .unwrap_or(true);
            if done {
                break;
            }
            let pair = Reflect::get(&step, &JsValue::from_str("value")).unwrap_or_default();
            let pair: js_sys::Array = pair.unchecked_into();
            if let Some(name) = pair.get(0).as_string() {
                out.push((name, pair.get(1)));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    pub(crate) async fn list(&self, path: &str) -> Result<Vec<String>, StoreError> {
        Ok(self
            .entries(path)
            .await?
            .into_iter()
            .map(|(name, _)| name)
            .collect())
    }

    /// Bytes of every file below a path.
    pub(crate) async fn size(&self, path: &str) -> Result<u64, StoreError> {
        let mut total = 0u64;
        let mut pending = vec![path.to_string()];
        while let Some(dir) = pending.pop() {
            for (name, handle) in self.entries(&dir).await? {
                let kind = Reflect::get(&handle, &JsValue::from_str("kind"))
                    .ok()
                    .and_then(|k| k.as_string())
                    .unwrap_or_default();
                if kind == "directory" {
                    pending.push(format!("{dir}/{name}"));
                } else {
                    let handle: FileSystemFileHandle = handle.unchecked_into();
                    let file: Blob = wait(handle.get_file())
                        .await
                        .map_err(|e| classify(&name, e))?
                        .unchecked_into();
                    total += file.size() as u64;
                }
            }
        }
        Ok(total)
    }
}
