//! # SOW Studio engine
//!
//! Stable Diffusion 2.1 in [burn], on any device burn's unified [`burn::tensor::Device`] reaches:
//! WebGPU in the browser, wgpu on Vulkan/Metal natively, and the `flex` CPU backend. The same
//! code runs everywhere; only the device differs.
//!
//! What is here now (the foundation):
//! - [`tokenizer`]: CLIP's BPE tokenizer, as open_clip tokenizes for SD-2.x.
//! - [`model`]: configs read from diffusers `config.json` files, the CLIP text encoder, the
//!   UNet (with a self-attention hook) and the VAE, all within WebGPU's buffer limits.
//! - [`weights`]: safetensors files in the diffusers layout, loaded tensor by tensor with exact
//!   name and shape checks.
//! - [`diffusion`]: the DDIM scheduler (sampling, inversion in three diffusers conventions,
//!   forward noising, jumps between levels).
//! - [`rng`]: the one seeded noise generator.
//! - [`compare`]: the relative L2 error every golden test uses.
//! - [`imaging`]: RGB bytes to the VAE's input and its output back to bytes.
//! - [`pace`]: long GPU work that gives the browser a turn now and then.
//!
//! A native program loads a diffusers folder with [`pipeline::folder`], tokenizes with
//! [`tokenizer::ClipTokenizer`], encodes with [`model::clip::ClipTextEncoder`] and steps
//! latents with [`diffusion::ddim::Ddim`].

pub mod compare;
#[cfg(not(target_arch = "wasm32"))]
pub mod device;
pub mod diffusion;
pub mod gpu_setup;
pub mod imaging;
pub mod model;
pub mod net;
pub mod pace;
pub mod pipeline;
pub mod rng;
pub mod tokenizer;
pub mod weights;

#[cfg(target_arch = "wasm32")]
pub mod app;
