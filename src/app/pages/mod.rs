//! One module per page of the app.

mod diagnostics;
mod model;
mod settings;
mod studio;
mod toy;

pub use diagnostics::DiagnosticsPage;
pub use model::ModelPage;
pub use settings::SettingsPage;
pub use studio::StudioPage;
pub use toy::ToyPage;
