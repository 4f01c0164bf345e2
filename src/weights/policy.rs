//! The conversion policy: which precision each weight is kept in on the device
//! (docs/quantization.md §1). A policy answers, for one tensor of one component, by its name and
//! shape: f32, or symmetric block-quantized 8-bit or 4-bit with f32 scales.
//!
//! Only matrices are ever quantized (linear layers, and convolutions stored as
//! `[out, in·k·k]` matrices); vectors (biases, norm scales) and lookup tables stay f32.

use std::fmt;
use std::str::FromStr;

use super::Component;

/// The largest block of rows of an embedding table that one device buffer holds: WebGPU's
/// default storage binding limit (128 MiB), so a lookup never binds more.
pub const TABLE_BLOCK_BYTES: usize = 128 * 1024 * 1024;

/// The block size quantized matrices use: 64 consecutive values of a row share one f32 scale
/// (docs/quantization.md §2 has the size arithmetic).
pub const DEFAULT_BLOCK: usize = 64;

/// The smallest block the policy falls back to when a row length is not a multiple of the
/// preferred block: the GPU matmul reads at least 32 packed 4-bit values per scale.
pub const MIN_BLOCK: usize = 32;

/// How a component's matrices are kept on the device: the user-facing choice.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Scheme {
    /// Everything in f32, whatever the file stores (f16 and bf16 widen exactly); what the
    /// golden suite checks.
    #[default]
    F32,
    /// Symmetric 8-bit values, one f32 scale per block.
    Q8,
    /// Symmetric 4-bit values, one f32 scale per block.
    Q4,
}

impl Scheme {
    /// A short, stable name for cache keys; a new conversion gets a new name, so that the
    /// cache never hands out tensors converted the old way.
    pub fn key(self) -> &'static str {
        match self {
            Scheme::F32 => "f32.1",
            Scheme::Q8 => "q8.1",
            Scheme::Q4 => "q4.1",
        }
    }

    /// The quantized width, None for f32.
    pub fn bits(self) -> Option<Bits> {
        match self {
            Scheme::F32 => None,
            Scheme::Q8 => Some(Bits::Eight),
            Scheme::Q4 => Some(Bits::Four),
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::F32 => "f32",
            Scheme::Q8 => "q8",
            Scheme::Q4 => "q4",
        })
    }
}

/// A scheme name that is none of `f32`, `q8`, `q4`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown weight scheme {0:?}: use f32, q8 or q4")]
pub struct UnknownScheme(pub String);

impl FromStr for Scheme {
    type Err = UnknownScheme;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" => Ok(Scheme::F32),
            "q8" | "int8" => Ok(Scheme::Q8),
            "q4" | "int4" => Ok(Scheme::Q4),
            _ => Err(UnknownScheme(s.to_string())),
        }
    }
}

/// Quantized value width.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bits {
    /// Values in −127..=127.
    Eight,
    /// Values in −7..=7.
    Four,
}

impl Bits {
    /// The largest quantized magnitude: the block's largest |w| maps to it.
    pub fn max_level(self) -> i8 {
        match self {
            Bits::Eight => 127,
            Bits::Four => 7,
        }
    }

    /// Bits per value.
    pub fn width(self) -> usize {
        match self {
            Bits::Eight => 8,
            Bits::Four => 4,
        }
    }
}

/// A concrete quantized format: value width and block length along a matrix row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct QuantFormat {
    /// Value width.
    pub bits: Bits,
    /// Consecutive values of one row that share a scale.
    pub block: usize,
}

/// What one tensor becomes on the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Storage {
    /// A float tensor.
    F32,
    /// A block-quantized matrix.
    Quantized(QuantFormat),
}

/// What role a tensor plays, from its name and its shape in the file: this decides its device
/// layout (docs/quantization.md §1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WeightKind {
    /// A 1-D tensor: bias, norm scale or shift.
    Vector,
    /// A lookup table `[count, d]` (`*_embedding.weight`).
    Table,
    /// A linear layer's weight, PyTorch's `[d_out, d_in]`, stored so and used through a
    /// transposed view as burn's `[d_in, d_out]`: blocks run along d_in, within one output.
    Linear,
    /// A convolution's weight `[out, in, k, k]`; stored as the matrix `[out, in·k·k]`.
    Conv,
    /// Anything else (no SD-2.x network has one).
    Other,
}

