//! diffusers' `Transformer2DModel` with linear projections, as SD-2.x uses it: GroupNorm, a
//! linear projection to tokens, `BasicTransformerBlock`s (self-attention, cross-attention to the
//! text, GEGLU feed-forward, each pre-norm with a residual), and back to a feature map.

use burn::module::Module;
use burn::tensor::{activation, Tensor};

use super::attention::{rows_per_chunk, Attention, DEFAULT_BUDGET_BYTES};
use super::budget;
use super::hook::{AttentionHook, LayerInfo};
use super::layers::{from_tokens, to_tokens, GroupNorm, LayerNorm, Linear};
use crate::weights::{WeightError, WeightSource};

/// The GEGLU feed-forward: `proj` gives [value | gate], out = value·gelu(gate), then `out`.
#[derive(Module, Debug)]
pub struct FeedForward {
    proj: Linear,
    out: Linear,
    inner: usize,
    budget_bytes: usize,
}

impl FeedForward {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        dim: usize,
    ) -> Result<Self, WeightError> {
        let inner = 4 * dim;
        Ok(FeedForward {
            proj: Linear::load(
                loader,
                &format!("{prefix}.net.0.proj"),
                dim,
                2 * inner,
                true,
            )?,
            out: Linear::load(loader, &format!("{prefix}.net.2"), inner, dim, true)?,
            inner,
            budget_bytes: DEFAULT_BUDGET_BYTES,
        })
    }

    /// `[batch, tokens, dim] -> [batch, tokens, dim]`, in token chunks so that the hidden
    /// `[batch, rows, 2·inner]` stays within the budget (160 MiB unchunked at 64² and batch 4).
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [batch, tokens, _] = x.dims();
        let rows = rows_per_chunk(batch * 2 * self.inner * 4, self.budget_bytes).min(tokens);
        let run = |x: Tensor<3>| {
            let hidden = self.proj.forward(x);
            budget::note(&hidden.dims());
            let value = hidden.clone().narrow(2, 0, self.inner);
            let gate = hidden.narrow(2, self.inner, self.inner);
            self.out.forward(value * activation::gelu(gate))
        };
        if rows >= tokens {
            return run(x);
        }
        let chunks = (0..tokens)
            .step_by(rows)
            .map(|start| run(x.clone().narrow(1, start, rows.min(tokens - start))))
            .collect();
        Tensor::cat(chunks, 1)
    }
}

/// One `BasicTransformerBlock`.
#[derive(Module, Debug)]
pub struct TransformerBlock {
    norm1: LayerNorm,
    attn1: Attention,
    norm2: LayerNorm,
    attn2: Attention,
    norm3: LayerNorm,
    ff: FeedForward,
    /// This block's self-attention index among the UNet's, for hooks.
    layer: usize,
}

impl TransformerBlock {
    fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        dim: usize,
        context_dim: usize,
        heads: usize,
        layer: usize,
    ) -> Result<Self, WeightError> {
        let p = |name: &str| format!("{prefix}.{name}");
        Ok(TransformerBlock {
            norm1: LayerNorm::load(loader, &p("norm1"), dim, 1e-5)?,
            attn1: Attention::load(loader, &p("attn1"), dim, dim, heads, false)?,
            norm2: LayerNorm::load(loader, &p("norm2"), dim, 1e-5)?,
            attn2: Attention::load(loader, &p("attn2"), dim, context_dim, heads, false)?,
            norm3: LayerNorm::load(loader, &p("norm3"), dim, 1e-5)?,
            ff: FeedForward::load(loader, &p("ff"), dim)?,
            layer,
        })
    }

    fn forward(
        &self,
        x: Tensor<3>,
        context: &Tensor<3>,
        grid: [usize; 2],
        hook: Option<&dyn AttentionHook>,
    ) -> Tensor<3> {
        let hook = hook.map(|hook| {
            let info = LayerInfo {
                layer: self.layer,
                grid,
                heads: self.attn1.heads(),
                batch: x.dims()[0],
                budget_bytes: self.attn1.budget(),
            };
            (hook, info)
        });
        let x = self
            .attn1
            .forward_hooked(self.norm1.forward(x.clone()), None, hook)
            + x;
        let x = self
            .attn2
            .forward(self.norm2.forward(x.clone()), Some(context.clone()))
            + x;
        self.ff.forward(self.norm3.forward(x.clone())) + x
    }
}

/// A `Transformer2DModel` (linear projection).
#[derive(Module, Debug)]
pub struct SpatialTransformer {
    norm: GroupNorm,
    proj_in: Linear,
    blocks: Vec<TransformerBlock>,
    proj_out: Linear,
}

impl SpatialTransformer {
    /// Loads `{prefix}.{norm,proj_in,transformer_blocks.N,proj_out}`. `first_layer` is the
    /// hook index of the first block's self-attention; the next blocks count on from it.
    #[allow(clippy::too_many_arguments)]
    pub fn load<L: WeightSource>(
        loader: &mut L,
        prefix: &str,
        channels: usize,
        context_dim: usize,
        heads: usize,
        depth: usize,
        groups: usize,
        first_layer: usize,
    ) -> Result<Self, WeightError> {
        Ok(SpatialTransformer {
            // diffusers builds this GroupNorm with eps 1e-6, not the config's norm_eps.
            norm: GroupNorm::load(loader, &format!("{prefix}.norm"), channels, groups, 1e-6)?,
            proj_in: Linear::load(
                loader,
                &format!("{prefix}.proj_in"),
                channels,
                channels,
                true,
            )?,
            blocks: (0..depth)
                .map(|i| {
                    TransformerBlock::load(
                        loader,
                        &format!("{prefix}.transformer_blocks.{i}"),
                        channels,
                        context_dim,
                        heads,
                        first_layer + i,
                    )
                })
                .collect::<Result<_, _>>()?,
            proj_out: Linear::load(
                loader,
                &format!("{prefix}.proj_out"),
                channels,
                channels,
                true,
            )?,
        })
    }

    /// Sets the byte budget of every attention logits chunk in this transformer.
    pub fn set_attention_budget(&mut self, bytes: usize) {
        for block in &mut self.blocks {
            block.attn1.set_budget(bytes);
            block.attn2.set_budget(bytes);
        }
    }

    /// `x: [batch, c, h, w]`, `context: [batch, tokens, context_dim]` `-> [batch, c, h, w]`,
    /// with an optional hook on the self-attention logits.
    pub fn forward(
        &self,
        x: Tensor<4>,
        context: &Tensor<3>,
        hook: Option<&dyn AttentionHook>,
    ) -> Tensor<4> {
        let [_, _, h, w] = x.dims();
        let mut t = self
            .proj_in
            .forward(to_tokens(self.norm.forward(x.clone())));
        for block in &self.blocks {
            t = block.forward(t, context, [h, w], hook);
        }
        from_tokens(self.proj_out.forward(t), [h, w]) + x
    }
}
