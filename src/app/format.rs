//! Numbers in words for the pages: sizes (the engine's formatter, shared with the CLI) and
//! durations.

pub use crate::pipeline::format_bytes;

/// Seconds as "4.2 s", "3 min 05 s" or "1 h 02 min".
pub fn format_seconds(seconds: f64) -> String {
    let s = seconds.max(0.0);
    if s < 60.0 {
        format!("{s:.1} s")
    } else if s < 3600.0 {
        let whole = s.round() as u64;
        format!("{} min {:02} s", whole / 60, whole % 60)
    } else {
        let minutes = (s / 60.0).round() as u64;
        format!("{} h {:02} min", minutes / 60, minutes % 60)
    }
}
