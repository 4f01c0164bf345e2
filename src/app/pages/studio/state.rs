//! What the Studio's parts share: the conditions with their boxes, the form's values, the
//! plan, the run's progress and the results. Every field is a signal, so the struct is `Copy`.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use leptos::prelude::*;

use crate::app::files::revoke_url;
use crate::diffusion::sow::dam::DamOptions;
use crate::diffusion::sow::planner::Plan;
use crate::diffusion::sow::presets::DEFAULT_SEED;
use crate::diffusion::sow::{RunOptions, Setting};
use crate::imaging::SquareBox;
use crate::pipeline::conditions::ConditionFiles;
use crate::pipeline::params::{ImageParameters, Method};

/// One visual condition on the page.
#[derive(Clone, Debug)]
pub struct ConditionEntry {
    /// Unique on the page (keys the lists).
    pub id: u32,
    /// Its files.
    pub files: Arc<ConditionFiles>,
    /// A `blob:` URL of the image, for thumbnails.
    pub thumbnail: String,
    /// A `blob:` URL of what a run keeps of it once a mask was painted (see
    /// `mask::kept_picture`), shown in its box on the canvas; empty before.
    pub kept: String,
    /// The image's size in pixels.
    pub size: (usize, usize),
    /// Its box on the canvas.
    pub placement: SquareBox,
    /// Whether the user placed it (then the planner's placement does not replace it).
    pub placed_by_hand: bool,
}

impl ConditionEntry {
    /// Gives the page's memory of its `blob:` URLs back, when it leaves the list.
    pub fn revoke_urls(&self) {
        revoke_url(&self.thumbnail);
        if !self.kept.is_empty() {
            revoke_url(&self.kept);
        }
    }
}

/// Where the run stands.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum RunView {
    /// Nothing running.
    #[default]
    Idle,
    /// Asking the planner.
    Planning(String),
    /// Running: what it does, evaluations done of total, seconds so far and left.
    Running {
        description: String,
        unet_calls: usize,
        unet_total: usize,
        elapsed: f64,
        eta: Option<f64>,
    },
    /// Finished, in words.
    Finished(String),
    /// Cancelled, in words.
    Cancelled(String),
    /// Failed: what went wrong and what to do.
    Failed(String),
}

impl RunView {
    /// Whether a plan or a run is in flight.
    pub fn is_busy(&self) -> bool {
        matches!(self, RunView::Planning(_) | RunView::Running { .. })
    }

    /// A short machine-readable state for `data-state`.
    pub fn state(&self) -> &'static str {
        match self {
            RunView::Idle => "idle",
            RunView::Planning(_) | RunView::Running { .. } => "busy",
            RunView::Finished(_) => "ready",
            RunView::Cancelled(_) => "idle",
            RunView::Failed(_) => "error",
        }
    }
}

/// A finished image.
#[derive(Clone, Debug)]
pub struct ResultEntry {
    /// A `blob:` URL of the PNG (its parameters embedded).
    pub url: String,
    /// The file name offered for download.
    pub file_name: String,
    /// Its parameters.
    pub params: ImageParameters,
}

/// The Studio's state.
#[derive(Clone, Copy)]
pub struct Studio {
    pub conditions: RwSignal<Vec<ConditionEntry>>,
    pub next_id: RwSignal<u32>,
    /// The prompt the user wrote.
    pub prompt: RwSignal<String>,
    pub seed: RwSignal<u64>,
    pub method: RwSignal<Method>,
    /// Every option of the run (its `setting` is the chosen setting).
    pub options: RwSignal<RunOptions>,
    /// The attention modulation's options (SOW).
    pub attention: RwSignal<DamOptions>,
    /// Use Gemini when a key is set (else always the offline planner).
    pub use_gemini: RwSignal<bool>,
    /// The plan on screen: its boxes are the conditions' boxes, its prompt editable.
    pub plan: RwSignal<Option<Plan>>,
    /// The condition whose mask is being painted (its id).
    pub mask_open: RwSignal<Option<u32>>,
    /// A message about the inputs (a file that could not be read, say).
    pub input_message: RwSignal<Option<String>>,
    pub run: RwSignal<RunView>,
    /// Set by Cancel; the run's observer reads it after every step.
    pub cancel: StoredValue<Arc<AtomicBool>>,
    pub result: RwSignal<Option<ResultEntry>>,
    pub history: RwSignal<Vec<ResultEntry>>,
}

impl Studio {
    /// A fresh studio with the normal setting's preset.
    pub fn new() -> Self {
        Studio {
            conditions: RwSignal::new(Vec::new()),
            next_id: RwSignal::new(1),
            prompt: RwSignal::new(String::new()),
            seed: RwSignal::new(DEFAULT_SEED),
            method: RwSignal::new(Method::Sow),
            options: RwSignal::new(RunOptions::preset(Setting::Normal)),
            attention: RwSignal::new(DamOptions::default()),
            use_gemini: RwSignal::new(true),
            plan: RwSignal::new(None),
            mask_open: RwSignal::new(None),
            input_message: RwSignal::new(None),
            run: RwSignal::new(RunView::Idle),
            cancel: StoredValue::new(Arc::new(AtomicBool::new(false))),
            result: RwSignal::new(None),
            history: RwSignal::new(Vec::new()),
        }
    }

    /// The canvas side in pixels.
    pub fn canvas(&self) -> usize {
        self.options.with(|o| o.canvas)
    }

    /// Whether a plan or a run is in flight.
    pub fn busy(&self) -> bool {
        self.run.with(RunView::is_busy)
    }

    /// Sets a condition's box (by hand or by the planner).
    pub fn place(&self, id: u32, placement: SquareBox, by_hand: bool) {
        self.conditions.update(|list| {
            if let Some(entry) = list.iter_mut().find(|c| c.id == id) {
                entry.placement = placement;
                entry.placed_by_hand |= by_hand;
            }
        });
        // The plan's boxes follow the conditions' (the plan on screen is what will run).
        let boxes: Vec<SquareBox> = self
            .conditions
            .with_untracked(|list| list.iter().map(|c| c.placement).collect());
        self.plan.update(|plan| {
            if let Some(plan) = plan {
                for (condition, square) in plan.conditions.iter_mut().zip(boxes) {
                    condition.square = square;
                }
            }
        });
    }
}

impl Default for Studio {
    fn default() -> Self {
        Self::new()
    }
}

/// COW's default placement, 256 px at (128, 0) on 512, scaled to the canvas; further
/// conditions are set side by side below it.
pub fn default_box(canvas: usize, index: usize) -> SquareBox {
    let side = canvas / 2;
    match index {
        0 => SquareBox::new(canvas / 4, 0, side),
        i => {
            let side = canvas / 4;
            let x = ((i - 1) * side) % canvas;
            SquareBox::new(x, canvas - side, side)
        }
    }
}
