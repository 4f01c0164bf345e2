//! Diffusion sampling: the DDIM scheduler (docs/method.md §1).

pub mod ddim;
pub mod sow;
