//! `POST /v1/feedback` (Portkey's shape, one object or a bulk array): each piece validated,
//! counted, logged with the trace it rates, exported as an OTLP event in that trace, and
//! answered with a `feedback_ids` entry.

use bytes::Bytes;
use pingora::prelude::Session;

use super::context::Context;
use super::reject::Rejection;
use super::write::{write_json, Finished};
use super::{body, Pipeline};
use crate::error::GatewayError;
use crate::ingress;
use crate::telemetry::feedback::Feedback;
use crate::telemetry::metrics::FeedbackLabels;
use crate::telemetry::otlp::AttrValue;
use crate::telemetry::{trace, TraceContext};

/// Largest feedback body accepted (a bulk list of up to `feedback::MAX_BULK` pieces).
const MAX_FEEDBACK_BYTES: usize = 256 * 1024;

/// Whether the request is a feedback call.
pub fn is_feedback(session: &Session) -> bool {
    let head = session.req_header();
    head.method == http::Method::POST && head.uri.path() == "/v1/feedback"
}

impl Pipeline {
    pub(super) async fn feedback(
        &self,
        session: &mut Session,
        ctx: &mut Context<'_>,
    ) -> Result<Finished, Rejection> {
        // A config or virtual key, when sent, names the config the feedback is counted under.
        if let Ok(resolved) = ingress::resolve(ctx.snapshot, &session.req_header().headers) {
            ctx.facts.config.clear();
            ctx.facts.config.push_str(resolved.config_label());
            ctx.facts.virtual_key = resolved.virtual_key.as_ref().map(|k| k.label.clone());
        }
        let body = body::read(session, ctx, &self.metrics, MAX_FEEDBACK_BYTES).await?;
        let all =
            Feedback::parse_many(&body).map_err(|e| GatewayError::InvalidRequest(e.to_string()))?;
        let mut ids = Vec::with_capacity(all.len());
        for feedback in &all {
            let value = feedback.value.to_string();
            let labels = FeedbackLabels {
                config: &ctx.facts.config,
                value: &value,
            };
            self.metrics.genai.feedback_total.with(&labels).inc();
            self.export_feedback(feedback);
            ids.push(hex::encode(rand::random::<[u8; 16]>()));
        }
        let mut answer = serde_json::json!({
            "status": "success",
            "message": "feedback recorded",
            "feedback_ids": ids,
        });
        let recorded = serde_json::to_value(&all).ok();
        let recorded = match (&all[..], recorded) {
            // One object: answered and recorded as one (with its trace id), as before bulk.
            ([one], Some(serde_json::Value::Array(mut v))) => {
                answer["trace_id"] = one.trace_id.clone().into();
                v.pop()
            }
            (_, v) => v,
        };
        if let Some(v) = recorded {
            let mut m = serde_json::Map::new();
            m.insert("feedback".into(), v);
            ctx.facts.metadata = Some(m);
        }
        Ok(write_json(session, Bytes::from(answer.to_string()), &ctx.headers).await)
    }

    /// The feedback as an OTLP event in the trace it rates.
    fn export_feedback(&self, feedback: &Feedback) {
        let Some(otlp) = &self.otlp else {
            return;
        };
        let mut trace_id = [0u8; 16];
        if hex::decode_to_slice(&feedback.trace_id, &mut trace_id).is_err() {
            return;
        }
        let rated = TraceContext {
            trace_id,
            span_id: trace::new_span_id(),
            parent_span_id: None,
            sampled: true,
            display_id: feedback.trace_id.clone(),
        };
        otlp.event(
            &rated,
            "gen_ai.feedback",
            vec![
                (
                    "switchyard.feedback.value".into(),
                    AttrValue::Int(i64::from(feedback.value)),
                ),
                (
                    "switchyard.feedback.weight".into(),
                    AttrValue::Double(feedback.weight),
                ),
            ],
        );
    }
}