impl WeightKind {
    /// Classifies a tensor by its name and its shape in the file.
    pub fn of(name: &str, file_shape: &[usize]) -> Self {
        match file_shape.len() {
            1 => WeightKind::Vector,
            2 if name.ends_with("_embedding.weight") => WeightKind::Table,
            2 => WeightKind::Linear,
            4 => WeightKind::Conv,
            _ => WeightKind::Other,
        }
    }

    /// The shape the device keeps: `[out, in·k·k]` for convolutions, the file's shape
    /// otherwise. Its rows are what quantization blocks cut.
    pub fn stored_shape(self, file_shape: &[usize]) -> Vec<usize> {
        match (self, file_shape) {
            (WeightKind::Conv, [out, rest @ ..]) => vec![*out, rest.iter().product()],
            _ => file_shape.to_vec(),
        }
    }
}

/// The conversion policy of one component: its scheme, which tensors stay f32 regardless, and
/// the block size. Applied by [`super::materialize`] to every weight on its way to the device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    component: Option<Component>,
    scheme: Scheme,
    block: usize,
    keep_f32: Vec<String>,
    only: Option<String>,
    table_block_bytes: usize,
}

impl Default for Policy {
    fn default() -> Self {
        Policy::f32()
    }
}

impl Policy {
    /// Every weight in f32.
    pub fn f32() -> Self {
        Policy {
            component: None,
            scheme: Scheme::F32,
            block: DEFAULT_BLOCK,
            keep_f32: Vec::new(),
            only: None,
            table_block_bytes: TABLE_BLOCK_BYTES,
        }
    }

    /// `scheme` for the matrices of `component`, with the component's sensitive layers kept
    /// in f32: for the UNet `conv_in`, `conv_out` and the timestep MLP (docs/quantization.md §3
    /// has the error study behind the list).
    pub fn new(component: Component, scheme: Scheme) -> Self {
        let keep_f32: &[&str] = match component {
            Component::Unet => &["conv_in.", "conv_out.", "time_embedding."],
            Component::Vae => &["encoder.conv_out.", "decoder.conv_out."],
            Component::TextEncoder => &[],
        };
        Policy {
            component: Some(component),
            scheme,
            keep_f32: keep_f32.iter().map(|p| p.to_string()).collect(),
            ..Policy::f32()
        }
    }

    /// The loading default of each component: the UNet 8-bit, the rest f32.
    pub fn default_for(component: Component) -> Self {
        match component {
            Component::Unet => Policy::new(component, Scheme::Q8),
            Component::TextEncoder | Component::Vae => Policy::new(component, Scheme::F32),
        }
    }

    /// The same policy with another preferred block length (a multiple of [`MIN_BLOCK`], at
    /// most 255: burn's block dimensions are bytes).
    pub fn with_block(mut self, block: usize) -> Self {
        self.block = block;
        self
    }

    /// The same policy keeping every tensor whose name starts with `prefix` in f32.
    pub fn keeping_f32(mut self, prefix: &str) -> Self {
        self.keep_f32.push(prefix.to_string());
        self
    }

    /// The same policy with no tensor kept in f32 for sensitivity (for error studies).
    pub fn without_exceptions(mut self) -> Self {
        self.keep_f32.clear();
        self
    }

    /// The same policy quantizing the tensor `name` alone, every other in f32 (for error
    /// studies, one layer at a time).
    pub fn only(mut self, name: &str) -> Self {
        self.only = Some(name.to_string());
        self
    }

    /// The same policy with lookup tables split into row blocks of at most `bytes` (f32).
    pub fn with_table_block_bytes(mut self, bytes: usize) -> Self {
        self.table_block_bytes = bytes.max(1);
        self
    }

    /// The scheme this policy applies to matrices.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The component this policy was made for, if any.
    pub fn component(&self) -> Option<Component> {
        self.component
    }

