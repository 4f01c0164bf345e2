//! Dynamic attention modulation (DAM), SOW's change to the cycles' self-attention
//! (docs/method.md §3.2). On each self-attention layer, with S the scaled logits and, per query
//! row p, m_p = min_j S and M_p = max_j S:
//!
//! - **suppress**: S ← S − α·c_p(1 − c_j)·(S − m_p): the condition's queries attend less to the
//!   background, keeping the condition intact;
//! - **enhance**: S ← S + Σ_i β·g_i·f_i(d_p, n)·r_ip·c_ij·(M_p − S): the related region's queries
//!   (the body below a face) attend more to their condition, so its identity flows into them;
//! - the **indicator** I_i (the share of the related region's normalized attention towards the
//!   condition that sits in its nearest fifth) gates the enhancement, g_i = clamp((I_i − τ)/(1 − τ),
//!   0, 1): it acts where information has not spread;
//! - the **decay** f(d, n) = exp(−κ·(n − 1)/(C − 1))·exp(−d²/(2ρ²)) fades it over the cycles and
//!   away from the condition's centre.
//!
//! The hook owns the run's facts (masks, centres, cycle) and keeps them on the device, built
//! once per token grid; the indicator and gate stay device tensors (a browser cannot read back
//! inside a UNet evaluation).

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::ops::Range;
use std::rc::Rc;

use burn::tensor::{Device, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use super::run::CycleHook;
use crate::imaging::{GridMask, SquareBox};
use crate::model::hook::{AttentionHook, Entries, LayerInfo, LogitsFn, Observed};

/// Which side of the threshold the indicator turns the enhancement on (docs/method.md §3.2:
/// the paper's sign is unresolved).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateSign {
    /// g = clamp((I − τ)/(1 − τ), 0, 1): enhance where the information is still concentrated
    /// near the condition.
    #[default]
    Above,
    /// g = clamp((τ − I)/τ, 0, 1): enhance where it has already spread.
    Below,
}

/// Which branches of the cycles' batch are modulated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamBranches {
    /// All four (negative, prompt, subject, quality).
    #[default]
    All,
    /// The prompt branch only (DenseDiffusion's convention; CFG then amplifies it).
    PromptOnly,
}

/// Every knob of DAM, with the defaults of docs/method.md §3.2 (proposed values: the paper's
/// numbers are lost). Each component can be switched off, as in the paper's ablation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DamOptions {
    /// α, the suppression strength.
    pub suppress: f64,
    /// β, the enhancement strength.
    pub enhance: f64,
    /// κ, how fast the enhancement fades over the cycles.
    pub temporal_rate: f64,
    /// ρ, how far from the condition's centre it reaches (in canvas sides).
    pub spatial_extent: f64,
    /// τ, the indicator's threshold.
    pub threshold: f64,
    /// Suppress condition → background attention.
    pub use_suppress: bool,
    /// Enhance related region → condition attention.
    pub use_enhance: bool,
    /// Fade the enhancement over the cycles.
    pub use_temporal_decay: bool,
    /// Fade it with the distance from the condition's centre.
    pub use_spatial_decay: bool,
    /// Gate it with the indicator (off: always on).
    pub use_indicator: bool,
    /// The gate's sign.
    pub gate: GateSign,
    /// The branches modulated.
    pub branches: DamBranches,
}

impl Default for DamOptions {
    fn default() -> Self {
        DamOptions {
            suppress: 0.3,
            enhance: 0.5,
            temporal_rate: 2.0,
            spatial_extent: 0.25,
            threshold: 0.3,
            use_suppress: true,
            use_enhance: true,
            use_temporal_decay: true,
            use_spatial_decay: true,
            use_indicator: true,
            gate: GateSign::Above,
            branches: DamBranches::All,
        }
    }
}

/// Options that make no sense.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("attention modulation: {0}")]
pub struct DamOptionsError(String);

