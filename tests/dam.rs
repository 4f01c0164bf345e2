//! Dynamic attention modulation on the tiny UNet (flex backend), against a dense host
//! computation of docs/method.md §3.2's formulas in f64: all strengths zero equals no hook
//! exactly; suppress and enhance change exactly the query rows and key columns their masks name,
//! by the formulas, chunked and unchunked; the indicator equals its host computation; an empty
//! related region at a coarse grid closes the gate instead of failing.
#![cfg(not(target_arch = "wasm32"))]

use std::cell::RefCell;
use std::ops::Range;

use burn::tensor::{Device, Distribution, Tensor};
use sow_studio::diffusion::sow::dam::{nearest_fifth, Dam, DamBranches, DamCondition, DamOptions};
use sow_studio::imaging::{GridMask, PixelRect, SquareBox};
use sow_studio::model::config::UNetConfig;
use sow_studio::model::hook::{AttentionHook, Entries, LayerInfo, LogitsFn, Observed};
use sow_studio::model::unet::UNet;
use sow_studio::weights::{MemorySource, TensorLoader};

const CONFIG: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/unet/config.json"
));
const WEIGHTS: &[u8] = include_bytes!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/tiny-sd2/unet/diffusion_pytorch_model.safetensors"
));

/// A 128 px canvas: 16×16 latents, the tiny UNet's grids 16², 8², 4², 2².
const CANVAS: usize = 128;
const CYCLES: usize = 10;
const CYCLE: usize = 3;
const PROMPT: usize = 1;

fn tiny_unet(device: &Device) -> UNet {
    let config = UNetConfig::from_json("unet/config.json", CONFIG).unwrap();
    let mut loader = TensorLoader::open("unet", MemorySource(WEIGHTS), device).unwrap();
    UNet::load(&config, &mut loader).unwrap()
}

/// A condition box at the top (latent rows 0..8, columns 4..12) keeping a disk, and the related
/// region below it (pixel rows 48..128, the whole width).
fn condition(related: PixelRect) -> DamCondition {
    let placement = SquareBox::new(32, 0, 64);
    let keep = GridMask::from_cells(
        8,
        8,
        (0..64)
            .map(|p| {
                let (r, c) = ((p / 8) as f64 - 3.5, (p % 8) as f64 - 3.5);
                r * r + c * c < 12.0
            })
            .collect(),
    )
    .unwrap();
    let related = GridMask::from_rect(&related, CANVAS, CANVAS / 8);
    DamCondition::new(placement, &keep, &related, CANVAS)
}

fn body() -> PixelRect {
    PixelRect {
        x: 0,
        y: 48,
        w: 128,
        h: 80,
    }
}

fn inputs(device: &Device) -> (Tensor<4>, Tensor<3>) {
    let sample = Tensor::<4>::random([4, 4, 16, 16], Distribution::Normal(0.0, 1.0), device);
    let context = Tensor::<3>::random([4, 77, 32], Distribution::Normal(0.0, 1.0), device);
    (sample, context)
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_to_vec::<f32>().unwrap()
}

/// Wraps DAM and records, for one layer, the prompt branch's full unmodified logits (at
/// observe) and every chunk's logits before and after modify.
struct Spy<'a> {
    dam: &'a Dam,
    layer: usize,
    prompt_logits: RefCell<Vec<f32>>,
    chunks: RefCell<Vec<(Range<usize>, [usize; 4], Vec<f32>, Vec<f32>)>>,
}

impl<'a> Spy<'a> {
    fn new(dam: &'a Dam, layer: usize) -> Self {
        Spy {
            dam,
            layer,
            prompt_logits: RefCell::new(Vec::new()),
            chunks: RefCell::new(Vec::new()),
        }
    }
}

impl AttentionHook for Spy<'_> {
    fn observe(&self, layer: &LayerInfo, logits: &LogitsFn) -> Option<Observed> {
        if layer.layer == self.layer {
            let all = logits(Entries::One(PROMPT), 0..layer.tokens());
            *self.prompt_logits.borrow_mut() = values(all);
        }
        self.dam.observe(layer, logits)
    }

    fn modify(
        &self,
        layer: &LayerInfo,
        observed: Option<&Observed>,
        rows: Range<usize>,
        logits: Tensor<4>,
    ) -> Tensor<4> {
        let out = self
            .dam
            .modify(layer, observed, rows.clone(), logits.clone());
        if layer.layer == self.layer {
            let dims = logits.dims();
            self.chunks
                .borrow_mut()
                .push((rows, dims, values(logits), values(out.clone())));
        }
        out
    }
}

/// The masks of one grid, on the host.
struct HostMasks {
    condition: Vec<f64>,
    related: Vec<f64>,
    near: Vec<f64>,
    distance: Vec<f64>,
}

