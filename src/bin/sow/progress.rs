//! Terminal progress bars: a run's UNet evaluations done of total, the stage in words, the
//! elapsed time and an estimate of what is left; and a model load's bytes per component, with
//! the rate and the time left that the load measures.

use std::collections::BTreeMap;
use std::time::Duration;

use indicatif::{HumanDuration, MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use sow_studio::pipeline::generate::{Flow, RunObserver, StepReport};
use sow_studio::pipeline::{LoadEvent, LoadProgress, LoadReport, Phase};
use sow_studio::weights::Component;

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
        if self.bar.is_hidden() {
            // Standard error is a log, not a terminal: a line per step instead of a bar.
            eprintln!(
                "{}/{} UNet evaluations, next: {}",
                report.unet_calls, report.unet_total, report.description
            );
        }
        self.bar.set_message(report.description);
        if crate::interrupt::requested() {
            Flow::Cancel
        } else {
            Flow::Continue
        }
    }
}

/// Draws a model load's progress on standard error: one bar per component, notices above them.
pub struct LoadBars {
    bars: MultiProgress,
    components: BTreeMap<Component, ProgressBar>,
    report: Option<LoadReport>,
}

impl LoadBars {
    /// No bars yet: each component's appears with its first event.
    pub fn new() -> Self {
        LoadBars {
            bars: MultiProgress::with_draw_target(ProgressDrawTarget::stderr_with_hz(4)),
            components: BTreeMap::new(),
            report: None,
        }
    }

    /// Takes one event of the load.
    pub fn event(&mut self, event: LoadEvent) {
        match event {
            LoadEvent::Progress(progress) => self.progress(&progress),
            // Printed even where the bars are hidden (standard error is not a terminal).
            LoadEvent::Notice(notice) => self.bars.suspend(|| eprintln!("{notice}")),
            LoadEvent::Finished(report) => self.report = Some(report),
        }
    }

    fn progress(&mut self, p: &LoadProgress) {
        let bars = &self.bars;
        let bar = self.components.entry(p.component).or_insert_with(|| {
            let bar = bars.add(ProgressBar::new(p.total));
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:<12} [{bar:30}] {bytes:>10} / {total_bytes:<10} {msg}",
                )
                .expect("a valid template")
                .progress_chars("=> "),
            );
            bar.set_prefix(p.component.to_string());
            bar
        });
        bar.set_length(p.total);
        bar.set_position(p.done);
        match p.phase {
            Phase::Reading => {
                let mut message = String::new();
                if let Some(rate) = p.rate {
                    message.push_str(&format!("{:.1} MB/s", rate / 1e6));
                }
                if let Some(eta) = p.eta {
                    let eta = HumanDuration(Duration::from_secs_f64(eta.max(0.0)));
                    message.push_str(&format!(", {eta} left"));
                }
                bar.set_message(message);
            }
            Phase::Building => bar.set_message("building"),
            Phase::Done => bar.finish_with_message("done"),
        }
    }

    /// Leaves the bars on screen at their last state; the load's totals, when it finished.
    pub fn finish(self) -> Option<LoadReport> {
        for bar in self.components.values() {
            bar.abandon();
        }
        self.report
    }
}

impl Default for LoadBars {
    fn default() -> Self {
        Self::new()
    }
}
