//! The Toy lab: the diffusion-in-diffusion experiment as a teaching aid.

use leptos::prelude::*;

/// The Toy lab page.
#[component]
pub fn ToyPage() -> impl IntoView {
    view! {
        <h1 class="page-title">"Toy lab"</h1>
        <p class="lede">
            "How information diffuses inside a diffusion model: a white and a gray half merged \
             at every noise level, and what attention does to the blend."
        </p>
        <p class="notice" data-state="info">
            "The experiment is not in this build yet."
        </p>
    }
}
