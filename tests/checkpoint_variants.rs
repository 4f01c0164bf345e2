//! Real checkpoints as they exist: the same tiny weights under the other naming conventions
//! load to the same outputs (the goldens). Each variant file is written here from the fixture
//! by renaming header entries (the data is untouched), then loaded both ways: with the
//! synchronous loader, and through the streaming path from a model folder.
//!
//! - the CLIP text encoder without the `text_model.` prefix (transformers 5 writes that);
//! - the CLIP text encoder with the int64 `position_ids` buffer (transformers < 4.31);
//! - the VAE's mid-block attention under its pre-0.14 diffusers names
//!   (`query`/`key`/`value`/`proj_attn`, as the published SD-2.1 VAE file has them).
#![cfg(not(target_arch = "wasm32"))]

mod suite;

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use serde_json::Value;
use sow_studio::compare::relative_l2;
use sow_studio::model::clip::ClipTextEncoder;
use sow_studio::model::config::{TextEncoderConfig, VaeConfig};
use sow_studio::model::vae::Vae;
use sow_studio::pipeline::{load_models, LoadOptions, ModelSource, Models};
use sow_studio::weights::{MemorySource, TensorLoader};

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-sd2");

/// A safetensors file with its header entries renamed by `rename` and `extra` entries (with
/// their data) appended; every other byte is the original's.
fn variant(
    original: &[u8],
    rename: impl Fn(&str) -> String,
    extra: &[(&str, &str, &[usize], Vec<u8>)],
) -> Vec<u8> {
    let n = u64::from_le_bytes(original[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&original[8..8 + n]).unwrap();
    let mut data = original[8 + n..].to_vec();
    let mut renamed = serde_json::Map::new();
    for (name, entry) in header.as_object().unwrap() {
        let name = if name == "__metadata__" {
            name.clone()
        } else {
            rename(name)
        };
        assert!(
            renamed.insert(name, entry.clone()).is_none(),
            "a rename collided"
        );
    }
    for (name, dtype, shape, bytes) in extra {
        let start = data.len();
        data.extend_from_slice(bytes);
        renamed.insert(
            name.to_string(),
            serde_json::json!({"dtype": dtype, "shape": shape, "data_offsets": [start, data.len()]}),
        );
    }
    let json = Value::Object(renamed).to_string().into_bytes();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(&data);
    out
}

fn without_text_model_prefix(name: &str) -> String {
    name.strip_prefix("text_model.").unwrap_or(name).to_string()
}

/// `…mid_block.attentions.0.to_q.weight` → `…mid_block.attentions.0.query.weight`, and so on.
fn old_vae_attention_names(name: &str) -> String {
    let mut name = name.to_string();
    for (new, old) in [
        (".to_q.", ".query."),
        (".to_k.", ".key."),
        (".to_v.", ".value."),
        (".to_out.0.", ".proj_attn."),
    ] {
        if name.contains("mid_block.attentions.0") {
            name = name.replace(new, old);
        }
    }
    name
}

fn position_ids() -> (&'static str, &'static str, &'static [usize], Vec<u8>) {
    let bytes = (0..77i64).flat_map(|i| i.to_le_bytes()).collect();
    ("text_model.embeddings.position_ids", "I64", &[1, 77], bytes)
}

fn input_rows() -> Vec<Vec<u32>> {
    suite::text_encoder_golden_ids()
}

fn text_encoder_error(encoder: &ClipTextEncoder, device: &Device) -> f64 {
    let hidden = encoder.encode(&input_rows(), device).unwrap();
    let (_, expected) = suite::golden(suite::TEXT_ENCODER_GOLDEN, "last_hidden_state");
    relative_l2(&pollster::block_on(suite::read(hidden)), &expected)
}

fn upload(device: &Device, (shape, values): (Vec<usize>, Vec<f32>)) -> Tensor<4> {
    let shape: [usize; 4] = shape.try_into().unwrap();
    Tensor::from_data(TensorData::new(values, shape), device)
}

/// The worst error of a decode and a posterior mean against the goldens.
fn vae_error(vae: &Vae, device: &Device) -> f64 {
    let decoded = vae.decode(upload(
        device,
        suite::golden(suite::VAE_GOLDEN, "decode_in0"),
    ));
    let (_, expected) = suite::golden(suite::VAE_GOLDEN, "decode_out0");
    let decode = relative_l2(&pollster::block_on(suite::read(decoded)), &expected);
    let mean = vae
        .encode(upload(device, suite::golden(suite::VAE_GOLDEN, "image0")))
        .mean;
    let (_, expected) = suite::golden(suite::VAE_GOLDEN, "posterior_mean0");
    decode.max(relative_l2(
        &pollster::block_on(suite::read(mean)),
        &expected,
    ))
}

fn load_encoder(bytes: &[u8]) -> ClipTextEncoder {
    let config = TextEncoderConfig::from_json("config.json", suite::TEXT_ENCODER_CONFIG).unwrap();
    let mut loader = TensorLoader::open("variant", MemorySource(bytes), &Device::flex()).unwrap();
    ClipTextEncoder::load(&config, &mut loader).unwrap_or_else(|e| panic!("{e}"))
}

fn load_vae(bytes: &[u8]) -> Vae {
    let config = VaeConfig::from_json("config.json", suite::VAE_CONFIG).unwrap();
    let mut loader = TensorLoader::open("variant", MemorySource(bytes), &Device::flex()).unwrap();
    Vae::load(&config, &mut loader).unwrap_or_else(|e| panic!("{e}"))
}

/// A copy of the tiny model folder with `files` (path, bytes) replacing its weights.
fn folder_with(name: &str, files: &[(&str, Vec<u8>)]) -> PathBuf {
    let root = std::env::temp_dir().join(format!("sow-variant-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    for relative in [
        "tokenizer/vocab.json",
        "tokenizer/merges.txt",
        "text_encoder/config.json",
        "text_encoder/model.fp16.safetensors",
        "vae/config.json",
        "vae/diffusion_pytorch_model.safetensors",
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
        "scheduler/scheduler_config.json",
    ] {
        let to = root.join(relative);
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(Path::new(TINY).join(relative), &to).unwrap();
    }
    for (relative, bytes) in files {
        std::fs::write(root.join(relative), bytes).unwrap();
    }
    root
}

fn stream_folder(root: &Path) -> Models {
    let source = ModelSource::parse(root.to_str().unwrap()).unwrap();
    pollster::block_on(load_models(
        &source,
        &Device::flex(),
        &LoadOptions::default(),
        &mut |_| {},
    ))
    .unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn the_text_encoder_loads_with_and_without_the_text_model_prefix() {
    let device = Device::flex();
    let published = suite::TEXT_ENCODER_WEIGHTS;
    let unprefixed = variant(published, without_text_model_prefix, &[]);
    let with_buffer = variant(published, |n| n.to_string(), &[position_ids()]);
    let unprefixed_with_buffer = variant(
        published,
        without_text_model_prefix,
        &[("embeddings.position_ids", "I64", &[1, 77], position_ids().3)],
    );
    let reference = text_encoder_error(&load_encoder(published), &device);
    for (label, bytes) in [
        ("without the prefix", &unprefixed),
        ("with the position_ids buffer", &with_buffer),
        (
            "without the prefix, with the buffer",
            &unprefixed_with_buffer,
        ),
    ] {
        let err = text_encoder_error(&load_encoder(bytes), &device);
        assert!(err < 1e-5, "{label}: {err:e}");
        assert_eq!(
            err, reference,
            "{label}: the same weights give the same output"
        );
    }

    let root = folder_with(
        "clip",
        &[(
            "text_encoder/model.fp16.safetensors",
            unprefixed_with_buffer,
        )],
    );
    let models = stream_folder(&root);
    assert_eq!(text_encoder_error(&models.text_encoder, &device), reference);
    std::fs::remove_dir_all(root).ok();
}

#[test]
fn the_vae_loads_under_its_pre_0_14_attention_names() {
    let device = Device::flex();
    let current = suite::VAE_WEIGHTS;
    let old = variant(current, old_vae_attention_names, &[]);
    // The variant really uses the old names (8 tensors: 4 projections × weight and bias, in
    // the encoder's and the decoder's mid block).
    let header = String::from_utf8_lossy(
        &old[8..8 + u64::from_le_bytes(old[..8].try_into().unwrap()) as usize],
    )
    .into_owned();
    assert_eq!(header.matches(".proj_attn.").count(), 4);
    assert_eq!(header.matches(".to_q.").count(), 0);

    let reference = vae_error(&load_vae(current), &device);
    let err = vae_error(&load_vae(&old), &device);
    assert!(err < 1e-4, "{err:e}");
    assert_eq!(err, reference);

    let root = folder_with("vae", &[("vae/diffusion_pytorch_model.safetensors", old)]);
    let models = stream_folder(&root);
    assert_eq!(vae_error(&models.vae, &device), reference);
    std::fs::remove_dir_all(root).ok();
}
