//! `sow generate`: one image. Every knob of the run is an option whose default is the chosen
//! setting's preset (docs/method.md §2.8); `--params-from` starts from an earlier image's
//! parameters instead, and explicit options still win. SOW (the default method) plans the run
//! first (docs/method.md §3.3) and modulates the cycles' attention; `--method cow` runs COW.

use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Deserialize;
use sow_studio::device::{self, DeviceChoice};
use sow_studio::diffusion::sow::dam::DamOptions;
use sow_studio::diffusion::sow::presets::{InversionChoice, DEFAULT_SEED};
use sow_studio::diffusion::sow::{JumpMode, RunOptions, Setting};
use sow_studio::imaging::SquareBox;
use sow_studio::pipeline::conditions::ConditionFiles;
use sow_studio::pipeline::generate::{GenerateError, GenerateJob};
use sow_studio::pipeline::load::LoadOptions;
use sow_studio::pipeline::params::{sha256_hex, ImageParameters, Method};
use sow_studio::pipeline::sow::{generate_run, planned_options};
use sow_studio::pipeline::{license_notice, ModelSource, Models, DEFAULT_MODEL_URL};
use sow_studio::weights::safetensors::{decode_f32, serialize_f32, SafetensorsHeader};
use sow_studio::weights::{ConversionPolicy, Scheme};

use crate::plan::{check_fits, make_plan, read_plan, GeminiChoice, PlannerChoice};
use crate::progress::{LoadBars, ProgressBarObserver};
use crate::pull::open_cache;
use sow_studio::pipeline::format_bytes;

