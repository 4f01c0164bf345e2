//! The text encoder check on the Diagnostics page: the whole browser path for one component.
//! It starts WebGPU, fetches the tokenizer and the text encoder from a model folder URL,
//! builds the engine's [`TextConditioner`], encodes one prompt and shows the tokens, the shape
//! and a few values, so they can be compared with a reference (the page test compares the
//! tiny fixture model's with its golden outputs).

use leptos::prelude::*;

use crate::pipeline::conditioning::{EncodedPrompts, TextConditioner};
use crate::pipeline::source::UrlSource;
use crate::pipeline::{load_text_encoder, LoadOptions, ModelSource};
use crate::tokenizer::PAD_ID;

use super::device::webgpu_device;
use super::{now_ms, yield_to_browser};

/// The first prompt of `tests/fixtures/goldens/text_encoder.json`, so that the default run can
/// be checked against the goldens by eye.
const DEFAULT_PROMPT: &str = "a photograph of an astronaut riding a horse";

/// How many leading ids and values the page shows.
const SHOWN_TOKENS: usize = 12;
const SHOWN_VALUES: usize = 8;

/// Where a run is.
#[derive(Clone, Debug, PartialEq)]
enum RunState {
    Idle,
    /// A phase in progress, in words.
    Busy(&'static str),
    Done,
    Failed(String),
}

impl RunState {
    fn state(&self) -> &'static str {
        match self {
            RunState::Idle => "idle",
            RunState::Busy(_) => "busy",
            RunState::Done => "done",
            RunState::Failed(_) => "error",
        }
    }

    /// The text of `#encoder-status`: the page test waits for "done" or "error: …".
    fn text(&self) -> String {
        match self {
            RunState::Idle => "ready: press Run".into(),
            RunState::Busy(phase) => format!("{phase}…"),
            RunState::Done => "done".into(),
            RunState::Failed(message) => format!("error: {message}"),
        }
    }
}

/// Milliseconds spent in each phase.
#[derive(Clone, Debug, Default, PartialEq)]
struct Timings {
    device: f64,
    load: f64,
    encode: f64,
    total: f64,
}

/// What a finished run shows.
#[derive(Clone, Debug, PartialEq)]
struct EncoderReport {
    tokens: Vec<u32>,
    shape: [usize; 3],
    first_values: Vec<f32>,
    mean: f64,
    std: f64,
    timings: Timings,
}

impl EncoderReport {
    fn new(encoded: EncodedPrompts, timings: Timings) -> Self {
        let EncodedPrompts {
            token_ids,
            shape,
            values,
        } = encoded;
        // Summary statistics for display only, on the host copy.
        let n = values.len().max(1) as f64;
        let mean = values.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
        let var = values
            .iter()
            .map(|&v| (f64::from(v) - mean).powi(2))
            .sum::<f64>()
            / n;
        EncoderReport {
            tokens: token_ids.into_iter().next().unwrap_or_default(),
            shape,
            first_values: values.iter().take(SHOWN_VALUES).copied().collect(),
            mean,
            std: var.sqrt(),
            timings,
        }
    }

    /// Ids up to and including the end-of-text token. The end token is never the pad id, so
    /// padding is exactly the trailing run of [`PAD_ID`] (a "!" inside the prompt, also id 0,
    /// is always followed by the end token).
    fn non_pad(&self) -> usize {
        self.tokens.len()
            - self
                .tokens
                .iter()
                .rev()
                .take_while(|&&id| id == PAD_ID)
                .count()
    }
}

