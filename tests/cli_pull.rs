//! `sow pull` as a user runs it: the binary against the tiny model on a real HTTP server on
//! loopback (tests/support/model_server.rs), with the cache in a scratch folder. The license
//! comes before anything else, the report after; a second pull transfers nothing; a folder is
//! refused with one message and no license.
#![cfg(not(target_arch = "wasm32"))]

#[path = "support/loopback.rs"]
mod loopback;
#[path = "support/model_server.rs"]
mod model_server;
#[path = "support/scratch.rs"]
mod scratch;

use std::path::Path;
use std::process::{Command, Output};

use model_server::ModelServer;
use scratch::scratch;
use sow_studio::pipeline::license_notice;

const TINY: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/tiny-sd2");

/// Runs `sow pull --model <model> --cache-dir <cache>`; (success, stdout, stderr).
fn sow_pull(model: &str, cache: &Path) -> (bool, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = Command::new(env!("CARGO_BIN_EXE_sow"))
        .args(["pull", "--model", model, "--cache-dir"])
        .arg(cache)
        .output()
        .expect("the sow binary runs");
    (
        status.success(),
        String::from_utf8_lossy(&stdout).into_owned(),
        String::from_utf8_lossy(&stderr).into_owned(),
    )
}

#[test]
fn sow_pull_names_the_license_first_then_fills_the_cache_once() {
    let server = ModelServer::start(Path::new(TINY), "tiny-sd2");
    let url = server.url("tiny-sd2");
    let cache = scratch("cli-pull");

    let (ok, stdout, stderr) = sow_pull(&url, &cache);
    assert!(ok, "sow pull failed:\n{stderr}");
    assert_eq!(
        stderr.lines().next(),
        Some(license_notice().as_str()),
        "{stderr}"
    );
    let sent = server.sent();
    assert!(
        sent > 1_000_000,
        "the tiny model's weights came over the network: {sent}"
    );
    assert!(
        stdout.starts_with(&format!("pulled {url}"))
            && stdout.contains("0 B already cached")
            && !stdout.contains("0 B transferred"),
        "{stdout}"
    );
    assert!(
        std::fs::read_dir(&cache).unwrap().count() > 0,
        "nothing cached"
    );

    let (ok, stdout, stderr) = sow_pull(&url, &cache);
    assert!(ok, "the second pull failed:\n{stderr}");
    assert_eq!(server.sent(), sent, "the second pull fetched weights again");
    assert!(
        stdout.contains("0 B transferred") && stdout.contains("0 B written"),
        "{stdout}"
    );

    let (ok, _, stderr) = sow_pull(TINY, &cache);
    assert!(!ok);
    assert!(!stderr.contains(&license_notice()), "{stderr}");
    assert!(stderr.contains("nothing to pull"), "{stderr}");
    let _ = std::fs::remove_dir_all(&cache);
}
