//! `sow batch`: one `generate` job per line of a JSON-lines file, for reproducing the paper's
//! grids. Finished jobs (their PNG exists) are skipped, so an interrupted batch resumes where it
//! stopped; `--shard i/n` splits one job file between machines without coordination.

use std::path::{Path, PathBuf};

use sow_studio::device::DeviceChoice;
use sow_studio::pipeline::Models;

use crate::generate::{execute, load_models, resolve, GenerateArgs};

/// The options of `sow batch`.
#[derive(clap::Args, Debug)]
pub struct BatchArgs {
    /// The jobs: one JSON object per line with `generate`'s option names (e.g.
    /// `{"id": "p01", "condition": "faces/1.png", "prompt": "...", "seed": 3}`); relative paths
    /// are resolved from the file's folder. Blank lines and lines starting with `#` are ignored.
    jobs: PathBuf,
    /// The folder for the images (`<id>.png`, or the job's line number when it has no id).
    #[arg(long)]
    out: PathBuf,
    /// Run only the jobs of shard i of n (job number mod n = i), e.g. `--shard 0/4`.
    #[arg(long, value_parser = parse_shard)]
    shard: Option<(usize, usize)>,
    /// The model for every job, a folder, a URL or `pack:<folder or URL>` (a job's own `model`
    /// is used otherwise).
    #[arg(long)]
    model: Option<String>,
    /// The cache folder for downloaded models. Default: $XDG_CACHE_HOME/sow-studio, else
    /// ~/.cache/sow-studio.
    #[arg(long)]
    cache_dir: Option<PathBuf>,
    /// How the UNet's weights are kept on the device: q8 (8-bit blocks, under 1 GB for
    /// SD-2.1), q4 (4-bit, smaller, less exact) or f32 (docs/quantization.md). Part of the
    /// cache key: pull with the scheme you generate with.
    #[arg(long, default_value_t = crate::generate::DEFAULT_UNET_SCHEME)]
    scheme: sow_studio::weights::Scheme,
    /// Where to run: auto, cpu, gpu or vulkan.
    #[arg(long, default_value = "auto")]
    device: DeviceChoice,
    /// Also write each job's latents as `<id>.latents.safetensors`.
    #[arg(long)]
    save_latents: bool,
}

fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let parsed = s
        .split_once('/')
        .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
    match parsed {
        Some((i, n)) if n > 0 && i < n => Ok((i, n)),
        _ => Err(format!("{s:?}: use i/n with 0 <= i < n, e.g. 0/4")),
    }
}

/// One job line.
struct Job {
    number: usize,
    name: String,
    args: GenerateArgs,
}

/// Reads every job, failing on the first malformed line (with its number).
fn read_jobs(path: &Path) -> Result<Vec<Job>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let mut jobs = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let args: GenerateArgs = serde_json::from_str(line)
            .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?;
        let number = jobs.len();
        let name = match &args.id {
            Some(id) if is_safe_name(id) => id.clone(),
            Some(id) => {
                return Err(format!(
                "{} line {}: id {id:?} must be a plain file name (letters, digits, '-', '_', '.')",
                path.display(),
                i + 1
            ))
            }
            None => format!("{number:05}"),
        };
        jobs.push(Job { number, name, args });
    }
    Ok(jobs)
}

fn is_safe_name(id: &str) -> bool {
    !id.is_empty()
        && !id.starts_with('.')
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `sow batch`.
pub fn run(args: &BatchArgs) -> Result<(), String> {
    let jobs = read_jobs(&args.jobs)?;
    let base = args.jobs.parent().unwrap_or(Path::new("")).to_path_buf();
    let mine: Vec<&Job> = jobs
        .iter()
        .filter(|job| args.shard.is_none_or(|(i, n)| job.number % n == i))
        .collect();
    let (mut done, mut skipped, mut failed) = (0, 0, Vec::new());
    let mut loaded: Option<(String, Models)> = None;
    for (k, job) in mine.iter().enumerate() {
        let out = args.out.join(format!("{}.png", job.name));
        let prefix = format!("[{}/{}] {}", k + 1, mine.len(), job.name);
        if out.exists() {
            eprintln!("{prefix}: done before, skipped");
            skipped += 1;
            continue;
        }
        if crate::interrupt::requested() {
            break;
        }
        let result = resolve(&job.args, args.model.as_deref(), &base).and_then(|resolved| {
            if loaded
                .as_ref()
                .is_none_or(|(name, _)| *name != resolved.model)
            {
                loaded = None; // free the previous model first
                loaded = Some((
                    resolved.model.clone(),
                    load_models(
                        &resolved.model,
                        args.device,
                        args.cache_dir.as_deref(),
                        args.scheme,
                    )?,
                ));
            }
            let models = &loaded.as_ref().expect("loaded above").1;
            eprintln!("{prefix}: {}", resolved.job.prompt);
            let latents = args
                .save_latents
                .then(|| args.out.join(format!("{}.latents.safetensors", job.name)));
            execute(models, &resolved, &out, latents.as_deref(), None)
        });
        match result {
            Ok(()) => done += 1,
            Err(e) if crate::interrupt::requested() => {
                eprintln!("{prefix}: {e}");
                break;
            }
            Err(e) => {
                eprintln!("{prefix}: failed: {e}");
                failed.push(job.name.clone());
            }
        }
    }
    eprintln!(
        "{done} made, {skipped} skipped (done before), {} failed, of {} job(s){}",
        failed.len(),
        mine.len(),
        args.shard
            .map(|(i, n)| format!(" in shard {i}/{n}"))
            .unwrap_or_default()
    );
    if crate::interrupt::requested() {
        Err("interrupted: the same command goes on where this one stopped".into())
    } else if failed.is_empty() {
        Ok(())
    } else {
        Err(format!("failed jobs: {}", failed.join(", ")))
    }
}
