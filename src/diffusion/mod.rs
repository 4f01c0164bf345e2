//! Diffusion sampling: the DDIM scheduler (ALGORITHM.md §1).

pub mod ddim;
