//! From a plan to a SOW run (docs/method.md §3.3): the plan's intensified prompt replaces the
//! user's, its boxes place the conditions, its background suggestion (if any) replaces the
//! background prompts, and its related regions steer the attention modulation of the cycles.

use burn::tensor::Device;

use super::generate::{generate, GenerateError, GenerateJob, Generated, RunObserver};
use super::Models;
use crate::diffusion::sow::dam::{Dam, DamCondition, DamOptions, DamOptionsError};
use crate::diffusion::sow::planner::{ConditionImage, Plan, PlanRequest};
use crate::diffusion::sow::run::{CycleHook, CYCLE_BRANCHES};
use crate::diffusion::sow::RunOptions;
use crate::imaging::png::{encode_rgb_png, PngError};
use crate::imaging::{compose_canvas, ConditionError, PreparedCondition};

/// What the planner is asked (docs/planner.md): the user's prompt and each condition as its
/// masked crop in PNG, labelled (a file name), for a `canvas`-pixel canvas.
pub fn plan_request(
    prompt: &str,
    canvas: usize,
    conditions: &[(String, PreparedCondition)],
) -> Result<PlanRequest, PngError> {
    let mut images = Vec::with_capacity(conditions.len());
    for (label, condition) in conditions {
        let side = condition.placement.side;
        let png = encode_rgb_png(&condition.crop_rgb, side, side)?;
        images.push(ConditionImage::png(png).labelled(label.clone()));
    }
    let mut request = PlanRequest::new(prompt, images);
    request.canvas = canvas;
    Ok(request)
}

/// Runs a job: COW, or SOW when `planned` gives the plan and its attention options (the
/// cycles' attention modulation, docs/method.md §3.4). The job's prompt is already P*.
pub async fn generate_run<O: RunObserver>(
    models: &Models,
    job: &GenerateJob,
    planned: Option<(&Plan, &DamOptions)>,
    observer: &mut O,
) -> Result<Generated, GenerateError> {
    let attention = match planned {
        Some((plan, dam)) => Some(
            attention_for(plan, &job.conditions, &job.options, dam, &models.device).map_err(
                |e| match e {
                    PlannedRunError::Condition(e) => GenerateError::Condition(e),
                    PlannedRunError::Options(e) => GenerateError::Attention(e),
                },
            )?,
        ),
        None => None,
    };
    let hook = attention.as_ref().map(|dam| dam as &dyn CycleHook);
    generate(models, job, hook, observer).await
}

/// The options of a run after the plan: P*'s background suggestion replaces the background
/// prompts unless the user set them (`keep_background` true).
pub fn planned_options(plan: &Plan, options: &RunOptions, keep_background: bool) -> RunOptions {
    let mut options = options.clone();
    if let (Some(guidance), false) = (&plan.guidance, keep_background) {
        options.background_subject = guidance.background_subject.clone();
        options.background_quality = guidance.background_quality.clone();
    }
    options
}

/// The attention modulation of a planned run: one [`DamCondition`] per condition, with its
/// plan's related region (minus every condition) and its box's centre.
pub fn attention_for(
    plan: &Plan,
    conditions: &[PreparedCondition],
    options: &RunOptions,
    dam: &DamOptions,
    device: &Device,
) -> Result<Dam, PlannedRunError> {
    let canvas = options.canvas;
    let m_full = compose_canvas(canvas, conditions)?.keep_latent;
    let prompt_branch = CYCLE_BRANCHES
        .iter()
        .position(|b| *b == "prompt")
        .expect("the cycles have a prompt branch");
    let dam_conditions = conditions
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let related = plan.related_mask(i, &m_full);
            DamCondition::new(c.placement, &c.keep_latent, &related, canvas)
        })
        .collect();
    Ok(Dam::new(
        dam.clone(),
        dam_conditions,
        options.cycles,
        prompt_branch,
        device,
    )?)
}

/// Why a plan could not become attention modulation.
#[derive(Debug, thiserror::Error)]
pub enum PlannedRunError {
    /// The conditions do not fit the canvas.
    #[error(transparent)]
    Condition(#[from] ConditionError),
    /// The modulation's strengths are out of range.
    #[error(transparent)]
    Options(#[from] DamOptionsError),
}
