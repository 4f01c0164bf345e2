//! Planning and running on the loaded model. SOW asks the planner first (Gemini with the key
//! from Settings, else offline; a Gemini failure falls back to the offline plan and says so)
//! unless a plan is already on screen; then the run goes through the engine's one driver
//! (`pipeline::sow::generate_run`), which paces itself between steps. After every step the
//! observer here updates the progress, draws a preview of the latent and checks Cancel, so
//! Cancel acts within one UNet evaluation.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use leptos::html::Canvas;
use leptos::prelude::*;

use super::results::finish_run;
use super::state::{RunView, Studio};
use crate::app::canvas::draw_rgb;
use crate::app::device::gpu_fault;
use crate::app::format::format_seconds;
use crate::app::model::loaded_models;
use crate::app::now_ms;
use crate::app::state::{app_state, claim_gpu, AppState};
use crate::diffusion::sow::planner::{AnyPlanner, ApiKey, Plan, Planner};
use crate::diffusion::sow::preview::latent_preview;
use crate::imaging::{tensor_to_rgb, PreparedCondition};
use crate::pipeline::generate::{Flow, GenerateError, GenerateJob, RunObserver, StepReport};
use crate::pipeline::params::{ImageParameters, Method};
use crate::pipeline::sow::{generate_run, plan_request, planned_options};

/// Asks the planner for a plan of the conditions as they are, and puts it on screen: its
/// boxes move the conditions not placed by hand, its prompt becomes editable.
pub async fn make_plan(studio: Studio, app: AppState) -> Result<Plan, String> {
    let conditions = studio.conditions.get_untracked();
    let canvas = studio.canvas();
    let prompt = studio.prompt.get_untracked();
    if prompt.trim().is_empty() {
        return Err("Write a prompt first.".into());
    }
    let mut seen = Vec::with_capacity(conditions.len());
    for (i, c) in conditions.iter().enumerate() {
        let prepared = c
            .files
            .prepare(c.placement)
            .map_err(|e| format!("condition {}: {e}", i + 1))?;
        seen.push((c.files.label.clone(), prepared));
    }
    let request = plan_request(&prompt, canvas, &seen).map_err(|e| e.to_string())?;
    let gemini = app.gemini.get_untracked();
    let key = match (&gemini.key, studio.use_gemini.get_untracked()) {
        (Some(key), true) => Some(ApiKey::new(key).map_err(|e| e.to_string())?),
        _ => None,
    };
    let what = if key.is_some() {
        "asking Gemini for a plan"
    } else {
        "planning offline"
    };
    studio.run.set(RunView::Planning(what.into()));
    let planner = AnyPlanner::from_key(key, gemini.settings());
    let plan = planner.plan(&request).await.map_err(|e| e.to_string())?;
    for (entry, planned) in conditions.iter().zip(&plan.conditions) {
        if !entry.placed_by_hand {
            studio.place(entry.id, planned.square, false);
        }
    }
    // The boxes on screen (the user's where placed by hand) are the plan's from now on.
    let mut plan = plan;
    for (planned, entry) in plan
        .conditions
        .iter_mut()
        .zip(studio.conditions.get_untracked())
    {
        planned.square = entry.placement;
    }
    studio.plan.set(Some(plan.clone()));
    Ok(plan)
}

/// Watches the run for the page.
struct PageObserver {
    studio: Studio,
    preview: NodeRef<Canvas>,
    cancel: Arc<AtomicBool>,
    started: f64,
}

