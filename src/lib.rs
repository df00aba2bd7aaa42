//! Switchyard: an LLM gateway sidecar on Pingora.
//!
//! Data flows one way: file → [`config::schema`] → [`config::compile`] → [`config::Snapshot`] →
//! [`ingress`] → [`router`] → [`upstream`] → [`providers`] → response. The pingora services that
//! host it live in [`server`]; counters and histograms in [`telemetry`]; the live admin page in
//! [`console`].

pub mod cache;
pub mod config;
pub mod console;
pub mod error;
pub mod governance;
pub mod guardrails;
pub mod ingress;
pub mod inject;
pub mod pipeline;
pub mod providers;
pub mod redis_state;
pub mod router;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod upstream;
pub mod vocab;
