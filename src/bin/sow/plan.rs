//! SOW's planning step for the command line: a plan from a file, from an earlier image's
//! parameters, or from a planner (Gemini with the user's key in `GEMINI_API_KEY`, else the
//! offline heuristic). The planner sees each condition as its masked crop in PNG.

use std::path::Path;

use sow_studio::diffusion::sow::planner::{AnyPlanner, ApiKey, GeminiSettings, Plan, Planner};
use sow_studio::imaging::PreparedCondition;
use sow_studio::pipeline::sow::plan_request;

/// Which planner plans a SOW run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlannerChoice {
    /// Gemini when `GEMINI_API_KEY` is set, else the offline heuristic.
    #[default]
    Auto,
    /// The offline heuristic: nothing leaves the machine.
    Offline,
    /// Gemini; fails when no key is set.
    Gemini,
}

impl std::str::FromStr for PlannerChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "auto" => Ok(PlannerChoice::Auto),
            "offline" => Ok(PlannerChoice::Offline),
            "gemini" => Ok(PlannerChoice::Gemini),
            _ => Err(format!("{s:?}: use auto, offline or gemini")),
        }
    }
}

/// How to ask Gemini, from the command line.
#[derive(Clone, Debug, Default)]
pub struct GeminiChoice {
    /// The model, when not the default.
    pub model: Option<String>,
    /// The endpoint, when not Google's.
    pub endpoint: Option<String>,
}

/// A plan read from a JSON file (as `--save-plan` writes it).
pub fn read_plan(path: &Path, canvas: usize, conditions: usize) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the plan {}: {e}", path.display()))?;
    let plan = Plan::from_json(&text).map_err(|e| format!("{}: {e}", path.display()))?;
    check_fits(&plan, canvas, conditions).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(plan)
}

/// Whether a plan was made for this canvas and this many conditions.
pub fn check_fits(plan: &Plan, canvas: usize, conditions: usize) -> Result<(), String> {
    if plan.canvas != canvas {
        return Err(format!(
            "the plan is for a {} px canvas, the run's is {canvas} px",
            plan.canvas
        ));
    }
    if plan.conditions.len() != conditions {
        return Err(format!(
            "the plan places {} condition(s), the run has {conditions}",
            plan.conditions.len()
        ));
    }
    Ok(())
}

/// Plans the run: the user's prompt and each condition's masked crop, labelled with its file
/// name, go to the chosen planner. A Gemini failure gives the offline plan and a notice.
pub fn make_plan(
    choice: PlannerChoice,
    gemini: &GeminiChoice,
    prompt: &str,
    canvas: usize,
    conditions: &[(String, PreparedCondition)],
) -> Result<Plan, String> {
    let request = plan_request(prompt, canvas, conditions).map_err(|e| e.to_string())?;
    let key = match choice {
        PlannerChoice::Offline => None,
        PlannerChoice::Auto => ApiKey::from_env().map_err(|e| e.to_string())?,
        PlannerChoice::Gemini => Some(
            ApiKey::from_env()
                .map_err(|e| e.to_string())?
                .ok_or("--planner gemini needs a key in GEMINI_API_KEY")?,
        ),
    };
    let mut settings = GeminiSettings::default();
    if let Some(model) = &gemini.model {
        settings.model = model.clone();
    }
    if let Some(endpoint) = &gemini.endpoint {
        settings.endpoint = endpoint.clone();
    }
    let planner = AnyPlanner::from_key(key, settings);
    let plan = pollster::block_on(planner.plan(&request)).map_err(|e| e.to_string())?;
    if let Some(notice) = plan.notice() {
        eprintln!("warning: {notice}");
    }
    eprintln!("plan: {}; prompt: {}", plan.source, plan.prompt);
    Ok(plan)
}
