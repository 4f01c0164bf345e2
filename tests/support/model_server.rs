//! A model host on loopback for the weights tests: serves a folder in the diffusers layout
//! over real HTTP, with `Range: bytes=N-` support, and injects faults on request: a 404, a
//! status, an HTML page, a server that ignores ranges, a connection dropped after some bytes,
//! a file shorter than its header says, replaced contents, a redirect. Counts every body byte
//! it sends, so that tests can check what a load transferred.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::loopback::{Loopback, Reply, Request, Response};

/// What to do to requests for one path.
#[derive(Clone, Debug)]
pub enum Fault {
    /// 404 Not Found.
    Missing,
    /// This status, with a short text body.
    Status(u16),
    /// A 200 HTML page (a login or error page where the file should be).
    Html,
    /// Ranges are ignored: always the whole file with 200.
    IgnoreRange,
    /// The next `times` responses are cut after `after` body bytes (the connection drops; the
    /// declared length stays the full one).
    Drop { after: usize, times: usize },
    /// The file is served cut to its first `len` bytes, with an honest length: a truncated file.
    Truncate { len: usize },
    /// The connection is closed without an answer.
    Close,
    /// A 302 redirect to this path (on the same server).
    Redirect(String),
}

#[derive(Default)]
struct State {
    faults: BTreeMap<String, Fault>,
    replaced: BTreeMap<String, Vec<u8>>,
}

/// The server and its controls.
pub struct ModelServer {
    server: Loopback,
    state: Arc<Mutex<State>>,
    sent: Arc<AtomicU64>,
    sent_per_path: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl ModelServer {
    /// Serves the folder `root` under `/<prefix>/`.
    pub fn start(root: &Path, prefix: &str) -> ModelServer {
        let state = Arc::new(Mutex::new(State::default()));
        let sent = Arc::new(AtomicU64::new(0));
        let sent_per_path = Arc::new(Mutex::new(BTreeMap::new()));
        let handler = {
            let (state, sent, per_path) = (state.clone(), sent.clone(), sent_per_path.clone());
            let root = root.to_path_buf();
            let prefix = format!("/{}/", prefix.trim_matches('/'));
            move |request: &Request| {
                let reply = answer(&root, &prefix, &state, request);
                // Count file bytes only (2xx bodies), not error pages.
                if let Reply::Respond(response) = &reply {
                    if !(200..300).contains(&response.status) {
                        return reply;
                    }
                    let n = response
                        .cut_after
                        .map_or(response.body_len(), |c| c.min(response.body_len()))
                        as u64;
                    sent.fetch_add(n, Ordering::SeqCst);
                    *per_path
                        .lock()
                        .unwrap()
                        .entry(request.path().to_string())
                        .or_default() += n;
                }
                reply
            }
        };
        ModelServer {
            server: Loopback::start(handler),
            state,
            sent,
            sent_per_path,
        }
    }

    /// The base URL of the model, ending in `/`.
    pub fn url(&self, prefix: &str) -> String {
        format!("{}/{}/", self.server.url(), prefix.trim_matches('/'))
    }

    /// Injects a fault on the requests whose path ends with `path`.
    pub fn fault(&self, path: &str, fault: Fault) {
        self.state
            .lock()
            .unwrap()
            .faults
            .insert(path.to_string(), fault);
    }

    /// Serves `bytes` for the requests whose path ends with `path`.
    pub fn replace(&self, path: &str, bytes: Vec<u8>) {
        self.state
            .lock()
            .unwrap()
            .replaced
            .insert(path.to_string(), bytes);
    }

    /// Removes every fault and replacement.
    pub fn heal(&self) {
        let mut state = self.state.lock().unwrap();
        state.faults.clear();
        state.replaced.clear();
    }

    /// Body bytes sent so far.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::SeqCst)
    }

