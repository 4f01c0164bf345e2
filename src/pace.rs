//! Pacing long GPU work in the browser. A page whose script runs for 30 s without a break is
//! dropped by Chromium, a task over 200 ms makes the page feel stuck (docs/app.md "Budgets"),
//! and queuing a whole run's GPU work at once leaves nothing to show for progress. So:
//! - within a network evaluation, a [`Pacer`] gives the page a turn whenever the work
//!   recorded since the last turn has held the main thread for longer than a slice (recording
//!   a full-size UNet's kernels is itself seconds of script on a slow machine);
//! - between run steps, [`settle`] waits for the step's result to exist on the device (one
//!   value read back) and for one turn of the event loop.
//!
//! Natively nothing waits on the run's thread: both do nothing.

use std::future::Future;

use burn::tensor::Tensor;

/// How long recorded work may hold the main thread before the page gets a turn: the
/// browser's own threshold for a "long task".
#[cfg(target_arch = "wasm32")]
const SLICE_MS: f64 = 50.0;

/// Gives the page a turn between pieces of synchronous work once a slice has passed.
pub struct Pacer {
    /// False for work that must finish in one go ([`Pacer::unpaced`]).
    #[cfg(target_arch = "wasm32")]
    yields: bool,
}

impl Default for Pacer {
    fn default() -> Self {
        Self::new()
    }
}

impl Pacer {
    /// A pacer that never gives a turn: for the synchronous entry points, which drive the
    /// paced code through [`unpaced`].
    pub fn unpaced() -> Self {
        Self {
            #[cfg(target_arch = "wasm32")]
            yields: false,
        }
    }
}

#[cfg(target_arch = "wasm32")]
thread_local! {
    /// When the page last had a turn that this module gave it ([`Pacer::breathe`] or
    /// [`settle`]). One clock for every pacer: a run's pacer lives across steps, and the wait
    /// between steps is a turn too, so the next slice starts there rather than a step earlier.
    static LAST_TURN: std::cell::Cell<f64> = std::cell::Cell::new(js_sys::Date::now());
}

/// Lets the browser run its queued tasks once, and starts a new slice.
#[cfg(target_arch = "wasm32")]
async fn give_a_turn() {
    gloo_timers::future::TimeoutFuture::new(0).await;
    LAST_TURN.with(|last| last.set(js_sys::Date::now()));
}

#[cfg(target_arch = "wasm32")]
impl Pacer {
    /// A pacer that gives the page a turn whenever a slice has passed since the last one.
    pub fn new() -> Self {
        Self { yields: true }
    }

    /// Lets the page run once if the current slice is spent.
    pub async fn breathe(&mut self) {
        let spent = LAST_TURN.with(|last| js_sys::Date::now() - last.get()) >= SLICE_MS;
        if self.yields && spent {
            give_a_turn().await;
        }
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl Pacer {
    /// Natively there is no page to give a turn to.
    pub fn new() -> Self {
        Self {}
    }

    /// Does nothing natively.
    pub async fn breathe(&mut self) {}
}

/// Runs paced work that was given [`Pacer::unpaced`] to completion, synchronously: such work
/// never waits, so one poll finishes it.
pub fn unpaced<F: Future>(work: F) -> F::Output {
    let mut work = std::pin::pin!(work);
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    match work.as_mut().poll(&mut context) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("work with an unpaced Pacer never waits"),
    }
}

/// Waits until the device has computed `latest` (when given) and lets the page run once.
#[cfg(target_arch = "wasm32")]
pub async fn settle<const D: usize>(latest: Option<&Tensor<D>>) {
    if let Some(tensor) = latest {
        let ranges: [std::ops::Range<usize>; D] = std::array::from_fn(|_| 0..1);
        // Only the wait matters; a failed read shows again where the result is read.
        let _ = tensor.clone().slice(ranges).into_data_async().await;
    }
    give_a_turn().await;
}

/// Natively nothing waits on the run's thread: settling is free.
#[cfg(not(target_arch = "wasm32"))]
pub async fn settle<const D: usize>(_latest: Option<&Tensor<D>>) {}
