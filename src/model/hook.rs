//! The self-attention hook (docs/method.md §3.2): how SOW's dynamic attention modulation reaches
//! into the UNet's 16 self-attention layers without the UNet knowing anything about SOW.
//!
//! Two phases per layer call: [`AttentionHook::observe`] may compute unmodified logits for any
//! query rows it wants (the indicator needs all related-region queries before any chunk is
//! changed), then [`AttentionHook::modify`] sees each chunk's logits before its softmax. Without
//! a hook the attention path is untouched; a hook that changes nothing gives the same numbers.

use std::ops::Range;

use burn::tensor::Tensor;

use super::sampling::nearest_source;

/// Named binary masks over the 64×64 latent grid (condition, related region, …), resampled by
/// nearest neighbour to any layer's token grid on request.
#[derive(Clone, Debug, Default)]
pub struct Masks {
    masks: Vec<(String, [usize; 2], Vec<f32>)>,
}

impl Masks {
    /// Adds a mask of `size` (rows, columns), row-major values.
    pub fn insert(&mut self, name: &str, size: [usize; 2], values: Vec<f32>) {
        self.masks.retain(|(n, _, _)| n != name);
        self.masks.push((name.to_string(), size, values));
    }

    /// The mask `name` at a `grid` of tokens (rows, columns), nearest-resampled as PyTorch's
    /// `interpolate(mode="nearest")` does, row-major; None if there is no such mask.
    pub fn at(&self, name: &str, grid: [usize; 2]) -> Option<Vec<f32>> {
        let (_, [h, w], values) = self.masks.iter().find(|(n, _, _)| n == name)?;
        Some(
            (0..grid[0])
                .flat_map(|r| (0..grid[1]).map(move |c| (r, c)))
                .map(|(r, c)| {
                    values[nearest_source(r, *h, grid[0]) * w + nearest_source(c, *w, grid[1])]
                })
                .collect(),
        )
    }
}

/// What the caller of a UNet evaluation tells the hook about it.
#[derive(Clone, Debug, Default)]
pub struct RunInfo {
    /// What each batch entry is, in order (e.g. `["neg", "prompt", "face", "hq"]` in SOW's
    /// cycles, §2.6).
    pub branches: Vec<String>,
    /// The cycle index n (1-based) during COW/SOW cycles, None elsewhere.
    pub cycle: Option<usize>,
    /// The masks the hook may need.
    pub masks: Masks,
}

/// What a self-attention layer tells its hook.
#[derive(Clone, Copy, Debug)]
pub struct LayerInfo<'a> {
    /// The layer's index among the UNet's self-attention layers, in evaluation order (0..16 for
    /// SD-2.1: down 64², 64², 32², 32², 16², 16², mid 8², up 16² ×3, 32² ×3, 64² ×3).
    pub layer: usize,
    /// The token grid (rows, columns) of this layer.
    pub grid: [usize; 2],
    /// Attention heads.
    pub heads: usize,
    /// The run this call belongs to.
    pub run: &'a RunInfo,
}

/// A hook on every self-attention layer of the UNet.
pub trait AttentionHook {
    /// Phase one, once per layer call before any chunk is modified. `logits(rows)` gives the
    /// unmodified scaled logits `[batch, heads, rows.len(), keys]` of those query rows (compute
    /// only what is needed: each call costs a matmul). The default does nothing.
    fn observe(&self, _layer: &LayerInfo, _logits: &dyn Fn(Range<usize>) -> Tensor<4>) {}

    /// Phase two, once per query chunk: returns the logits to softmax. `rows` are the chunk's
    /// query rows, `logits` their scaled logits `[batch, heads, rows.len(), keys]`.
    fn modify(&self, layer: &LayerInfo, rows: Range<usize>, logits: Tensor<4>) -> Tensor<4>;
}

/// The hook of one UNet evaluation, with what it needs to know about the run.
#[derive(Clone, Copy)]
pub struct Hooked<'a> {
    /// The hook.
    pub hook: &'a dyn AttentionHook,
    /// The run information handed to it.
    pub run: &'a RunInfo,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_resample_like_pytorch_nearest() {
        let mut masks = Masks::default();
        // A 4×4 mask with only the lower-right quadrant set.
        let values = (0..16)
            .map(|i| if i / 4 >= 2 && i % 4 >= 2 { 1.0 } else { 0.0 })
            .collect();
        masks.insert("c", [4, 4], values);
        assert_eq!(masks.at("c", [2, 2]).unwrap(), vec![0.0, 0.0, 0.0, 1.0]);
        let up = masks.at("c", [8, 8]).unwrap();
        assert_eq!(up.iter().sum::<f32>(), 16.0);
        assert_eq!(up[8 * 4 + 4], 1.0);
        assert!(masks.at("missing", [2, 2]).is_none());
    }
}
