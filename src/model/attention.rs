//! Attention as diffusers' `Attention` computes it, in query chunks so that no buffer grows with
//! N² beyond a byte budget (WebGPU binds at most 128 MiB by default). Each chunk holds its full key rows, so the softmax is exact and stays f32.

use std::ops::Range;

use burn::module::Module;
use burn::tensor::{activation, Tensor};

use super::budget;
use super::hook::{AttentionHook, Entries, LayerInfo};
use super::layers::Linear;
use crate::weights::{WeightError, WeightSource};

/// The default budget for one intermediate buffer: WebGPU's default storage binding limit.
pub const DEFAULT_BUDGET_BYTES: usize = 128 * 1024 * 1024;

/// How many query rows fit the budget when each row costs `row_bytes`. At least one.
pub fn rows_per_chunk(row_bytes: usize, budget_bytes: usize) -> usize {
    (budget_bytes / row_bytes.max(1)).max(1)
}

/// softmax(q·kᵀ·scale)·v over `[batch, heads, tokens, width]`, in chunks of query rows such that
/// a chunk's logits `[batch, heads, rows, keys]` (f32) stay within `budget_bytes`.
pub fn chunked_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f64,
    budget_bytes: usize,
) -> Tensor<4> {
    chunked_attention_hooked(q, k, v, scale, budget_bytes, None)
}

/// A hook and what the layer tells it.
pub type LayerHook<'a> = (&'a dyn AttentionHook, LayerInfo);

/// [`chunked_attention`] with an optional hook: it first observes unmodified logits, then
/// modifies each chunk's logits before the softmax (docs/method.md §3.2).
pub fn chunked_attention_hooked(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    scale: f64,
    budget_bytes: usize,
    hook: Option<LayerHook>,
) -> Tensor<4> {
    let [batch, heads, queries, _] = q.dims();
    let keys = k.dims()[2];
    let rows = rows_per_chunk(batch * heads * keys * 4, budget_bytes).min(queries);
    let k_t = k.swap_dims(2, 3);
    let logits = |entries: Entries, range: Range<usize>| {
        let q = match entries {
            Entries::All => q.clone(),
            Entries::One(i) => q.clone().narrow(0, i, 1),
        };
        let k_t = match entries {
            Entries::All => k_t.clone(),
            Entries::One(i) => k_t.clone().narrow(0, i, 1),
        };
        let logits = q
            .narrow(2, range.start, range.len())
            .matmul(k_t)
            .mul_scalar(scale);
        budget::note(&logits.dims());
        logits
    };
    let observed = hook.and_then(|(hook, layer)| {
        hook.observe(&layer, &|entries: Entries, range: Range<usize>| {
            let count = match entries {
                Entries::All => batch,
                Entries::One(_) => 1,
            };
            assert!(
                range.len() <= layer.rows_per_request(count),
                "a hook asked for {} logit rows of layer {}, over the budget of {}",
                range.len(),
                layer.layer,
                layer.rows_per_request(count)
            );
            logits(entries, range)
        })
    });
    let attend = |range: Range<usize>| {
        let chunk = logits(Entries::All, range.clone());
        let chunk = match hook {
            Some((hook, layer)) => hook.modify(&layer, observed.as_ref(), range, chunk),
            None => chunk,
        };
        activation::softmax(chunk, 3).matmul(v.clone())
    };
    if rows >= queries {
        return attend(0..queries);
    }
    let chunks: Vec<Tensor<4>> = (0..queries)
        .step_by(rows)
        .map(|start| attend(start..(start + rows).min(queries)))
        .collect();
    Tensor::cat(chunks, 2)
}

/// Multi-head attention with diffusers' names: `to_q`, `to_k`, `to_v`, `to_out.0`.
#[derive(Module, Debug)]
pub struct Attention {
    to_q: Linear,
    to_k: Linear,
    to_v: Linear,
    to_out: Linear,
    heads: usize,
    budget_bytes: usize,
}

