//! The self-attention hook: how SOW's attention modulation (docs/method.md §3.2) and the toy
//! experiment (§4.1) reach into the UNet's self-attention layers without the UNet knowing
//! anything about runs. Everything about a run (branches, cycle, masks, boxes) belongs to the
//! hook object; a layer only says which layer it is and what shape its attention has.
//!
//! Two phases per layer call: [`AttentionHook::observe`] may compute unmodified logits of any
//! query rows of any batch entry it wants (the indicator needs the prompt branch's related-region
//! rows before any chunk is changed) and returns a state; then [`AttentionHook::modify`] sees each
//! query chunk's logits, with that state, before the softmax. Without a hook the attention path is
//! untouched; a hook that changes nothing gives the same numbers.

use std::any::Any;
use std::ops::Range;

use burn::tensor::Tensor;

/// What a self-attention layer tells its hook.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LayerInfo {
    /// The layer's index among the UNet's self-attention layers, in evaluation order (0..16 for
    /// SD-2.1: down 64², 64², 32², 32², 16², 16², mid 8², up 16² ×3, 32² ×3, 64² ×3).
    pub layer: usize,
    /// The token grid (rows, columns) of this layer.
    pub grid: [usize; 2],
    /// Attention heads.
    pub heads: usize,
    /// Batch entries of this evaluation.
    pub batch: usize,
    /// The byte budget of one logits buffer (WebGPU's binding limit by default): a hook must
    /// not ask [`AttentionHook::observe`]'s `logits` for more at once.
    pub budget_bytes: usize,
}

impl LayerInfo {
    /// Tokens (queries = keys) of this layer.
    pub fn tokens(&self) -> usize {
        self.grid[0] * self.grid[1]
    }

    /// How many query rows of `entries` batch entries one logits request may cover within the
    /// budget (at least one).
    pub fn rows_per_request(&self, entries: usize) -> usize {
        let row_bytes = entries * self.heads * self.tokens() * 4;
        (self.budget_bytes / row_bytes.max(1)).clamp(1, self.tokens())
    }
}

/// Which batch entries a logits request covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Entries {
    /// Every entry: `[batch, heads, rows, keys]`.
    All,
    /// One entry: `[1, heads, rows, keys]` (the prompt branch alone costs a quarter of a SOW
    /// cycle's batch).
    One(usize),
}

/// Unmodified scaled logits of some query rows, computed on request.
pub type LogitsFn<'a> = dyn Fn(Entries, Range<usize>) -> Tensor<4> + 'a;

/// What a hook's observe phase hands to its modify phase within one layer call.
pub type Observed = Box<dyn Any>;

/// A hook on every self-attention layer of the UNet.
pub trait AttentionHook {
    /// Phase one, once per layer call before any chunk is modified. `logits(entries, rows)`
    /// gives the unmodified scaled logits `[entries, heads, rows.len(), keys]` (each call costs
    /// a matmul; ask for at most [`LayerInfo::rows_per_request`] rows at once). The returned state
    /// reaches every [`AttentionHook::modify`] of this layer call. Nothing may be read back to
    /// the host here (a browser cannot wait inside a UNet evaluation): keep results as tensors.
    fn observe(&self, _layer: &LayerInfo, _logits: &LogitsFn) -> Option<Observed> {
        None
    }

    /// Phase two, once per query chunk: returns the logits to softmax. `rows` are the chunk's
    /// query rows, `logits` their scaled logits `[batch, heads, rows.len(), keys]`.
    fn modify(
        &self,
        layer: &LayerInfo,
        observed: Option<&Observed>,
        rows: Range<usize>,
        logits: Tensor<4>,
    ) -> Tensor<4>;
}