/// One run, start to end. `phase` reports progress; the error is the message the page shows.
async fn run_check(
    model_base: String,
    prompt: String,
    phase: impl Fn(&'static str),
) -> Result<EncoderReport, String> {
    let start = now_ms();
    let mut timings = Timings::default();

    phase("starting WebGPU");
    yield_to_browser().await;
    let t = now_ms();
    let device = webgpu_device().await?;
    timings.device = now_ms() - t;

    // Tokenizer and configs, then the weights streamed tensor by tensor onto the device.
    phase("loading the text encoder");
    yield_to_browser().await;
    let t = now_ms();
    let base = model_base.trim().trim_end_matches('/');
    let source = ModelSource::Url(UrlSource::new(base));
    let (tokenizer, encoder) =
        load_text_encoder(&source, &device, &LoadOptions::default(), &mut |_| {})
            .await
            .map_err(|e| format!("loading the text encoder failed: {e}"))?;
    let conditioner = TextConditioner::new(tokenizer, encoder, &device);
    timings.load = now_ms() - t;

    phase("encoding");
    yield_to_browser().await;
    let t = now_ms();
    let encoded = conditioner
        .encode_to_host(&[prompt.as_str()])
        .await
        .map_err(|e| format!("encoding failed: {e}"))?;
    timings.encode = now_ms() - t;
    timings.total = now_ms() - start;

    Ok(EncoderReport::new(encoded, timings))
}

/// The panel: a prompt, a Run button, the status line and the result.
#[component]
pub fn EncoderPanel() -> impl IntoView {
    let model_base = RwSignal::new(String::new());
    let prompt = RwSignal::new(DEFAULT_PROMPT.to_owned());
    let run_state = RwSignal::new(RunState::Idle);
    let report = RwSignal::new(None::<EncoderReport>);
    let busy = move || matches!(run_state.get(), RunState::Busy(_));

    let run = move || {
        // The button is disabled while busy; this also guards Enter in the field.
        if busy() {
            return;
        }
        let model_base = model_base.get_untracked();
        if model_base.trim().is_empty() {
            run_state.set(RunState::Failed(
                "enter the URL of a model folder in the diffusers layout first".into(),
            ));
            return;
        }
        report.set(None);
        run_state.set(RunState::Busy("starting"));
        let prompt = prompt.get_untracked();
        leptos::task::spawn_local(async move {
            let phase = move |p| run_state.set(RunState::Busy(p));
            match run_check(model_base, prompt, phase).await {
                Ok(done) => {
                    report.set(Some(done));
                    run_state.set(RunState::Done);
                }
                Err(message) => {
                    leptos::logging::error!("text encoder check: {message}");
                    run_state.set(RunState::Failed(message));
                }
            }
        });
    };

    view! {
        <section class="panel" aria-labelledby="encoder-title">
            <h2 id="encoder-title">"Text encoder check"</h2>
            <p class="hint">
                "Runs the tokenizer and the CLIP text encoder of a model on WebGPU, end to end \
                 through the engine, and shows the numbers, to compare with a reference \
                 implementation."
            </p>
            <form
                class="stack"
                on:submit=move |ev| {
                    ev.prevent_default();
                    run();
                }
            >
                <div class="field">
                    <label for="encoder-model">"Model folder URL"</label>
                    <input
                        id="encoder-model"
                        type="url"
                        placeholder="https://…/stable-diffusion-2-1-base/"
                        autocomplete="off"
                        spellcheck="false"
                        prop:value=move || model_base.get()
                        on:input=move |ev| model_base.set(event_target_value(&ev))
                    />
                </div>
                <div class="field">
                    <label for="encoder-prompt">"Prompt to encode"</label>
                    <div class="row">
                        <input
                            id="encoder-prompt"
                            type="text"
                            autocomplete="off"
                            prop:value=move || prompt.get()
                            on:input=move |ev| prompt.set(event_target_value(&ev))
                        />
                        <button id="run-encoder" type="submit" class="primary" disabled=busy>
                            "Run check"
                        </button>
                    </div>
                </div>
            </form>
            <p
                id="encoder-status"
                class="status"
                data-state=move || run_state.with(RunState::state)
                aria-live="polite"
            >
                {move || run_state.with(RunState::text)}
            </p>
            {move || report.get().map(|report| view! { <EncoderResult report/> })}
        </section>
    }
}

/// The numbers of a finished run. The `data-*` attributes carry full precision for the test.
#[component]
fn EncoderResult(report: EncoderReport) -> impl IntoView {
    let shown_tokens = report
        .tokens
        .iter()
        .take(SHOWN_TOKENS)
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(" ");
    let more = if report.tokens.len() > SHOWN_TOKENS {
        " …"
    } else {
        ""
    };
    let tokens_text = format!(
        "{shown_tokens}{more} ({} of {} are not padding)",
        report.non_pad(),
        report.tokens.len()
    );
    let tokens_json = serde_json::to_string(&report.tokens).unwrap_or_default();
    let shape_json = serde_json::to_string(&report.shape).unwrap_or_default();
    let shape_text = format!(
        "[{}, {}, {}]  (prompts, tokens, hidden)",
        report.shape[0], report.shape[1], report.shape[2]
    );
    let values_json = serde_json::to_string(&report.first_values).unwrap_or_default();
    let values_text = report
        .first_values
        .iter()
        .map(|v| format!("{v:.6}"))
        .collect::<Vec<_>>()
        .join("  ");
    let t = &report.timings;
    let time_text = format!(
        "{:.0} ms  (WebGPU {:.0}, stream and load {:.0}, encode {:.0})",
        t.total, t.device, t.load, t.encode
    );
    view! {
        <dl class="facts result">
            <dt>"Token ids"</dt>
            <dd id="encoder-tokens" class="mono" data-tokens=tokens_json>{tokens_text}</dd>
            <dt>"Output shape"</dt>
            <dd id="encoder-shape" class="mono" data-shape=shape_json>{shape_text}</dd>
            <dt>"Row 0, first 8 values"</dt>
            <dd id="encoder-values" class="mono" data-values=values_json>{values_text}</dd>
            <dt>"Mean / std"</dt>
            <dd
                id="encoder-stats"
                class="mono"
                data-mean=report.mean.to_string()
                data-std=report.std.to_string()
            >
                {format!("{:.6} / {:.6}", report.mean, report.std)}
            </dd>
            <dt>"Elapsed"</dt>
            <dd id="encoder-time" class="mono" data-ms=format!("{:.1}", t.total)>{time_text}</dd>
        </dl>
    }
}
