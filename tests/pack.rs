//! Quantized packs (docs/weights.md, "Packs"): made from the tiny fixture model with
//! `make_pack` (what `sow pack` runs), loaded from a folder and from a real HTTP server on
//! loopback, compared with the source loaded directly under the same schemes, resumed after a
//! dropped connection, and refused with one clear message when damaged or mismatched.
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

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use loaded::Loaded;
use model_server::{Fault, ModelServer};
use scratch::scratch;
use serde_json::Value;
use sow_studio::compare::relative_l2;
use sow_studio::pipeline::{load_models, make_pack, LoadOptions, ModelSource, Models, PackReport};
use sow_studio::weights::cache::Cache;
use sow_studio::weights::pack::PACK_MANIFEST;
use sow_studio::weights::{resident_bytes, Component, ConversionPolicy, Scheme};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-sd2");
const UNET_PACK: &str = "unet/diffusion_pytorch_model.pack.safetensors";

/// The schemes `sow pack` uses by default: a 4-bit UNet, an 8-bit text encoder.
const PACKED: ConversionPolicy = ConversionPolicy {
    text_encoder: Scheme::Q8,
    vae: Scheme::F32,
    unet: Scheme::Q4,
};

/// A pack of the tiny model with `policy`, in a fresh folder.
fn make(name: &str, policy: ConversionPolicy) -> (PathBuf, PackReport) {
    let out = scratch(&format!("pack-{name}")).join("pack");
    let source = ModelSource::parse(TINY).unwrap();
    let report = pollster::block_on(make_pack(
        &source,
        &out,
        policy,
        None,
        &Device::flex(),
        &mut |_| {},
    ))
    .unwrap();
    (out, report)
}

/// Bytes of every file in a folder, recursively.
fn folder_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| match e.path().is_dir() {
            true => folder_bytes(&e.path()),
            false => e.metadata().unwrap().len(),
        })
        .sum()
}

fn load(source: &ModelSource, policy: ConversionPolicy, cache: Option<&Cache>) -> Loaded {
    let mut events = Vec::new();
    let options = LoadOptions {
        policy,
        cache,
        ..LoadOptions::default()
    };
    let result = pollster::block_on(load_models(source, &Device::flex(), &options, &mut |e| {
        events.push(e)
    }));
    Loaded { result, events }
}

