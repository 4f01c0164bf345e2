//! What a load tells its caller while it runs: bytes done and to do per component, the rate
//! and the time left, notices (a cache problem, a retry), and a summary at the end. The CLI
//! prints [`render_line`]; the app draws its own bar from the same events.

use std::collections::BTreeMap;

use crate::weights::Component;

/// What a component's load is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Reading its weights (from the source, or from the cache).
    Reading,
    /// Building the network from the tensors on the device.
    Building,
    /// Loaded.
    Done,
}

/// Where one component's load stands.
#[derive(Clone, Debug, PartialEq)]
pub struct LoadProgress {
    /// Which component.
    pub component: Component,
    /// What it is doing.
    pub phase: Phase,
    /// Bytes of its weights read so far (from the source or the cache).
    pub done: u64,
    /// Bytes of its weights in all.
    pub total: u64,
    /// Bytes per second over the last seconds, once measurable.
    pub rate: Option<f64>,
    /// Seconds left at that rate.
    pub eta: Option<f64>,
}

/// The totals of a load or a pull.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LoadReport {
    /// Bytes that came over the network (tokenizer and configs included).
    pub transferred: u64,
    /// Bytes of tensors read back from the cache.
    pub from_cache: u64,
    /// Bytes written to the cache by this load.
    pub cached: u64,
    /// Wall time, seconds.
    pub seconds: f64,
    /// Bytes each component takes on the device (empty for a pull).
    pub device_bytes: BTreeMap<Component, u64>,
}

/// One event of a load.
#[derive(Clone, Debug, PartialEq)]
pub enum LoadEvent {
    /// Progress of a component.
    Progress(LoadProgress),
    /// Something the user should know that does not stop the load, in one sentence.
    Notice(String),
    /// The load finished.
    Finished(LoadReport),
}

/// Seconds since some fixed point (monotonic natively; the page clock in a browser).
pub(crate) fn now_seconds() -> f64 {
    #[cfg(not(target_arch = "wasm32"))]
    {
        use std::sync::OnceLock;
        use std::time::Instant;
        static START: OnceLock<Instant> = OnceLock::new();
        START.get_or_init(Instant::now).elapsed().as_secs_f64()
    }
    #[cfg(target_arch = "wasm32")]
    {
        js_sys::Date::now() / 1000.0
    }
}

/// The rate of a transfer over a sliding window of recent samples.
#[derive(Clone, Debug, Default)]
pub(crate) struct RateMeter {
    samples: std::collections::VecDeque<(f64, u64)>,
}

impl RateMeter {
    /// The window the rate is taken over, seconds.
    const WINDOW: f64 = 5.0;

    /// Records that `done` bytes were done at time `now`.
    pub(crate) fn record(&mut self, now: f64, done: u64) {
        self.samples.push_back((now, done));
        while self
            .samples
            .front()
            .is_some_and(|&(t, _)| now - t > Self::WINDOW && self.samples.len() > 2)
        {
            self.samples.pop_front();
        }
    }

    /// Bytes per second, once two samples are at least 0.2 s apart.
    pub(crate) fn rate(&self) -> Option<f64> {
        let (&(t0, d0), &(t1, d1)) = (self.samples.front()?, self.samples.back()?);
        (t1 - t0 >= 0.2).then(|| (d1.saturating_sub(d0)) as f64 / (t1 - t0))
    }
}

/// Bytes in B, kB, MB or GB (powers of 1000, as download sizes are given): the CLI's summaries
/// and the app's Model page.
pub fn format_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    if b >= 1e9 {
        format!("{:.2} GB", b / 1e9)
    } else if b >= 1e6 {
        format!("{:.1} MB", b / 1e6)
    } else if b >= 1e3 {
        format!("{:.0} kB", b / 1e3)
    } else {
        format!("{bytes} B")
    }
}

/// One line for a terminal, e.g.
/// `UNet        [########............]  812.3 / 1731.9 MB   45.1 MB/s   ETA 20 s`.
pub fn render_line(p: &LoadProgress) -> String {
    const WIDTH: usize = 24;
    let fraction = if p.total == 0 {
        1.0
    } else {
        (p.done as f64 / p.total as f64).clamp(0.0, 1.0)
    };
    let filled = (fraction * WIDTH as f64).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), ".".repeat(WIDTH - filled));
    let mb = |b: u64| b as f64 / 1e6;
    let mut line = format!(
        "{:<12} [{bar}] {:>8.1} / {:.1} MB",
        p.component.to_string(),
        mb(p.done),
        mb(p.total)
    );
    match p.phase {
        Phase::Reading => {
            if let Some(rate) = p.rate {
                line.push_str(&format!("  {:>7.1} MB/s", rate / 1e6));
            }
            if let Some(eta) = p.eta {
                line.push_str(&format!("  ETA {}", duration(eta)));
            }
        }
        Phase::Building => line.push_str("  building"),
        Phase::Done => line.push_str("  done"),
    }
    line
}

/// `42 s`, `3 min 05 s`, `1 h 02 min`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min {:02} s", s / 60, s % 60),
        _ => format!("{} h {:02} min", s / 3600, (s % 3600) / 60),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_bar_sizes_rate_and_eta() {
        let line = render_line(&LoadProgress {
            component: Component::Unet,
            phase: Phase::Reading,
            done: 866_000_000,
            total: 1_732_000_000,
            rate: Some(45.1e6),
            eta: Some(19.2),
        });
        assert!(line.starts_with("UNet"), "{line}");
        assert!(line.contains("[############............]"), "{line}");
        assert!(line.contains("866.0 / 1732.0 MB"), "{line}");
        assert!(
            line.contains("45.1 MB/s") && line.contains("ETA 19 s"),
            "{line}"
        );
        assert_eq!(duration(185.0), "3 min 05 s");
        assert_eq!(duration(3720.0), "1 h 02 min");
    }

    #[test]
    fn the_rate_is_taken_over_the_recent_window() {
        let mut meter = RateMeter::default();
        assert_eq!(meter.rate(), None);
        meter.record(0.0, 0);
        meter.record(0.1, 50);
        assert_eq!(meter.rate(), None);
        meter.record(1.0, 1000);
        assert_eq!(meter.rate(), Some(1000.0));
        meter.record(20.0, 2000);
        meter.record(21.0, 2500);
        assert_eq!(meter.rate(), Some(500.0));
    }
}
