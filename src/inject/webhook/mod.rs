//! `switchyard injector`: the mutating admission webhook that injects the Switchyard sidecar
//! into pods as the API server creates them, with the same transformation as `switchyard inject`
//! ([`crate::inject::inject_pod`]). `review.rs` decides (no I/O), `server.rs` serves it over
//! HTTPS with bounds and a graceful stop, `tls.rs` hot-reloads the mounted serving certificate,
//! `metrics.rs` counts reviews, and `certs.rs` is `switchyard injector certs`.
//!
//! Failure semantics: the webhook never refuses a pod. It is registered with
//! `failurePolicy: Ignore`, and every problem it can answer (a refused injection, a malformed
//! review) is an allowing response with a warning; only a body it cannot read at all (too large,
//! too slow) is an HTTP error, which the API server ignores too.

mod certs;
mod metrics;
mod review;
mod server;
mod tls;

use std::net::SocketAddr;

pub use certs::{write_certs, CertsError, CertsOptions, Written, DEFAULT_DAYS};
pub use review::{review, Reviewed, Verdict};
pub use server::{run, serve, InjectorOptions, BODY_DEADLINE, MAX_BODY};
pub use tls::{CertFiles, TlsError};

/// Why the injector cannot start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    #[error("serving certificate: {0}")]
    Tls(#[from] TlsError),
    #[error("cannot listen on {addr}: {reason}")]
    Bind { addr: SocketAddr, reason: String },
    #[error("cannot start the injector: {0}")]
    Start(String),
}
