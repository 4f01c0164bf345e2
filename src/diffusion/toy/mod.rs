//! The "diffusion in diffusion" toy experiment (docs/method.md §4.1), the paper's way of showing
//! how information spreads inside a diffusion model: a white and a gray image are inverted, their
//! latents merged half and half at each state k, and the merge denoised back to an image. Merged
//! near the image (k = 0) the halves stay apart; merged near the noise (k = N) they blend. The
//! attention variants then show that self-attention carries this spread: more attention from one
//! quadrant to another pulls its colour across; less keeps it apart even when merged at N.
//!
//! Like a COW run this is a state machine: each [`ToyRun::step`] is one VAE pass or one UNet
//! evaluation (every layout of a variant in one batch), so the app can show progress, fill the
//! grid as frames arrive, and stay responsive.

pub mod hook;
pub mod layout;
pub mod report;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use self::hook::{QuadrantHook, ToyVariant};
use self::layout::{Layout, Quadrant};
use crate::diffusion::ddim::{Ddim, InversionConvention, InversionStep, StepCountError};
use crate::model::config::SchedulerConfig;
use crate::model::hook::AttentionHook;
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::pace::Pacer;

/// The experiment's settings (docs/method.md §4.1; the paper leaves them open, these are ours).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ToyOptions {
    /// DDIM steps N: merge states run 0..=N.
    pub steps: usize,
    /// Image side in pixels (a multiple of 64).
    pub canvas: usize,
    /// The attention variants' strength w.
    pub strength: f64,
    /// Which layouts, each a batch entry.
    pub layouts: Vec<Layout>,
    /// Which experiments, in order.
    pub variants: Vec<ToyVariant>,
}

impl Default for ToyOptions {
    fn default() -> Self {
        ToyOptions {
            steps: 10,
            canvas: 512,
            strength: 1.0,
            layouts: vec![Layout::WhiteTop],
            variants: ToyVariant::ALL.to_vec(),
        }
    }
}

/// Settings that cannot run.
#[derive(Debug, PartialEq, thiserror::Error)]
pub enum ToyError {
    /// Empty lists or a bad size.
    #[error("toy experiment: {0}")]
    Options(String),
    /// The schedule rejects the step count.
    #[error(transparent)]
    Steps(#[from] StepCountError),
}

impl ToyOptions {
    /// UNet evaluations of the whole experiment: the inversion, then Σ_k k per variant.
    pub fn unet_evaluations(&self) -> usize {
        self.steps + self.variants.len() * self.steps * (self.steps + 1) / 2
    }

    fn validate(&self) -> Result<(), ToyError> {
        let bad = |m: &str| Err(ToyError::Options(m.to_string()));
        if self.layouts.is_empty() || self.variants.is_empty() {
            return bad("choose at least one layout and one variant");
        }
        if self.canvas == 0 || self.canvas % 64 != 0 {
            return bad("the image side must be a multiple of 64");
        }
        if !(self.strength.is_finite() && self.strength >= 0.0) {
            return bad("the strength must be ≥ 0");
        }
        Ok(())
    }
}

/// Where the experiment is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ToyStage {
    /// Encoding the white and the gray image.
    Encode,
    /// Inverting both from state k to k + 1.
    Invert(usize),
    /// Variant `variant` (index), merged at state `merge`, now denoising from state `at`.
    Denoise {
        /// Index into the options' variants.
        variant: usize,
        /// The merge state.
        merge: usize,
        /// The state the next step leaves.
        at: usize,
    },
    /// Decoding variant `variant`'s merge at state `merge`.
    Decode {
        /// Index into the options' variants.
        variant: usize,
        /// The merge state.
        merge: usize,
    },
    /// Finished.
    Done,
}

/// One row of the experiment's grid: every layout, merged at one state, denoised and decoded.
pub struct ToyFrame {
    /// Which experiment.
    pub variant: ToyVariant,
    /// The merge state k.
    pub merge_state: usize,
    /// The denoised latents `[layouts, 4, side/8, side/8]`.
    pub latents: Tensor<4>,
    /// The decoded images `[layouts, 3, side, side]`, roughly in [−1, 1].
    pub images: Tensor<4>,
    /// Per layout: the mean absolute difference between the two halves (pixel against mirrored
    /// pixel, in [0, 1] units): 0.5 for the untouched white/gray pair, 0 when fully blended.
    pub halves_difference: Tensor<1>,
    /// Per layout: the mean brightness of the upper-right quadrant in [0, 1].
    pub upper_right_brightness: Tensor<1>,
}