impl DamOptions {
    /// Every strength off: the hook then changes nothing.
    pub fn off() -> Self {
        DamOptions {
            suppress: 0.0,
            enhance: 0.0,
            ..DamOptions::default()
        }
    }

    /// Rejects values outside their meaning.
    pub fn validate(&self) -> Result<(), DamOptionsError> {
        let bad = |what: &str| Err(DamOptionsError(what.to_string()));
        for (name, v) in [("suppress", self.suppress), ("enhance", self.enhance)] {
            if !(v.is_finite() && v >= 0.0) {
                return bad(&format!("{name} strength {v} must be ≥ 0"));
            }
        }
        if !(self.temporal_rate.is_finite() && self.temporal_rate >= 0.0) {
            return bad("the temporal rate must be ≥ 0");
        }
        if !(self.spatial_extent.is_finite() && self.spatial_extent > 0.0) {
            return bad("the spatial extent must be > 0");
        }
        if !(self.threshold > 0.0 && self.threshold < 1.0) {
            return bad("the threshold must be between 0 and 1");
        }
        Ok(())
    }

    fn suppresses(&self) -> bool {
        self.use_suppress && self.suppress > 0.0
    }

    fn enhances(&self) -> bool {
        self.use_enhance && self.enhance > 0.0
    }
}

/// One visual condition as DAM sees it, on the latent grid.
#[derive(Clone, Debug)]
pub struct DamCondition {
    /// The condition's kept cells on the canvas latent grid.
    pub mask: GridMask,
    /// The condition-related region on the same grid, without the condition itself.
    pub related: GridMask,
    /// The centre of the condition's box, (x, y) in canvas sides.
    pub centre: (f64, f64),
}

impl DamCondition {
    /// A condition at `placement` with latent crop mask `keep`, and its related region (any
    /// grid: resampled to the canvas latent grid; condition cells removed).
    pub fn new(placement: SquareBox, keep: &GridMask, related: &GridMask, canvas: usize) -> Self {
        let latent = canvas / 8;
        let mut mask = GridMask::new(latent, latent);
        let (row, col, _) = placement.latent();
        mask.place(keep, row, col);
        let related = related.resample(latent, latent).minus(&mask);
        DamCondition {
            mask,
            related,
            centre: placement.centre(canvas),
        }
    }
}

/// The masks of one token grid, on the device.
struct GridTensors {
    /// c_p for queries (the union of the conditions) `[1, 1, N, 1]`.
    union_rows: Tensor<4>,
    /// 1 − c_j for keys `[1, 1, 1, N]`.
    outside_keys: Tensor<4>,
    /// Per condition.
    conditions: Vec<ConditionTensors>,
}

struct ConditionTensors {
    /// c_ij for keys `[1, 1, 1, N]`.
    keys: Tensor<4>,
    /// r_ip·(spatial decay at p) for queries `[1, 1, N, 1]`.
    enhance_rows: Tensor<4>,
    /// r_ip `[1, 1, N, 1]`.
    related_rows: Tensor<4>,
    /// The nearest fifth of the related region `[1, 1, N, 1]`.
    near_rows: Tensor<4>,
    /// The first and one past the last related row; None when the region is empty here.
    span: Option<Range<usize>>,
}

/// The DAM hook of one SOW run.
pub struct Dam {
    options: DamOptions,
    conditions: Vec<DamCondition>,
    union: GridMask,
    cycles: usize,
    prompt_branch: usize,
    device: Device,
    cycle: Cell<usize>,
    grids: RefCell<HashMap<[usize; 2], Rc<GridTensors>>>,
    indicators: RefCell<Option<Vec<(usize, usize, Tensor<1>)>>>,
}

