//! What Switchyard reports about itself: Prometheus metrics ([`metrics`]) and the record of
//! each request ([`record`]) that the access log ([`access_log`]) and the OTLP trace export
//! ([`otlp`]) are written from, with its W3C trace context ([`trace`]); token, cost and GenAI
//! metrics in [`genai`], prices in [`cost`], the feedback API's shape in [`feedback`].

pub mod access_log;
pub mod cost;
pub mod feedback;
pub mod genai;
pub mod metrics;
pub mod otlp;
pub mod record;
pub mod trace;

pub use metrics::Metrics;
pub use record::{AttemptRecord, AttemptResult, Bodies, RequestRecord, TraceContext};