    /// Bytes of the largest row block of a lookup table.
    pub fn table_block_bytes(&self) -> usize {
        self.table_block_bytes
    }

    /// What the tensor `name` with shape `file_shape` (as the file has it) becomes on the
    /// device. Only linear and convolution weights are quantized, and only when a block of
    /// [`MIN_BLOCK`] values or more divides their stored rows; everything else is f32.
    pub fn storage(&self, name: &str, file_shape: &[usize]) -> Storage {
        let Some(bits) = self.scheme.bits() else {
            return Storage::F32;
        };
        let kind = WeightKind::of(name, file_shape);
        if !matches!(kind, WeightKind::Linear | WeightKind::Conv) {
            return Storage::F32;
        }
        if self.keep_f32.iter().any(|p| name.starts_with(p.as_str())) {
            return Storage::F32;
        }
        if self
            .only
            .as_deref()
            .is_some_and(|only| match only.strip_prefix('*') {
                Some(part) => !name.contains(part),
                None => only != name,
            })
        {
            return Storage::F32;
        }
        let row = *kind
            .stored_shape(file_shape)
            .last()
            .expect("a matrix has a last dimension");
        match block_for(row, self.block) {
            Some(block) => Storage::Quantized(QuantFormat { bits, block }),
            None => Storage::F32,
        }
    }
}

/// The largest block that divides a row of `row` values: `preferred`, halved down to
/// [`MIN_BLOCK`]. None when even that does not divide it.
fn block_for(row: usize, preferred: usize) -> Option<usize> {
    let mut block = preferred.min(255);
    while block >= MIN_BLOCK {
        if row % block == 0 {
            return Some(block);
        }
        block /= 2;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_matrices_outside_the_exceptions_are_quantized() {
        let unet = Policy::new(Component::Unet, Scheme::Q8);
        let q8 = |block| {
            Storage::Quantized(QuantFormat {
                bits: Bits::Eight,
                block,
            })
        };
        assert_eq!(
            unet.storage("down_blocks.0.resnets.0.conv1.weight", &[320, 320, 3, 3]),
            q8(64)
        );
        assert_eq!(
            unet.storage("down_blocks.0.resnets.0.conv1.bias", &[320]),
            Storage::F32
        );
        assert_eq!(
            unet.storage("conv_in.weight", &[320, 4, 3, 3]),
            Storage::F32
        );
        assert_eq!(
            unet.storage("time_embedding.linear_1.weight", &[1280, 320]),
            Storage::F32
        );
        // A linear layer's stored row is d_in.
        assert_eq!(
            unet.storage("mid_block.attentions.0.proj_in.weight", &[1280, 1280]),
            q8(64)
        );
        assert_eq!(unet.storage("x.ff.net.2.weight", &[32, 96]), q8(32));
        // 288 = 32·9 is not a multiple of 64: the block falls back to 32.
        assert_eq!(unet.storage("x.conv1.weight", &[32, 32, 3, 3]), q8(32));
        // Nothing divides a row of 36 by 32 or more.
        assert_eq!(unet.storage("x.conv.weight", &[8, 4, 3, 3]), Storage::F32);
        let text = Policy::new(Component::TextEncoder, Scheme::Q8);
        assert_eq!(
            text.storage(
                "text_model.embeddings.token_embedding.weight",
                &[49408, 1024]
            ),
            Storage::F32
        );
        assert_eq!(Policy::f32().storage("a.weight", &[64, 64]), Storage::F32);
    }

    #[test]
    fn one_layer_studies_quantize_that_layer_alone() {
        let policy = Policy::new(Component::Unet, Scheme::Q4).only("a.weight");
        assert!(matches!(
            policy.storage("a.weight", &[64, 64]),
            Storage::Quantized(_)
        ));
        assert_eq!(policy.storage("b.weight", &[64, 64]), Storage::F32);
    }

    #[test]
    fn schemes_parse_and_print() {
        for s in [Scheme::F32, Scheme::Q8, Scheme::Q4] {
            assert_eq!(s.to_string().parse::<Scheme>(), Ok(s));
        }
        assert!("q3".parse::<Scheme>().is_err());
    }
}