impl RunObserver for PageObserver {
    async fn step(&mut self, report: StepReport<'_>) -> Flow {
        let elapsed = (now_ms() - self.started) / 1000.0;
        let eta = (report.unet_calls > 0).then(|| {
            elapsed / report.unet_calls as f64 * (report.unet_total - report.unet_calls) as f64
        });
        self.studio.run.set(RunView::Running {
            description: report.description.clone(),
            unet_calls: report.unet_calls,
            unet_total: report.unet_total,
            elapsed,
            eta,
        });
        if let Some(latent) = report.latent {
            // A small readback (latent resolution): it also waits for the step's GPU work.
            if let Ok(mut images) = tensor_to_rgb(latent_preview(latent.clone())).await {
                let [_, _, h, w] = latent.dims();
                if let (Some(canvas), Some(rgb)) = (self.preview.get(), images.pop()) {
                    draw_rgb(&canvas, &rgb, w, h);
                }
            }
        }
        // A failed GPU computes nothing more: stop, and say why below.
        if self.cancel.load(Ordering::Relaxed) || gpu_fault().is_some() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

/// Plans (SOW) and runs, start to end; the error is what the page shows.
async fn plan_and_run(
    studio: Studio,
    app: AppState,
    preview: NodeRef<Canvas>,
    cancel: Arc<AtomicBool>,
) -> Result<(), String> {
    let models = loaded_models().ok_or("No model is loaded: load one on the Model page first.")?;
    let conditions = studio.conditions.get_untracked();
    if conditions.is_empty() {
        return Err("Add a visual condition first.".into());
    }
    let user_prompt = studio.prompt.get_untracked();
    if user_prompt.trim().is_empty() {
        return Err("Write a prompt first.".into());
    }
    let method = studio.method.get_untracked();
    let mut options = studio.options.get_untracked();
    options.validate().map_err(|e| e.to_string())?;
    let plan = match method {
        Method::Cow => None,
        Method::Sow => match studio.plan.get_untracked() {
            Some(plan)
                if plan.canvas == options.canvas && plan.conditions.len() == conditions.len() =>
            {
                Some(plan)
            }
            _ => Some(make_plan(studio, app).await?),
        },
    };
    let attention = studio.attention.get_untracked();
    if plan.is_some() {
        attention.validate().map_err(|e| e.to_string())?;
        let preset = crate::diffusion::sow::RunOptions::preset(options.setting);
        let keep_background = options.background_subject != preset.background_subject
            || options.background_quality != preset.background_quality;
        options = planned_options(plan.as_ref().expect("checked"), &options, keep_background);
    }
    // The boxes on screen are the run's (the plan's too, see Studio::place).
    let conditions = studio.conditions.get_untracked();
    let mut prepared: Vec<PreparedCondition> = Vec::with_capacity(conditions.len());
    let mut records = Vec::with_capacity(conditions.len());
    for (i, c) in conditions.iter().enumerate() {
        c.placement
            .validate(options.canvas)
            .map_err(|e| format!("condition {}: {e}", i + 1))?;
        prepared.push(
            c.files
                .prepare(c.placement)
                .map_err(|e| format!("condition {}: {e}", i + 1))?,
        );
        records.push(c.files.record(c.placement));
    }
    let seed = studio.seed.get_untracked();
    let mut params = ImageParameters::new(
        models.source.clone(),
        method,
        &user_prompt,
        seed,
        records,
        options.clone(),
    );
    params.attention = plan.as_ref().map(|_| attention.clone());
    params.plan = plan.clone();
    let job = GenerateJob {
        prompt: plan.as_ref().map_or(user_prompt, |p| p.prompt.clone()),
        options,
        seed,
        conditions: prepared,
        noise: None,
        record_states: false,
    };
    let mut observer = PageObserver {
        studio,
        preview,
        cancel,
        started: now_ms(),
    };
    let planned = plan.as_ref().map(|p| (p, &attention));
    let outcome = generate_run(&models, &job, planned, &mut observer).await;
    if let Some(fault) = gpu_fault() {
        return Err(fault.advice());
    }
    let generated = match outcome {
        Ok(generated) => generated,
        Err(GenerateError::Cancelled {
            unet_calls,
            unet_total,
        }) => {
            studio.run.set(RunView::Cancelled(format!(
                "Cancelled after {unet_calls} of {unet_total} UNet evaluations."
            )));
            return Ok(());
        }
        Err(e) => return Err(e.to_string()),
    };
    let seconds = (now_ms() - observer.started) / 1000.0;
    finish_run(studio, &generated, params)?;
    studio.run.set(RunView::Finished(format!(
        "Done in {}.",
        format_seconds(seconds)
    )));
    Ok(())
}

/// The run panel: Plan, Generate, Cancel, the progress and the live preview.
#[component]
pub fn RunPanel(studio: Studio) -> impl IntoView {
    let app = app_state();
    let preview = NodeRef::<Canvas>::new();
    let model_ready = move || app.model.with(|m| m.is_ready());
    let gpu_busy = move || app.gpu_job.get().is_some();

    let generate = move || {
        let Some(claim) = claim_gpu(app, "generating an image") else {
            return;
        };
        let cancel = Arc::new(AtomicBool::new(false));
        studio.cancel.set_value(cancel.clone());
        studio.run.set(RunView::Planning("starting".into()));
        leptos::task::spawn_local(async move {
            let _claim = claim;
            if let Err(message) = plan_and_run(studio, app, preview, cancel).await {
                leptos::logging::error!("run: {message}");
                studio.run.set(RunView::Failed(message));
            }
        });
    };
    let plan_only = move || {
        studio.run.set(RunView::Planning("planning".into()));
        leptos::task::spawn_local(async move {
            match make_plan(studio, app).await {
                Ok(plan) => studio
                    .run
                    .set(RunView::Finished(format!("Planned: {}.", plan.source))),
                Err(message) => studio.run.set(RunView::Failed(message)),
            }
        });
    };

    view! {
        <section class="panel" aria-labelledby="run-title">
            <h2 id="run-title">"Generate"</h2>
            <Show when=move || !model_ready()>
                <p class="notice" data-state="info">
                    "No model is loaded yet: load one on the "<a href="#model">"Model page"</a>"."
                </p>
            </Show>
            <div class="row">
                <button
                    type="button"
                    class="primary"
                    disabled=move || !model_ready() || gpu_busy() || studio.busy()
                    on:click=move |_| generate()
                >
                    "Generate"
                </button>
                <button
                    type="button"
                    disabled=move || studio.busy() || studio.conditions.with(Vec::is_empty) || studio.method.get() == Method::Cow
                    on:click=move |_| plan_only()
                >
                    "Plan the layout"
                </button>
                <button
                    type="button"
                    disabled=move || !matches!(studio.run.get(), RunView::Running { .. })
                    on:click=move |_| studio.cancel.with_value(|c| c.store(true, Ordering::Relaxed))
                >
                    "Cancel"
                </button>
            </div>
            <p
                id="run-status"
                class="status"
                role="status"
                data-state=move || studio.run.with(RunView::state)
            >
                {move || match studio.run.get() {
                    RunView::Idle => "Ready when you are.".to_string(),
                    RunView::Planning(what) => format!("{}…", capitalize(&what)),
                    RunView::Running { description, unet_calls, unet_total, elapsed, eta } => {
                        let mut line = format!(
                            "UNet evaluations {unet_calls} of {unet_total} · next: {description} · {} so far",
                            format_seconds(elapsed)
                        );
                        if let Some(eta) = eta {
                            line.push_str(&format!(" · about {} left", format_seconds(eta)));
                        }
                        line
                    }
                    RunView::Finished(text) | RunView::Cancelled(text) => text,
                    RunView::Failed(text) => format!("Failed: {text}"),
                }}
            </p>
            <progress
                class="run-progress"
                aria-label="Run progress"
                max=move || match studio.run.get() { RunView::Running { unet_total, .. } => unet_total.max(1), _ => 1 }.to_string()
                value=move || match studio.run.get() {
                    RunView::Running { unet_calls, .. } => unet_calls,
                    RunView::Finished(_) => 1,
                    _ => 0,
                }.to_string()
            ></progress>
            <figure class="preview">
                <canvas node_ref=preview width="64" height="64" aria-label="Live preview of the run"></canvas>
                <figcaption class="hint">"Live preview (a rough colour map of the latent)."</figcaption>
            </figure>
        </section>
    }
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