impl Attention {
    /// Loads one attention layer. `context_dim` is the key/value input width (the query width
    /// for self-attention); `qkv_bias` is false in the UNet and true in the VAE.
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        query_dim: usize,
        context_dim: usize,
        heads: usize,
        qkv_bias: bool,
    ) -> Result<Self, WeightError> {
        Self::load_named(
            loader,
            prefix,
            ["to_q", "to_k", "to_v", "to_out.0"],
            [query_dim, context_dim],
            heads,
            qkv_bias,
        )
    }

    /// Like [`Attention::load`] with other names for the q, k, v and output projections (old
    /// VAE files call them `query`, `key`, `value`, `proj_attn`).
    pub fn load_named<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        names: [&str; 4],
        [query_dim, context_dim]: [usize; 2],
        heads: usize,
        qkv_bias: bool,
    ) -> Result<Self, WeightError> {
        let [q, k, v, out] = names;
        let p = |name: &str| format!("{prefix}.{name}");
        Ok(Attention {
            to_q: Linear::load(loader, &p(q), query_dim, query_dim, qkv_bias)?,
            to_k: Linear::load(loader, &p(k), context_dim, query_dim, qkv_bias)?,
            to_v: Linear::load(loader, &p(v), context_dim, query_dim, qkv_bias)?,
            to_out: Linear::load(loader, &p(out), query_dim, query_dim, true)?,
            heads,
            budget_bytes: DEFAULT_BUDGET_BYTES,
        })
    }

    /// Sets the byte budget of one logits chunk.
    pub fn set_budget(&mut self, bytes: usize) {
        self.budget_bytes = bytes;
    }

    /// Attention heads.
    pub fn heads(&self) -> usize {
        self.heads
    }

    /// `x: [batch, tokens, dim]`, `context: [batch, context_tokens, context_dim]` (None for
    /// self-attention) `-> [batch, tokens, dim]`.
    pub fn forward(&self, x: Tensor<3>, context: Option<Tensor<3>>) -> Tensor<3> {
        self.forward_hooked(x, context, None)
    }

    /// The byte budget of one logits chunk.
    pub fn budget(&self) -> usize {
        self.budget_bytes
    }

    /// [`Attention::forward`] with an optional hook on the logits.
    pub fn forward_hooked(
        &self,
        x: Tensor<3>,
        context: Option<Tensor<3>>,
        hook: Option<LayerHook>,
    ) -> Tensor<3> {
        let [batch, tokens, dim] = x.dims();
        let width = dim / self.heads;
        let context = context.unwrap_or_else(|| x.clone());
        let split = |t: Tensor<3>| {
            let n = t.dims()[1];
            t.reshape([batch, n, self.heads, width]).swap_dims(1, 2)
        };
        let q = split(self.to_q.forward(x));
        let k = split(self.to_k.forward(context.clone()));
        let v = split(self.to_v.forward(context));
        let scale = (width as f64).powf(-0.5);
        let out = chunked_attention_hooked(q, k, v, scale, self.budget_bytes, hook);
        self.to_out
            .forward(out.swap_dims(1, 2).reshape([batch, tokens, dim]))
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution};

    #[test]
    fn chunking_does_not_change_the_result() {
        let device = Device::flex();
        let shape = [2, 3, 37, 8];
        let q = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let v = Tensor::<4>::random(shape, Distribution::Normal(0.0, 1.0), &device);
        let whole = chunked_attention(q.clone(), k.clone(), v.clone(), 0.35, usize::MAX);
        // 5 rows of [2, 3, 37] f32 logits per chunk: 8 chunks, the last one short.
        let chunked = chunked_attention(q, k, v, 0.35, 5 * 2 * 3 * 37 * 4);
        let a = whole.into_data().try_to_vec::<f32>().unwrap();
        let b = chunked.into_data().try_to_vec::<f32>().unwrap();
        assert!(crate::compare::relative_l2(&b, &a) < 1e-6);
    }
}
