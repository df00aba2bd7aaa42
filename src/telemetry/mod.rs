//! What Switchyard reports about itself: Prometheus metrics ([`metrics`]) and the record of
//! each request ([`record`]) that the access log and trace export are written from.

pub mod cost;
pub mod feedback;
pub mod metrics;
pub mod record;

pub use metrics::Metrics;
pub use record::{AttemptRecord, Bodies, RequestRecord, TraceContext};
