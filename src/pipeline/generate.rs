//! The one async run driver: from loaded models and prepared conditions to an image, one
//! [`CowRun`] step at a time, telling an observer after every step (progress, preview) and
//! letting it cancel. The CLI, the app and the tests all drive runs through [`generate`].

use burn::tensor::{Tensor, TensorData};

use super::Models;
use crate::diffusion::sow::noise::{Draws, NoiseSource};
use crate::diffusion::sow::presets::RunOptions;
use crate::diffusion::sow::run::{
    ConditionInput, CowRun, CycleHook, RunError, Stage, TextConditions,
};
use crate::imaging::{compose_canvas, rgb_to_tensor, ConditionError, PreparedCondition};
use crate::model::clip::EncodeError;

/// Everything a run needs besides the models.
#[derive(Clone, Debug)]
pub struct GenerateJob {
    /// The prompt P (SOW: the intensified prompt).
    pub prompt: String,
    /// Every knob, resolved.
    pub options: RunOptions,
    /// The seed of the run's generator (ignored when `noise` is given).
    pub seed: u64,
    /// The visual conditions, in paste order.
    pub conditions: Vec<PreparedCondition>,
    /// The draws given explicitly (shape, values), in the order of docs/method.md §2.10a.
    pub noise: Option<Vec<(Vec<usize>, Vec<f32>)>>,
    /// Keep and return the per-stage latents.
    pub record_states: bool,
}

/// What the observer sees after each step.
pub struct StepReport<'a> {
    /// What the run does next, in words ("cycle 3 of 10: state 7 → 6").
    pub description: String,
    /// The stage just completed.
    pub completed: Stage,
    /// The stage the next step runs.
    pub next: Stage,
    /// UNet evaluations done.
    pub unet_calls: usize,
    /// UNet evaluations in all.
    pub unet_total: usize,
    /// The canvas latent after this step (on the device; read it back only if needed, e.g.
    /// through [`crate::diffusion::sow::preview::latent_preview`]).
    pub latent: Option<&'a Tensor<4>>,
}

/// What the observer wants after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Go on.
    Continue,
    /// Stop the run now.
    Cancel,
}

