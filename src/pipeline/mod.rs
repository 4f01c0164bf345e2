//! From a model source to images: loading the components a run needs, and the one async run
//! driver (progress, preview, cancel) that the CLI, the app and the tests share. The networks
//! below know nothing of runs; the app above never does tensor math.

pub mod conditioning;
pub mod conditions;
mod error;
pub mod fit;
#[cfg(not(target_arch = "wasm32"))]
pub mod folder;
pub mod generate;
pub mod load;
pub mod models;
#[cfg(not(target_arch = "wasm32"))]
pub mod pack;
pub mod params;
pub mod progress;
pub mod source;
pub mod sow;
pub mod toy;

pub use error::LoadError;
pub use load::{load_models, load_text_encoder, pull, LoadOptions, PullReport};
pub use models::{Models, SourceInfo};
#[cfg(not(target_arch = "wasm32"))]
pub use pack::{make_pack, PackReport};
pub use progress::{format_bytes, render_line, LoadEvent, LoadProgress, LoadReport, Phase};
pub use source::{license_notice, ModelSource, DEFAULT_MODEL_URL, LICENSE_NAME, LICENSE_URL};
