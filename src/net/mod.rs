//! HTTP for the engine, the same API natively (ureq) and in the browser (fetch through
//! gloo-net): JSON calls for the planner, streamed and ranged downloads for the weights.

pub mod http;
pub mod stream;