impl Dam {
    /// DAM over `conditions` for a run of `cycles` cycles whose prompt branch is batch entry
    /// `prompt_branch` (1 in COW's cycle layout).
    pub fn new(
        options: DamOptions,
        conditions: Vec<DamCondition>,
        cycles: usize,
        prompt_branch: usize,
        device: &Device,
    ) -> Result<Self, DamOptionsError> {
        options.validate()?;
        let first = conditions
            .first()
            .ok_or_else(|| DamOptionsError("no condition".into()))?;
        let [rows, cols] = first.mask.size();
        let mut union = GridMask::new(rows, cols);
        for condition in &conditions {
            union = union.union(&condition.mask);
        }
        Ok(Dam {
            options,
            conditions,
            union,
            cycles,
            prompt_branch,
            device: device.clone(),
            cycle: Cell::new(1),
            grids: RefCell::new(HashMap::new()),
            indicators: RefCell::new(None),
        })
    }

    /// Keeps every indicator value computed from now on (for tests and diagnostics).
    pub fn record_indicators(&self) {
        *self.indicators.borrow_mut() = Some(Vec::new());
    }

    /// The indicators recorded: (layer, condition, I as a one-element device tensor).
    pub fn recorded_indicators(&self) -> Vec<(usize, usize, Tensor<1>)> {
        self.indicators.borrow().clone().unwrap_or_default()
    }

    /// Sets the cycle index n (1-based) the next evaluations belong to.
    pub fn set_cycle(&self, n: usize) {
        self.cycle.set(n);
    }

    /// exp(−κ·(n − 1)/(C − 1)), or 1 when the temporal decay is off or there is one cycle.
    fn temporal_factor(&self) -> f64 {
        if !self.options.use_temporal_decay || self.cycles <= 1 {
            return 1.0;
        }
        let progress = (self.cycle.get().max(1) - 1) as f64 / (self.cycles - 1) as f64;
        (-self.options.temporal_rate * progress).exp()
    }

    /// The device masks of a token grid, built on first use.
    fn grid(&self, grid: [usize; 2]) -> Rc<GridTensors> {
        if let Some(tensors) = self.grids.borrow().get(&grid) {
            return tensors.clone();
        }
        let tensors = Rc::new(self.build_grid(grid));
        self.grids.borrow_mut().insert(grid, tensors.clone());
        tensors
    }