fn host_masks(c: &DamCondition, side: usize) -> HostMasks {
    let condition = c.mask.resample(side, side);
    let related = c.related.resample(side, side).minus(&condition);
    let near = nearest_fifth(&related, c.centre);
    let f = |m: &GridMask| m.to_f32().iter().map(|&v| v as f64).collect::<Vec<_>>();
    let distance = (0..side * side)
        .map(|p| {
            let x = ((p % side) as f64 + 0.5) / side as f64;
            let y = ((p / side) as f64 + 0.5) / side as f64;
            ((x - c.centre.0).powi(2) + (y - c.centre.1).powi(2)).sqrt()
        })
        .collect();
    HostMasks {
        condition: f(&condition),
        related: f(&related),
        near: f(&near),
        distance,
    }
}

/// docs/method.md §3.2 Eq. 7 on the host: I = Σ_near a_p / Σ_related a_p.
fn host_indicator(logits: &[f32], heads: usize, n: usize, masks: &HostMasks) -> f64 {
    let (mut near, mut all) = (0.0, 0.0);
    for p in 0..n {
        let mut a = 0.0;
        for h in 0..heads {
            let row = &logits[(h * n + p) * n..(h * n + p + 1) * n];
            let lo = row.iter().fold(f32::INFINITY, |m, &v| m.min(v)) as f64;
            let hi = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
            for j in 0..n {
                a += masks.condition[j] * (row[j] as f64 - lo) / (hi - lo + 1e-6);
            }
        }
        near += masks.near[p] * a;
        all += masks.related[p] * a;
    }
    near / (all + 1e-12)
}

/// Checks every recorded chunk against the dense formulas; returns the worst absolute error
/// relative to the largest logit, and the number of changed entries.
fn check_chunks(spy: &Spy, options: &DamOptions, masks: &HostMasks, gate: f64) -> (f64, usize) {
    let temporal = (-options.temporal_rate * (CYCLE - 1) as f64 / (CYCLES - 1) as f64).exp();
    let rho = options.spatial_extent;
    let mut worst = 0.0f64;
    let mut changed = 0;
    let mut covered = 0;
    for (rows, [batch, heads, r, n], input, output) in spy.chunks.borrow().iter() {
        covered += r;
        let scale = input.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        for b in 0..*batch {
            let branch_on = options.branches == DamBranches::All || b == PROMPT;
            for h in 0..*heads {
                for i in 0..*r {
                    let p = rows.start + i;
                    let at = ((b * heads + h) * r + i) * n;
                    let row = &input[at..at + n];
                    let lo = row.iter().fold(f32::INFINITY, |m, &v| m.min(v)) as f64;
                    let hi = row.iter().fold(f32::NEG_INFINITY, |m, &v| m.max(v)) as f64;
                    let spatial = (-masks.distance[p].powi(2) / (2.0 * rho * rho)).exp();
                    for j in 0..*n {
                        let s = row[j] as f64;
                        let on = |used: bool| if used { 1.0 } else { 0.0 };
                        let suppress = on(options.use_suppress)
                            * masks.condition[p]
                            * (1.0 - masks.condition[j]);
                        let enhance =
                            on(options.use_enhance) * masks.related[p] * masks.condition[j];
                        let mut expected = s;
                        if branch_on {
                            expected -= options.suppress * suppress * (s - lo);
                            expected +=
                                options.enhance * gate * temporal * spatial * enhance * (hi - s);
                        }
                        let got = output[at + j];
                        if suppress == 0.0 && enhance == 0.0 || !branch_on {
                            assert_eq!(got, row[j], "unmasked entry changed at p {p}, j {j}");
                        } else if got != row[j] {
                            changed += 1;
                        }
                        worst = worst.max((got as f64 - expected).abs() / scale);
                    }
                }
            }
        }
    }
    assert_eq!(
        covered,
        masks.condition.len(),
        "every query row modified once"
    );
    (worst, changed)
}

#[test]
fn zero_strengths_equal_no_hook_exactly() {
    let device = Device::flex();
    let unet = tiny_unet(&device);
    let (sample, context) = inputs(&device);
    let plain = values(unet.forward(sample.clone(), 601.0, context.clone()));
    let dam = Dam::new(
        DamOptions::off(),
        vec![condition(body())],
        CYCLES,
        PROMPT,
        &device,
    )
    .unwrap();
    dam.set_cycle(CYCLE);
    let hooked = values(unet.forward_hooked(sample.clone(), 601.0, context.clone(), Some(&dam)));
    assert_eq!(
        hooked, plain,
        "DAM with all strengths zero changed the output"
    );
    let on = Dam::new(
        DamOptions::default(),
        vec![condition(body())],
        CYCLES,
        PROMPT,
        &device,
    )
    .unwrap();
    let modulated = values(unet.forward_hooked(sample, 601.0, context, Some(&on)));
    let diff = sow_studio::compare::relative_l2(&modulated, &plain);
    assert!(
        diff > 1e-4,
        "DAM at its defaults changed nothing ({diff:e})"
    );
}

