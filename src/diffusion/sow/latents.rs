//! The latent-space operators of a run: the one-way paste of a condition's stored states into
//! the canvas latent, and the two ways the UNet's noise predictions are combined (docs/method.md
//! §1.3, §2.2, §2.6).

use burn::tensor::{Bool, Device, Tensor, TensorData};

use crate::imaging::{GridMask, SquareBox};

/// One visual condition in latent space: its inverted states v⁽⁰⁾…v^(k_s), its latent crop
/// mask and where it sits on the canvas latent.
pub struct LatentCondition {
    /// v⁽ᵏ⁾ for k = 0..=k_s, each `[1, 4, s/8, s/8]`.
    pub states: Vec<Tensor<4>>,
    /// The latent crop mask, true where the condition is kept, `[1, 4, s/8, s/8]`.
    pub keep: Tensor<4, Bool>,
    /// Top-left latent row and column and the latent side.
    pub row: usize,
    /// See `row`.
    pub col: usize,
    /// See `row`.
    pub side: usize,
}

impl LatentCondition {
    /// A condition placed at `placement` (pixels) with latent crop mask `keep`; its states are
    /// filled by the inversion.
    pub fn new(placement: &SquareBox, keep: &GridMask, channels: usize, device: &Device) -> Self {
        let (row, col, side) = placement.latent();
        let [rows, cols] = keep.size();
        debug_assert_eq!((rows, cols), (side, side));
        let mask: Vec<bool> = (0..channels)
            .flat_map(|_| keep.cells().iter().copied())
            .collect();
        LatentCondition {
            states: Vec::new(),
            keep: Tensor::from_data(TensorData::new(mask, [1, channels, side, side]), device),
            row,
            col,
            side,
        }
    }
}

/// Paste(z, v⁽ᵏ⁾) for every condition in list order (docs/method.md §2.2, §2.10c): inside each
/// box, z takes the condition's state wherever its mask keeps the condition; everything else is
/// untouched. A later condition wins where two overlap. Exact: values are selected, not mixed.
pub fn paste(mut z: Tensor<4>, conditions: &[LatentCondition], k: usize) -> Tensor<4> {
    let channels = z.dims()[1];
    for condition in conditions {
        let ranges = [
            0..1,
            0..channels,
            condition.row..condition.row + condition.side,
            condition.col..condition.col + condition.side,
        ];
        let region = z.clone().slice(ranges.clone());
        let pasted = region.mask_where(condition.keep.clone(), condition.states[k].clone());
        z = z.slice_assign(ranges, pasted);
    }
    z
}

/// Classifier-free guidance ε_u + w·(ε_c − ε_u) over a batch laid out [unconditional,
/// conditional] (docs/method.md §1.3).
pub fn guided(eps: Tensor<4>, scale: f64) -> Tensor<4> {
    let [u, c] = split::<2>(eps);
    u.clone() + (c - u).mul_scalar(scale)
}

/// COW's masked four-way guidance over a batch laid out [NEG, P, SUBJECT, QUALITY]
/// (docs/method.md §2.6.3), with `m` the union condition mask `[1, 1, h, w]` (1 inside):
///
/// ε_base = ε_NEG + (1 − m)·(ε_SUBJECT − ε_QUALITY);  ε = ε_base + w·(ε_P − ε_base).
///
/// Inside the condition this is CFG against the negative prompt; outside it also pushes away
/// from the subject ("human face": no second face) and towards the quality prompt.
pub fn masked_guided(eps: Tensor<4>, m: &Tensor<4>, scale: f64) -> Tensor<4> {
    let [neg, prompt, subject, quality] = split::<4>(eps);
    let outside = m.clone().neg().add_scalar(1.0);
    let base = neg + outside * (subject - quality);
    base.clone() + (prompt - base).mul_scalar(scale)
}

/// The batch entries of a `[n, c, h, w]` tensor, in order.
fn split<const N: usize>(batch: Tensor<4>) -> [Tensor<4>; N] {
    debug_assert_eq!(batch.dims()[0], N);
    core::array::from_fn(|i| batch.clone().narrow(0, i, 1))
}

/// The same latent `count` times along the batch dimension.
pub fn repeat(z: &Tensor<4>, count: usize) -> Tensor<4> {
    Tensor::cat(vec![z.clone(); count], 0)
}

/// A float mask `[1, 1, rows, cols]`, 1 where set.
pub fn mask_tensor(mask: &GridMask, device: &Device) -> Tensor<4> {
    let [rows, cols] = mask.size();
    Tensor::from_data(TensorData::new(mask.to_f32(), [1, 1, rows, cols]), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(t: Tensor<4>) -> Vec<f32> {
        t.into_data().try_to_vec::<f32>().unwrap()
    }

    #[test]
    fn paste_replaces_only_kept_cells_inside_the_box_and_later_wins() {
        let device = Device::flex();
        let z = Tensor::<4>::zeros([1, 1, 4, 4], &device);
        // Condition A at latent (0, 0), side 2, keeping all but its top-left cell.
        let keep_a = GridMask::from_cells(2, 2, vec![false, true, true, true]).unwrap();
        let mut a = LatentCondition::new(&SquareBox::new(0, 0, 16), &keep_a, 1, &device);
        a.states.push(Tensor::<4>::ones([1, 1, 2, 2], &device));
        // Condition B at latent (1, 1), side 2, keeping everything, value 2.
        let keep_b = GridMask::from_cells(2, 2, vec![true; 4]).unwrap();
        let mut b = LatentCondition::new(&SquareBox::new(8, 8, 16), &keep_b, 1, &device);
        b.states
            .push(Tensor::<4>::ones([1, 1, 2, 2], &device).mul_scalar(2.0));
        let out = values(paste(z, &[a, b], 0));
        #[rustfmt::skip]
        assert_eq!(out, vec![
            0.0, 1.0, 0.0, 0.0,
            1.0, 2.0, 2.0, 0.0,
            0.0, 2.0, 2.0, 0.0,
            0.0, 0.0, 0.0, 0.0,
        ]);
    }

    #[test]
    fn masked_guidance_is_cfg_inside_and_adds_the_background_push_outside() {
        let device = Device::flex();
        // Per-branch constants: NEG 1, P 3, SUBJECT 5, QUALITY 2, over a 1×2 grid.
        let eps = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 1.0, 3.0, 3.0, 5.0, 5.0, 2.0, 2.0],
                [4, 1, 1, 2],
            ),
            &device,
        );
        let m = Tensor::<4>::from_data(TensorData::new(vec![1.0f32, 0.0], [1, 1, 1, 2]), &device);
        let out = values(masked_guided(eps.clone(), &m, 7.5));
        // Inside: 1 + 7.5·(3 − 1) = 16. Outside: base = 1 + 3 = 4; 4 + 7.5·(3 − 4) = −3.5.
        assert_eq!(out, vec![16.0, -3.5]);
        let cfg = values(guided(eps.narrow(0, 0, 2), 7.5));
        assert_eq!(cfg, vec![16.0, 16.0]);
    }
}