/// What one step did.
pub struct ToyProgress {
    /// The stage the next step runs.
    pub next: ToyStage,
    /// UNet evaluations done.
    pub unet_calls: usize,
    /// UNet evaluations in all.
    pub unet_total: usize,
    /// A finished row of the grid, when this step decoded one.
    pub frame: Option<ToyFrame>,
}

/// The experiment over loaded networks.
pub struct ToyRun<'a> {
    unet: &'a UNet,
    vae: &'a Vae,
    ddim: Ddim,
    inversion: Vec<InversionStep>,
    options: ToyOptions,
    device: Device,
    empty: Tensor<3>,
    /// The white (entry 0) and gray (entry 1) latents at every state so far.
    states: Vec<Tensor<4>>,
    /// The white half per layout on the latent grid, `[layouts, 1, h, w]`.
    white: Tensor<4>,
    z: Option<Tensor<4>>,
    stage: ToyStage,
    unet_calls: usize,
    /// Gives the page a turn between UNet blocks (src/pace.rs).
    pacer: Pacer,
}

impl<'a> ToyRun<'a> {
    /// Prepares the experiment; `empty` is the hidden state of the empty prompt `[1, 77, width]`
    /// (the experiment runs unconditionally).
    pub fn new(
        unet: &'a UNet,
        vae: &'a Vae,
        scheduler: &SchedulerConfig,
        options: ToyOptions,
        empty: Tensor<3>,
    ) -> Result<Self, ToyError> {
        options.validate()?;
        let device = empty.device();
        let ddim = Ddim::new(scheduler, options.steps)?;
        let inversion = ddim.inversion_steps(InversionConvention::Diffusers022Plus);
        let side = options.canvas / 8;
        let masks: Vec<f32> = options
            .layouts
            .iter()
            .flat_map(|l| l.white_mask(side).to_f32())
            .collect();
        let white = Tensor::from_data(
            TensorData::new(masks, [options.layouts.len(), 1, side, side]),
            &device,
        );
        Ok(ToyRun {
            unet,
            vae,
            ddim,
            inversion,
            options,
            device,
            empty,
            states: Vec::new(),
            white,
            z: None,
            stage: ToyStage::Encode,
            unet_calls: 0,
            pacer: Pacer::new(),
        })
    }

    /// The stage the next step runs.
    pub fn stage(&self) -> ToyStage {
        self.stage
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.stage == ToyStage::Done
    }

    /// The latent the last step produced (to wait for on the device).
    pub fn latest(&self) -> Option<&Tensor<4>> {
        self.z.as_ref().or(self.states.last())
    }

    /// The options in use.
    pub fn options(&self) -> &ToyOptions {
        &self.options
    }

    /// Runs the next unit of work.
    pub async fn step(&mut self) -> ToyProgress {
        let mut frame = None;
        self.stage = match self.stage {
            ToyStage::Encode => self.encode().await,
            ToyStage::Invert(k) => self.invert(k).await,
            ToyStage::Denoise { variant, merge, at } => self.denoise(variant, merge, at).await,
            ToyStage::Decode { variant, merge } => {
                let (next, decoded) = self.decode(variant, merge).await;
                frame = Some(decoded);
                next
            }
            ToyStage::Done => ToyStage::Done,
        };
        ToyProgress {
            next: self.stage,
            unet_calls: self.unet_calls,
            unet_total: self.options.unet_evaluations(),
            frame,
        }
    }

    /// White (255) and gray (128) images to latents: 0.18215 · posterior mean (no randomness:
    /// the experiment is deterministic from end to end).
    async fn encode(&mut self) -> ToyStage {
        let side = self.options.canvas;
        let plane = |value: f32| vec![value; 3 * side * side];
        let mut pixels = plane(1.0);
        pixels.extend(plane(128.0 / 255.0 * 2.0 - 1.0));
        let images = Tensor::from_data(TensorData::new(pixels, [2, 3, side, side]), &self.device);
        let latents = self
            .vae
            .encode_paced(images, &mut self.pacer)
            .await
            .mean
            .mul_scalar(self.vae.scaling_factor());
        self.states.push(latents);
        ToyStage::Invert(0)
    }

    /// The unconditional noise prediction for a batch.
    async fn eps(&mut self, z: Tensor<4>, t: f64, variant: Option<ToyVariant>) -> Tensor<4> {
        let batch = z.dims()[0];
        let context = Tensor::cat(vec![self.empty.clone(); batch], 0);
        self.unet_calls += 1;
        let hook = match variant {
            Some(v) if v != ToyVariant::Merge => {
                Some(QuadrantHook::new(v, self.options.strength, &self.device))
            }
            _ => None,
        };
        let hook = hook.as_ref().map(|h| h as &dyn AttentionHook);
        self.unet
            .forward_paced(z, t, context, hook, &mut self.pacer)
            .await
    }