/// Watches a run between its steps. Async, so that a browser observer can yield to the page.
#[allow(async_fn_in_trait)]
pub trait RunObserver {
    /// Called after every step.
    async fn step(&mut self, report: StepReport<'_>) -> Flow;
}

/// An observer that watches nothing.
pub struct Unobserved;

impl RunObserver for Unobserved {
    async fn step(&mut self, _report: StepReport<'_>) -> Flow {
        Flow::Continue
    }
}

/// A latent read back to the host.
#[derive(Clone, Debug, PartialEq)]
pub struct HostTensor {
    /// Its name (`final_latent`, `crop_state.3`, `cycle.2`, …).
    pub name: String,
    /// Its shape.
    pub shape: Vec<usize>,
    /// Row-major values.
    pub values: Vec<f32>,
}

/// A finished run on the host.
#[derive(Clone, Debug)]
pub struct Generated {
    /// The image, `canvas × canvas` interleaved RGB.
    pub rgb: Vec<u8>,
    /// Its side in pixels.
    pub size: usize,
    /// The final latent (always) and the recorded states (on request).
    pub latents: Vec<HostTensor>,
    /// Random draws taken.
    pub draws: usize,
}

/// Anything that stops [`generate`].
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The run itself failed or was rejected.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A prompt could not be encoded.
    #[error("encoding the prompts failed: {0}")]
    Encode(#[from] EncodeError),
    /// A condition does not fit its box or the canvas.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// The attention modulation's strengths are out of range.
    #[error(transparent)]
    Attention(#[from] crate::diffusion::sow::dam::DamOptionsError),
    /// The observer cancelled.
    #[error("cancelled after {unet_calls} of {unet_total} UNet evaluations")]
    Cancelled {
        /// Evaluations done.
        unet_calls: usize,
        /// Evaluations planned.
        unet_total: usize,
    },
    /// Reading a result back from the device failed.
    #[error("reading the result back from the device failed: {0}")]
    Readback(String),
}

/// Runs COW from start to end: encodes the five prompts, composes the canvas, then steps the
/// run, reporting to `observer` after each step.
pub async fn generate<O: RunObserver>(
    models: &Models,
    job: &GenerateJob,
    hook: Option<&dyn CycleHook>,
    observer: &mut O,
) -> Result<Generated, GenerateError> {
    let device = &models.device;
    let options = &job.options;
    options.validate().map_err(RunError::from)?;
    let texts = encode_prompts(models, &job.prompt, options).await?;
    let canvas = compose_canvas(options.canvas, &job.conditions)?;
    let canvas = rgb_to_tensor(&canvas.rgb, options.canvas, options.canvas, device)
        .expect("the canvas has canvas² pixels");
    let inputs = job
        .conditions
        .iter()
        .map(|c| ConditionInput {
            crop: rgb_to_tensor(&c.crop_rgb, c.placement.side, c.placement.side, device)
                .expect("checked by compose_canvas"),
            keep: c.keep_latent.clone(),
            placement: c.placement,
        })
        .collect();
    let draws = match &job.noise {
        Some(list) => Draws::new(NoiseSource::Given(list.clone())),
        None => Draws::seeded(job.seed),
    };
    let mut run = CowRun::new(
        &models.unet,
        &models.vae,
        &models.scheduler,
        options.clone(),
        texts,
        inputs,
        canvas,
        draws,
    )?
    .record_states(job.record_states);
    if let Some(hook) = hook {
        run = run.with_cycle_hook(hook);
    }
    while !run.is_done() {
        let progress = run.step().await?;
        crate::pace::settle(progress.latent.as_ref()).await;
        let report = StepReport {
            description: progress.next.describe(run.options()),
            completed: progress.completed,
            next: progress.next,
            unet_calls: progress.unet_calls,
            unet_total: progress.unet_total,
            latent: progress.latent.as_ref(),
        };
        if observer.step(report).await == Flow::Cancel && !run.is_done() {
            return Err(GenerateError::Cancelled {
                unet_calls: progress.unet_calls,
                unet_total: progress.unet_total,
            });
        }
    }
    let output = run.finish()?;
    let rgb = crate::imaging::tensor_to_rgb(output.image)
        .await
        .map_err(GenerateError::Readback)?
        .remove(0);
    let mut latents = vec![read_back("final_latent".into(), output.final_latent).await?];
    for (name, tensor) in output.recorded {
        latents.push(read_back(name, tensor).await?);
    }
    Ok(Generated {
        rgb,
        size: options.canvas,
        latents,
        draws: output.draws,
    })
}

/// The hidden states of P, "", the negative prompt and the two background prompts, encoded in
/// one batch (docs/method.md §2.3).
pub async fn encode_prompts(
    models: &Models,
    prompt: &str,
    options: &RunOptions,
) -> Result<TextConditions, EncodeError> {
    let prompts = [
        prompt,
        "",
        options.negative_prompt.as_str(),
        options.background_subject.as_str(),
        options.background_quality.as_str(),
    ];
    let ids: Vec<Vec<u32>> = prompts
        .iter()
        .map(|p| models.tokenizer.tokenize(p).to_vec())
        .collect();
    let hidden = models
        .text_encoder
        .encode_paced(&ids, &models.device, &mut crate::pace::Pacer::new())
        .await?;
    let row = |i: usize| hidden.clone().narrow(0, i, 1);
    Ok(TextConditions {
        prompt: row(0),
        empty: row(1),
        negative: row(2),
        background_subject: row(3),
        background_quality: row(4),
    })
}

async fn read_back(name: String, tensor: Tensor<4>) -> Result<HostTensor, GenerateError> {
    let shape = tensor.dims().to_vec();
    let values = tensor
        .into_data_async()
        .await
        .map_err(|e| GenerateError::Readback(format!("{e:?}")))?
        .try_into_vec::<f32>()
        .map_err(|e| GenerateError::Readback(format!("{e:?}")))?;
    Ok(HostTensor {
        name,
        shape,
        values,
    })
}

/// Host values as a tensor (for tests and tools that feed latents back).
pub fn upload(host: &HostTensor, device: &burn::tensor::Device) -> Tensor<4> {
    let shape: [usize; 4] = host.shape.clone().try_into().expect("a 4-d latent");
    Tensor::from_data(TensorData::new(host.values.clone(), shape), device)
}
