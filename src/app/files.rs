//! Files in and out of the page: reading a picked, dropped or pasted file's bytes, and
//! `blob:` URLs for bytes the app made (a PNG to show and download). The engine decodes the
//! bytes itself (`crate::imaging`), so the page never needs the browser's image decoders.

use js_sys::{Array, Uint8Array};
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

use super::js_error_message;

/// The bytes of a file (`Blob.arrayBuffer()`: the files read here are images, never weights).
pub async fn read_file(file: &web_sys::File) -> Result<Vec<u8>, String> {
    let buffer = JsFuture::from(file.array_buffer())
        .await
        .map_err(|e| format!("cannot read {}: {}", file.name(), js_error_message(&e)))?;
    Ok(Uint8Array::new(&buffer).to_vec())
}

/// The `<input>` an event (a file field's `change`) came from.
pub fn input_of(ev: &web_sys::Event) -> Option<web_sys::HtmlInputElement> {
    ev.target()?.dyn_into::<web_sys::HtmlInputElement>().ok()
}

/// The files of a `FileList` (from a file input, a drop or a paste).
pub fn files_of(list: Option<web_sys::FileList>) -> Vec<web_sys::File> {
    let Some(list) = list else {
        return Vec::new();
    };
    (0..list.length()).filter_map(|i| list.get(i)).collect()
}

/// The files a drop carries.
pub fn dropped_files(ev: &web_sys::DragEvent) -> Vec<web_sys::File> {
    files_of(ev.data_transfer().and_then(|d| d.files()))
}

/// A `blob:` URL for `bytes` of MIME type `mime`; revoke it with [`revoke_url`] when done.
pub fn blob_url(bytes: &[u8], mime: &str) -> Result<String, String> {
    let parts = Array::of1(&Uint8Array::from(bytes));
    let options = web_sys::BlobPropertyBag::new();
    options.set_type(mime);
    let blob = web_sys::Blob::new_with_u8_array_sequence_and_options(&parts, &options)
        .map_err(|e| js_error_message(&e))?;
    web_sys::Url::create_object_url_with_blob(&blob).map_err(|e| js_error_message(&e))
}

/// A `blob:` URL for a file the user gave.
pub fn file_url(file: &web_sys::File) -> Option<String> {
    web_sys::Url::create_object_url_with_blob(file.unchecked_ref()).ok()
}

/// Frees a `blob:` URL.
pub fn revoke_url(url: &str) {
    let _ = web_sys::Url::revoke_object_url(url);
}
