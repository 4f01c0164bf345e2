//! `sow pull`: fetches a model into the cache without building it, so that later runs start
//! without a download (e.g. before going offline). Every tensor is checked against the model
//! and stored as the runs will use it; an interrupted pull resumes at the first tensor not yet
//! cached (docs/weights.md).

use std::path::{Path, PathBuf};

use sow_studio::device;
use sow_studio::pipeline::{license_notice, pull, ModelSource, DEFAULT_MODEL_URL};
use sow_studio::weights::cache::Cache;
use sow_studio::weights::{ConversionPolicy, Scheme};

use crate::progress::LoadBars;
use sow_studio::pipeline::format_bytes;

/// The options of `sow pull`.
#[derive(clap::Args, Debug)]
pub struct PullArgs {
    /// The model: a base URL in the diffusers layout (default: Stable Diffusion 2.1-base from a
    /// public mirror at a pinned revision; `--help` shows it).
    #[arg(long, long_help = format!(
        "The model: a base URL in the diffusers layout.\n\nDefault: Stable Diffusion 2.1-base \
         from a public mirror at a pinned revision, {DEFAULT_MODEL_URL}"
    ))]
    model: Option<String>,
    /// The cache folder. Default: $XDG_CACHE_HOME/sow-studio, else ~/.cache/sow-studio.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// How the UNet's weights are kept on the device: q8 (8-bit blocks, under 1 GB for
    /// SD-2.1), q4 (4-bit, smaller, less exact) or f32 (docs/quantization.md). Part of the
    /// cache key: pull with the scheme you generate with.
    #[arg(long, default_value_t = crate::generate::DEFAULT_UNET_SCHEME)]
    scheme: Scheme,
}

/// The cache at `folder`, else the user's cache folder; `None` when there is neither.
pub fn open_cache(folder: Option<&Path>) -> Option<Cache> {
    folder
        .map(Path::to_path_buf)
        .or_else(Cache::default_folder)
        .map(Cache::in_folder)
}

/// `sow pull`.
pub fn run(args: &PullArgs) -> Result<(), String> {
    let source = ModelSource::parse(args.model.as_deref().unwrap_or(DEFAULT_MODEL_URL))
        .map_err(|e| e.to_string())?;
    let cache = open_cache(args.cache_dir.as_deref()).ok_or(
        "no cache folder: neither XDG_CACHE_HOME nor HOME is set; pass --cache-dir <folder>",
    )?;
    if source.is_remote() {
        eprintln!("{}", license_notice());
    }
    eprintln!("pulling {} into {}", source.label(), cache.location());
    // The header checks allocate a few bytes on a device: the CPU's is always there.
    let probe = device::cpu();
    let mut bars = LoadBars::new();
    let pulled = pollster::block_on(pull(
        &source,
        &cache,
        ConversionPolicy::unet(args.scheme),
        &probe,
        &mut |event| bars.event(event),
    ));
    bars.finish();
    let report = pulled.map_err(|e| e.to_string())?;
    println!(
        "pulled {}{} in {:.1} s: {} transferred, {} already cached, {} written; the entry holds {}",
        source.label(),
        source
            .revision()
            .map(|r| format!(" (revision {r})"))
            .unwrap_or_default(),
        report.seconds,
        format_bytes(report.transferred),
        format_bytes(report.already_cached),
        format_bytes(report.written),
        format_bytes(report.entry_bytes),
    );
    Ok(())
}