/// The options of `sow generate` (and, as JSON fields, of one `sow batch` job).
#[derive(clap::Args, Debug, Default, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub struct GenerateArgs {
    /// A batch job's name (its output file's stem); not a command-line option.
    #[arg(skip)]
    pub id: Option<String>,
    /// The model: a folder in the diffusers layout (e.g. a local copy of
    /// stable-diffusion-2-1-base) or a base URL in that layout (downloaded once into the cache).
    #[arg(long)]
    pub model: Option<String>,
    /// The cache folder for downloaded models. Default: $XDG_CACHE_HOME/sow-studio, else
    /// ~/.cache/sow-studio.
    #[arg(long)]
    #[serde(skip)]
    pub cache_dir: Option<PathBuf>,
    /// How the UNet's weights are kept on the device: q8 (8-bit blocks, under 1 GB for
    /// SD-2.1), q4 (4-bit, smaller, less exact) or f32 (docs/quantization.md). Part of the
    /// cache key: pull with the scheme you generate with. Default: the scheme the
    /// `--params-from` image was made with, else q8.
    #[arg(long)]
    #[serde(skip)]
    pub scheme: Option<Scheme>,
    /// A visual condition's image (PNG, JPEG or WebP); repeat for several conditions.
    #[arg(long = "condition", value_name = "IMAGE")]
    #[serde(deserialize_with = "one_or_many")]
    pub condition: Vec<PathBuf>,
    /// The condition's mask (black = keep); repeat once per condition, `-` for none.
    #[arg(long = "mask", value_name = "IMAGE")]
    #[serde(deserialize_with = "one_or_many")]
    pub mask: Vec<String>,
    /// The condition's square box on the canvas: x,y,side in pixels (multiples of 8); repeat
    /// once per condition. Default: 128,0,256 scaled to the canvas.
    #[arg(long = "box", value_name = "X,Y,SIDE")]
    #[serde(rename = "box", deserialize_with = "boxes_from_json")]
    pub boxes: Vec<SquareBox>,
    /// The text prompt.
    #[arg(long)]
    pub prompt: Option<String>,
    /// The setting whose preset gives every default: normal, attribute or style.
    #[arg(long)]
    pub setting: Option<Setting>,
    /// The seed of the run's random draws (default 42).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Where to write the PNG (its parameters are embedded).
    #[arg(long)]
    #[serde(skip)]
    pub out: Option<PathBuf>,
    /// Take the draws from this safetensors file (`noise.0`, `noise.1`, … in the order of
    /// docs/method.md §2.10a) instead of the seed.
    #[arg(long)]
    pub noise: Option<PathBuf>,
    /// Also write the final latent and the per-stage states to this safetensors file (and, for
    /// SOW, the plan beside it as `<name>.plan.json`).
    #[arg(long)]
    pub save_latents: Option<PathBuf>,
    /// Start from the parameters embedded in an earlier image.
    #[arg(long)]
    pub params_from: Option<PathBuf>,
    /// Where to run: auto (a GPU if there is one, else the CPU), cpu, gpu or vulkan.
    #[arg(long, default_value = "auto")]
    #[serde(skip)]
    pub device: Option<DeviceChoice>,
    /// The method: sow (plan, then modulate attention; the default) or cow.
    #[arg(long, value_parser = parse_method)]
    pub method: Option<Method>,

    /// SOW's planner: auto (Gemini when GEMINI_API_KEY is set, else offline), offline or
    /// gemini. Gemini sees the prompt and the masked conditions; nothing else leaves.
    #[arg(long, help_heading = "SOW")]
    pub planner: Option<PlannerChoice>,
    /// Use this plan (JSON, as --save-plan writes it) instead of planning.
    #[arg(long, help_heading = "SOW")]
    pub plan: Option<PathBuf>,
    /// Also write the plan the run used to this JSON file.
    #[arg(long, help_heading = "SOW")]
    #[serde(skip)]
    pub save_plan: Option<PathBuf>,
    /// The Gemini model (default gemini-2.5-flash).
    #[arg(long, help_heading = "SOW")]
    pub gemini_model: Option<String>,
    /// The Gemini API's base URL (default Google's).
    #[arg(long, help_heading = "SOW")]
    pub gemini_endpoint: Option<String>,
    /// Attention modulation: α, the suppression of condition → background attention.
    #[arg(long, help_heading = "SOW")]
    pub suppress: Option<f64>,
    /// β, the enhancement of related region → condition attention.
    #[arg(long, help_heading = "SOW")]
    pub enhance: Option<f64>,
    /// κ, how fast the enhancement fades over the cycles.
    #[arg(long, help_heading = "SOW")]
    pub temporal_rate: Option<f64>,
    /// ρ, how far from a condition's centre the enhancement reaches (in canvas sides).
    #[arg(long, help_heading = "SOW")]
    pub spatial_extent: Option<f64>,
    /// τ, the threshold of the enhancement's indicator.
    #[arg(long, help_heading = "SOW")]
    pub threshold: Option<f64>,

    /// DDIM inference steps (presets: 10).
    #[arg(long, help_heading = "Run options")]
    pub steps: Option<usize>,
    /// Cycle start state k_s ("700").
    #[arg(long, help_heading = "Run options")]
    pub start_state: Option<usize>,
    /// Cycle end state k_e ("500").
    #[arg(long, help_heading = "Run options")]
    pub end_state: Option<usize>,
    /// Number of cycles C.
    #[arg(long, help_heading = "Run options")]
    pub cycles: Option<usize>,
    /// Preservation states K_id, comma-separated (e.g. 4,3); empty for none.
    #[arg(long, value_delimiter = ',', num_args = 0.., help_heading = "Run options")]
    pub preserve: Option<Vec<usize>>,
    /// η of the cycles' DDIM steps.
    #[arg(long, help_heading = "Run options")]
    pub eta_cycle: Option<f64>,
    /// η of the final stage's DDIM steps.
    #[arg(long, help_heading = "Run options")]
    pub eta_final: Option<f64>,
    /// Guidance scale of the cycles and the final stage.
    #[arg(long, help_heading = "Run options")]
    pub guidance: Option<f64>,
    /// Guidance scale of the inversions.
    #[arg(long, help_heading = "Run options")]
    pub inversion_guidance: Option<f64>,
    /// The cycles' negative prompt.
    #[arg(long, help_heading = "Run options")]
    pub negative_prompt: Option<String>,
    /// The background guidance's subject prompt (pushed away outside the condition).
    #[arg(long, help_heading = "Run options")]
    pub background_subject: Option<String>,
    /// The background guidance's quality prompt (pulled towards outside the condition).
    #[arg(long, help_heading = "Run options")]
    pub background_quality: Option<String>,
    /// DDIM inversion convention: 0.22 (default), 0.19 or 0.17 (diffusers releases).
    #[arg(long, value_parser = parse_inversion, help_heading = "Run options")]
    pub inversion: Option<InversionChoice>,
    /// The cycle's jump: code-faithful (COW's released code) or level-consistent.
    #[arg(long, value_parser = parse_jump, help_heading = "Run options")]
    pub jump: Option<JumpMode>,
    /// Canvas side in pixels (a multiple of 64; 512 for SD-2.1).
    #[arg(long, help_heading = "Run options")]
    pub size: Option<usize>,
}

