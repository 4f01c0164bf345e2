//! The WebGPU panel: is `navigator.gpu` there, which adapter comes back, and the limits that
//! decide whether SD-2.1 fits (the attention chunk size and the largest weight buffer).
//!
//! The probe reads the JS objects through `js_sys::Reflect`: web-sys's WebGPU bindings need the
//! unstable `web_sys_unstable_apis` cfg flag, and we only read a few properties.

use js_sys::Reflect;
use leptos::prelude::*;
use wasm_bindgen::JsValue;

use super::js::{await_method, call_method, get};
use super::js_error_message;
use crate::pipeline::fit::GpuFacts;

/// The adapter limits that matter for the engine, in the order shown.
const LIMITS: [(&str, LimitUnit); 4] = [
    ("maxStorageBufferBindingSize", LimitUnit::Bytes),
    ("maxBufferSize", LimitUnit::Bytes),
    ("maxComputeWorkgroupStorageSize", LimitUnit::Bytes),
    ("maxComputeInvocationsPerWorkgroup", LimitUnit::Count),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum LimitUnit {
    Bytes,
    Count,
}

/// What the probe found.
#[derive(Clone, Debug, PartialEq)]
pub enum GpuProbe {
    /// Still waiting for `requestAdapter`.
    Checking,
    /// No `navigator.gpu`; browsers hide it outside secure contexts, hence the flag.
    Missing { secure_context: bool },
    /// `navigator.gpu` exists but `requestAdapter()` gave `null`.
    NoAdapter,
    /// `requestAdapter()` threw or rejected.
    Failed(String),
    /// An adapter, described.
    Ready(AdapterReport),
}

/// What the page shows about an adapter.
#[derive(Clone, Debug, PartialEq)]
pub struct AdapterReport {
    /// `GPUAdapterInfo` fields that are non-empty, as (label, value).
    pub info: Vec<(&'static str, String)>,
    /// The [`LIMITS`], `None` where the browser does not report one.
    pub limits: Vec<(&'static str, Option<f64>)>,
    /// Whether the `shader-f16` feature exists (f16 arithmetic in shaders).
    pub shader_f16: bool,
    /// `info.isFallbackAdapter`, where the browser reports it (a software adapter).
    pub fallback: Option<bool>,
}

impl GpuProbe {
    /// A short machine-readable state for `data-state` (and the CSS).
    fn state(&self) -> &'static str {
        match self {
            GpuProbe::Checking => "checking",
            GpuProbe::Missing { .. } => "missing",
            GpuProbe::NoAdapter => "no-adapter",
            GpuProbe::Failed(_) => "error",
            GpuProbe::Ready(_) => "ready",
        }
    }

    /// One line for `#webgpu-status`.
    fn headline(&self) -> String {
        match self {
            GpuProbe::Checking => "Checking for WebGPU…".into(),
            GpuProbe::Missing { .. } => "WebGPU is not available in this browser.".into(),
            GpuProbe::NoAdapter => "WebGPU is present, but no GPU adapter was returned.".into(),
            GpuProbe::Failed(e) => format!("Asking for a WebGPU adapter failed: {e}"),
            GpuProbe::Ready(report) => {
                let name = report
                    .info
                    .iter()
                    .map(|(_, v)| v.as_str())
                    .collect::<Vec<_>>()
                    .join(" / ");
                if name.is_empty() {
                    "WebGPU ready: adapter found.".into()
                } else {
                    format!("WebGPU ready: adapter found ({name}).")
                }
            }
        }
    }

    /// What the user can do about it, where there is something to do.
    fn advice(&self) -> Option<&'static str> {
        match self {
            GpuProbe::Missing {
                secure_context: false,
            } => Some(
                "Browsers only offer WebGPU to secure pages: open this page over https://, or \
                 from localhost / 127.0.0.1.",
            ),
            GpuProbe::Missing { .. } => Some(
                "Use Chrome or Edge 113 or later on a desktop. In Firefox or Safari, turn WebGPU \
                 on in the experimental features. On Linux, Chrome may also need \
                 chrome://flags/#enable-unsafe-webgpu and #enable-vulkan.",
            ),
            GpuProbe::NoAdapter | GpuProbe::Failed(_) => Some(
                "The GPU may be blocklisted or hardware acceleration turned off: check \
                 chrome://gpu, enable \"Use graphics acceleration when available\" in the \
                 browser's settings, or try chrome://flags/#enable-unsafe-webgpu.",
            ),
            GpuProbe::Checking | GpuProbe::Ready(_) => None,
        }
    }
}

/// Probes `navigator.gpu` and the default adapter.
pub async fn probe_webgpu() -> GpuProbe {
    let Some(window) = web_sys::window() else {
        return GpuProbe::Failed("no window".into());
    };
    let gpu = Reflect::get(&window.navigator(), &"gpu".into()).unwrap_or(JsValue::UNDEFINED);
    if gpu.is_undefined() || gpu.is_null() {
        return GpuProbe::Missing {
            secure_context: window.is_secure_context(),
        };
    }
    match request_adapter(&gpu).await {
        Ok(None) => GpuProbe::NoAdapter,
        Ok(Some(adapter)) => GpuProbe::Ready(describe_adapter(&adapter).await),
        Err(e) => GpuProbe::Failed(js_error_message(&e)),
    }
}

/// `await gpu.requestAdapter()`, `None` for a `null` adapter.
async fn request_adapter(gpu: &JsValue) -> Result<Option<JsValue>, JsValue> {
    let adapter = await_method(gpu, "requestAdapter", &[]).await?;
    Ok((!adapter.is_null() && !adapter.is_undefined()).then_some(adapter))
}

/// Reads info, limits and features from a `GPUAdapter`.
async fn describe_adapter(adapter: &JsValue) -> AdapterReport {
    // `adapter.info` since Chrome 127; `requestAdapterInfo()` before that.
    let mut info_obj = get(adapter, "info");
    if info_obj.is_undefined() {
        info_obj = await_method(adapter, "requestAdapterInfo", &[])
            .await
            .unwrap_or(JsValue::UNDEFINED);
    }
    let info = [
        ("vendor", "vendor"),
        ("architecture", "architecture"),
        ("device", "device"),
        ("description", "description"),
    ]
    .into_iter()
    .filter_map(|(label, key)| {
        get(&info_obj, key)
            .as_string()
            .filter(|s| !s.is_empty())
            .map(|s| (label, s))
    })
    .collect();
    let limits_obj = get(adapter, "limits");
    let limits = LIMITS
        .iter()
        .map(|(name, _)| (*name, get(&limits_obj, name).as_f64()))
        .collect();
    let features = get(adapter, "features");
    let shader_f16 = call_method(&features, "has", &["shader-f16".into()])
        .ok()
        .and_then(|v| v.as_bool())
        .unwrap_or(false);
    let fallback = get(&info_obj, "isFallbackAdapter").as_bool();
    AdapterReport {
        info,
        limits,
        shader_f16,
        fallback,
    }
}

impl AdapterReport {
    /// What decides whether a model fits (`pipeline::fit`), with the machine's memory from
    /// `navigator.deviceMemory` (GB, rounded by the browser).
    pub fn gpu_facts(&self) -> GpuFacts {
        let limit = |name: &str| {
            self.limits
                .iter()
                .find(|(n, _)| *n == name)
                .and_then(|(_, v)| *v)
                .map(|v| v as u64)
        };
        // Not every browser sets isFallbackAdapter; the software rasterizers name themselves.
        let named_software = self.info.iter().any(|(_, value)| {
            let value = value.to_ascii_lowercase();
            ["swiftshader", "llvmpipe", "lavapipe"]
                .iter()
                .any(|name| value.contains(name))
        });
        let device_memory = web_sys::window()
            .map(|w| get(&w.navigator().into(), "deviceMemory"))
            .and_then(|v| v.as_f64())
            .map(|gb| (gb * 1e9) as u64);
        GpuFacts {
            max_storage_binding: limit("maxStorageBufferBindingSize"),
            max_buffer: limit("maxBufferSize"),
            device_memory,
            software: self.fallback == Some(true) || named_software,
        }
    }
}

/// Formats a limit: bytes in MiB/KiB (with the exact count in the tooltip), counts as is.
fn format_limit(value: f64, unit: LimitUnit) -> String {
    const KIB: f64 = 1024.0;
    const MIB: f64 = 1024.0 * 1024.0;
    match unit {
        LimitUnit::Count => format!("{value}"),
        LimitUnit::Bytes if value >= MIB => format!("{:.0} MiB", value / MIB),
        LimitUnit::Bytes if value >= KIB => format!("{:.0} KiB", value / KIB),
        LimitUnit::Bytes => format!("{value} B"),
    }
}

/// The Diagnostics page's WebGPU section: the probe's verdict, then the adapter and its limits
/// or what to do without one.
#[component]
pub fn WebGpuPanel() -> impl IntoView {
    let probe = super::state::app_state().gpu;
    view! {
        <section class="panel" aria-labelledby="webgpu-title">
            <h2 id="webgpu-title">"WebGPU"</h2>
            <p
                id="webgpu-status"
                class="status"
                data-state=move || probe.with(GpuProbe::state)
                aria-live="polite"
            >
                {move || probe.with(GpuProbe::headline)}
            </p>
            <div id="adapter-info">
                {move || match probe.get() {
                    GpuProbe::Ready(report) => view! { <AdapterDetails report/> }.into_any(),
                    other => {
                        other
                            .advice()
                            .map(|advice| view! { <p class="hint">{advice}</p> })
                            .into_any()
                    }
                }}
            </div>
        </section>
    }
}

/// A banner for the pages that need a GPU, shown only when WebGPU is unusable: what is wrong,
/// what to do, and a link to the Diagnostics page with the details.
#[component]
pub fn GpuNotice() -> impl IntoView {
    let state = super::state::app_state();
    let probe = state.gpu;
    let unusable = move || {
        probe.with(|p| {
            matches!(
                p,
                GpuProbe::Missing { .. } | GpuProbe::NoAdapter | GpuProbe::Failed(_)
            )
        })
    };
    view! {
        <Show when=unusable>
            <div class="notice" data-state="error" role="alert">
                <p class="notice-title">{move || probe.with(GpuProbe::headline)}</p>
                <p>
                    "SOW Studio runs Stable Diffusion on your GPU through WebGPU, so it cannot                      load a model or make images here. "
                    {move || probe.with(|p| p.advice().unwrap_or_default())}
                </p>
                <p>
                    <a
                        href="#diagnostics"
                        on:click=move |ev| {
                            ev.prevent_default();
                            super::shell::open_page(state, super::shell::Page::Diagnostics);
                        }
                    >
                        "See what this browser reports (Diagnostics)"
                    </a>
                </p>
            </div>
        </Show>
    }
}

/// The adapter's identity, its limits and `shader-f16`.
#[component]
fn AdapterDetails(report: AdapterReport) -> impl IntoView {
    let info = report
        .info
        .into_iter()
        .map(|(label, value)| view! { <dt>{label}</dt><dd>{value}</dd> })
        .collect_view();
    let limits = report
        .limits
        .into_iter()
        .zip(LIMITS)
        .map(|((name, value), (_, unit))| {
            let shown = value.map_or_else(|| "not reported".into(), |v| format_limit(v, unit));
            let exact = value.map(|v| v.to_string()).unwrap_or_default();
            view! {
                <dt><code>{name}</code></dt>
                <dd data-limit=name data-value=exact.clone() title=exact>{shown}</dd>
            }
        })
        .collect_view();
    let f16 = if report.shader_f16 {
        "yes"
    } else {
        "no (f32 only)"
    };
    let fallback = report
        .fallback
        .filter(|fallback| *fallback)
        .map(|_| view! { <p class="hint">"This is a software (fallback) adapter: expect slow runs."</p> });
    view! {
        <dl class="facts">{info}</dl>
        <h3>"Limits"</h3>
        <dl class="facts limits">
            {limits}
            <dt><code>"shader-f16"</code></dt>
            <dd data-feature="shader-f16" data-value=report.shader_f16.to_string()>{f16}</dd>
        </dl>
        {fallback}
    }
}
