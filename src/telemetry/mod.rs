//! What Switchyard reports about itself: Prometheus metrics ([`metrics`]).

pub mod metrics;

pub use metrics::Metrics;