/// A job file's field that takes one value or a list, as a repeatable option does.
fn one_or_many<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum OneOrMany<T> {
        One(T),
        Many(Vec<T>),
    }
    Ok(match OneOrMany::deserialize(d)? {
        OneOrMany::One(one) => vec![one],
        OneOrMany::Many(many) => many,
    })
}

/// Boxes in a job file: `"x,y,side"` strings (as on the command line) or `{"x", "y", "side"}`
/// objects, one or a list.
fn boxes_from_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<SquareBox>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Written {
        Text(String),
        Object(SquareBox),
    }
    one_or_many(d)?
        .into_iter()
        .map(|one| match one {
            Written::Text(text) => text.parse().map_err(serde::de::Error::custom),
            Written::Object(b) => Ok(b),
        })
        .collect()
}

fn parse_inversion(s: &str) -> Result<InversionChoice, String> {
    match s.trim_start_matches("diffusers-") {
        "0.22" => Ok(InversionChoice::Diffusers022),
        "0.19" => Ok(InversionChoice::Diffusers019),
        "0.17" => Ok(InversionChoice::Diffusers017),
        _ => Err(format!("{s:?}: use 0.22, 0.19 or 0.17")),
    }
}

fn parse_method(s: &str) -> Result<Method, String> {
    match s {
        "sow" => Ok(Method::Sow),
        "cow" => Ok(Method::Cow),
        _ => Err(format!("{s:?}: use sow or cow")),
    }
}

fn parse_jump(s: &str) -> Result<JumpMode, String> {
    match s {
        "code-faithful" => Ok(JumpMode::CodeFaithful),
        "level-consistent" => Ok(JumpMode::LevelConsistent),
        _ => Err(format!("{s:?}: use code-faithful or level-consistent")),
    }
}

/// A request with every default filled in, ready to run.
pub struct Resolved {
    /// The model: a folder, a URL, or a pack made by `sow pack` (`pack:<folder or URL>`).
    pub model: String,
    /// The run.
    pub job: GenerateJob,
    /// What the image's parameters record.
    pub params: ImageParameters,
}

