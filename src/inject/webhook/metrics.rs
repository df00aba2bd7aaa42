//! The injector's own Prometheus registry (not the gateway's: the two never run in one process):
//! reviews by result, with every result pre-registered at 0 so a rate query has a series from
//! the first scrape, and how long each review took.

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use super::review::Verdict;

pub struct InjectorMetrics {
    registry: Registry,
    requests: IntCounterVec,
    duration: Histogram,
    cert_not_after: IntGauge,
}

impl InjectorMetrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "switchyard_injector_requests_total",
                "Admission reviews answered, by result (injected, updated, unchanged, opted_out, skipped, refused, malformed).",
            ),
            &["result"],
        )?;
        // Reviews are small and local: sub-millisecond to tens of milliseconds for a large pod.
        let duration = Histogram::with_opts(
            HistogramOpts::new(
                "switchyard_injector_review_duration_seconds",
                "Time from a review's request head to its response, body read included.",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0,
            ]),
        )?;
        let cert_not_after = IntGauge::new(
            "switchyard_injector_certificate_not_after_seconds",
            "When the served TLS certificate expires (Unix seconds): alert well before it, as the API server stops calling an expired webhook.",
        )?;
        registry.register(Box::new(cert_not_after.clone()))?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        for verdict in Verdict::ALL {
            requests.with_label_values(&[verdict.label()]);
        }
        Ok(Self {
            registry,
            requests,
            duration,
            cert_not_after,
        })
    }

    /// Counts one answered review.
    pub fn observe(&self, verdict: Verdict, seconds: f64) {
        self.requests.with_label_values(&[verdict.label()]).inc();
        self.duration.observe(seconds);
    }

    /// The text exposition of every metric; `cert_not_after`: the served certificate's expiry.
    pub fn render(&self, cert_not_after: i64) -> Vec<u8> {
        self.cert_not_after.set(cert_not_after);
        let mut out = Vec::new();
        if let Err(e) = TextEncoder::new().encode(&self.registry.gather(), &mut out) {
            tracing::warn!(error = %e, "injector: cannot encode the metrics");
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_result_is_exported_from_the_start() {
        let m = InjectorMetrics::new().unwrap();
        m.observe(Verdict::Injected, 0.002);
        let text = String::from_utf8(m.render(1_900_000_000)).unwrap();
        assert!(text.contains("switchyard_injector_certificate_not_after_seconds 1900000000"));
        for verdict in Verdict::ALL {
            let n = if verdict == Verdict::Injected { 1 } else { 0 };
            let line = format!(
                "switchyard_injector_requests_total{{result=\"{}\"}} {n}",
                verdict.label()
            );
            assert!(text.contains(&line), "{line} missing in\n{text}");
        }
        assert!(text.contains("switchyard_injector_review_duration_seconds_count 1"));
    }
}
