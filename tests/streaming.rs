//! Loading models through the async streaming path from real sources: a local folder and a
//! real HTTP server on loopback (tests/support/model_server.rs) serving the tiny fixture
//! model, with the cache in a scratch folder. Every loaded model is checked against the
//! goldens; transfers are counted on the server's side.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/loaded.rs"]
mod loaded;
#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/model_server.rs"]
mod model_server;
#[path = "support/scratch.rs"]
mod scratch;
mod suite;

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use loaded::Loaded;
use model_server::{Fault, ModelServer};
use scratch::scratch;
use serde_json::Value;
use sow_studio::compare::relative_l2;
use sow_studio::model::config::UNetConfig;
use sow_studio::model::unet::UNet;
use sow_studio::pipeline::{load_models, pull, LoadEvent, LoadOptions, ModelSource, Models, Phase};
use sow_studio::weights::cache::Cache;
use sow_studio::weights::{
    resident_bytes, Component, ConversionPolicy, FileSource, Policy, SafetensorsHeader, Scheme,
    TensorLoader, WeightError,
};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-sd2");
const UNET_FILE: &str = "unet/diffusion_pytorch_model.safetensors";
const VAE_FILE: &str = "vae/diffusion_pytorch_model.safetensors";
const TEXT_FILE: &str = "text_encoder/model.fp16.safetensors";

/// Every file a load of the tiny model reads, relative to its root.
const FILES_READ: [&str; 9] = [
    "tokenizer/vocab.json",
    "tokenizer/merges.txt",
    "text_encoder/config.json",
    "vae/config.json",
    "unet/config.json",
    "scheduler/scheduler_config.json",
    TEXT_FILE,
    VAE_FILE,
    UNET_FILE,
];

fn file_size(relative: &str) -> u64 {
    std::fs::metadata(Path::new(TINY).join(relative))
        .unwrap()
        .len()
}

fn serve() -> (ModelServer, ModelSource) {
    let server = ModelServer::start(Path::new(TINY), "tiny-sd2");
    let source = ModelSource::parse(&server.url("tiny-sd2")).unwrap();
    (server, source)
}

fn load_with(source: &ModelSource, options: &LoadOptions<'_>) -> Loaded {
    let mut events = Vec::new();
    let result = pollster::block_on(load_models(source, &Device::flex(), options, &mut |e| {
        events.push(e)
    }));
    Loaded { result, events }
}

fn load(source: &ModelSource, cache: Option<&Cache>) -> Loaded {
    load_with(
        source,
        &LoadOptions {
            cache,
            ..LoadOptions::default()
        },
    )
}

fn upload<const D: usize>(device: &Device, (shape, values): (Vec<usize>, Vec<f32>)) -> Tensor<D> {
    let shape: [usize; D] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// Each component of `models` against its golden (one case each, at the CPU tolerances).
fn assert_matches_goldens(models: &Models) {
    let device = &models.device;
    // Text encoder: every golden prompt.
    let json: Value = serde_json::from_str(suite::TEXT_ENCODER_GOLDEN_JSON).unwrap();
    let rows = suite::text_encoder_golden_ids();
    let hidden = models.text_encoder.encode(&rows, device).unwrap();
    let (_, expected) = suite::golden(suite::TEXT_ENCODER_GOLDEN, "last_hidden_state");
    let err = relative_l2(&pollster::block_on(suite::read(hidden)), &expected);
    assert!(err < 1e-5, "text encoder error {err:e}");
    // Tokenizer: the first golden prompt's ids.
    let prompt = json["prompts"][0].as_str().unwrap();
    assert_eq!(models.tokenizer.tokenize(prompt).to_vec(), rows[0]);
    // UNet: golden case 1 (t = 501).
    let sample = upload::<4>(device, suite::golden(suite::UNET_GOLDEN, "case1_sample"));
    let context = upload::<3>(
        device,
        suite::golden(suite::UNET_GOLDEN, "case1_encoder_hidden_states"),
    );
    let out = models.unet.forward(sample, 501.0, context);
    let (_, expected) = suite::golden(suite::UNET_GOLDEN, "case1_out");
    let err = relative_l2(&pollster::block_on(suite::read(out)), &expected);
    assert!(err < 1e-4, "UNet error {err:e}");
    // VAE: a decode and a posterior mean.
    let decoded = models.vae.decode(upload::<4>(
        device,
        suite::golden(suite::VAE_GOLDEN, "decode_in0"),
    ));
    let (_, expected) = suite::golden(suite::VAE_GOLDEN, "decode_out0");
    let err = relative_l2(&pollster::block_on(suite::read(decoded)), &expected);
    assert!(err < 1e-4, "VAE decode error {err:e}");
    let posterior = models.vae.encode(upload::<4>(
        device,
        suite::golden(suite::VAE_GOLDEN, "image0"),
    ));
    let (_, expected) = suite::golden(suite::VAE_GOLDEN, "posterior_mean0");
    let err = relative_l2(&pollster::block_on(suite::read(posterior.mean)), &expected);
    assert!(err < 1e-4, "VAE encode error {err:e}");
}

/// The data section of a fixture weights file: where each tensor lives.
fn header_of(relative: &str) -> SafetensorsHeader {
    let bytes = std::fs::read(Path::new(TINY).join(relative)).unwrap();
    SafetensorsHeader::parse(relative, &bytes, Some(bytes.len() as u64)).unwrap()
}

/// Tensors in file order: (name, start, end).
fn in_file_order(relative: &str) -> Vec<(String, u64, u64)> {
    let header = header_of(relative);
    let mut tensors: Vec<(String, u64, u64)> = header
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.start, t.end))
        .collect();
    tensors.sort_by_key(|t| t.1);
    tensors
}

