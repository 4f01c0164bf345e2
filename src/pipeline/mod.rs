//! From a model source to images: loading the components a run needs, and the one async run
//! driver (progress, preview, cancel) that the CLI, the app and the tests share. The networks
//! below know nothing of runs; the app above never does tensor math.

pub mod conditioning;
#[cfg(not(target_arch = "wasm32"))]
pub mod folder;
pub mod generate;
pub mod models;
pub mod pace;
pub mod params;
pub mod sow;
pub mod toy;

pub use models::{Models, SourceInfo};
