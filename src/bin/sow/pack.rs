//! `sow pack`: converts a model once into a quantized pack, the smallest download that loads
//! straight onto the device (docs/weights.md, "Packs"). Any `--model` option then takes
//! `pack:<folder or URL>`.

use std::path::PathBuf;

use sow_studio::device;
use sow_studio::pipeline::{
    format_bytes, license_notice, make_pack, ModelSource, DEFAULT_MODEL_URL,
};
use sow_studio::weights::{Component, ConversionPolicy, Scheme};

use crate::progress::LoadBars;
use crate::pull::open_cache;

/// How a component travels in a pack and sits on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum PackScheme {
    /// 4-bit blocks with f32 scales.
    Q4,
    /// 8-bit blocks with f32 scales.
    Q8,
    /// Floats: carried as f16, f32 on the device.
    F16,
}

impl PackScheme {
    fn scheme(self) -> Scheme {
        match self {
            PackScheme::Q4 => Scheme::Q4,
            PackScheme::Q8 => Scheme::Q8,
            PackScheme::F16 => Scheme::F32,
        }
    }
}

/// The options of `sow pack`.
#[derive(clap::Args, Debug)]
pub struct PackArgs {
    /// The model to convert: a diffusers-layout folder or base URL (default: Stable Diffusion
    /// 2.1-base from a public mirror at a pinned revision).
    #[arg(long)]
    model: Option<String>,
    /// The folder to write the pack into (new or empty).
    #[arg(long)]
    out: PathBuf,
    /// The UNet's scheme.
    #[arg(long, value_enum, default_value_t = PackScheme::Q4)]
    unet: PackScheme,
    /// The text encoder's scheme (its token table stays a float either way).
    #[arg(long, value_enum, default_value_t = PackScheme::Q8)]
    text: PackScheme,
    /// The VAE's scheme. 8-bit by default: with it a pack of SD-2.1 with a 4-bit UNet is
    /// 0.99 GB, with an f16 VAE 1.07 GB (docs/weights.md, "Packs").
    #[arg(long, value_enum, default_value_t = PackScheme::Q8)]
    vae: PackScheme,
    /// The cache a URL source is downloaded through. Default: $XDG_CACHE_HOME/sow-studio,
    /// else ~/.cache/sow-studio.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
}

/// `sow pack`.
pub fn run(args: &PackArgs) -> Result<(), String> {
    let source = ModelSource::parse(args.model.as_deref().unwrap_or(DEFAULT_MODEL_URL))
        .map_err(|e| e.to_string())?;
    let policy = ConversionPolicy {
        text_encoder: args.text.scheme(),
        vae: args.vae.scheme(),
        unet: args.unet.scheme(),
    };
    let cache = open_cache(args.cache_dir.as_deref());
    if source.is_remote() {
        eprintln!("{}", license_notice());
    }
    let name = |scheme: PackScheme| format!("{scheme:?}").to_lowercase();
    eprintln!(
        "packing {} into {} (text encoder {}, VAE {}, UNet {})",
        source.label(),
        args.out.display(),
        name(args.text),
        name(args.vae),
        name(args.unet)
    );
    let probe = device::cpu();
    let mut bars = LoadBars::new();
    let made = pollster::block_on(make_pack(
        &source,
        &args.out,
        policy,
        cache.as_ref(),
        &probe,
        &mut |event| bars.event(event),
    ));
    bars.finish();
    let report = made.map_err(|e| e.to_string())?;
    let parts: Vec<String> = Component::ALL
        .iter()
        .map(|c| format!("{c} {}", format_bytes(report.component_bytes[c])))
        .collect();
    println!(
        "packed {} in {:.1} s: {} in all ({}); load it with --model pack:{}",
        source.label(),
        report.seconds,
        format_bytes(report.total_bytes),
        parts.join(", "),
        args.out.display()
    );
    Ok(())
}
