//! The form: prompt, setting, seed, method, planner, and the advanced panel with every option
//! of the run (docs/method.md §2.8) and of SOW's attention modulation (§3.4). Changing the
//! setting or the number of steps starts again from that preset, as the CLI does; the canvas
//! side is kept.

use leptos::prelude::*;

use super::state::Studio;
use crate::diffusion::sow::presets::InversionChoice;
use crate::diffusion::sow::{JumpMode, RunOptions, Setting};
use crate::pipeline::params::Method;

/// Canvas sides offered: SD-2.1's 512, and smaller ones for quick tries and slow GPUs.
const CANVAS_SIDES: [usize; 5] = [512, 384, 256, 128, 64];

/// A number field bound to one option. Invalid text is left on screen (the run checks it).
fn number_field<T, F>(
    label: &'static str,
    id: &'static str,
    signal: RwSignal<T>,
    read: fn(&T) -> f64,
    write: F,
    step: &'static str,
) -> impl IntoView
where
    T: Send + Sync + 'static,
    F: Fn(&mut T, f64) + Copy + Send + Sync + 'static,
{
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="number"
                step=step
                prop:value=move || signal.with(read).to_string()
                on:change=move |ev| {
                    if let Ok(v) = event_target_value(&ev).trim().parse::<f64>() {
                        signal.update(|t| write(t, v));
                    }
                }
            />
        </div>
    }
}

/// A text field bound to one option.
fn text_field(
    label: &'static str,
    id: &'static str,
    signal: RwSignal<RunOptions>,
    read: fn(&RunOptions) -> String,
    write: fn(&mut RunOptions, String),
) -> impl IntoView {
    view! {
        <div class="field">
            <label for=id>{label}</label>
            <input
                id=id
                type="text"
                prop:value=move || signal.with(read)
                on:change=move |ev| {
                    let v = event_target_value(&ev);
                    signal.update(|o| write(o, v));
                }
            />
        </div>
    }
}

/// The options panel.
#[component]
pub fn OptionsPanel(studio: Studio) -> impl IntoView {
    let options = studio.options;
    let setting_names = Setting::ALL
        .into_iter()
        .map(|s| {
            let label = match s {
                Setting::Normal => "Normal",
                Setting::Attribute => "Attribute editing",
                Setting::Style => "Style transfer",
            };
            view! { <option value=s.name() selected=move || options.with(|o| o.setting == s)>{label}</option> }
        })
        .collect_view();
    let canvas_sides = CANVAS_SIDES
        .into_iter()
        .map(|side| {
            view! {
                <option value=side.to_string() selected=move || options.with(|o| o.canvas == side)>
                    {format!("{side} × {side}")}
                </option>
            }
        })
        .collect_view();

    view! {
        <section class="panel" aria-labelledby="options-title">
            <h2 id="options-title">"Prompt and options"</h2>
            <div class="field">
                <label for="prompt">"Prompt"</label>
                <textarea
                    id="prompt"
                    rows="3"
                    placeholder="a person standing in a sunflower field"
                    prop:value=move || studio.prompt.get()
                    on:input=move |ev| studio.prompt.set(event_target_value(&ev))
                ></textarea>
            </div>
            <div class="grid-fields">
                <div class="field">
                    <label for="setting">"Setting"</label>
                    <select
                        id="setting"
                        on:change=move |ev| {
                            if let Ok(s) = event_target_value(&ev).parse::<Setting>() {
                                restart_preset(options, s, options.with_untracked(|o| o.steps));
                            }
                        }
                    >
                        {setting_names}
                    </select>
                </div>
                <div class="field">
                    <label for="method">"Method"</label>
                    <select
                        id="method"
                        on:change=move |ev| {
                            studio.method.set(if event_target_value(&ev) == "cow" { Method::Cow } else { Method::Sow });
                        }
                    >
                        <option value="sow" selected=move || studio.method.get() == Method::Sow>
                            "SOW (plan, then modulate attention)"
                        </option>
                        <option value="cow" selected=move || studio.method.get() == Method::Cow>
                            "COW (the base method)"
                        </option>
                    </select>
                </div>
                <div class="field">
                    <label for="seed">"Seed"</label>
                    <div class="row tight">
                        <input
                            id="seed"
                            type="number"
                            min="0"
                            prop:value=move || studio.seed.get().to_string()
                            on:change=move |ev| {
                                if let Ok(v) = event_target_value(&ev).trim().parse::<u64>() {
                                    studio.seed.set(v);
                                }
                            }
                        />
                        <button
                            type="button"
                            on:click=move |_| studio.seed.set((js_sys::Math::random() * 1e9) as u64)
                        >
                            "New seed"
                        </button>
                    </div>
                </div>
                <div class="field">
                    <label for="canvas-side">"Canvas size"</label>
                    <select
                        id="canvas-side"
                        on:change=move |ev| {
                            if let Ok(side) = event_target_value(&ev).parse::<usize>() {
                                rescale(studio, side);
                            }
                        }
                    >
                        {canvas_sides}
                    </select>
                </div>
            </div>
            <label class="choice" for="use-gemini">
                <input
                    id="use-gemini"
                    type="checkbox"
                    prop:checked=move || studio.use_gemini.get()
                    on:change=move |ev| studio.use_gemini.set(event_target_checked(&ev))
                />
                "Plan with Gemini when a key is set in Settings (otherwise offline)"
            </label>
        </section>
    }
}