fn range_of(request: &loopback::Request) -> Option<String> {
    request.header("range").map(str::to_string)
}

#[test]
fn a_folder_loads_through_the_streaming_path() {
    let loaded = load(&ModelSource::parse(TINY).unwrap(), None);
    assert_matches_goldens(loaded.models());
    let report = loaded.report();
    assert_eq!(report.transferred, 0, "a local folder is not a download");
    assert_eq!(loaded.models().source.label, TINY);
    // f32 on the device: 4 bytes per parameter of each component.
    assert_eq!(report.device_bytes[&Component::Unet], 4 * 3_222_692);
    assert_eq!(report.device_bytes[&Component::Vae], 4 * 1_399_879);
}

#[test]
fn a_cold_load_from_a_url_fetches_each_file_once_and_a_warm_load_transfers_nothing() {
    let (server, source) = serve();
    let cache = Cache::in_folder(scratch("cold-warm"));

    let cold = load(&source, Some(&cache));
    assert_matches_goldens(cold.models());
    let every_file: u64 = FILES_READ.iter().map(|f| file_size(f)).sum();
    assert_eq!(server.sent(), every_file, "each file is sent exactly once");
    assert_eq!(
        cold.report().transferred,
        every_file,
        "the load counts what came over the wire"
    );
    assert_eq!(cold.report().from_cache, 0);
    // No HEAD requests, no ranges on a cold load, and the fp16 variant is asked for first.
    let requests = server.requests();
    assert!(requests
        .iter()
        .all(|r| r.method == "GET" && range_of(r).is_none()));
    assert_eq!(
        requests
            .iter()
            .filter(|r| r
                .path()
                .ends_with("diffusion_pytorch_model.fp16.safetensors"))
            .count(),
        2,
        "the UNet and VAE fp16 variants are tried (and 404) first"
    );
    // Progress: every component reaches its total, and the last event is the summary.
    for component in Component::ALL {
        let done = cold.events.iter().any(|e| {
            matches!(e, LoadEvent::Progress(p) if p.component == component && p.phase == Phase::Done)
        });
        assert!(done, "{component} finished");
    }
    assert!(matches!(cold.events.last(), Some(LoadEvent::Finished(_))));

    let entries = pollster::block_on(cache.list()).unwrap();
    assert_eq!(entries.len(), 1);
    assert!(entries[0].complete, "the manifest is written at the end");
    assert!(entries[0].bytes > 4 * (3_222_692 + 1_399_879));

    server.reset_counts();
    let warm = load(&source, Some(&cache));
    assert_eq!(
        server.requests().len(),
        0,
        "a warm load makes no request at all"
    );
    assert_eq!(warm.report().transferred, 0);
    assert!(warm.report().from_cache > 0);
    assert_matches_goldens(warm.models());

    pollster::block_on(cache.clear()).unwrap();
    assert!(pollster::block_on(cache.list()).unwrap().is_empty());
}