/// Fills in every default: explicit options, else the earlier image's parameters, else the
/// setting's preset. `model_override` (a batch's `--model`) wins over the job's own;
/// `base_dir` resolves relative paths (a batch file's folder).
pub fn resolve(
    args: &GenerateArgs,
    model_override: Option<&str>,
    base_dir: &Path,
) -> Result<Resolved, String> {
    let earlier = match &args.params_from {
        Some(path) => Some(read_parameters(&base_dir.join(path))?),
        None => None,
    };
    let setting = args
        .setting
        .or(earlier.as_ref().map(|p| p.options.setting))
        .unwrap_or_default();
    let mut options = match (&earlier, args.setting.is_some() || args.steps.is_some()) {
        (Some(p), false) => p.options.clone(),
        _ => RunOptions::preset_with_steps(setting, args.steps.unwrap_or(10)),
    };
    macro_rules! take {
        ($field:ident, $arg:expr) => {
            if let Some(v) = $arg.clone() {
                options.$field = v;
            }
        };
    }
    take!(start_state, args.start_state);
    take!(end_state, args.end_state);
    take!(cycles, args.cycles);
    take!(preserve_states, args.preserve);
    take!(eta_cycle, args.eta_cycle);
    take!(eta_final, args.eta_final);
    take!(guidance, args.guidance);
    take!(inversion_guidance, args.inversion_guidance);
    take!(negative_prompt, args.negative_prompt);
    take!(background_subject, args.background_subject);
    take!(background_quality, args.background_quality);
    take!(inversion, args.inversion);
    take!(jump, args.jump);
    take!(canvas, args.size);
    options.validate().map_err(|e| e.to_string())?;

    let prompt = args
        .prompt
        .clone()
        .or(earlier.as_ref().map(|p| p.prompt.clone()))
        .ok_or("a prompt is needed: --prompt <text>")?;
    let seed = args
        .seed
        .or(earlier.as_ref().map(|p| p.seed))
        .unwrap_or(DEFAULT_SEED);
    let model = model_override
        .map(str::to_string)
        .or(args.model.clone())
        .or(earlier.as_ref().map(|p| p.model.label.clone()))
        .ok_or_else(|| {
            format!(
                "a model is needed: --model <folder or URL>, e.g. --model {DEFAULT_MODEL_URL} \
                 (Stable Diffusion 2.1-base from a public mirror)"
            )
        })?;

    if args.condition.is_empty() {
        return Err("a visual condition is needed: --condition <image>".into());
    }
    let count = args.condition.len();
    if !args.mask.is_empty() && args.mask.len() != count {
        return Err(format!(
            "{count} condition(s) but {} --mask: give one per condition (`-` for none) or none",
            args.mask.len()
        ));
    }
    let given_boxes = match args.boxes.len() {
        0 => None,
        n if n == count => Some(args.boxes.clone()),
        n => {
            return Err(format!(
                "{count} condition(s) but {n} --box: give one per condition"
            ))
        }
    };
    let mut files = Vec::with_capacity(count);
    for (i, image) in args.condition.iter().enumerate() {
        let mask = match args.mask.get(i).map(String::as_str) {
            None | Some("-") => None,
            Some(path) => Some(base_dir.join(path)),
        };
        let file = read_condition(&base_dir.join(image), mask.as_deref())
            .map_err(|e| format!("condition {}: {e}", i + 1))?;
        if let Some(old) = earlier.as_ref().and_then(|p| p.conditions.get(i)) {
            if old.image_sha256 != file.image_sha256 {
                eprintln!(
                    "warning: condition {} is not the image the earlier parameters name (its SHA-256 differs)",
                    i + 1
                );
            }
        }
        files.push(file);
    }

    let method = args
        .method
        .or(earlier.as_ref().map(|p| p.method))
        .unwrap_or(Method::Sow);
    let earlier_boxes = earlier
        .as_ref()
        .filter(|p| p.conditions.len() == count)
        .map(|p| p.conditions.iter().map(|c| c.placement).collect::<Vec<_>>());
    let (boxes, plan) = match method {
        Method::Cow => {
            let boxes = match (given_boxes, earlier_boxes) {
                (Some(boxes), _) | (None, Some(boxes)) => boxes,
                (None, None) if count == 1 => vec![default_box(options.canvas)],
                (None, None) => return Err("give one --box per condition".into()),
            };
            (boxes, None)
        }
        Method::Sow => {
            let earlier_plan = earlier.as_ref().and_then(|p| p.plan.clone());
            let replan = args.planner.is_some() || args.prompt.is_some();
            let mut plan = match (&args.plan, earlier_plan) {
                (Some(path), _) => read_plan(&base_dir.join(path), options.canvas, count)?,
                (None, Some(plan)) if !replan => {
                    check_fits(&plan, options.canvas, count)?;
                    plan
                }
                _ => {
                    let seen = files
                        .iter()
                        .map(|f| {
                            let prepared = f
                                .prepare(default_box(options.canvas))
                                .map_err(|e| e.to_string())?;
                            Ok((f.label.clone(), prepared))
                        })
                        .collect::<Result<Vec<_>, String>>()?;
                    let gemini = GeminiChoice {
                        model: args.gemini_model.clone(),
                        endpoint: args.gemini_endpoint.clone(),
                    };
                    let choice = args.planner.unwrap_or_default();
                    make_plan(choice, &gemini, &prompt, options.canvas, &seen)?
                }
            };
            // Boxes given by hand win over the planner's placement.
            if let Some(boxes) = given_boxes {
                for (condition, square) in plan.conditions.iter_mut().zip(boxes) {
                    condition.square = square;
                }
            }
            let keep_background =
                args.background_subject.is_some() || args.background_quality.is_some();
            options = planned_options(&plan, &options, keep_background);
            let boxes = plan.conditions.iter().map(|c| c.square).collect();
            (boxes, Some(plan))
        }
    };
    let mut conditions = Vec::with_capacity(count);
    let mut records = Vec::with_capacity(count);
    for (i, (file, placement)) in files.iter().zip(boxes).enumerate() {
        placement
            .validate(options.canvas)
            .map_err(|e| format!("condition {}: {e}", i + 1))?;
        conditions.push(
            file.prepare(placement)
                .map_err(|e| format!("condition {}: {e}", i + 1))?,
        );
        records.push(file.record(placement));
    }
    let attention = match &plan {
        Some(_) => Some(attention_options(args, earlier.as_ref())?),
        None => None,
    };

    let (noise, noise_sha256) = match &args.noise {
        Some(path) => {
            let path = base_dir.join(path);
            let bytes = std::fs::read(&path)
                .map_err(|e| format!("cannot read the noise file {}: {e}", path.display()))?;
            (Some(read_noise(&path, &bytes)?), Some(sha256_hex(&bytes)))
        }
        None => (None, None),
    };
    let mut params = ImageParameters::new(
        sow_studio::pipeline::SourceInfo {
            label: model.clone(),
            // A URL's pinned commit; folders name none.
            revision: ModelSource::parse(&model).ok().and_then(|s| s.revision()),
            unet_weights: Some(
                args.scheme
                    .or(earlier.as_ref().and_then(|p| p.model.unet_weights))
                    .unwrap_or(DEFAULT_UNET_SCHEME),
            ),
        },
        method,
        &prompt,
        seed,
        records,
        options.clone(),
    );
    params.noise_sha256 = noise_sha256;
    params.attention = attention;
    // SOW runs with the plan's intensified prompt P*.
    let run_prompt = plan.as_ref().map_or(prompt, |p| p.prompt.clone());
    params.plan = plan;
    Ok(Resolved {
        model,
        job: GenerateJob {
            prompt: run_prompt,
            options,
            seed,
            conditions,
            noise,
            record_states: args.save_latents.is_some(),
        },
        params,
    })
}

