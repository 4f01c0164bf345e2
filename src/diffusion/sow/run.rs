//! A COW run as an explicit state machine (docs/method.md §2.10): each [`CowRun::step`] does one
//! unit of work — one VAE encoding, one UNet evaluation with the DDIM update and pastes around
//! it, or the final decoding — and says where the run is. The driver above (the pipeline)
//! decides what happens between steps: a progress bar, a preview, yielding to the browser,
//! cancelling. Nothing is read back to the host here.

use burn::tensor::{Device, Tensor};

use super::latents::{guided, mask_tensor, masked_guided, paste, repeat, LatentCondition};
use super::noise::{DrawPurpose, Draws, NoiseError};
use super::presets::{JumpMode, OptionsError, RunOptions};
use crate::diffusion::ddim::{Ddim, InversionStep, MissingNoise};
use crate::imaging::{GeometryError, GridMask, SquareBox};
use crate::model::config::SchedulerConfig;
use crate::model::hook::AttentionHook;
use crate::model::unet::UNet;
use crate::model::vae::Vae;
use crate::pace::Pacer;

/// The most visual conditions one run takes.
pub const MAX_CONDITIONS: usize = 8;

/// One visual condition, ready for the VAE.
pub struct ConditionInput {
    /// The crop: condition pixels, gray elsewhere, `[1, 3, side, side]` in [−1, 1].
    pub crop: Tensor<4>,
    /// The latent crop mask (side/8 × side/8), true where the condition is kept.
    pub keep: GridMask,
    /// Where the crop sits on the canvas, in pixels.
    pub placement: SquareBox,
}

/// The prompts' hidden states, each `[1, 77, width]`, on the run's device.
pub struct TextConditions {
    /// The (intensified) prompt P.
    pub prompt: Tensor<3>,
    /// The empty prompt "" (the unconditional branch of inversion and the final stage).
    pub empty: Tensor<3>,
    /// The cycles' negative prompt.
    pub negative: Tensor<3>,
    /// The background guidance's subject prompt.
    pub background_subject: Tensor<3>,
    /// The background guidance's quality prompt.
    pub background_quality: Tensor<3>,
}

/// Where a run is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Encoding condition `i`'s crop with the VAE.
    EncodeCondition(usize),
    /// Encoding the canvas with the VAE.
    EncodeCanvas,
    /// Inverting condition `condition` from state `k` to `k + 1`.
    InvertCondition {
        /// Which condition.
        condition: usize,
        /// The state left.
        k: usize,
    },
    /// Inverting the canvas from state `k` to `k + 1`.
    InvertCanvas {
        /// The state left.
        k: usize,
    },
    /// Cycle `n` (1-based), step from state `k` to `k − 1`.
    Cycle {
        /// Cycle index n.
        n: usize,
        /// The state left.
        k: usize,
    },
    /// Final stage, step from state `k` to `k − 1`.
    Final {
        /// The state left.
        k: usize,
    },
    /// Decoding the final latent.
    Decode,
    /// Finished.
    Done,
}

impl Stage {
    /// A short description for progress displays.
    pub fn describe(&self, options: &RunOptions) -> String {
        match *self {
            Stage::EncodeCondition(i) => format!("encoding condition {}", i + 1),
            Stage::EncodeCanvas => "encoding the canvas".into(),
            Stage::InvertCondition { condition, k } => format!(
                "inverting condition {}: state {} of {}",
                condition + 1,
                k + 1,
                options.start_state
            ),
            Stage::InvertCanvas { k } => {
                format!(
                    "inverting the canvas: state {} of {}",
                    k + 1,
                    options.end_state
                )
            }
            Stage::Cycle { n, k } => {
                format!("cycle {n} of {}: state {k} → {}", options.cycles, k - 1)
            }
            Stage::Final { k } => format!("final stage: state {k} → {}", k - 1),
            Stage::Decode => "decoding".into(),
            Stage::Done => "done".into(),
        }
    }
}

