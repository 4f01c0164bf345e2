//! Scratch folders for the tests that write files (caches, packs), under the system's
//! temporary folder, one per test and process.

#![allow(dead_code)]

use std::path::PathBuf;

/// An empty scratch folder named `name` for one test.
pub fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir()
        .join("sow-studio-tests")
        .join(format!("{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
