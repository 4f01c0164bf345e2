//! Every default of a run, in one place: the three settings of the paper (docs/method.md §2.8)
//! and the knobs a user may change, with the checks that reject a combination before any UNet
//! evaluation.

use serde::{Deserialize, Serialize};

use crate::diffusion::ddim::InversionConvention;

/// The paper's three text settings (docs/method.md §2.8).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Setting {
    /// A normal prompt: two preservation pastes (states 4 and 3), a deterministic final stage.
    #[default]
    Normal,
    /// Attribute editing ("an old person"): one preservation paste, η_final = 0.1.
    Attribute,
    /// Style transfer ("in Van Gogh style"): one preservation paste, η_final = 1.
    Style,
}

impl Setting {
    /// All settings, in the paper's order.
    pub const ALL: [Setting; 3] = [Setting::Normal, Setting::Attribute, Setting::Style];

    /// The name used on the command line and in parameters.
    pub fn name(self) -> &'static str {
        match self {
            Setting::Normal => "normal",
            Setting::Attribute => "attribute",
            Setting::Style => "style",
        }
    }
}

impl std::str::FromStr for Setting {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Setting::ALL
            .into_iter()
            .find(|setting| setting.name() == s)
            .ok_or_else(|| format!("unknown setting {s:?}: use normal, attribute or style"))
    }
}

/// How the cycle's jump picks its level ratio ρ (docs/method.md §2.6, U2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum JumpMode {
    /// As COW's released code: ρ = ᾱ(list[k_s]) / ᾱ(list[k_e]) with both timesteps taken from
    /// the inverse scheduler's list of the chosen convention (ᾱ_701/ᾱ_501 for 10 steps under the
    /// ≥ 0.22 convention: more noise than the sampler's label implies).
    #[default]
    CodeFaithful,
    /// ρ = ā(k_s)/ā(k_e): the jump lands exactly on the level the sampler expects.
    LevelConsistent,
}

/// The negative prompt of COW's cycles (docs/method.md §2.3), exactly as its code spells it.
pub const NEGATIVE_PROMPT: &str =
    "a bad quality and low resolution image,extra fingers,deformed hands";
/// The background guidance's subject prompt ("FACE", docs/method.md §2.3).
pub const BACKGROUND_SUBJECT: &str = "human face";
/// The background guidance's quality prompt ("HQ", docs/method.md §2.3).
pub const BACKGROUND_QUALITY: &str = "a high quality and colorful image";
/// The seed COW's command line uses by default.
pub const DEFAULT_SEED: u64 = 42;
/// The canvas side in pixels (SD-2.1-base's native 512×512).
pub const DEFAULT_CANVAS: usize = 512;

/// Every knob of a COW run, resolved (no "default" placeholders left): what an image's
/// parameters record, so that the image can be reproduced.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunOptions {
    /// The setting these values started from.
    pub setting: Setting,
    /// DDIM inference steps N_s (docs/method.md §1.2).
    pub steps: usize,
    /// The cycle's start state k_s ("700"): ⌊0.7·N_s⌋ by default.
    pub start_state: usize,
    /// The cycle's end state k_e ("500"): ⌊0.5·N_s⌋ by default.
    pub end_state: usize,
    /// Number of cycles C.
    pub cycles: usize,
    /// States after whose final-stage step the condition is pasted again (K_id).
    pub preserve_states: Vec<usize>,
    /// η of the cycles' DDIM steps.
    pub eta_cycle: f64,
    /// η of the final stage's DDIM steps.
    pub eta_final: f64,
    /// Classifier-free guidance scale w of the cycles and the final stage.
    pub guidance: f64,
    /// Guidance scale of the DDIM inversions (COW inverts with CFG too).
    pub inversion_guidance: f64,
    /// The cycles' negative prompt.
    pub negative_prompt: String,
    /// The background guidance's subject prompt (pushed away from outside the condition).
    pub background_subject: String,
    /// The background guidance's quality prompt (pulled towards outside the condition).
    pub background_quality: String,
    /// Which diffusers release's inversion to reproduce.
    pub inversion: InversionChoice,
    /// How the jump's level ratio is chosen.
    pub jump: JumpMode,
    /// Canvas side in pixels (a multiple of 64).
    pub canvas: usize,
}

/// [`InversionConvention`] as it appears in parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum InversionChoice {
    /// diffusers ≥ 0.22.
    #[default]
    #[serde(rename = "diffusers-0.22")]
    Diffusers022,
    /// diffusers 0.19–0.21.
    #[serde(rename = "diffusers-0.19")]
    Diffusers019,
    /// diffusers ≤ 0.18.
    #[serde(rename = "diffusers-0.17")]
    Diffusers017,
}

