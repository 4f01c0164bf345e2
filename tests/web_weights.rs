//! The weights path inside a real headless Chromium (wasm-bindgen-test): the tiny model
//! streamed with `fetch` from the test server's own origin (it serves the repository's files),
//! cached in the origin private file system, loaded again with nothing transferred, and read
//! from picked files (`Blob`s). Outputs are checked against the goldens on WebGPU.
#![cfg(target_arch = "wasm32")]

mod suite;
mod web;

use burn::tensor::Device;
use sow_studio::compare::relative_l2;
use sow_studio::model::clip::ClipTextEncoder;
use sow_studio::pipeline::source::{PickedFiles, UrlSource};
use sow_studio::pipeline::{
    load_models, load_text_encoder, LoadEvent, LoadOptions, LoadReport, ModelSource,
};
use sow_studio::weights::cache::Cache;
use wasm_bindgen_test::*;
use web::webgpu;

wasm_bindgen_test_configure!(run_in_browser);

/// The fixture model as the test server serves it (relative to the page's origin).
const TINY: &str = "/tests/fixtures/tiny-sd2/";

/// The text encoder against transformers' hidden states (every golden prompt).
async fn check_encoder(encoder: &ClipTextEncoder, device: &Device) -> f64 {
    let rows = suite::text_encoder_golden_ids();
    let hidden = encoder.encode(&rows, device).unwrap();
    let (_, expected) = suite::golden(suite::TEXT_ENCODER_GOLDEN, "last_hidden_state");
    let err = relative_l2(&suite::read(hidden).await, &expected);
    assert!(err <= suite::GPU.text_encoder, "text encoder error {err:e}");
    err
}

fn report_of(events: &[LoadEvent]) -> LoadReport {
    events
        .iter()
        .find_map(|e| match e {
            LoadEvent::Finished(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a load reports its totals")
}

#[wasm_bindgen_test]
async fn the_text_encoder_streams_from_the_page_origin() {
    let device = webgpu().await;
    let source = ModelSource::Url(UrlSource::new(TINY));
    let mut events = Vec::new();
    let (_, encoder) = load_text_encoder(&source, &device, &LoadOptions::default(), &mut |e| {
        events.push(e)
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let err = check_encoder(&encoder, &device).await;
    let report = report_of(&events);
    console_log!(
        "webgpu: streamed text encoder, {} bytes over fetch, relative L2 error {err:.3e}",
        report.transferred
    );
    assert!(report.transferred >= suite::TEXT_ENCODER_WEIGHTS.len() as u64);
}

#[wasm_bindgen_test]
async fn a_missing_model_url_is_one_clear_message() {
    let device = webgpu().await;
    let source = ModelSource::Url(UrlSource::new("/tests/fixtures/no-such-model/"));
    let err = load_text_encoder(&source, &device, &LoadOptions::default(), &mut |_| {})
        .await
        .err()
        .expect("a missing model does not load")
        .to_string();
    assert!(
        err.contains("tokenizer/vocab.json") && err.contains("not found"),
        "{err}"
    );
}

#[wasm_bindgen_test]
async fn the_opfs_cache_makes_the_second_load_transfer_nothing() {
    let device = webgpu().await;
    let (cache, note) = Cache::in_browser().await.unwrap_or_else(|e| panic!("{e}"));
    if let Some(note) = note {
        console_log!("cache: {note}");
    }
    cache.clear().await.unwrap();
    let source = ModelSource::Url(UrlSource::new(TINY));
    let options = LoadOptions {
        cache: Some(&cache),
        ..LoadOptions::default()
    };
    let mut cold = Vec::new();
    let models = load_models(&source, &device, &options, &mut |e| cold.push(e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    check_encoder(&models.text_encoder, &device).await;
    drop(models);
    let cold = report_of(&cold);
    assert!(cold.transferred > 20_000_000, "{cold:?}");
    let entries = cache.list().await.unwrap();
    assert_eq!(entries.len(), 1);
    assert!(
        entries[0].complete && entries[0].bytes > 18_000_000,
        "{entries:?}"
    );

    let mut warm = Vec::new();
    let models = load_models(&source, &device, &options, &mut |e| warm.push(e))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = check_encoder(&models.text_encoder, &device).await;
    let warm = report_of(&warm);
    console_log!(
        "webgpu: cold load {} bytes fetched, warm load {} bytes fetched ({} from OPFS), text encoder error {err:.3e}",
        cold.transferred,
        warm.transferred,
        warm.from_cache
    );
    assert_eq!(warm.transferred, 0);
    assert!(warm.from_cache > 18_000_000);
    cache.clear().await.unwrap();
    assert!(cache.list().await.unwrap().is_empty());
}

#[wasm_bindgen_test]
async fn picked_files_load_slice_by_slice() {
    let device = webgpu().await;
    let blob = |bytes: &[u8]| {
        let array = js_sys::Uint8Array::from(bytes);
        let parts = js_sys::Array::of1(&array);
        web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap()
    };
    let files = PickedFiles::new(
        "picked folder sd21",
        [
            (
                "sd21/tokenizer/vocab.json".to_string(),
                blob(suite::VOCAB.as_bytes()),
            ),
            (
                "sd21/tokenizer/merges.txt".to_string(),
                blob(suite::MERGES.as_bytes()),
            ),
            (
                "sd21/text_encoder/config.json".to_string(),
                blob(suite::TEXT_ENCODER_CONFIG.as_bytes()),
            ),
            (
                "sd21/text_encoder/model.fp16.safetensors".to_string(),
                blob(suite::TEXT_ENCODER_WEIGHTS),
            ),
            (
                "sd21/notes.txt".to_string(),
                blob(b"not part of the layout"),
            ),
        ],
    );
    assert_eq!(files.paths().count(), 4);
    let source = ModelSource::Files(files);
    let (_, encoder) = load_text_encoder(&source, &device, &LoadOptions::default(), &mut |_| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let err = check_encoder(&encoder, &device).await;
    console_log!("webgpu: text encoder from picked files, relative L2 error {err:.3e}");
}
