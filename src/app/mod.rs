//! The browser front end: a Leptos (client-side rendered) app with five pages behind tabs
//! (Studio, Model, Toy lab, Settings, Diagnostics). No tensor math lives here: the app reads
//! the user's inputs, calls the engine's async API, and shows what comes back.
//!
//! Layout: [`shell`] is the frame (masthead, tabs, which page shows); [`state`] the state the
//! pages share (the GPU probe, the model status, the GPU job in flight); [`model`] the loaded
//! model; [`pages`] one module per page; [`webgpu`] probes `navigator.gpu`; [`device`] holds
//! the page's one burn device; [`encoder`] is the text encoder check on the Diagnostics page;
//! [`files`] reads picked and dropped files; [`canvas`] draws pixels; [`js`] reads browser
//! objects by name. docs/app.md explains the choices (main thread, CSP, budgets).

mod canvas;
mod device;
mod encoder;
mod files;
mod format;
mod gemini;
mod js;
mod model;
mod pages;
mod shell;
mod state;
mod webgpu;

use wasm_bindgen::{JsCast, JsValue};

/// The element of `index.html` the app replaces: it holds the static shell that paints before
/// the WebAssembly has loaded.
const ROOT_ID: &str = "app";

/// Installs the panic hook and mounts the app in place of the static shell.
pub fn mount() {
    // The module is compiled and running: what is left until interactive is the first render.
    if let Some(performance) = web_sys::window().and_then(|w| w.performance()) {
        let _ = performance.mark("sow-main");
    }
    install_panic_hook();
    let root = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(ROOT_ID))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok());
    match root {
        Some(root) => {
            root.set_inner_html("");
            leptos::mount::mount_to(root, shell::App).forget();
        }
        None => leptos::mount::mount_to_body(shell::App),
    }
    mark_interactive();
}

/// Tells the page (and the page test's budget check) that the app is up: the `data-app`
/// attribute on `<html>` and a `sow-app-interactive` performance mark, set on the first
/// animation frame after mounting, when the app's first render is on screen.
fn mark_interactive() {
    let callback = wasm_bindgen::closure::Closure::once_into_js(|| {
        let Some(window) = web_sys::window() else {
            return;
        };
        if let Some(performance) = window.performance() {
            let _ = performance.mark("sow-app-interactive");
        }
        if let Some(html) = window.document().and_then(|d| d.document_element()) {
            let _ = html.set_attribute("data-app", "ready");
        }
    });
    if let Some(window) = web_sys::window() {
        let _ = window.request_animation_frame(callback.unchecked_ref());
    }
}

/// Chains `console_error_panic_hook` (the message and stack in the console) with a hook that
/// writes the message into the page. A panic aborts the module, so signals can no longer update
/// anything: the hook writes to the DOM directly, into `#fatal-error`.
fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let message = format!(
            "The app stopped because of an internal error; reload the page to go on. ({info})"
        );
        let Some(document) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        if let Some(banner) = document.get_element_by_id("fatal-error") {
            banner.set_text_content(Some(&message));
            let _ = banner.remove_attribute("hidden");
        }
        if let Some(html) = document.document_element() {
            let _ = html.set_attribute("data-app", "crashed");
        }
    }));
}

/// Resolves on the next macrotask, so that the browser can paint and handle input (a click on
/// Cancel, say) before the next piece of synchronous work.
pub(crate) async fn yield_to_browser() {
    gloo_timers::future::TimeoutFuture::new(0).await;
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
