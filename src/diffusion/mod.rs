//! Diffusion: the DDIM scheduler (docs/method.md §1), the COW/SOW run (§2–3) and the toy
//! experiment (§4).

pub mod ddim;
pub mod sow;
pub mod toy;
