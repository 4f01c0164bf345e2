//! Weights loading: F32/F16/BF16 decode exactly as PyTorch converts them, and bad files get
//! clear errors that name the file and the tensor, never a panic and never a model. Each error
//! case damages the tiny fixture text encoder in one way and loads it.
#![cfg(not(target_arch = "wasm32"))]

use burn::tensor::Device;
use serde_json::Value;
use sow_studio::model::clip::ClipTextEncoder;
use sow_studio::model::config::TextEncoderConfig;
use sow_studio::weights::safetensors::{decode_f32, serialize_f32};
use sow_studio::weights::{
    MemorySource, SafetensorsHeader, TensorLoader, WeightError, WeightSource,
};

const WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/text_encoder/model.fp16.safetensors"
));
const CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/text_encoder/config.json"
));
const FILE: &str = "text_encoder/model.fp16.safetensors";

fn load(bytes: &[u8]) -> Result<ClipTextEncoder, WeightError> {
    let device = Device::flex();
    let config = TextEncoderConfig::from_json("config.json", CONFIG).unwrap();
    let mut loader = TensorLoader::open(FILE, MemorySource(bytes), &device)?;
    ClipTextEncoder::load(&config, &mut loader)
}

/// Splits a file into its header JSON and its data section.
fn split(bytes: &[u8]) -> (Value, &[u8]) {
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    (header, &bytes[8 + n..])
}

/// Reassembles a file from a (changed) header and a data section.
fn join(header: &Value, data: &[u8]) -> Vec<u8> {
    let json = header.to_string().into_bytes();
    let mut out = (json.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&json);
    out.extend_from_slice(data);
    out
}

fn with_header(change: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let (mut header, data) = split(WEIGHTS);
    change(header.as_object_mut().unwrap());
    join(&header, data)
}

fn message(result: Result<ClipTextEncoder, WeightError>) -> (WeightError, String) {
    let err = result.expect_err("a damaged file must not load");
    let text = err.to_string();
    assert!(text.contains(FILE), "the message names the file: {text}");
    (err, text)
}

#[test]
fn the_intact_fixture_loads() {
    load(WEIGHTS).expect("the fixture loads");
}

#[test]
fn the_same_weights_as_f32_load_to_identical_values() {
    // Re-encode every tensor as F32: the loader must accept both dtypes and give the same
    // numbers, since f16 -> f32 is exact.
    let tensors = fixture_tensors();
    let f32_file = as_f32_file(&tensors);
    let device = Device::flex();
    let mut a = TensorLoader::open("f32", MemorySource(&f32_file), &device).unwrap();
    let mut b = TensorLoader::open(FILE, MemorySource(WEIGHTS), &device).unwrap();
    for (name, shape, _) in &tensors {
        assert_eq!(
            a.values(name, shape).unwrap(),
            b.values(name, shape).unwrap()
        );
    }
    a.finish(&[]).unwrap();
    b.finish(&[]).unwrap();
    load(&f32_file).expect("the F32 copy loads");
}

#[test]
fn a_missing_tensor_is_named() {
    let name = "text_model.final_layer_norm.bias";
    let (err, text) = message(load(&with_header(|h| {
        h.remove(name);
    })));
    assert!(matches!(err, WeightError::Missing { .. }), "{err:?}");
    assert!(
        text.contains(name) && text.contains("missing tensor"),
        "{text}"
    );
}

/// Every tensor of the fixture as (name, shape, f32 values).
fn fixture_tensors() -> Vec<(String, Vec<usize>, Vec<f32>)> {
    let header = SafetensorsHeader::parse(FILE, WEIGHTS, Some(WEIGHTS.len() as u64)).unwrap();
    header
        .tensors
        .iter()
        .map(|(name, info)| {
            let bytes = &WEIGHTS[info.start as usize..info.end as usize];
            (
                name.clone(),
                info.shape.clone(),
                decode_f32(info.dtype, bytes).unwrap(),
            )
        })
        .collect()
}

