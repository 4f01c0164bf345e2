//! The Settings page: the Gemini planner's key (in memory by default, remembered on this
//! device only on request, forgettable), what is sent to Google, and the model.

use leptos::prelude::*;

use crate::app::gemini::remember_key;
use crate::app::state::app_state;
use crate::diffusion::sow::planner::ApiKey;

/// Gemini models offered (any other can be typed).
const MODELS: [&str; 3] = [
    "gemini-2.5-flash",
    "gemini-2.5-pro",
    "gemini-2.5-flash-lite",
];

/// The Settings page.
#[component]
pub fn SettingsPage() -> impl IntoView {
    let app = app_state();
    let gemini = app.gemini;
    let draft = RwSignal::new(String::new());
    let remember = RwSignal::new(gemini.with_untracked(|g| g.remembered));
    let message = RwSignal::new(None::<(&'static str, String)>);

    let save = move || {
        let text = draft.get_untracked().trim().to_string();
        if let Err(e) = ApiKey::new(&text) {
            message.set(Some(("error", e.to_string())));
            return;
        }
        let keep = remember.get_untracked();
        let stored = if keep {
            remember_key(Some(&text))
        } else {
            remember_key(None)
        };
        gemini.update(|g| {
            g.key = Some(text);
            g.remembered = keep && stored.is_ok();
        });
        draft.set(String::new());
        message.set(Some(match stored {
            Ok(()) if keep => ("ready", "Key set, and remembered on this device.".into()),
            Ok(()) => (
                "ready",
                "Key set for this visit (kept in memory only).".into(),
            ),
            Err(e) => (
                "error",
                format!("Key set for this visit, but it could not be remembered: {e}"),
            ),
        }));
    };
    let forget = move || {
        let _ = remember_key(None);
        gemini.update(|g| {
            g.key = None;
            g.remembered = false;
        });
        remember.set(false);
        message.set(Some((
            "ready",
            "Key forgotten: plans are made offline.".into(),
        )));
    };
    let models = MODELS
        .into_iter()
        .map(|m| view! { <option value=m></option> })
        .collect_view();

    view! {
        <h1 class="page-title">"Settings"</h1>
        <p class="lede">
            "SOW can ask Google's Gemini, with your own API key, where a condition belongs on \
             the canvas, which region relates to it, and how to enrich the prompt. Without a key \
             it plans offline."
        </p>
        <div class="panels">
            <section class="panel" aria-labelledby="gemini-title">
                <h2 id="gemini-title">"Gemini planner"</h2>
                <p class="notice" data-state="info" id="gemini-privacy">
                    "What is sent to Google when you plan with Gemini: your prompt and each visual \
                     condition (its masked crop, as a PNG). Nothing else leaves this machine: the \
                     model, the generation and your images stay here. The key is sent only to the \
                     Gemini endpoint below."
                </p>
                <p class="status" id="gemini-key-state" role="status" data-state=move || if gemini.with(|g| g.key.is_some()) { "ready" } else { "idle" }>
                    {move || gemini.with(|g| match (&g.key, g.remembered) {
                        (Some(_), true) => "A key is set and remembered on this device.",
                        (Some(_), false) => "A key is set for this visit only.",
                        (None, _) => "No key: plans are made offline.",
                    })}
                </p>
                <form class="stack" on:submit=move |ev| { ev.prevent_default(); save(); }>
                    <div class="field">
                        <label for="gemini-key">"API key"</label>
                        <input
                            id="gemini-key"
                            type="password"
                            autocomplete="off"
                            spellcheck="false"
                            prop:value=move || draft.get()
                            on:input=move |ev| draft.set(event_target_value(&ev))
                        />
                    </div>
                    <label class="choice" for="gemini-remember">
                        <input
                            id="gemini-remember"
                            type="checkbox"
                            prop:checked=move || remember.get()
                            on:change=move |ev| remember.set(event_target_checked(&ev))
                        />
                        "Remember on this device (stored in this browser until you forget it)"
                    </label>
                    <div class="row">
                        <button type="submit" class="primary">"Use this key"</button>
                        <button type="button" disabled=move || gemini.with(|g| g.key.is_none()) on:click=move |_| forget()>
                            "Forget the key"
                        </button>
                    </div>
                </form>
                <Show when=move || message.with(Option::is_some)>
                    <p class="status" role="status" id="gemini-message" data-state=move || message.get().map(|m| m.0).unwrap_or("idle")>
                        {move || message.get().map(|m| m.1).unwrap_or_default()}
                    </p>
                </Show>
                <div class="field">
                    <label for="gemini-model">"Model"</label>
                    <input
                        id="gemini-model"
                        list="gemini-models"
                        prop:value=move || gemini.with(|g| g.model.clone())
                        on:change=move |ev| { let v = event_target_value(&ev); gemini.update(|g| g.model = v.trim().to_string()); }
                    />
                    <datalist id="gemini-models">{models}</datalist>
                </div>
                <details>
                    <summary>"Endpoint"</summary>
                    <div class="field">
                        <label for="gemini-endpoint">"Gemini API base URL"</label>
                        <input
                            id="gemini-endpoint"
                            type="url"
                            prop:value=move || gemini.with(|g| g.endpoint.clone())
                            on:change=move |ev| { let v = event_target_value(&ev); gemini.update(|g| g.endpoint = v.trim().to_string()); }
                        />
                        <p class="hint">"Google's by default; a proxy of your own may stand in."</p>
                    </div>
                </details>
            </section>
        </div>
    }
}