fn upload<const D: usize>(device: &Device, (shape, values): (Vec<usize>, Vec<f32>)) -> Tensor<D> {
    let shape: [usize; D] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The outputs of each network on the golden inputs: text encoder, UNet, VAE decode.
fn outputs(models: &Models) -> [Vec<f32>; 3] {
    let device = &models.device;
    let rows = suite::text_encoder_golden_ids();
    let text = models.text_encoder.encode(&rows, device).unwrap();
    let sample = upload::<4>(device, suite::golden(suite::UNET_GOLDEN, "case1_sample"));
    let context = upload::<3>(
        device,
        suite::golden(suite::UNET_GOLDEN, "case1_encoder_hidden_states"),
    );
    let unet = models.unet.forward(sample, 501.0, context);
    let latent = upload::<4>(device, suite::golden(suite::VAE_GOLDEN, "decode_in0"));
    let decoded = models.vae.decode(latent);
    [
        pollster::block_on(suite::read(text)),
        pollster::block_on(suite::read(unet)),
        pollster::block_on(suite::read(decoded)),
    ]
}

/// The tiny model loaded directly from its folder under `policy`.
fn direct(policy: ConversionPolicy) -> Loaded {
    load(&ModelSource::parse(TINY).unwrap(), policy, None)
}

/// A pack load equals the direct load under the same schemes: the same device bytes, the
/// text encoder (an fp16 file, so carrying floats as f16 loses nothing) bit for bit, and the
/// UNet and VAE (f32 files, whose floats the pack rounds to f16) within f16's rounding.
fn assert_same_as_direct(pack: &Models, expected: &Models, expected_outputs: &[Vec<f32>; 3]) {
    assert_eq!(
        resident_bytes(&pack.text_encoder),
        resident_bytes(&expected.text_encoder)
    );
    assert_eq!(resident_bytes(&pack.unet), resident_bytes(&expected.unet));
    assert_eq!(resident_bytes(&pack.vae), resident_bytes(&expected.vae));
    let [text, unet, vae] = outputs(pack);
    assert_eq!(text, expected_outputs[0], "text encoder");
    let unet_error = relative_l2(&unet, &expected_outputs[1]);
    let vae_error = relative_l2(&vae, &expected_outputs[2]);
    println!("pack against direct: UNet {unet_error:.2e}, VAE decode {vae_error:.2e}");
    assert!(unet_error < 2e-3, "UNet {unet_error:e}");
    assert!(vae_error < 2e-3, "VAE {vae_error:e}");
}

#[test]
fn a_4_bit_pack_loads_from_a_folder_and_a_url_as_the_source_does_with_its_schemes() {
    let (pack, report) = make("load", PACKED);
    assert_eq!(report.total_bytes, folder_bytes(&pack), "{report:?}");
    assert!(
        !pack.join(".sow-pack-cache").exists(),
        "the scratch cache is removed"
    );
    let expected = direct(PACKED);
    let expected_outputs = outputs(expected.models());
    assert!(resident_bytes(&expected.models().unet).quantized_params > 0);

    // From the folder: the pack's schemes are used whatever the load asked for, and it says so.
    let source = ModelSource::parse(&format!("pack:{}", pack.display())).unwrap();
    let from_folder = load(&source, ConversionPolicy::F32, None);
    assert_same_as_direct(from_folder.models(), expected.models(), &expected_outputs);
    assert_eq!(
        from_folder.models().source.unet_weights,
        Some(Scheme::Q4),
        "the images' parameters name the pack's UNet scheme"
    );
    assert!(
        from_folder
            .notices()
            .iter()
            .any(|n| n.contains("keeps the text encoder in q8") && n.contains("UNet in q4")),
        "{:?}",
        from_folder.notices()
    );

    // From a URL: a cold load transfers the pack, once; a warm load nothing.
    let server = ModelServer::start(&pack, "pack");
    let source = ModelSource::parse(&format!("pack:{}", server.url("pack"))).unwrap();
    let cache = Cache::in_folder(scratch("pack-load-cache"));
    let cold = load(&source, PACKED, Some(&cache));
    assert_same_as_direct(cold.models(), expected.models(), &expected_outputs);
    assert_eq!(server.sent(), report.total_bytes, "every byte once");
    assert_eq!(cold.report().transferred, report.total_bytes);
    assert!(cold.notices().is_empty(), "{:?}", cold.notices());
    server.reset_counts();
    let warm = load(&source, PACKED, Some(&cache));
    assert_eq!(server.requests().len(), 0, "a warm load asks for nothing");
    assert_eq!(warm.report().transferred, 0);
    assert_same_as_direct(warm.models(), expected.models(), &expected_outputs);
}

#[test]
fn a_dropped_pack_download_resumes_at_the_first_unfinished_tensor() {
    let (pack, _) = make("resume", PACKED);
    let server = ModelServer::start(&pack, "pack");
    let source = ModelSource::parse(&format!("pack:{}", server.url("pack"))).unwrap();
    let size = std::fs::metadata(pack.join(UNET_PACK)).unwrap().len();
    let cut = (size / 2) as usize;
    server.fault(
        UNET_PACK,
        Fault::Drop {
            after: cut,
            times: 1,
        },
    );
    let cache = Cache::in_folder(scratch("pack-resume-cache"));
    let loaded = load(&source, PACKED, Some(&cache));
    loaded.models();
    assert!(
        loaded
            .notices()
            .iter()
            .any(|n| n.contains("resuming at byte")),
        "{:?}",
        loaded.notices()
    );
    let requests = server.requests_for(UNET_PACK);
    assert_eq!(requests.len(), 2, "{requests:?}");
    let resumed_at: u64 = requests[1]
        .header("range")
        .and_then(|r| r.strip_prefix("bytes=")?.strip_suffix('-')?.parse().ok())
        .expect("the second request is ranged");
    assert!(resumed_at > 0 && resumed_at <= cut as u64);
    assert_eq!(
        server.sent_for(UNET_PACK),
        cut as u64 + (size - resumed_at),
        "only the tensor that was cut is fetched twice"
    );
}

/// Loads a pack served with `change` applied, into a fresh cache; returns the error and
/// whether any UNet tensor stayed in the cache.
fn load_altered(name: &str, change: impl FnOnce(&Path, &ModelServer)) -> (String, bool) {
    let (pack, _) = make(name, PACKED);
    let server = ModelServer::start(&pack, "pack");
    change(&pack, &server);
    let source = ModelSource::parse(&format!("pack:{}", server.url("pack"))).unwrap();
    let cache_dir = scratch(&format!("pack-{name}-cache"));
    let cache = Cache::in_folder(&cache_dir);
    let error = load(&source, PACKED, Some(&cache)).error();
    assert!(!error.contains("panicked"), "{error}");
    (error, has_tensors(&cache_dir, Component::Unet))
}

/// Whether any tensor of `component` is in a cache folder.
fn has_tensors(folder: &Path, component: Component) -> bool {
    fn walk(path: &Path, dir: &str) -> bool {
        std::fs::read_dir(path)
            .into_iter()
            .flatten()
            .flatten()
            .any(|entry| {
                let p = entry.path();
                match p.is_dir() {
                    true => walk(&p, dir),
                    false => {
                        p.parent().is_some_and(|d| d.ends_with(dir))
                            && p.extension().is_some_and(|e| e == "tensor")
                    }
                }
            })
    }
    walk(folder, component.dir())
}

/// The pack's manifest with `edit` applied.
fn edited_manifest(pack: &Path, edit: impl FnOnce(&mut Value)) -> Vec<u8> {
    let mut manifest: Value =
        serde_json::from_slice(&std::fs::read(pack.join(PACK_MANIFEST)).unwrap()).unwrap();
    edit(&mut manifest);
    serde_json::to_vec(&manifest).unwrap()
}

#[test]
fn a_damaged_pack_is_refused_by_checksum_and_leaves_nothing_cached() {
    let (error, cached) = load_altered("damaged", |pack, server| {
        let mut bytes = std::fs::read(pack.join(UNET_PACK)).unwrap();
        let last = bytes.len() - 100;
        bytes[last] ^= 0x10;
        server.replace(UNET_PACK, bytes);
    });
    assert!(
        error.contains(UNET_PACK) && error.contains("does not match its checksum in pack.json"),
        "{error}"
    );
    assert!(!cached, "nothing of the damaged component stays cached");

    let (error, _) = load_altered("damaged-text", |_, server| {
        server.replace("tokenizer/vocab.json", b"{\"a\": 0}".to_vec());
    });
    assert!(
        error.contains("tokenizer/vocab.json is missing or does not match its checksum"),
        "{error}"
    );
}

#[test]
fn a_pack_whose_schemes_do_not_match_its_tensors_is_refused() {
    let (error, cached) = load_altered("scheme", |pack, server| {
        let manifest = edited_manifest(pack, |m| {
            m["components"]["unet"]["scheme"] = "q8".into();
            m["policy"] = "text_encoder=q8.1,vae=f32.1,unet=q8.1".into();
        });
        server.replace(PACK_MANIFEST, manifest);
    });
    assert!(
        error.contains("the pack's schemes do not match its tensors"),
        "{error}"
    );
    assert!(!cached);

    let (error, _) = load_altered("old-conversion", |pack, server| {
        let manifest = edited_manifest(pack, |m| {
            m["policy"] = "text_encoder=q8.1,vae=f32.1,unet=q4.0".into();
        });
        server.replace(PACK_MANIFEST, manifest);
    });
    assert!(
        error.contains("is not a usable pack") && error.contains("make the pack again"),
        "{error}"
    );

    let (error, _) = load_altered("format", |pack, server| {
        let manifest = edited_manifest(pack, |m| m["format"] = "sow-studio-pack/9".into());
        server.replace(PACK_MANIFEST, manifest);
    });
    assert!(
        error.contains("this build reads \"sow-studio-pack/1\""),
        "{error}"
    );
}

#[test]
fn a_folder_that_is_not_a_pack_is_one_clear_message() {
    let (error, _) = load_altered("no-manifest", |_, server| {
        server.fault(PACK_MANIFEST, Fault::Missing);
    });
    assert!(
        error.contains("has no pack.json") && error.contains("the folder `sow pack` writes"),
        "{error}"
    );
    let (error, _) = load_altered("html-manifest", |_, server| {
        server.fault(PACK_MANIFEST, Fault::Html);
    });
    assert!(error.contains("pack.json is not JSON"), "{error}");
    // A diffusers folder named as a pack.
    let source = ModelSource::parse(&format!("pack:{TINY}")).unwrap();
    let error = load(&source, PACKED, None).error();
    assert!(error.contains("has no pack.json"), "{error}");
}

#[test]
fn a_pack_is_written_only_into_a_new_folder_and_only_from_a_model() {
    let (pack, _) = make("refusals", PACKED);
    let again = pollster::block_on(make_pack(
        &ModelSource::parse(TINY).unwrap(),
        &pack,
        PACKED,
        None,
        &Device::flex(),
        &mut |_| {},
    ));
    let error = again.unwrap_err().to_string();
    assert!(error.contains("not empty"), "{error}");
    let of_a_pack = pollster::block_on(make_pack(
        &ModelSource::parse(&format!("pack:{}", pack.display())).unwrap(),
        &scratch("pack-refusals-2").join("out"),
        PACKED,
        None,
        &Device::flex(),
        &mut |_| {},
    ));
    assert!(of_a_pack
        .unwrap_err()
        .to_string()
        .contains("already a pack"));
}
