//! `sow`: SOW Studio's command line. It makes images with the same engine and run driver as the
//! app (`generate`, `batch`), and holds the engine's full-size checks and benchmarks.

#[cfg(target_arch = "wasm32")]
fn main() {}

#[cfg(not(target_arch = "wasm32"))]
mod batch;
#[cfg(not(target_arch = "wasm32"))]
mod checks;
#[cfg(not(target_arch = "wasm32"))]
mod generate;
#[cfg(not(target_arch = "wasm32"))]
mod interrupt;
#[cfg(not(target_arch = "wasm32"))]
mod pack;
#[cfg(not(target_arch = "wasm32"))]
mod plan;
#[cfg(not(target_arch = "wasm32"))]
mod progress;
#[cfg(not(target_arch = "wasm32"))]
mod pull;
#[cfg(not(target_arch = "wasm32"))]
mod toy;

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    use clap::Parser;
    let cli = Cli::parse();
    interrupt::install();
    let result = match &cli.command {
        Command::Generate(args) => generate::run(args),
        Command::Batch(args) => batch::run(args),
        Command::Toy(args) => toy::run(args),
        Command::Pull(args) => pull::run(args),
        Command::Pack(args) => pack::run(args),
        Command::CheckLimits(args) => checks::check_limits(args),
        Command::BenchUnet(args) => checks::bench_unet(args),
        Command::BenchOps(args) => checks::bench_ops(args),
    };
    if let Err(message) = result {
        eprintln!("error: {message}");
        let status = if interrupt::requested() {
            interrupt::EXIT_STATUS
        } else {
            1
        };
        std::process::exit(status);
    }
}

/// SOW Studio: Selective (and Cyclic) One-Way Diffusion on Stable Diffusion 2.1.
#[cfg(not(target_arch = "wasm32"))]
#[derive(clap::Parser, Debug)]
#[command(name = "sow", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[cfg(not(target_arch = "wasm32"))]
#[derive(clap::Subcommand, Debug)]
enum Command {
    /// Grow a whole image around one or more visual conditions, following a prompt.
    Generate(Box<generate::GenerateArgs>),
    /// Run one `generate` job per line of a JSON-lines file; finished jobs are skipped.
    Batch(batch::BatchArgs),
    /// The "diffusion in diffusion" experiment: grids, a CSV and a plot of how two halves blend.
    Toy(toy::ToyArgs),
    /// Fetch a model into the cache (checked, converted, resumable) without running anything.
    Pull(pull::PullArgs),
    /// Convert a model into a quantized pack: the smallest download, loaded with
    /// `--model pack:<folder or URL>`.
    Pack(pack::PackArgs),
    /// Full-size checks on Vulkan with WebGPU's default limits (random weights): one UNet
    /// evaluation, the text encoder, a 512 px VAE encode and a decode.
    CheckLimits(checks::CheckLimitsArgs),
    /// Time full-size UNet evaluations (random weights).
    BenchUnet(checks::BenchUnetArgs),
    /// Time the UNet's kinds of work one at a time (convolution, matmul, attention, group
    /// norm) at its largest level, to see where an evaluation's time goes.
    BenchOps(checks::BenchOpsArgs),
}
