//! A record of the largest intermediate buffer the networks made, so tests can prove that a
//! full-size run stays inside WebGPU's limits (ISSUE: 128 MiB storage bindings by default).
//!
//! The layers that make large buffers (attention logits, the feed-forward's hidden layer,
//! convolutions at full resolution) report each one's shape here; the cost is one atomic max.

use std::sync::atomic::{AtomicUsize, Ordering};

static PEAK_BYTES: AtomicUsize = AtomicUsize::new(0);

/// Records an f32 buffer of this shape.
pub fn note(dims: &[usize]) {
    let bytes = dims.iter().product::<usize>() * 4;
    PEAK_BYTES.fetch_max(bytes, Ordering::Relaxed);
}

/// The largest buffer recorded since the last [`reset`], in bytes.
pub fn peak_bytes() -> usize {
    PEAK_BYTES.load(Ordering::Relaxed)
}

/// Forgets what was recorded.
pub fn reset() {
    PEAK_BYTES.store(0, Ordering::Relaxed);
}
