//! The browser front end: a Leptos (client-side rendered) page that checks the browser's WebGPU
//! and drives the engine through its public async API. No tensor math lives here: the app
//! fetches files, calls the engine, and shows what comes back.
//!
//! Layout: [`webgpu`] probes `navigator.gpu` and shows the adapter; [`encoder`] runs the text
//! encoder check on the tiny fixture model; [`device`] is the small async helper they share.
//! Model files are fetched by the engine (`crate::pipeline::load_text_encoder`), streamed.

mod device;
mod encoder;
mod webgpu;

use leptos::prelude::*;
use wasm_bindgen::{JsCast, JsValue};

use encoder::EncoderPanel;
use webgpu::WebGpuPanel;

/// Installs the panic hook and mounts the page on `<body>`.
pub fn mount() {
    install_panic_hook();
    leptos::mount::mount_to_body(App);
}

/// The whole page.
#[component]
pub fn App() -> impl IntoView {
    view! {
        <header class="masthead">
            <h1>"SOW Studio"</h1>
            <p class="lede">
                "Selective One-Way Diffusion on Stable Diffusion 2.1, running on your own GPU \
                 through WebGPU: nothing to install, nothing leaves your machine."
            </p>
        </header>
        <main class="panels">
            <WebGpuPanel/>
            <EncoderPanel/>
        </main>
        // Filled by the panic hook: after a panic the wasm module is dead, so the page must
        // say so itself instead of leaving a spinner forever.
        <div id="fatal-error" class="fatal" role="alert" hidden></div>
        <footer class="colophon">
            "Rust, burn and Leptos, compiled to WebAssembly."
        </footer>
    }
}

/// Chains `console_error_panic_hook` (the message and stack in the console) with a hook that
/// writes the message into the page. A panic aborts the module, so signals can no longer update
/// anything: the hook writes to the DOM directly, into `#fatal-error` and into the encoder's
/// status line (which a waiting user, or the page test, is watching).
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = format!("error: the app crashed: {info}");
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        if let Some(banner) = document.get_element_by_id("fatal-error") {
            banner.set_text_content(Some(&message));
            let _ = banner.remove_attribute("hidden");
        }
        if let Some(status) = document.get_element_by_id("encoder-status") {
            status.set_text_content(Some(&message));
            let _ = status.set_attribute("data-state", "error");
        }
    }));
}

/// Resolves on the next macrotask. Signal updates reach the DOM asynchronously; awaiting this
/// after setting a status lets the browser paint it before a long synchronous step (building a
/// model) holds the main thread.
pub(crate) async fn yield_to_browser() {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        if let Some(window) = web_sys::window() {
            let _ = window.set_timeout_with_callback(&resolve);
        } else {
            let _ = resolve.call0(&JsValue::UNDEFINED);
        }
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// Milliseconds from a monotonic clock (`performance.now()`), for the elapsed-time readouts.
pub(crate) fn now_ms() -> f64 {
    web_sys::window()
        .and_then(|w| w.performance())
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// A readable message from a JS exception or rejection value.
pub(crate) fn js_error_message(value: &JsValue) -> String {
    if let Some(error) = value.dyn_ref::<js_sys::Error>() {
        return String::from(error.message());
    }
    value.as_string().unwrap_or_else(|| format!("{value:?}"))
}
