//! Ctrl-C during a run. The first stops the run after the current UNet evaluation: nothing is
//! half-written (outputs are written whole or not at all), and a batch keeps the jobs it
//! finished, so running the same command again goes on where it stopped. A second Ctrl-C
//! quits at once.

use std::sync::atomic::{AtomicBool, Ordering};

/// The exit status of a program stopped by SIGINT, by shell convention (128 + 2).
pub const EXIT_STATUS: i32 = 130;

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Takes over Ctrl-C for the rest of the process.
pub fn install() {
    // Without a handler (it can fail only if one is set already) Ctrl-C still ends the
    // process, just not between evaluations.
    let _ = ctrlc::set_handler(|| {
        if REQUESTED.swap(true, Ordering::SeqCst) {
            std::process::exit(EXIT_STATUS);
        }
        eprintln!("\nstopping after the current UNet evaluation (Ctrl-C again quits at once)");
    });
}

/// Whether the user asked to stop.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
