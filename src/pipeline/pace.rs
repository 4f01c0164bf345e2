//! Pacing a long run in the browser. A page whose script runs for 30 s without a break is
//! dropped by Chromium, and queuing a whole run's GPU work at once leaves nothing to show for
//! progress. So between steps the drivers [`settle`]: in the browser they wait for the step's
//! result to exist on the device (one value read back) and for one turn of the event loop;
//! natively, where nothing waits on the page, settling does nothing.

use burn::tensor::Tensor;

/// Waits until the device has computed `latest` (when given) and lets the page run once.
#[cfg(target_arch = "wasm32")]
pub async fn settle<const D: usize>(latest: Option<&Tensor<D>>) {
    if let Some(tensor) = latest {
        let ranges: [std::ops::Range<usize>; D] = std::array::from_fn(|_| 0..1);
        // Only the wait matters; a failed read shows again where the result is read.
        let _ = tensor.clone().slice(ranges).into_data_async().await;
    }
    gloo_timers::future::TimeoutFuture::new(0).await;
}

/// Natively nothing waits on the run's thread: settling is free.
#[cfg(not(target_arch = "wasm32"))]
pub async fn settle<const D: usize>(_latest: Option<&Tensor<D>>) {}
