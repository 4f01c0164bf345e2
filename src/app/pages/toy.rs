//! The Toy lab: the paper's "diffusion in diffusion" experiment (docs/method.md §4.1) as a
//! teaching aid. A white and a gray half are inverted to every noise state, merged there and
//! denoised: the earlier (noisier) the merge, the more the halves blend. Three steps, one click
//! each: the plain merge, then attention increased, then decreased, each explained; the grid of
//! decoded images fills row by row, and the plot of blending against the merge state grows.

use leptos::prelude::*;

use crate::app::device::gpu_fault;
use crate::app::files::{blob_url, revoke_url};
use crate::app::format::format_seconds;
use crate::app::model::loaded_models;
use crate::app::now_ms;
use crate::app::state::{app_state, claim_gpu};
use crate::diffusion::toy::hook::ToyVariant;
use crate::diffusion::toy::layout::Layout;
use crate::diffusion::toy::report::{to_svg, ToyRow};
use crate::diffusion::toy::ToyOptions;
use crate::imaging::png::encode_rgb_png;
use crate::pipeline::generate::Flow;
use crate::pipeline::toy::{run_toy, ToyObserver, ToyStepReport};

/// One decoded image in the grid.
#[derive(Clone, Debug)]
struct Cell {
    row: ToyRow,
    url: String,
}

/// What each step shows, in words for a classroom.
fn explanation(variant: ToyVariant) -> &'static str {
    match variant {
        ToyVariant::Merge => {
            "Both halves are noised to the same state, stitched together, and denoised. Merged \
             at a noisy state, the model has time to let the halves talk: the seam blurs and \
             they blend. Merged late, each half keeps its own colour."
        }
        ToyVariant::Increase => {
            "The same, but the upper-right quarter pays more attention to the lower-left one: \
             information flows between them faster, and the blend grows."
        }
        ToyVariant::Decrease => {
            "Now the upper-right quarter pays less attention to everything outside it: it keeps \
             to itself, and blends less. Attention is the channel information diffuses through."
        }
    }
}

fn title(variant: ToyVariant) -> &'static str {
    match variant {
        ToyVariant::Merge => "1. Merge at every state",
        ToyVariant::Increase => "2. Increase attention",
        ToyVariant::Decrease => "3. Decrease attention",
    }
}

struct LabObserver {
    status: RwSignal<String>,
    cells: RwSignal<Vec<Cell>>,
    started: f64,
}

