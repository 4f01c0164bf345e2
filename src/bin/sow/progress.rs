//! A terminal progress bar for runs: UNet evaluations done of total, the stage in words, the
//! elapsed time and an estimate of what is left.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sow_studio::pipeline::generate::{Flow, RunObserver, StepReport};

/// Draws a run's progress on standard error.
pub struct ProgressBarObserver {
    bar: ProgressBar,
}

impl ProgressBarObserver {
    /// A bar over `unet_total` evaluations.
    pub fn new(unet_total: usize) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(unet_total as u64),
            ProgressDrawTarget::stderr_with_hz(4),
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{elapsed_precise} [{bar:30}] {pos}/{len} UNet evaluations, ETA {eta}: {msg}",
            )
            .expect("a valid template")
            .progress_chars("=> "),
        );
        ProgressBarObserver { bar }
    }

    /// Leaves the bar on screen at its last state.
    pub fn finish(&self) {
        self.bar.abandon();
    }
}

impl RunObserver for ProgressBarObserver {
    async fn step(&mut self, report: StepReport<'_>) -> Flow {
        self.bar.set_position(report.unet_calls as u64);
        self.bar.set_message(report.description);
        Flow::Continue
    }
}
