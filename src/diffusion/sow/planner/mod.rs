//! The planner (docs/planner.md): before a SOW run, it turns the user's prompt and the visual
//! condition images into a [`Plan`]: the intensified prompt P*, where each condition sits on
//! the canvas, and the region around each that must continue it (which the attention
//! modulation guides).
//!
//! One trait, [`Planner`], two implementations: [`GeminiPlanner`] (three calls to a multimodal
//! model with the user's key) and [`OfflinePlanner`] (a fixed heuristic). Both go through the
//! same post-processing ([`placement`]), and Gemini falls back to the offline plan, saying why,
//! whenever it fails, so a run always gets a plan.

pub mod boxes;
pub mod gemini;
pub mod key;
pub mod offline;
pub mod placement;
pub mod plan;

use std::future::Future;

pub use boxes::BoxConvention;
pub use gemini::{GeminiPlanner, GeminiSettings, ModelInfo, PlannerError};
pub use key::{ApiKey, KeyError};
pub use offline::{offline_plan, OfflinePlanner};
pub use plan::{
    ConditionImage, ConditionPlan, GuidanceSuggestion, Plan, PlanError, PlanRequest, PlanSource,
    RequestError,
};

/// Something that plans a SOW run.
pub trait Planner {
    /// The plan for `request`. Fails only when the request itself is unusable; every other
    /// failure yields the offline plan with [`PlanSource::Fallback`] and its reason.
    fn plan(&self, request: &PlanRequest) -> impl Future<Output = Result<Plan, RequestError>>;
}

/// A planner chosen at run time (the command line's `--planner`, the app's settings).
#[derive(Clone, Debug)]
pub enum AnyPlanner {
    /// The heuristic.
    Offline(OfflinePlanner),
    /// Gemini.
    Gemini(GeminiPlanner),
}

impl AnyPlanner {
    /// Gemini when there is a key, otherwise the offline planner.
    pub fn from_key(key: Option<ApiKey>, settings: GeminiSettings) -> Self {
        match key {
            Some(key) => AnyPlanner::Gemini(GeminiPlanner::with_settings(key, settings)),
            None => AnyPlanner::Offline(OfflinePlanner),
        }
    }
}

impl Planner for AnyPlanner {
    async fn plan(&self, request: &PlanRequest) -> Result<Plan, RequestError> {
        match self {
            AnyPlanner::Offline(planner) => planner.plan(request).await,
            AnyPlanner::Gemini(planner) => planner.plan(request).await,
        }
    }
}
