//! The entry point. In the browser (wasm32) it mounts the Leptos app; natively there is nothing
//! to run, since the app is a web page (the native tools are separate binaries).

#[cfg(target_arch = "wasm32")]
extern "C" {
    /// wasm-ld's synthesized function that runs the static constructors.
    fn __wasm_call_ctors();
}

#[cfg(target_arch = "wasm32")]
fn main() {
    // Static constructors (cubecl's kernel registry, via `inventory`) run here, once. Because this
    // module references wasm-ld's `__wasm_call_ctors`, the linker no longer wraps every export in
    // a call to it, which had re-run all constructors on each call from JavaScript (about 2.6 s
    // of start-up, and again on every GPU callback; docs/app.md, "Budgets").
    // SAFETY: called once, first, before any constructed static is read.
    unsafe { __wasm_call_ctors() };
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
