//! The full-size load: SD-2.1-base's published fp16 files, in their real layout (every name,
//! dtype and shape from tests/fixtures/goldens/sd21_fp16_files.json, which the fixture script
//! writes from diffusers and transformers), generated at run time with seeded values (never
//! committed), served by the loopback server and loaded through the streaming path with a
//! cache: cold, warm, and a pull into an empty cache.
//!
//! About 2.6 GB of files and 5.2 GB of f32 tensors in host memory (the CPU backend), a few
//! minutes: not part of the default test run. Run it with
//!
//! ```sh
//! cargo test --release --test full_size_load -- --ignored --nocapture
//! ```
//!
//! It prints the bytes fetched cold and warm, wall times, the host's peak resident memory of
//! each phase, and the bytes each component takes on the device.
//!
//! The naming itself is checked in every run, in a second: each file's header, built from the
//! layout, passes the full-size models' header check.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/model_server.rs"]
mod model_server;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::{f16, Device};
use model_server::ModelServer;
use serde_json::Value;
use sow_studio::model::clip::ClipTextEncoder;
use sow_studio::model::config::{TextEncoderConfig, UNetConfig, VaeConfig};
use sow_studio::model::unet::UNet;
use sow_studio::model::vae::Vae;
use sow_studio::pipeline::{
    load_models, make_pack, pull, LoadEvent, LoadOptions, LoadReport, ModelSource,
};
use sow_studio::weights::cache::Cache;
use sow_studio::weights::safetensors::{header_bytes, Dtype};
use sow_studio::weights::{Component, ConversionPolicy, HeaderCheck, SafetensorsHeader, Scheme};

const LAYOUT: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/goldens/sd21_fp16_files.json"
));
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// A memory figure of this process from `/proc/self/status`, in bytes.
fn status_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |kib| kib * 1024)
}

/// Peak resident memory since the last [`reset_peak_rss`], in bytes.
fn peak_rss() -> u64 {
    status_bytes("VmHWM:")
}

/// Resident memory now, in bytes. (Freed memory is not always given back to the system, so
/// a phase starts from what earlier phases left resident: its own cost is the peak above it.)
fn rss() -> u64 {
    status_bytes("VmRSS:")
}

/// Resets the kernel's peak-RSS mark (Linux: `5` to `/proc/self/clear_refs`).
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

/// Writes one safetensors file of the given layout: seeded values of the right scale
/// (N(0, 1/fan_in)-like uniform for weights, around 1 for norm scales), streamed to disk.
fn write_file(path: &Path, tensors: &[(String, Dtype, Vec<usize>)], seed: u64) -> u64 {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let entries: Vec<(&str, Dtype, &[usize])> = tensors
        .iter()
        .map(|(n, d, s)| (n.as_str(), *d, s.as_slice()))
        .collect();
    let mut out = std::io::BufWriter::with_capacity(8 << 20, std::fs::File::create(path).unwrap());
    out.write_all(&header_bytes(&entries)).unwrap();
    let mut state = seed | 1;
    let mut next = move || {
        // xorshift64*: fast and plenty for weights nobody evaluates.
        state ^= state >> 12;
        state ^= state << 25;
        state ^= state >> 27;
        (state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    };
    let mut chunk = Vec::with_capacity(8 << 20);
    for (name, dtype, shape) in tensors {
        let count: usize = shape.iter().product();
        match dtype {
            Dtype::F16 => {
                let fan_in = shape.iter().skip(1).product::<usize>().max(1) as f32;
                let (centre, scale) = if shape.len() == 1 && name.ends_with(".weight") {
                    (1.0, 0.2)
                } else {
                    (0.0, 3.4 / fan_in.sqrt())
                };
                for _ in 0..count {
                    let v = f16::from_f32(centre + scale * next());
                    chunk.extend_from_slice(&v.to_bits().to_le_bytes());
                    if chunk.len() >= 8 << 20 {
                        out.write_all(&chunk).unwrap();
                        chunk.clear();
                    }
                }
            }
            Dtype::Other("I64") => {
                for i in 0..count as i64 {
                    chunk.extend_from_slice(&i.to_le_bytes());
                }
            }
            other => panic!("{name}: the layout has an unexpected dtype {other:?}"),
        }
    }
    out.write_all(&chunk).unwrap();
    out.flush().unwrap();
    std::fs::metadata(path).unwrap().len()
}

/// One file's tensors as (name, dtype, shape).
type Tensors = Vec<(String, Dtype, Vec<usize>)>;

/// Every file of the layout: (path, tensors).
fn layout() -> Vec<(String, Tensors)> {
    let layout: Value = serde_json::from_str(LAYOUT).unwrap();
    layout["files"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(file, tensors)| {
            let tensors = tensors
                .as_array()
                .unwrap()
                .iter()
                .map(|t| {
                    let dtype = Dtype::from_name(t[1].as_str().unwrap()).unwrap();
                    let shape = t[2]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_u64().unwrap() as usize)
                        .collect();
                    (t[0].as_str().unwrap().to_string(), dtype, shape)
                })
                .collect();
            (file.clone(), tensors)
        })
        .collect()
}