impl InversionChoice {
    /// The scheduler's convention.
    pub fn convention(self) -> InversionConvention {
        match self {
            InversionChoice::Diffusers022 => InversionConvention::Diffusers022Plus,
            InversionChoice::Diffusers019 => InversionConvention::Diffusers019,
            InversionChoice::Diffusers017 => InversionConvention::Diffusers017,
        }
    }
}

impl RunOptions {
    /// The paper's values for a setting (docs/method.md §2.8), with `steps` inference steps and
    /// the state indices scaled as COW's code scales them.
    pub fn preset(setting: Setting) -> Self {
        Self::preset_with_steps(setting, 10)
    }

    /// [`RunOptions::preset`] for another number of steps: k_s = ⌊0.7·N⌋, k_e = ⌊0.5·N⌋ and the
    /// preservation states ⌊0.4·N⌋ (and ⌊0.3·N⌋ for the normal setting).
    pub fn preset_with_steps(setting: Setting, steps: usize) -> Self {
        let fraction = |f: f64| (f * steps as f64).floor() as usize;
        // At few steps the fractions floor onto each other; the order the run needs is kept
        // (preservation below the cycle end, the end below the start), and a preservation
        // state with no room below the end is dropped.
        let start_state = fraction(0.7);
        let end_state = fraction(0.5).min(start_state.saturating_sub(1));
        let preserve = |fractions: &[f64]| -> Vec<usize> {
            let mut states: Vec<usize> = fractions
                .iter()
                .filter(|_| end_state > 0)
                .map(|&f| fraction(f).min(end_state - 1))
                .collect();
            states.dedup();
            states
        };
        let (preserve_states, eta_final) = match setting {
            Setting::Normal => (preserve(&[0.4, 0.3]), 0.0),
            Setting::Attribute => (preserve(&[0.4]), 0.1),
            Setting::Style => (preserve(&[0.4]), 1.0),
        };
        RunOptions {
            setting,
            steps,
            start_state,
            end_state,
            cycles: 10,
            preserve_states,
            eta_cycle: 1.0,
            eta_final,
            guidance: 7.5,
            inversion_guidance: 7.5,
            negative_prompt: NEGATIVE_PROMPT.to_string(),
            background_subject: BACKGROUND_SUBJECT.to_string(),
            background_quality: BACKGROUND_QUALITY.to_string(),
            inversion: InversionChoice::default(),
            jump: JumpMode::default(),
            canvas: DEFAULT_CANVAS,
        }
    }

    /// Rejects combinations that cannot run or would silently do something else than asked.
    pub fn validate(&self) -> Result<(), OptionsError> {
        use OptionsError as E;
        if self.steps == 0 || self.steps > 1000 {
            return Err(E::Steps(self.steps));
        }
        if self.start_state > self.steps {
            return Err(E::StartBeyondSteps {
                start: self.start_state,
                steps: self.steps,
            });
        }
        if self.end_state >= self.start_state {
            return Err(E::EndNotBelowStart {
                end: self.end_state,
                start: self.start_state,
            });
        }
        if self.jump == JumpMode::CodeFaithful && self.start_state >= self.steps {
            // The code reads the inverse scheduler's list at index k_s, which has N entries.
            return Err(E::CodeFaithfulJumpNeedsRoom {
                start: self.start_state,
                steps: self.steps,
            });
        }
        if self.cycles == 0 {
            return Err(E::NoCycles);
        }
        if let Some(&state) = self.preserve_states.iter().find(|&&k| k >= self.end_state) {
            return Err(E::PreservationNeverFires {
                state,
                end: self.end_state,
            });
        }
        for (name, eta) in [("eta-cycle", self.eta_cycle), ("eta-final", self.eta_final)] {
            if !(0.0..=1.0).contains(&eta) {
                return Err(E::Eta { name, eta });
            }
        }
        for (name, w) in [
            ("guidance", self.guidance),
            ("inversion-guidance", self.inversion_guidance),
        ] {
            if !w.is_finite() || w < 0.0 {
                return Err(E::Guidance { name, value: w });
            }
        }
        if self.canvas == 0 || self.canvas % 64 != 0 || self.canvas > 2048 {
            return Err(E::Canvas(self.canvas));
        }
        Ok(())
    }

    /// UNet evaluations of a run with `conditions` visual conditions: the inversions of every
    /// crop to k_s and of the canvas to k_e, two per cycle step, and the final stage
    /// (docs/method.md §2.9: 37 for one condition and the defaults).
    pub fn unet_evaluations(&self, conditions: usize) -> usize {
        conditions * self.start_state
            + self.end_state
            + self.cycles * (self.start_state - self.end_state)
            + self.end_state
    }
}

