//! Pixels and tensors: RGB bytes to the VAE's [−1, 1] input and its output back to bytes, as
//! diffusers converts them (docs/method.md §2.2: x/255·2 − 1; §2.7: clamp((x + 1)/2, 0, 1)).

use burn::tensor::{Device, Tensor, TensorData};

/// Interleaved RGB bytes (`width · height · 3`, row-major) as a `[1, 3, height, width]` tensor
/// in [−1, 1]. Returns None when the byte count does not match the size.
pub fn rgb_to_tensor(
    rgb: &[u8],
    width: usize,
    height: usize,
    device: &Device,
) -> Option<Tensor<4>> {
    if rgb.len() != width * height * 3 {
        return None;
    }
    let plane = width * height;
    let mut values = vec![0.0f32; 3 * plane];
    for (i, pixel) in rgb.chunks_exact(3).enumerate() {
        for (c, &byte) in pixel.iter().enumerate() {
            values[c * plane + i] = byte as f32 / 255.0 * 2.0 - 1.0;
        }
    }
    Some(Tensor::from_data(
        TensorData::new(values, [1, 3, height, width]),
        device,
    ))
}

/// Planar values `[3, height, width]` in about [−1, 1] (one image of a decoded batch, read
/// back) to interleaved RGB bytes: clamp((x + 1)/2, 0, 1)·255, rounded.
pub fn planar_to_rgb(values: &[f32], width: usize, height: usize) -> Vec<u8> {
    let plane = width * height;
    (0..plane)
        .flat_map(|i| (0..3).map(move |c| (c, i)))
        .map(|(c, i)| {
            let x = ((values[c * plane + i] + 1.0) / 2.0).clamp(0.0, 1.0);
            (x * 255.0).round() as u8
        })
        .collect()
}

/// Reads a decoded batch `[batch, 3, h, w]` back (asynchronously, as a browser must) and
/// converts each image to RGB bytes.
pub async fn tensor_to_rgb(images: Tensor<4>) -> Result<Vec<Vec<u8>>, String> {
    let [batch, _, height, width] = images.dims();
    let values = images
        .into_data_async()
        .await
        .map_err(|e| format!("{e:?}"))?
        .try_into_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?;
    let per_image = 3 * height * width;
    Ok((0..batch)
        .map(|b| planar_to_rgb(&values[b * per_image..(b + 1) * per_image], width, height))
        .collect())
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    #[test]
    fn bytes_survive_the_round_trip_and_sizes_are_checked() {
        let device = Device::flex();
        let rgb: Vec<u8> = (0..2 * 3 * 3).map(|i| (i * 14) as u8).collect();
        let tensor = rgb_to_tensor(&rgb, 3, 2, &device).unwrap();
        assert_eq!(tensor.dims(), [1, 3, 2, 3]);
        let back = pollster::block_on(tensor_to_rgb(tensor)).unwrap();
        assert_eq!(back, vec![rgb]);
        assert!(rgb_to_tensor(&[0; 5], 3, 2, &device).is_none());
        // Out-of-range values clamp.
        assert_eq!(planar_to_rgb(&[-3.0, 3.0, 0.0], 1, 1), vec![0, 255, 128]);
    }
}