/// What one step did.
#[derive(Clone, Debug)]
pub struct Progress {
    /// The stage just completed.
    pub completed: Stage,
    /// The stage the next step will run.
    pub next: Stage,
    /// UNet evaluations done so far.
    pub unet_calls: usize,
    /// UNet evaluations the whole run takes.
    pub unet_total: usize,
    /// The canvas latent after this step, when there is one (for a cheap preview).
    pub latent: Option<Tensor<4>>,
}

/// What a finished run gives back, still on the device.
pub struct RunOutput {
    /// The decoded image `[1, 3, canvas, canvas]`, roughly in [−1, 1].
    pub image: Tensor<4>,
    /// The final latent z⁽⁰⁾ `[1, 4, canvas/8, canvas/8]`.
    pub final_latent: Tensor<4>,
    /// The states recorded on request (`crop_state.<k>`, `cycle.<n>`), in order.
    pub recorded: Vec<(String, Tensor<4>)>,
    /// How many random draws the run took.
    pub draws: usize,
}

/// Anything that stops a run.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The options are inconsistent.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// A box does not fit.
    #[error("condition {index}: {source}")]
    Geometry {
        /// Which condition (1-based).
        index: usize,
        /// What is wrong.
        source: GeometryError,
    },
    /// No or too many conditions.
    #[error("a run takes 1 to {MAX_CONDITIONS} visual conditions, not {0}")]
    ConditionCount(usize),
    /// A condition's tensors do not match its box.
    #[error("condition {index}: {detail}")]
    ConditionShape {
        /// Which condition (1-based).
        index: usize,
        /// What is wrong.
        detail: String,
    },
    /// A given noise list does not fit the run.
    #[error(transparent)]
    Noise(#[from] NoiseError),
    /// The schedule rejects the step count.
    #[error(transparent)]
    Schedule(#[from] crate::diffusion::ddim::StepCountError),
    /// A stochastic step had no noise (an internal error: the run draws before every one).
    #[error(transparent)]
    MissingNoise(#[from] MissingNoise),
    /// `finish` was called before the run was done.
    #[error("the run is not finished (next: {0:?})")]
    NotFinished(Stage),
}

/// A hook on the UNet's self-attention during the cycles (SOW's attention modulation,
/// docs/method.md §3.2). The cycles' batch is laid out as [`CYCLE_BRANCHES`].
pub trait CycleHook {
    /// The attention hook for cycle `n`'s (1-based) evaluations; None for none.
    fn for_cycle(&self, n: usize) -> Option<&dyn AttentionHook>;
}

/// The branch layout of a cycle evaluation (docs/method.md §2.6.3).
pub const CYCLE_BRANCHES: [&str; 4] = ["negative", "prompt", "subject", "quality"];

/// One COW run over loaded networks.
pub struct CowRun<'a> {
    unet: &'a UNet,
    vae: &'a Vae,
    ddim: Ddim,
    inversion: Vec<InversionStep>,
    options: RunOptions,
    device: Device,
    pair_context: Tensor<3>,
    cycle_context: Tensor<3>,
    inputs: Vec<ConditionInput>,
    canvas_pixels: Option<Tensor<4>>,
    conditions: Vec<LatentCondition>,
    union_mask: Tensor<4>,
    draws: Draws,
    stage: Stage,
    z: Option<Tensor<4>>,
    image: Option<Tensor<4>>,
    unet_calls: usize,
    unet_total: usize,
    record: bool,
    recorded: Vec<(String, Tensor<4>)>,
    hook: Option<&'a dyn CycleHook>,
    /// Gives the page a turn between UNet blocks (src/pace.rs).
    pacer: Pacer,
}

impl<'a> CowRun<'a> {
    /// Checks everything that can be checked before any network runs, and prepares the run.
    /// `canvas_pixels` is the gray canvas with every crop pasted, `[1, 3, N, N]` in [−1, 1].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        unet: &'a UNet,
        vae: &'a Vae,
        scheduler: &SchedulerConfig,
        options: RunOptions,
        texts: TextConditions,
        inputs: Vec<ConditionInput>,
        canvas_pixels: Tensor<4>,
        draws: Draws,
    ) -> Result<Self, RunError> {
        options.validate()?;
        if inputs.is_empty() || inputs.len() > MAX_CONDITIONS {
            return Err(RunError::ConditionCount(inputs.len()));
        }
        let canvas = options.canvas;
        for (i, input) in inputs.iter().enumerate() {
            let index = i + 1;
            input
                .placement
                .validate(canvas)
                .map_err(|source| RunError::Geometry { index, source })?;
            let side = input.placement.side;
            if input.crop.dims() != [1, 3, side, side] {
                return Err(RunError::ConditionShape {
                    index,
                    detail: format!(
                        "the crop is {:?}, the box needs [1, 3, {side}, {side}]",
                        input.crop.dims()
                    ),
                });
            }
            if input.keep.size() != [side / 8, side / 8] {
                return Err(RunError::ConditionShape {
                    index,
                    detail: format!("the latent mask is {:?} cells", input.keep.size()),
                });
            }
        }
        if canvas_pixels.dims() != [1, 3, canvas, canvas] {
            return Err(RunError::ConditionShape {
                index: 0,
                detail: format!("the canvas is {:?}, not {canvas}²", canvas_pixels.dims()),
            });
        }
        let device = canvas_pixels.device();
        let ddim = Ddim::new(scheduler, options.steps)?;
        let inversion = ddim.inversion_steps(options.inversion.convention());
        let latent = canvas / 8;
        let mut union = GridMask::new(latent, latent);
        for input in &inputs {
            let (row, col, _) = input.placement.latent();
            union.place(&input.keep, row, col);
        }
        let union_mask = mask_tensor(&union, &device);
        let pair_context = Tensor::cat(vec![texts.empty.clone(), texts.prompt.clone()], 0);
        let cycle_context = Tensor::cat(
            vec![
                texts.negative,
                texts.prompt,
                texts.background_subject,
                texts.background_quality,
            ],
            0,
        );
        let unet_total = options.unet_evaluations(inputs.len());
        Ok(CowRun {
            unet,
            vae,
            ddim,
            inversion,
            options,
            device,
            pair_context,
            cycle_context,
            inputs,
            canvas_pixels: Some(canvas_pixels),
            conditions: Vec::new(),
            union_mask,
            draws,
            stage: Stage::EncodeCondition(0),
            z: None,
            image: None,
            unet_calls: 0,
            unet_total,
            record: false,
            recorded: Vec::new(),
            hook: None,
            pacer: Pacer::new(),
        })
    }

    /// Keeps the per-stage states (`crop_state.<k>` of the first condition, `cycle.<n>`) for
    /// [`RunOutput::recorded`].
    pub fn record_states(mut self, record: bool) -> Self {
        self.record = record;
        self
    }

    /// Uses an attention hook during the cycles (SOW's modulation).
    pub fn with_cycle_hook(mut self, hook: &'a dyn CycleHook) -> Self {
        self.hook = Some(hook);
        self
    }

    /// The options this run uses.
    pub fn options(&self) -> &RunOptions {
        &self.options
    }

    /// The stage the next step runs.
    pub fn stage(&self) -> Stage {
        self.stage
    }

    /// UNet evaluations the whole run takes.
    pub fn unet_total(&self) -> usize {
        self.unet_total
    }

    /// Whether every step has run.
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// Runs the next unit of work.
    pub async fn step(&mut self) -> Result<Progress, RunError> {
        let completed = self.stage;
        let next = match completed {
            Stage::EncodeCondition(i) => self.encode_condition(i).await?,
            Stage::EncodeCanvas => self.encode_canvas().await?,
            Stage::InvertCondition { condition, k } => self.invert_condition(condition, k).await,
            Stage::InvertCanvas { k } => self.invert_canvas(k).await,
            Stage::Cycle { n, k } => self.cycle_step(n, k).await?,
            Stage::Final { k } => self.final_step(k).await?,
            Stage::Decode => self.decode().await,
            Stage::Done => Stage::Done,
        };
        self.stage = next;
        Ok(Progress {
            completed,
            next,
            unet_calls: self.unet_calls,
            unet_total: self.unet_total,
            latent: self.z.clone(),
        })
    }

    /// The result, once every step has run.
    pub fn finish(self) -> Result<RunOutput, RunError> {
        let (z, image) = match (self.stage, self.z, self.image) {
            (Stage::Done, Some(z), Some(image)) => (z, image),
            (stage, _, _) => return Err(RunError::NotFinished(stage)),
        };
        self.draws.finish()?;
        Ok(RunOutput {
            image,
            final_latent: z,
            recorded: self.recorded,
            draws: self.draws.taken(),
        })
    }

    /// 0.18215 · a posterior sample of `pixels` (docs/method.md §2.2).
    async fn encode(
        &mut self,
        pixels: Tensor<4>,
        purpose: DrawPurpose,
    ) -> Result<Tensor<4>, RunError> {
        let posterior = self.vae.encode_paced(pixels, &mut self.pacer).await;
        let noise = self
            .draws
            .next(posterior.mean.dims(), purpose, &self.device)?;
        Ok(posterior
            .sample(noise)
            .mul_scalar(self.vae.scaling_factor()))
    }

    async fn encode_condition(&mut self, i: usize) -> Result<Stage, RunError> {
        let crop = self.inputs[i].crop.clone();
        let v0 = self.encode(crop, DrawPurpose::CropPosterior(i)).await?;
        let channels = v0.dims()[1];
        let input = &self.inputs[i];
        let mut condition =
            LatentCondition::new(&input.placement, &input.keep, channels, &self.device);
        self.note(|| "crop_state.0".into(), &v0, i == 0);
        condition.states.push(v0);
        self.conditions.push(condition);
        Ok(if i + 1 < self.inputs.len() {
            Stage::EncodeCondition(i + 1)
        } else {
            Stage::EncodeCanvas
        })
    }

    async fn encode_canvas(&mut self) -> Result<Stage, RunError> {
        let pixels = self
            .canvas_pixels
            .take()
            .expect("the canvas is encoded once");
        let c0 = self.encode(pixels, DrawPurpose::CanvasPosterior).await?;
        self.note(|| "canvas_state.0".into(), &c0, true);
        self.z = Some(c0);
        Ok(Stage::InvertCondition { condition: 0, k: 0 })
    }

    /// One CFG inversion step k → k+1 of `z` (docs/method.md §1.5, §2.4).
    async fn invert(&mut self, z: Tensor<4>, k: usize) -> Tensor<4> {
        let step = self.inversion[k];
        let eps = self
            .unet
            .forward_paced(
                repeat(&z, 2),
                step.unet_timestep as f64,
                self.pair_context.clone(),
                None,
                &mut self.pacer,
            )
            .await;
        self.unet_calls += 1;
        let eps = guided(eps, self.options.inversion_guidance);
        self.ddim.invert_step(eps, &step, z)
    }

    async fn invert_condition(&mut self, condition: usize, k: usize) -> Stage {
        let state = self.conditions[condition].states[k].clone();
        let next = self.invert(state, k).await;
        self.note(|| format!("crop_state.{}", k + 1), &next, condition == 0);
        self.conditions[condition].states.push(next);
        if k + 1 < self.options.start_state {
            Stage::InvertCondition {
                condition,
                k: k + 1,
            }
        } else if condition + 1 < self.conditions.len() {
            Stage::InvertCondition {
                condition: condition + 1,
                k: 0,
            }
        } else {
            Stage::InvertCanvas { k: 0 }
        }
    }

    async fn invert_canvas(&mut self, k: usize) -> Stage {
        let z = self.z.take().expect("the canvas latent exists");
        let z = self.invert(z, k).await;
        self.note(|| format!("canvas_state.{}", k + 1), &z, true);
        self.z = Some(z);
        if k + 1 < self.options.end_state {
            Stage::InvertCanvas { k: k + 1 }
        } else {
            Stage::Cycle {
                n: 1,
                k: self.options.start_state,
            }
        }
    }

    /// The UNet timestep of the sampling step from state k (τ_{k−1}, docs/method.md §1.2).
    fn timestep_from(&self, k: usize) -> usize {
        self.ddim.timesteps()[self.options.steps - k]
    }

    /// The jump's level ratio ρ (docs/method.md §2.6.1).
    fn jump_ratio(&self) -> f64 {
        let (ks, ke) = (self.options.start_state, self.options.end_state);
        match self.options.jump {
            JumpMode::CodeFaithful => {
                let level = |k: usize| self.ddim.alpha_at(self.inversion[k].unet_timestep) as f64;
                level(ks) / level(ke)
            }
            JumpMode::LevelConsistent => {
                self.ddim.state_alpha(ks) as f64 / self.ddim.state_alpha(ke) as f64
            }
        }
    }

    async fn cycle_step(&mut self, n: usize, k: usize) -> Result<Stage, RunError> {
        let mut z = self.z.take().expect("the canvas latent exists");
        if k == self.options.start_state {
            let noise = self
                .draws
                .next(z.dims(), DrawPurpose::Jump(n), &self.device)?;
            z = crate::diffusion::ddim::jump_by_ratio(z, noise, self.jump_ratio());
        }
        z = paste(z, &self.conditions, k);
        let t = self.timestep_from(k);
        let batch = repeat(&z, 4);
        let hook = self.hook.and_then(|hook| hook.for_cycle(n));
        let eps = self
            .unet
            .forward_paced(
                batch,
                t as f64,
                self.cycle_context.clone(),
                hook,
                &mut self.pacer,
            )
            .await;
        self.unet_calls += 1;
        let eps = masked_guided(eps, &self.union_mask, self.options.guidance);
        let eta = self.options.eta_cycle;
        let noise = if eta > 0.0 {
            Some(
                self.draws
                    .next(z.dims(), DrawPurpose::CycleStep(n, k), &self.device)?,
            )
        } else {
            None
        };
        z = self.ddim.step(eps, t, z, eta, noise)?;
        let end = self.options.end_state;
        if k - 1 > end {
            self.z = Some(z);
            return Ok(Stage::Cycle { n, k: k - 1 });
        }
        z = paste(z, &self.conditions, end);
        self.note(|| format!("cycle.{n}"), &z, true);
        self.z = Some(z);
        Ok(if n < self.options.cycles {
            Stage::Cycle {
                n: n + 1,
                k: self.options.start_state,
            }
        } else {
            Stage::Final { k: end }
        })
    }

    async fn final_step(&mut self, k: usize) -> Result<Stage, RunError> {
        let z = self.z.take().expect("the canvas latent exists");
        let t = self.timestep_from(k);
        let eps = self
            .unet
            .forward_paced(
                repeat(&z, 2),
                t as f64,
                self.pair_context.clone(),
                None,
                &mut self.pacer,
            )
            .await;
        self.unet_calls += 1;
        let eps = guided(eps, self.options.guidance);
        let eta = self.options.eta_final;
        let noise = if eta > 0.0 {
            Some(
                self.draws
                    .next(z.dims(), DrawPurpose::FinalStep(k), &self.device)?,
            )
        } else {
            None
        };
        let mut z = self.ddim.step(eps, t, z, eta, noise)?;
        if self.options.preserve_states.contains(&(k - 1)) {
            z = paste(z, &self.conditions, k - 1);
        }
        self.z = Some(z);
        Ok(if k > 1 {
            Stage::Final { k: k - 1 }
        } else {
            Stage::Decode
        })
    }

    /// image = VAE.decode(z⁽⁰⁾ / 0.18215) (docs/method.md §2.7).
    async fn decode(&mut self) -> Stage {
        let z = self.z.clone().expect("the final latent exists");
        let latents = z.div_scalar(self.vae.scaling_factor());
        self.image = Some(self.vae.decode_paced(latents, &mut self.pacer).await);
        Stage::Done
    }

    fn note(&mut self, name: impl FnOnce() -> String, z: &Tensor<4>, when: bool) {
        if self.record && when {
            self.recorded.push((name(), z.clone()));
        }
    }
}