/// A run configuration that is rejected before any work starts.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum OptionsError {
    /// Steps outside 1..=1000.
    #[error("{0} steps: use 1 to 1000 inference steps")]
    Steps(usize),
    /// k_s beyond the last state.
    #[error("the cycle start state {start} is beyond the last state {steps} of {steps} steps")]
    StartBeyondSteps {
        /// k_s.
        start: usize,
        /// N_s.
        steps: usize,
    },
    /// k_e ≥ k_s.
    #[error("the cycle end state {end} must be below the start state {start} (k_e < k_s)")]
    EndNotBelowStart {
        /// k_e.
        end: usize,
        /// k_s.
        start: usize,
    },
    /// The code-faithful jump reads one timestep past k_s.
    #[error(
        "the code-faithful jump needs a start state below the step count ({start} of {steps} steps); use --jump level-consistent or a lower start state"
    )]
    CodeFaithfulJumpNeedsRoom {
        /// k_s.
        start: usize,
        /// N_s.
        steps: usize,
    },
    /// C = 0.
    #[error("at least one cycle is needed")]
    NoCycles,
    /// A preservation state the final stage never reaches.
    #[error(
        "preservation state {state} can never fire: the final stage only visits states below the cycle end state {end}"
    )]
    PreservationNeverFires {
        /// The state asked for.
        state: usize,
        /// k_e.
        end: usize,
    },
    /// η outside [0, 1].
    #[error("{name} = {eta} is outside 0..1")]
    Eta {
        /// Which η.
        name: &'static str,
        /// Its value.
        eta: f64,
    },
    /// A guidance scale that is negative or not a number.
    #[error("{name} = {value} must be a finite number ≥ 0")]
    Guidance {
        /// Which scale.
        name: &'static str,
        /// Its value.
        value: f64,
    },
    /// A canvas side that is not a multiple of 64 in 64..=2048.
    #[error("canvas side {0} must be a multiple of 64 between 64 and 2048")]
    Canvas(usize),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_paper_table() {
        let normal = RunOptions::preset(Setting::Normal);
        assert_eq!(
            (normal.start_state, normal.end_state, normal.cycles),
            (7, 5, 10)
        );
        assert_eq!(normal.preserve_states, vec![4, 3]);
        assert_eq!((normal.eta_final, normal.eta_cycle), (0.0, 1.0));
        let attribute = RunOptions::preset(Setting::Attribute);
        assert_eq!(attribute.preserve_states, vec![4]);
        assert_eq!(attribute.eta_final, 0.1);
        let style = RunOptions::preset(Setting::Style);
        assert_eq!(style.eta_final, 1.0);
        for setting in Setting::ALL {
            RunOptions::preset(setting).validate().unwrap();
            assert_eq!(RunOptions::preset(setting).unet_evaluations(1), 37);
        }
    }

    #[test]
    fn presets_for_any_step_count_from_three_can_run() {
        // The app's and the CLI's step field rescales the preset: it must never produce options
        // that the run then refuses.
        for steps in 3..=100 {
            for setting in Setting::ALL {
                let options = RunOptions::preset_with_steps(setting, steps);
                assert!(
                    options.validate().is_ok(),
                    "{setting:?} with {steps} steps: {:?}",
                    options.validate()
                );
            }
        }
    }

    #[test]
    fn invalid_combinations_are_rejected() {
        let base = RunOptions::preset(Setting::Normal);
        let with = |f: &dyn Fn(&mut RunOptions)| {
            let mut o = base.clone();
            f(&mut o);
            o.validate().unwrap_err()
        };
        assert!(matches!(
            with(&|o| o.end_state = 7),
            OptionsError::EndNotBelowStart { .. }
        ));
        // Table IV's (500 300) with K_id = [4]: the paste could never happen.
        assert!(matches!(
            with(&|o| {
                o.start_state = 5;
                o.end_state = 3;
                o.preserve_states = vec![4];
            }),
            OptionsError::PreservationNeverFires { state: 4, end: 3 }
        ));
        assert!(matches!(
            with(&|o| o.start_state = 10),
            OptionsError::CodeFaithfulJumpNeedsRoom { .. }
        ));
        assert!(matches!(
            with(&|o| o.eta_final = 1.5),
            OptionsError::Eta { .. }
        ));
        assert!(matches!(
            with(&|o| o.canvas = 500),
            OptionsError::Canvas(500)
        ));
        assert!(matches!(with(&|o| o.cycles = 0), OptionsError::NoCycles));
        assert_eq!("style".parse::<Setting>(), Ok(Setting::Style));
        assert!("fancy".parse::<Setting>().is_err());
    }

    #[test]
    fn options_round_trip_through_json() {
        let options = RunOptions::preset(Setting::Attribute);
        let json = serde_json::to_string(&options).unwrap();
        assert!(json.contains("\"diffusers-0.22\""));
        assert_eq!(serde_json::from_str::<RunOptions>(&json).unwrap(), options);
    }
}
