//! Upstream client: pooled connections, per-phase deadlines, DNS, trust roots and SSE framing.

pub mod client;
pub mod dns;
pub mod sse;
pub mod tls;

pub use client::{
    AttemptError, ConnectFailure, ConnectKind, Deadlines, Phase, UpstreamClient, UpstreamResponse,
};