#[test]
fn the_published_fp16_layout_passes_the_full_size_models_header_checks() {
    let device = Device::flex();
    let config = |path: &str| {
        std::fs::read_to_string(Path::new(FIXTURES).join("sd21-configs").join(path)).unwrap()
    };
    let text_encoder =
        TextEncoderConfig::from_json("text_encoder", &config("text_encoder/config.json")).unwrap();
    let vae = VaeConfig::from_json("vae", &config("vae/config.json")).unwrap();
    let unet = UNetConfig::from_json("unet", &config("unet/config.json")).unwrap();
    for (file, tensors) in layout() {
        let entries: Vec<(&str, Dtype, &[usize])> = tensors
            .iter()
            .map(|(n, d, s)| (n.as_str(), *d, s.as_slice()))
            .collect();
        let header = SafetensorsHeader::parse(&file, &header_bytes(&entries), None).unwrap();
        let mut check = HeaderCheck::new(&header, &device);
        let built = if file.starts_with("text_encoder/") {
            ClipTextEncoder::load(&text_encoder, &mut check).map(drop)
        } else if file.starts_with("vae/") {
            Vae::load(&vae, &mut check).map(drop)
        } else {
            UNet::load(&unet, &mut check).map(drop)
        };
        built.unwrap_or_else(|e| panic!("{file}: {e}"));
        let requested = check.into_requested();
        let skipped: Vec<&String> = tensors
            .iter()
            .map(|(n, _, _)| n)
            .filter(|n| !requested.contains(*n))
            .collect();
        // Every tensor is loaded except the text encoder's position-id buffer.
        let expected_skips: Vec<&str> = if file.starts_with("text_encoder/") {
            vec!["text_model.embeddings.position_ids"]
        } else {
            vec![]
        };
        assert_eq!(skipped, expected_skips, "{file}");
        println!("{file}: {} tensors checked", requested.len());
    }
}

/// The model folder: the three fp16 weights files, SD-2.1's configs and the tokenizer.
fn generate(root: &Path) -> u64 {
    let mut total = 0;
    for (seed, (file, tensors)) in layout().into_iter().enumerate() {
        let started = Instant::now();
        let bytes = write_file(&root.join(&file), &tensors, 1000 + seed as u64);
        println!(
            "generated {file}: {} tensors, {:.3} GB in {:.1} s",
            tensors.len(),
            gb(bytes),
            started.elapsed().as_secs_f64()
        );
        total += bytes;
    }
    let copy = |from: &str, to: &str| {
        let to = root.join(to);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(FIXTURES).join(from), to).unwrap();
    };
    copy("sd21-configs/unet/config.json", "unet/config.json");
    copy("sd21-configs/vae/config.json", "vae/config.json");
    copy(
        "sd21-configs/text_encoder/config.json",
        "text_encoder/config.json",
    );
    copy(
        "tiny-sd2/scheduler/scheduler_config.json",
        "scheduler/scheduler_config.json",
    );
    copy("tiny-sd2/tokenizer/vocab.json", "tokenizer/vocab.json");
    copy("tiny-sd2/tokenizer/merges.txt", "tokenizer/merges.txt");
    total
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("sow-full-size-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn finished(events: &[LoadEvent]) -> LoadReport {
    events
        .iter()
        .find_map(|e| match e {
            LoadEvent::Finished(r) => Some(r.clone()),
            _ => None,
        })
        .expect("a load reports its totals")
}