/// One UNet evaluation on a fixed input, read back.
fn unet_output(unet: &UNet, device: &Device) -> Vec<f32> {
    let config = UNetConfig::from_json(
        "unet/config.json",
        &std::fs::read_to_string(Path::new(TINY).join("unet/config.json")).unwrap(),
    )
    .unwrap();
    let side = config.sample_size;
    let ramp = |n: usize| {
        (0..n)
            .map(|i| ((i % 17) as f32 - 8.0) / 8.0)
            .collect::<Vec<_>>()
    };
    let sample = Tensor::<4>::from_data(
        TensorData::new(
            ramp(config.in_channels * side * side),
            [1, config.in_channels, side, side],
        ),
        device,
    );
    let context = Tensor::<3>::from_data(
        TensorData::new(
            ramp(77 * config.cross_attention_dim),
            [1, 77, config.cross_attention_dim],
        ),
        device,
    );
    let out = unet.forward(sample, 501.0, context);
    pollster::block_on(suite::read(out))
}

#[test]
fn an_8_bit_unet_streams_caches_and_reloads_exactly_as_the_direct_loader_builds_it() {
    let (_server, source) = serve();
    let cache = Cache::in_folder(scratch("q8"));
    let options = LoadOptions {
        policy: ConversionPolicy::unet(Scheme::Q8),
        cache: Some(&cache),
        ..LoadOptions::default()
    };
    let cold = load_with(&source, &options);
    let warm = load_with(&source, &options);
    assert_eq!(warm.report().transferred, 0, "the q8 entry is reused");
    // The same file through TensorLoader and materialize, no streaming, no cache.
    let device = Device::flex();
    let config = UNetConfig::from_json(
        "unet/config.json",
        &std::fs::read_to_string(Path::new(TINY).join("unet/config.json")).unwrap(),
    )
    .unwrap();
    let file = FileSource::open(&Path::new(TINY).join(UNET_FILE)).unwrap();
    let mut loader = TensorLoader::open(UNET_FILE, file, &device)
        .unwrap()
        .with_policy(Policy::new(Component::Unet, Scheme::Q8));
    let direct = UNet::load(&config, &mut loader).unwrap();
    let resident = resident_bytes(&warm.models().unet);
    assert!(resident.quantized_params > 0, "the UNet is quantized");
    assert_eq!(resident, resident_bytes(&direct));
    let expected = unet_output(&direct, &device);
    for (label, loaded) in [("cold", &cold), ("warm (from the cache)", &warm)] {
        let models = loaded.models();
        assert_eq!(resident_bytes(&models.text_encoder).quantized_params, 0);
        assert_eq!(
            unet_output(&models.unet, &models.device),
            expected,
            "{label} load"
        );
    }
    // An f32 load is another cache entry: it downloads again and stays f32.
    let f32 = load(&source, Some(&cache));
    assert!(f32.report().transferred > 0);
    assert_eq!(resident_bytes(&f32.models().unet).quantized_params, 0);
}

#[test]
fn a_dropped_download_resumes_at_the_first_unfinished_tensor_without_refetching() {
    let (server, source) = serve();
    let cache = Cache::in_folder(scratch("resume-within"));
    // Drop the UNet's connection 40 % into the file, once.
    let size = file_size(UNET_FILE);
    let cut = (size * 2 / 5) as usize;
    server.fault(
        UNET_FILE,
        Fault::Drop {
            after: cut,
            times: 1,
        },
    );

    let loaded = load(&source, Some(&cache));
    assert_matches_goldens(loaded.models());
    assert!(
        loaded
            .notices()
            .iter()
            .any(|n| n.contains("resuming at byte")),
        "{:?}",
        loaded.notices()
    );
    // The second request starts at the first tensor that had not fully arrived.
    let resume_at = in_file_order(UNET_FILE)
        .into_iter()
        .find(|(_, _, end)| *end > cut as u64)
        .map(|(_, start, _)| start)
        .unwrap();
    let requests = server.requests_for(UNET_FILE);
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(range_of(&requests[0]), None);
    assert_eq!(range_of(&requests[1]), Some(format!("bytes={resume_at}-")));
    // Nothing completed was fetched twice: only the one tensor cut in half.
    assert_eq!(server.sent_for(UNET_FILE), cut as u64 + (size - resume_at));
    assert!(
        cut as u64 - resume_at < 300_000,
        "at most one tensor is refetched"
    );

    server.reset_counts();
    let warm = load(&source, Some(&cache));
    assert_eq!(server.requests().len(), 0);
    assert_matches_goldens(warm.models());
}