fn as_f32_file(tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Vec<u8> {
    let refs: Vec<(&str, &[usize], &[f32])> = tensors
        .iter()
        .map(|(n, s, v)| (n.as_str(), s.as_slice(), v.as_slice()))
        .collect();
    serialize_f32(&refs)
}

#[test]
fn an_unexpected_tensor_is_named() {
    let name = "text_model.embeddings.extra_table.weight";
    let mut tensors = fixture_tensors();
    tensors.push((name.to_string(), vec![2, 2], vec![1.0, 2.0, 3.0, 4.0]));
    let (err, text) = message(load(&as_f32_file(&tensors)));
    assert!(
        matches!(err, WeightError::Unexpected { count: 1, .. }),
        "{err:?}"
    );
    assert!(
        text.contains(name) && text.contains("unexpected tensor"),
        "{text}"
    );
}

#[test]
fn a_wrong_shape_is_named_with_both_shapes() {
    let name = "text_model.encoder.layers.0.mlp.fc1.weight";
    let (err, text) = message(load(&with_header(|h| {
        // [64, 32] stored as [32, 64]: same bytes, transposed meaning.
        h.get_mut(name).unwrap()["shape"] = serde_json::json!([32, 64]);
    })));
    assert!(matches!(err, WeightError::Shape { .. }), "{err:?}");
    assert!(
        text.contains(name) && text.contains("[32, 64]") && text.contains("[64, 32]"),
        "{text}"
    );
}

#[test]
fn an_unsupported_dtype_is_named() {
    let name = "text_model.final_layer_norm.weight";
    let (err, text) = message(load(&with_header(|h| {
        h.get_mut(name).unwrap()["dtype"] = Value::from("I16");
    })));
    assert!(
        matches!(err, WeightError::UnsupportedDtype { .. }),
        "{err:?}"
    );
    assert!(text.contains(name) && text.contains("I16"), "{text}");
}

#[test]
fn a_truncated_file_is_caught_before_loading() {
    let (err, text) = message(load(&WEIGHTS[..WEIGHTS.len() / 2]));
    assert!(matches!(err, WeightError::Truncated { .. }), "{err:?}");
    assert!(
        text.contains("truncated") && text.contains("tensor"),
        "{text}"
    );

    let (err, _) = message(load(&WEIGHTS[..5]));
    assert!(matches!(err, WeightError::Truncated { .. }), "{err:?}");
}

#[test]
fn a_malformed_header_is_reported() {
    let mut bytes = 9u64.to_le_bytes().to_vec();
    bytes.extend_from_slice(b"{not json");
    let (err, text) = message(load(&bytes));
    assert!(
        matches!(err, WeightError::MalformedHeader { .. }),
        "{err:?}"
    );
    assert!(text.contains("malformed"), "{text}");

    // Offsets that disagree with the shape.
    let name = "text_model.final_layer_norm.weight";
    let (err, text) = message(load(&with_header(|h| {
        h.get_mut(name).unwrap()["data_offsets"] = serde_json::json!([0, 3]);
    })));
    assert!(
        matches!(err, WeightError::MalformedHeader { .. }),
        "{err:?}"
    );
    assert!(text.contains(name), "{text}");
}

#[test]
fn an_oversized_header_is_refused() {
    let mut bytes = (1u64 << 40).to_le_bytes().to_vec();
    bytes.extend_from_slice(&[b' '; 64]);
    let (err, text) = message(load(&bytes));
    assert!(matches!(err, WeightError::HeaderTooLarge { .. }), "{err:?}");
    assert!(text.contains("header"), "{text}");
}

#[test]
fn f16_and_bf16_decode_as_torch_converts_them() {
    const DTYPES: &[u8] = include_bytes!(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/goldens/dtypes.safetensors"
    ));
    let header = SafetensorsHeader::parse("dtypes", DTYPES, Some(DTYPES.len() as u64)).unwrap();
    let decode = |name: &str| {
        let info = &header.tensors[name];
        decode_f32(info.dtype, &DTYPES[info.start as usize..info.end as usize]).unwrap()
    };
    for (stored, expected) in [
        ("values_f32", "values_f32"),
        ("values_f16", "expected_f16_as_f32"),
        ("values_bf16", "expected_bf16_as_f32"),
    ] {
        let (got, want) = (decode(stored), decode(expected));
        // Bit-exact, so -0.0 and subnormals count too.
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&got), bits(&want), "{stored}");
    }
}

#[test]
fn a_diffusers_folder_loads_every_component_from_disk() {
    use sow_studio::model::config::SchedulerConfig;
    use sow_studio::pipeline::folder::{LoadError, ModelFolder};

    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-sd2");
    let folder = ModelFolder::open(root).unwrap();
    let device = Device::flex();
    let tokenizer = folder.tokenizer().unwrap();
    // Only model.fp16.safetensors exists: the variant is found on its own.
    let encoder = folder.text_encoder(&device).unwrap();
    let hidden = encoder
        .encode(&[tokenizer.tokenize("a photo of a cat")], &device)
        .unwrap();
    assert_eq!(hidden.dims(), [1, 77, 32]);
    folder.unet(&device).unwrap();
    folder.vae(&device).unwrap();
    assert_eq!(folder.scheduler_config().unwrap(), SchedulerConfig::sd21());

    let err = ModelFolder::open("/nonexistent/model").unwrap_err();
    assert!(err.to_string().contains("not a directory"), "{err}");
    let empty = std::env::temp_dir().join(format!("sow-empty-{}", std::process::id()));
    std::fs::create_dir_all(empty.join("unet")).unwrap();
    let err = ModelFolder::open(&empty)
        .unwrap()
        .unet(&device)
        .unwrap_err();
    assert!(
        matches!(err, LoadError::Weights(WeightError::NotFound { .. })),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("diffusion_pytorch_model.safetensors"),
        "{err}"
    );
    std::fs::remove_dir_all(&empty).ok();
}