#[test]
#[ignore = "2.6 GB of generated files and 5.2 GB of host memory; run on request"]
fn full_size_fp16_files_stream_from_loopback_cold_warm_and_pull() {
    let root = scratch("model");
    let files_bytes = generate(&root.join("sd21"));
    let server = ModelServer::start(&root.join("sd21"), "sd21");
    let source = ModelSource::parse(&server.url("sd21")).unwrap();
    let cache_dir = scratch("cache");
    let cache = Cache::in_folder(&cache_dir);
    let device = Device::flex();
    let options = LoadOptions {
        cache: Some(&cache),
        ..LoadOptions::default()
    };

    // First, while this process holds no model: a pull into the empty cache, the stream alone
    // (its host peak above the start is what streaming costs).
    reset_peak_rss();
    let resident_before = rss();
    let started = Instant::now();
    let report = pollster::block_on(pull(
        &source,
        &cache,
        ConversionPolicy::F32,
        &device,
        &mut |_| {},
    ))
    .unwrap();
    let peak = peak_rss();
    println!(
        "pull into an empty cache: {:.3} GB transferred (files {:.3} GB), {:.3} GB cached, {:.1} s; \
         host RSS {:.3} GB before, peak {:.3} GB: {:.3} GB above the start",
        gb(report.transferred),
        gb(files_bytes),
        gb(report.entry_bytes),
        started.elapsed().as_secs_f64(),
        gb(resident_before),
        gb(peak),
        gb(peak.saturating_sub(resident_before))
    );
    assert_eq!(report.transferred, server.sent());

    // Then loads onto the device: warm from the pulled cache, and cold after clearing it.
    for phase in ["warm", "cold"] {
        if phase == "cold" {
            pollster::block_on(cache.clear()).unwrap();
        }
        server.reset_counts();
        reset_peak_rss();
        let resident_before = rss();
        let started = Instant::now();
        let mut events = Vec::new();
        let models = pollster::block_on(load_models(&source, &device, &options, &mut |e| {
            if let LoadEvent::Notice(n) = &e {
                println!("  notice: {n}");
            }
            events.push(e)
        }))
        .unwrap_or_else(|e| panic!("{phase} load failed: {e}"));
        let seconds = started.elapsed().as_secs_f64();
        let peak = peak_rss();
        let report = finished(&events);
        let device_total: u64 = report.device_bytes.values().sum();
        println!(
            "{phase} load: {:.3} GB over the wire (server sent {:.3} GB), {:.3} GB from the \
             cache, {:.3} GB written to it, {seconds:.1} s",
            gb(report.transferred),
            gb(server.sent()),
            gb(report.from_cache),
            gb(report.cached),
        );
        for component in Component::ALL {
            println!(
                "  {component}: {:.3} GB on the device (f32)",
                gb(report.device_bytes[&component])
            );
        }
        println!(
            "  host RSS {:.3} GB before, peak {:.3} GB: {:.3} GB above the start, of which \
             device tensors {:.3} GB",
            gb(resident_before),
            gb(peak),
            gb(peak.saturating_sub(resident_before)),
            gb(device_total),
        );
        match phase {
            "cold" => assert_eq!(server.sent(), report.transferred),
            _ => assert_eq!(server.requests().len(), 0, "a warm load makes no request"),
        }
        drop(models);
    }
    drop(server);
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&cache_dir);
}

#[test]
#[ignore = "2.6 GB of generated files, a conversion and two loads; run on request"]
fn a_full_size_4_bit_pack_is_made_from_loopback_and_loads_cold_and_warm() {
    let root = scratch("pack-model");
    generate(&root.join("sd21"));
    let server = ModelServer::start(&root.join("sd21"), "sd21");
    let source = ModelSource::parse(&server.url("sd21")).unwrap();
    let device = Device::flex();
    let cache_dir = scratch("pack-cache");
    let cache = Cache::in_folder(&cache_dir);
    let variants = [
        ("q4 UNet, q8 text encoder, f16 VAE", Scheme::F32),
        ("q4 UNet, q8 text encoder, q8 VAE", Scheme::Q8),
    ];
    for (label, vae) in variants {
        let policy = ConversionPolicy {
            text_encoder: Scheme::Q8,
            vae,
            unet: Scheme::Q4,
        };
        let out = scratch("pack").join("pack");
        let started = Instant::now();
        let report = pollster::block_on(make_pack(
            &source,
            &out,
            policy,
            Some(&cache),
            &device,
            &mut |_| {},
        ))
        .unwrap();
        println!(
            "pack ({label}): {:.3} GB in all, made in {:.1} s ({:.3} GB downloaded)",
            gb(report.total_bytes),
            started.elapsed().as_secs_f64(),
            gb(report.transferred)
        );
        for (component, bytes) in &report.component_bytes {
            println!("  {component}: {:.3} GB", gb(*bytes));
        }

        let pack_server = ModelServer::start(&out, "pack");
        let pack = ModelSource::parse(&format!("pack:{}", pack_server.url("pack"))).unwrap();
        let load_cache_dir = scratch("pack-load-cache");
        let load_cache = Cache::in_folder(&load_cache_dir);
        let options = LoadOptions {
            policy,
            cache: Some(&load_cache),
            ..LoadOptions::default()
        };
        for phase in ["cold", "warm"] {
            pack_server.reset_counts();
            reset_peak_rss();
            let resident_before = rss();
            let started = Instant::now();
            let mut events = Vec::new();
            let models = pollster::block_on(load_models(&pack, &device, &options, &mut |e| {
                events.push(e)
            }))
            .unwrap_or_else(|e| panic!("{phase} load of the pack failed: {e}"));
            let report_load = finished(&events);
            println!(
                "  {phase} load of the pack: {:.3} GB over the wire, {:.1} s, host peak {:.3} GB \
                 above the start; on the device: text encoder {:.3} GB, VAE {:.3} GB, UNet {:.3} GB",
                gb(pack_server.sent()),
                started.elapsed().as_secs_f64(),
                gb(peak_rss().saturating_sub(resident_before)),
                gb(report_load.device_bytes[&Component::TextEncoder]),
                gb(report_load.device_bytes[&Component::Vae]),
                gb(report_load.device_bytes[&Component::Unet]),
            );
            match phase {
                "cold" => assert_eq!(pack_server.sent(), report.total_bytes),
                _ => assert_eq!(pack_server.requests().len(), 0),
            }
            drop(models);
        }
        let _ = std::fs::remove_dir_all(&load_cache_dir);
        let _ = std::fs::remove_dir_all(out.parent().unwrap());
    }
    let _ = std::fs::remove_dir_all(&root);
    let _ = std::fs::remove_dir_all(&cache_dir);
}