#[test]
fn an_interrupted_load_resumes_from_the_cache_in_the_next_load() {
    let (server, source) = serve();
    let cache = Cache::in_folder(scratch("resume-next"));
    let size = file_size(UNET_FILE);
    let cut = (size / 2) as usize;
    server.fault(
        UNET_FILE,
        Fault::Drop {
            after: cut,
            times: 1,
        },
    );
    let no_retry = LoadOptions {
        cache: Some(&cache),
        retries: 0,
        ..LoadOptions::default()
    };
    let failed = load_with(&source, &no_retry);
    let message = failed.error();
    println!("{message}");
    assert!(
        message.contains(UNET_FILE) && message.contains("transfer failed"),
        "{message}"
    );
    assert!(!pollster::block_on(cache.list()).unwrap()[0].complete);

    server.reset_counts();
    let resumed = load(&source, Some(&cache));
    assert_matches_goldens(resumed.models());
    // The text encoder and VAE came whole from the cache; the UNet resumed with one range.
    assert!(server.requests_for(TEXT_FILE).is_empty());
    assert!(server.requests_for(VAE_FILE).is_empty());
    let resume_at = in_file_order(UNET_FILE)
        .into_iter()
        .find(|(_, _, end)| *end > cut as u64)
        .map(|(_, start, _)| start)
        .unwrap();
    let unet = server.requests_for(UNET_FILE);
    assert_eq!(unet.len(), 1, "{unet:?}");
    assert_eq!(range_of(&unet[0]), Some(format!("bytes={resume_at}-")));
    assert_eq!(server.sent_for(UNET_FILE), size - resume_at);
    assert!(pollster::block_on(cache.list()).unwrap()[0].complete);
}

#[test]
fn a_server_that_ignores_range_is_read_again_from_the_start() {
    let (server, source) = serve();
    let cache = Cache::in_folder(scratch("ignore-range"));
    let size = file_size(UNET_FILE);
    let cut = (size / 3) as usize;
    // The first UNet response drops a third of the way in; when the load announces its
    // retry, the server starts ignoring ranges, so the retry gets the whole file.
    server.fault(
        UNET_FILE,
        Fault::Drop {
            after: cut,
            times: 1,
        },
    );
    let mut events = Vec::new();
    let result = pollster::block_on(load_models(
        &source,
        &Device::flex(),
        &LoadOptions {
            cache: Some(&cache),
            ..LoadOptions::default()
        },
        &mut |e| {
            if matches!(&e, LoadEvent::Notice(text) if text.contains("resuming")) {
                server.fault(UNET_FILE, Fault::IgnoreRange);
            }
            events.push(e);
        },
    ));
    let loaded = Loaded { result, events };
    assert_matches_goldens(loaded.models());
    let notices = loaded.notices();
    assert!(
        notices.iter().any(|n| n.contains("ignores Range")),
        "{notices:?}"
    );
    let unet = server.requests_for(UNET_FILE);
    assert_eq!(unet.len(), 2);
    assert!(range_of(&unet[1]).is_some(), "the retry asked for a range");
    assert_eq!(
        server.sent_for(UNET_FILE),
        cut as u64 + size,
        "the whole file came again"
    );
}