    fn build_grid(&self, [rows, cols]: [usize; 2]) -> GridTensors {
        let n = rows * cols;
        let column = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [1, 1, n, 1]), &self.device)
        };
        let row = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [1, 1, 1, n]), &self.device)
        };
        let union = self.union.resample(rows, cols);
        let outside: Vec<f32> = union.to_f32().iter().map(|c| 1.0 - c).collect();
        let conditions = self
            .conditions
            .iter()
            .map(|condition| {
                let mask = condition.mask.resample(rows, cols);
                let related = condition.related.resample(rows, cols).minus(&mask);
                let distance = |p: usize| token_distance(p, [rows, cols], condition.centre);
                let spatial = |p: usize| {
                    if self.options.use_spatial_decay {
                        let rho = self.options.spatial_extent;
                        (-distance(p).powi(2) / (2.0 * rho * rho)).exp() as f32
                    } else {
                        1.0
                    }
                };
                let related_cells = related.to_f32();
                let enhance: Vec<f32> = (0..n).map(|p| related_cells[p] * spatial(p)).collect();
                let near = nearest_fifth(&related, condition.centre);
                let set: Vec<usize> = (0..n).filter(|&p| related.cells()[p]).collect();
                ConditionTensors {
                    keys: row(mask.to_f32()),
                    enhance_rows: column(enhance),
                    related_rows: column(related_cells),
                    near_rows: column(near.to_f32()),
                    span: set.first().map(|&a| a..set.last().expect("non-empty") + 1),
                }
            })
            .collect();
        GridTensors {
            union_rows: column(union.to_f32()),
            outside_keys: row(outside),
            conditions,
        }
    }

    /// I = Σ_{p near} a_p / Σ_{p related} a_p with a_p = Σ_h Σ_{j in condition} Ŝ_h[p, j], from
    /// the prompt branch's unmodified logits, chunked within the layer's budget.
    fn indicator(
        &self,
        layer: &LayerInfo,
        condition: &ConditionTensors,
        span: Range<usize>,
        logits: &LogitsFn,
    ) -> Tensor<1> {
        let step = layer.rows_per_request(1);
        let mut near = Tensor::<1>::zeros([1], &self.device);
        let mut all = Tensor::<1>::zeros([1], &self.device);
        for start in span.clone().step_by(step) {
            let rows = start..(start + step).min(span.end);
            let s = logits(Entries::One(self.prompt_branch), rows.clone());
            let lo = s.clone().min_dim(3);
            let hi = s.clone().max_dim(3);
            let normalized = (s - lo.clone()) / (hi - lo).add_scalar(1e-6);
            // [1, H, r, N] → mass towards the condition per row, summed over heads: [1, 1, r, 1].
            let mass = (normalized * condition.keys.clone()).sum_dim(3).sum_dim(1);
            let slice = |t: &Tensor<4>| t.clone().narrow(2, rows.start, rows.len());
            near = near + (mass.clone() * slice(&condition.near_rows)).sum();
            all = all + (mass * slice(&condition.related_rows)).sum();
        }
        near / all.add_scalar(1e-12)
    }

    /// The gate g from the indicator (docs/method.md §3.2, Eq. 8).
    fn gate(&self, indicator: Tensor<1>) -> Tensor<1> {
        let tau = self.options.threshold;
        match self.options.gate {
            GateSign::Above => indicator.sub_scalar(tau).div_scalar(1.0 - tau),
            GateSign::Below => indicator.neg().add_scalar(tau).div_scalar(tau),
        }
        .clamp(0.0, 1.0)
    }
}

/// The distance from token p's centre ((col + ½)/cols, (row + ½)/rows) to `centre`.
fn token_distance(p: usize, [rows, cols]: [usize; 2], centre: (f64, f64)) -> f64 {
    let (row, col) = (p / cols, p % cols);
    let x = (col as f64 + 0.5) / cols as f64;
    let y = (row as f64 + 0.5) / rows as f64;
    ((x - centre.0).powi(2) + (y - centre.1).powi(2)).sqrt()
}

/// The ⌈|B|/5⌉ cells of `region` nearest to `centre` (ties broken by distance, row, column).
pub fn nearest_fifth(region: &GridMask, centre: (f64, f64)) -> GridMask {
    let [rows, cols] = region.size();
    let mut cells: Vec<(f64, usize)> = (0..rows * cols)
        .filter(|&p| region.cells()[p])
        .map(|p| (token_distance(p, [rows, cols], centre), p))
        .collect();
    cells.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut near = GridMask::new(rows, cols);
    for &(_, p) in cells.iter().take(cells.len().div_ceil(5)) {
        near.set(p / cols, p % cols, true);
    }
    near
}

impl AttentionHook for Dam {
    fn observe(&self, layer: &LayerInfo, logits: &LogitsFn) -> Option<Observed> {
        if !(self.options.enhances() && self.options.use_indicator) {
            return None;
        }
        let tensors = self.grid(layer.grid);
        let gates: Vec<Tensor<1>> = tensors
            .conditions
            .iter()
            .enumerate()
            .map(|(i, condition)| match &condition.span {
                // An empty region (e.g. vanished at 8×8): nothing to enhance, gate closed.
                None => Tensor::<1>::zeros([1], &self.device),
                Some(span) => {
                    let indicator = self.indicator(layer, condition, span.clone(), logits);
                    if let Some(log) = self.indicators.borrow_mut().as_mut() {
                        log.push((layer.layer, i, indicator.clone()));
                    }
                    self.gate(indicator)
                }
            })
            .collect();
        Some(Box::new(gates))
    }

