//! The end of every request, whatever ended it: its metrics, its [`RequestRecord`] (attempts,
//! tokens, cost), the limit reservation settled against it, and the record handed to OTLP, the
//! console and the access log.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use pingora::prelude::Session;

use super::context::Context;
use super::write::{Finished, Outcome};
use super::Pipeline;
use crate::ingress;
use crate::providers::Usage;
use crate::telemetry::metrics::{ConfigLabel, GenAiCallLabels, RequestLabels, SpendLabels};
use crate::telemetry::record::ClientSpan;
use crate::telemetry::{AttemptRecord, AttemptResult, RequestRecord};

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "other",
    }
}

impl Pipeline {
    /// Counts, records and exports a finished request.
    pub(super) fn finish(
        &self,
        session: &Session,
        mut ctx: Context<'_>,
        mut finished: Finished,
        total: Duration,
    ) {
        let upstream = Duration::from_nanos(ctx.upstream_wait_ns.load(Ordering::Relaxed));
        let m = &self.metrics;
        m.inflight_requests.dec();
        let config = ConfigLabel {
            config: &ctx.facts.config,
        };
        let requests = RequestLabels {
            config: config.config,
            status_class: status_class(finished.status),
            outcome: finished.outcome.as_str(),
        };
        m.requests_total.with(&requests).inc();
        m.request_duration_seconds
            .with(&config)
            .observe(total.as_secs_f64());
        m.overhead_seconds
            .with(&config)
            .observe(total.saturating_sub(upstream).as_secs_f64());
        let governed = ctx.governed.take();
        let record = self.record(session, ctx, &mut finished, total);
        if let Some(ticket) = governed {
            ticket.settle(&record);
        }
        if let Some(otlp) = &self.otlp {
            otlp.export(&record);
        }
        self.console.record(&record);
        // The API's own calls are not requests of the app's.
        if let (
            Some(store),
            "chat" | "embeddings" | "text_completion" | "generate_content" | "other",
        ) = (&self.store, record.operation)
        {
            store.record(record.clone());
        }
        if !self.access_log.log(&record) {
            m.genai.access_log_dropped_total.inc();
        }
    }

    /// The request's record, its token, cost and GenAI metrics recorded.
    fn record(
        &self,
        session: &Session,
        ctx: Context<'_>,
        finished: &mut Finished,
        duration: Duration,
    ) -> Arc<RequestRecord> {
        let head = session.req_header();
        let path = head.uri.path();
        let operation = ingress::path::operation_of(path);
        let winner = finished.attempt.take();
        let cache_hit = finished.outcome == Outcome::CacheHit;
        // A cache hit used no tokens and cost nothing (its limit reservation is given back).
        let usage = winner
            .as_ref()
            .and_then(|w| w.usage)
            .or(cache_hit.then(Default::default));
        let response_model = winner.as_ref().and_then(|w| w.response_model.clone());
        let cost_usd = match (&winner, &usage) {
            (Some(w), Some(u)) => self.cost(&ctx, w, response_model.as_deref(), u),
            _ => cache_hit.then_some(0.0),
        };
        let bodies = ctx
            .facts
            .request_body
            .as_ref()
            .map(|req| crate::telemetry::Bodies {
                request: String::from_utf8_lossy(req).into_owned(),
                response: finished
                    .response_body
                    .take()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default(),
            });
        let mut attempts = ctx.journal.take_attempts();
        if let Some(w) = winner {
            if attempts.is_empty() {
                // The usual case: one attempt, and the vector still unallocated.
                attempts.reserve_exact(1);
            }
            attempts.push(*w);
            attempts.sort_by_key(|a| a.start);
        }
        self.attempt_metrics(&ctx, operation, &attempts);
        let facts = ctx.facts;
        Arc::new(RequestRecord {
            trace: ctx.journal.trace,
            start: ctx.journal.start,
            duration,
            method: head.method.as_str().to_string(),
            path: match path.len() {
                0..=256 => path.to_string(),
                _ => path.chars().take(256).collect(),
            },
            operation,
            config: facts.config,
            virtual_key: facts.virtual_key,
            request_model: facts.model,
            response_model,
            stream: facts.stream,
            status: finished.status,
            outcome: finished.outcome.as_str(),
            attempts,
            usage,
            cost_usd,
            cache: facts.cache,
            metadata: facts.metadata,
            bodies,
            client_span: ClientSpan::from_headers(&head.headers),
        })
    }

    /// The answer's cost from the price table, counted (an unknown price is counted as such,
    /// not as zero).
    fn cost(
        &self,
        ctx: &Context<'_>,
        winner: &AttemptRecord,
        response_model: Option<&str>,
        usage: &Usage,
    ) -> Option<f64> {
        let model = response_model
            .or(winner.request_model.as_deref())
            .unwrap_or("");
        let cost = ctx
            .snapshot
            .telemetry
            .prices
            .cost(winner.provider_kind, model, usage);
        let labels = SpendLabels {
            config: &ctx.facts.config,
            virtual_key: ctx.facts.virtual_key.as_deref().unwrap_or("none"),
        };
        let g = &self.metrics.genai;
        match cost {
            Some(c) => g.cost_usd_total.with(&labels).inc_by(c),
            None => g.cost_unknown_total.with(&labels).inc(),
        }
        cost
    }

    /// The GenAI duration and token metrics of each attempt that ran.
    fn attempt_metrics(&self, ctx: &Context<'_>, operation: &str, attempts: &[AttemptRecord]) {
        let bounded = |m: Option<&str>| match m {
            Some(m) if ctx.snapshot.known_models.contains(m) => m.to_string(),
            _ => "other".to_string(),
        };
        let g = &self.metrics.genai;
        for a in attempts {
            if a.result.is_skipped() {
                continue;
            }
            let model = bounded(a.request_model.as_deref());
            let labels = GenAiCallLabels {
                operation,
                provider: a.provider_kind,
                model: &model,
                error_type: match a.result {
                    AttemptResult::Ok => "",
                    failed => failed.as_str(),
                },
            };
            g.operation_duration
                .with(&labels)
                .observe(a.total.as_secs_f64());
            if let Some(u) = &a.usage {
                g.record_usage(
                    operation,
                    a.provider_kind,
                    &ctx.facts.config,
                    &a.provider,
                    &model,
                    u,
                );
            }
        }
    }
}