#[test]
fn redirects_are_followed_with_the_range_kept() {
    let (server, _) = serve();
    let cache = Cache::in_folder(scratch("redirect"));
    // Every file under /moved/ redirects to the real one.
    for file in FILES_READ {
        server.fault(
            &format!("/moved/{file}"),
            Fault::Redirect(format!("/tiny-sd2/{file}")),
        );
    }
    server.fault(
        "/moved/unet/diffusion_pytorch_model.fp16.safetensors",
        Fault::Missing,
    );
    server.fault(
        "/moved/vae/diffusion_pytorch_model.fp16.safetensors",
        Fault::Missing,
    );
    server.fault(
        UNET_FILE,
        Fault::Drop {
            after: 1_000_000,
            times: 1,
        },
    );
    let source = ModelSource::parse(&server.url("moved")).unwrap();
    let loaded = load(&source, Some(&cache));
    assert_matches_goldens(loaded.models());
    let moved: Vec<_> = server
        .requests_for(UNET_FILE)
        .into_iter()
        .filter(|r| r.path().starts_with("/moved/"))
        .collect();
    let landed: Vec<_> = server
        .requests_for(UNET_FILE)
        .into_iter()
        .filter(|r| r.path().starts_with("/tiny-sd2/"))
        .collect();
    assert_eq!((moved.len(), landed.len()), (2, 2));
    assert_eq!(range_of(&moved[1]), range_of(&landed[1]));
    assert!(range_of(&landed[1]).is_some());
}

/// The entry of a cache, as `(complete, bytes)`, or `None` when nothing is cached.
fn cached(cache: &Cache) -> Option<(bool, u64)> {
    let entries = pollster::block_on(cache.list()).unwrap();
    entries.first().map(|e| (e.complete, e.bytes))
}

/// Whether any tensor of `component` is in the cache folder.
fn has_tensors(folder: &Path, component: Component) -> bool {
    fn walk(path: &Path, dir: &str, found: &mut bool) {
        for entry in std::fs::read_dir(path).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                walk(&p, dir, found);
            } else if p.parent().is_some_and(|d| d.ends_with(dir))
                && p.extension().is_some_and(|e| e == "tensor")
            {
                *found = true;
            }
        }
    }
    let mut found = false;
    walk(folder, component.dir(), &mut found);
    found
}

#[test]
fn a_missing_model_is_one_clear_message() {
    let (server, _) = serve();
    let cache = Cache::in_folder(scratch("not-found"));
    let source = ModelSource::parse(&server.url("no-such-model")).unwrap();
    let loaded = load(&source, Some(&cache));
    let message = loaded.error();
    println!("{message}");
    assert!(
        message.contains("tokenizer/vocab.json")
            && message.contains("was not found")
            && message.contains("diffusers-layout"),
        "{message}"
    );
    assert_eq!(cached(&cache), None);
}

#[test]
fn missing_weights_name_both_files_tried() {
    let (server, source) = serve();
    let cache_dir = scratch("no-unet");
    let cache = Cache::in_folder(&cache_dir);
    server.fault(UNET_FILE, Fault::Missing);
    let message = load(&source, Some(&cache)).error();
    println!("{message}");
    assert!(
        message.contains("no UNet weights")
            && message.contains("unet/diffusion_pytorch_model.fp16.safetensors")
            && message.contains(UNET_FILE),
        "{message}"
    );
    assert!(!has_tensors(&cache_dir, Component::Unet));
    assert_eq!(cached(&cache).map(|c| c.0), Some(false), "never complete");
}

#[test]
fn a_refused_connection_is_one_clear_message() {
    // A port that was just free: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let source = ModelSource::parse(&format!("http://127.0.0.1:{port}/sd21/")).unwrap();
    let message = load(&source, None).error();
    println!("{message}");
    assert!(message.contains("cannot be reached"), "{message}");
    assert!(
        message.contains(&format!("127.0.0.1:{port}/sd21/tokenizer/vocab.json")),
        "{message}"
    );
}

#[test]
fn a_closed_connection_and_a_server_error_are_clear_messages() {
    let (server, source) = serve();
    let cache_dir = scratch("server-error");
    let cache = Cache::in_folder(&cache_dir);
    server.fault(VAE_FILE, Fault::Status(500));
    server.fault(
        "vae/diffusion_pytorch_model.fp16.safetensors",
        Fault::Status(500),
    );
    let loaded = load(&source, Some(&cache));
    let message = loaded.error();
    println!("{message}");
    assert!(message.contains("HTTP 500"), "{message}");
    assert!(!has_tensors(&cache_dir, Component::Vae));

    server.heal();
    server.fault("tokenizer/merges.txt", Fault::Close);
    let message = load(&source, None).error();
    println!("{message}");
    assert!(
        message.contains("merges.txt") && message.contains("cannot be reached"),
        "{message}"
    );
}

