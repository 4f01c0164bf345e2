//! The Gemini planner's settings as the user set them. The key is the user's: it lives in
//! this page's memory and goes only to the Gemini endpoint, in a request header; it is written
//! to this browser's `localStorage` only when the user ticks "remember on this device", and
//! "Forget" removes it from both.

use crate::diffusion::sow::planner::GeminiSettings;

/// The `localStorage` item holding a remembered key.
const KEY_ITEM: &str = "sow-studio.gemini-key";

/// The planner's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct GeminiConfig {
    /// The API key, when the user gave one.
    pub key: Option<String>,
    /// Whether the key is remembered on this device.
    pub remembered: bool,
    /// The model asked.
    pub model: String,
    /// The API's base URL.
    pub endpoint: String,
}

impl GeminiConfig {
    /// The settings at start-up: a remembered key, if any, and the defaults.
    pub fn at_start() -> Self {
        let defaults = GeminiSettings::default();
        let key = local_storage().and_then(|s| s.get_item(KEY_ITEM).ok().flatten());
        GeminiConfig {
            remembered: key.is_some(),
            key,
            model: defaults.model,
            endpoint: defaults.endpoint,
        }
    }

    /// The engine's settings.
    pub fn settings(&self) -> GeminiSettings {
        GeminiSettings {
            model: self.model.clone(),
            endpoint: self.endpoint.clone(),
            ..GeminiSettings::default()
        }
    }
}

fn local_storage() -> Option<web_sys::Storage> {
    web_sys::window()?.local_storage().ok().flatten()
}

/// Writes the key to this device's storage (`Some`) or removes it (`None`).
pub fn remember_key(key: Option<&str>) -> Result<(), String> {
    let storage = local_storage().ok_or("this browser offers no local storage")?;
    let outcome = match key {
        Some(key) => storage.set_item(KEY_ITEM, key),
        None => storage.remove_item(KEY_ITEM),
    };
    outcome.map_err(|e| super::js_error_message(&e))
}