    /// Body bytes sent for paths ending with `suffix`.
    pub fn sent_for(&self, suffix: &str) -> u64 {
        self.sent_per_path
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.ends_with(suffix))
            .map(|(_, n)| n)
            .sum()
    }

    /// Every request so far.
    pub fn requests(&self) -> Vec<Request> {
        self.server.requests()
    }

    /// The requests whose path ends with `suffix`.
    pub fn requests_for(&self, suffix: &str) -> Vec<Request> {
        self.requests()
            .into_iter()
            .filter(|r| r.path().ends_with(suffix))
            .collect()
    }

    /// Forgets the requests and byte counts so far.
    pub fn reset_counts(&self) {
        self.server.clear_log();
        self.sent.store(0, Ordering::SeqCst);
        self.sent_per_path.lock().unwrap().clear();
    }
}

fn answer(root: &Path, prefix: &str, state: &Mutex<State>, request: &Request) -> Reply {
    let path = request.path().to_string();
    if request.method != "GET" {
        return Reply::Respond(Response::new(405, "only GET"));
    }
    let mut state = state.lock().unwrap();
    let fault = state
        .faults
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(suffix, fault)| (suffix.clone(), fault.clone()));
    let mut cut_after = None;
    let mut ignore_range = false;
    let mut truncate = None;
    if let Some((suffix, fault)) = fault {
        match fault {
            Fault::Missing => return Reply::Respond(Response::new(404, "Not Found")),
            Fault::Status(status) => {
                return Reply::Respond(Response::new(status, format!("error {status}")))
            }
            Fault::Html => {
                return Reply::Respond(
                    Response::new(
                        200,
                        "<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n",
                    )
                    .header("Content-Type", "text/html; charset=utf-8"),
                )
            }
            Fault::Close => return Reply::Close,
            Fault::Redirect(to) => {
                return Reply::Respond(Response::new(302, "").header("Location", &to))
            }
            Fault::IgnoreRange => ignore_range = true,
            Fault::Truncate { len } => truncate = Some(len),
            Fault::Drop { after, times } => {
                cut_after = Some(after);
                if times <= 1 {
                    state.faults.remove(&suffix);
                } else {
                    state
                        .faults
                        .insert(suffix, Fault::Drop { after, times: times - 1 });
                }
            }
        }
    }
    let replaced = state
        .replaced
        .iter()
        .find(|(suffix, _)| path.ends_with(suffix.as_str()))
        .map(|(_, bytes)| bytes.clone());
    drop(state);
    let Some(relative) = path.strip_prefix(prefix) else {
        return Reply::Respond(Response::new(404, "Not Found"));
    };
    if relative
        .split('/')
        .any(|part| part == ".." || part.is_empty())
    {
        return Reply::Respond(Response::new(404, "Not Found"));
    }
    // The file's contents: replaced bytes in memory, or the file on disk, streamed.
    let file = PathBuf::from(root).join(relative);
    let total = match &replaced {
        Some(bytes) => bytes.len(),
        None => match std::fs::metadata(&file) {
            Ok(m) if m.is_file() => m.len() as usize,
            _ => return Reply::Respond(Response::new(404, "Not Found")),
        },
    };
    let total = truncate.map_or(total, |len| len.min(total));
    let body = |status: u16, start: usize| match &replaced {
        Some(bytes) => Response::new(status, bytes[start..total].to_vec()),
        None => Response::file(status, &file, start as u64, (total - start) as u64),
    };
    let start = request
        .header("range")
        .filter(|_| !ignore_range)
        .and_then(|r| r.strip_prefix("bytes="))
        .and_then(|r| r.strip_suffix('-'))
        .and_then(|n| n.parse::<usize>().ok());
    let mut response = match start {
        Some(start) if start >= total => {
            Response::new(416, "").header("Content-Range", &format!("bytes */{total}"))
        }
        Some(start) => body(206, start).header(
            "Content-Range",
            &format!("bytes {start}-{}/{total}", total - 1),
        ),
        None => body(200, 0),
    };
    response = response.header("Content-Type", "application/octet-stream");
    if let Some(after) = cut_after {
        response = response.cut_after(after);
    }
    Reply::Respond(response)
}
