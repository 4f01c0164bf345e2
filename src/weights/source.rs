//! Where the bytes of a weights file come from: memory, or (natively) a file read by seeking to
//! each tensor, so that the whole file is never held in memory at once.

#[cfg(not(target_arch = "wasm32"))]
use super::WeightError;

/// Random access to the bytes of one file.
pub trait ByteSource {
    /// The total length in bytes, when known up front.
    fn len(&self) -> Option<u64>;

    /// Reads bytes `start..end`. Returns fewer bytes only when the file ends early.
    fn read_range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, String>;
}

/// A file already in memory (fetched whole, or embedded in a test).
pub struct MemorySource<'a>(pub &'a [u8]);

impl ByteSource for MemorySource<'_> {
    fn len(&self) -> Option<u64> {
        Some(self.0.len() as u64)
    }

    fn read_range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        let len = self.0.len() as u64;
        let (start, end) = (start.min(len) as usize, end.min(len) as usize);
        Ok(self.0[start..end].to_vec())
    }
}

/// A file on disk, read tensor by tensor.
#[cfg(not(target_arch = "wasm32"))]
pub struct FileSource {
    file: std::fs::File,
    len: u64,
}

#[cfg(not(target_arch = "wasm32"))]
impl FileSource {
    /// Opens a file for reading.
    pub fn open(path: &std::path::Path) -> Result<Self, WeightError> {
        let io = |e: std::io::Error| WeightError::Io {
            file: path.display().to_string(),
            detail: e.to_string(),
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        Ok(FileSource { file, len })
    }
}

#[cfg(not(target_arch = "wasm32"))]
impl ByteSource for FileSource {
    fn len(&self) -> Option<u64> {
        Some(self.len)
    }

    fn read_range(&mut self, start: u64, end: u64) -> Result<Vec<u8>, String> {
        use std::io::{Read, Seek, SeekFrom};
        let end = end.min(self.len);
        let start = start.min(end);
        self.file
            .seek(SeekFrom::Start(start))
            .map_err(|e| e.to_string())?;
        let mut buf = vec![0u8; (end - start) as usize];
        self.file.read_exact(&mut buf).map_err(|e| e.to_string())?;
        Ok(buf)
    }
}

/// Finds a component's weights in a diffusers folder (`unet/`, `text_encoder/`, ...): the
/// `<stem>.fp16.safetensors` variant (half the bytes, and f16 widens to f32 exactly), or else
/// `<stem>.safetensors`, where the stem is `diffusion_pytorch_model` for the UNet and VAE and
/// `model` for the text encoder.
#[cfg(not(target_arch = "wasm32"))]
pub fn find_weights_file(
    component_dir: &std::path::Path,
    stem: &str,
) -> Result<std::path::PathBuf, WeightError> {
    let candidates = [
        format!("{stem}.fp16.safetensors"),
        format!("{stem}.safetensors"),
    ];
    candidates
        .iter()
        .map(|name| component_dir.join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| WeightError::NotFound {
            dir: component_dir.display().to_string(),
            candidates: candidates.join(" or "),
        })
}
