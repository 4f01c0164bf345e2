//! The Stable Diffusion 2.x networks in burn, and their configs: one file per part.

pub mod attention;
pub mod budget;
pub mod clip;
pub mod config;
pub mod hook;
pub mod layers;
#[cfg(not(target_arch = "wasm32"))]
pub mod limits;
pub mod resnet;
pub mod sampling;
pub mod transformer;
pub mod unet;
pub mod vae;
