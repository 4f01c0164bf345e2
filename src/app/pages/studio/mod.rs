//! The Studio page (the landing page): conditions, prompt and options, the run, the result.

use leptos::prelude::*;

use crate::app::webgpu::GpuNotice;

/// The Studio page.
#[component]
pub fn StudioPage() -> impl IntoView {
    view! {
        <h1 class="page-title">"Studio"</h1>
        <p class="lede">
            "Give Stable Diffusion a visual condition (a face, part of a cat or a car) and a \
             prompt: it grows a whole image around the condition that keeps its pixels and \
             identity while following the text."
        </p>
        <GpuNotice/>
    }
}
