//! Symmetric block quantization of weight matrices on the host, and the packed form burn's
//! quantized tensors take (docs/quantization.md §2).
//!
//! A row-major matrix `[rows, cols]` is cut into blocks of `block` consecutive values of a row.
//! Each block gets one f32 scale s = max|w| / L, with L = 127 (8-bit) or 7 (4-bit), and each
//! value becomes q = round(w / s) in −L..=L; it reads back as q·s. Values are packed into u32
//! words along the row (four 8-bit or eight 4-bit values per word, the first value in the
//! lowest bits, two's complement), then the scales follow, as burn's `QuantizedBytes` lays out a
//! `PackedU32` tensor.

use burn::tensor::quantization::{QuantMode, QuantScheme, QuantStore, QuantValue, ScaleDtype};
use burn::tensor::{DType, TensorData};

use super::policy::{Bits, QuantFormat};

/// A block-quantized matrix on the host: its quantized values and their scales.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedMatrix {
    /// `[rows, cols]`.
    pub shape: [usize; 2],
    /// Width and block length.
    pub format: QuantFormat,
    /// Row-major quantized values, each within ±`format.bits.max_level()`.
    pub values: Vec<i8>,
    /// One scale per block, row-major over `[rows, cols / block]`.
    pub scales: Vec<f32>,
}

impl QuantizedMatrix {
    /// Quantizes the row-major `values` of a `[rows, cols]` matrix. `cols` must be a multiple
    /// of the block length (the policy only picks blocks that divide the row).
    pub fn quantize(values: &[f32], shape: [usize; 2], format: QuantFormat) -> Self {
        let [rows, cols] = shape;
        assert_eq!(values.len(), rows * cols, "values do not fill {shape:?}");
        assert!(
            format.block > 0 && cols % format.block == 0,
            "a row of {cols} is not a whole number of {}-value blocks",
            format.block
        );
        let level = format.bits.max_level() as f32;
        let mut quantized = Vec::with_capacity(values.len());
        let mut scales = Vec::with_capacity(values.len() / format.block);
        for block in values.chunks_exact(format.block) {
            let peak = block.iter().fold(0.0f32, |m, w| m.max(w.abs()));
            let scale = peak / level;
            // An all-zero block keeps scale 0 and zero values: it reads back as zeros.
            let level_of = |w: f32| match scale > 0.0 {
                true => (w / scale).round().clamp(-level, level) as i8,
                false => 0,
            };
            quantized.extend(block.iter().map(|&w| level_of(w)));
            scales.push(scale);
        }
        QuantizedMatrix {
            shape,
            format,
            values: quantized,
            scales,
        }
    }

    /// The values as f32 again, q·s: what the device computes with.
    pub fn dequantize(&self) -> Vec<f32> {
        self.values
            .chunks_exact(self.format.block)
            .zip(&self.scales)
            .flat_map(|(block, &scale)| block.iter().map(move |&q| q as f32 * scale))
            .collect()
    }

    /// burn's description of this format: symmetric values packed in u32 along the last
    /// dimension, one f32 scale per block of one row.
    pub fn scheme(&self) -> QuantScheme {
        burn_scheme(self.format)
    }

    /// Bytes the device keeps: packed values plus scales.
    pub fn device_bytes(&self) -> usize {
        self.values.len() * self.format.bits.width() / 8 + self.scales.len() * 4
    }

    /// The tensor data burn uploads: packed u32 words, then the f32 scales.
    pub fn to_tensor_data(&self) -> TensorData {
        let words = pack(&self.values, self.format.bits);
        let scales = self.scales.iter().map(|s| s.to_bits());
        let bytes: Vec<u8> = words
            .into_iter()
            .chain(scales)
            .flat_map(u32::to_ne_bytes)
            .collect();
        TensorData::from_bytes_vec(bytes, self.shape, DType::QFloat(self.scheme()))
    }
}

/// The burn scheme of a format.
pub fn burn_scheme(format: QuantFormat) -> QuantScheme {
    let value = match format.bits {
        Bits::Eight => QuantValue::Q8S,
        Bits::Four => QuantValue::Q4S,
    };
    let block = u8::try_from(format.block).expect("block lengths are at most 255");
    QuantScheme::default()
        .with_value(value)
        .with_store(QuantStore::PackedU32(0))
        .with_mode(QuantMode::Symmetric)
        .per_block([block], ScaleDtype::F32)
}

/// Packs values into u32 words, `32 / width` per word, the first in the lowest bits. The
/// length must be a multiple of the values per word (rows are whole blocks, blocks ≥ 32).
fn pack(values: &[i8], bits: Bits) -> Vec<u32> {
    let width = bits.width();
    let per_word = 32 / width;
    assert!(
        values.len() % per_word == 0,
        "{} values do not fill whole u32 words",
        values.len()
    );
    let mask = (1u32 << width) - 1;
    values
        .chunks_exact(per_word)
        .map(|chunk| {
            chunk.iter().enumerate().fold(0u32, |word, (i, &q)| {
                word | ((q as u8 as u32) & mask) << (i * width)
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn format(bits: Bits, block: usize) -> QuantFormat {
        QuantFormat { bits, block }
    }

    #[test]
    fn quantizes_each_block_to_its_own_scale() {
        let values = [1.0, -0.6, 0.25, 0.0, 10.0, 5.5, -10.0, 2.5];
        let q = QuantizedMatrix::quantize(&values, [2, 4], format(Bits::Four, 4));
        assert_eq!(q.scales, vec![1.0 / 7.0, 10.0 / 7.0]);
        assert_eq!(q.values, vec![7, -4, 2, 0, 7, 4, -7, 2]);
        // Every value reads back within half a step of its block.
        let back = q.dequantize();
        for (i, (w, r)) in values.iter().zip(&back).enumerate() {
            let step = q.scales[i / 4];
            assert!((w - r).abs() <= step / 2.0 + 1e-6, "{w} read back as {r}");
        }
    }

    #[test]
    fn a_zero_block_reads_back_as_zeros() {
        let q = QuantizedMatrix::quantize(&[0.0; 32], [1, 32], format(Bits::Eight, 32));
        assert_eq!(q.dequantize(), vec![0.0; 32]);
    }

    #[test]
    fn packs_low_bits_first_in_twos_complement() {
        assert_eq!(pack(&[1, -1, 2, -2], Bits::Eight), vec![0xFE02_FF01]);
        assert_eq!(
            pack(&[1, -1, 2, -2, 7, -7, 0, 3], Bits::Four),
            vec![0x3097_E2F1]
        );
    }

    #[test]
    fn eight_bit_data_is_what_burn_builds_from_i8_values() {
        let values: Vec<f32> = (0..128).map(|i| ((i * 37) % 23) as f32 - 11.0).collect();
        let q = QuantizedMatrix::quantize(&values, [2, 64], format(Bits::Eight, 32));
        let burn = TensorData::quantized(q.values.clone(), [2, 64], q.scheme(), &q.scales, None);
        assert_eq!(q.to_tensor_data(), burn);
        assert_eq!(q.device_bytes(), 128 + 4 * 4);
    }
}