    fn modify(
        &self,
        layer: &LayerInfo,
        observed: Option<&Observed>,
        rows: Range<usize>,
        logits: Tensor<4>,
    ) -> Tensor<4> {
        let (suppress, enhance) = (self.options.suppresses(), self.options.enhances());
        if !suppress && !enhance {
            return logits;
        }
        let tensors = self.grid(layer.grid);
        let slice = |t: &Tensor<4>| t.clone().narrow(2, rows.start, rows.len());
        let mut delta: Option<Tensor<4>> = None;
        if suppress {
            // −α·c_p(1 − c_j)·(S − m_p)
            let pairs = slice(&tensors.union_rows) * tensors.outside_keys.clone();
            let low = logits.clone().min_dim(3);
            let term = (pairs * (logits.clone() - low)).mul_scalar(-self.options.suppress);
            delta = Some(term);
        }
        if enhance {
            // Σ_i β·g_i·f_i·r_ip·c_ij, then ·(M_p − S)
            let gates = observed.and_then(|o| o.downcast_ref::<Vec<Tensor<1>>>());
            let strength = self.options.enhance * self.temporal_factor();
            let mut pairs: Option<Tensor<4>> = None;
            for (i, condition) in tensors.conditions.iter().enumerate() {
                if condition.span.is_none() {
                    continue;
                }
                let mut weight = slice(&condition.enhance_rows).mul_scalar(strength);
                if let Some(gates) = gates {
                    weight = weight * gates[i].clone().reshape([1, 1, 1, 1]);
                }
                let term = weight * condition.keys.clone();
                pairs = Some(match pairs {
                    None => term,
                    Some(sum) => sum + term,
                });
            }
            if let Some(pairs) = pairs {
                let high = logits.clone().max_dim(3);
                let term = pairs * (high - logits.clone());
                delta = Some(match delta {
                    None => term,
                    Some(d) => d + term,
                });
            }
        }
        let Some(mut delta) = delta else {
            return logits;
        };
        if self.options.branches == DamBranches::PromptOnly {
            let mut entries = vec![0.0f32; layer.batch];
            if let Some(entry) = entries.get_mut(self.prompt_branch) {
                *entry = 1.0;
            }
            let branch = Tensor::<4>::from_data(
                TensorData::new(entries, [layer.batch, 1, 1, 1]),
                &self.device,
            );
            delta = delta * branch;
        }
        logits + delta
    }
}

impl CycleHook for Dam {
    fn for_cycle(&self, n: usize) -> Option<&dyn AttentionHook> {
        self.set_cycle(n);
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_fifth_rounds_up_and_breaks_ties_by_position() {
        let mut region = GridMask::new(4, 4);
        for c in 0..4 {
            region.set(3, c, true);
        }
        region.set(2, 0, true);
        // 5 cells: ⌈5/5⌉ = 1; centre above the middle of the bottom row: (1.5, 3.5)/4 is
        // equidistant from columns 1 and 2, and the lower index wins.
        let near = nearest_fifth(&region, (0.5, 0.875));
        assert_eq!(near.count(), 1);
        assert!(near.get(3, 1));
        assert_eq!(nearest_fifth(&GridMask::new(2, 2), (0.5, 0.5)).count(), 0);
    }

    #[test]
    fn options_validate_and_round_trip() {
        DamOptions::default().validate().unwrap();
        assert!(DamOptions {
            threshold: 1.0,
            ..DamOptions::default()
        }
        .validate()
        .is_err());
        let json = serde_json::to_string(&DamOptions::default()).unwrap();
        assert_eq!(
            serde_json::from_str::<DamOptions>(&json).unwrap(),
            DamOptions::default()
        );
        assert_eq!(
            serde_json::from_str::<DamOptions>(r#"{"gate": "below"}"#)
                .unwrap()
                .gate,
            GateSign::Below
        );
    }
}
