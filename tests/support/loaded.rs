//! A model load as the weights tests look at it: its result and every event it emitted.

#![allow(dead_code)]

use sow_studio::pipeline::{LoadError, LoadEvent, LoadReport, Models};

/// A load's result with every event it emitted.
pub struct Loaded {
    pub result: Result<Models, LoadError>,
    pub events: Vec<LoadEvent>,
}

impl Loaded {
    /// The models; panics with the error when the load failed.
    pub fn models(&self) -> &Models {
        match &self.result {
            Ok(models) => models,
            Err(e) => panic!("the load failed: {e}"),
        }
    }

    /// The error's message; panics when the load succeeded.
    pub fn error(&self) -> String {
        match &self.result {
            Ok(_) => panic!("the load should have failed"),
            Err(e) => e.to_string(),
        }
    }

    /// The totals of a finished load.
    pub fn report(&self) -> &LoadReport {
        self.events
            .iter()
            .find_map(|e| match e {
                LoadEvent::Finished(report) => Some(report),
                _ => None,
            })
            .expect("a finished load reports its totals")
    }

    /// The notices, in order.
    pub fn notices(&self) -> Vec<&str> {
        self.events
            .iter()
            .filter_map(|e| match e {
                LoadEvent::Notice(text) => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}