/// The attention modulation's options: the defaults (or an earlier image's), then the flags.
fn attention_options(
    args: &GenerateArgs,
    earlier: Option<&ImageParameters>,
) -> Result<DamOptions, String> {
    let mut dam = earlier
        .and_then(|p| p.attention.clone())
        .unwrap_or_default();
    for (field, value) in [
        (&mut dam.suppress, args.suppress),
        (&mut dam.enhance, args.enhance),
        (&mut dam.temporal_rate, args.temporal_rate),
        (&mut dam.spatial_extent, args.spatial_extent),
        (&mut dam.threshold, args.threshold),
    ] {
        if let Some(value) = value {
            *field = value;
        }
    }
    dam.validate().map_err(|e| e.to_string())?;
    Ok(dam)
}

/// A condition's files, read from disk.
fn read_condition(image_path: &Path, mask_path: Option<&Path>) -> Result<ConditionFiles, String> {
    let read = |path: &Path| {
        std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    };
    let name = image_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned());
    let mask = mask_path.map(read).transpose()?;
    Ok(ConditionFiles::new(
        &image_path.display().to_string(),
        name,
        read(image_path)?,
        mask,
    ))
}

/// COW's default placement, 256 px at (128, 0) on 512, scaled to the canvas.
fn default_box(canvas: usize) -> SquareBox {
    SquareBox::new(canvas / 4, 0, canvas / 2)
}

/// The PNG's parameters.
pub fn read_parameters(path: &Path) -> Result<ImageParameters, String> {
    let bytes = std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    sow_studio::pipeline::params::from_png(&bytes).map_err(|e| format!("{}: {e}", path.display()))
}

/// `noise.0`, `noise.1`, … of a safetensors file, in order; every tensor must be one of them
/// and the indices must be consecutive.
fn read_noise(path: &Path, bytes: &[u8]) -> Result<Vec<(Vec<usize>, Vec<f32>)>, String> {
    let label = path.display().to_string();
    let header = SafetensorsHeader::parse(&label, bytes, Some(bytes.len() as u64))
        .map_err(|e| e.to_string())?;
    let mut list = Vec::new();
    while let Some(info) = header.tensors.get(&format!("noise.{}", list.len())) {
        let values = decode_f32(info.dtype, &bytes[info.start as usize..info.end as usize])
            .ok_or_else(|| format!("{label}: noise.{} is not a float tensor", list.len()))?;
        list.push((info.shape.clone(), values));
    }
    if let Some(other) = header
        .tensors
        .keys()
        .find(|name| !is_noise_index_below(name, list.len()))
    {
        return Err(format!(
            "{label}: tensor {other:?} is not one of noise.0 … noise.{} (names must be consecutive)",
            list.len().saturating_sub(1)
        ));
    }
    Ok(list)
}

fn is_noise_index_below(name: &str, count: usize) -> bool {
    name.strip_prefix("noise.")
        .and_then(|i| i.parse::<usize>().ok())
        .is_some_and(|i| i < count)
}

/// The UNet's scheme when none is given: 8-bit, what keeps SD-2.1's UNet under 1 GB on the
/// device (docs/quantization.md §2).
pub const DEFAULT_UNET_SCHEME: Scheme = Scheme::Q8;

