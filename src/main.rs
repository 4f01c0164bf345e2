//! The entry point. In the browser (wasm32) it mounts the Leptos app; natively there is nothing
//! to run, since the app is a web page (the native tools are separate binaries).

#[cfg(target_arch = "wasm32")]
fn main() {
    // `mount` installs the panic hook (console_error_panic_hook, chained with one that shows the
    // message in the page) before anything else runs.
    sow_studio::app::mount();
}

#[cfg(not(target_arch = "wasm32"))]
fn main() {
    println!(
        "SOW Studio is a browser app: serve it with `bash scripts/serve.sh` and open http://127.0.0.1:8080"
    );
}
