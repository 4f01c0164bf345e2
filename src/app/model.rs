//! The model the app runs: loaded on the Model page, used by the Studio and the Diagnostics
//! check. The loaded networks live in a thread-local (they hold device tensors, which are not
//! `Send`; wasm32 has one thread); the pages see a [`ModelStatus`] signal that describes them.

use std::cell::RefCell;
use std::rc::Rc;

use burn::tensor::Device;

use crate::model::clip::ClipTextEncoder;
use crate::model::config::{SchedulerConfig, TextEncoderConfig, UNetConfig, VaeConfig};
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::pipeline::{Models, SourceInfo};
use crate::tokenizer::ClipTokenizer;
use crate::weights::{MemorySource, TensorLoader};

use super::fetch::{fetch_bytes, fetch_text, FetchError};
use super::yield_to_browser;

thread_local! {
    static LOADED: RefCell<Option<Rc<Models>>> = const { RefCell::new(None) };
}

/// The loaded models, if any.
pub fn loaded_models() -> Option<Rc<Models>> {
    LOADED.with(|cell| cell.borrow().clone())
}

/// Replaces the loaded models (None unloads them; their GPU memory is freed once no run holds
/// them any more).
pub fn set_loaded_models(models: Option<Models>) {
    LOADED.with(|cell| *cell.borrow_mut() = models.map(Rc::new));
}

/// What the pages show about the model.
#[derive(Clone, Debug, PartialEq)]
pub enum ModelStatus {
    /// Nothing loaded, nothing loading.
    Empty,
    /// A load in progress.
    Loading(LoadProgress),
    /// Loaded and ready for runs.
    Ready(ModelInfo),
    /// The last load failed; the message says why and what to do.
    Failed(String),
}

impl ModelStatus {
    /// A short machine-readable state for `data-state` (and the CSS).
    pub fn state(&self) -> &'static str {
        match self {
            ModelStatus::Empty => "idle",
            ModelStatus::Loading(_) => "busy",
            ModelStatus::Ready(_) => "ready",
            ModelStatus::Failed(_) => "error",
        }
    }

    /// Whether a model is ready for runs.
    pub fn is_ready(&self) -> bool {
        matches!(self, ModelStatus::Ready(_))
    }
}

/// A loaded model, described.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelInfo {
    /// Where it came from.
    pub source: SourceInfo,
    /// Whether it is SD-2.1-base's full architecture (else a smaller test model).
    pub full_size: bool,
    /// Seconds the load took.
    pub seconds: f64,
}

/// Where a load stands: one line per file, in load order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadProgress {
    /// The files, with their state.
    pub files: Vec<FileProgress>,
}

/// One file of a load.
#[derive(Clone, Debug, PartialEq)]
pub struct FileProgress {
    /// Its path in the model folder.
    pub path: String,
    /// Bytes received (known once the file is in).
    pub bytes: Option<u64>,
    /// Whether it is in (and, for weights, built).
    pub done: bool,
}

/// What a load can fail on, in the words the Model page shows.
#[derive(Debug, thiserror::Error)]
pub enum ModelLoadError {
    /// A file could not be fetched.
    #[error(
        "{0}. Check the URL: it must be the folder that holds model_index.json, unet/, vae/, \
         text_encoder/ and tokenizer/, on a server that allows this page to read it (CORS)."
    )]
    Fetch(#[from] FetchError),
    /// A file is there but unusable.
    #[error("{0}")]
    Invalid(String),
    /// No WebGPU device.
    #[error("{0}")]
    Device(String),
}