/// Every other option of the run and of SOW's attention modulation, folded away: a panel of
/// its own, so that on a phone it comes after Generate rather than before it (the CSS orders
/// the Studio's panels there).
#[component]
pub fn AdvancedPanel(studio: Studio) -> impl IntoView {
    let options = studio.options;
    let attention = studio.attention;
    view! {
        <section class="panel advanced-panel" aria-label="Advanced options">
            <details class="advanced">
                <summary>"Advanced options"</summary>
                <div class="grid-fields">
                    {number_field("DDIM steps", "opt-steps", options, |o| o.steps as f64, move |o, v| {
                        let steps = (v as usize).max(2);
                        let mut fresh = RunOptions::preset_with_steps(o.setting, steps);
                        fresh.canvas = o.canvas;
                        *o = fresh;
                    }, "1")}
                    {number_field("Cycle start state", "opt-start", options, |o| o.start_state as f64, |o, v| o.start_state = v as usize, "1")}
                    {number_field("Cycle end state", "opt-end", options, |o| o.end_state as f64, |o, v| o.end_state = v as usize, "1")}
                    {number_field("Cycles", "opt-cycles", options, |o| o.cycles as f64, |o, v| o.cycles = v as usize, "1")}
                    {number_field("Guidance scale", "opt-guidance", options, |o| o.guidance, |o, v| o.guidance = v, "0.5")}
                    {number_field("Inversion guidance", "opt-inv-guidance", options, |o| o.inversion_guidance, |o, v| o.inversion_guidance = v, "0.5")}
                    {number_field("η in the cycles", "opt-eta-cycle", options, |o| o.eta_cycle, |o, v| o.eta_cycle = v, "0.1")}
                    {number_field("η in the final stage", "opt-eta-final", options, |o| o.eta_final, |o, v| o.eta_final = v, "0.1")}
                    <div class="field">
                        <label for="opt-preserve">"Preservation states"</label>
                        <input
                            id="opt-preserve"
                            type="text"
                            inputmode="numeric"
                            prop:value=move || options.with(|o| o.preserve_states.iter().map(usize::to_string).collect::<Vec<_>>().join(", "))
                            on:change=move |ev| {
                                let text = event_target_value(&ev);
                                let parsed: Result<Vec<usize>, _> = text
                                    .split(',')
                                    .map(str::trim)
                                    .filter(|s| !s.is_empty())
                                    .map(str::parse)
                                    .collect();
                                if let Ok(states) = parsed {
                                    options.update(|o| o.preserve_states = states);
                                }
                            }
                        />
                    </div>
                    <div class="field">
                        <label for="opt-inversion">"Inversion convention"</label>
                        <select
                            id="opt-inversion"
                            on:change=move |ev| {
                                let choice = match event_target_value(&ev).as_str() {
                                    "0.19" => InversionChoice::Diffusers019,
                                    "0.17" => InversionChoice::Diffusers017,
                                    _ => InversionChoice::Diffusers022,
                                };
                                options.update(|o| o.inversion = choice);
                            }
                        >
                            <option value="0.22" selected=move || options.with(|o| o.inversion == InversionChoice::Diffusers022)>"diffusers ≥ 0.22"</option>
                            <option value="0.19" selected=move || options.with(|o| o.inversion == InversionChoice::Diffusers019)>"diffusers 0.19–0.21"</option>
                            <option value="0.17" selected=move || options.with(|o| o.inversion == InversionChoice::Diffusers017)>"diffusers ≤ 0.18"</option>
                        </select>
                    </div>
                    <div class="field">
                        <label for="opt-jump">"Cycle jump"</label>
                        <select
                            id="opt-jump"
                            on:change=move |ev| {
                                let jump = if event_target_value(&ev) == "level" { JumpMode::LevelConsistent } else { JumpMode::CodeFaithful };
                                options.update(|o| o.jump = jump);
                            }
                        >
                            <option value="code" selected=move || options.with(|o| o.jump == JumpMode::CodeFaithful)>"as COW's released code"</option>
                            <option value="level" selected=move || options.with(|o| o.jump == JumpMode::LevelConsistent)>"level-consistent"</option>
                        </select>
                    </div>
                </div>
                {text_field("Negative prompt", "opt-negative", options, |o| o.negative_prompt.clone(), |o, v| o.negative_prompt = v)}
                {text_field("Background subject (pushed away)", "opt-bg-subject", options, |o| o.background_subject.clone(), |o, v| o.background_subject = v)}
                {text_field("Background quality (pulled towards)", "opt-bg-quality", options, |o| o.background_quality.clone(), |o, v| o.background_quality = v)}
                <h3>"SOW's attention modulation"</h3>
                <div class="grid-fields">
                    {number_field("Suppression α", "dam-suppress", attention, |d| d.suppress, |d, v| d.suppress = v, "0.1")}
                    {number_field("Enhancement β", "dam-enhance", attention, |d| d.enhance, |d, v| d.enhance = v, "0.1")}
                    {number_field("Temporal rate κ", "dam-kappa", attention, |d| d.temporal_rate, |d, v| d.temporal_rate = v, "0.1")}
                    {number_field("Spatial extent ρ", "dam-rho", attention, |d| d.spatial_extent, |d, v| d.spatial_extent = v, "0.05")}
                    {number_field("Threshold τ", "dam-tau", attention, |d| d.threshold, |d, v| d.threshold = v, "0.05")}
                </div>
                <button
                    type="button"
                    on:click=move |_| {
                        let (setting, steps) = options.with_untracked(|o| (o.setting, o.steps));
                        restart_preset(options, setting, steps);
                        attention.set(Default::default());
                    }
                >
                    "Back to the preset"
                </button>
            </details>
        </section>
    }
}

/// Starts the options again from `setting`'s preset at `steps` steps, keeping the canvas side.
fn restart_preset(options: RwSignal<RunOptions>, setting: Setting, steps: usize) {
    let canvas = options.with_untracked(|o| o.canvas);
    let mut fresh = RunOptions::preset_with_steps(setting, steps);
    fresh.canvas = canvas;
    options.set(fresh);
}

/// Changes the canvas side, scaling every box (and dropping the plan, made for the old side).
fn rescale(studio: Studio, side: usize) {
    let old = studio.canvas();
    if old == side {
        return;
    }
    let scale = |v: usize| (v * side / old) / 8 * 8;
    studio.options.update(|o| o.canvas = side);
    studio.conditions.update(|list| {
        for c in list.iter_mut() {
            let b = c.placement;
            c.placement =
                crate::imaging::SquareBox::new(scale(b.x), scale(b.y), scale(b.side).max(8));
        }
    });
    studio.plan.set(None);
}
