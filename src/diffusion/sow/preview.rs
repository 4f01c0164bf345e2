//! A cheap live preview: a fixed linear map from the 4 latent channels to RGB, applied on the
//! device at latent resolution (64×64 for a 512 px canvas), so a progress display reads back
//! 48 KiB instead of decoding 512² pixels with the VAE.
//!
//! The factors are an approximation that circulates widely among Stable Diffusion front ends
//! (a least-squares fit of SD latents, scaled by 0.18215, to their decoded RGB in [−1, 1]); they
//! show composition and colour, not detail. On the random test models they mean nothing.

use burn::tensor::{Device, Tensor, TensorData};

/// RGB = Σ_c factor[c]·latent[c] + bias, per latent channel c (rows) and colour (columns).
const LATENT_RGB_FACTORS: [[f32; 3]; 4] = [
    [0.298, 0.207, 0.208],
    [0.187, 0.286, 0.173],
    [-0.158, 0.189, 0.264],
    [-0.184, -0.271, -0.473],
];

/// The preview of a latent `[1, 4, h, w]` as `[1, 3, h, w]` in about [−1, 1] (the VAE's output
/// range, so [`crate::imaging::tensor_to_rgb`] turns it into bytes).
pub fn latent_preview(latent: Tensor<4>) -> Tensor<4> {
    let [batch, channels, h, w] = latent.dims();
    let device: Device = latent.device();
    let factors: Vec<f32> = LATENT_RGB_FACTORS.iter().flatten().copied().collect();
    let map = Tensor::<2>::from_data(TensorData::new(factors, [4, 3]), &device);
    // [b, c, h·w] → [b, h·w, c] · [c, 3] → [b, 3, h, w]
    let tokens = latent.reshape([batch, channels, h * w]).swap_dims(1, 2);
    let rgb = tokens.matmul(map.unsqueeze::<3>().repeat_dim(0, batch));
    rgb.swap_dims(1, 2).reshape([batch, 3, h, w])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preview_applies_the_factors_per_pixel() {
        let device = Device::flex();
        // One pixel with latent (1, 0, 0, 0) and one with (0, 0, 0, 1).
        let latent = Tensor::<4>::from_data(
            TensorData::new(
                vec![1.0f32, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],
                [1, 4, 1, 2],
            ),
            &device,
        );
        let rgb = latent_preview(latent)
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        assert_eq!(rgb, vec![0.298, -0.184, 0.207, -0.271, 0.208, -0.473]);
    }
}