/// Loads the tokenizer, the text encoder, the UNet, the VAE and the scheduler config from a
/// base URL in the diffusers layout, telling `progress` after each file. Also says whether the
/// UNet has SD-2.1's full architecture.
///
/// Each weights file is fetched whole and built from memory: enough for small models, and the
/// place where the streaming loader (one tensor at a time, cached) takes over.
pub async fn load_from_url(
    base: &str,
    device: &Device,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<(Models, bool), ModelLoadError> {
    let base = base.trim().trim_end_matches('/');
    let url = |path: &str| format!("{base}/{path}");
    let mut state = LoadProgress::default();
    let invalid = |e: &dyn std::fmt::Display| ModelLoadError::Invalid(e.to_string());

    let text = async |path: &str, state: &mut LoadProgress, progress: &mut dyn FnMut(LoadProgress)| {
        let body = fetch_text(&url(path)).await?;
        state.files.push(FileProgress {
            path: path.to_string(),
            bytes: Some(body.len() as u64),
            done: true,
        });
        progress(state.clone());
        Ok::<_, FetchError>(body)
    };
    let vocab = text("tokenizer/vocab.json", &mut state, progress).await?;
    let merges = text("tokenizer/merges.txt", &mut state, progress).await?;
    let tokenizer = ClipTokenizer::from_files(&vocab, &merges).map_err(|e| invalid(&e))?;
    let text_config = TextEncoderConfig::from_json(
        "text_encoder/config.json",
        &text("text_encoder/config.json", &mut state, progress).await?,
    )
    .map_err(|e| invalid(&e))?;
    let unet_config = UNetConfig::from_json(
        "unet/config.json",
        &text("unet/config.json", &mut state, progress).await?,
    )
    .map_err(|e| invalid(&e))?;
    let vae_config = VaeConfig::from_json(
        "vae/config.json",
        &text("vae/config.json", &mut state, progress).await?,
    )
    .map_err(|e| invalid(&e))?;
    let scheduler = SchedulerConfig::from_json(
        "scheduler/scheduler_config.json",
        &text("scheduler/scheduler_config.json", &mut state, progress).await?,
    )
    .map_err(|e| invalid(&e))?;

    let text_encoder = {
        let (label, bytes) = weights(&url, "text_encoder", "model", &mut state, progress).await?;
        let mut loader =
            TensorLoader::open(&label, MemorySource(&bytes), device).map_err(|e| invalid(&e))?;
        ClipTextEncoder::load(&text_config, &mut loader).map_err(|e| invalid(&e))?
    };
    finish_file(&mut state, progress).await;
    let unet = {
        let (label, bytes) =
            weights(&url, "unet", "diffusion_pytorch_model", &mut state, progress).await?;
        let mut loader =
            TensorLoader::open(&label, MemorySource(&bytes), device).map_err(|e| invalid(&e))?;
        UNet::load(&unet_config, &mut loader).map_err(|e| invalid(&e))?
    };
    finish_file(&mut state, progress).await;
    let vae = {
        let (label, bytes) =
            weights(&url, "vae", "diffusion_pytorch_model", &mut state, progress).await?;
        let mut loader =
            TensorLoader::open(&label, MemorySource(&bytes), device).map_err(|e| invalid(&e))?;
        Vae::load(&vae_config, &mut loader).map_err(|e| invalid(&e))?
    };
    finish_file(&mut state, progress).await;

    let full_size = unet_config.block_out_channels == UNetConfig::sd21().block_out_channels;
    let models = Models {
        tokenizer,
        text_encoder,
        unet,
        vae,
        scheduler,
        device: device.clone(),
        source: SourceInfo {
            label: base.to_string(),
            revision: None,
        },
    };
    Ok((models, full_size))
}

/// Fetches a component's weights, the fp16 variant first (half the bytes), else the f32 file.
async fn weights(
    url: &impl Fn(&str) -> String,
    component: &str,
    stem: &str,
    state: &mut LoadProgress,
    progress: &mut dyn FnMut(LoadProgress),
) -> Result<(String, Vec<u8>), FetchError> {
    let fp16 = url(&format!("{component}/{stem}.fp16.safetensors"));
    let (path, bytes) = match fetch_bytes(&fp16).await {
        Ok(bytes) => (format!("{component}/{stem}.fp16.safetensors"), bytes),
        Err(e) if e.reason.starts_with("HTTP 404") => {
            let path = format!("{component}/{stem}.safetensors");
            (path.clone(), fetch_bytes(&url(&path)).await?)
        }
        Err(e) => return Err(e),
    };
    state.files.push(FileProgress {
        path: path.clone(),
        bytes: Some(bytes.len() as u64),
        done: false,
    });
    progress(state.clone());
    // Building is synchronous: let the progress paint first.
    yield_to_browser().await;
    Ok((path, bytes))
}

/// Marks the last file built.
async fn finish_file(state: &mut LoadProgress, progress: &mut dyn FnMut(LoadProgress)) {
    if let Some(last) = state.files.last_mut() {
        last.done = true;
    }
    progress(state.clone());
    yield_to_browser().await;
}