#[test]
fn an_html_page_instead_of_weights_is_named_and_nothing_is_cached() {
    let (server, source) = serve();
    let cache_dir = scratch("html");
    let cache = Cache::in_folder(&cache_dir);
    server.fault(UNET_FILE, Fault::Html);
    let message = load(&source, Some(&cache)).error();
    println!("{message}");
    assert!(
        message.contains(UNET_FILE)
            && message.contains("not a safetensors file")
            && message.contains("web page"),
        "{message}"
    );
    assert!(!has_tensors(&cache_dir, Component::Unet));
}

#[test]
fn a_truncated_file_is_refused_before_its_body_and_nothing_is_cached() {
    let (server, source) = serve();
    let cache_dir = scratch("truncated");
    let cache = Cache::in_folder(&cache_dir);
    let size = file_size(VAE_FILE) as usize;
    server.fault(VAE_FILE, Fault::Truncate { len: size - 1000 });
    let message = load(&source, Some(&cache)).error();
    println!("{message}");
    assert!(
        message.contains(VAE_FILE) && message.contains("truncated") && message.contains("cut off"),
        "{message}"
    );
    assert!(!has_tensors(&cache_dir, Component::Vae));
}

/// The text encoder fixture with its header changed by `change` (data untouched).
fn altered_text_encoder(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let bytes = std::fs::read(Path::new(TINY).join(TEXT_FILE)).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut header: Value = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    change(header.as_object_mut().unwrap());
    let json = header.to_string().into_bytes();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&bytes[8 + n..]);
    out
}

/// The text encoder fixture with one more tensor, 64 bytes appended at the end of the data.
fn with_extra_tensor() -> Vec<u8> {
    let bytes = std::fs::read(Path::new(TINY).join(TEXT_FILE)).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let data_len = bytes.len() - 8 - n;
    let mut out = altered_text_encoder(|h| {
        h.insert(
            "text_model.unused.weight".into(),
            serde_json::json!({"dtype": "F16", "shape": [32], "data_offsets": [data_len, data_len + 64]}),
        );
    });
    out.extend_from_slice(&[0u8; 64]);
    out
}

#[test]
fn headers_that_disagree_with_the_config_are_refused_before_the_body() {
    let final_bias = "text_model.final_layer_norm.bias";
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "shape",
            altered_text_encoder(|h| {
                // Same bytes, another shape: [32] read as [2, 16].
                h[final_bias]["shape"] = serde_json::json!([2, 16]);
            }),
            "has shape [2, 16], but the model needs [32]",
        ),
        (
            "dtype",
            altered_text_encoder(|h| {
                h[final_bias]["dtype"] = serde_json::json!("I16");
            }),
            "is I16; only F32, F16 and BF16",
        ),
        (
            "missing",
            altered_text_encoder(|h| {
                h.remove(final_bias);
            }),
            "missing tensor",
        ),
        ("extra", with_extra_tensor(), "unexpected tensor"),
    ];
    for (what, bytes, expected) in cases {
        let (server, source) = serve();
        let cache_dir = scratch(&format!("header-{what}"));
        let cache = Cache::in_folder(&cache_dir);
        server.replace(TEXT_FILE, bytes);
        let message = load(&source, Some(&cache)).error();
        println!("{message}");
        assert!(
            message.contains(TEXT_FILE) && message.contains(expected),
            "{what}: {message}"
        );
        assert!(!has_tensors(&cache_dir, Component::TextEncoder), "{what}");
        // The check ran on the header: the body was never asked for again.
        assert_eq!(server.requests_for(TEXT_FILE).len(), 1, "{what}");
    }
}

#[test]
fn a_folder_missing_a_component_is_one_clear_message() {
    let folder = scratch("no-vae-folder");
    for file in FILES_READ {
        if file.starts_with("vae/") {
            continue;
        }
        let to = folder.join(file);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(TINY).join(file), to).unwrap();
    }
    let loaded = load(&ModelSource::parse(folder.to_str().unwrap()).unwrap(), None);
    let message = loaded.error();
    println!("{message}");
    assert!(
        message.contains("has no VAE weights")
            && message.contains("vae/diffusion_pytorch_model.fp16.safetensors")
            && message.contains(VAE_FILE),
        "{message}"
    );
    let message = load(&ModelSource::parse("/no/such/folder").unwrap(), None).error();
    println!("{message}");
    assert!(
        message.contains("/no/such/folder") && message.contains("no such folder"),
        "{message}"
    );
}

