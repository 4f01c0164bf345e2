//! A model folder on this machine, read where it is (never cached: the cache would only copy
//! it). Weights are read in 1 MiB chunks from an offset.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom};
use std::path::Path;

use super::LoadError;

/// Bytes per read.
const READ_CHUNK: usize = 1 << 20;

fn io_error(path: &Path, e: std::io::Error) -> LoadError {
    LoadError::Io {
        path: path.display().to_string(),
        detail: e.to_string(),
    }
}

pub(super) fn text(root: &Path, relative: &str) -> Result<Option<String>, LoadError> {
    let path = root.join(relative);
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            check_root(root)?;
            Ok(None)
        }
        Err(e) => Err(io_error(&path, e)),
    }
}

/// A missing file in a missing folder is the folder's fault: say so.
fn check_root(root: &Path) -> Result<(), LoadError> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(LoadError::Io {
            path: root.display().to_string(),
            detail: "no such folder".to_string(),
        })
    }
}

pub(super) fn open(
    root: &Path,
    relative: &str,
    offset: u64,
) -> Result<Option<FileBody>, LoadError> {
    let path = root.join(relative);
    let mut file = match File::open(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => {
            check_root(root)?;
            return Ok(None);
        }
        Err(e) => return Err(io_error(&path, e)),
    };
    let len = file.metadata().map_err(|e| io_error(&path, e))?.len();
    file.seek(SeekFrom::Start(offset.min(len)))
        .map_err(|e| io_error(&path, e))?;
    Ok(Some(FileBody { file, len }))
}

/// A local file read in order.
pub(crate) struct FileBody {
    file: File,
    len: u64,
}

impl FileBody {
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    pub(crate) async fn next_chunk(&mut self) -> Result<Option<Vec<u8>>, String> {
        let mut buffer = vec![0u8; READ_CHUNK];
        let n = loop {
            match self.file.read(&mut buffer) {
                Ok(n) => break n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.to_string()),
            }
        };
        if n == 0 {
            return Ok(None);
        }
        buffer.truncate(n);
        Ok(Some(buffer))
    }
}
