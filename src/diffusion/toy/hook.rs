//! The toy experiment's attention variants (docs/method.md §4.1 b, c), in the same min–max form
//! as SOW's modulation: increase S ← S + w·(M_p − S) from the upper-right quadrant's queries to
//! the lower-left quadrant's keys; decrease S ← S − w·(S − m_p) from the upper-right queries to
//! every key outside the upper-right quadrant. Applied at every self-attention layer and step.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::Range;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::layout::Quadrant;
use crate::model::hook::{AttentionHook, LayerInfo, Observed};

/// Which toy experiment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ToyVariant {
    /// (a) merge the two halves at a state and denoise: no attention change.
    Merge,
    /// (b) increase the upper-right quadrant's attention to the lower-left one.
    Increase,
    /// (c) decrease the upper-right quadrant's attention to everything outside it.
    Decrease,
}

impl ToyVariant {
    /// All three, in the paper's order.
    pub const ALL: [ToyVariant; 3] = [
        ToyVariant::Merge,
        ToyVariant::Increase,
        ToyVariant::Decrease,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            ToyVariant::Merge => "merge",
            ToyVariant::Increase => "increase",
            ToyVariant::Decrease => "decrease",
        }
    }
}

impl std::str::FromStr for ToyVariant {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ToyVariant::ALL
            .into_iter()
            .find(|v| v.name() == s)
            .ok_or_else(|| format!("unknown variant {s:?}: use merge, increase or decrease"))
    }
}

/// Query rows `[1, 1, N, 1]` and key columns `[1, 1, 1, N]` of one grid.
type GridMasks = (Tensor<4>, Tensor<4>);

/// The hook of the increase and decrease variants.
pub struct QuadrantHook {
    variant: ToyVariant,
    strength: f64,
    device: Device,
    grids: RefCell<HashMap<[usize; 2], GridMasks>>,
}

impl QuadrantHook {
    /// A hook for `variant` with strength w (1 by default, docs/method.md §4.1).
    pub fn new(variant: ToyVariant, strength: f64, device: &Device) -> Self {
        QuadrantHook {
            variant,
            strength,
            device: device.clone(),
            grids: RefCell::new(HashMap::new()),
        }
    }

    fn masks(&self, grid: [usize; 2]) -> GridMasks {
        if let Some(m) = self.grids.borrow().get(&grid) {
            return m.clone();
        }
        let n = grid[0] * grid[1];
        let upper_right = Quadrant::UpperRight.mask(grid).to_f32();
        let keys: Vec<f32> = match self.variant {
            ToyVariant::Increase => Quadrant::LowerLeft.mask(grid).to_f32(),
            _ => upper_right.iter().map(|v| 1.0 - v).collect(),
        };
        let masks = (
            Tensor::from_data(TensorData::new(upper_right, [1, 1, n, 1]), &self.device),
            Tensor::from_data(TensorData::new(keys, [1, 1, 1, n]), &self.device),
        );
        self.grids.borrow_mut().insert(grid, masks.clone());
        masks
    }
}

impl AttentionHook for QuadrantHook {
    fn modify(
        &self,
        layer: &LayerInfo,
        _observed: Option<&Observed>,
        rows: Range<usize>,
        logits: Tensor<4>,
    ) -> Tensor<4> {
        if self.variant == ToyVariant::Merge || self.strength == 0.0 {
            return logits;
        }
        let (queries, keys) = self.masks(layer.grid);
        let pairs = queries.narrow(2, rows.start, rows.len()) * keys;
        let w = self.strength;
        match self.variant {
            ToyVariant::Increase => {
                let high = logits.clone().max_dim(3);
                let delta = pairs * (high - logits.clone());
                logits + delta.mul_scalar(w)
            }
            _ => {
                let low = logits.clone().min_dim(3);
                let delta = pairs * (logits.clone() - low);
                logits - delta.mul_scalar(w)
            }
        }
    }
}