#[test]
fn a_damaged_cache_entry_is_detected_dropped_and_refetched() {
    let (server, source) = serve();
    let cache_dir = scratch("corrupt");
    let cache = Cache::in_folder(&cache_dir);
    load(&source, Some(&cache)).models();

    // Flip one byte in the VAE's 10th tensor file.
    let entry = pollster::block_on(cache.list()).unwrap().remove(0);
    let tensor = cache_dir
        .join("v1")
        .join(&entry.id)
        .join("vae")
        .join("t00010.tensor");
    let mut bytes = std::fs::read(&tensor).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&tensor, bytes).unwrap();

    server.reset_counts();
    let loaded = load(&source, Some(&cache));
    assert_matches_goldens(loaded.models());
    assert!(
        loaded
            .notices()
            .iter()
            .any(|n| n.contains("VAE") && n.contains("damaged")),
        "{:?}",
        loaded.notices()
    );
    // Only that tensor came again, with one ranged request.
    let (_, start, end) = in_file_order(VAE_FILE)[10].clone();
    let vae = server.requests_for(VAE_FILE);
    assert_eq!(vae.len(), 1);
    assert_eq!(range_of(&vae[0]), Some(format!("bytes={start}-")));
    assert!(server.sent_for(VAE_FILE) >= end - start);
    assert!(server.requests_for(UNET_FILE).is_empty());

    server.reset_counts();
    load(&source, Some(&cache)).models();
    assert_eq!(server.requests().len(), 0, "the entry is whole again");
}

#[test]
fn an_unusable_cache_gives_a_notice_and_the_load_goes_on_uncached() {
    let (_server, source) = serve();
    let blocker = scratch("unusable-cache").join("not-a-folder");
    std::fs::write(&blocker, b"a file where the cache folder should be").unwrap();
    let cache = Cache::in_folder(&blocker);
    let loaded = load(&source, Some(&cache));
    assert_matches_goldens(loaded.models());
    let notices = loaded.notices();
    assert!(
        notices
            .iter()
            .any(|n| n.contains("cannot be used") && n.contains("loading without the cache")),
        "{notices:?}"
    );
}

#[test]
fn pull_fills_the_cache_and_the_next_load_transfers_nothing() {
    let (server, source) = serve();
    let cache = Cache::in_folder(scratch("pull"));
    let mut events = Vec::new();
    let report = pollster::block_on(pull(
        &source,
        &cache,
        ConversionPolicy::F32,
        &Device::flex(),
        &mut |e| events.push(e),
    ))
    .unwrap();
    let every_file: u64 = FILES_READ.iter().map(|f| file_size(f)).sum();
    assert_eq!(report.transferred, every_file);
    assert_eq!(report.already_cached, 0);
    assert!(report.written > 0 && report.entry_bytes >= report.written);

    server.reset_counts();
    let warm = load(&source, Some(&cache));
    assert_eq!(server.requests().len(), 0);
    assert_matches_goldens(warm.models());

    let again = pollster::block_on(pull(
        &source,
        &cache,
        ConversionPolicy::F32,
        &Device::flex(),
        &mut |_| {},
    ))
    .unwrap();
    assert_eq!((again.transferred, again.written), (0, 0));
    assert_eq!(again.already_cached, report.written);

    let folder = ModelSource::parse(TINY).unwrap();
    let err = pollster::block_on(pull(
        &folder,
        &cache,
        ConversionPolicy::F32,
        &Device::flex(),
        &mut |_| {},
    ))
    .unwrap_err();
    assert!(err.to_string().contains("nothing to pull"), "{err}");
}

#[test]
fn weights_errors_name_the_file_and_tensor_for_a_cut_stream_without_length() {
    // A truncated body whose length is unknown up front is caught at its end.
    use sow_studio::weights::reader::{MemoryStream, StreamReader};
    let bytes = std::fs::read(Path::new(TINY).join(VAE_FILE)).unwrap();
    let mut reader = StreamReader::new(VAE_FILE, MemoryStream::new(bytes[..1000].to_vec(), 64), 0);
    let err = pollster::block_on(reader.read_to(2000, "tensor \"x\"", &mut |_| {})).unwrap_err();
    assert!(matches!(err, WeightError::Truncated { .. }));
}