    async fn invert(&mut self, k: usize) -> ToyStage {
        let step = self.inversion[k];
        let z = self.states[k].clone();
        let eps = self.eps(z.clone(), step.unet_timestep as f64, None).await;
        let next = self.ddim.invert_step(eps, &step, z);
        self.states.push(next);
        if k + 1 < self.options.steps {
            ToyStage::Invert(k + 1)
        } else {
            self.merge_stage(0, 0)
        }
    }

    /// z = m ⊙ white⁽ᵏ⁾ + (1 − m) ⊙ gray⁽ᵏ⁾ for every layout.
    fn merge(&self, k: usize) -> Tensor<4> {
        let layouts = self.options.layouts.len();
        let white = self.states[k]
            .clone()
            .narrow(0, 0, 1)
            .repeat_dim(0, layouts);
        let gray = self.states[k]
            .clone()
            .narrow(0, 1, 1)
            .repeat_dim(0, layouts);
        let m = self.white.clone();
        white * m.clone() + gray * m.neg().add_scalar(1.0)
    }

    /// Starts variant `variant`'s merge at state `merge`.
    fn merge_stage(&mut self, variant: usize, merge: usize) -> ToyStage {
        self.z = Some(self.merge(merge));
        if merge == 0 {
            ToyStage::Decode { variant, merge }
        } else {
            ToyStage::Denoise {
                variant,
                merge,
                at: merge,
            }
        }
    }

    /// One deterministic (η = 0) unconditional DDIM step from state `at`.
    async fn denoise(&mut self, variant: usize, merge: usize, at: usize) -> ToyStage {
        let z = self.z.take().expect("a merged latent");
        let t = self.ddim.timesteps()[self.options.steps - at];
        let eps = self
            .eps(z.clone(), t as f64, Some(self.options.variants[variant]))
            .await;
        let z = self
            .ddim
            .step(eps, t, z, 0.0, None)
            .expect("η = 0 needs no noise");
        self.z = Some(z);
        if at > 1 {
            ToyStage::Denoise {
                variant,
                merge,
                at: at - 1,
            }
        } else {
            ToyStage::Decode { variant, merge }
        }
    }

    async fn decode(&mut self, variant: usize, merge: usize) -> (ToyStage, ToyFrame) {
        let z = self.z.take().expect("a denoised latent");
        let latents = z.clone().div_scalar(self.vae.scaling_factor());
        let images = self.vae.decode_paced(latents, &mut self.pacer).await;
        let (halves, upper_right) = measures(&images, &self.options.layouts, &self.device);
        let frame = ToyFrame {
            variant: self.options.variants[variant],
            merge_state: merge,
            latents: z,
            images,
            halves_difference: halves,
            upper_right_brightness: upper_right,
        };
        let next = if merge < self.options.steps {
            self.merge_stage(variant, merge + 1)
        } else if variant + 1 < self.options.variants.len() {
            self.merge_stage(variant + 1, 0)
        } else {
            ToyStage::Done
        };
        (next, frame)
    }
}

/// Per layout: the mean |A − B| between the two halves (B mirrored onto A along the split, in
/// [0, 1] units), and the upper-right quadrant's mean brightness. On the device.
fn measures(images: &Tensor<4>, layouts: &[Layout], device: &Device) -> (Tensor<1>, Tensor<1>) {
    let [_, _, h, w] = images.dims();
    let unit = images
        .clone()
        .add_scalar(1.0)
        .div_scalar(2.0)
        .clamp(0.0, 1.0);
    let halves: Vec<Tensor<1>> = layouts
        .iter()
        .enumerate()
        .map(|(i, layout)| {
            let image = unit.clone().narrow(0, i, 1);
            let axis = match layout {
                Layout::WhiteTop | Layout::GrayTop => 2,
                Layout::WhiteLeft | Layout::GrayLeft => 3,
            };
            let half = if axis == 2 { h / 2 } else { w / 2 };
            let first = image.clone().narrow(axis, 0, half);
            let second = image.narrow(axis, half, half).flip([axis]);
            (first - second).abs().mean().reshape([1])
        })
        .collect();
    let quadrant = Quadrant::UpperRight.mask([h, w]).to_f32();
    let count = quadrant.iter().sum::<f32>() as f64;
    let q = Tensor::<4>::from_data(TensorData::new(quadrant, [1, 1, h, w]), device);
    let per_image = (unit * q).sum_dim(3).sum_dim(2).sum_dim(1);
    let upper_right = per_image.reshape([layouts.len()]).div_scalar(3.0 * count);
    (Tensor::cat(halves, 0), upper_right)
}
