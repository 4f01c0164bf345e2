//! The Settings page: the Gemini planner's key and model.

use leptos::prelude::*;

/// The Settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    view! {
        <h1 class="page-title">"Settings"</h1>
        <p class="lede">
            "SOW can ask Google's Gemini, with your own API key, where a condition belongs on \
             the canvas and how to enrich the prompt. Without a key it plans offline."
        </p>
        <p class="notice" data-state="info">
            "The Gemini planner is not in this build yet: every plan is made offline."
        </p>
    }
}
