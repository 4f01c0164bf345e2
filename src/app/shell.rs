//! The frame around the pages: the masthead, the tabs that pick a page, and the pages
//! themselves. There is no router: every page stays mounted (a page keeps its inputs while
//! another is shown) and the URL's fragment (`#model`) names the page shown, so that a link or
//! a reload opens the same page and the browser's Back button goes to the previous one.

use leptos::prelude::*;
use wasm_bindgen::JsCast;

use super::model::unload_on_gpu_fault;
use super::pages::{DiagnosticsPage, ModelPage, SettingsPage, StudioPage, ToyPage};
use super::state::AppState;

/// The pages, in tab order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    Studio,
    Model,
    Toy,
    Settings,
    Diagnostics,
}

impl Page {
    pub const ALL: [Page; 5] = [
        Page::Studio,
        Page::Model,
        Page::Toy,
        Page::Settings,
        Page::Diagnostics,
    ];

    /// The tab's label (and the page's accessible name).
    pub fn title(self) -> &'static str {
        match self {
            Page::Studio => "Studio",
            Page::Model => "Model",
            Page::Toy => "Toy lab",
            Page::Settings => "Settings",
            Page::Diagnostics => "Diagnostics",
        }
    }

    /// The URL fragment that opens the page.
    pub fn slug(self) -> &'static str {
        match self {
            Page::Studio => "studio",
            Page::Model => "model",
            Page::Toy => "toy",
            Page::Settings => "settings",
            Page::Diagnostics => "diagnostics",
        }
    }

    fn from_hash(hash: &str) -> Option<Page> {
        let slug = hash.trim_start_matches('#');
        Page::ALL.into_iter().find(|p| p.slug() == slug)
    }

    fn tab_id(self) -> String {
        format!("tab-{}", self.slug())
    }

    fn panel_id(self) -> String {
        format!("page-{}", self.slug())
    }

    fn index(self) -> usize {
        Page::ALL.iter().position(|&p| p == self).unwrap_or(0)
    }
}

/// The page the URL names, Studio when it names none.
fn page_from_location() -> Page {
    web_sys::window()
        .and_then(|w| w.location().hash().ok())
        .and_then(|hash| Page::from_hash(&hash))
        .unwrap_or(Page::Studio)
}

/// Shows `page` and records it in the URL (a history entry, so Back returns).
pub fn open_page(state: AppState, page: Page) {
    state.page.set(page);
    if let Some(window) = web_sys::window() {
        let location = window.location();
        if location.hash().ok().as_deref() != Some(&format!("#{}", page.slug())) {
            let _ = location.set_hash(page.slug());
        }
    }
}

/// The whole app.
#[component]
pub fn App() -> impl IntoView {
    let state = AppState::new(page_from_location());
    provide_context(state);
    state.start_probe();
    unload_on_gpu_fault(state.model);

    // Back/Forward and edited URLs change the fragment: follow it.
    let listener = window_event_listener(leptos::ev::hashchange, move |_| {
        state.page.set(page_from_location());
    });
    on_cleanup(move || listener.remove());

    view! {
        <a class="skip-link" href="#main">"Skip to content"</a>
        <header class="topbar">
            <div class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                <span class="brand-name">"SOW Studio"</span>
            </div>
            <Tabs state/>
        </header>
        <main id="main" tabindex="-1">
            <PagePanel page=Page::Studio state><StudioPage/></PagePanel>
            <PagePanel page=Page::Model state><ModelPage/></PagePanel>
            <PagePanel page=Page::Toy state><ToyPage/></PagePanel>
            <PagePanel page=Page::Settings state><SettingsPage/></PagePanel>
            <PagePanel page=Page::Diagnostics state><DiagnosticsPage/></PagePanel>
        </main>
        // Filled by the panic hook: after a panic the wasm module is dead, so the page must
        // say so itself instead of leaving a spinner forever.
        <div id="fatal-error" class="fatal" role="alert" hidden></div>
        <footer class="colophon">
            "Stable Diffusion 2.1 on your GPU through WebGPU. Rust, burn and Leptos, compiled to \
             WebAssembly. Nothing leaves this machine unless you ask for the Gemini planner."
        </footer>
    }
}

/// The tab strip (WAI-ARIA tabs: arrow keys, Home and End move between tabs and open them).
#[component]
fn Tabs(state: AppState) -> impl IntoView {
    let on_keydown = move |ev: leptos::ev::KeyboardEvent| {
        let current = state.page.get_untracked().index();
        let last = Page::ALL.len() - 1;
        let next = match ev.key().as_str() {
            "ArrowRight" => (current + 1) % Page::ALL.len(),
            "ArrowLeft" => (current + last) % Page::ALL.len(),
            "Home" => 0,
            "End" => last,
            _ => return,
        };
        ev.prevent_default();
        let page = Page::ALL[next];
        open_page(state, page);
        focus_element(&page.tab_id());
    };
    let tabs = Page::ALL
        .into_iter()
        .map(|page| {
            let selected = move || state.page.get() == page;
            view! {
                <button
                    type="button"
                    role="tab"
                    id=page.tab_id()
                    aria-controls=page.panel_id()
                    aria-selected=move || selected().to_string()
                    tabindex=move || if selected() { "0" } else { "-1" }
                    on:click=move |_| open_page(state, page)
                >
                    {page.title()}
                </button>
            }
        })
        .collect_view();
    view! {
        <nav class="tabs" aria-label="Pages">
            <div role="tablist" aria-label="Pages" on:keydown=on_keydown>
                {tabs}
            </div>
        </nav>
    }
}

/// One page: shown when its tab is selected, kept mounted otherwise.
#[component]
fn PagePanel(page: Page, state: AppState, children: Children) -> impl IntoView {
    view! {
        <section
            role="tabpanel"
            class="page"
            id=page.panel_id()
            aria-labelledby=page.tab_id()
            hidden=move || state.page.get() != page
        >
            {children()}
        </section>
    }
}

/// Moves keyboard focus to the element with this id, if it can take focus.
pub fn focus_element(id: &str) {
    if let Some(element) = web_sys::window()
        .and_then(|w| w.document())
        .and_then(|d| d.get_element_by_id(id))
        .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
    {
        let _ = element.focus();
    }
}