/// Loads the model once on the chosen device, saying which it is, with a progress bar. `model`
/// is a folder or a URL ([`ModelSource::parse`]); a URL's weights go through the cache at
/// `cache_dir` (else the user's cache folder), so only the first load downloads them. The UNet
/// is kept on the device as `scheme` says, the rest in f32.
pub fn load_models(
    model: &str,
    choice: DeviceChoice,
    cache_dir: Option<&Path>,
    scheme: Scheme,
) -> Result<Models, String> {
    let source = ModelSource::parse(model).map_err(|e| e.to_string())?;
    let (device, description) = device::open(choice)?;
    eprintln!("device: {description}");
    let cache = if source.is_remote() {
        eprintln!("{}", license_notice());
        let cache = open_cache(cache_dir);
        if cache.is_none() {
            eprintln!(
                "no cache folder (neither XDG_CACHE_HOME nor HOME is set): loading without the \
                 cache; pass --cache-dir <folder> to keep the download"
            );
        }
        cache
    } else {
        None
    };
    let options = LoadOptions {
        policy: ConversionPolicy::unet(scheme),
        cache: cache.as_ref(),
        ..LoadOptions::default()
    };
    let started = Instant::now();
    let mut bars = LoadBars::new();
    let loaded = pollster::block_on(sow_studio::pipeline::load_models(
        &source,
        &device,
        &options,
        &mut |event| bars.event(event),
    ));
    let report = bars.finish();
    let models = loaded.map_err(|e| e.to_string())?;
    let mut summary = format!(
        "loaded {} in {:.1} s",
        source.label(),
        started.elapsed().as_secs_f64()
    );
    if let Some(report) = report.filter(|_| source.is_remote()) {
        summary.push_str(&format!(
            " ({} transferred, {} from the cache)",
            format_bytes(report.transferred),
            format_bytes(report.from_cache)
        ));
    }
    eprintln!("{summary}");
    Ok(models)
}

/// Runs a resolved request on loaded models and writes its outputs.
pub fn execute(
    models: &Models,
    resolved: &Resolved,
    out: &Path,
    save_latents: Option<&Path>,
    save_plan: Option<&Path>,
) -> Result<(), String> {
    let started = Instant::now();
    let mut observer = ProgressBarObserver::new(
        resolved
            .job
            .options
            .unet_evaluations(resolved.job.conditions.len()),
    );
    let planned = match (&resolved.params.plan, &resolved.params.attention) {
        (Some(plan), Some(dam)) => Some((plan, dam)),
        _ => None,
    };
    let generated = pollster::block_on(generate_run(models, &resolved.job, planned, &mut observer))
        .map_err(|e| match e {
            GenerateError::Cancelled { .. } => format!("{e}; nothing written"),
            e => e.to_string(),
        });
    observer.finish();
    let generated = generated?;
    // The image records the scheme the UNet was loaded with (a batch loads once for all jobs).
    let mut params = resolved.params.clone();
    params.model.unet_weights = models.source.unet_weights;
    let png = sow_studio::pipeline::params::to_png(&generated.rgb, generated.size, &params)
        .map_err(|e| e.to_string())?;
    write_atomically(out, &png)?;
    if let Some(plan) = &resolved.params.plan {
        // The plan goes where it was asked for, and beside saved latents (`x.plan.json`), so a
        // run's states and the plan that shaped them stay together.
        let beside = save_latents.map(|path| path.with_extension("plan.json"));
        for path in save_plan.into_iter().chain(beside.as_deref()) {
            write_atomically(path, plan.to_json().as_bytes())?;
        }
    }
    if let Some(path) = save_latents {
        let tensors: Vec<(&str, &[usize], &[f32])> = generated
            .latents
            .iter()
            .map(|t| (t.name.as_str(), t.shape.as_slice(), t.values.as_slice()))
            .collect();
        write_atomically(path, &serialize_f32(&tensors))?;
    }
    eprintln!(
        "wrote {} ({} draws, {:.1} s)",
        out.display(),
        generated.draws,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Writes a file so that a reader never sees it half-written: a temporary name, then a rename.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(".partial");
    let temporary = PathBuf::from(temporary);
    std::fs::write(&temporary, bytes)
        .and_then(|_| std::fs::rename(&temporary, path))
        .map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// `sow generate`.
pub fn run(args: &GenerateArgs) -> Result<(), String> {
    let out = args.out.as_ref().ok_or("--out <png> is needed")?;
    let resolved = resolve(args, None, Path::new(""))?;
    let models = load_models(
        &resolved.model,
        args.device.unwrap_or(DeviceChoice::Auto),
        args.cache_dir.as_deref(),
        resolved
            .params
            .model
            .unet_weights
            .unwrap_or(DEFAULT_UNET_SCHEME),
    )?;
    execute(
        &models,
        &resolved,
        out,
        args.save_latents.as_deref(),
        args.save_plan.as_deref(),
    )
}
