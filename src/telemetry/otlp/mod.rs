//! OTLP trace export, off unless configured: the exporter settings (from the standard `OTEL_*`
//! variables or the config file, [`settings`]), the mapping of a finished [`RequestRecord`] to
//! one SERVER span for the request and one CLIENT span per upstream attempt with the
//! OpenTelemetry GenAI semantic-convention attributes ([`spans`]), and the [`OtlpExporter`]
//! ([`export`]) that ships them as OTLP/HTTP protobuf from its own thread over its own
//! connection ([`transport`]).
//!
//! The request path only converts a record and pushes it into a bounded queue; when the queue is
//! full the record is dropped and counted, never waited for. Bodies are never exported, and
//! header values (which may carry API keys) are never logged or printed.
//!
//! Why a small HTTP client of our own ([`transport`]) and not a client crate: the exporter
//! talks to one collector, one request at a time, from its own thread and current-thread
//! runtime — off the request path, which it can never block. hyper's connection-level HTTP/1.1
//! client (`hyper::client::conn::http1`, already a dependency) over a tokio TCP stream, with
//! tokio-rustls for `https`, is all that needs: one kept connection, replaced when it fails,
//! each export bounded by the timeout. The pooled clients would add nothing here and cost
//! dependencies: hyper-util's legacy `Client` needs its `client-legacy` feature and an HTTPS
//! connector (hyper-rustls, not in the tree); reqwest is only a dev-dependency and would bring
//! its whole tree into the binary. TLS trusts the crate's one root store
//! ([`crate::config::ca::root_store`]).
//!
//! [`RequestRecord`]: crate::telemetry::RequestRecord

pub mod export;
pub mod settings;
pub mod spans;
mod transport;

#[cfg(test)]
mod tests;

pub use export::{ExportOptions, OtlpExporter};
pub use settings::{OtlpSettings, DEFAULT_ENDPOINT, DEFAULT_SERVICE_NAME, DEFAULT_TIMEOUT};
pub use spans::{
    gen_ai_provider_name, record_spans, AttrValue, MAX_ATTR_VALUE_CHARS, MAX_METADATA_KEYS,
};

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum OtlpError {
    #[error("OTLP endpoint {endpoint}: {reason}")]
    Endpoint { endpoint: String, reason: String },
    #[error("OTLP header {name:?} is not a valid HTTP header (its value is not shown)")]
    Header { name: String },
    #[error("OTLP exporter: cannot set up TLS for {endpoint}: {reason}")]
    Tls { endpoint: String, reason: String },
    #[error("OTLP exporter: cannot start its runtime: {0}")]
    Runtime(#[source] std::io::Error),
    #[error("OTLP exporter: cannot spawn its thread: {0}")]
    Thread(#[source] std::io::Error),
}
