//! From a plan to a SOW run (docs/method.md §3.3): the plan's intensified prompt replaces the
//! user's, its boxes place the conditions, its background suggestion (if any) replaces the
//! background prompts, and its related regions steer the attention modulation of the cycles.

use burn::tensor::Device;

use crate::diffusion::sow::dam::{Dam, DamCondition, DamOptions, DamOptionsError};
use crate::diffusion::sow::planner::Plan;
use crate::diffusion::sow::run::CYCLE_BRANCHES;
use crate::diffusion::sow::RunOptions;
use crate::imaging::{compose_canvas, ConditionError, PreparedCondition};

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
