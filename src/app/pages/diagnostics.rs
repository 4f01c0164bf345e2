//! The Diagnostics page: what this browser offers the engine (WebGPU adapter and limits,
//! storage, threads), and a check that runs the text encoder end to end.

use leptos::prelude::*;
use wasm_bindgen::JsValue;

use crate::app::encoder::EncoderPanel;
use crate::app::js::{await_method, get};
use crate::app::webgpu::WebGpuPanel;

/// The Diagnostics page.
#[component]
pub fn DiagnosticsPage() -> impl IntoView {
    view! {
        <h1 class="page-title">"Diagnostics"</h1>
        <p class="lede">
            "What this browser offers SOW Studio. Include this page when you report a problem."
        </p>
        <div class="panels">
            <WebGpuPanel/>
            <BrowserPanel/>
            <EncoderPanel/>
        </div>
    }
}

/// Facts about the browser besides the GPU, as (label, value) rows.
#[derive(Clone, Debug, Default, PartialEq)]
struct BrowserFacts {
    rows: Vec<(&'static str, String)>,
}

/// Reads the facts; the storage estimate is the only asynchronous one.
async fn browser_facts() -> BrowserFacts {
    let Some(window) = web_sys::window() else {
        return BrowserFacts::default();
    };
    let navigator: JsValue = window.navigator().into();
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    let mut rows = vec![
        ("Secure context", yes_no(window.is_secure_context())),
        (
            "CPU threads",
            get(&navigator, "hardwareConcurrency")
                .as_f64()
                .map_or_else(|| "not reported".into(), |n| n.to_string()),
        ),
        (
            "Device memory",
            get(&navigator, "deviceMemory")
                .as_f64()
                .map_or_else(|| "not reported".into(), |gb| format!("at least {gb} GB")),
        ),
    ];
    let storage = get(&navigator, "storage");
    rows.push((
        "Private file system (model cache)",
        yes_no(!get(&storage, "getDirectory").is_undefined()),
    ));
    let estimate = await_method(&storage, "estimate", &[]).await.ok();
    let gb = |v: JsValue| v.as_f64().map(|b| format!("{:.2} GB", b / 1e9));
    if let Some(estimate) = estimate {
        let usage = gb(get(&estimate, "usage")).unwrap_or_else(|| "?".into());
        let quota = gb(get(&estimate, "quota")).unwrap_or_else(|| "?".into());
        rows.push(("Storage used / available", format!("{usage} of {quota}")));
    }
    let persisted = await_method(&storage, "persisted", &[])
        .await
        .ok()
        .and_then(|v| v.as_bool());
    rows.push((
        "Storage kept under pressure",
        persisted.map_or_else(
            || "not reported".into(),
            |p| {
                if p {
                    "yes (persistent)".into()
                } else {
                    "no: the browser may evict the cache".into()
                }
            },
        ),
    ));
    rows.push((
        "Browser",
        window.navigator().user_agent().unwrap_or_default(),
    ));
    BrowserFacts { rows }
}

/// The browser facts as a list.
#[component]
fn BrowserPanel() -> impl IntoView {
    let facts = LocalResource::new(browser_facts);
    view! {
        <section class="panel" aria-labelledby="browser-title">
            <h2 id="browser-title">"Browser"</h2>
            <Suspense fallback=|| view! { <p class="hint">"Reading…"</p> }>
                {move || {
                    facts
                        .get()
                        .map(|facts| {
                            let rows = facts
                                .rows
                                .into_iter()
                                .map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> })
                                .collect_view();
                            view! { <dl class="facts" id="browser-facts">{rows}</dl> }
                        })
                }}
            </Suspense>
        </section>
    }
}
