//! Cyclic and Selective One-Way Diffusion (docs/method.md): the run as a state machine, its
//! presets, masks and pastes, the random draws, the attention modulation, and the planner.

pub mod dam;
pub mod latents;
pub mod noise;
pub mod planner;
pub mod presets;
pub mod preview;
pub mod run;

pub use noise::{Draws, NoiseSource};
pub use presets::{JumpMode, RunOptions, Setting};
pub use run::{ConditionInput, CowRun, Progress, RunError, RunOutput, Stage, TextConditions};