/// One layer's modification against the dense formulas, for some options and budget.
fn dense_check(options: DamOptions, layer: usize, budget: Option<usize>) -> (f64, usize, f64) {
    let device = Device::flex();
    let mut unet = tiny_unet(&device);
    if let Some(bytes) = budget {
        unet.set_attention_budget(bytes);
    }
    let (sample, context) = inputs(&device);
    let cond = condition(body());
    let dam = Dam::new(options.clone(), vec![cond.clone()], CYCLES, PROMPT, &device).unwrap();
    dam.set_cycle(CYCLE);
    dam.record_indicators();
    let spy = Spy::new(&dam, layer);
    let _ = unet.forward_hooked(sample, 601.0, context, Some(&spy));
    let chunks = spy.chunks.borrow();
    let [_, heads, _, n] = chunks[0].1;
    let side = (n as f64).sqrt() as usize;
    let masks = host_masks(&cond, side);
    let indicator = host_indicator(&spy.prompt_logits.borrow(), heads, n, &masks);
    let recorded = dam
        .recorded_indicators()
        .into_iter()
        .find(|(l, c, _)| *l == layer && *c == 0)
        .map(|(_, _, t)| values(t)[0] as f64);
    let gate = if options.use_indicator {
        let tau = options.threshold;
        ((indicator - tau) / (1.0 - tau)).clamp(0.0, 1.0)
    } else {
        1.0
    };
    drop(chunks);
    let (worst, changed) = check_chunks(&spy, &options, &masks, gate);
    if options.use_indicator && options.use_enhance {
        let recorded = recorded.expect("the indicator was recorded");
        assert!(
            (recorded - indicator).abs() < 1e-5,
            "layer {layer}: indicator {recorded} on the device, {indicator} on the host"
        );
    }
    (worst, changed, indicator)
}

#[test]
fn suppress_and_enhance_follow_the_formulas_chunked_and_unchunked() {
    // Suppress alone, enhance alone (gate forced open), and both with the indicator, on the
    // 16² layer (2 heads) and an 8² layer (4 heads); whole rows at once and in small chunks.
    let suppress_only = DamOptions {
        use_enhance: false,
        ..DamOptions::default()
    };
    let enhance_only = DamOptions {
        use_suppress: false,
        use_indicator: false,
        enhance: 2.0,
        ..DamOptions::default()
    };
    let both = DamOptions {
        threshold: 0.05,
        ..DamOptions::default()
    };
    let prompt_only = DamOptions {
        branches: DamBranches::PromptOnly,
        use_indicator: false,
        ..DamOptions::default()
    };
    for (name, options) in [
        ("suppress", suppress_only),
        ("enhance", enhance_only),
        ("both", both),
        ("prompt only", prompt_only),
    ] {
        for layer in [0, 2] {
            // 4 batch entries × heads × 256 keys × 4 bytes per row: 40 rows per chunk.
            for budget in [None, Some(40 * 4 * 4 * 256 * 4)] {
                let (worst, changed, indicator) = dense_check(options.clone(), layer, budget);
                println!(
                    "{name}, layer {layer}, budget {budget:?}: worst error {worst:.2e}, {changed} logits changed, I = {indicator:.4}"
                );
                assert!(worst < 1e-5, "{name}: error {worst:e} against the formulas");
                assert!(changed > 0, "{name}: nothing changed");
            }
        }
    }
}

#[test]
fn an_empty_related_region_at_a_coarse_grid_closes_the_gate() {
    // Only the bottom latent row is related: at 8×8 nearest resampling reads rows 0, 2, …, 14,
    // so the region vanishes there.
    let device = Device::flex();
    let unet = tiny_unet(&device);
    let (sample, context) = inputs(&device);
    let bottom = PixelRect {
        x: 0,
        y: 120,
        w: 128,
        h: 8,
    };
    let cond = condition(bottom);
    assert_eq!(cond.related.resample(8, 8).count(), 0);
    let options = DamOptions {
        use_suppress: false,
        ..DamOptions::default()
    };
    let dam = Dam::new(options.clone(), vec![cond.clone()], CYCLES, PROMPT, &device).unwrap();
    dam.set_cycle(CYCLE);
    let spy = Spy::new(&dam, 2);
    let out = values(unet.forward_hooked(sample, 601.0, context, Some(&spy)));
    assert!(out.iter().all(|v| v.is_finite()));
    for (_, _, input, output) in spy.chunks.borrow().iter() {
        assert_eq!(
            input, output,
            "nothing to enhance at 8×8, yet the logits changed"
        );
    }
}
