//! `sow toy`: the "diffusion in diffusion" experiment (docs/method.md §4.1), written as a grid of
//! images per variant (rows: merge states, columns: layouts), a CSV of the measures and an SVG
//! plot of the blending against the merge state.

use std::path::PathBuf;
use std::time::Instant;

use sow_studio::device::DeviceChoice;
use sow_studio::diffusion::toy::hook::ToyVariant;
use sow_studio::diffusion::toy::layout::Layout;
use sow_studio::diffusion::toy::report::{to_csv, to_svg, ToyRow};
use sow_studio::diffusion::toy::ToyOptions;
use sow_studio::pipeline::generate::Flow;
use sow_studio::pipeline::toy::{run_toy, ToyImage, ToyObserver, ToyStepReport};

use crate::generate::{load_models, write_atomically};

/// The options of `sow toy`.
#[derive(clap::Args, Debug)]
pub struct ToyArgs {
    /// The model: a folder or a base URL in the diffusers layout.
    #[arg(long)]
    model: String,
    /// The cache folder for downloaded models. Default: $XDG_CACHE_HOME/sow-studio, else
    /// ~/.cache/sow-studio.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// How the UNet's weights are kept on the device: q8 (8-bit blocks, under 1 GB for
    /// SD-2.1), q4 (4-bit, smaller, less exact) or f32 (docs/quantization.md). Part of the
    /// cache key: pull with the scheme you generate with.
    #[arg(long, default_value_t = crate::generate::DEFAULT_UNET_SCHEME)]
    scheme: sow_studio::weights::Scheme,
    /// The folder for the grids (`<variant>.png`), `toy.csv` and `toy.svg`.
    #[arg(long)]
    out: PathBuf,
    /// Which experiments: merge, increase, decrease (repeat or comma-separate; default all).
    #[arg(long = "variant", value_delimiter = ',')]
    variants: Vec<ToyVariant>,
    /// Which layouts: white-top, gray-top, white-left, gray-left (default white-top).
    #[arg(long = "layout", value_delimiter = ',')]
    layouts: Vec<Layout>,
    /// DDIM steps N (merge states 0..=N).
    #[arg(long, default_value_t = 10)]
    steps: usize,
    /// Image side in pixels (a multiple of 64).
    #[arg(long, default_value_t = 512)]
    size: usize,
    /// The attention variants' strength w.
    #[arg(long, default_value_t = 1.0)]
    strength: f64,
    /// Side of each cell in the grid images, in pixels (default: 128, or the image side if
    /// smaller).
    #[arg(long)]
    cell: Option<usize>,
    /// Where to run: auto, cpu, gpu or vulkan.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
}

/// Prints one line per step.
struct Printer {
    started: Instant,
}

impl ToyObserver for Printer {
    async fn step(&mut self, report: ToyStepReport<'_>) -> Flow {
        eprintln!(
            "[{:>6.1} s] {}/{} UNet evaluations: {}",
            self.started.elapsed().as_secs_f64(),
            report.unet_calls,
            report.unet_total,
            report.description
        );
        if crate::interrupt::requested() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

/// `sow toy`.
pub fn run(args: &ToyArgs) -> Result<(), String> {
    let options = ToyOptions {
        steps: args.steps,
        canvas: args.size,
        strength: args.strength,
        layouts: if args.layouts.is_empty() {
            vec![Layout::WhiteTop]
        } else {
            args.layouts.clone()
        },
        variants: if args.variants.is_empty() {
            ToyVariant::ALL.to_vec()
        } else {
            args.variants.clone()
        },
    };
    let cell = args.cell.unwrap_or(args.size.min(128));
    if cell == 0 || cell > args.size {
        return Err(format!(
            "--cell must be between 1 and the image side {}",
            args.size
        ));
    }
    let models = load_models(
        &args.model,
        args.device,
        args.cache_dir.as_deref(),
        args.scheme,
    )?;
    let mut printer = Printer {
        started: Instant::now(),
    };
    let images =
        pollster::block_on(run_toy(&models, &options, &mut printer)).map_err(|e| e.to_string())?;
    let rows: Vec<ToyRow> = images.iter().map(|i| i.row.clone()).collect();
    write_atomically(&args.out.join("toy.csv"), to_csv(&rows).as_bytes())?;
    write_atomically(
        &args.out.join("toy.svg"),
        to_svg(&rows, options.steps).as_bytes(),
    )?;
    for variant in &options.variants {
        let (rgb, width, height) = grid(&images, *variant, &options, cell);
        let png = sow_studio::imaging::png::encode_rgb_png(&rgb, width, height)
            .map_err(|e| e.to_string())?;
        write_atomically(&args.out.join(format!("{}.png", variant.name())), &png)?;
    }
    eprintln!(
        "wrote {} (toy.csv, toy.svg and one grid per variant)",
        args.out.display()
    );
    Ok(())
}

/// One variant's images as a grid: a row per merge state, a column per layout, each image
/// shrunk to `cell` pixels by averaging blocks.
fn grid(
    images: &[ToyImage],
    variant: ToyVariant,
    options: &ToyOptions,
    cell: usize,
) -> (Vec<u8>, usize, usize) {
    let (cols, rows) = (options.layouts.len(), options.steps + 1);
    let (width, height) = (cols * cell, rows * cell);
    let mut rgb = vec![0u8; width * height * 3];
    for image in images.iter().filter(|i| i.row.variant == variant) {
        let col = options
            .layouts
            .iter()
            .position(|l| *l == image.row.layout)
            .expect("a layout of the run");
        let row = image.row.merge_state;
        let small = shrink(&image.rgb, image.size, cell);
        for y in 0..cell {
            let to = ((row * cell + y) * width + col * cell) * 3;
            rgb[to..to + cell * 3].copy_from_slice(&small[y * cell * 3..(y + 1) * cell * 3]);
        }
    }
    (rgb, width, height)
}

/// Box-filter downscale of a square RGB image (side a multiple of `to`, or nearest otherwise).
fn shrink(rgb: &[u8], side: usize, to: usize) -> Vec<u8> {
    let factor = (side / to).max(1);
    let mut out = vec![0u8; to * to * 3];
    for y in 0..to {
        for x in 0..to {
            for c in 0..3 {
                let mut sum = 0u32;
                for dy in 0..factor {
                    for dx in 0..factor {
                        let (sy, sx) = (
                            (y * side / to + dy).min(side - 1),
                            (x * side / to + dx).min(side - 1),
                        );
                        sum += rgb[(sy * side + sx) * 3 + c] as u32;
                    }
                }
                out[(y * to + x) * 3 + c] = (sum / (factor * factor) as u32) as u8;
            }
        }
    }
    out
}
