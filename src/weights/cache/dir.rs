//! The cache's storage natively: a folder on disk. Writes go to a temporary file that is then
//! renamed over the target, so a file is either whole or absent, never torn.

use std::io::ErrorKind;
use std::path::PathBuf;

use super::StoreError;

/// A folder, addressed by `/`-separated relative paths.
pub(crate) struct Store {
    root: PathBuf,
}

/// ENOSPC and EDQUOT on Linux and macOS: the disk or the user's quota is full.
const NO_SPACE: [i32; 3] = [28, 122, 69];

fn classify(what: &str, error: std::io::Error) -> StoreError {
    let full = matches!(
        error.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded
    ) || error
        .raw_os_error()
        .is_some_and(|code| NO_SPACE.contains(&code));
    if full {
        StoreError::Quota(format!("{what}: {error}"))
    } else {
        StoreError::Other(format!("{what}: {error}"))
    }
}

fn write_parts(path: &std::path::Path, parts: &[&[u8]]) -> std::io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    for part in parts {
        file.write_all(part)?;
    }
    file.sync_data()
}

impl Store {
    pub(crate) fn new(root: PathBuf) -> Self {
        Store { root }
    }

    pub(crate) fn location(&self) -> String {
        self.root.display().to_string()
    }

    fn path(&self, relative: &str) -> PathBuf {
        relative
            .split('/')
            .filter(|part| !part.is_empty())
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    pub(crate) async fn read(&self, relative: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let path = self.path(relative);
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
            Err(e) => Err(classify(&path.display().to_string(), e)),
        }
    }

    /// Writes a file made of `parts`, replacing it whole.
    pub(crate) async fn write(&self, relative: &str, parts: &[&[u8]]) -> Result<(), StoreError> {
        let path = self.path(relative);
        let fail = |e| classify(&path.display().to_string(), e);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let temporary = path.with_extension(format!("partial-{}", std::process::id()));
        let written =
            write_parts(&temporary, parts).and_then(|_| std::fs::rename(&temporary, &path));
        if let Err(e) = written {
            let _ = std::fs::remove_file(&temporary);
            return Err(fail(e));
        }
        Ok(())
    }

    pub(crate) async fn remove(&self, relative: &str) -> Result<(), StoreError> {
        let path = self.path(relative);
        let result = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        match result {
            Err(e) if e.kind() != ErrorKind::NotFound => {
                Err(classify(&path.display().to_string(), e))
            }
            _ => Ok(()),
        }
    }

    /// The names in a folder (none when it does not exist), sorted.
    pub(crate) async fn list(&self, relative: &str) -> Result<Vec<String>, StoreError> {
        let path = self.path(relative);
        let entries = match std::fs::read_dir(&path) {
            Ok(entries) => entries,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(classify(&path.display().to_string(), e)),
        };
        let mut names: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| e.file_name().into_string().ok())
            .collect();
        names.sort();
        Ok(names)
    }

    /// Bytes of every file below a path.
    pub(crate) async fn size(&self, relative: &str) -> Result<u64, StoreError> {
        fn walk(path: &std::path::Path) -> u64 {
            match std::fs::metadata(path) {
                Ok(m) if m.is_dir() => std::fs::read_dir(path)
                    .map(|entries| {
                        entries
                            .filter_map(|e| e.ok())
                            .map(|e| walk(&e.path()))
                            .sum()
                    })
                    .unwrap_or(0),
                Ok(m) => m.len(),
                Err(_) => 0,
            }
        }
        Ok(walk(&self.path(relative)))
    }
}
