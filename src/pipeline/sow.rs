//! From a plan to a SOW run (docs/method.md §3.3): the plan's intensified prompt replaces the
//! user's, its boxes place the conditions, its background suggestion (if any) replaces the
//! background prompts, and its related regions steer the attention modulation of the cycles.

use burn::tensor::Device;

use super::generate::PreparedCondition;
use crate::diffusion::sow::dam::{Dam, DamCondition, DamOptions, DamOptionsError};
use crate::diffusion::sow::planner::Plan;
use crate::diffusion::sow::run::CYCLE_BRANCHES;
use crate::diffusion::sow::RunOptions;
use crate::imaging::GridMask;

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

/// The union of the conditions' latent masks on the canvas latent grid (m_full).
pub fn union_mask(conditions: &[PreparedCondition], canvas: usize) -> GridMask {
    let latent = canvas / 8;
    let mut union = GridMask::new(latent, latent);
    for c in conditions {
        let (row, col, _) = c.placement.latent();
        union.place(&c.keep_latent, row, col);
    }
    union
}

/// The attention modulation of a planned run: one [`DamCondition`] per condition, with its
/// plan's related region (minus every condition) and its box's centre.
pub fn attention_for(
    plan: &Plan,
    conditions: &[PreparedCondition],
    options: &RunOptions,
    dam: &DamOptions,
    device: &Device,
) -> Result<Dam, DamOptionsError> {
    let canvas = options.canvas;
    let m_full = union_mask(conditions, canvas);
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
    Dam::new(
        dam.clone(),
        dam_conditions,
        options.cycles,
        prompt_branch,
        device,
    )
}
