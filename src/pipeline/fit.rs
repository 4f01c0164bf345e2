//! Will Stable Diffusion 2.1 fit this GPU? Checked before anything is downloaded, from what a
//! browser tells: the adapter's limits, whether it is a software adapter, and the machine's
//! memory (`navigator.deviceMemory`). WebGPU does not say how much memory a GPU has, so the
//! memory check is a proxy: integrated GPUs share the machine's memory, and a machine that
//! reports less than a choice needs will not hold it on any GPU it is likely to have.

use crate::model::attention::DEFAULT_BUDGET_BYTES;
use crate::pipeline::format_bytes;
use crate::weights::Scheme;

/// What the browser reports about the adapter and the machine.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct GpuFacts {
    /// `limits.maxStorageBufferBindingSize`, bytes.
    pub max_storage_binding: Option<u64>,
    /// `limits.maxBufferSize`, bytes.
    pub max_buffer: Option<u64>,
    /// `navigator.deviceMemory` in bytes (rounded by the browser; older versions cap it at 8 GB).
    pub device_memory: Option<u64>,
    /// `info.isFallbackAdapter`: the "GPU" is software on the CPU.
    pub software: bool,
}

/// The verdict for one choice of scheme.
#[derive(Clone, Debug, PartialEq)]
pub enum Fit {
    /// Nothing speaks against it.
    Likely(String),
    /// It may work, but something the user should know speaks against it.
    Doubtful(String),
    /// The adapter cannot run the engine at all.
    No(String),
}

impl Fit {
    /// A short machine-readable state for `data-state`.
    pub fn state(&self) -> &'static str {
        match self {
            Fit::Likely(_) => "ready",
            Fit::Doubtful(_) => "warn",
            Fit::No(_) => "error",
        }
    }

    /// The verdict in words.
    pub fn message(&self) -> &str {
        match self {
            Fit::Likely(m) | Fit::Doubtful(m) | Fit::No(m) => m,
        }
    }
}

/// The biggest buffer any network binds: attention logits and VAE bands are chunked to this
/// budget (WebGPU's default binding limit), and the largest weight, the UNet's
/// [1280, 2560, 3, 3] convolution, is 118 MB in f32, below it.
pub const LARGEST_BINDING: u64 = DEFAULT_BUDGET_BYTES as u64;

/// About what SD-2.1-base takes on the GPU with the UNet stored in `scheme`
/// (docs/quantization.md): the UNet's weights, the f32 text encoder (1.36 GB) and VAE
/// (0.33 GB), and about 1 GB of activations for a 512 px run. Bytes.
pub fn gpu_estimate(scheme: Scheme) -> u64 {
    let unet = match scheme {
        Scheme::F32 => 3_460_000_000,
        Scheme::Q8 => 927_000_000,
        Scheme::Q4 => 496_000_000,
    };
    unet + 1_360_000_000 + 330_000_000 + 1_000_000_000
}

/// Judges whether SD-2.1 with the UNet in `scheme` fits what `facts` describe.
pub fn judge(scheme: Scheme, facts: &GpuFacts) -> Fit {
    let need = gpu_estimate(scheme);
    for (limit, value) in [
        ("maxStorageBufferBindingSize", facts.max_storage_binding),
        ("maxBufferSize", facts.max_buffer),
    ] {
        if let Some(value) = value.filter(|&v| v < LARGEST_BINDING) {
            return Fit::No(format!(
                "This adapter's {limit} is {}, below the {} the engine binds at once \
                 (WebGPU's own minimum): it cannot run Stable Diffusion.",
                format_bytes(value),
                format_bytes(LARGEST_BINDING)
            ));
        }
    }
    let mut doubts = Vec::new();
    if let Some(memory) = facts.device_memory.filter(|&m| m < need) {
        let smaller = match scheme {
            Scheme::F32 => " Choose 8-bit or 4-bit weights.",
            Scheme::Q8 => " Choose 4-bit weights, or expect the load or a run to fail.",
            Scheme::Q4 => " Expect the load or a run to fail.",
        };
        doubts.push(format!(
            "This device reports about {} of memory, and this choice needs about {} on the \
             GPU.{smaller}",
            format_bytes(memory),
            format_bytes(need)
        ));
    }
    if facts.software {
        doubts.push(
            "This is a software adapter (the GPU is emulated on the CPU): a 512 px image \
             would take hours."
                .to_string(),
        );
    }
    if doubts.is_empty() {
        Fit::Likely(
            "The adapter's limits allow it. WebGPU does not tell how much memory the GPU has: \
             if loading fails for lack of memory, choose a smaller scheme."
                .to_string(),
        )
    } else {
        Fit::Doubtful(doubts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GB: u64 = 1_000_000_000;
    const MIB: u64 = 1 << 20;

    fn laptop() -> GpuFacts {
        GpuFacts {
            max_storage_binding: Some(128 * MIB),
            max_buffer: Some(256 * MIB),
            device_memory: Some(8 * GB),
            software: false,
        }
    }

    #[test]
    fn the_estimates_order_the_schemes_and_q8_stays_under_four_gigabytes() {
        assert!(gpu_estimate(Scheme::Q4) < gpu_estimate(Scheme::Q8));
        assert!(gpu_estimate(Scheme::Q8) < gpu_estimate(Scheme::F32));
        assert!(gpu_estimate(Scheme::Q8) < 4 * GB);
    }

    #[test]
    fn webgpu_default_limits_and_enough_memory_fit() {
        for scheme in [Scheme::Q4, Scheme::Q8] {
            assert_eq!(judge(scheme, &laptop()).state(), "ready", "{scheme:?}");
        }
        // f32 needs 6.15 GB: under the 8 GB a laptop reports.
        assert_eq!(judge(Scheme::F32, &laptop()).state(), "ready");
    }

    #[test]
    fn a_binding_limit_below_the_engines_chunks_cannot_run() {
        let small = GpuFacts {
            max_storage_binding: Some(64 * MIB),
            ..laptop()
        };
        let fit = judge(Scheme::Q4, &small);
        assert_eq!(fit.state(), "error");
        assert!(
            fit.message().contains("maxStorageBufferBindingSize"),
            "{fit:?}"
        );
        let small = GpuFacts {
            max_buffer: Some(100 * MIB),
            ..laptop()
        };
        assert!(judge(Scheme::Q8, &small)
            .message()
            .contains("maxBufferSize"));
    }

    #[test]
    fn too_little_memory_is_a_doubt_that_names_a_smaller_scheme() {
        let phone = GpuFacts {
            device_memory: Some(4 * GB),
            ..laptop()
        };
        let fit = judge(Scheme::F32, &phone);
        assert_eq!(fit.state(), "warn");
        assert!(fit.message().contains("4.00 GB"), "{fit:?}");
        assert!(fit.message().contains("8-bit or 4-bit"), "{fit:?}");
        assert_eq!(judge(Scheme::Q8, &phone).state(), "ready");
        let tiny = GpuFacts {
            device_memory: Some(2 * GB),
            ..laptop()
        };
        assert!(judge(Scheme::Q8, &tiny).message().contains("Choose 4-bit"));
    }

    #[test]
    fn a_software_adapter_is_named_and_unknown_facts_are_not_held_against_it() {
        let swiftshader = GpuFacts {
            software: true,
            ..GpuFacts::default()
        };
        let fit = judge(Scheme::Q8, &swiftshader);
        assert_eq!(fit.state(), "warn");
        assert!(fit.message().contains("software adapter"), "{fit:?}");
        assert_eq!(judge(Scheme::Q8, &GpuFacts::default()).state(), "ready");
    }
}