impl ToyObserver for LabObserver {
    async fn step(&mut self, report: ToyStepReport<'_>) -> Flow {
        let elapsed = (now_ms() - self.started) / 1000.0;
        self.status.set(format!(
            "UNet evaluations {} of {} · {} · {}",
            report.unet_calls,
            report.unet_total,
            report.description,
            format_seconds(elapsed)
        ));
        for image in report.images {
            if let Ok(png) = encode_rgb_png(&image.rgb, image.size, image.size) {
                if let Ok(url) = blob_url(&png, "image/png") {
                    self.cells.update(|c| {
                        c.push(Cell {
                            row: image.row.clone(),
                            url,
                        })
                    });
                }
            }
        }
        // A failed GPU computes nothing more: stop, and say why.
        if gpu_fault().is_some() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

/// The Toy lab page.
#[component]
pub fn ToyPage() -> impl IntoView {
    let app = app_state();
    let layout = RwSignal::new(Layout::WhiteTop);
    let steps = RwSignal::new(10usize);
    let side = RwSignal::new(256usize);
    let status = RwSignal::new(String::new());
    let cells = RwSignal::new(Vec::<Cell>::new());
    let plot = RwSignal::new(None::<String>);
    let running = RwSignal::new(None::<ToyVariant>);
    let model_ready = move || app.model.with(|m| m.is_ready());

    let run = move |variant: ToyVariant| {
        let Some(models) = loaded_models() else {
            status.set("No model is loaded: load one on the Model page first.".into());
            return;
        };
        let Some(claim) = claim_gpu(app, "running the toy experiment") else {
            return;
        };
        let options = ToyOptions {
            steps: steps.get_untracked(),
            canvas: side.get_untracked(),
            layouts: vec![layout.get_untracked()],
            variants: vec![variant],
            ..ToyOptions::default()
        };
        // A new layout or size starts a new grid.
        if cells.with_untracked(|c| {
            c.first()
                .is_some_and(|first| first.row.layout != options.layouts[0])
        }) {
            clear(cells, plot);
        }
        cells.update(|c| {
            c.retain(|cell| cell.row.variant != variant);
        });
        running.set(Some(variant));
        leptos::task::spawn_local(async move {
            let _claim = claim;
            let mut observer = LabObserver {
                status,
                cells,
                started: now_ms(),
            };
            let outcome = run_toy(&models, &options, &mut observer).await;
            match gpu_fault().map_or(outcome.map_err(|e| e.to_string()), |f| Err(f.advice())) {
                Ok(_) => {
                    status.set(format!(
                        "{} done in {}.",
                        title(variant),
                        format_seconds((now_ms() - observer.started) / 1000.0)
                    ));
                    let rows: Vec<ToyRow> =
                        cells.with_untracked(|c| c.iter().map(|c| c.row.clone()).collect());
                    let svg = to_svg(&rows, options.steps);
                    if let Ok(url) = blob_url(svg.as_bytes(), "image/svg+xml") {
                        if let Some(old) = plot.get_untracked() {
                            revoke_url(&old);
                        }
                        plot.set(Some(url));
                    }
                }
                Err(e) => status.set(format!("The experiment failed: {e}")),
            }
            running.set(None);
        });
    };

    let steps_buttons = ToyVariant::ALL
        .into_iter()
        .map(|variant| {
            view! {
                <div class="toy-step">
                    <button
                        type="button"
                        class="primary"
                        disabled=move || !model_ready() || running.get().is_some() || app.gpu_job.get().is_some()
                        on:click=move |_| run(variant)
                    >
                        {title(variant)}
                    </button>
                    <p>{explanation(variant)}</p>
                </div>
            }
        })
        .collect_view();

    let layouts = Layout::ALL
        .into_iter()
        .map(|l| view! { <option value=l.name() selected=move || layout.get() == l>{l.name()}</option> })
        .collect_view();

    view! {
        <h1 class="page-title">"Toy lab"</h1>
        <p class="lede">
            "How information diffuses inside a diffusion model: a white and a gray half merged \
             at every noise level, and what attention does to the blend."
        </p>
        <Show when=move || !model_ready()>
            <p class="notice" data-state="info">
                "Load a model on the "<a href="#model">"Model page"</a>" first. The random test \
                 model gives noise; Stable Diffusion 2.1 shows the effect."
            </p>
        </Show>
        <div class="panels toy">
            <section class="panel" aria-labelledby="toy-setup-title">
                <h2 id="toy-setup-title">"Set-up"</h2>
                <div class="grid-fields">
                    <div class="field">
                        <label for="toy-layout">"Layout"</label>
                        <select id="toy-layout" on:change=move |ev| {
                            let name = event_target_value(&ev);
                            if let Some(l) = Layout::ALL.into_iter().find(|l| l.name() == name) {
                                layout.set(l);
                            }
                        }>{layouts}</select>
                    </div>
                    <div class="field">
                        <label for="toy-steps">"Noise states"</label>
                        <input id="toy-steps" type="number" min="2" max="50"
                            prop:value=move || steps.get().to_string()
                            on:change=move |ev| {
                                if let Ok(v) = event_target_value(&ev).parse::<usize>() {
                                    steps.set(v.clamp(2, 50));
                                }
                            }
                        />
                    </div>
                    <div class="field">
                        <label for="toy-size">"Image side"</label>
                        <select id="toy-size" on:change=move |ev| {
                            if let Ok(v) = event_target_value(&ev).parse::<usize>() {
                                side.set(v);
                            }
                        }>
                            <option value="512" selected=move || side.get() == 512>"512 px"</option>
                            <option value="256" selected=move || side.get() == 256>"256 px"</option>
                            <option value="128" selected=move || side.get() == 128>"128 px"</option>
                            <option value="64" selected=move || side.get() == 64>"64 px"</option>
                        </select>
                    </div>
                </div>
                <div class="toy-steps">{steps_buttons}</div>
                <p id="toy-status" class="status" role="status">{move || status.get()}</p>
            </section>
            <section class="panel" aria-labelledby="toy-grid-title">
                <h2 id="toy-grid-title">"Decoded results"</h2>
                <p class="hint">"A row per experiment, a column per merge state k, in the plot's order: k = 0 merges the clean images, the last column the noisiest states."</p>
                <div class="toy-grid" id="toy-grid">
                    {move || {
                        ToyVariant::ALL
                            .into_iter()
                            .filter_map(|variant| {
                                let row: Vec<Cell> = cells.with(|c| {
                                    let mut row: Vec<Cell> = c.iter().filter(|c| c.row.variant == variant).cloned().collect();
                                    row.sort_by_key(|c| c.row.merge_state);
                                    row
                                });
                                (!row.is_empty()).then(|| view! {
                                    <div class="toy-row" role="group" aria-label=variant.name()>
                                        <span class="toy-row-label">{variant.name()}</span>
                                        {row.into_iter().map(|c| view! {
                                            <figure class="toy-cell">
                                                <img src=c.url alt=format!("{} merged at state {}", variant.name(), c.row.merge_state)/>
                                                <figcaption>{format!("k = {}", c.row.merge_state)}</figcaption>
                                            </figure>
                                        }).collect_view()}
                                    </div>
                                })
                            })
                            .collect_view()
                    }}
                </div>
            </section>
            <section class="panel" aria-labelledby="toy-plot-title">
                <h2 id="toy-plot-title">"Blending against the merge state"</h2>
                {move || match plot.get() {
                    Some(url) => view! {
                        <img id="toy-plot" class="plot" src=url
                            alt="Plot: the difference between the two halves against the merge state, one line per experiment"/>
                    }.into_any(),
                    None => view! { <p class="hint">"The plot appears after the first step."</p> }.into_any(),
                }}
            </section>
        </div>
    }
}

fn clear(cells: RwSignal<Vec<Cell>>, plot: RwSignal<Option<String>>) {
    for cell in cells.get_untracked() {
        revoke_url(&cell.url);
    }
    cells.set(Vec::new());
    if let Some(url) = plot.get_untracked() {
        revoke_url(&url);
    }
    plot.set(None);
}
