//! Upstream client: pooled connections, per-phase deadlines and SSE framing.

pub mod sse;
