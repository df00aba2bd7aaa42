//! Upstream client: pooled connections, per-phase deadlines, DNS, trust roots and SSE framing.

pub mod client;
pub mod conn;
pub mod dns;
pub(crate) mod io;
pub mod pool;
pub mod prewarm;
pub mod sse;
pub mod tls;

pub use client::{
    AttemptError, ConnectFailure, ConnectKind, Deadlines, Phase, UpstreamClient, UpstreamResponse,
};
pub use prewarm::Prewarmer;
